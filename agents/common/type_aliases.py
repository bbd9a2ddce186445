"""Type aliases shared by the agent families (schedules, coefficients, teachers)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TypeAlias

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy

__all__ = ["CoefficientLike", "Schedule", "TeacherLike", "TeacherSpec"]

#: SB3's convention: a function of ``progress_remaining``, which goes from 1 (start) to 0 (end).
Schedule: TypeAlias = Callable[[float], float]

#: A coefficient given by the user: a number, a schedule of progress, or a schedule string
#: (see :func:`zoo.agents.common.schedules.parse_schedule`).
CoefficientLike: TypeAlias = float | int | str | Schedule

#: One teacher: an SB3 model or policy, a path to a saved model, or a hub repo id.
TeacherLike: TypeAlias = BaseAlgorithm | BasePolicy | str | os.PathLike

#: What a kickstarted agent accepts: one teacher, or a mapping task index -> teacher.
TeacherSpec: TypeAlias = TeacherLike | Mapping[int, TeacherLike]
