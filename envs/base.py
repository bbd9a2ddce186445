"""What the meta-RL environments share: task handling, action checks, the grid-world base.

:class:`TaskEnv` holds the task interface every meta-RL environment of the zoo follows: a
fixed task (constructor ``task=`` or ``reset(options={"task": t})``) or, when no task was
ever given, a fresh task from the train split at every reset. :class:`GridWorldEnv` adds
what the dark grid worlds share: the ``Discrete(size * size)`` cell observation (index
``row * size + col``), the five moves, the centre start and the ``rgb_array`` renderer. A
family fills in :meth:`GridWorldEnv._move_outcome` (reward and termination after a move) and
the task hooks.

All random draws go through :meth:`TaskEnv._uniform_index`, which turns one
``self.np_random.random()`` double into an index. The native vector environments
(:mod:`zoo.envs.vector`) draw the same doubles from per-sub-environment generators in blocks,
which is why a vector environment equals N single environments step for step.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Hashable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

Split = Literal["train", "test", "all"]
Cell = tuple[int, int]

#: Row and column change of each grid action: 0 no-op, 1 up, 2 right, 3 down, 4 left.
MOVES: np.ndarray = np.array([(0, 0), (-1, 0), (0, 1), (1, 0), (0, -1)], dtype=np.int64)
ACTION_NAMES: tuple[str, ...] = ("no-op", "up", "right", "down", "left")

#: pygame 2 (SDL2) key codes of the arrow keys, ``SDLK_* = scancode | 1 << 30`` (``pygame.K_UP``
#: ...), written out so that ``get_keys_to_action`` needs no pygame import.
KEY_UP, KEY_DOWN, KEY_RIGHT, KEY_LEFT = 1073741906, 1073741905, 1073741903, 1073741904
KeysToAction = dict[tuple[int, ...], int]
#: Keys of the grid actions for ``gymnasium.utils.play``: space stays, arrows or WASD move.
GRID_KEYS_TO_ACTION: KeysToAction = {
    (ord(" "),): 0,
    (KEY_UP,): 1,
    (ord("w"),): 1,
    (KEY_RIGHT,): 2,
    (ord("d"),): 2,
    (KEY_DOWN,): 3,
    (ord("s"),): 3,
    (KEY_LEFT,): 4,
    (ord("a"),): 4,
}

#: Pixels per grid cell in rendered frames.
CELL_PIXELS = 16
COLOURS: dict[str, tuple[int, int, int]] = {
    "floor": (40, 40, 48),
    "line": (70, 70, 80),
    "goal": (60, 200, 90),
    "key": (240, 200, 40),
    "door": (150, 90, 220),
    "agent": (230, 60, 60),
}


def check_split(split: str) -> None:
    """Raise ValueError unless ``split`` is ``"train"``, ``"test"`` or ``"all"``."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"split={split!r} is not allowed; use 'train', 'test' or 'all'")


def check_integer(name: str, value: Any, minimum: int) -> int:
    """Return ``value`` as int, or raise ValueError naming ``name`` when it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name}={value!r} is not allowed; use an integer >= {minimum}")
    return int(value)


def check_real(
    name: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    finite: bool = False,
) -> float:
    """Return ``value`` as float, or raise ValueError naming ``name`` unless it is a real number in range.

    Bools, strings and NaN are refused (``"0.2"`` is not silently parsed, ``True`` is not 1.0).

    :param name: the argument name used in the error message.
    :param value: the value given.
    :param minimum: the smallest allowed value (``None``: no lower bound).
    :param maximum: the largest allowed value (``None``: no upper bound).
    :param exclusive_minimum: refuse ``value == minimum`` too.
    :param exclusive_maximum: refuse ``value == maximum`` too.
    :param finite: refuse infinities too.
    """
    if minimum is not None and maximum is not None:
        allowed = f"in {'(' if exclusive_minimum else '['}{minimum:g}, {maximum:g}{')' if exclusive_maximum else ']'}"
    elif minimum is not None:
        allowed = f"{'>' if exclusive_minimum else '>='} {minimum:g}"
    elif maximum is not None:
        allowed = f"{'<' if exclusive_maximum else '<='} {maximum:g}"
    else:
        allowed = "(not NaN)"
    if (
        isinstance(value, bool | np.bool_)
        or not isinstance(value, numbers.Real)
        or math.isnan(value)
        or (finite and math.isinf(value))
        or (minimum is not None and (value < minimum or (exclusive_minimum and value == minimum)))
        or (maximum is not None and (value > maximum or (exclusive_maximum and value == maximum)))
    ):
        kind = "finite real number" if finite else "real number"
        raise ValueError(f"{name}={value!r} is not allowed; use a {kind} {allowed}")
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` as bool, or raise ValueError naming ``name`` unless it is ``True``/``False``.

    Strings such as ``"yes"`` or ``"False"`` are refused: ``bool("False")`` is ``True``.
    """
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name}={value!r} is not allowed; use True or False")
    return bool(value)


