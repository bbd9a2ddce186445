"""ReenGAGE on TD3 (and, through :class:`ReenGAGETD3Mixin`, on DDPG)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3 import TD3
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.td3.policies import Actor
from torch import nn

from zoo.envs.base import check_integer, check_real

from .input_gradient import (
    ReluMLP,
    relu_mlp,
    relu_mlp_forward,
    relu_mlp_input_vjp,
    relu_mlp_value_and_input_gradient,
)
from .loss import (
    DESIRED_GOAL_KEY,
    check_goal_observation_space,
    check_gradient_reg,
    check_sparse_rewards,
    critic_loss_terms,
    critic_relu_mlps,
    goal_columns,
    goal_gradient,
    with_goal,
)

__all__ = [
    "DEFAULT_GRADIENT_REG",
    "ReenGAGETD3",
    "ReenGAGETD3Mixin",
    "check_critic_sees_goal",
    "check_target_smoothing",
]

#: Default weight of the goal-gradient term (``alpha * d`` with the paper's ``alpha = 0.2 / d``).
DEFAULT_GRADIENT_REG = 0.2


def check_critic_sees_goal(policy: Any, gradient_reg: float) -> None:
    """Refuse a policy whose critic cannot pass a gradient back to the goal.

    With ``share_features_extractor=True`` SB3's critics compute the shared features under
    ``th.no_grad()`` (the actor owns them), so ``grad_g Q`` would be zero or missing.

    :param policy: the SB3 policy just built, or the ``policy_kwargs`` it is built from.
    :param gradient_reg: weight of the goal-gradient term; nothing is needed when it is 0.
    """
    if isinstance(policy, dict):
        shared = bool(policy.get("share_features_extractor", False))
    else:
        shared = bool(getattr(policy, "share_features_extractor", False))
    if gradient_reg > 0 and shared:
        raise ValueError(
            "policy_kwargs share_features_extractor=True is not allowed with gradient_reg > 0: SB3 critics "
            "compute a shared features extractor without gradient (it is trained by the actor), which cuts "
            "the gradient of Q with respect to the goal that ReenGAGE distils; use "
            "share_features_extractor=False (the default)"
        )


def check_target_smoothing(policy_delay: Any, target_policy_noise: Any, target_noise_clip: Any) -> None:
    """Refuse TD3 arguments that SB3 would only trip over during training (or silently misuse).

    ``policy_delay=0`` divides by zero at the first update; a negative noise scale or clip makes
    ``normal_`` fail or ``clamp(-c, c)`` pin every noise draw to ``-c``.

    :param policy_delay: critic updates per actor update, an integer >= 1.
    :param target_policy_noise: standard deviation of the target policy smoothing noise, >= 0.
    :param target_noise_clip: absolute clip of that noise, >= 0.
    """
    check_integer("policy_delay", policy_delay, 1)
    check_real("target_policy_noise", target_policy_noise, 0.0, finite=True)
    check_real("target_noise_clip", target_noise_clip, 0.0, finite=True)


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Turn off ``requires_grad`` of ``module``'s parameters for a while.

    The actor loss differentiates through the critic to the action only; SB3 also computes the
    critic's weight gradients there and throws them away at the next ``zero_grad``.

    :param module: the module, e.g. the online critic during the actor update.
    """
    parameters = [parameter for parameter in module.parameters() if parameter.requires_grad]
    for parameter in parameters:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in parameters:
            parameter.requires_grad_(True)


def actor_relu_mlp(actor: Any) -> ReluMLP | None:
    """The layers of an SB3 TD3/DDPG ``Actor`` whose ``mu`` is ``Linear``/``ReLU`` then ``Tanh``, or None."""
    if not isinstance(actor, Actor):
        return None
    return relu_mlp(actor.mu, output_activation=nn.Tanh)


