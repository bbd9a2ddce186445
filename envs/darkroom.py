"""Dark Room and Dark Room Hard: find an invisible goal cell (Algorithm Distillation's grid worlds)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from .base import Cell, GridWorldEnv, Split, check_cell, check_size, check_split


def _goal_tasks(size: int, split: Split) -> list[Cell]:
    check_split(split)
    cells = [(row, col) for row in range(size) for col in range(size)]
    if split == "all":
        return cells
    in_test = [(row * size + col) % 5 == 0 for row, col in cells]
    return [cell for cell, test in zip(cells, in_test, strict=True) if test == (split == "test")]


class DarkRoomEnv(GridWorldEnv):
    """## Description

    The agent walks in a dark ``size`` x ``size`` room (9 x 9 by default) and must find an
    invisible goal cell, the Dark Room of Laskin et al. (2023), "In-context Reinforcement
    Learning with Algorithm Distillation". It only ever sees the index of its own cell, so the
    goal must be found by exploring and then remembered across episodes: the room is made for
    in-context learners. Same dynamics and rewards as ``Dark-Room-9x9-v0`` of the ``toymeta``
    package (checked in ``tests/test_envs_grid.py``).

    A task is the goal cell ``(row, col)``. The task set has all ``size * size`` cells; the
    fixed split puts the goals whose cell index ``row * size + col`` is divisible by 5 in the
    ``test`` split and every other goal in ``train`` (9 x 9: 64 train, 17 test, 81 in all).

    ## Action Space

    ``Discrete(5)``: 0 no-op, 1 up (row - 1), 2 right (col + 1), 3 down (row + 1),
    4 left (col - 1). Moves into a wall leave the agent where it is. A python int, a numpy
    integer or a 0-d integer array is accepted; anything else raises ValueError.

    Keyboard (``gymnasium.utils.play.play(env)``, ``get_keys_to_action()``): space no-op,
    up arrow or ``w`` up, right arrow or ``d`` right, down arrow or ``s`` down, left arrow
    or ``a`` left; with no key held ``play`` sends its ``noop=0``, the no-op.

    ## Observation Space

    ``Discrete(size * size)``: the agent's cell index ``row * size + col``.

    ## Rewards

    +1 for every step that ends on the goal cell (so staying on the goal keeps paying), else
    0. With the agent starting at the centre and 20 steps, the best return for a goal at
    Manhattan distance ``d`` from the centre is ``20 - d + 1`` (``20`` when the goal is the
    centre itself).

    ## Starting State

    The centre cell ``(size // 2, size // 2)``.

    ## Episode End

    Never terminates; truncated after 20 steps (``max_episode_steps`` of the registration).

    ## Arguments

    ``gym.make("zoo/DarkRoom-v0", size=9, task=None, render_mode=None)``

    - ``size``: side length of the room, an integer >= 2.
    - ``task``: the goal ``(row, col)``, kept for every episode; ``reset(options={"task": t})``
      switches task and keeps it. With no task ever given, every reset draws a goal from the
      train split with ``self.np_random``. ``info["task"]`` holds the goal.
    - ``render_mode``: ``None`` or ``"rgb_array"`` (a ``16 * size`` pixel square frame; it shows
      the goal in green and the agent in red).

    ## Registered Configurations

    - ``zoo/DarkRoom-v0``: 9 x 9, 20 steps.

    ## Version History

    - v0: initial version.
    """

    def _validate_task(self, task: Any, name: str) -> Hashable:
        return check_cell(f"{name} (goal)", task, self.size)

    @classmethod
    def tasks(cls, split: Split = "train", size: int = 9, **kwargs: Any) -> list[Cell]:  # type: ignore[override]
        """Return the goal cells of ``split`` (test: ``(row * size + col) % 5 == 0``).

        :param split: ``"train"``, ``"test"`` or ``"all"``.
        :param size: side length of the room.
        """
        return _goal_tasks(check_size(size), split)

    @staticmethod
    def optimal_return(goal: Cell, size: int = 9, horizon: int = 20) -> float:
        """The best return for ``goal``: one reward per step on the goal after walking there from the
        centre (``horizon + 1 - distance``; ``horizon`` when the goal is the centre, where step 1 is
        a no-op that pays).

        :param goal: the goal cell ``(row, col)``.
        :param size: side length of the room.
        :param horizon: episode length (20 for ``zoo/DarkRoom-v0``).
        """
        centre = size // 2
        distance = abs(goal[0] - centre) + abs(goal[1] - centre)
        return float(horizon + 1 - distance) if distance else float(horizon)

    def _move_outcome(self) -> tuple[float, bool]:
        return (1.0 if self.agent == self.task else 0.0), False

    def _markers(self) -> list[tuple[Cell, str]]:
        assert self.task is not None
        return [(self.task, "goal")]  # type: ignore[list-item]


class DarkRoomHardEnv(DarkRoomEnv):
    """## Description

    A sparser Dark Room (Laskin et al., 2023): a 17 x 17 room, the goal pays only once and
    ends the episode. Same dynamics as ``Dark-Room-Hard-17x17-v0`` of ``toymeta``.

    A task is the goal cell ``(row, col)``; the ``test`` split holds the goals with
    ``(row * size + col) % 5 == 0``, ``train`` the others (17 x 17: 231 train, 58 test, 289
    in all).

    ## Action Space

    ``Discrete(5)``: 0 no-op, 1 up (row - 1), 2 right (col + 1), 3 down (row + 1),
    4 left (col - 1); moves into a wall leave the agent where it is.

    Keyboard (``gymnasium.utils.play.play(env)``, ``get_keys_to_action()``): space no-op,
    up arrow or ``w`` up, right arrow or ``d`` right, down arrow or ``s`` down, left arrow
    or ``a`` left; with no key held ``play`` sends its ``noop=0``, the no-op.

    ## Observation Space

    ``Discrete(size * size)``: the agent's cell index ``row * size + col``.

    ## Rewards

    +1 the first time a step ends on the goal (the episode then terminates), else 0. Goals
    further than 20 moves from the centre cannot be reached in time.

    ## Starting State

    The centre cell ``(size // 2, size // 2)``.

    ## Episode End

    Terminates when a step ends on the goal; truncated after 20 steps.

    ## Arguments

    ``gym.make("zoo/DarkRoomHard-v0", size=17, task=None, render_mode=None)``, arguments as
    in :class:`DarkRoomEnv`.

    ## Registered Configurations

    - ``zoo/DarkRoomHard-v0``: 17 x 17, 20 steps.

    ## Version History

    - v0: initial version.
    """

    def __init__(self, size: int = 17, task: Any = None, render_mode: str | None = None) -> None:
        super().__init__(size=size, task=task, render_mode=render_mode)

    @classmethod
    def tasks(cls, split: Split = "train", size: int = 17, **kwargs: Any) -> list[Cell]:  # type: ignore[override]
        """Return the goal cells of ``split`` (test: ``(row * size + col) % 5 == 0``).

        :param split: ``"train"``, ``"test"`` or ``"all"``.
        :param size: side length of the room.
        """
        return _goal_tasks(check_size(size), split)

    def _move_outcome(self) -> tuple[float, bool]:
        reached = self.agent == self.task
        return (1.0 if reached else 0.0), reached