def check_reset_options(options: Any, allowed: Collection[str] = (), hint: str = "") -> dict[str, Any]:
    """Return ``reset`` options as a dict (``{}`` for ``None``), or raise ValueError.

    Refuses anything but ``None`` or a mapping with string keys in ``allowed``, naming the
    offending key and the allowed ones, so that a typo (``{"tsak": 3}``) is not silently
    ignored.

    :param options: the ``options`` given to ``reset``.
    :param allowed: the option keys the environment reads.
    :param hint: appended to the error message (e.g. where tasks are set instead).
    """
    if allowed:
        allowed_text = "the allowed keys are " + ", ".join(repr(key) for key in allowed)
    else:
        allowed_text = "this environment reads no reset options (use None or {})"
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ValueError(
            f"options={options!r} is not allowed; reset options are None or a dict: {allowed_text}{hint}"
        )
    unknown = [key for key in options if key not in allowed]
    if unknown:
        raise ValueError(f"options key {unknown[0]!r} is not supported; {allowed_text}{hint}")
    return dict(options)


def check_size(size: Any, minimum: int = 2) -> int:
    """Return the grid side length ``size`` as int (an integer >= ``minimum``)."""
    return check_integer("size", size, minimum)


def check_render_mode(render_mode: str | None) -> str | None:
    """Return ``render_mode`` if it is ``None`` or ``"rgb_array"`` (every zoo env's modes), else raise."""
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"render_mode={render_mode!r} is not allowed; use None or 'rgb_array'")
    return render_mode


def check_discrete_action(action: Any, n: int) -> int:
    """Return a discrete action as int, or raise ValueError.

    Accepts a python int, a numpy integer scalar or a 0-d integer array in ``[0, n)``; rejects
    bools, floats (even integral ones, as :class:`gymnasium.spaces.Discrete` does), NaN,
    arrays of another shape and out-of-range values.

    :param action: the action given to ``step``.
    :param n: the number of actions.
    """
    value = action
    if isinstance(value, np.ndarray):
        if value.shape != ():
            raise ValueError(
                f"action={action!r} has shape {value.shape}; expected a scalar integer in [0, {n - 1}]"
            )
        value = value[()]
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise ValueError(f"action={action!r} is not an integer; expected an integer in [0, {n - 1}]")
    if not 0 <= value < n:
        raise ValueError(f"action={action!r} is out of range; expected an integer in [0, {n - 1}]")
    return int(value)


def check_cell(name: str, cell: Any, size: int) -> Cell:
    """Return ``cell`` as a ``(row, col)`` tuple of ints inside a ``size`` x ``size`` grid.

    :param name: the argument name used in the error message (``"goal"``, ``"key"``, ...).
    :param cell: a pair of integers.
    :param size: the side length of the grid.
    """
    try:
        row, col = cell
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}={cell!r} is not a (row, col) pair; rows and columns are in [0, {size - 1}]"
        ) from None
    for value in (row, col):
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
            raise ValueError(f"{name}={cell!r} must hold two integers in [0, {size - 1}]")
        if not 0 <= value < size:
            raise ValueError(
                f"{name}={cell!r} is outside the {size}x{size} grid; rows and columns are in [0, {size - 1}]"
            )
    return int(row), int(col)


def uniform_to_index(uniform: float | np.ndarray, n: int) -> Any:
    """Map doubles in ``[0, 1)`` to indices in ``[0, n)`` (the rule singles and vectors share)."""
    return np.minimum((np.asarray(uniform) * n).astype(np.int64), n - 1)


class TaskEnv(gym.Env):
    """Task handling shared by the meta-RL environments (not registered itself).

    Subclasses implement :meth:`tasks` (the fixed split, as a classmethod) and
    :meth:`_validate_task`, and call :meth:`_reset_task` in ``reset``.
    """

    #: Keyword arguments of ``__init__`` that change the task set (forwarded to ``tasks``).
    task_kwargs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, task: Any = None) -> None:
        self._fixed_task: Hashable | None = None if task is None else self._validate_task(task, "task")
        self.task: Hashable | None = self._fixed_task
        self._train_tasks: list[Hashable] | None = None

    @classmethod
    def tasks(cls, split: Split = "train", **kwargs: Any) -> list[Hashable]:
        """Return the fixed task list of ``split`` (see the class docstring)."""
        raise NotImplementedError

    def _validate_task(self, task: Any, name: str) -> Hashable:
        """Return ``task`` in canonical (hashable tuple) form or raise ValueError naming ``name``."""
        raise NotImplementedError

    def _task_spec_kwargs(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.task_kwargs}

    def _uniform_index(self, n: int) -> int:
        """Draw an index in ``[0, n)`` from one ``self.np_random.random()`` double."""
        return int(uniform_to_index(self.np_random.random(), n))

    def _reset_task(self, options: dict[str, Any] | None) -> None:
        """Pick the episode's task: ``options["task"]`` (kept for later resets), the fixed
        task, or (no task ever given) a random train task drawn through ``self.np_random``."""
        options = check_reset_options(options, ("task",))
        if options.get("task") is not None:
            self._fixed_task = self._validate_task(options["task"], 'options["task"]')
        if self._fixed_task is not None:
            self.task = self._fixed_task
            return
        if self._train_tasks is None:
            self._train_tasks = type(self).tasks(split="train", **self._task_spec_kwargs())
        self.task = self._train_tasks[self._uniform_index(len(self._train_tasks))]


