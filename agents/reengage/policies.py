"""DeepSets actor-critic for many weighted goals (Multi-ReenGAGE, Levine & Feizi 2023).

The desired goal is a set of rows ``(b_i, x_i, ...)``: a weight (gate) ``b_i`` and the goal's
coordinates. A per-goal encoder ``phi`` (linear output) reads ``[x_i, achieved_goal, observation]``; the set
is pooled as ``sum_i b_i**2 * phi_i / n_max`` over all ``n_max`` goal rows, padding included (rows
with ``b_i = 0`` add nothing and are skipped); the critic head reads
``[pooled, achieved_goal, observation, action]`` and the actor head
``[pooled, achieved_goal, observation]``. The actor uses the critic's encoder (the paper's
default) without training it, and its pooled features are constants: neither the actor loss
nor the goal gradient of the target (through ``pi'``) flows through the pooling. These are the
paper's choices (Appendix Table 4 and the reference pooling_td3_policies_with_sharing.py); the
first release's (unscaled sum, ReLU on ``phi``'s output, goal gradient through the actor's
pooling) are reachable with ``pooling="sum"``, ``encoder_output_activation=True`` and
``actor_goal_gradient=True``.
"""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BaseModel, BasePolicy
from stable_baselines3.common.torch_layers import create_mlp
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.td3.policies import TD3Policy
from torch import nn
from torch.func import functional_call

__all__ = [
    "POOLING_MODES",
    "DeepSetsActor",
    "DeepSetsCritic",
    "DeepSetsEncoder",
    "MultiGoalPolicy",
    "check_multi_goal_space",
]

#: ``"mean"``: ``sum_i b_i**2 phi_i / n_max`` (the paper's); ``"sum"``: unscaled.
POOLING_MODES = ("mean", "sum")


def check_multi_goal_space(observation_space: spaces.Space) -> None:
    """Check for ``Dict(observation, achieved_goal, desired_goal)`` with goal rows ``(b_i, x_i, ...)``.

    :param observation_space: the environment's observation space.
    """
    keys = ("observation", "achieved_goal", "desired_goal")
    if not isinstance(observation_space, spaces.Dict) or any(k not in observation_space.spaces for k in keys):
        raise ValueError(
            f"observation_space={observation_space!r} is not allowed: MultiReenGAGE needs a spaces.Dict with "
            f"keys {keys} (e.g. zoo/DriveSeek-v0)"
        )
    for key in keys:
        space = observation_space.spaces[key]
        if not isinstance(space, spaces.Box):
            raise ValueError(f"observation_space[{key!r}]={space!r} is not allowed; use a spaces.Box")
    goal_shape = observation_space.spaces["desired_goal"].shape
    if len(goal_shape) != 2 or goal_shape[1] < 2:
        raise ValueError(
            f"observation_space['desired_goal'].shape={goal_shape} is not allowed: MultiReenGAGE needs goal "
            f"rows (b_i, x_i, ...), a shape (n_goals, 1 + goal_dim) with goal_dim >= 1"
        )
    for key in ("observation", "achieved_goal"):
        if len(observation_space.spaces[key].shape) != 1:
            raise ValueError(
                f"observation_space[{key!r}].shape={observation_space.spaces[key].shape} is not allowed; "
                f"use a flat (1-D) box"
            )


def _as_float(tensor: th.Tensor) -> th.Tensor:
    return tensor if tensor.is_floating_point() else tensor.float()


def _sizes(observation_space: spaces.Dict) -> tuple[int, int, int]:
    goal_dim = int(observation_space.spaces["desired_goal"].shape[1]) - 1
    achieved_dim = int(observation_space.spaces["achieved_goal"].shape[0])
    observation_dim = int(observation_space.spaces["observation"].shape[0])
    return goal_dim, achieved_dim, observation_dim