class ReenGAGETD3Mixin:
    """The ReenGAGE critic update for TD3-style algorithms (TD3 and DDPG).

    Mixed in before the SB3 class; with ``gradient_reg == 0`` it runs the parent's own ``train``.
    When SB3 built the actor and critics (ReLU MLPs, the default), ``grad_g Q``, ``grad_g' y`` and
    the critic loss's backward are computed in closed form (:mod:`.input_gradient`); set
    ``explicit_gradient = False`` on the model to use autograd's double backward instead (the same
    update up to rounding, slower). Other networks always use autograd.
    """

    #: Closed-form goal gradients for ReLU MLP actors and critics (see the class docstring).
    explicit_gradient: bool = True
    gradient_reg: float
    # Attributes of the SB3 algorithm this is mixed into.
    policy: Any
    actor: Any
    actor_target: Any
    critic: Any
    critic_target: Any
    replay_buffer: Any
    logger: Any

    def _init_reengage(self, gradient_reg: float) -> None:
        self.gradient_reg = check_gradient_reg(gradient_reg)

    def _setup_model(self) -> None:
        check_goal_observation_space(self.observation_space)  # type: ignore[attr-defined]
        check_critic_sees_goal(self.policy_kwargs, self.gradient_reg)  # type: ignore[attr-defined]
        super()._setup_model()  # type: ignore[misc]
        check_critic_sees_goal(self.policy, self.gradient_reg)

    def _critic_goal_target(self, replay_data: Any, discounts: Any) -> tuple[th.Tensor, th.Tensor]:
        """TD target ``y`` and its gradient with respect to the next observation's goal.

        Follows the parent's op order and random draws (target policy noise first).
        """
        noise = replay_data.actions.clone().data.normal_(0, self.target_policy_noise)  # type: ignore[attr-defined]
        noise = noise.clamp(-self.target_noise_clip, self.target_noise_clip)  # type: ignore[attr-defined]
        if self.explicit_gradient:
            actor_layers = actor_relu_mlp(self.actor_target)
            critic_layers = critic_relu_mlps(self.critic_target)
            actor_columns = goal_columns(self.actor_target)
            critic_columns = goal_columns(self.critic_target)
            if (
                actor_layers is not None
                and critic_layers is not None
                and actor_columns is not None
                and critic_columns is not None
            ):
                return self._explicit_goal_target(
                    replay_data, discounts, noise, actor_layers, critic_layers, actor_columns, critic_columns
                )
        next_observations, next_goal = with_goal(replay_data.next_observations)
        with th.enable_grad():
            # The total derivative: the goal enters both Q' and the target actor's action.
            next_actions = (self.actor_target(next_observations) + noise).clamp(-1, 1)
            next_q_values = th.cat(self.critic_target(next_observations, next_actions), dim=1)
            next_q_values, _ = th.min(next_q_values, dim=1, keepdim=True)
            target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values
            target_gradient = goal_gradient(target_q_values, next_goal, create_graph=False)
        return target_q_values.detach(), target_gradient.detach()

    def _explicit_goal_target(
        self,
        replay_data: Any,
        discounts: Any,
        noise: th.Tensor,
        actor_layers: ReluMLP,
        critic_layers: list[ReluMLP],
        actor_columns: slice,
        critic_columns: slice,
    ) -> tuple[th.Tensor, th.Tensor]:
        """:meth:`_critic_goal_target` in closed form, for SB3's actor and critics: no autograd.

        The chain rule of autograd's path, written out: ``dy/dg' = c * (dQ'/dg' + J_pi'^T dQ'/da')``
        with ``c = (1 - done) * gamma``; ``dQ'/da'`` is zero where ``clamp`` saturates and is
        multiplied by ``tanh``'s derivative; the extractors copy the goal into known columns.
        """
        actor, critic = self.actor_target, self.critic_target
        next_observations = replay_data.next_observations
        with th.no_grad():
            actor_features = actor.extract_features(next_observations, actor.features_extractor)
            critic_features = critic.extract_features(next_observations, critic.features_extractor)
            actor_output, actor_hidden = relu_mlp_forward(actor_layers, actor_features)
            squashed = th.tanh(actor_output)
            unclipped = squashed + noise
            next_actions = unclipped.clamp(-1, 1)
            inputs = th.cat([critic_features, next_actions], dim=1)
            # The gradient is wanted for the goal's columns and the action's (the last ones).
            n_features, action_dim = critic_features.shape[1], next_actions.shape[1]
            goal_dim = critic_columns.stop - critic_columns.start
            columns = th.cat(
                [
                    th.arange(critic_columns.start, critic_columns.stop, device=inputs.device),
                    th.arange(n_features, n_features + action_dim, device=inputs.device),
                ]
            )
            pairs = [relu_mlp_value_and_input_gradient(layers, inputs, columns) for layers in critic_layers]
            next_q_values = th.cat([values for values, _ in pairs], dim=1)
            next_q_values, chosen = th.min(next_q_values, dim=1, keepdim=True)
            coefficient = (1 - replay_data.dones) * discounts
            target_q_values = replay_data.rewards + coefficient * next_q_values
            if len(pairs) == 1:
                input_gradient = pairs[0][1]
            else:  # min's gradient goes to the head it picked
                stacked = th.stack([gradient for _, gradient in pairs], dim=1)
                input_gradient = stacked.gather(
                    1, chosen.unsqueeze(2).expand(-1, 1, stacked.shape[2])
                ).squeeze(1)
            input_gradient = coefficient * input_gradient
            action_gradient = input_gradient[:, goal_dim:]
            action_gradient = action_gradient * ((unclipped >= -1) & (unclipped <= 1))
            action_gradient = action_gradient * (1 - squashed * squashed)
            actor_gradient = relu_mlp_input_vjp(actor_layers, actor_hidden, action_gradient, actor_columns)
            target_gradient = input_gradient[:, :goal_dim] + actor_gradient
        return target_q_values, target_gradient.reshape(next_observations[DESIRED_GOAL_KEY].shape)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """Update critic(s) with TD + goal-gradient losses, and the actor as the parent does.

        :param gradient_steps: number of gradient steps.
        :param batch_size: minibatch size.
        """
        if self.gradient_reg == 0:
            super().train(gradient_steps, batch_size)  # type: ignore[misc]
            self.logger.record("train/critic_td_loss", self.logger.name_to_value["train/critic_loss"])
            return
        check_critic_sees_goal(self.policy, self.gradient_reg)
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])  # type: ignore[attr-defined]

        # Losses stay on the device until the end: one host sync per call, not three per step.
        actor_losses: list[th.Tensor] = []
        critic_losses: list[th.Tensor] = []
        td_losses: list[th.Tensor] = []
        grad_losses: list[th.Tensor] = []
        for _ in range(gradient_steps):
            self._n_updates += 1  # type: ignore[attr-defined]
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[attr-defined]
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma  # type: ignore[attr-defined]
            check_sparse_rewards(replay_data.rewards)

            target_q_values, target_gradient = self._critic_goal_target(replay_data, discounts)

            td_loss, grad_loss = critic_loss_terms(
                self.critic,
                replay_data,
                target_q_values,
                target_gradient,
                explicit_gradient=self.explicit_gradient,
            )
            critic_loss = td_loss + self.gradient_reg * grad_loss
            td_losses.append(td_loss.detach())
            grad_losses.append(grad_loss.detach())
            critic_losses.append(critic_loss.detach())

            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            if self._n_updates % self.policy_delay == 0:  # type: ignore[attr-defined]
                with frozen(self.critic):
                    actor_loss = -self.critic.q1_forward(
                        replay_data.observations, self.actor(replay_data.observations)
                    ).mean()
                    actor_losses.append(actor_loss.detach())
                    self.actor.optimizer.zero_grad()
                    actor_loss.backward()
                self.actor.optimizer.step()

                tau = self.tau  # type: ignore[attr-defined]
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), tau)
                polyak_update(self.actor.parameters(), self.actor_target.parameters(), tau)
                polyak_update(self.critic_batch_norm_stats, self.critic_batch_norm_stats_target, 1.0)  # type: ignore[attr-defined]
                polyak_update(self.actor_batch_norm_stats, self.actor_batch_norm_stats_target, 1.0)  # type: ignore[attr-defined]

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")  # type: ignore[attr-defined]
        if actor_losses:
            self.logger.record("train/actor_loss", np.mean(th.stack(actor_losses).tolist()))
        self.logger.record("train/critic_loss", np.mean(th.stack(critic_losses).tolist()))
        self.logger.record("train/critic_td_loss", np.mean(th.stack(td_losses).tolist()))
        self.logger.record("train/critic_grad_loss", np.mean(th.stack(grad_losses).tolist()))


