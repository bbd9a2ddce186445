"""ReenGAGE on TD3 (and, through :class:`ReenGAGETD3Mixin`, on DDPG)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3 import TD3
from stable_baselines3.common.utils import polyak_update

from zoo.envs.base import check_integer, check_real

from .loss import (
    check_goal_observation_space,
    check_gradient_reg,
    check_sparse_rewards,
    critic_loss_terms,
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


class ReenGAGETD3Mixin:
    """The ReenGAGE critic update for TD3-style algorithms (TD3 and DDPG).

    Mixed in before the SB3 class; with ``gradient_reg == 0`` it runs the parent's own ``train``.
    """

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
        next_observations, next_goal = with_goal(replay_data.next_observations)
        with th.enable_grad():
            # The total derivative: the goal enters both Q' and the target actor's action.
            next_actions = (self.actor_target(next_observations) + noise).clamp(-1, 1)
            next_q_values = th.cat(self.critic_target(next_observations, next_actions), dim=1)
            next_q_values, _ = th.min(next_q_values, dim=1, keepdim=True)
            target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values
            target_gradient = goal_gradient(target_q_values, next_goal, create_graph=False)
        return target_q_values.detach(), target_gradient.detach()

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

        actor_losses: list[float] = []
        critic_losses: list[float] = []
        td_losses: list[float] = []
        grad_losses: list[float] = []
        for _ in range(gradient_steps):
            self._n_updates += 1  # type: ignore[attr-defined]
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[attr-defined]
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma  # type: ignore[attr-defined]
            check_sparse_rewards(replay_data.rewards)

            target_q_values, target_gradient = self._critic_goal_target(replay_data, discounts)

            td_loss, grad_loss = critic_loss_terms(self.critic, replay_data, target_q_values, target_gradient)
            critic_loss = td_loss + self.gradient_reg * grad_loss
            td_losses.append(td_loss.item())
            grad_losses.append(grad_loss.item())
            critic_losses.append(critic_loss.item())

            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            if self._n_updates % self.policy_delay == 0:  # type: ignore[attr-defined]
                actor_loss = -self.critic.q1_forward(
                    replay_data.observations, self.actor(replay_data.observations)
                ).mean()
                actor_losses.append(actor_loss.item())
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
            self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        self.logger.record("train/critic_td_loss", np.mean(td_losses))
        self.logger.record("train/critic_grad_loss", np.mean(grad_losses))


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
