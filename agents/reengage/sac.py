"""ReenGAGE on SAC."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.utils import polyak_update

from .loss import (
    check_goal_observation_space,
    check_gradient_reg,
    check_sparse_rewards,
    critic_loss_terms,
    goal_gradient,
    with_goal,
)
from .td3 import DEFAULT_GRADIENT_REG, check_critic_sees_goal

__all__ = ["ReenGAGESAC"]


class ReenGAGESAC(SAC):
    """SAC with a ReenGAGE critic (Levine & Feizi, "Goal-Conditioned Q-Learning as Knowledge
    Distillation", AAAI 2023, https://arxiv.org/abs/2208.13298).

    The soft TD target is ``y = r + gamma * (1 - done) * (min_k Q'_k(s', a', g') - ent_coef * log pi(a'|s', g'))``
    with ``a'`` the current actor's reparameterised sample. Its gradient with respect to the goal
    ``g'`` goes through ``Q'``, through ``a'`` (the sampled noise held fixed) and through the entropy
    term. The critic loss is SAC's ``0.5 * sum_k MSE(Q_k, y)`` plus
    ``gradient_reg * 0.5 * sum_k mean((-r) * (grad_g Q_k - grad_g' y)**2)``; the actor and entropy
    coefficient are updated as in SAC. Use it with ``HerReplayBuffer`` and rewards in {-1, 0}.

    :param policy: the policy (``"MultiInputPolicy"`` or a SAC policy class).
    :param env: a goal environment (Dict observation with ``desired_goal``) or its id.
    :param gradient_reg: weight of the goal-gradient term (>= 0); the term is a mean over goal
        dimensions (``gradient_reg = alpha * d`` for the paper's ``alpha``). ``0`` gives exactly
        SAC's update (it runs SAC's own ``train``).
    :param kwargs: every other argument of :class:`stable_baselines3.SAC`.
    """

    policy_aliases: ClassVar[dict[str, Any]] = SAC.policy_aliases

    def __init__(self, policy: Any, env: Any, gradient_reg: float = DEFAULT_GRADIENT_REG, **kwargs: Any):
        self.gradient_reg = check_gradient_reg(gradient_reg)
        super().__init__(policy, env, **kwargs)

    def _setup_model(self) -> None:
        check_goal_observation_space(self.observation_space)
        check_critic_sees_goal(self.policy_kwargs, self.gradient_reg)
        super()._setup_model()
        check_critic_sees_goal(self.policy, self.gradient_reg)

    def _critic_goal_target(
        self, replay_data: Any, discounts: Any, ent_coef: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor]:
        """Soft TD target ``y`` and its gradient with respect to the next observation's goal.

        Draws the next action exactly as SAC's target does (same random numbers); the graph reaches
        the goal through the current actor's reparameterised action, the target critics and the
        log-probability.
        """
        next_observations, next_goal = with_goal(replay_data.next_observations)
        with th.enable_grad():
            next_actions, next_log_prob = self.actor.action_log_prob(next_observations)
            next_q_values = th.cat(self.critic_target(next_observations, next_actions), dim=1)
            next_q_values, _ = th.min(next_q_values, dim=1, keepdim=True)
            next_q_values = next_q_values - ent_coef * next_log_prob.reshape(-1, 1)
            target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values
            target_gradient = goal_gradient(target_q_values, next_goal, create_graph=False)
        return target_q_values.detach(), target_gradient.detach()

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """Update critics with TD + goal-gradient losses; actor and entropy as in SAC.

        :param gradient_steps: number of gradient steps.
        :param batch_size: minibatch size.
        """
        if self.gradient_reg == 0:
            super().train(gradient_steps, batch_size)
            self.logger.record("train/critic_td_loss", self.logger.name_to_value["train/critic_loss"])
            return
        check_critic_sees_goal(self.policy, self.gradient_reg)
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers += [self.ent_coef_optimizer]
        self._update_learning_rate(optimizers)

        ent_coef_losses: list[float] = []
        ent_coefs: list[float] = []
        actor_losses: list[float] = []
        critic_losses: list[float] = []
        td_losses: list[float] = []
        grad_losses: list[float] = []
        for gradient_step in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            check_sparse_rewards(replay_data.rewards)
            if self.use_sde:
                self.actor.reset_noise()

            actions_pi, log_prob = self.actor.action_log_prob(replay_data.observations)
            log_prob = log_prob.reshape(-1, 1)

            ent_coef_loss = None
            if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                ent_coef = th.exp(self.log_ent_coef.detach())
                assert isinstance(self.target_entropy, float)
                ent_coef_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
                ent_coef_losses.append(ent_coef_loss.item())
            else:
                ent_coef = self.ent_coef_tensor
            ent_coefs.append(ent_coef.item())
            if ent_coef_loss is not None and self.ent_coef_optimizer is not None:
                self.ent_coef_optimizer.zero_grad()
                ent_coef_loss.backward()
                self.ent_coef_optimizer.step()

            target_q_values, target_gradient = self._critic_goal_target(replay_data, discounts, ent_coef)

            td_loss, grad_loss = critic_loss_terms(
                self.critic, replay_data, target_q_values, target_gradient, scale=0.5
            )
            critic_loss = td_loss + self.gradient_reg * grad_loss
            td_losses.append(td_loss.item())
            grad_losses.append(grad_loss.item())
            critic_losses.append(critic_loss.item())

            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            q_values_pi = th.cat(self.critic(replay_data.observations, actions_pi), dim=1)
            min_qf_pi, _ = th.min(q_values_pi, dim=1, keepdim=True)
            actor_loss = (ent_coef * log_prob - min_qf_pi).mean()
            actor_losses.append(actor_loss.item())
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()

            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", np.mean(ent_coefs))
        self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        self.logger.record("train/critic_td_loss", np.mean(td_losses))
        self.logger.record("train/critic_grad_loss", np.mean(grad_losses))
        if ent_coef_losses:
            self.logger.record("train/ent_coef_loss", np.mean(ent_coef_losses))