class ReenGAGETD3(ReenGAGETD3Mixin, TD3):
    """TD3 with a ReenGAGE critic (Levine & Feizi, "Goal-Conditioned Q-Learning as Knowledge
    Distillation", AAAI 2023, https://arxiv.org/abs/2208.13298).

    Each critic minimises ``MSE(Q, y) + gradient_reg * mean((-r) * (grad_g Q - grad_g' y)**2)``,
    where ``y = r + gamma * (1 - done) * min_k Q'_k(s', clip(pi'(s', g') + noise), g')`` and the
    gradient of ``y`` is a total derivative through the target actor and target critics (a constant
    for the update). Use it with SB3's ``HerReplayBuffer`` on a goal environment whose rewards are in
    {-1, 0}. The actor update is TD3's.

    :param policy: the policy (``"MultiInputPolicy"`` or a TD3 policy class).
    :param env: a goal environment (Dict observation with ``desired_goal``) or its id.
    :param gradient_reg: weight of the goal-gradient term (>= 0). The term is a mean over goal
        dimensions, so ``gradient_reg = alpha * d`` for the paper's ``alpha`` on the summed squared
        norm; the paper's ``alpha`` in {0.1, 0.2, 0.3}/d is ``gradient_reg`` in {0.1, 0.2, 0.3}.
        ``0`` gives exactly TD3's update (it runs TD3's own ``train``).
    :param kwargs: every other argument of :class:`stable_baselines3.TD3`.
    """

    policy_aliases: ClassVar[dict[str, Any]] = TD3.policy_aliases

    def __init__(self, policy: Any, env: Any, gradient_reg: float = DEFAULT_GRADIENT_REG, **kwargs: Any):
        self._init_reengage(gradient_reg)
        check_target_smoothing(
            kwargs.get("policy_delay", 2),
            kwargs.get("target_policy_noise", 0.2),
            kwargs.get("target_noise_clip", 0.5),
        )
        super().__init__(policy, env, **kwargs)
