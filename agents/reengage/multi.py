"""Multi-ReenGAGE: many simultaneous weighted sparse goals (Levine & Feizi 2023, Section on Multi-ReenGAGE)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3 import TD3, HerReplayBuffer
from stable_baselines3.common.utils import polyak_update
from torch.nn import functional as F

from .loss import check_gradient_reg, goal_gradient, with_goal
from .policies import MultiGoalPolicy, check_multi_goal_space
from .td3 import check_critic_sees_goal, check_target_smoothing

__all__ = ["DEFAULT_MULTI_GRADIENT_REG", "GoalRewardFn", "MultiReenGAGE", "cell_goal_rewards"]

#: Default weight of the gradient term: ``alpha = 10 / n_max`` of the paper with its loss summed
#: over the ``n_max = 200`` goal rows, i.e. 10 on our mean over rows (the paper's grid is 5, 10, 20).
DEFAULT_MULTI_GRADIENT_REG = 10.0

#: ``(achieved_goal (batch, d), goal_rows (batch, n, 1 + d)) -> per-goal rewards R_i (batch, n)``.
GoalRewardFn = Callable[[th.Tensor, th.Tensor], th.Tensor]


def cell_goal_rewards(achieved_goal: th.Tensor, goal_rows: th.Tensor) -> th.Tensor:
    """Per-goal rewards of zoo/DriveSeek-v0 and zoo/NoisySeek-v0: ``R_i = [achieved_goal == x_i]``.

    :param achieved_goal: achieved goals ``(batch, d)`` (the rounded cell).
    :param goal_rows: goal rows ``(batch, n, 1 + d)``, ``(b_i, x_i)``.
    :return: float tensor ``(batch, n)``.
    """
    return (goal_rows[..., 1:] == achieved_goal.unsqueeze(1)).all(dim=-1).to(goal_rows.dtype)


class MultiReenGAGE(TD3):
    """Multi-ReenGAGE (Levine & Feizi, "Goal-Conditioned Q-Learning as Knowledge Distillation",
    AAAI 2023, https://arxiv.org/abs/2208.13298): DDPG/TD3 for many simultaneous sparse goals.

    The desired goal is a set of rows ``(b_i, x_i)``, the reward ``r = sum_i b_i**2 R_i`` with
    per-goal sparse rewards ``R_i``. The critic is a DeepSets network (:class:`MultiGoalPolicy`:
    per-goal encoder on ``[x_i, achieved_goal, observation]`` pooled with gates ``b_i**2`` and divided
    by ``n_max``; the actor uses the critic's encoder). Besides the TD loss the critic matches its
    gradient with respect to the weights, ``dQ(s, a, g)/db_i``, to that of the target
    ``y = r + gamma * (1 - done) * Q'(s', pi'(s', g), g)``, i.e.
    ``dy/db_i = 2 b_i R_i + gamma * (1 - done) * dQ'(s', a', g)/db_i`` with ``a' = pi'(s', g)`` held
    fixed, as in the paper's code (with ``policy_kwargs={"actor_goal_gradient": True}`` the path
    through ``pi'`` is included too) (``2 R_i`` for the real goals,
    ``b_i = 1``; padding rows with ``b_i = 0`` contribute zero on both sides). ``R_i`` is recomputed
    from the transition by ``goal_reward_fn`` and checked against the stored reward. The loss is
    ``sum_k MSE(Q_k, y) + gradient_reg * sum_k mean_{batch, i} (dQ_k/db_i - dy/db_i)**2``.
    No HER: use the default (Dict) replay buffer. The defaults reproduce DDPG (one critic, no target
    smoothing, no policy delay); pass ``policy_delay=2, target_policy_noise=0.2,
    target_noise_clip=0.5, policy_kwargs={"n_critics": 2}`` for TD3.

    :param policy: ``"MultiGoalPolicy"`` or a subclass of :class:`MultiGoalPolicy`.
    :param env: an environment with goal rows, e.g. ``zoo/DriveSeek-v0`` or ``zoo/NoisySeek-v0``.
    :param gradient_reg: weight of the gradient term (>= 0), on the mean over goal rows; default 10,
        the paper's ``alpha = 10 / n_max`` (its grid: 5, 10, 20 over ``n_max``; NoisySeek also 50, 100).
        ``0`` gives exactly the parent's (DDPG/TD3) update with the DeepSets policy.
    :param goal_reward_fn: ``(achieved_goal, goal_rows) -> R`` of shape ``(batch, n_goals)`` on
        torch tensors, evaluated on the next observation; default :func:`cell_goal_rewards`
        (the zoo's DriveSeek and NoisySeek).
    :param policy_delay: see :class:`stable_baselines3.TD3` (default 1, as DDPG).
    :param target_policy_noise: see :class:`stable_baselines3.TD3` (default 0.1 with clip 0: none).
    :param target_noise_clip: see :class:`stable_baselines3.TD3` (default 0.0, as DDPG).
    :param kwargs: every other argument of :class:`stable_baselines3.TD3`.
    """

    policy_aliases: ClassVar[dict[str, Any]] = {"MultiGoalPolicy": MultiGoalPolicy}
    policy: MultiGoalPolicy  # type: ignore[assignment]

    def __init__(
        self,
        policy: Any,
        env: Any,
        gradient_reg: float = DEFAULT_MULTI_GRADIENT_REG,
        goal_reward_fn: GoalRewardFn | None = None,
        policy_delay: int = 1,
        target_policy_noise: float = 0.1,
        target_noise_clip: float = 0.0,
        **kwargs: Any,
    ):
        self.gradient_reg = check_gradient_reg(gradient_reg)
        check_target_smoothing(policy_delay, target_policy_noise, target_noise_clip)
        if goal_reward_fn is not None and not callable(goal_reward_fn):
            raise ValueError(f"goal_reward_fn={goal_reward_fn!r} is not allowed; use a callable or None")
        self.goal_reward_fn = goal_reward_fn
        buffer_class = kwargs.get("replay_buffer_class")
        if isinstance(buffer_class, type) and issubclass(buffer_class, HerReplayBuffer):
            raise ValueError(
                f"replay_buffer_class={buffer_class.__name__} is not allowed: MultiReenGAGE "
                f"learns all goals at once and uses the plain replay buffer (leave it None)"
            )
        super().__init__(
            policy,
            env,
            policy_delay=policy_delay,
            target_policy_noise=target_policy_noise,
            target_noise_clip=target_noise_clip,
            **kwargs,
        )

    def _setup_model(self) -> None:
        check_multi_goal_space(self.observation_space)
        self.policy_kwargs.setdefault("n_critics", 1)
        super()._setup_model()
        check_critic_sees_goal(self.policy, self.gradient_reg)

    def _excluded_save_params(self) -> list[str]:
        # A user function is not data: it is passed again to ``load(..., goal_reward_fn=...)``.
        return [*super()._excluded_save_params(), "goal_reward_fn"]

    def goal_rewards(self, replay_data: Any) -> th.Tensor:
        """Per-goal rewards ``R_i`` of a batch, checked against ``sum_i b_i**2 R_i == r``.

        :param replay_data: a replay batch.
        :return: tensor ``(batch, n_goals)``.
        """
        rows = replay_data.next_observations["desired_goal"]
        reward_fn = self.goal_reward_fn if self.goal_reward_fn is not None else cell_goal_rewards
        rewards = reward_fn(replay_data.next_observations["achieved_goal"], rows)
        recomputed = (rows[..., 0].pow(2) * rewards).sum(dim=1, keepdim=True)
        if not th.allclose(recomputed, replay_data.rewards.to(recomputed.dtype), atol=1e-4):
            raise ValueError(
                "goal_reward_fn does not reproduce the stored rewards (sum_i b_i**2 R_i != r): pass the "
                "environment's per-goal reward as goal_reward_fn=(achieved_goal, goal_rows) -> R"
            )
        return rewards

    def _target_and_weight_gradient(
        self, replay_data: Any, discounts: Any, goal_rewards: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor]:
        """TD target ``y`` and ``dy/db_i`` (shape ``(batch, n_goals)``), both constants.

        Draws the target policy noise as TD3 does.
        """
        noise = replay_data.actions.clone().data.normal_(0, self.target_policy_noise)
        noise = noise.clamp(-self.target_noise_clip, self.target_noise_clip)
        next_observations, next_goal = with_goal(replay_data.next_observations)
        with th.enable_grad():
            next_actions = (self.actor_target(next_observations) + noise).clamp(-1, 1)
            next_q_values = th.cat(self.critic_target(next_observations, next_actions), dim=1)
            next_q_values, _ = th.min(next_q_values, dim=1, keepdim=True)
            target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values
            future_gradient = goal_gradient(target_q_values, next_goal, create_graph=False)[..., 0]
        weights = next_goal.detach()[..., 0]
        # d r / d b_i = 2 b_i R_i: the stored reward is a constant in the graph above.
        target_gradient = future_gradient + 2 * weights * goal_rewards
        return target_q_values.detach(), target_gradient.detach()

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """Update the DeepSets critic(s) with TD + weight-gradient losses, the actor as DDPG/TD3.

        :param gradient_steps: number of gradient steps.
        :param batch_size: minibatch size.
        """
        if self.gradient_reg == 0:
            super().train(gradient_steps, batch_size)
            self.logger.record("train/critic_td_loss", self.logger.name_to_value["train/critic_loss"])
            return
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])

        actor_losses: list[float] = []
        critic_losses: list[float] = []
        td_losses: list[float] = []
        grad_losses: list[float] = []
        for _ in range(gradient_steps):
            self._n_updates += 1
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            goal_rewards = self.goal_rewards(replay_data)

            target_q_values, target_gradient = self._target_and_weight_gradient(
                replay_data, discounts, goal_rewards
            )

            observations, goal = with_goal(replay_data.observations)
            current_q_values = self.critic(observations, replay_data.actions)
            td_loss = sum(F.mse_loss(current_q, target_q_values) for current_q in current_q_values)
            grad_loss = sum(
                F.mse_loss(goal_gradient(current_q, goal, create_graph=True)[..., 0], target_gradient)
                for current_q in current_q_values
            )
            assert isinstance(td_loss, th.Tensor) and isinstance(grad_loss, th.Tensor)
            critic_loss = td_loss + self.gradient_reg * grad_loss
            td_losses.append(td_loss.item())
            grad_losses.append(grad_loss.item())
            critic_losses.append(critic_loss.item())

            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            if self._n_updates % self.policy_delay == 0:
                actor_loss = -self.critic.q1_forward(
                    replay_data.observations, self.actor(replay_data.observations)
                ).mean()
                actor_losses.append(actor_loss.item())
                self.actor.optimizer.zero_grad()
                actor_loss.backward()
                self.actor.optimizer.step()
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.actor.parameters(), self.actor_target.parameters(), self.tau)
                polyak_update(self.critic_batch_norm_stats, self.critic_batch_norm_stats_target, 1.0)
                polyak_update(self.actor_batch_norm_stats, self.actor_batch_norm_stats_target, 1.0)

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if actor_losses:
            self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        self.logger.record("train/critic_td_loss", np.mean(td_losses))
        self.logger.record("train/critic_grad_loss", np.mean(grad_losses))
