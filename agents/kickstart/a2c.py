"""Kickstarted A2C: A2C's loss plus the kickstarting term, in one gradient step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3 import A2C
from stable_baselines3.common.utils import explained_variance
from torch.nn import functional as F

from zoo.agents.common.type_aliases import CoefficientLike, TeacherSpec

from .buffers import TaskIndexRolloutBuffer
from .distill import KickstartMixin

__all__ = ["KickstartedA2C"]


class KickstartedA2C(KickstartMixin, A2C):
    """A2C kickstarted from one teacher or one teacher per task (Schmitt et al. 2018).

    Paper: "Kickstarting Deep Reinforcement Learning", https://arxiv.org/abs/1803.03835.
    The loss of the (single, whole-rollout) gradient step is A2C's loss plus
    ``λ_k · H(π_teacher(·|x) ‖ π_student(·|x))`` on the states the student visited. Every argument
    of :class:`stable_baselines3.A2C` is accepted, plus:

    :param teacher: an SB3 model or policy; a path to an SB3 ``.zip`` or to a directory written
        by ``zoo.hub.save_agent``; a hub repo id; or a mapping task index -> teacher (see
        :class:`~zoo.agents.kickstart.ppo.KickstartedPPO`). Teachers are frozen and never saved.
    :param kickstart_coef: λ_k: a number, a schedule of ``progress_remaining``, a schedule string
        (:mod:`zoo.agents.common.schedules`), or a mapping with the teacher mapping's keys.
    :param kickstart_loss: ``"cross_entropy"`` (default) or ``"kl"`` (same gradient).
    """

    _task_buffer_class = TaskIndexRolloutBuffer

    def __init__(
        self,
        policy: Any,
        env: Any,
        *args: Any,
        teacher: TeacherSpec | None = None,
        kickstart_coef: CoefficientLike | Mapping[int, CoefficientLike] = 1.0,
        kickstart_loss: str = "cross_entropy",
        **kwargs: Any,
    ) -> None:
        self._init_kickstart(teacher, kickstart_coef, kickstart_loss)
        super().__init__(policy, env, *args, **kwargs)

    def _setup_model(self) -> None:
        self._kickstart_before_setup()
        super()._setup_model()
        self._kickstart_after_setup()

    def train(self) -> None:
        """One A2C gradient step on the whole rollout, the kickstarting term in the same loss.

        Follows SB3's ``A2C.train`` operation for operation, so that with no active teacher the
        update is the plain one bit for bit.
        """
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        with self._kickstart_update() as coefficients:
            need_distribution = any(value > 0 for value in coefficients.values())

            for rollout_data in self.rollout_buffer.get(batch_size=None):
                actions = rollout_data.actions
                if isinstance(self.action_space, spaces.Discrete):
                    actions = actions.long().flatten()

                def evaluate(data: Any = rollout_data, acts: th.Tensor = actions) -> Any:
                    return self.policy.evaluate_actions(data.observations, acts)

                values, log_prob, entropy, distribution = self._evaluate_with_distribution(
                    evaluate, need_distribution
                )
                values = values.flatten()

                advantages = rollout_data.advantages
                if self.normalize_advantage:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

                policy_loss = -(advantages * log_prob).mean()
                value_loss = F.mse_loss(rollout_data.returns, values)
                if entropy is None:
                    entropy_loss = -th.mean(-log_prob)
                else:
                    entropy_loss = -th.mean(entropy)

                loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss
                if need_distribution:
                    if distribution is None:
                        distribution = self._student_distribution_fallback(rollout_data)
                    kickstart = self._kickstart_term(coefficients, rollout_data, distribution)
                    if kickstart is not None:
                        loss = loss + kickstart

                self.policy.optimizer.zero_grad()
                loss.backward()
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.policy.optimizer.step()

            explained_var = explained_variance(
                self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten()
            )
            self._n_updates += 1
            self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
            self.logger.record("train/explained_variance", explained_var)
            self.logger.record("train/entropy_loss", entropy_loss.item())
            self.logger.record("train/policy_loss", policy_loss.item())
            self.logger.record("train/value_loss", value_loss.item())
            if hasattr(self.policy, "log_std"):
                self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
