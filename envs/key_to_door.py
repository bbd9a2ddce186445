"""Dark Key-to-Door: pick up an invisible key, then open an invisible door."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from .base import Cell, GridWorldEnv, Split, check_cell, check_size, check_split

KeyDoorTask = tuple[Cell, Cell]


class DarkKeyToDoorEnv(GridWorldEnv):
    """## Description

    The Dark Key-to-Door task of Laskin et al. (2023), "In-context Reinforcement Learning with
    Algorithm Distillation": in a dark ``size`` x ``size`` room (9 x 9) the agent must step on
    an invisible key and then reach an invisible door. It only sees its own cell.

    A task is ``((key_row, key_col), (door_row, door_col))`` with key != door: ``n * (n - 1)``
    tasks for ``n = size * size`` cells (6,480 for 9 x 9). Fixed split: with
    ``k = key_row * size + key_col`` and ``d = door_row * size + door_col``, the task is in
    ``test`` when ``(k * size * size + d) % 5 == 0`` and in ``train`` otherwise (9 x 9: 5,184
    train and 1,296 test tasks).

    ## Action Space

    ``Discrete(5)``: 0 no-op, 1 up (row - 1), 2 right (col + 1), 3 down (row + 1),
    4 left (col - 1); moves into a wall leave the agent where it is.

    Keyboard (``gymnasium.utils.play.play(env)``, ``get_keys_to_action()``): space no-op,
    up arrow or ``w`` up, right arrow or ``d`` right, down arrow or ``s`` down, left arrow
    or ``a`` left; with no key held ``play`` sends its ``noop=0``, the no-op.

    ## Observation Space

    ``Discrete(size * size)``: the agent's cell index ``row * size + col``. Whether the key
    is held is not observed (it is in ``info["has_key"]``).

    ## Rewards

    +1 the first time a step ends on the key cell (the agent then holds the key), +1 when a
    step ends on the door while holding the key. An episode pays at most 2.

    ## Starting State

    A uniformly random cell (row, then column, each drawn from one ``self.np_random``
    double); it may be the key or door cell, which then pays only after a step that ends
    there (a no-op counts). The key is not held.

    ## Episode End

    Terminates when the door is reached with the key; truncated after 50 steps.

    ## Arguments

    ``gym.make("zoo/DarkKeyToDoor-v0", size=9, task=None, render_mode=None)``

    - ``size``: side length, an integer >= 2.
    - ``task``: ``(key, door)``, kept for every episode; ``reset(options={"task": t})``
      switches task. With no task ever given every reset draws a train task with
      ``self.np_random``. ``info`` holds ``"task"`` and ``"has_key"``.
    - ``render_mode``: ``None`` or ``"rgb_array"`` (key yellow, door purple, agent red).

    ## Registered Configurations

    - ``zoo/DarkKeyToDoor-v0``: 9 x 9, 50 steps.

    ## Version History

    - v0: initial version.
    """

    random_start = True

    def __init__(self, size: int = 9, task: Any = None, render_mode: str | None = None) -> None:
        self.has_key = False
        super().__init__(size=size, task=task, render_mode=render_mode)

    def _validate_task(self, task: Any, name: str) -> Hashable:
        try:
            key, door = task
        except (TypeError, ValueError):
            raise ValueError(
                f"{name}={task!r} is not a ((key_row, key_col), (door_row, door_col)) pair"
            ) from None
        key = check_cell(f"{name} (key)", key, self.size)
        door = check_cell(f"{name} (door)", door, self.size)
        if key == door:
            raise ValueError(f"{name}={task!r} puts the key and the door on the same cell; they must differ")
        return key, door

    @classmethod
    def tasks(cls, split: Split = "train", size: int = 9, **kwargs: Any) -> list[KeyDoorTask]:  # type: ignore[override]
        """Return the ``(key, door)`` tasks of ``split`` (see the class docstring for the rule).

        :param split: ``"train"``, ``"test"`` or ``"all"``.
        :param size: side length of the room.
        """
        check_split(split)
        size = check_size(size)
        cells = [(row, col) for row in range(size) for col in range(size)]
        result = []
        for key_index, key in enumerate(cells):
            for door_index, door in enumerate(cells):
                if key_index == door_index:
                    continue
                test = (key_index * size * size + door_index) % 5 == 0
                if split == "all" or test == (split == "test"):
                    result.append((key, door))
        return result

    def _on_reset(self) -> None:
        self.has_key = False

    def _move_outcome(self) -> tuple[float, bool]:
        key, door = self.task  # type: ignore[misc]
        reward = 0.0
        if self.agent == key and not self.has_key:
            self.has_key = True
            reward += 1.0
        opened = self.agent == door and self.has_key
        if opened:
            reward += 1.0
        return reward, opened

    def _info(self) -> dict[str, Any]:
        return {"task": self.task, "has_key": self.has_key}

    def _markers(self) -> list[tuple[Cell, str]]:
        key, door = self.task  # type: ignore[misc]
        markers = [(door, "door")]
        if not self.has_key:
            markers.append((key, "key"))
        return markers
