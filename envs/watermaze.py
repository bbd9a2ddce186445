"""Pixel Morris water maze: a first-person ray-cast pool with an invisible platform.

A numpy re-creation of DeepMind Lab's ``rooms_watermaze`` (Beattie et al. 2016, used by
Algorithm Distillation, Laskin et al. 2023): every frame is rendered by an analytic ray
caster, one ray per image column, all columns at once, without OpenGL. ``WatermazeDMLab``
wraps the real DMLab level behind the same actions and observation layout when
``deepmind_lab`` is installed.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .base import (
    KEY_DOWN,
    KEY_LEFT,
    KEY_RIGHT,
    KEY_UP,
    KeysToAction,
    check_discrete_action,
    check_render_mode,
    check_reset_options,
)

__all__ = ["WatermazeDMLab", "WatermazeEnv"]

Task = tuple[float, float]

#: Wall cues: (centre angle in degrees, half width in degrees, RGB colour, band bottom, band top),
#: the band given as fractions of the wall height. Distinct colours and shapes make every
#: direction recognisable, which the agent needs to remember where the platform is.
_CUES: tuple[tuple[float, float, tuple[int, int, int], float, float], ...] = (
    (0.0, 12.0, (220, 40, 40), 0.15, 0.85),
    (50.0, 7.0, (240, 200, 30), 0.45, 0.95),
    (105.0, 14.0, (40, 170, 60), 0.05, 0.55),
    (160.0, 6.0, (160, 60, 200), 0.10, 0.95),
    (205.0, 10.0, (30, 90, 220), 0.35, 0.75),
    (255.0, 8.0, (240, 130, 30), 0.05, 0.95),
    (300.0, 13.0, (30, 200, 200), 0.55, 0.95),
    (340.0, 5.0, (250, 250, 250), 0.05, 0.50),
)


def _pack(colours: np.ndarray) -> np.ndarray:
    """Pack uint8 RGB colours (..., 3) into uint32 values whose bytes in memory are R, G, B, 0."""
    padded = np.zeros((*colours.shape[:-1], 4), np.uint8)
    padded[..., :3] = colours
    return padded.view(np.uint32)[..., 0]


def _task_list(count: int, radius: float, seed: int) -> list[Task]:
    rng = np.random.default_rng(seed)
    distance = radius * np.sqrt(rng.uniform(0.0, 1.0, count))
    angle = rng.uniform(0.0, 2 * np.pi, count)
    return [(round(float(d * np.cos(a)), 4), round(float(d * np.sin(a)), 4)) for d, a in zip(distance, angle)]


def _is_test_task(task: Task) -> bool:
    # The test split holds out one quadrant of the pool (angle in [0, 90) degrees).
    angle = math.atan2(task[1], task[0])
    return 0.0 <= angle < math.pi / 2


class WatermazeEnv(gym.Env[np.ndarray, int]):
    """Find an invisible platform in a circular pool from first-person pixels.

    ## Description
    The agent swims in a circular pool of radius 1 surrounded by a wall with eight distinct
    coloured cues (different colours, widths and heights). Somewhere in the pool is an
    invisible platform of radius 0.15 whose centre is the task. Touching the platform pays
    +1 and teleports the agent to a random position, so within an episode an agent that
    remembers where the platform is can collect it again and again (a numpy version of
    DeepMind Lab's ``rooms_watermaze``, the pixel task of Algorithm Distillation).
    Frames are 72x96 RGB, rendered by a vectorised ray caster: one ray per column,
    ray/circle intersections solved analytically for all columns at once, walls shaded
    by distance, a fixed sky and floor background.

    ## Action Space
    ``Discrete(8)``: 0 forward (0.1), 1 backward (0.05), 2 strafe left (0.07),
    3 strafe right (0.07), 4 turn left (22.5 degrees), 5 turn right, 6 forward + turn left,
    7 forward + turn right (turn first, then move). Moves into the wall stop at the wall.

    Keyboard (``gymnasium.utils.play.play(env, wait_on_player=True)``,
    ``get_keys_to_action()``): up arrow or ``w`` forward, down arrow or ``s`` backward,
    ``a``/``d`` strafe left/right, left/right arrow or ``q``/``e`` turn left/right, up arrow
    with left/right arrow (or ``w`` with ``q``/``e``) forward + turn. There is no no-op
    action: pass ``wait_on_player=True``, otherwise ``play`` sends its ``noop=0`` (forward)
    at every frame with no key held.

    ## Observation Space
    ``Box(0, 255, (72, 96, 3), uint8)``: the first-person RGB frame (75 degree field of view).

    ## Rewards
    +1 on every step that ends within 0.15 of the platform centre (the agent is then
    respawned at a random position off the platform), 0 otherwise.

    ## Starting State
    Position uniform in the pool (off the platform), heading uniform, through
    ``self.np_random``. Without a task given, each reset draws a task from the train split.

    ## Episode End
    Never terminates; truncated after 50 steps by the registered time limit.
    ``info["task"]`` (platform centre) and ``info["platform_reached"]`` are in every info.

    ## Arguments
    ``task`` (``None`` or an ``(x, y)`` tuple from ``WatermazeEnv.tasks("all")``): fixed
    platform centre; ``reset(options={"task": t})`` switches to ``t`` for later resets too.
    ``render_mode`` (``None`` or ``"rgb_array"``): ``render()`` returns the current frame.
    Tasks: ``tasks(split)`` returns a fixed list of 64 platform centres drawn uniformly on
    the disc of radius 0.7 with seed 2023 (coordinates rounded to 4 decimals). Split by
    angle sector: ``"test"`` holds the centres with polar angle in ``[0, 90)`` degrees (one
    held-out quadrant), ``"train"`` the others, ``"all"`` both (train first).

    ## Registered Configurations
    ``zoo/Watermaze-v0`` (50 steps); ``gym.make_vec("zoo/Watermaze-v0", num_envs=N, tasks=[...])``
    builds the native :class:`~zoo.envs.vector.WatermazeVectorEnv`, which ray-casts all
    sub-environments' frames in one batch and equals N single environments step for step.

    ## Version History
    v0: initial version.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 15}

    height = 72
    width = 96
    field_of_view = math.radians(75.0)
    pool_radius = 1.0
    body_radius = 0.05
    platform_radius = 0.15
    wall_height = 0.8
    forward_speed = 0.1
    backward_speed = 0.05
    strafe_speed = 0.07
    turn_angle = math.radians(22.5)
    task_count = 64
    task_radius = 0.7
    task_seed = 2023

    def __init__(self, task: Task | None = None, render_mode: str | None = None) -> None:
        """:param task: a platform centre from ``tasks("all")``, or ``None`` to draw train tasks.
        :param render_mode: ``None`` or ``"rgb_array"``.
        """
        self.render_mode = check_render_mode(render_mode)
        self.observation_space = spaces.Box(0, 255, (self.height, self.width, 3), np.uint8)
        self.action_space = spaces.Discrete(8)
        self._all_tasks = self.tasks("all")
        self._train_tasks = self.tasks("train")
        self._fixed_task: Task | None = None if task is None else self._check_task(task)
        self._task: Task = self._fixed_task if self._fixed_task is not None else self._train_tasks[0]
        self._position = np.zeros(2, np.float64)
        self._heading = 0.0
        self._setup_renderer()
        self._frame = self._render_frame()

    # ----------------------------------------------------------------------------- tasks
    @classmethod
    def tasks(cls, split: str = "train", **kwargs: Any) -> list[Task]:
        """Return the fixed platform centres of a split.

        :param split: ``"train"``, ``"test"`` or ``"all"`` (train tasks first).
        :param kwargs: constructor arguments; none of them changes the task set.
        :return: a list of ``(x, y)`` tuples.
        """
        unknown = set(kwargs) - {"task", "render_mode"}
        if unknown:
            raise ValueError(f"arguments {sorted(unknown)} are not constructor arguments of WatermazeEnv")
        everything = _task_list(cls.task_count, cls.task_radius, cls.task_seed)
        train = [task for task in everything if not _is_test_task(task)]
        test = [task for task in everything if _is_test_task(task)]
        if split == "train":
            return train
        if split == "test":
            return test
        if split == "all":
            return train + test
        raise ValueError(f"split={split!r} is not allowed; use 'train', 'test' or 'all'")

    def _check_task(self, task: Any, name: str = "task") -> Task:
        try:
            candidate = (float(task[0]), float(task[1])) if len(task) == 2 else None
        except (TypeError, ValueError, IndexError):
            candidate = None
        if candidate not in self._all_tasks:
            raise ValueError(
                f"{name}={task!r} is not a Watermaze task; use one of WatermazeEnv.tasks('all') "
                f"({len(self._all_tasks)} platform centres)"
            )
        return candidate

    # The task interface the native vector environments (zoo.envs.vector) build on.
    def _validate_task(self, task: Any, name: str) -> Task:
        return self._check_task(task, name)

    def _task_spec_kwargs(self) -> dict[str, Any]:
        return {}

    def get_keys_to_action(self) -> KeysToAction:
        """Key codes -> action for ``gymnasium.utils.play.play`` (see Action Space in the class docstring).

        Key codes are pygame's (``ord(character)``, ``pygame.K_UP``, ...); combinations are
        sorted tuples, as ``play`` looks pressed keys up.
        """
        keys: dict[tuple[int | str, ...], int] = {
            (KEY_UP,): 0,
            ("w",): 0,
            (KEY_DOWN,): 1,
            ("s",): 1,
            ("a",): 2,
            ("d",): 3,
            (KEY_LEFT,): 4,
            ("q",): 4,
            (KEY_RIGHT,): 5,
            ("e",): 5,
            (KEY_UP, KEY_LEFT): 6,
            ("w", "q"): 6,
            (KEY_UP, KEY_RIGHT): 7,
            ("w", "e"): 7,
        }
        return {
            tuple(sorted(ord(key) if isinstance(key, str) else key for key in combination)): action
            for combination, action in keys.items()
        }

    @property
    def task(self) -> Task:
        """The current platform centre."""
        return self._task

    # ----------------------------------------------------------------------------- rendering
    def _setup_renderer(self) -> None:
        columns = np.arange(self.width) + 0.5 - self.width / 2
        self._focal = (self.width / 2) / math.tan(self.field_of_view / 2)
        # Column angle offsets, positive to the left (counter-clockwise).
        self._column_offsets = -np.arctan(columns / self._focal)
        self._column_cos = np.cos(self._column_offsets)
        self._rows = (np.arange(self.height, dtype=np.float64) + 0.5)[:, None]
        horizon = self.height / 2
        sky_shade = np.linspace(1.0, 0.75, int(horizon))[:, None]
        floor_shade = np.linspace(0.45, 1.0, self.height - int(horizon))[:, None]
        sky = sky_shade * np.array([150.0, 190.0, 235.0])
        floor = floor_shade * np.array([40.0, 110.0, 150.0])
        background = np.repeat(np.concatenate([sky, floor])[:, None, :], self.width, axis=1).astype(np.uint8)
        self._background = _pack(background)
        # Colour lookup by wall angle at 0.5 degree resolution: base wall with faint vertical
        # stripes every 15 degrees (motion parallax), plus the cue colour and band per angle.
        bins = 720
        angles = (np.arange(bins) + 0.5) * 360.0 / bins
        stripes = np.where(np.mod(angles, 15.0) < 1.0, 0.8, 1.0)
        self._wall_colour = stripes[:, None] * np.array([175.0, 165.0, 150.0])
        self._cue_colour = np.zeros((bins, 3))
        self._cue_band = np.full((bins, 2), 2.0)  # empty band where there is no cue
        for centre, half_width, colour, bottom, top in _CUES:
            inside = np.abs((angles - centre + 180.0) % 360.0 - 180.0) <= half_width
            self._cue_colour[inside] = colour
            self._cue_band[inside] = (bottom, top)
        self._angle_bins = bins

    def _render_frame(self) -> np.ndarray:
        return self._render_frames(self._position[None], np.array([self._heading]))[0]

    def _render_frames(self, positions: np.ndarray, headings: np.ndarray) -> np.ndarray:
        """Ray-cast the frames of ``n`` swimmers at once (the single env renders a batch of one).

        :param positions: ``(n, 2)`` positions in the pool.
        :param headings: ``(n,)`` headings in radians.
        :return: ``(n, 72, 96, 3)`` uint8 frames.
        """
        angles = headings[:, None] + self._column_offsets  # (n, width)
        direction_x, direction_y = np.cos(angles), np.sin(angles)
        x, y = positions[:, 0:1], positions[:, 1:2]
        # Ray p + t d meets the circle |q| = R at t = -p.d + sqrt((p.d)^2 - |p|^2 + R^2) (p inside).
        along = x * direction_x + y * direction_y
        distance = -along + np.sqrt(along * along - (x * x + y * y) + self.pool_radius**2)
        hit_angle = np.degrees(np.arctan2(y + distance * direction_y, x + distance * direction_x)) % 360.0
        bins = (hit_angle * (self._angle_bins / 360.0)).astype(np.intp) % self._angle_bins
        # Perpendicular distance removes the fish-eye effect.
        depth = np.maximum(distance * self._column_cos, 1e-3)
        wall_pixels = (self._focal * self.wall_height / depth)[:, None, :]  # (n, 1, width)
        top = self.height / 2 - wall_pixels / 2
        # Height above the wall's foot, as a fraction of the wall height, for every pixel.
        height_fraction = 1.0 - (self._rows - top) / wall_pixels  # (n, height, width)
        on_wall = (height_fraction >= 0.0) & (height_fraction < 1.0)
        band = self._cue_band[bins][:, None]  # (n, 1, width, 2)
        on_cue = on_wall & (height_fraction >= band[..., 0]) & (height_fraction < band[..., 1])
        shade = (1.0 / (1.0 + 0.35 * distance))[..., None]
        wall = _pack((self._wall_colour[bins] * shade).astype(np.uint8))[:, None]
        cue = _pack((self._cue_colour[bins] * (0.4 + 0.6 * shade)).astype(np.uint8))[:, None]
        # Selecting whole pixels packed as uint32 is several times faster than per channel.
        packed = np.where(on_cue, cue, np.where(on_wall, wall, self._background))
        frames = packed.view(np.uint8).reshape(len(headings), self.height, self.width, 4)
        return np.ascontiguousarray(frames[..., :3])

    def render(self) -> np.ndarray | None:
        """Return the current first-person frame.

        :return: a ``(72, 96, 3)`` uint8 frame when ``render_mode="rgb_array"``, else ``None``.
        """
        if self.render_mode != "rgb_array":
            return None
        return self._frame.copy()

    # ----------------------------------------------------------------------------- dynamics
    def _spawn(self, rng: np.random.Generator, task: Task) -> tuple[np.ndarray, float]:
        """Draw a position off the platform ``task``, then a heading, from ``rng``."""
        limit = self.pool_radius - self.body_radius
        platform = np.asarray(task)
        while True:
            distance = limit * math.sqrt(float(rng.uniform()))
            angle = float(rng.uniform(0.0, 2 * math.pi))
            position = np.array([distance * math.cos(angle), distance * math.sin(angle)])
            if np.linalg.norm(position - platform) > self.platform_radius:
                return position, float(rng.uniform(-math.pi, math.pi))

    def _respawn(self) -> None:
        self._position, self._heading = self._spawn(self.np_random, self._task)

    def _move(
        self, position: np.ndarray, heading: float, index: int, task: Task
    ) -> tuple[np.ndarray, float, bool]:
        """Apply action ``index``; return the new position, heading and whether the platform is reached."""
        if index in (4, 6):
            heading += self.turn_angle
        elif index in (5, 7):
            heading -= self.turn_angle
        heading = (heading + math.pi) % (2 * math.pi) - math.pi
        forward = np.array([math.cos(heading), math.sin(heading)])
        left = np.array([-forward[1], forward[0]])
        move = {
            0: self.forward_speed * forward,
            1: -self.backward_speed * forward,
            2: self.strafe_speed * left,
            3: -self.strafe_speed * left,
            6: self.forward_speed * forward,
            7: self.forward_speed * forward,
        }.get(index)
        if move is not None:
            position = position + move
            limit = self.pool_radius - self.body_radius
            norm = float(np.linalg.norm(position))
            position = position * (limit / norm) if norm > limit else position
        reached = bool(np.linalg.norm(position - np.asarray(task)) <= self.platform_radius)
        return position, heading, reached

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode at a random position.

        :param seed: seed for ``self.np_random``.
        :param options: ``{"task": (x, y)}`` switches the platform centre (kept for later resets).
        :return: the frame and info (``task``, ``platform_reached``).
        """
        options = check_reset_options(options, ("task",))
        super().reset(seed=seed)
        if options.get("task") is not None:
            self._fixed_task = self._check_task(options["task"])
        if self._fixed_task is not None:
            self._task = self._fixed_task
        else:
            self._task = self._train_tasks[int(self.np_random.integers(len(self._train_tasks)))]
        self._respawn()
        self._frame = self._render_frame()
        return self._frame.copy(), {"task": self._task, "platform_reached": False}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Move or turn, pay +1 and respawn when the platform is reached.

        :param action: an integer in ``[0, 8)``.
        :return: frame, reward, terminated, truncated, info.
        """
        index = check_discrete_action(action, 8)
        self._position, self._heading, reached = self._move(self._position, self._heading, index, self._task)
        if reached:
            self._respawn()
        self._frame = self._render_frame()
        return (
            self._frame.copy(),
            float(reached),
            False,
            False,
            {"task": self._task, "platform_reached": reached},
        )


