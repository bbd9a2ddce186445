"""The goal-gradient distillation term of ReenGAGE (Levine & Feizi 2023, arXiv 2208.13298).

The critic update of ReenGAGE is knowledge distillation from the target network: besides the
TD target ``y``, the online critic ``Q(s, a, g)`` learns the target's gradient with respect to
the goal, ``grad_g' y``. The helpers here are shared by every ReenGAGE agent of this package.
"""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.common.preprocessing import get_flattened_obs_dim
from stable_baselines3.common.torch_layers import CombinedExtractor
from torch import nn
from torch.nn import functional as F

from zoo.envs.base import check_real

from .input_gradient import ReluMLP, relu_mlp, relu_mlp_value_and_input_gradient

__all__ = [
    "DESIRED_GOAL_KEY",
    "check_goal_observation_space",
    "check_gradient_reg",
    "check_sparse_rewards",
    "critic_loss_terms",
    "critic_relu_mlps",
    "critic_values_and_goal_gradients",
    "goal_columns",
    "goal_gradient",
    "reengage_gradient_loss",
    "with_goal",
]

#: Key of the goal in the Dict observation of a Gymnasium goal environment.
DESIRED_GOAL_KEY = "desired_goal"


def check_gradient_reg(gradient_reg: Any) -> float:
    """Validate the weight of the goal-gradient term.

    :param gradient_reg: the weight; must be a finite real number >= 0 (bools and strings such
        as ``True`` or ``"0.2"`` are refused, not converted).
    :return: the weight as a float.
    """
    return check_real("gradient_reg", gradient_reg, 0.0, finite=True)


def check_goal_observation_space(observation_space: spaces.Space | None) -> None:
    """Make sure the agent sees a goal it can differentiate with respect to.

    :param observation_space: the observation space of the environment; must be a
        ``spaces.Dict`` with a ``Box`` (or ``MultiBinary``) entry ``"desired_goal"`` (a Gymnasium
        goal environment).
    """
    if observation_space is None:
        return
    if not isinstance(observation_space, spaces.Dict) or DESIRED_GOAL_KEY not in observation_space.spaces:
        raise ValueError(
            f"observation_space={observation_space!r} is not allowed: ReenGAGE differentiates the critic "
            f"with respect to the goal, so it needs a goal environment whose observation space is a "
            f"spaces.Dict with a '{DESIRED_GOAL_KEY}' entry (e.g. zoo/ContinuousSeek-d5-v0)"
        )
    goal_space = observation_space.spaces[DESIRED_GOAL_KEY]
    if not isinstance(goal_space, (spaces.Box, spaces.MultiBinary)):
        raise ValueError(
            f"observation_space['{DESIRED_GOAL_KEY}']={goal_space!r} is not allowed: the goal must be a "
            f"spaces.Box (or MultiBinary) fed to the critic as numbers, so that the critic can be "
            f"differentiated with respect to it"
        )


def check_sparse_rewards(rewards: th.Tensor) -> None:
    """Refuse rewards outside {-1, 0}: the term is weighted by ``-r`` (see :func:`reengage_gradient_loss`).

    A positive reward would give a negative weight and an unbounded loss, so this is an error.

    :param rewards: a batch of rewards from the replay buffer.
    """
    bad = (rewards != 0) & (rewards != -1)
    if bool(bad.any()):
        example = float(rewards[bad].flatten()[0])
        raise ValueError(
            f"ReenGAGE needs sparse rewards in {{-1, 0}} (-1 while the goal is not reached), got a reward "
            f"of {example}; rescale the environment's compute_reward or use MultiReenGAGE for weighted goals"
        )


def with_goal(observations: dict[str, th.Tensor]) -> tuple[dict[str, th.Tensor], th.Tensor]:
    """Copy a Dict observation batch with a fresh goal leaf that requires grad.

    :param observations: a batch of Dict observations (tensors), e.g. ``replay_data.observations``.
    :return: the new observation dict and its goal tensor, to differentiate with respect to.
    """
    goal = observations[DESIRED_GOAL_KEY].detach()
    # Integer goals (MultiBinary) are cast to float by SB3's preprocessing anyway.
    goal = (goal.clone() if goal.is_floating_point() else goal.float()).requires_grad_(True)
    return {**observations, DESIRED_GOAL_KEY: goal}, goal


def goal_gradient(values: th.Tensor, goal: th.Tensor, create_graph: bool) -> th.Tensor:
    """Gradient of each sample's value with respect to its own goal.

    Samples are independent, so the gradient of the batch sum gives every per-sample gradient.

    :param values: values of shape ``(batch, 1)`` or ``(batch,)`` computed from ``goal``.
    :param goal: the goal tensor (requires grad), shape ``(batch, *goal_shape)``.
    :param create_graph: keep the graph of the gradient so it can be differentiated again (True
        for the online critic, whose gradient enters its loss; False for the constant target).
    :return: a tensor shaped like ``goal``.
    """
    (gradient,) = th.autograd.grad(values.sum(), goal, create_graph=create_graph, retain_graph=True)
    return gradient


