"""The adversarial Bernoulli bandit of Algorithm Distillation (one pull per episode)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable
from functools import cache
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from .base import KeysToAction, Split, TaskEnv, check_discrete_action, check_render_mode, check_split

N_ARMS = 10
TASKS_PER_SPLIT = 1000
#: Probability that the best arm has the split's favoured parity.
FAVOURED_PARITY_PROBABILITY = 0.95
_SPLIT_SEEDS = {"train": 2023_0, "test": 2023_1}

BanditTask = tuple[float, ...]


@cache
def _split_tasks(split: str) -> tuple[BanditTask, ...]:
    """Generate the fixed task list of ``"train"`` or ``"test"`` from its fixed seed.

    Each task: ten means drawn U(0, 1); the favoured parity (odd action index for train, even
    for test) is kept with probability 0.95; the best arm is drawn uniformly among the arms
    of the chosen parity and the largest mean is swapped onto it.
    """
    rng = np.random.default_rng(_SPLIT_SEEDS[split])
    favoured = 1 if split == "train" else 0
    result = []
    for _ in range(TASKS_PER_SPLIT):
        means = rng.random(N_ARMS)
        parity = favoured if rng.random() < FAVOURED_PARITY_PROBABILITY else 1 - favoured
        best = parity + 2 * int(rng.integers(N_ARMS // 2))
        top = int(np.argmax(means))
        means[best], means[top] = means[top], means[best]
        result.append(tuple(float(mean) for mean in means))
    return tuple(result)


class AdversarialBanditEnv(TaskEnv):
    """## Description

    A 10-armed Bernoulli bandit whose train and test task distributions disagree, from
    Laskin et al. (2023), "In-context Reinforcement Learning with Algorithm Distillation".
    An episode is a single pull; learning happens across episodes (in context). A task is the
    vector of the ten arm means.

    Arms are numbered by their action index, 0 to 9. Train tasks put the best arm on an odd
    action index (1, 3, 5, 7, 9) with probability 0.95; test tasks put it on an even action
    index (0, 2, 4, 6, 8) with probability 0.95. (Counting arms from 1 instead, the train
    distribution favours the even-numbered arms 2, 4, ..., 10.) Means are U(0, 1); the best
    arm is drawn uniformly among the arms of the chosen parity and takes the largest mean.
    ``tasks("train")`` and ``tasks("test")`` are fixed lists of 1,000 tasks each, generated
    from fixed seeds; ``tasks("all")`` is their concatenation (2,000 tasks).

    ## Action Space

    ``Discrete(10)``: the arm to pull (python int, numpy integer or 0-d integer array).

    Keyboard (``gymnasium.utils.play.play(env, wait_on_player=True)``,
    ``get_keys_to_action()``): digit keys ``0`` to ``9`` pull arms 0 to 9. Pass
    ``wait_on_player=True``: otherwise ``play`` pulls its ``noop=0`` (arm 0) at every frame
    with no key held.

    ## Observation Space

    ``Box(0, 1, (1,), float32)``, always ``[0.0]``: a placeholder, the bandit has no state.

    ## Rewards

    1 with probability ``means[action]``, else 0 (one ``self.np_random.random()`` draw per
    pull). ``info["regret"]`` is ``max(means) - means[action]``.

    ## Starting State

    The constant observation ``[0.0]``.

    ## Episode End

    Every pull terminates the episode (``max_episode_steps=1`` also marks it truncated, as
    Gymnasium's ``TimeLimit`` does).

    ## Arguments

    ``gym.make("zoo/AdversarialBandit-v0", task=None, render_mode=None)``

    - ``task``: ten means in [0, 1] (any such vector, not only listed tasks), kept for every
      episode; ``reset(options={"task": t})`` switches task. With no task ever given every
      reset draws a train task with ``self.np_random``. ``info["task"]`` holds the means.
    - ``render_mode``: ``None`` or ``"rgb_array"`` (a bar chart of the means, the last pulled
      arm highlighted).

    ## Registered Configurations

    - ``zoo/AdversarialBandit-v0``: 10 arms, one pull per episode.

    ## Version History

    - v0: initial version.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, task: Any = None, render_mode: str | None = None) -> None:
        self.render_mode = check_render_mode(render_mode)
        super().__init__(task)
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Discrete(N_ARMS)
        self.last_action: int | None = None

    @classmethod
    def tasks(cls, split: Split = "train", **kwargs: Any) -> list[BanditTask]:  # type: ignore[override]
        """Return the fixed task list: 1,000 train, 1,000 test, or both (2,000) for ``"all"``.

        :param split: ``"train"``, ``"test"`` or ``"all"``.
        """
        check_split(split)
        if split == "all":
            return [*_split_tasks("train"), *_split_tasks("test")]
        return list(_split_tasks(split))

    def _validate_task(self, task: Any, name: str) -> Hashable:
        try:
            values = tuple(task)
        except TypeError:
            raise ValueError(f"{name}={task!r} is not a sequence of {N_ARMS} arm means in [0, 1]") from None
        if len(values) != N_ARMS or not all(
            isinstance(value, numbers.Real) and not isinstance(value, bool) for value in values
        ):
            raise ValueError(f"{name}={task!r} must be {N_ARMS} real arm means in [0, 1]")
        if not all(math.isfinite(value) and 0.0 <= value <= 1.0 for value in values):
            raise ValueError(f"{name}={task!r} has a mean outside [0, 1]; arm means must lie in [0, 1]")
        return tuple(float(value) for value in values)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a one-pull episode (and pick the task, see the class docstring).

        :param seed: seeds ``self.np_random``.
        :param options: ``{"task": means}`` switches task and keeps it for later resets.
        """
        super().reset(seed=seed)
        self._reset_task(options)
        self.last_action = None
        return np.zeros(1, dtype=np.float32), {"task": self.task}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Pull arm ``action``.

        :param action: the arm index in [0, 9].
        """
        arm = check_discrete_action(action, N_ARMS)
        means: BanditTask = self.task  # type: ignore[assignment]
        reward = 1.0 if self.np_random.random() < means[arm] else 0.0
        self.last_action = arm
        info = {"task": self.task, "regret": max(means) - means[arm]}
        return np.zeros(1, dtype=np.float32), reward, True, False, info

    def get_keys_to_action(self) -> KeysToAction:
        """Key codes -> action for ``gymnasium.utils.play.play``: digit key ``k`` pulls arm ``k``."""
        return {(ord(str(arm)),): arm for arm in range(N_ARMS)}

    def render(self) -> np.ndarray | None:
        """Return a ``(64, 160, 3)`` bar chart of the arm means (pulled arm in red)."""
        if self.render_mode != "rgb_array":
            return None
        height, bar_width = 64, 16
        frame = np.full((height, N_ARMS * bar_width, 3), 30, dtype=np.uint8)
        means: BanditTask = self.task if self.task is not None else (0.0,) * N_ARMS  # type: ignore[assignment]
        for arm, mean in enumerate(means):
            top = height - round(mean * (height - 2))
            colour = (230, 60, 60) if arm == self.last_action else (60, 140, 220)
            frame[top:, arm * bar_width + 2 : (arm + 1) * bar_width - 2] = colour
        return frame