#: DMLab action vectors (look left/right pixels, look down/up, strafe left/right, move
#: back/forward, fire, jump, crouch) for the 8 actions of ``WatermazeEnv``, as in IMPALA.
DMLAB_ACTIONS: tuple[tuple[int, ...], ...] = (
    (0, 0, 0, 1, 0, 0, 0),
    (0, 0, 0, -1, 0, 0, 0),
    (0, 0, -1, 0, 0, 0, 0),
    (0, 0, 1, 0, 0, 0, 0),
    (-20, 0, 0, 0, 0, 0, 0),
    (20, 0, 0, 0, 0, 0, 0),
    (-20, 0, 0, 1, 0, 0, 0),
    (20, 0, 0, 1, 0, 0, 0),
)

_DMLAB_INSTALL = (
    "WatermazeDMLab needs DeepMind Lab's Python module `deepmind_lab`, which is not on PyPI: "
    "build it from https://github.com/google-deepmind/lab (bazel build -c opt "
    "//python/pip_package:build_pip_package, then pip install the wheel it writes) and make sure "
    "`import deepmind_lab` works. Without it, use the numpy re-creation gym.make('zoo/Watermaze-v0')."
)


class WatermazeDMLab(gym.Env[np.ndarray, int]):
    """DeepMind Lab's ``rooms_watermaze`` behind the actions and frames of ``WatermazeEnv``.

    ## Description
    The real DMLab level (``contributed/dmlab30/rooms_watermaze``) rendered by DMLab at 72x96,
    for checking results of the numpy ``WatermazeEnv`` against the original. Requires the
    ``deepmind_lab`` module (not on PyPI); constructing it without the module raises
    ``ImportError`` with install instructions. Not registered with Gymnasium.

    ## Action Space
    ``Discrete(8)``, the same meanings as ``WatermazeEnv``, mapped to DMLab action vectors
    (``DMLAB_ACTIONS``; turns are 20 pixels of look per frame), each repeated
    ``action_repeat`` frames.

    ## Observation Space
    ``Box(0, 255, (72, 96, 3), uint8)``: DMLab's ``RGB_INTERLEAVED`` observation.

    ## Rewards
    The level's own rewards (summed over the repeated frames).

    ## Starting State
    Chosen by the level; ``reset(seed=...)`` passes the seed to DMLab.

    ## Episode End
    Terminates when DMLab reports the episode is over (the level's own time limit).

    ## Arguments
    ``level`` (str): DMLab level name. ``action_repeat`` (int >= 1, default 4).
    ``renderer`` (``"software"`` or ``"hardware"``). ``render_mode`` (``None`` or ``"rgb_array"``).

    ## Registered Configurations
    None (construct the class directly).

    ## Version History
    v0: initial version.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(
        self,
        level: str = "contributed/dmlab30/rooms_watermaze",
        action_repeat: int = 4,
        renderer: str = "software",
        render_mode: str | None = None,
    ) -> None:
        """:param level: DMLab level name.
        :param action_repeat: frames each action is repeated for (>= 1).
        :param renderer: ``"software"`` or ``"hardware"``.
        :param render_mode: ``None`` or ``"rgb_array"``.
        """
        try:
            import deepmind_lab  # type: ignore[import-not-found]
        except ImportError as error:
            raise ImportError(_DMLAB_INSTALL) from error
        if isinstance(action_repeat, bool) or not isinstance(action_repeat, int) or action_repeat < 1:
            raise ValueError(f"action_repeat={action_repeat!r} is not allowed; use an integer >= 1")
        if renderer not in ("software", "hardware"):
            raise ValueError(f"renderer={renderer!r} is not allowed; use 'software' or 'hardware'")
        self.render_mode = check_render_mode(render_mode)
        self.action_repeat = action_repeat
        self.observation_space = spaces.Box(0, 255, (WatermazeEnv.height, WatermazeEnv.width, 3), np.uint8)
        self.action_space = spaces.Discrete(len(DMLAB_ACTIONS))
        self._actions = np.array(DMLAB_ACTIONS, dtype=np.intc)
        self._lab = deepmind_lab.Lab(
            level,
            ["RGB_INTERLEAVED"],
            config={"width": str(WatermazeEnv.width), "height": str(WatermazeEnv.height), "fps": "60"},
            renderer=renderer,
        )
        self._frame = np.zeros(self.observation_space.shape, np.uint8)

    def _observe(self) -> np.ndarray:
        self._frame = np.array(self._lab.observations()["RGB_INTERLEAVED"], dtype=np.uint8)
        return self._frame.copy()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a DMLab episode.

        :param seed: seed passed to ``gymnasium`` and to DMLab.
        :param options: ``None`` or ``{}`` (no reset options).
        :return: the frame and an empty info.
        """
        check_reset_options(options)
        super().reset(seed=seed)
        lab_seed = int(self.np_random.integers(2**31 - 1))
        self._lab.reset(seed=lab_seed)
        return self._observe(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply one of the 8 actions for ``action_repeat`` frames.

        :param action: an integer in ``[0, 8)``.
        :return: frame, reward, terminated, truncated, info.
        """
        index = check_discrete_action(action, 8)
        reward = float(self._lab.step(self._actions[index], num_steps=self.action_repeat))
        if not self._lab.is_running():
            return self._frame.copy(), reward, True, False, {}
        return self._observe(), reward, False, False, {}

    def render(self) -> np.ndarray | None:
        """Return the last frame.

        :return: a ``(72, 96, 3)`` uint8 frame when ``render_mode="rgb_array"``, else ``None``.
        """
        return self._frame.copy() if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        """Close the DMLab process."""
        if getattr(self, "_lab", None) is not None:
            self._lab.close()
            self._lab = None
