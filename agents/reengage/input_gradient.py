"""Closed-form input gradients of ReLU MLPs: the fast path of ReenGAGE's critic update.

ReenGAGE puts the critic's gradient with respect to the goal into the critic's loss, so plain
autograd builds the graph of a gradient and differentiates it again (double backward). For the
networks SB3 builds (``Linear``/``ReLU`` stacks, ``create_mlp``) both passes have a closed form.
With ``z_l = h_{l-1} W_l^T + b_l``, ``h_l = relu(z_l)``, ReLU mask ``m_l = [z_l > 0]`` and scalar
output ``Q = h_L w^T + b``, the derivatives ``g_l = dQ/dz_l`` are

    g_L = m_L * w,    p_{l-1} = g_l W_l,    g_{l-1} = m_{l-1} * p_{l-1},    grad_x Q = p_0.

Since ``m_l`` is piecewise constant, ``grad_x Q`` is linear in the output-side weights and constant
in ``x``, and a loss ``L(Q, grad_x Q)`` with ``delta = dL/dQ`` and ``Gamma = dL/d(grad_x Q)`` has

    dL/dW_l = g_l^T (dp_{l-1} + delta * h_{l-1})      (dp_0 = Gamma, dp_l = m_l * (dp_{l-1} W_l^T)),
    dL/db_l = g_l^T delta,    dL/dw = delta^T h_L + rowsum(W_L * (m_L^T dp_{L-1})),    dL/dx = delta * p_0.

The TD part of the error signal at layer ``l`` is ``delta * g_l``, which the forward pass already
holds, so the TD backward costs one weight-gradient product per layer and no propagation; the top
layer's ``dp_{L-1} W_L^T`` is never formed (its only use, ``dL/dw``, is read off ``m_L^T dp_{L-1}``).
For SB3's [256, 256] critics that is 4 large matrix products for ``Q``, ``grad_x Q`` and the whole
backward, where double backward takes 6 (and plain TD learning 3). The values are those of
autograd up to floating-point rounding (``tests/test_reengage_input_gradient.py``).
"""

from __future__ import annotations

from typing import Any

import torch as th
from torch import nn
from torch.autograd.function import FunctionCtx, once_differentiable
from torch.nn import functional as F

__all__ = [
    "Columns",
    "ReluMLP",
    "relu_mlp",
    "relu_mlp_forward",
    "relu_mlp_input_vjp",
    "relu_mlp_value_and_input_gradient",
]

#: The linear layers of a ReLU MLP, input side first.
ReluMLP = list[nn.Linear]

#: Which input columns a gradient is wanted for: all (None), a slice, or an index tensor.
Columns = slice | th.Tensor | None


def _mask_like_relu(gradient: th.Tensor, activation: th.Tensor) -> th.Tensor:
    """``gradient * [activation > 0]`` for a ReLU output ``activation``: ReLU's own backward kernel."""
    return th.ops.aten.threshold_backward(gradient, activation, 0)


def _select(weight: th.Tensor, columns: Columns) -> th.Tensor:
    if columns is None:
        return weight
    if isinstance(columns, slice):
        return weight[:, columns]
    return weight.index_select(1, columns)


def relu_mlp(network: Any, output_activation: type[nn.Module] | None = None) -> ReluMLP | None:
    """The linear layers of ``Sequential(Linear, ReLU, ..., Linear[, output_activation])``, or None.

    :param network: a module, typically ``critic.q_networks[k]`` or ``actor.mu`` of SB3.
    :param output_activation: the activation expected after the last ``Linear`` (``nn.Tanh`` for
        SB3's deterministic actors), or None for a linear output.
    :return: the ``nn.Linear`` layers (at least two, each with a bias), or None when the network
        has any other shape (then callers fall back to autograd).
    """
    if type(network) is not nn.Sequential:
        return None
    modules = list(network)
    if output_activation is not None:
        if not modules or type(modules[-1]) is not output_activation:
            return None
        modules = modules[:-1]
    if len(modules) < 3 or len(modules) % 2 == 0:
        return None
    linears = modules[0::2]
    if any(type(module) is not nn.Linear or module.bias is None for module in linears):
        return None
    if any(type(module) is not nn.ReLU for module in modules[1::2]):
        return None
    return linears  # type: ignore[return-value]


def relu_mlp_forward(layers: ReluMLP, inputs: th.Tensor) -> tuple[th.Tensor, list[th.Tensor]]:
    """Output before the output activation, and the hidden activations ``h_1 .. h_L``.

    The same operations as ``nn.Sequential`` (``F.linear``, ``F.relu``), so the same values.

    :param layers: the linear layers of a ReLU MLP (see :func:`relu_mlp`).
    :param inputs: a batch ``(batch, in_features)``.
    :return: ``(output, hidden)``.
    """
    hidden: list[th.Tensor] = []
    activation = inputs
    for layer in layers[:-1]:
        activation = F.relu(F.linear(activation, layer.weight, layer.bias))
        hidden.append(activation)
    return F.linear(activation, layers[-1].weight, layers[-1].bias), hidden


def relu_mlp_input_vjp(
    layers: ReluMLP, hidden: list[th.Tensor], output_gradient: th.Tensor, columns: Columns = None
) -> th.Tensor:
    """``output_gradient^T d(output)/d(inputs)`` of :func:`relu_mlp_forward`'s output, without autograd.

    :param layers: the linear layers.
    :param hidden: the hidden activations from :func:`relu_mlp_forward`.
    :param output_gradient: gradient with respect to the output (before any output activation),
        ``(batch, out_features)``.
    :param columns: the input columns to return the gradient for (default: all).
    :return: the gradient with respect to ``inputs[:, columns]``.
    """
    gradient = output_gradient
    for layer, activation in zip(layers[:0:-1], hidden[::-1]):
        gradient = _mask_like_relu(gradient @ layer.weight, activation)
    return gradient @ _select(layers[0].weight, columns)