class GridWorldEnv(TaskEnv):
    """A dark ``size`` x ``size`` grid world: the agent only sees the index of its own cell.

    Subclasses define the task (:meth:`tasks`, :meth:`_validate_task`), the start cell
    (:attr:`random_start`), :meth:`_on_reset` and :meth:`_move_outcome`, and the cells the
    renderer marks (:meth:`_markers`).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 4}
    task_kwargs: ClassVar[tuple[str, ...]] = ("size",)
    #: Start at a uniformly random cell instead of the centre ``(size // 2, size // 2)``.
    random_start: ClassVar[bool] = False

    def __init__(self, size: int = 9, task: Any = None, render_mode: str | None = None) -> None:
        self.size = check_size(size)
        self.render_mode = check_render_mode(render_mode)
        super().__init__(task)
        self.observation_space = spaces.Discrete(self.size * self.size)
        self.action_space = spaces.Discrete(len(MOVES))
        self.agent: Cell = (self.size // 2, self.size // 2)

    # -- hooks -----------------------------------------------------------------------------
    def _on_reset(self) -> None:
        """Reset per-episode state other than the agent cell (e.g. the key)."""

    def _move_outcome(self) -> tuple[float, bool]:
        """Return (reward, terminated) after the agent has moved to :attr:`agent`."""
        raise NotImplementedError

    def _markers(self) -> list[tuple[Cell, str]]:
        """Cells the renderer colours, as ``(cell, colour name)``, drawn in order."""
        raise NotImplementedError

    def _info(self) -> dict[str, Any]:
        return {"task": self.task}

    def get_keys_to_action(self) -> KeysToAction:
        """Key codes -> action for ``gymnasium.utils.play.play`` (space stays, arrows or WASD move).

        Key codes are pygame's (``ord(character)``, ``pygame.K_UP``, ...), the form both
        ``play`` and ``PlayableGame`` accept; ``play``'s default ``noop=0`` is the no-op.
        """
        return dict(GRID_KEYS_TO_ACTION)

    # -- gymnasium API ---------------------------------------------------------------------
    def _observation(self) -> int:
        return self.agent[0] * self.size + self.agent[1]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Reset the agent (and pick the task, see :class:`TaskEnv`).

        :param seed: seeds ``self.np_random``.
        :param options: ``{"task": t}`` switches to task ``t`` and keeps it for later resets.
        """
        super().reset(seed=seed)
        self._reset_task(options)
        if self.random_start:
            row = self._uniform_index(self.size)
            col = self._uniform_index(self.size)
            self.agent = (row, col)
        else:
            self.agent = (self.size // 2, self.size // 2)
        self._on_reset()
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict[str, Any]]:
        """Move (clipped at the walls) and return the family's reward and termination.

        :param action: 0 no-op, 1 up (row - 1), 2 right (col + 1), 3 down (row + 1), 4 left (col - 1).
        """
        move = MOVES[check_discrete_action(action, len(MOVES))]
        row = min(max(self.agent[0] + int(move[0]), 0), self.size - 1)
        col = min(max(self.agent[1] + int(move[1]), 0), self.size - 1)
        self.agent = (row, col)
        reward, terminated = self._move_outcome()
        return self._observation(), reward, terminated, False, self._info()

    def render(self) -> np.ndarray | None:
        """Return an RGB frame ``(size * 16, size * 16, 3)``; it shows the hidden cells too."""
        if self.render_mode != "rgb_array":
            return None
        return render_grid(self.size, [*self._markers(), (self.agent, "agent")])


def render_grid(size: int, markers: Sequence[tuple[Cell, str]]) -> np.ndarray:
    """Draw a ``size`` x ``size`` grid with coloured cells as a uint8 RGB frame.

    :param size: grid side length.
    :param markers: ``((row, col), colour name)`` pairs; the agent is drawn as a smaller
        square so that a marker under it stays visible.
    """
    frame = np.empty((size * CELL_PIXELS, size * CELL_PIXELS, 3), dtype=np.uint8)
    frame[:] = COLOURS["floor"]
    frame[::CELL_PIXELS, :] = COLOURS["line"]
    frame[:, ::CELL_PIXELS] = COLOURS["line"]
    for (row, col), colour in markers:
        top, left = row * CELL_PIXELS, col * CELL_PIXELS
        margin = CELL_PIXELS // 4 if colour == "agent" else 1
        frame[
            top + margin : top + CELL_PIXELS - margin + 1, left + margin : left + CELL_PIXELS - margin + 1
        ] = COLOURS[colour]
    return frame
