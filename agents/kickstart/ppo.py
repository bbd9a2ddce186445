"""Kickstarted PPO: PPO's clipped loss plus the kickstarting term, in one gradient step."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.utils import explained_variance
from torch.nn import functional as F

from zoo.agents.common.type_aliases import CoefficientLike, TeacherSpec

from .buffers import TaskIndexRolloutBuffer
from .distill import KickstartMixin

__all__ = ["KickstartedPPO", "kickstart_ppo_train"]

#: How the PPO variants differ inside the loop: ``"ppo"`` (SB3), ``"maskable"`` (sb3-contrib's
#: MaskablePPO: action masks, no single-sample guard on advantage normalisation) and
#: ``"recurrent"`` (sb3-contrib's RecurrentPPO: padded sequences, every mean masked).
PPOVariant = Literal["ppo", "maskable", "recurrent"]


def _masked_mean(values: th.Tensor, mask: th.Tensor | None) -> th.Tensor:
    return th.mean(values) if mask is None else th.mean(values[mask])


def kickstart_ppo_train(agent: Any, variant: PPOVariant = "ppo") -> None:
    """One PPO update (``n_epochs`` passes over the rollout) with the kickstarting term.

    The loop follows SB3's / sb3-contrib's ``PPO.train`` operation for operation, so that with
    no active teacher the update is the plain one bit for bit; the only addition is
    ``loss += kickstarting term`` before the single ``backward()`` of each minibatch.

    :param agent: a kickstarted PPO-family agent (:class:`KickstartedPPO` or a contrib variant).
    :param variant: which PPO this loop reproduces.
    """
    agent.policy.set_training_mode(True)
    agent._update_learning_rate(agent.policy.optimizer)
    clip_range = agent.clip_range(agent._current_progress_remaining)
    clip_range_vf = None
    if agent.clip_range_vf is not None:
        clip_range_vf = agent.clip_range_vf(agent._current_progress_remaining)
    with agent._kickstart_update() as coefficients:
        need_distribution = any(value > 0 for value in coefficients.values())

        entropy_losses: list[float] = []
        pg_losses: list[float] = []
        value_losses: list[float] = []
        clip_fractions: list[float] = []
        approx_kl_divs: list[Any] = []
        continue_training = True
        loss = th.zeros(())
        for epoch in range(agent.n_epochs):
            approx_kl_divs = []
            for rollout_data in agent.rollout_buffer.get(agent.batch_size):
                actions = rollout_data.actions
                if isinstance(agent.action_space, spaces.Discrete):
                    actions = rollout_data.actions.long().flatten()

                mask = rollout_data.mask > 1e-8 if variant == "recurrent" else None
                evaluate: Callable[[], tuple[th.Tensor, th.Tensor, th.Tensor | None]]
                if variant == "recurrent":

                    def evaluate(data: Any = rollout_data, acts: th.Tensor = actions) -> Any:
                        return agent.policy.evaluate_actions(
                            data.observations, acts, data.lstm_states, data.episode_starts
                        )
                elif variant == "maskable":

                    def evaluate(data: Any = rollout_data, acts: th.Tensor = actions) -> Any:
                        return agent.policy.evaluate_actions(
                            data.observations, acts, action_masks=data.action_masks
                        )
                else:

                    def evaluate(data: Any = rollout_data, acts: th.Tensor = actions) -> Any:
                        return agent.policy.evaluate_actions(data.observations, acts)

                values, log_prob, entropy, distribution = agent._evaluate_with_distribution(
                    evaluate, need_distribution
                )
                values = values.flatten()

                advantages = rollout_data.advantages
                if variant == "recurrent":
                    if agent.normalize_advantage:
                        advantages = (advantages - advantages[mask].mean()) / (advantages[mask].std() + 1e-8)
                elif variant == "maskable":
                    if agent.normalize_advantage:
                        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
                elif agent.normalize_advantage and len(advantages) > 1:
                    # A single-sample minibatch has no spread to normalise by.
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

                ratio = th.exp(log_prob - rollout_data.old_log_prob)
                surrogate_1 = advantages * ratio
                surrogate_2 = advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range)
                if mask is None:
                    policy_loss = -th.min(surrogate_1, surrogate_2).mean()
                else:
                    policy_loss = -th.mean(th.min(surrogate_1, surrogate_2)[mask])
                pg_losses.append(policy_loss.item())
                clip_fractions.append(_masked_mean((th.abs(ratio - 1) > clip_range).float(), mask).item())

                if clip_range_vf is None:
                    values_pred = values
                else:
                    values_pred = rollout_data.old_values + th.clamp(
                        values - rollout_data.old_values, -clip_range_vf, clip_range_vf
                    )
                if mask is None:
                    value_loss = F.mse_loss(rollout_data.returns, values_pred)
                else:
                    value_loss = th.mean(((rollout_data.returns - values_pred) ** 2)[mask])
                value_losses.append(value_loss.item())

                if entropy is None:
                    entropy_loss = -_masked_mean(-log_prob, mask)
                else:
                    entropy_loss = -_masked_mean(entropy, mask)
                entropy_losses.append(entropy_loss.item())

                loss = policy_loss + agent.ent_coef * entropy_loss + agent.vf_coef * value_loss
                if need_distribution:
                    if distribution is None:  # a custom policy that bypasses _get_action_dist_from_latent
                        distribution = agent._student_distribution_fallback(rollout_data)
                    kickstart = agent._kickstart_term(
                        coefficients, rollout_data, distribution, sample_mask=mask
                    )
                    if kickstart is not None:
                        loss = loss + kickstart

                with th.no_grad():
                    log_ratio = log_prob - rollout_data.old_log_prob
                    approx_kl_div = _masked_mean((th.exp(log_ratio) - 1) - log_ratio, mask).cpu().numpy()
                    approx_kl_divs.append(approx_kl_div)

                if agent.target_kl is not None and approx_kl_div > 1.5 * agent.target_kl:
                    continue_training = False
                    if agent.verbose >= 1:
                        print(f"Early stopping at step {epoch} due to reaching max kl: {approx_kl_div:.2f}")
                    break

                agent.policy.optimizer.zero_grad()
                loss.backward()
                th.nn.utils.clip_grad_norm_(agent.policy.parameters(), agent.max_grad_norm)
                agent.policy.optimizer.step()

            agent._n_updates += 1
            if not continue_training:
                break

        explained_var = explained_variance(
            agent.rollout_buffer.values.flatten(), agent.rollout_buffer.returns.flatten()
        )
        agent.logger.record("train/entropy_loss", np.mean(entropy_losses))
        agent.logger.record("train/policy_gradient_loss", np.mean(pg_losses))
        agent.logger.record("train/value_loss", np.mean(value_losses))
        agent.logger.record("train/approx_kl", np.mean(approx_kl_divs))
        agent.logger.record("train/clip_fraction", np.mean(clip_fractions))
        agent.logger.record("train/loss", loss.item())
        agent.logger.record("train/explained_variance", explained_var)
        if variant != "maskable" and hasattr(agent.policy, "log_std"):
            agent.logger.record("train/std", th.exp(agent.policy.log_std).mean().item())
        agent.logger.record("train/n_updates", agent._n_updates, exclude="tensorboard")
        agent.logger.record("train/clip_range", clip_range)
        if clip_range_vf is not None:
            agent.logger.record("train/clip_range_vf", clip_range_vf)


class KickstartedPPO(KickstartMixin, PPO):
    """PPO kickstarted from one teacher or one teacher per task (Schmitt et al. 2018).

    Paper: "Kickstarting Deep Reinforcement Learning", https://arxiv.org/abs/1803.03835.
    The loss of every minibatch is PPO's loss plus
    ``λ_k · H(π_teacher(·|x) ‖ π_student(·|x))`` on the states the student visited, in the same
    gradient step. Every argument of :class:`stable_baselines3.PPO` is accepted, plus:

    :param teacher: an SB3 model or policy; a path to an SB3 ``.zip`` or to a directory written
        by ``zoo.hub.save_agent``; a hub repo id; or a mapping task index -> teacher, where the
        task index is the sub-env's ``task_index`` (see ``zoo.envs.vector.make_multitask_vec_env``):
        each sample is then distilled from its own task's teacher, and tasks without a teacher get
        no term. Teachers must share the student's observation and action spaces (any
        architecture); they are frozen, moved to the student's device and never saved.
    :param kickstart_coef: λ_k: a number, a schedule of ``progress_remaining`` (1 -> 0), or a
        string (``"lin_2.0_0.0"``, ``"exp_2.0_0.99"`` decaying per update; see
        :mod:`zoo.agents.common.schedules`); with a mapping of teachers, a mapping with the same
        keys gives each teacher its own coefficient. Must stay >= 0.
    :param kickstart_loss: ``"cross_entropy"`` (the paper's H(teacher ‖ student)) or ``"kl"``
        (KL(teacher ‖ student): the same gradient, the teacher's entropy subtracted from the value).

    Logged: ``train/kickstart_loss``, ``train/kickstart_coef`` and ``train/teacher_agreement``
    (fraction of samples where student and teacher prefer the same action), plus ``/task_<i>``
    versions with many teachers.
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
        """Update the policy on the rollout: PPO's loss + the kickstarting term, one backward pass."""
        kickstart_ppo_train(self, "ppo")
