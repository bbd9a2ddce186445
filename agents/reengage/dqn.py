"""ReenGAGE on DQN (discrete actions, e.g. zoo/BitFlip-v0)."""

from __future__ import annotations

from typing import Any, ClassVar

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
from .td3 import DEFAULT_GRADIENT_REG

__all__ = ["DEFAULT_GRADIENT_TEMPERATURE", "ReenGAGEDQN"]

#: Default temperature of the soft maximum whose goal gradient the DQN critic matches.
DEFAULT_GRADIENT_TEMPERATURE = 0.1


class ReenGAGEDQN(DQN):
    """DQN with a ReenGAGE critic (Levine & Feizi, "Goal-Conditioned Q-Learning as Knowledge
    Distillation", AAAI 2023, https://arxiv.org/abs/2208.13298, discrete-action variant).

    The TD term is DQN's Huber loss against ``r + gamma * (1 - done) * max_a Q'(s', a, g')``,
    unchanged. The gradient term matches ``grad_g Q(s, a, g)`` against
    ``gamma * (1 - done) * grad_g' V_tau(s', g')`` with the soft maximum
    ``V_tau = tau * logsumexp_a(Q'(s', a, g') / tau)``, whose gradient is the softmax(Q'/tau)-weighted
    mean of the per-action gradients (the hard max would follow a single action and jump where the
    argmax changes). The loss is ``huber + gradient_reg * mean((-r) * (grad_g Q - target)**2)``.
    Use it with ``HerReplayBuffer`` and rewards in {-1, 0}.

    :param policy: the policy (``"MultiInputPolicy"`` or a DQN policy class).
    :param env: a goal environment (Dict observation with ``desired_goal``) or its id.
    :param gradient_reg: weight of the goal-gradient term (>= 0), a mean over goal dimensions.
        ``0`` gives exactly DQN's update (it runs DQN's own ``train``).
    :param gradient_temperature: temperature ``tau`` (> 0) of the soft maximum of the target's
        gradient; smaller follows the greedy action more closely. Our default, 0.1, is a choice of
        this implementation.
    :param kwargs: every other argument of :class:`stable_baselines3.DQN`.
    """

    policy_aliases: ClassVar[dict[str, Any]] = DQN.policy_aliases

    def __init__(
        self,
        policy: Any,
        env: Any,
        gradient_reg: float = DEFAULT_GRADIENT_REG,
        gradient_temperature: float = DEFAULT_GRADIENT_TEMPERATURE,
        **kwargs: Any,
    ):
        self.gradient_reg = check_gradient_reg(gradient_reg)
        self.gradient_temperature = check_real(
            "gradient_temperature", gradient_temperature, 0.0, exclusive_minimum=True, finite=True
        )
        super().__init__(policy, env, **kwargs)

    def _setup_model(self) -> None:
        check_goal_observation_space(self.observation_space)
        super()._setup_model()

    def soft_target_gradient(self, replay_data: Any, discounts: Any) -> th.Tensor:
        """``gamma * (1 - done) * grad_g' [tau * logsumexp_a Q'(s', a, g') / tau]`` for a batch.

        :param replay_data: a replay batch with Dict observations.
        :param discounts: the discount (a float, or per-sample tensor for n-step returns).
        :return: a tensor shaped like the next observations' goal (a constant).
        """
        next_observations, next_goal = with_goal(replay_data.next_observations)
        with th.enable_grad():
            next_q_values = self.q_net_target(next_observations)
            tau = self.gradient_temperature
            soft_value = tau * th.logsumexp(next_q_values / tau, dim=1, keepdim=True)
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
