"""Multi-goal sparse-reward goal environments used by ReenGAGE (Levine & Feizi, AAAI 2023).

Every environment here is a Gymnasium goal environment: the observation is a
``Dict(observation, achieved_goal, desired_goal)`` of float32 boxes, the reward of a step
is ``compute_reward(achieved_goal, desired_goal, info)`` evaluated on the *new* state, and
``compute_reward`` is vectorised over any number of leading batch dimensions, so
Stable-Baselines3's ``HerReplayBuffer`` (and ReenGAGE's relabelling) can recompute rewards
for relabelled goals in one call. ``info["is_success"]`` is set on every step.

Which environments work with SB3's ``HerReplayBuffer``: only those whose ``achieved_goal``
and ``desired_goal`` have the same space, because HER relabels a transition by writing a
future ``achieved_goal`` into its ``desired_goal``. That holds for ``ContinuousSeek`` (and
``zoo/BitFlip``), not for ``DriveSeek`` and ``NoisySeek``: their achieved goal is one cell
``(2,)`` while the desired goal is a set of up to 200 goal rows ``(200, 3)``, so a relabelled
goal is not a valid desired goal, and ``compute_reward`` refuses it with an error that says so.
The zoo's path for these two is :class:`zoo.agents.MultiReenGAGE` with the plain Dict replay
buffer: every stored transition already carries all goals of its episode, so there is nothing
to relabel (the paper, too, trains them without HER).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .base import check_integer, check_render_mode, check_reset_options

__all__ = ["ContinuousSeekEnv", "DriveSeekEnv", "NoisySeekEnv", "validate_box_action"]

#: ``info["is_success"]`` modes: "episode" = goal reached at some step of the episode so far
#: (the paper's definition, what SB3's EvalCallback reads from the last step), "step" = this step.
SUCCESS_MODES = ("episode", "step")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}={value!r} is not allowed; use one of {', '.join(map(repr, choices))}")
    return value


#: Number of goal rows in the desired goal of the multi-goal environments (padding included).
MAX_GOALS = 200


def validate_box_action(action: Any, space: spaces.Box) -> np.ndarray:
    """Return ``action`` as a float32 array, or raise ``ValueError`` if it lies outside ``space``.

    :param action: the action passed to ``step``.
    :param space: the environment's Box action space.
    :return: the action as a float32 array of the space's shape.
    """
    try:
        array = np.asarray(action, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f"action={action!r} is not numeric; expected an array in {space}") from error
    if array.shape != space.shape:
        raise ValueError(f"action has shape {array.shape}; expected shape {space.shape} for {space}")
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"action={array!r} contains NaN or inf; expected values in [{space.low.min()}, "
            f"{space.high.max()}]"
        )
    if np.any(array < space.low) or np.any(array > space.high):
        raise ValueError(
            f"action={array!r} is outside the action space; expected values in "
            f"[{space.low.min()}, {space.high.max()}]"
        )
    return array


def _as_goal_batch(goal: Any, name: str, trailing_shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(goal, dtype=np.float64)
    if array.shape[array.ndim - len(trailing_shape) :] != trailing_shape or array.ndim < len(trailing_shape):
        raise ValueError(
            f"{name} has shape {array.shape}; expected (..., {', '.join(map(str, trailing_shape))})"
        )
    return array


def _multi_goal_reward(achieved_goal: Any, desired_goal: Any) -> np.ndarray:
    """Reward sum_i b_i^2 [achieved == (x_i, y_i)] over goal rows (b_i, x_i, y_i), batched."""
    achieved = _as_goal_batch(achieved_goal, "achieved_goal", (2,))
    shape = np.shape(desired_goal)
    if len(shape) >= 1 and shape[-1] == 2:
        raise ValueError(
            f"desired_goal has shape {shape}, an achieved goal (one cell), not goal rows (..., {MAX_GOALS}, 3): "
            f"SB3's HerReplayBuffer relabels desired_goal with achieved_goal, which these multi-goal "
            f"environments do not support; train them without HER (zoo.agents.MultiReenGAGE with the "
            f"default Dict replay buffer)"
        )
    desired = _as_goal_batch(desired_goal, "desired_goal", (MAX_GOALS, 3))
    gates = desired[..., 0]
    on_goal = np.all(desired[..., 1:] == achieved[..., None, :], axis=-1)
    return np.sum(gates * gates * on_goal, axis=-1)


def _paint(frame: np.ndarray, row: int, col: int, scale: int, colour: tuple[int, int, int]) -> None:
    frame[row * scale : (row + 1) * scale, col * scale : (col + 1) * scale] = colour


class ContinuousSeekEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Reach a random point of a d-dimensional box within 10 steps of bounded moves.

    ## Description
    The state ``s`` is a point of ``[-5, 5]^dim`` that starts at the origin; each episode
    draws a goal ``g`` uniformly from ``[-5, 5]^dim``. The goal is reached when
    ``||s - g||_inf <= 0.1``. A sparse-reward benchmark for goal-conditioned agents with a
    continuous goal space whose dimension can be scaled (ReenGAGE, Levine & Feizi 2023).

    ## Action Space
    ``Box(-1, 1, (dim,), float32)``: the displacement; ``s <- clip(s + a, -5, 5)``.

    ## Observation Space
    ``Dict(observation, achieved_goal, desired_goal)``, each ``Box(-5, 5, (dim,), float32)``;
    ``observation`` and ``achieved_goal`` are both ``s``, ``desired_goal`` is ``g``.

    ## Rewards
    ``-1`` per step unless ``||s - g||_inf <= 0.1`` after the move, then ``0``
    (``compute_reward`` is vectorised over leading batch dimensions).

    ## Starting State
    ``s = 0``; ``g ~ U[-5, 5]^dim`` drawn with ``self.np_random``.

    ## Episode End
    Never terminates (reaching the goal does not end the episode); truncated after 10 steps
    by the registered time limit. ``info["is_success"]`` (``success="episode"``, the default)
    is 1.0 from the first step that ends on the goal to the end of the episode, so the last
    step says whether the goal was ever reached (the paper's success; SB3's ``EvalCallback``
    reads the last step); it is 0.0 at reset. With ``success="step"`` it is 1.0 exactly on
    the steps that end on the goal (and at reset if the start is on the goal).

    ## Arguments
    ``dim`` (int >= 1, default 10): dimension of the state and goal space.
    ``render_mode`` (``None`` or ``"rgb_array"``): ``render()`` draws the first two
    coordinates of ``s`` (red) and ``g`` (green) as a 64x64x3 uint8 image.
    ``success`` (``"episode"`` or ``"step"``, default ``"episode"``): see Episode End.

    ## Registered Configurations
    ``zoo/ContinuousSeek-v1`` (dim 10), ``zoo/ContinuousSeek-d5-v1``,
    ``zoo/ContinuousSeek-d10-v1``, ``zoo/ContinuousSeek-d20-v1``; the same with ``-v0``
    (``success="step"``); all with 10 steps.

    ## Version History
    v1: ``info["is_success"]`` means "goal reached at some step of the episode", as in the
    paper's appendix and its reference code (``success="episode"``).
    v0: initial version; ``info["is_success"]`` flags only the current step.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 4}
    bound = 5.0
    tolerance = 0.1
    frame_size = 64

    def __init__(self, dim: int = 10, render_mode: str | None = None, success: str = "episode") -> None:
        """:param dim: dimension of the state and goal space (>= 1).
        :param render_mode: ``None`` or ``"rgb_array"``.
        :param success: ``"episode"`` (goal ever reached this episode) or ``"step"`` (this step).
        """
        dim = check_integer("dim", dim, 1)
        check_render_mode(render_mode)
        self.success = _check_choice("success", success, SUCCESS_MODES)
        self._reached = False
        self.dim = int(dim)
        self.render_mode = render_mode
        box = spaces.Box(-self.bound, self.bound, (self.dim,), np.float32)
        self.observation_space = spaces.Dict({"observation": box, "achieved_goal": box, "desired_goal": box})
        self.action_space = spaces.Box(-1.0, 1.0, (self.dim,), np.float32)
        self._state = np.zeros(self.dim, np.float32)
        self._goal = np.zeros(self.dim, np.float32)

    def _obs(self) -> dict[str, np.ndarray]:
        return {
            "observation": self._state.copy(),
            "achieved_goal": self._state.copy(),
            "desired_goal": self._goal.copy(),
        }

    def compute_reward(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray:
        """Reward for reaching ``desired_goal`` from ``achieved_goal``, batched.

        :param achieved_goal: array of shape ``(..., dim)``.
        :param desired_goal: array of shape ``(..., dim)``.
        :param info: ignored (a dict, or an array/list of dicts when batched).
        :return: float array of shape ``(...)`` with values in ``{-1, 0}``.
        """
        achieved = _as_goal_batch(achieved_goal, "achieved_goal", (self.dim,))
        desired = _as_goal_batch(desired_goal, "desired_goal", (self.dim,))
        # float32 goals: compare in float32 so stored observations reproduce the paid reward.
        distance = np.max(np.abs(achieved.astype(np.float32) - desired.astype(np.float32)), axis=-1)
        return np.where(distance <= self.tolerance, 0.0, -1.0)

    def compute_terminated(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray:
        """Always ``False``: reaching the goal does not end the episode.

        :param achieved_goal: array of shape ``(..., dim)``.
        :param desired_goal: array of shape ``(..., dim)``.
        :param info: ignored.
        :return: boolean array of shape ``(...)``.
        """
        achieved = _as_goal_batch(achieved_goal, "achieved_goal", (self.dim,))
        return np.zeros(achieved.shape[:-1], dtype=bool)

    def compute_truncated(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray:
        """Always ``False``: the time limit comes from the registration.

        :param achieved_goal: array of shape ``(..., dim)``.
        :param desired_goal: array of shape ``(..., dim)``.
        :param info: ignored.
        :return: boolean array of shape ``(...)``.
        """
        return self.compute_terminated(achieved_goal, desired_goal, info)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode at the origin with a new uniform goal.

        :param seed: seed for ``self.np_random``.
        :param options: ``None`` or ``{}`` (no reset options).
        :return: observation and info (``is_success``).
        """
        check_reset_options(options)
        super().reset(seed=seed)
        self._state = np.zeros(self.dim, np.float32)
        self._goal = self.np_random.uniform(-self.bound, self.bound, self.dim).astype(np.float32)
        self._reached = False
        if self.success == "episode":
            # Like the reference, only states reached by a move count.
            return self._obs(), {"is_success": 0.0}
        reward = float(self.compute_reward(self._state, self._goal, None))
        return self._obs(), {"is_success": float(reward == 0.0)}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Move by ``action`` and clip to the box.

        :param action: displacement in ``[-1, 1]^dim``.
        :return: observation, reward, terminated, truncated, info.
        """
        move = validate_box_action(action, self.action_space)
        self._state = np.clip(self._state + move, -self.bound, self.bound).astype(np.float32)
        reward = float(self.compute_reward(self._state, self._goal, None))
        on_goal = reward == 0.0
        self._reached = self._reached or on_goal
        success = self._reached if self.success == "episode" else on_goal
        return self._obs(), reward, False, False, {"is_success": float(success)}

    def render(self) -> np.ndarray | None:
        """Draw the first two coordinates of the state (red) and goal (green).

        :return: a ``(64, 64, 3)`` uint8 frame when ``render_mode="rgb_array"``, else ``None``.
        """
        if self.render_mode != "rgb_array":
            return None
        size = self.frame_size
        frame = np.full((size, size, 3), 255, np.uint8)

        def pixel(point: np.ndarray) -> tuple[int, int]:
            coords = np.zeros(2, np.float64)
            coords[: min(2, self.dim)] = point[:2]
            scaled = (coords + self.bound) / (2 * self.bound) * (size - 4)
            return int(size - 4 - scaled[1]), int(scaled[0])

        row, col = pixel(self._goal)
        frame[row : row + 4, col : col + 4] = (0, 170, 0)
        row, col = pixel(self._state)
        frame[row : row + 4, col : col + 4] = (220, 0, 0)
        return frame


class _MultiGoalEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Shared parts of DriveSeek and NoisySeek: goal rows, batched reward, info."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 8}
    n_max = MAX_GOALS

    def __init__(self, render_mode: str | None = None, success: str = "episode") -> None:
        self.render_mode = check_render_mode(render_mode)
        self.success = _check_choice("success", success, SUCCESS_MODES)
        self._reached = False
        self._goals = np.zeros((self.n_max, 3), np.float32)
        self._cell = np.zeros(2, np.float32)

    def compute_reward(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray:
        """Sum over goal rows ``(b_i, x_i, y_i)`` of ``b_i**2 * [achieved_goal == (x_i, y_i)]``.

        Real goals have gate ``b_i = 1``, padding rows are zero, so the paid reward is 1 on a
        goal cell and 0 elsewhere; other gate values (relabelled or weighted goals) are allowed.

        :param achieved_goal: array of shape ``(..., 2)`` (the rounded position).
        :param desired_goal: array of shape ``(..., 200, 3)``.
        :param info: ignored (a dict, or an array/list of dicts when batched).
        :return: float array of shape ``(...)``.
        """
        return _multi_goal_reward(achieved_goal, desired_goal)

    def compute_terminated(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray:
        """Always ``False``: episodes end by the time limit only.

        :param achieved_goal: array of shape ``(..., 2)``.
        :param desired_goal: array of shape ``(..., 200, 3)``.
        :param info: ignored.
        :return: boolean array of shape ``(...)``.
        """
        achieved = _as_goal_batch(achieved_goal, "achieved_goal", (2,))
        return np.zeros(achieved.shape[:-1], dtype=bool)

    def compute_truncated(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray:
        """Always ``False``: the time limit comes from the registration.

        :param achieved_goal: array of shape ``(..., 2)``.
        :param desired_goal: array of shape ``(..., 200, 3)``.
        :param info: ignored.
        :return: boolean array of shape ``(...)``.
        """
        return self.compute_terminated(achieved_goal, desired_goal, info)

    def _set_goal_cells(self, cells: np.ndarray) -> None:
        self._goals = np.zeros((self.n_max, 3), np.float32)
        self._goals[: len(cells), 0] = 1.0
        self._goals[: len(cells), 1:] = cells

    @property
    def n_goals(self) -> int:
        """Number of real (gate 1) goals of the current episode."""
        return int(np.count_nonzero(self._goals[:, 0]))

    def _observation(self) -> np.ndarray:
        raise NotImplementedError

    def _obs(self) -> dict[str, np.ndarray]:
        return {
            "observation": self._observation(),
            "achieved_goal": self._cell.copy(),
            "desired_goal": self._goals.copy(),
        }

    def _reset_info(self, n_goals: int) -> dict[str, Any]:
        self._reached = False
        if self.success == "episode":
            return {"is_success": 0.0, "n_goals": n_goals}
        reward = float(self.compute_reward(self._cell, self._goals, None))
        return {"is_success": float(reward > 0.0), "n_goals": n_goals}

    def _step_result(self) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        reward = float(self.compute_reward(self._cell, self._goals, None))
        on_goal = reward > 0.0
        self._reached = self._reached or on_goal
        success = self._reached if self.success == "episode" else on_goal
        return self._obs(), reward, False, False, {"is_success": float(success)}


class DriveSeekEnv(_MultiGoalEnv):
    """Drive a car with a turning radius over a 21x21 torus and visit as many goal cells as possible.

    ## Description
    A car with heading ``theta`` moves one unit per step on a 21x21 torus. Each episode has
    between 1 and 200 distinct goal cells; every step that ends on a goal cell pays +1. The
    desired goal lists all goal cells at once, so the task is to collect as much reward as
    possible from many goals (the multi-goal setting of ReenGAGE, Levine & Feizi 2023).

    ## Action Space
    ``Box(-1, 1, (1,), float32)``: the steering ``a``; ``theta <- theta + 0.5 a``, then
    ``pos <- pos + (cos theta, sin theta)``, wrapped onto the torus.

    ## Observation Space
    ``Dict`` of float32 boxes. With ``frame="centred"`` (the default, the paper's frame):
    ``observation`` ``(4,)`` = ``(x, y, cos theta, sin theta)`` with ``x, y`` in
    ``[-10.5, 10.5)`` (the torus wraps at the cell borders ``+-10.5``);
    ``achieved_goal`` ``(2,)`` = the rounded position (integers ``-10..10``);
    ``desired_goal`` ``(200, 3)`` = rows ``(b_i, x_i, y_i)``: gate ``b_i = 1`` for the real
    goals (in the first rows, distinct cells of ``[-10, 10]^2``) and all-zero padding rows.
    With ``frame="corner"`` (v0) positions lie in ``[0, 21)``, cells are ``0..20`` and the
    achieved goal is ``round(pos) mod 21``.
    Together the observation and the achieved goal are the paper's 6 numbers.

    ## Rewards
    ``sum_i b_i^2 [achieved_goal == (x_i, y_i)]``: +1 for every step that ends on a goal cell.

    ## Starting State
    ``start="origin"`` (default, the paper's): the car at ``(0, 0)`` with heading 0;
    ``start="random"`` (v0): position uniform over the torus, heading uniform in ``[-pi, pi)``.
    The number of goals is uniform in ``1..200`` and the goal cells are drawn uniformly
    without replacement from the 441 cells (all through ``self.np_random``).

    ## Episode End
    Never terminates; truncated after 40 steps by the registered time limit.
    ``info["is_success"]``: with ``success="episode"`` (default) 1.0 from the first step that
    ends on a goal cell on (0.0 at reset), with ``success="step"`` 1.0 on such steps only.
    SB3's ``HerReplayBuffer`` does not apply (see the module docstring).

    ## Arguments
    ``render_mode`` (``None`` or ``"rgb_array"``): ``render()`` returns an 84x84x3 uint8
    top view (goal cells green, the car red).
    ``start`` (``"origin"`` or ``"random"``), ``frame`` (``"centred"`` or ``"corner"``),
    ``success`` (``"episode"`` or ``"step"``): see above; the defaults are the paper's.

    ## Registered Configurations
    ``zoo/DriveSeek-v1`` (defaults), ``zoo/DriveSeek-v0`` (``start="random"``,
    ``frame="corner"``, ``success="step"``); both with 40 steps.

    ## Version History
    v1: the paper's DriveSeek: start at the origin with heading 0, centred frame, success
    means "a goal cell was reached this episode" (appendix, and the reference drive_seek.py).
    v0: initial version (random start, corner frame, per-step success).
    """

    size = 21
    turn_rate = 0.5
    cell_pixels = 4

    def __init__(
        self,
        render_mode: str | None = None,
        start: str = "origin",
        frame: str = "centred",
        success: str = "episode",
    ) -> None:
        """:param render_mode: ``None`` or ``"rgb_array"``.
        :param start: ``"origin"`` (position 0, heading 0) or ``"random"``.
        :param frame: ``"centred"`` (cells ``-10..10``) or ``"corner"`` (cells ``0..20``).
        :param success: ``"episode"`` or ``"step"`` (see the class docstring).
        """
        super().__init__(render_mode, success)
        self.start = _check_choice("start", start, ("origin", "random"))
        self.frame = _check_choice("frame", frame, ("centred", "corner"))
        half = (self.size - 1) // 2
        #: Lowest cell coordinate, and the lowest position (the torus wraps there).
        self._low_cell = -half if self.frame == "centred" else 0
        self._low_position = self._low_cell - 0.5 if self.frame == "centred" else 0.0
        low, high = self._low_position, self._low_position + self.size
        cell_low, cell_high = float(self._low_cell), float(self._low_cell + self.size - 1)
        goal_low = np.tile(np.array([0.0, cell_low, cell_low], np.float32), (self.n_max, 1))
        goal_high = np.tile(np.array([1.0, cell_high, cell_high], np.float32), (self.n_max, 1))
        self.observation_space = spaces.Dict(
            {
                "observation": spaces.Box(
                    np.array([low, low, -1.0, -1.0], np.float32),
                    np.array([high, high, 1.0, 1.0], np.float32),
                    dtype=np.float32,
                ),
                "achieved_goal": spaces.Box(cell_low, cell_high, (2,), np.float32),
                "desired_goal": spaces.Box(goal_low, goal_high, dtype=np.float32),
            }
        )
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self._position = np.zeros(2, np.float64)
        self._heading = 0.0

    def _observation(self) -> np.ndarray:
        return np.array(
            [self._position[0], self._position[1], np.cos(self._heading), np.sin(self._heading)],
            np.float32,
        )

    def _update_cell(self) -> None:
        # The float32 cast may turn a position just below the upper edge into the edge itself;
        # the observation box includes it, so it stays valid.
        low = self._low_position
        self._position = np.mod(self._position - low, self.size) + low
        cell = np.mod(np.round(self._position) - self._low_cell, self.size) + self._low_cell
        self._cell = cell.astype(np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Place the car and draw a new set of goal cells.

        :param seed: seed for ``self.np_random``.
        :param options: ``None`` or ``{}`` (no reset options).
        :return: observation and info (``is_success``, ``n_goals``).
        """
        check_reset_options(options)
        super().reset(seed=seed)
        if self.start == "random":
            self._position = self.np_random.uniform(0.0, self.size, 2) + self._low_position
            self._heading = float(self.np_random.uniform(-np.pi, np.pi))
        else:
            self._position = np.zeros(2, np.float64)
            self._heading = 0.0
        self._update_cell()
        count = int(self.np_random.integers(1, self.n_max + 1))
        if self.frame == "corner":
            flat = self.np_random.choice(self.size * self.size, size=count, replace=False)
        else:
            # The reference's draw (same seed, same goal set): a subset without shuffling, then
            # rows sorted by (y, x).
            flat = self.np_random.choice(self.size * self.size, size=count, replace=False, shuffle=False)
        cells = np.stack([flat // self.size, flat % self.size], axis=1) + self._low_cell
        if self.frame == "centred":
            cells = cells[np.lexsort(cells.T)]
        self._set_goal_cells(cells)
        return self._obs(), self._reset_info(count)

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Steer by ``action``, then move one unit along the heading.

        :param action: steering in ``[-1, 1]``, shape ``(1,)``.
        :return: observation, reward, terminated, truncated, info.
        """
        steer = validate_box_action(action, self.action_space)
        self._heading = float(
            np.mod(self._heading + self.turn_rate * float(steer[0]) + np.pi, 2 * np.pi) - np.pi
        )
        self._position = self._position + np.array([np.cos(self._heading), np.sin(self._heading)])
        self._update_cell()
        return self._step_result()

    def render(self) -> np.ndarray | None:
        """Top view: goal cells green, the car's cell red.

        :return: an ``(84, 84, 3)`` uint8 frame when ``render_mode="rgb_array"``, else ``None``.
        """
        if self.render_mode != "rgb_array":
            return None
        scale = self.cell_pixels
        frame = np.full((self.size * scale, self.size * scale, 3), 255, np.uint8)
        low = self._low_cell
        for gate, x, y in self._goals[: self.n_goals]:
            if gate > 0:
                _paint(frame, self.size - 1 - int(y - low), int(x - low), scale, (0, 170, 0))
        cell_x, cell_y = int(self._cell[0] - low), int(self._cell[1] - low)
        _paint(frame, self.size - 1 - cell_y, cell_x, scale, (220, 0, 0))
        return frame


class NoisySeekEnv(_MultiGoalEnv):
    """Walk with noisy moves on an unbounded plane and visit clustered goal cells.

    ## Description
    The agent moves on the unbounded plane; each move is the action (rescaled into the unit
    disc) plus standard normal noise. Goal cells come in clusters whose number is geometric,
    so the number of goals and where they lie vary a lot between episodes; every step that
    ends on a goal cell pays +1 (the multi-goal setting of ReenGAGE, Levine & Feizi 2023).

    ## Action Space
    ``Box(-1, 1, (2,), float32)``: ``pos <- pos + a / max(1, ||a||_2) + N(0, I)``.

    ## Observation Space
    ``Dict`` of float32 boxes:
    ``observation`` ``(2,)`` = the position;
    ``achieved_goal`` ``(2,)`` = the rounded position (integers).
    The plane is unbounded, but the boxes declare ``[-10000, 10000]`` because Gymnasium's
    checker rejects infinite bounds: a 40-step episode moves at most 40 units plus noise of
    standard deviation about 6.3 per axis, and goals lie within a few tens of units of the
    origin, so leaving the box is practically impossible within the time limit;
    ``desired_goal`` ``(200, 3)`` = rows ``(b_i, x_i, y_i)``, gate ``b_i = 1`` for the real
    goals (first rows, distinct cells), all-zero padding rows after them.

    ## Rewards
    ``sum_i b_i^2 [achieved_goal == (x_i, y_i)]``: +1 for every step that ends on a goal cell.

    ## Starting State
    Position ``(0, 0)``. Goals with ``goal_sampling="paper"`` (default; the appendix and the
    reference noisy_seek.py): ``n' ~ U{1..200}`` goals and ``K ~ Geometric(0.15)`` clusters
    (``K >= 1``); cluster probabilities ``p ~ Dirichlet(1, ..., 1)`` of order ``K``; cluster
    sizes ``Multinomial(n', p)``; centres ``c_k ~ N(0, 10^2 I)``; each goal of cluster ``k``
    is ``round(c_k + N(0, 2^2 I))``; duplicates are removed (rows sorted by ``(y, x)``).
    This gives about 70 goals on average. With ``goal_sampling="geometric"`` (v0) each of
    the ``K`` clusters holds ``Geometric(0.15)`` goals instead, duplicates are removed and at
    most 200 goals are kept (the first 200 drawn): about 38 on average. All randomness comes
    from ``self.np_random``, drawn in the reference's order, so a seed gives the reference's
    goals.

    ## Episode End
    Never terminates; truncated after 40 steps by the registered time limit.
    ``info["is_success"]``: with ``success="episode"`` (default) 1.0 from the first step that
    ends on a goal cell on (0.0 at reset), with ``success="step"`` 1.0 on such steps only.
    SB3's ``HerReplayBuffer`` does not apply (see the module docstring).

    ## Arguments
    ``render_mode`` (``None`` or ``"rgb_array"``): ``render()`` returns a 96x96x3 uint8 top
    view of the square ``[-24, 24)^2`` at 2 pixels per cell (goals green, agent red;
    anything outside the square is not drawn).
    ``goal_sampling`` (``"paper"`` or ``"geometric"``), ``success`` (``"episode"`` or
    ``"step"``): see above; the defaults are the paper's.

    ## Registered Configurations
    ``zoo/NoisySeek-v1`` (defaults), ``zoo/NoisySeek-v0`` (``goal_sampling="geometric"``,
    ``success="step"``); both with 40 steps.

    ## Version History
    v1: the paper's goal sampling (``n' ~ U{1..200}`` goals split over the clusters by a
    Dirichlet-multinomial draw) and success meaning "a goal cell was reached this episode".
    v0: initial version (Geometric(0.15) goals per cluster, per-step success).
    """

    cluster_probability = 0.15
    goals_per_cluster_probability = 0.15
    centre_scale = 10.0
    spread = 2.0
    view_radius = 24
    #: Declared bound of the plane (Gymnasium warns on infinite boxes); see the docstring.
    plane_bound = 10_000.0
    cell_pixels = 2

    def __init__(
        self, render_mode: str | None = None, goal_sampling: str = "paper", success: str = "episode"
    ) -> None:
        """:param render_mode: ``None`` or ``"rgb_array"``.
        :param goal_sampling: ``"paper"`` or ``"geometric"`` (see the class docstring).
        :param success: ``"episode"`` or ``"step"`` (see the class docstring).
        """
        super().__init__(render_mode, success)
        self.goal_sampling = _check_choice("goal_sampling", goal_sampling, ("paper", "geometric"))
        bound = self.plane_bound
        goal_low = np.tile(np.array([0.0, -bound, -bound], np.float32), (self.n_max, 1))
        goal_high = np.tile(np.array([1.0, bound, bound], np.float32), (self.n_max, 1))
        plane = spaces.Box(-bound, bound, (2,), np.float32)
        self.observation_space = spaces.Dict(
            {
                "observation": plane,
                "achieved_goal": plane,
                "desired_goal": spaces.Box(goal_low, goal_high, dtype=np.float32),
            }
        )
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._position = np.zeros(2, np.float64)

    def _observation(self) -> np.ndarray:
        return self._position.astype(np.float32)

    def _update_cell(self) -> None:
        self._cell = np.round(self._position).astype(np.float32)

    def _sample_goal_cells(self) -> np.ndarray:
        if self.goal_sampling == "paper":
            return self._sample_paper_goal_cells()
        clusters = int(self.np_random.geometric(self.cluster_probability))
        cells: list[tuple[float, float]] = []
        seen: set[tuple[float, float]] = set()
        for _ in range(clusters):
            centre = self.np_random.normal(0.0, self.centre_scale, 2)
            count = int(self.np_random.geometric(self.goals_per_cluster_probability))
            points = np.round(centre + self.np_random.normal(0.0, self.spread, (count, 2)))
            for x, y in points:
                cell = (float(x), float(y))
                if cell not in seen and len(cells) < self.n_max:
                    seen.add(cell)
                    cells.append(cell)
        return np.array(cells, np.float32).reshape(-1, 2)

    def _sample_paper_goal_cells(self) -> np.ndarray:
        rng = self.np_random
        # Draw order as in the reference, so that a seed reproduces its goal sets.
        n_drawn = int(rng.integers(1, self.n_max + 1))
        clusters = int(rng.geometric(self.cluster_probability))
        weights = rng.dirichlet(np.ones(clusters))
        sizes = rng.multinomial(n_drawn, weights, size=1)[0]
        points = []
        for size in sizes:
            centre = rng.normal(0.0, self.centre_scale, 2)
            points.append(np.rint(centre + rng.normal(0.0, self.spread, (int(size), 2))))
        cells = np.unique(np.concatenate(points, axis=0), axis=0)
        return cells[np.lexsort(cells.T)].astype(np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Put the agent at the origin and draw new goal clusters.

        :param seed: seed for ``self.np_random``.
        :param options: ``None`` or ``{}`` (no reset options).
        :return: observation and info (``is_success``, ``n_goals``).
        """
        check_reset_options(options)
        super().reset(seed=seed)
        self._position = np.zeros(2, np.float64)
        self._update_cell()
        cells = self._sample_goal_cells()
        self._set_goal_cells(cells)
        return self._obs(), self._reset_info(len(cells))

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Move by the rescaled action plus standard normal noise.

        :param action: move in ``[-1, 1]^2``.
        :return: observation, reward, terminated, truncated, info.
        """
        move = validate_box_action(action, self.action_space).astype(np.float64)
        move = move / max(1.0, float(np.linalg.norm(move)))
        self._position = self._position + move + self.np_random.normal(0.0, 1.0, 2)
        self._update_cell()
        return self._step_result()

    def render(self) -> np.ndarray | None:
        """Top view of ``[-24, 24)^2``: goal cells green, the agent's cell red.

        :return: a ``(96, 96, 3)`` uint8 frame when ``render_mode="rgb_array"``, else ``None``.
        """
        if self.render_mode != "rgb_array":
            return None
        radius, scale = self.view_radius, self.cell_pixels
        frame = np.full((2 * radius * scale, 2 * radius * scale, 3), 255, np.uint8)

        def draw(x: float, y: float, colour: tuple[int, int, int]) -> None:
            col, row = int(x) + radius, radius - 1 - int(y)
            if 0 <= col < 2 * radius and 0 <= row < 2 * radius:
                _paint(frame, row, col, scale, colour)

        for _, x, y in self._goals[: self.n_goals]:
            draw(x, y, (0, 170, 0))
        draw(float(self._cell[0]), float(self._cell[1]), (220, 0, 0))
        return frame
