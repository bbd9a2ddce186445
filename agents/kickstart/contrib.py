"""Kickstarted sb3-contrib agents: RecurrentPPO and MaskablePPO."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sb3_contrib import MaskablePPO, RecurrentPPO

from zoo.agents.common.type_aliases import CoefficientLike, TeacherSpec

from .buffers import MaskableTaskIndexRolloutBuffer
from .distill import KickstartMixin
from .ppo import kickstart_ppo_train

__all__ = ["KickstartedMaskablePPO", "KickstartedRecurrentPPO"]


class KickstartedRecurrentPPO(KickstartMixin, RecurrentPPO):
    """RecurrentPPO (LSTM policy) kickstarted from a feed-forward teacher (Schmitt et al. 2018).

    The kickstarting term is averaged over the valid (unpadded) steps of the sequences, with the
    same mask as the other losses. The teacher sees each observation alone (no recurrent
    teachers). A mapping of teachers is not supported for this agent. Every argument of
    :class:`sb3_contrib.RecurrentPPO` is accepted, plus:

    :param teacher: an SB3 model or policy, a path to a saved model, or a hub repo id.
    :param kickstart_coef: λ_k: number, schedule or schedule string
        (:mod:`zoo.agents.common.schedules`).
    :param kickstart_loss: ``"cross_entropy"`` (default) or ``"kl"``.
    """

    _task_buffer_class = None
    # Sequences are padded per minibatch: the teacher is evaluated on each minibatch instead.
    _cache_teachers = False

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
        """RecurrentPPO's update with the (masked) kickstarting term in the same loss."""
        kickstart_ppo_train(self, "recurrent")


class KickstartedMaskablePPO(KickstartMixin, MaskablePPO):
    """MaskablePPO kickstarted from one teacher or one teacher per task (Schmitt et al. 2018).

    The student's action mask is applied to the teacher's distribution too (masked actions get
    zero teacher probability, the rest is renormalised), so the student is never pulled towards
    an invalid action. Every argument of :class:`sb3_contrib.MaskablePPO` is accepted, plus:

    :param teacher: as :class:`~zoo.agents.kickstart.ppo.KickstartedPPO`'s (a mapping of task
        index -> teacher included).
    :param kickstart_coef: λ_k: number, schedule, schedule string or per-teacher mapping.
    :param kickstart_loss: ``"cross_entropy"`` (default) or ``"kl"``.
    """

    _task_buffer_class = MaskableTaskIndexRolloutBuffer

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
        """MaskablePPO's update with the kickstarting term (teacher masked alike) in the same loss."""
        kickstart_ppo_train(self, "maskable")
