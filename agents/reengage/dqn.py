"""ReenGAGE on DQN (discrete actions, e.g. zoo/BitFlip-v0)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch as th
from stable_baselines3 import DQN
from torch.nn import functional as F

from zoo.envs.base import check_real

from .loss import (
    check_goal_observation_space,
    check_gradient_reg,
    check_sparse_rewards,
    goal_gradient,
    reengage_gradient_loss,
    with_goal,
)

__all__ = ["DEFAULT_DQN_GRADIENT_REG", "DEFAULT_GRADIENT_TEMPERATURE", "SOFT_VALUES", "ReenGAGEDQN"]

#: Default temperature of the soft target whose goal gradient the DQN critic matches; the
#: paper's grid is 0, 0.5 and 1 (Appendix, "ReenGAGE for Discrete Actions").
DEFAULT_GRADIENT_TEMPERATURE = 0.5
#: Default weight: the paper's ``alpha = 0.5 / d`` with its loss summed over the d goal
#: dimensions, i.e. 0.5 on our mean over dimensions (its grid: 0.5 / d and 1 / d).
DEFAULT_DQN_GRADIENT_REG = 0.5
#: Soft values of the next state: ``"softmax_mean"`` = ``softmax(Q'/tau) . Q'`` (Eq. 31 of the
#: appendix), ``"logsumexp"`` = ``tau * logsumexp(Q'/tau)`` (the first release of this package).
SOFT_VALUES = ("softmax_mean", "logsumexp")


class ReenGAGEDQN(DQN):
    """DQN with a ReenGAGE critic (Levine & Feizi, "Goal-Conditioned Q-Learning as Knowledge
    Distillation", AAAI 2023, https://arxiv.org/abs/2208.13298, discrete-action variant).

    The TD term is DQN's Huber loss against ``r + gamma * (1 - done) * max_a Q'(s', a, g')``,
    unchanged. The gradient term matches ``grad_g Q(s, a, g)`` against
    ``gamma * (1 - done) * grad_g' V_tau(s', g')`` with the paper's soft target (Eqs. 31-32 of
    its appendix, "soft target for the gradient loss only")
    ``V_tau = softmax_a(Q'(s', ., g') / tau) . Q'(s', ., g')``, differentiated through both the
    softmax weights and the Q-values; ``tau = 0`` is the hard ``max_a Q'`` (the gradient of the
    greedy action's Q-value, the paper's "standard DQN target"). The loss is
    ``huber + gradient_reg * mean((-r) * (grad_g Q - target)**2)``.
    Use it with ``HerReplayBuffer`` and rewards in {-1, 0}.

    :param policy: the policy (``"MultiInputPolicy"`` or a DQN policy class).
    :param env: a goal environment (Dict observation with ``desired_goal``) or its id.
    :param gradient_reg: weight of the goal-gradient term (>= 0), a mean over goal dimensions;
        default 0.5, the paper's ``alpha = 0.5 / d`` (grid 0.5 / d, 1 / d). ``0`` gives exactly
        DQN's update (it runs DQN's own ``train``).
    :param gradient_temperature: temperature ``tau`` (>= 0) of the soft target; ``0`` is the hard
        max. Default 0.5, from the paper's grid {0, 0.5, 1}.
    :param soft_value: ``"softmax_mean"`` (the paper's Eq. 31) or ``"logsumexp"``
        (``tau * logsumexp(Q'/tau)``, whose gradient is the softmax-weighted mean of the per-action
        gradients; the first release's; needs ``tau > 0``).
    :param kwargs: every other argument of :class:`stable_baselines3.DQN`.
    """

    policy_aliases: ClassVar[dict[str, Any]] = DQN.policy_aliases

    def __init__(
        self,
        policy: Any,
        env: Any,
        gradient_reg: float = DEFAULT_DQN_GRADIENT_REG,
        gradient_temperature: float = DEFAULT_GRADIENT_TEMPERATURE,
        soft_value: Literal["softmax_mean", "logsumexp"] = "softmax_mean",
        **kwargs: Any,
    ):
        self.gradient_reg = check_gradient_reg(gradient_reg)
        if soft_value not in SOFT_VALUES:
            raise ValueError(f"soft_value={soft_value!r} is not allowed; use one of {SOFT_VALUES}")
        self.soft_value = soft_value
        self.gradient_temperature = check_real(
            "gradient_temperature",
            gradient_temperature,
            0.0,
            exclusive_minimum=soft_value == "logsumexp",
            finite=True,
        )
        super().__init__(policy, env, **kwargs)

    def _setup_model(self) -> None:
        check_goal_observation_space(self.observation_space)
        super()._setup_model()

    def soft_value_of(self, next_q_values: th.Tensor) -> th.Tensor:
        """The soft target value ``V_tau`` of a batch of next-state Q-values.

        :param next_q_values: ``Q'(s', ., g')`` of shape ``(batch, n_actions)``.
        :return: shape ``(batch, 1)``: ``softmax(Q'/tau) . Q'`` (``max Q'`` at ``tau = 0``), or
            ``tau * logsumexp(Q'/tau)`` with ``soft_value="logsumexp"``.
        """
        tau = self.gradient_temperature
        if self.soft_value == "logsumexp":
            return tau * th.logsumexp(next_q_values / tau, dim=1, keepdim=True)
        if tau == 0:
            return next_q_values.max(dim=1, keepdim=True).values
        weights = th.softmax(next_q_values / tau, dim=1)
        return (weights * next_q_values).sum(dim=1, keepdim=True)

    def soft_target_gradient(self, replay_data: Any, discounts: Any) -> th.Tensor:
        """``gamma * (1 - done) * grad_g' V_tau(s', g')`` for a batch (see :meth:`soft_value_of`).

        :param replay_data: a replay batch with Dict observations.
        :param discounts: the discount (a float, or per-sample tensor for n-step returns).
        :return: a tensor shaped like the next observations' goal (a constant).
        """
        next_observations, next_goal = with_goal(replay_data.next_observations)
        with th.enable_grad():
            soft_value = self.soft_value_of(self.q_net_target(next_observations))
            target = (1 - replay_data.dones) * discounts * soft_value
            return goal_gradient(target, next_goal, create_graph=False).detach()

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """Update the Q-network with DQN's Huber loss plus the goal-gradient term.

        :param gradient_steps: number of gradient steps.
        :param batch_size: minibatch size.
        """
        if self.gradient_reg == 0:
            super().train(gradient_steps, batch_size)
            self.logger.record("train/critic_td_loss", self.logger.name_to_value["train/loss"])
            return
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)

        losses: list[float] = []
        td_losses: list[float] = []
        grad_losses: list[float] = []
        for _ in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            check_sparse_rewards(replay_data.rewards)

            with th.no_grad():
                next_q_values = self.q_net_target(replay_data.next_observations)
                next_q_values, _ = next_q_values.max(dim=1)
                next_q_values = next_q_values.reshape(-1, 1)
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values
            target_gradient = self.soft_target_gradient(replay_data, discounts)

            observations, goal = with_goal(replay_data.observations)
            current_q_values = th.gather(self.q_net(observations), dim=1, index=replay_data.actions.long())
            td_loss = F.smooth_l1_loss(current_q_values, target_q_values)
            grad_loss = reengage_gradient_loss(
                goal_gradient(current_q_values, goal, create_graph=True), target_gradient, replay_data.rewards
            )
            loss = td_loss + self.gradient_reg * grad_loss
            losses.append(loss.item())
            td_losses.append(td_loss.item())
            grad_losses.append(grad_loss.item())

            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))
        self.logger.record("train/critic_td_loss", np.mean(td_losses))
        self.logger.record("train/critic_grad_loss", np.mean(grad_losses))