def reengage_gradient_loss(
    critic_goal_gradient: th.Tensor, target_goal_gradient: th.Tensor, rewards: th.Tensor
) -> th.Tensor:
    """ReenGAGE's gradient term: ``mean over batch and goal dims of (-r) * (grad_g Q - grad_g' y)**2``.

    With rewards in {-1, 0} the weight ``-r`` keeps only transitions whose (relabelled) goal was
    not reached: where it was reached, the sparse reward jumps, and its goal gradient is not defined.

    :param critic_goal_gradient: ``grad_g Q(s, a, g)`` of shape ``(batch, *goal_shape)``.
    :param target_goal_gradient: ``grad_g' y``, same shape (treated as a constant).
    :param rewards: rewards of shape ``(batch, 1)`` or ``(batch,)``.
    :return: a scalar tensor.
    """
    batch_size = critic_goal_gradient.shape[0]
    difference = (critic_goal_gradient - target_goal_gradient.detach()).reshape(batch_size, -1)
    weights = -rewards.reshape(batch_size, 1).to(difference.dtype)
    return (weights * difference.pow(2)).mean()


def goal_columns(model: Any) -> slice | None:
    """Where the goal sits in the features of ``model``'s extractor, if they are its flat copy.

    :param model: an SB3 actor or critic (with ``features_extractor`` and ``observation_space``).
    :return: the columns of ``desired_goal`` in the features when the extractor is SB3's
        ``CombinedExtractor`` with ``nn.Flatten`` on every key (the default for vector
        observations), so that the goal gradient of the features is a selection; else None.
    """
    extractor = getattr(model, "features_extractor", None)
    space = getattr(model, "observation_space", None)
    if type(extractor) is not CombinedExtractor or not isinstance(space, spaces.Dict):
        return None
    goal_space = space.spaces.get(DESIRED_GOAL_KEY)
    if not isinstance(goal_space, (spaces.Box, spaces.MultiBinary)) or len(goal_space.shape) != 1:
        return None
    start = 0
    for key, module in extractor.extractors.items():
        if type(module) is not nn.Flatten:
            return None
        size = get_flattened_obs_dim(space.spaces[key])
        if key == DESIRED_GOAL_KEY:
            return slice(start, start + size)
        start += size
    return None


def critic_relu_mlps(critic: Any) -> list[ReluMLP] | None:
    """The Q-networks of an SB3 ``ContinuousCritic`` as ReLU MLPs, or None if any is not one.

    :param critic: a critic (online or target).
    :return: one list of linear layers per Q head (see :func:`.input_gradient.relu_mlp`).
    """
    if not isinstance(critic, ContinuousCritic) or critic.share_features_extractor:
        return None
    networks = [relu_mlp(network) for network in critic.q_networks]
    if any(network is None or network[-1].out_features != 1 for network in networks):
        return None
    return networks  # type: ignore[return-value]


def critic_values_and_goal_gradients(
    critic: Any, observations: dict[str, th.Tensor], actions: th.Tensor
) -> list[tuple[th.Tensor, th.Tensor]] | None:
    """Every head's ``(Q, grad_g Q)`` without double backward, for SB3 critics of ReLU MLPs.

    Both are differentiable (once) with respect to the critic's parameters.

    :param critic: an SB3 ``ContinuousCritic`` with a flattening extractor (anything else gives None).
    :param observations: Dict observations (no gradient needed).
    :param actions: the actions.
    :return: one pair per head, the gradient shaped like the goal; or None when the critic has
        another shape (use autograd then).
    """
    networks = critic_relu_mlps(critic)
    columns = goal_columns(critic)
    if networks is None or columns is None:
        return None
    features = critic.extract_features(observations, critic.features_extractor)
    inputs = th.cat([features, actions], dim=1)
    goal_shape = observations[DESIRED_GOAL_KEY].shape
    pairs = []
    for layers in networks:
        values, gradient = relu_mlp_value_and_input_gradient(layers, inputs, columns)
        pairs.append((values, gradient.reshape(goal_shape)))
    return pairs


def critic_loss_terms(
    critic: Any,
    replay_data: Any,
    target_q_values: th.Tensor,
    target_gradient: th.Tensor,
    scale: float = 1.0,
    explicit_gradient: bool = True,
) -> tuple[th.Tensor, th.Tensor]:
    """TD loss and ReenGAGE gradient loss summed over every Q head of ``critic``.

    :param critic: an SB3 continuous critic (``critic(observations, actions)`` returns one tensor per head).
    :param replay_data: the sampled batch (Dict observations with a ``desired_goal``).
    :param target_q_values: ``y``, shape ``(batch, 1)``.
    :param target_gradient: ``grad_g' y``, shaped like the goal.
    :param scale: factor on both sums (SAC's critic loss is ``0.5 * sum``; TD3/DDPG use 1).
    :param explicit_gradient: for SB3 critics made of ``Linear``/``ReLU`` layers, compute
        ``grad_g Q`` and the loss's backward in closed form (:mod:`.input_gradient`) instead of
        double backward: the same loss, about a third fewer large matrix products. Other critics
        always use autograd.
    :return: ``(td_loss, grad_loss)``, scalar tensors.
    """
    pairs = None
    if explicit_gradient:
        pairs = critic_values_and_goal_gradients(critic, replay_data.observations, replay_data.actions)
    if pairs is None:
        observations, goal = with_goal(replay_data.observations)
        current_q_values = critic(observations, replay_data.actions)
        pairs = [
            (current_q, goal_gradient(current_q, goal, create_graph=True)) for current_q in current_q_values
        ]
    td_loss = sum(F.mse_loss(current_q, target_q_values) for current_q, _ in pairs)
    grad_loss = sum(
        reengage_gradient_loss(critic_gradient, target_gradient, replay_data.rewards)
        for _, critic_gradient in pairs
    )
    assert isinstance(td_loss, th.Tensor) and isinstance(grad_loss, th.Tensor)
    if scale != 1.0:
        td_loss, grad_loss = scale * td_loss, scale * grad_loss
    return td_loss, grad_loss