class DeepSetsEncoder(nn.Module):
    """``sum_i b_i**2 * phi([x_i, achieved_goal, observation])`` over goal rows ``(b_i, x_i)``.

    :param observation_space: the Dict observation space (see :func:`check_multi_goal_space`).
    :param net_arch: hidden layer sizes of ``phi``.
    :param features_dim: output size of ``phi`` (and of the pooled features).
    :param activation_fn: activation of ``phi``'s hidden layers.
    :param pooling: ``"mean"`` (divide the sum by the number of goal rows ``n_max``, padding
        included: the paper's) or ``"sum"``.
    :param output_activation: also apply ``activation_fn`` to ``phi``'s output (False: linear
        output, the paper's).
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        net_arch: list[int],
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        pooling: str = "mean",
        output_activation: bool = False,
    ) -> None:
        super().__init__()
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling={pooling!r} is not allowed; use one of {POOLING_MODES}")
        goal_dim, achieved_dim, observation_dim = _sizes(observation_space)
        layers = create_mlp(goal_dim + achieved_dim + observation_dim, features_dim, net_arch, activation_fn)
        if output_activation:
            layers.append(activation_fn())
        self.phi = nn.Sequential(*layers)
        self.features_dim = features_dim
        n_rows = int(observation_space.spaces["desired_goal"].shape[0])
        self.pool_scale = 1.0 / n_rows if pooling == "mean" else 1.0

    def forward(self, observations: PyTorchObs) -> th.Tensor:
        """Pool the goal set.

        :param observations: dict with ``desired_goal`` ``(batch, n_goals, 1 + goal_dim)``,
            ``achieved_goal`` and ``observation`` ``(batch, dim)``.
        :return: pooled features ``(batch, features_dim)``, differentiable in every input.
        """
        assert isinstance(observations, dict)
        rows = _as_float(observations["desired_goal"])
        achieved = _as_float(observations["achieved_goal"])
        observation = _as_float(observations["observation"])
        gates = rows[..., 0]
        # Padding rows (b_i = 0) add 0 to the sum and have zero gradient: skip them to save time.
        batch_index, goal_index = th.nonzero(gates.detach() != 0, as_tuple=True)
        inputs = th.cat(
            [rows[batch_index, goal_index, 1:], achieved[batch_index], observation[batch_index]], 1
        )
        weights = gates[batch_index, goal_index].pow(2).unsqueeze(1)
        features = self.phi(inputs) * weights
        pooled = th.zeros(rows.shape[0], self.features_dim, dtype=features.dtype, device=features.device)
        pooled = pooled.index_add(0, batch_index, features)
        return pooled * self.pool_scale if self.pool_scale != 1.0 else pooled


def _head_inputs(pooled: th.Tensor, observations: PyTorchObs) -> list[th.Tensor]:
    assert isinstance(observations, dict)
    return [pooled, _as_float(observations["achieved_goal"]), _as_float(observations["observation"])]


class DeepSetsActor(BasePolicy):
    """Deterministic actor on the pooled goal set; uses (does not own or train) a critic's encoder.

    :param observation_space: the Dict observation space.
    :param action_space: a Box action space.
    :param encoder: the critic's :class:`DeepSetsEncoder` (kept as a reference, not a submodule,
        so that its parameters belong to the critic alone: one optimizer, one Polyak update).
    :param net_arch: hidden layer sizes of the actor head.
    :param activation_fn: activation of the head.
    :param goal_gradient: let gradients with respect to the goal rows flow through the pooled
        features (False: the pooled features are constants, as in the paper's code, so the
        target's goal gradient does not pass through ``pi'``).
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Box,
        encoder: DeepSetsEncoder,
        net_arch: list[int],
        activation_fn: type[nn.Module] = nn.ReLU,
        goal_gradient: bool = False,
    ) -> None:
        super().__init__(observation_space, action_space, squash_output=True, normalize_images=False)
        _, achieved_dim, observation_dim = _sizes(observation_space)
        action_dim = int(action_space.shape[0])
        in_dim = encoder.features_dim + achieved_dim + observation_dim
        self.mu = nn.Sequential(*create_mlp(in_dim, action_dim, net_arch, activation_fn, squash_output=True))
        self.net_arch = net_arch
        self.activation_fn = activation_fn
        self.goal_gradient = goal_gradient
        object.__setattr__(self, "shared_encoder", encoder)

    def _pooled(self, observations: PyTorchObs) -> th.Tensor:
        encoder: DeepSetsEncoder = self.shared_encoder  # type: ignore[assignment]
        if not self.goal_gradient:
            with th.no_grad():
                return encoder(observations)
        # Detached parameters: the actor loss must not train the critic's encoder, while the
        # gradient with respect to the goal still flows (ReenGAGE's target differentiates pi').
        parameters = {name: value.detach() for name, value in encoder.named_parameters()}
        return functional_call(encoder, parameters, (observations,))

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        """:param obs: a batch of Dict observations.
        :return: actions in [-1, 1].
        """
        return self.mu(th.cat(_head_inputs(self._pooled(obs), obs), dim=1))

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self(observation)


