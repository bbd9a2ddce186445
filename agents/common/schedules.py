"""Schedules of a coefficient over training, and the string grammar that names them.

SB3's convention is kept: a schedule is a callable of ``progress_remaining``, which is 1 at
the start of ``learn()`` and 0 at its end. Strings name the common shapes (rl-baselines3-zoo
style), so that hyperparameter files and the CLI can carry them:

================================  ===========================================================
string                            value
================================  ===========================================================
``"0.5"`` / ``"const_0.5"``       0.5 throughout
``"lin_2.0"``                     linear from 2.0 (start) to 0.0 (end of ``learn()``)
``"lin_2.0_0.1"``                 linear from 2.0 (start) to 0.1 (end of ``learn()``)
``"exp_2.0_0.99"``                ``2.0 * 0.99 ** n`` where ``n`` is the number of *updates*
                                  (rollout + gradient phase, i.e. calls to ``train()``)
                                  done before the current one; it does not depend on the
                                  length of ``learn()``
================================  ===========================================================

Numbers are any Python float literals (``3e-4``, ``-1``, ``.5``). Exponential schedules decay
per update rather than per env step so that the same string means the same thing whatever
the number of parallel envs; one update consumes ``n_steps * n_envs`` env steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .type_aliases import CoefficientLike

__all__ = [
    "ConstantSchedule",
    "ExponentialSchedule",
    "LinearSchedule",
    "coefficient_value",
    "parse_schedule",
]


@dataclass(frozen=True)
class ConstantSchedule:
    """The same value throughout.

    :param value: the value.
    """

    value: float

    def __call__(self, progress_remaining: float) -> float:
        return self.value


@dataclass(frozen=True)
class LinearSchedule:
    """Linear interpolation from ``start`` (progress_remaining=1) to ``end`` (progress_remaining=0).

    :param start: value at the start of ``learn()``.
    :param end: value at the end of ``learn()``.
    """

    start: float
    end: float = 0.0

    def __call__(self, progress_remaining: float) -> float:
        return self.end + (self.start - self.end) * progress_remaining


@dataclass(frozen=True)
class ExponentialSchedule:
    """``start * decay ** n_updates``: decays by ``decay`` at every update (call to ``train()``).

    Calling it with ``progress_remaining`` alone is not meaningful; agents call
    :meth:`value_at_update`. :func:`coefficient_value` dispatches between both kinds.

    :param start: value at the first update.
    :param decay: factor applied per update, in (0, 1].
    """

    start: float
    decay: float

    def value_at_update(self, n_updates: int) -> float:
        """:param n_updates: updates already done. :return: the coefficient for the next one."""
        return self.start * self.decay ** max(int(n_updates), 0)

    def __call__(self, progress_remaining: float) -> float:
        raise TypeError("ExponentialSchedule decays per update; call value_at_update(n_updates)")


def _parse_number(text: str, name: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}={spec!r}: {text!r} is not a number; {_GRAMMAR}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name}={spec!r}: {text!r} is not finite; {_GRAMMAR}")
    return value


_GRAMMAR = (
    "allowed: a number, a callable of progress_remaining, or a string "
    "'<x>', 'const_<x>', 'lin_<start>', 'lin_<start>_<end>' or 'exp_<start>_<decay per update>'"
)


def parse_schedule(
    value: CoefficientLike, name: str = "coefficient", non_negative: bool = True
) -> Callable[[float], float] | ExponentialSchedule:
    """Turn a number, a schedule string or a callable into a schedule.

    :param value: a float/int, a schedule string (see the module docstring) or a callable of
        ``progress_remaining``.
    :param name: the parameter's name, used in error messages.
    :param non_negative: reject negative constants and string endpoints.
    :return: a schedule (callable of ``progress_remaining``) or an :class:`ExponentialSchedule`.
    :raises ValueError: on a malformed string, a negative value (when ``non_negative``), a
        decay outside (0, 1], or a value of another type.
    """
    if isinstance(value, bool):
        raise ValueError(f"{name}={value!r}: a bool is not a coefficient; {_GRAMMAR}")
    if isinstance(value, (int, float)):
        number = float(value)
        if not math.isfinite(number) or (non_negative and number < 0):
            raise ValueError(f"{name}={value!r} must be a finite number >= 0; {_GRAMMAR}")
        return ConstantSchedule(number)
    if isinstance(value, str):
        parts = value.strip().split("_")
        kind = parts[0]
        if len(parts) == 1:
            schedule: Callable[[float], float] | ExponentialSchedule = ConstantSchedule(
                _parse_number(kind, name, value)
            )
            numbers = [schedule.value]  # type: ignore[union-attr]
        elif kind == "const" and len(parts) == 2:
            numbers = [_parse_number(parts[1], name, value)]
            schedule = ConstantSchedule(numbers[0])
        elif kind == "lin" and len(parts) in (2, 3):
            numbers = [_parse_number(p, name, value) for p in parts[1:]]
            schedule = LinearSchedule(*numbers)
        elif kind == "exp" and len(parts) == 3:
            start, decay = (_parse_number(p, name, value) for p in parts[1:])
            if not 0.0 < decay <= 1.0:
                raise ValueError(f"{name}={value!r}: decay {decay} must be in (0, 1]")
            numbers = [start]
            schedule = ExponentialSchedule(start, decay)
        else:
            raise ValueError(f"{name}={value!r} is not a valid schedule string; {_GRAMMAR}")
        if non_negative and min(numbers) < 0:
            raise ValueError(f"{name}={value!r} must not be negative; {_GRAMMAR}")
        return schedule
    if isinstance(value, ExponentialSchedule) or callable(value):
        return value
    raise ValueError(f"{name}={value!r} (type {type(value).__name__}) is not a coefficient; {_GRAMMAR}")


def coefficient_value(
    schedule: Callable[[float], float] | ExponentialSchedule, progress_remaining: float, n_updates: int
) -> float:
    """Evaluate any schedule from :func:`parse_schedule`.

    :param schedule: the schedule.
    :param progress_remaining: SB3's progress, 1 -> 0 over ``learn()``.
    :param n_updates: updates already done (for :class:`ExponentialSchedule`).
    :return: the coefficient as a float.
    """
    if isinstance(schedule, ExponentialSchedule):
        return schedule.value_at_update(n_updates)
    # SB3 finishes the rollout in progress when learn()'s budget is not a multiple of the rollout
    # size, so progress_remaining can dip just below 0 on the last update: clamp it.
    return float(schedule(min(max(progress_remaining, 0.0), 1.0)))
