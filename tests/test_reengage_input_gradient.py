"""The closed-form goal gradients of ReenGAGE (zoo.agents.reengage.input_gradient) equal autograd's.

The fast path replaces double backward for SB3's ReLU actors and critics; the autograd path is
pinned against hand computations, finite differences and the reference code elsewhere
(tests/test_reengage.py, tests/test_reengage_reference.py), so here the fast path is pinned
against autograd, and against finite differences on its own.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest
import torch as th
from stable_baselines3.common.logger import configure as configure_logger
from stable_baselines3.common.torch_layers import create_mlp
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from torch import nn

import zoo  # noqa: F401  (registers the environments)
from zoo.agents import ReenGAGEDDPG, ReenGAGESAC, ReenGAGETD3
from zoo.agents.reengage.input_gradient import (
    relu_mlp,
    relu_mlp_forward,
    relu_mlp_input_vjp,
    relu_mlp_value_and_input_gradient,
)
from zoo.agents.reengage.loss import critic_loss_terms, critic_relu_mlps, goal_columns
from zoo.agents.reengage.td3 import actor_relu_mlp, frozen

ARCHS = [[7], [16, 16], [8, 9, 10]]
COLUMNS = [None, slice(1, 4), th.tensor([0, 2, 5])]


class FixedBuffer:
    """Replay-buffer stand-in whose ``sample`` returns one given batch."""

    def __init__(self, batch: DictReplayBufferSamples) -> None:
        self.batch = batch

    def sample(self, batch_size: int, env: Any = None) -> DictReplayBufferSamples:
        return self.batch


def goal_batch(batch_size: int, dim: int, seed: int = 0) -> DictReplayBufferSamples:
    """Random ContinuousSeek-like transitions (the observation is the achieved goal)."""
    generator = th.Generator().manual_seed(seed)

    def rand(*shape: int, scale: float = 1.0) -> th.Tensor:
        return (th.rand(*shape, generator=generator) * 2 - 1) * scale

    achieved, next_achieved, goal = rand(batch_size, dim), rand(batch_size, dim), rand(batch_size, dim)
    return DictReplayBufferSamples(
        observations={"observation": achieved, "achieved_goal": achieved, "desired_goal": goal},
        actions=rand(batch_size, dim, scale=0.3),
        next_observations={
            "observation": next_achieved,
            "achieved_goal": next_achieved,
            "desired_goal": goal,
        },
        dones=(th.arange(batch_size) % 4 == 1).float().reshape(-1, 1),
        rewards=-(th.arange(batch_size) % 3 != 0).float().reshape(-1, 1),  # mixes -1 and 0
    )


def relu_network(arch: list[int], in_dim: int = 6, seed: int = 0) -> nn.Sequential:
    th.manual_seed(seed)
    return nn.Sequential(*create_mlp(in_dim, 1, arch)).double()


def selected(columns: Any, n: int = 6) -> th.Tensor:
    return th.arange(n) if columns is None else th.arange(n)[columns]


def a_loss(
    values: th.Tensor, gradient: th.Tensor, target: th.Tensor, target_gradient: th.Tensor
) -> th.Tensor:
    """A loss of both outputs, with a product term so that the two backward paths mix."""
    weights = th.arange(gradient.shape[1], dtype=gradient.dtype)
    return (
        (values - target).pow(2).mean()
        + 0.7 * ((gradient - target_gradient).pow(2) * weights).mean()
        + (values * gradient[:, :1]).mean()
    )


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("columns", COLUMNS, ids=["all", "slice", "index"])
def test_value_gradient_and_backward_equal_double_backward(arch, columns):
    network = relu_network(arch)
    generator = th.Generator().manual_seed(1)
    x = th.randn(11, 6, dtype=th.float64, generator=generator)
    index = selected(columns)
    target = th.randn(11, 1, dtype=th.float64, generator=generator)
    target_gradient = th.randn(11, len(index), dtype=th.float64, generator=generator)
    parameters = list(network.parameters())

    reference_x = x.clone().requires_grad_(True)
    values = network(reference_x)
    (gradient,) = th.autograd.grad(values.sum(), reference_x, create_graph=True)
    reference_loss = a_loss(values, gradient[:, index], target, target_gradient)
    wrt = parameters + ([reference_x] if columns is None else [])
    reference = th.autograd.grad(reference_loss, wrt)

    explicit_x = x.clone().requires_grad_(columns is None)
    explicit_values, explicit_gradient = relu_mlp_value_and_input_gradient(
        relu_mlp(network), explicit_x, columns
    )
    th.testing.assert_close(explicit_values, values, rtol=0, atol=0)  # the same forward operations
    th.testing.assert_close(explicit_gradient, gradient[:, index], rtol=1e-12, atol=1e-12)
    explicit_loss = a_loss(explicit_values, explicit_gradient, target, target_gradient)
    wrt = parameters + ([explicit_x] if columns is None else [])
    for mine, theirs in zip(th.autograd.grad(explicit_loss, wrt), reference, strict=True):
        th.testing.assert_close(mine, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("arch", ARCHS)
def test_input_gradient_matches_finite_differences(arch):
    network = relu_network(arch)
    x = th.randn(9, 6, dtype=th.float64, generator=th.Generator().manual_seed(2))
    _, gradient = relu_mlp_value_and_input_gradient(relu_mlp(network), x)
    step = 1e-6  # far below the distance to a ReLU kink for these random inputs
    with th.no_grad():
        numeric = th.stack(
            [
                (network(x + step * unit) - network(x - step * unit)).squeeze(1) / (2 * step)
                for unit in th.eye(6, dtype=th.float64)
            ],
            dim=1,
        )
    assert gradient.abs().max() > 1e-2
    th.testing.assert_close(gradient, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("columns", COLUMNS, ids=["all", "slice", "index"])
def test_input_vjp_equals_autograd(columns):
    th.manual_seed(3)
    network = nn.Sequential(*create_mlp(6, 3, [8, 8], squash_output=True)).double()
    layers = relu_mlp(network, output_activation=nn.Tanh)
    x = th.randn(5, 6, dtype=th.float64, requires_grad=True)
    output_gradient = th.randn(5, 3, dtype=th.float64)
    output, hidden = relu_mlp_forward(layers, x)
    th.testing.assert_close(th.tanh(output), network(x), rtol=0, atol=0)
    pre_activation = network[:-1](x)  # the VJP is of the output before tanh
    (reference,) = th.autograd.grad(pre_activation, x, output_gradient)
    vjp = relu_mlp_input_vjp(layers, hidden, output_gradient, columns)
    th.testing.assert_close(vjp, reference[:, selected(columns)], rtol=1e-12, atol=1e-12)


def test_only_plain_relu_mlps_take_the_fast_path():
    assert relu_mlp(nn.Sequential(*create_mlp(4, 1, [8]))) is not None
    assert relu_mlp(nn.Sequential(*create_mlp(4, 1, [8], activation_fn=nn.Tanh))) is None
    assert relu_mlp(nn.Sequential(nn.Linear(4, 1))) is None  # no hidden layer
    assert relu_mlp(nn.Sequential(nn.Linear(4, 8, bias=False), nn.ReLU(), nn.Linear(8, 1))) is None
    assert relu_mlp(nn.Sequential(*create_mlp(4, 2, [8], squash_output=True))) is None
    assert relu_mlp(nn.Sequential(*create_mlp(4, 2, [8], squash_output=True)), output_activation=nn.Tanh)
    with pytest.raises(ValueError, match="one"):
        relu_mlp_value_and_input_gradient(relu_mlp(nn.Sequential(*create_mlp(4, 2, [8]))), th.zeros(1, 4))


def seek_model(cls: type, activation_fn: type[nn.Module] = nn.ReLU, **kwargs: Any) -> Any:
    policy_kwargs = {"net_arch": [16, 16], "activation_fn": activation_fn, **kwargs.pop("policy_kwargs", {})}
    model = cls(
        "MultiInputPolicy",
        gym.make("zoo/ContinuousSeek-v1", dim=3),
        seed=0,
        policy_kwargs=policy_kwargs,
        **kwargs,
    )
    model.set_logger(configure_logger(None, []))
    return model


def test_goal_columns_locate_the_goal_in_the_features():
    model = seek_model(ReenGAGETD3)
    batch = goal_batch(4, 3)
    for network in (model.critic, model.critic_target, model.actor, model.actor_target):
        columns = goal_columns(network)
        features = network.extract_features(batch.observations, network.features_extractor)
        th.testing.assert_close(features[:, columns], batch.observations["desired_goal"])
    assert critic_relu_mlps(model.critic) is not None and actor_relu_mlp(model.actor) is not None
    tanh_model = seek_model(ReenGAGETD3, nn.Tanh)
    assert critic_relu_mlps(tanh_model.critic) is None and actor_relu_mlp(tanh_model.actor) is None


@pytest.mark.parametrize("cls", [ReenGAGEDDPG, ReenGAGETD3])
def test_explicit_target_equals_autograd_target(cls):
    model = seek_model(cls)
    batch = goal_batch(64, 3)
    th.manual_seed(7)  # TD3's smoothing noise: the same draw on both paths
    explicit = model._critic_goal_target(batch, model.gamma)
    model.explicit_gradient = False
    th.manual_seed(7)
    reference = model._critic_goal_target(batch, model.gamma)
    assert reference[1].abs().max() > 1e-3  # the check is not vacuous
    th.testing.assert_close(explicit[0], reference[0], rtol=0, atol=0)  # the same forward operations
    th.testing.assert_close(explicit[1], reference[1], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cls", [ReenGAGEDDPG, ReenGAGETD3, ReenGAGESAC])
def test_explicit_critic_loss_and_gradients_equal_double_backward(cls):
    model = seek_model(cls)
    batch = goal_batch(64, 3)
    target = th.randn(64, 1, generator=th.Generator().manual_seed(5))
    target_gradient = th.randn(64, 3, generator=th.Generator().manual_seed(6))
    results = []
    for explicit_gradient in (True, False):
        model.critic.zero_grad()
        td_loss, grad_loss = critic_loss_terms(
            model.critic, batch, target, target_gradient, explicit_gradient=explicit_gradient
        )
        (td_loss + 0.3 * grad_loss).backward()
        results.append(
            (td_loss.detach(), grad_loss.detach(), [p.grad.clone() for p in model.critic.parameters()])
        )
    (td, grad, grads), (td_ref, grad_ref, grads_ref) = results
    th.testing.assert_close(td, td_ref, rtol=0, atol=0)
    th.testing.assert_close(grad, grad_ref, rtol=1e-5, atol=1e-8)
    assert grad_ref > 0
    for mine, theirs in zip(grads, grads_ref, strict=True):
        th.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("cls", [ReenGAGEDDPG, ReenGAGETD3])
def test_explicit_training_follows_autograd_training(cls):
    models = []
    for explicit_gradient in (True, False):
        model = seek_model(cls, learning_starts=0)
        model.explicit_gradient = explicit_gradient
        model.replay_buffer = FixedBuffer(goal_batch(32, 3))  # type: ignore[assignment]
        th.manual_seed(11)
        model.train(gradient_steps=4, batch_size=32)
        models.append(model)
    explicit, reference = (model.policy.state_dict() for model in models)
    for key, value in reference.items():
        th.testing.assert_close(explicit[key], value, rtol=1e-4, atol=1e-6, msg=key)
    logged, logged_reference = (model.logger.name_to_value for model in models)
    for key in ("train/critic_td_loss", "train/critic_grad_loss", "train/actor_loss"):
        assert logged[key] == pytest.approx(logged_reference[key], rel=1e-4), key


def test_frozen_restores_requires_grad():
    module = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    module[1].bias.requires_grad_(False)
    with frozen(module):
        assert not any(parameter.requires_grad for parameter in module.parameters())
    assert [parameter.requires_grad for parameter in module.parameters()] == [True, True, True, False]