class DeepSetsCritic(BaseModel):
    """``n_critics`` Q-heads on one DeepSets encoder of the goal set.

    :param observation_space: the Dict observation space.
    :param action_space: a Box action space.
    :param encoder_arch: hidden layer sizes of the per-goal encoder.
    :param features_dim: size of the pooled features.
    :param net_arch: hidden layer sizes of each Q-head.
    :param activation_fn: activation.
    :param n_critics: number of Q-heads (1 for DDPG, 2 for TD3).
    :param pooling: see :class:`DeepSetsEncoder`.
    :param encoder_output_activation: see ``output_activation`` of :class:`DeepSetsEncoder`.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Box,
        encoder_arch: list[int],
        features_dim: int,
        net_arch: list[int],
        activation_fn: type[nn.Module] = nn.ReLU,
        n_critics: int = 1,
        pooling: str = "mean",
        encoder_output_activation: bool = False,
    ) -> None:
        super().__init__(observation_space, action_space, normalize_images=False)
        _, achieved_dim, observation_dim = _sizes(observation_space)
        action_dim = int(action_space.shape[0])
        self.encoder = DeepSetsEncoder(
            observation_space, encoder_arch, features_dim, activation_fn, pooling, encoder_output_activation
        )
        in_dim = features_dim + achieved_dim + observation_dim + action_dim
        self.n_critics = n_critics
        self.q_networks = nn.ModuleList(
            nn.Sequential(*create_mlp(in_dim, 1, net_arch, activation_fn)) for _ in range(n_critics)
        )
        # TD3's train loop reads this attribute of SB3 critics.
        self.share_features_extractor = False

    def forward(self, obs: PyTorchObs, actions: th.Tensor) -> tuple[th.Tensor, ...]:
        """:param obs: a batch of Dict observations.
        :param actions: a batch of actions.
        :return: one ``(batch, 1)`` Q-value tensor per head.
        """
        inputs = th.cat([*_head_inputs(self.encoder(obs), obs), actions], dim=1)
        return tuple(q_network(inputs) for q_network in self.q_networks)

    def q1_forward(self, obs: PyTorchObs, actions: th.Tensor) -> th.Tensor:
        """:param obs: a batch of Dict observations.
        :param actions: a batch of actions.
        :return: the first head's Q-values.
        """
        inputs = th.cat([*_head_inputs(self.encoder(obs), obs), actions], dim=1)
        return self.q_networks[0](inputs)


class MultiGoalPolicy(TD3Policy):
    """TD3/DDPG policy with a DeepSets critic and an actor sharing its encoder (Multi-ReenGAGE).

    :param observation_space: ``Dict(observation, achieved_goal, desired_goal)`` with goal rows
        ``(b_i, x_i, ...)`` (see :func:`check_multi_goal_space`).
    :param action_space: a Box action space.
    :param lr_schedule: learning-rate schedule.
    :param net_arch: hidden sizes of the actor and critic heads (a list, or a dict with ``pi`` and
        ``qf``); default ``[400]`` (Table 4 of the paper's appendix).
    :param encoder_arch: hidden sizes of the per-goal encoder; default ``[400, 400]`` (Table 4).
    :param features_dim: size of the pooled goal-set features (the goal embedding); default 20
        (Table 4).
    :param activation_fn: activation of every network.
    :param optimizer_class: optimizer.
    :param optimizer_kwargs: optimizer arguments other than the learning rate.
    :param n_critics: number of Q-heads (1 for DDPG, 2 for TD3).
    :param pooling: ``"mean"`` (``sum_i b_i**2 phi_i / n_max``, the paper's) or ``"sum"`` (v0 of
        this package).
    :param encoder_output_activation: ReLU on the encoder's output (False: linear, the paper's).
    :param actor_goal_gradient: let goal gradients flow through the actors' pooling, so that the
        target's goal gradient includes the path through ``pi'`` (False: the paper's code, where
        the actor pools without gradient).
    """

    actor: DeepSetsActor  # type: ignore[assignment]
    actor_target: DeepSetsActor  # type: ignore[assignment]
    critic: DeepSetsCritic  # type: ignore[assignment]
    critic_target: DeepSetsCritic  # type: ignore[assignment]

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        encoder_arch: list[int] | None = None,
        features_dim: int = 20,
        activation_fn: type[nn.Module] = nn.ReLU,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        n_critics: int = 1,
        pooling: str = "mean",
        encoder_output_activation: bool = False,
        actor_goal_gradient: bool = False,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("share_features_extractor"):
            raise ValueError(
                "share_features_extractor=True is not allowed for MultiGoalPolicy: the actor already uses "
                "the critic's DeepSets encoder, and SB3's sharing would compute it without gradient, cutting "
                "the goal gradient that ReenGAGE distils"
            )
        check_multi_goal_space(observation_space)
        if isinstance(features_dim, bool) or not isinstance(features_dim, int) or features_dim < 1:
            raise ValueError(f"features_dim={features_dim!r} is not allowed; use an integer >= 1")
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling={pooling!r} is not allowed; use one of {POOLING_MODES}")
        for name, flag in (
            ("encoder_output_activation", encoder_output_activation),
            ("actor_goal_gradient", actor_goal_gradient),
        ):
            if not isinstance(flag, bool):
                raise ValueError(f"{name}={flag!r} is not allowed; use True or False")
        self.encoder_arch = list(encoder_arch) if encoder_arch is not None else [400, 400]
        self.features_dim_ = features_dim
        self.pooling = pooling
        self.encoder_output_activation = encoder_output_activation
        self.actor_goal_gradient = actor_goal_gradient
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=net_arch if net_arch is not None else [400],
            activation_fn=activation_fn,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            n_critics=n_critics,
            share_features_extractor=False,
            normalize_images=False,
        )

    def _build(self, lr_schedule: Schedule) -> None:
        assert isinstance(self.observation_space, spaces.Dict) and isinstance(self.action_space, spaces.Box)
        self.critic = self.make_critic()
        self.critic_target = self.make_critic()
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.actor = self.make_actor_on(self.critic.encoder)
        self.actor_target = self.make_actor_on(self.critic_target.encoder)
        self.actor_target.load_state_dict(self.actor.state_dict())
        self.actor.optimizer = self.optimizer_class(
            self.actor.parameters(),
            lr=lr_schedule(1),  # type: ignore[call-arg]
            **self.optimizer_kwargs,
        )
        self.critic.optimizer = self.optimizer_class(
            self.critic.parameters(),
            lr=lr_schedule(1),  # type: ignore[call-arg]
            **self.optimizer_kwargs,
        )
        self.actor_target.set_training_mode(False)
        self.critic_target.set_training_mode(False)

    def make_actor_on(self, encoder: DeepSetsEncoder) -> DeepSetsActor:
        """Build an actor head that reads ``encoder``.

        :param encoder: the (online or target) critic's encoder.
        :return: the actor, on this policy's device.
        """
        assert isinstance(self.observation_space, spaces.Dict) and isinstance(self.action_space, spaces.Box)
        return DeepSetsActor(
            self.observation_space,
            self.action_space,
            encoder,
            self.actor_kwargs["net_arch"],
            self.activation_fn,
            self.actor_goal_gradient,
        ).to(self.device)

    def make_critic(self, features_extractor: Any = None) -> DeepSetsCritic:  # type: ignore[override]
        """Build a DeepSets critic.

        :param features_extractor: must be None (the critic owns its encoder).
        :return: the critic, on this policy's device.
        """
        assert features_extractor is None
        assert isinstance(self.observation_space, spaces.Dict) and isinstance(self.action_space, spaces.Box)
        return DeepSetsCritic(
            self.observation_space,
            self.action_space,
            self.encoder_arch,
            self.features_dim_,
            self.critic_kwargs["net_arch"],
            self.activation_fn,
            self.critic_kwargs["n_critics"],
            self.pooling,
            self.encoder_output_activation,
        ).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        for key in ("features_extractor_class", "features_extractor_kwargs", "share_features_extractor"):
            data.pop(key, None)
        data.update(
            encoder_arch=self.encoder_arch,
            features_dim=self.features_dim_,
            pooling=self.pooling,
            encoder_output_activation=self.encoder_output_activation,
            actor_goal_gradient=self.actor_goal_gradient,
        )
        return data