class _ValueAndInputGradient(th.autograd.Function):
    """``(Q, grad_x Q)`` of a ReLU MLP with scalar output, with the backward of the module docstring."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx, inputs: th.Tensor, columns: Columns, *parameters: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor]:
        weights, biases = parameters[0::2], parameters[1::2]
        hidden: list[th.Tensor] = []
        activation = inputs
        for weight, bias in zip(weights[:-1], biases[:-1]):
            activation = F.relu(F.linear(activation, weight, bias))
            hidden.append(activation)
        values = F.linear(activation, weights[-1], biases[-1])
        top_mask = hidden[-1].sign()  # m_L as numbers: h_L >= 0
        # g_L .. g_1 (dQ/dz_l), then p_0 = grad_x Q on the selected columns.
        signals = [top_mask * weights[-1]]
        for weight, activation in zip(weights[-2:0:-1], hidden[-2::-1]):
            signals.append(_mask_like_relu(signals[-1] @ weight, activation))
        gradient = signals[-1] @ _select(weights[0], columns)
        ctx.save_for_backward(inputs, gradient, top_mask, *parameters, *hidden, *signals)
        ctx.n_layers = len(weights)  # type: ignore[attr-defined]
        ctx.columns = columns  # type: ignore[attr-defined]
        return values, gradient

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, values_grad: th.Tensor, gradient_grad: th.Tensor) -> tuple[th.Tensor | None, ...]:  # type: ignore[override]
        n_layers: int = ctx.n_layers
        columns: Columns = ctx.columns
        saved = ctx.saved_tensors
        inputs, input_gradient, top_mask = saved[:3]
        parameters = saved[3 : 3 + 2 * n_layers]
        hidden = saved[3 + 2 * n_layers : 3 + 2 * n_layers + n_layers - 1]  # h_1 .. h_L
        signals = saved[3 + 2 * n_layers + n_layers - 1 :][::-1]  # g_1 .. g_L
        weights = parameters[0::2]
        needs = ctx.needs_input_grad
        delta = values_grad  # dL/dQ, (batch, 1)
        parameter_grads: list[th.Tensor | None] = [None] * (2 * n_layers)
        # The first layer: the gradient term reaches W_1 on the selected columns only.
        if needs[2]:
            signal = delta * inputs
            if columns is None:
                signal = signal + gradient_grad
            elif isinstance(columns, slice):
                signal[:, columns] += gradient_grad
            else:
                signal = signal.index_add(1, columns, gradient_grad)
            parameter_grads[0] = signals[0].t() @ signal
        if needs[3]:
            parameter_grads[1] = (delta.t() @ signals[0]).squeeze(0)
        back = gradient_grad @ _select(weights[0], columns).t()  # dL/dg_1
        for index in range(1, n_layers - 1):  # hidden layer l = index + 1
            back = _mask_like_relu(back, hidden[index - 1])  # dL/dp_{l-1}
            signal = signals[index]
            if needs[2 + 2 * index]:
                parameter_grads[2 * index] = signal.t() @ (back + delta * hidden[index - 1])
            if needs[3 + 2 * index]:
                parameter_grads[2 * index + 1] = (delta.t() @ signal).squeeze(0)
            if index < n_layers - 2:
                back = back @ weights[index].t()
        # back is now dL/dp_{L-1}; dL/dw needs only m_L^T dp_{L-1}, never dp_{L-1} W_L^T.
        if needs[2 * n_layers]:
            if n_layers == 2:
                back = gradient_grad  # L = 1: p_{L-1} is p_0 itself
                top_weight = _select(weights[0], columns)
            else:
                top_weight = weights[-2]
            top_product = top_mask.t() @ back
            parameter_grads[2 * n_layers - 2] = delta.t() @ hidden[-1] + (top_weight * top_product).sum(1)
        if needs[2 * n_layers + 1]:
            parameter_grads[2 * n_layers - 1] = delta.sum(0)
        inputs_grad = None
        if needs[0]:
            if columns is not None:
                raise RuntimeError(
                    "inputs that require grad need columns=None (the gradient of every column)"
                )
            inputs_grad = delta * input_gradient
        return (inputs_grad, None, *parameter_grads)


def relu_mlp_value_and_input_gradient(
    layers: ReluMLP, inputs: th.Tensor, columns: Columns = None
) -> tuple[th.Tensor, th.Tensor]:
    """``Q(x)`` and ``grad_x Q(x)`` of a ReLU MLP with one output, in one pass.

    Both outputs are differentiable (once) with respect to every parameter, and with
    ``columns=None`` to ``inputs``, with autograd's values up to rounding: a loss of ``Q`` and
    ``grad_x Q`` backpropagates without double backward. ``grad_x Q`` does not depend on ``inputs``
    (ReLU's derivative is piecewise constant, as autograd also has it). Under ``th.no_grad()`` it
    is just the forward.

    :param layers: the linear layers (see :func:`relu_mlp`); the last must have one output.
    :param inputs: a batch ``(batch, in_features)``.
    :param columns: the input columns to return the gradient for (default: all); fewer columns
        make the first layer's products smaller.
    :return: ``(values (batch, 1), input_gradient (batch, n_columns))``.
    """
    if layers[-1].out_features != 1:
        raise ValueError(f"the last layer has {layers[-1].out_features} outputs; one (a Q-value) is needed")
    parameters = [tensor for layer in layers for tensor in (layer.weight, layer.bias)]
    values, gradient = _ValueAndInputGradient.apply(inputs, columns, *parameters)
    return values, gradient
