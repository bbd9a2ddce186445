"""Native numpy vector versions of the meta-RL environments (bandit, grid worlds, Watermaze).

``gym.make_vec("zoo/DarkRoom-v0", num_envs=N, tasks=[...])`` builds these classes (they are
the registered ``vector_entry_point``). Each sub-environment runs one task; the bandit and the
grid worlds step the whole batch with a handful of numpy operations, with no python loop over
sub-environments. Watermaze moves each swimmer with the single environment's own (scalar)
dynamics and ray-casts all frames in one batch, the expensive part.

Semantics match N single environments in a :class:`gymnasium.vector.SyncVectorEnv` step for
step (observations, rewards, terminations, truncations) when sub-environment ``i`` is
``gym.make(env_id, task=tasks[i])`` (or no task when ``tasks`` is omitted) seeded with
``seed + i``: every random draw of sub-environment ``i`` comes from its own generator,
created exactly as the single environment's ``np_random``, and consumed in the same order.

Autoreset: ``autoreset_mode`` is Gymnasium's ``AutoresetMode`` (``metadata["autoreset_mode"]``):
``NEXT_STEP`` (default, as Gymnasium's own vector envs), ``SAME_STEP`` (the finished
sub-environment is reset inside the same ``step``; its last observation and info are in
``info["final_obs"]`` / ``info["final_info"]`` with masks ``"_final_obs"`` /
``"_final_info"``) or ``DISABLED`` (reset with ``reset(options={"reset_mask": mask})``).

Infos are dicts of arrays, each with a Gymnasium-style boolean mask under ``"_<key>"``, laid
out as :class:`gymnasium.vector.SyncVectorEnv` lays out the single environments' infos:
``"task"`` (an object array of each sub-environment's task, the single environment's
``info["task"]``) and ``"task_index"`` (index into :attr:`TaskVectorEnv.tasks`) at every step
and reset, ``"has_key"`` for Key-to-Door, ``"regret"`` for the bandit and
``"platform_reached"`` for Watermaze. With ``SAME_STEP`` autoreset, the masks inside
``info["final_info"]`` mark the sub-environments that finished, as in ``SyncVectorEnv``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from .bandit import N_ARMS, AdversarialBanditEnv
from .base import (
    MOVES,
    GridWorldEnv,
    TaskEnv,
    check_bool,
    check_integer,
    check_reset_options,
    render_grid,
    uniform_to_index,
)
from .darkroom import DarkRoomEnv, DarkRoomHardEnv
from .key_to_door import DarkKeyToDoorEnv
from .watermaze import WatermazeEnv

__all__ = [
    "BanditVectorEnv",
    "DarkKeyToDoorVectorEnv",
    "DarkRoomHardVectorEnv",
    "DarkRoomVectorEnv",
    "TaskVectorEnv",
    "WatermazeVectorEnv",
    "make_multitask_vec_env",
]


class UniformStreams:
    """One ``np.random.Generator`` per sub-environment, read in blocks of doubles.

    ``Generator.random(k)`` yields the same doubles as ``k`` calls of ``Generator.random()``,
    so drawing a block ahead and handing the values out one by one reproduces what a single
    environment's ``self.np_random.random()`` calls would return.

    :param num_envs: number of sub-environments.
    :param block: doubles drawn per generator call.
    """

    def __init__(self, num_envs: int, block: int = 64) -> None:
        self.num_envs = num_envs
        self.block = block
        self.generators: list[np.random.Generator | None] = [None] * num_envs
        self.buffer = np.zeros((num_envs, block), dtype=np.float64)
        self.position = np.full(num_envs, block, dtype=np.int64)

    def seed(self, seeds: Sequence[int | None]) -> None:
        """Reseed: an int seeds sub-environment ``i`` as ``reset(seed=...)`` seeds a single
        environment; ``None`` keeps an existing generator (or creates one from entropy)."""
        for index, seed in enumerate(seeds):
            if seed is not None or self.generators[index] is None:
                self.generators[index] = seeding.np_random(seed)[0]
                self.position[index] = self.block

    def draw(self, env_ids: np.ndarray) -> np.ndarray:
        """Return the next double of each sub-environment in ``env_ids`` (unique indices)."""
        empty = env_ids[self.position[env_ids] >= self.block]
        for index in empty.tolist():
            generator = self.generators[index]
            assert generator is not None
            self.buffer[index] = generator.random(self.block)
            self.position[index] = 0
        values = self.buffer[env_ids, self.position[env_ids]]
        self.position[env_ids] += 1
        return values


class TaskVectorEnv(VectorEnv):
    """Base of the native meta-RL vector environments (see the module docstring).

    :param num_envs: number of sub-environments.
    :param tasks: one task per sub-environment (``len(tasks) == num_envs``), each valid for
        the single environment; ``None`` gives every sub-environment a fresh random train task
        at every reset, as a single environment without a task does (then :attr:`tasks` is
        the train split and ``info["task_index"]`` indexes it).
    :param max_episode_steps: truncation length (the registration's value by default).
    :param autoreset_mode: ``AutoresetMode`` or its string value.
    :param task_in_obs: observations become float32 ``concat(one-hot(cell), one-hot(task
        index))`` (the bandit: ``concat([0.0], one-hot(task index))``).
    :param render_mode: ``None`` or ``"rgb_array"`` (``render()`` returns one frame per
        sub-environment).
    :param seed: seeds sub-environment ``i`` with ``seed + i`` before the first reset.
    :param env_kwargs: arguments of the single environment (e.g. ``size``).
    """

    single_env_class: ClassVar[type[TaskEnv]]
    default_max_episode_steps: ClassVar[int]

    def __init__(
        self,
        num_envs: int = 1,
        tasks: Sequence[Any] | None = None,
        max_episode_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        task_in_obs: bool = False,
        render_mode: str | None = None,
        seed: int | None = None,
        **env_kwargs: Any,
    ) -> None:
        self.num_envs = check_integer("num_envs", num_envs, 1)
        self.task_in_obs = check_bool("task_in_obs", task_in_obs)
        if seed is not None:
            seed = check_integer("seed", seed, 0)
        self.metadata = {}
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)
        self.set_autoreset_mode(autoreset_mode)
        if max_episode_steps is None:
            max_episode_steps = self.default_max_episode_steps
        self.max_episode_steps = check_integer("max_episode_steps", max_episode_steps, 1)
        # A prototype single environment validates tasks and arguments and provides spaces.
        self.single_env: TaskEnv = self.single_env_class(render_mode=render_mode, **env_kwargs)
        self.render_mode = render_mode
        self.env_kwargs = env_kwargs
        if tasks is None:
            self.fixed_tasks = False
            self.tasks: list[Hashable] = self.single_env_class.tasks(
                split="train", **self.single_env._task_spec_kwargs()
            )
        else:
            if isinstance(tasks, str | bytes | dict) or not isinstance(tasks, Iterable):
                raise ValueError(
                    f"tasks={tasks!r} is not allowed; give a list with one task per sub-environment "
                    f"({self.num_envs}), or None"
                )
            tasks = list(tasks)
            if len(tasks) != self.num_envs:
                raise ValueError(
                    f"tasks has {len(tasks)} entries but num_envs={self.num_envs}; give one task per sub-environment"
                )
            self.fixed_tasks = True
            self.tasks = [
                self.single_env._validate_task(task, f"tasks[{index}]") for index, task in enumerate(tasks)
            ]
        self.single_action_space = self.single_env.action_space
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._num_actions = int(self.single_action_space.n)  # type: ignore[attr-defined]
        if self.task_in_obs:
            width = self._raw_obs_width() + len(self.tasks)
            self.single_observation_space = spaces.Box(0.0, 1.0, (width,), np.float32)
        else:
            self.single_observation_space = self.single_env.observation_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.metadata = {
            **self.metadata,
            "render_modes": ["rgb_array"],
            "render_fps": self.single_env.metadata["render_fps"],
        }
        # Tasks as an object array, so that info["task"] is one gather (SyncVectorEnv's layout).
        self._task_objects = np.empty(len(self.tasks), dtype=object)
        for index, task in enumerate(self.tasks):
            self._task_objects[index] = task
        self._all_ids = np.arange(self.num_envs)
        self._all_true = np.ones(self.num_envs, dtype=bool)
        # Larger blocks mean fewer python-level generator calls; cap the buffer at ~32 MiB.
        self._streams = UniformStreams(self.num_envs, block=int(np.clip(2**22 // self.num_envs, 16, 256)))
        self._streams.seed([None if seed is None else seed + index for index in range(self.num_envs)])
        self.task_index = np.arange(self.num_envs) if self.fixed_tasks else np.zeros(self.num_envs, np.int64)
        self.elapsed_steps = np.zeros(self.num_envs, dtype=np.int64)
        self._setup_tables()

    # -- hooks ---------------------------------------------------------------------------
    def _raw_obs_width(self) -> int:
        raise NotImplementedError

    def _setup_tables(self) -> None:
        """Build per-task arrays from :attr:`tasks` and allocate per-sub-env state."""
        raise NotImplementedError

    def _reset_state(self, env_ids: np.ndarray) -> None:
        """Reset the episode state of ``env_ids`` (after their task was chosen)."""
        raise NotImplementedError

    def _advance(self, actions: np.ndarray, stepping: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Apply ``actions`` to the sub-environments in ``stepping``; return (reward, terminated)
        for all sub-environments (values of the others are overwritten by the caller)."""
        raise NotImplementedError

    def _raw_observations(self) -> np.ndarray:
        raise NotImplementedError

    def _extra_infos(self, infos: dict[str, Any], stepped: np.ndarray) -> None:
        """Add family-specific info arrays; ``stepped`` masks the sub-envs that stepped."""

    def _frame(self, index: int) -> np.ndarray:
        raise NotImplementedError

    # -- shared machinery ------------------------------------------------------------------
    def _observations(self) -> np.ndarray:
        raw = self._raw_observations()
        if not self.task_in_obs:
            return raw
        width = self._raw_obs_width()
        obs = np.zeros((self.num_envs, width + len(self.tasks)), dtype=np.float32)
        if raw.ndim == 1:
            obs[self._all_ids, raw] = 1.0
        else:
            obs[:, :width] = raw
        obs[self._all_ids, width + self.task_index] = 1.0
        return obs

    def _reset_envs(self, env_ids: np.ndarray) -> None:
        if not self.fixed_tasks:
            self.task_index[env_ids] = uniform_to_index(self._streams.draw(env_ids), len(self.tasks))
        self._reset_state(env_ids)
        self.elapsed_steps[env_ids] = 0

    def _infos(self, stepped: np.ndarray) -> dict[str, Any]:
        infos: dict[str, Any] = {
            "task": self._task_objects[self.task_index],
            "_task": self._all_true.copy(),
            "task_index": self.task_index.copy(),
            "_task_index": self._all_true.copy(),
        }
        self._extra_infos(infos, stepped)
        return infos

    def _check_actions(self, actions: Any) -> np.ndarray:
        array = np.asarray(actions)
        if array.shape != (self.num_envs,):
            raise ValueError(f"actions has shape {array.shape}; expected ({self.num_envs},) integers")
        if array.dtype.kind not in "iu":
            raise ValueError(
                f"actions has dtype {array.dtype}; expected integers in [0, {self._num_actions - 1}]"
            )
        if array.min() < 0 or array.max() >= self._num_actions:
            raise ValueError(f"actions={array!r} has values outside [0, {self._num_actions - 1}]")
        return array.astype(np.int64, copy=False)

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all sub-environments, or those in ``options["reset_mask"]``.

        :param seed: an int seeds sub-environment ``i`` with ``seed + i``; a list gives one
            seed (or ``None``) per sub-environment; ``None`` keeps the generators.
        :param options: ``{"reset_mask": bool array of shape (num_envs,)}`` resets only the
            marked sub-environments.
        """
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, int | np.integer):
            seeds = [int(seed) + index for index in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(
                    f"seed has {len(seeds)} entries; expected one per sub-environment ({self.num_envs})"
                )
        options = check_reset_options(
            options, ("reset_mask",), hint=" (tasks are fixed at construction: tasks=[...])"
        )
        mask = self._all_true
        if "reset_mask" in options:
            mask = np.asarray(options["reset_mask"])
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise ValueError(
                    f"options['reset_mask'] must be a bool array of shape ({self.num_envs},), got {mask!r}"
                )
        env_ids = np.flatnonzero(mask)
        self._streams.seed([seeds[index] if mask[index] else None for index in range(self.num_envs)])
        self._reset_envs(env_ids)
        self._needs_reset[env_ids] = False
        return self._observations(), self._infos(np.zeros(self.num_envs, dtype=bool))

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-environment (see the module docstring for autoreset).

        :param actions: integer array of shape ``(num_envs,)``.
        """
        actions = self._check_actions(actions)
        autoreset = self.autoreset_mode == AutoresetMode.NEXT_STEP and bool(self._needs_reset.any())
        stepping = np.flatnonzero(~self._needs_reset) if autoreset else self._all_ids
        rewards, terminated = self._advance(actions, stepping)
        self.elapsed_steps += 1
        truncated = self.elapsed_steps >= self.max_episode_steps
        stepped = self._all_true
        if autoreset:
            resetting = np.flatnonzero(self._needs_reset)
            self._reset_envs(resetting)
            rewards[resetting] = 0.0
            terminated[resetting] = False
            truncated[resetting] = False
            stepped = ~self._needs_reset
        done = terminated | truncated
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            infos = self._same_step_reset(done)
        else:
            self._needs_reset = done
            infos = self._infos(stepped)
        return self._observations(), rewards, terminated, truncated, infos

    def _same_step_reset(self, done: np.ndarray) -> dict[str, Any]:
        if not done.any():
            return self._infos(self._all_true)
        final_obs = self._observations()
        final_info = self._infos(self._all_true)
        for key in [key for key in final_info if key.startswith("_")]:
            final_info[key] = final_info[key] & done  # only the finished sub-envs have a final info
        self._reset_envs(np.flatnonzero(done))
        # As in SyncVectorEnv: a reset sub-env's top-level info is its reset info.
        infos = self._infos(~done)
        infos["final_obs"] = final_obs
        infos["_final_obs"] = done
        infos["final_info"] = final_info
        infos["_final_info"] = done.copy()
        return infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        """Return one RGB frame per sub-environment (``render_mode="rgb_array"``)."""
        if self.render_mode != "rgb_array":
            return None
        return tuple(self._frame(index) for index in range(self.num_envs))

    def set_autoreset_mode(self, autoreset_mode: AutoresetMode | str) -> None:
        """Switch the autoreset mode (used by :class:`zoo.envs.sb3.SB3VecEnv`); reset after.

        :param autoreset_mode: ``AutoresetMode`` or its name in any case, with or without
            ``-``/``_`` (``"same-step"``, ``"SameStep"``, ``"SAME_STEP"``).
        """
        names = {mode.value.lower(): mode for mode in AutoresetMode}
        if isinstance(autoreset_mode, AutoresetMode):
            mode = autoreset_mode
        elif (
            isinstance(autoreset_mode, str)
            and autoreset_mode.replace("-", "").replace("_", "").lower() in names
        ):
            mode = names[autoreset_mode.replace("-", "").replace("_", "").lower()]
        else:
            allowed = ", ".join(repr(mode.value) for mode in AutoresetMode)
            raise ValueError(
                f"autoreset_mode={autoreset_mode!r} is not allowed; use one of {allowed} (or 'same-step', ...)"
            )
        self.autoreset_mode = mode
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self._needs_reset[:] = False

    def task_of(self, index: int) -> Hashable:
        """Return the current task of sub-environment ``index``."""
        return self.tasks[int(self.task_index[index])]


class _GridVectorEnv(TaskVectorEnv):
    single_env: GridWorldEnv

    def _raw_obs_width(self) -> int:
        return self.single_env.size * self.single_env.size

    def _setup_tables(self) -> None:
        size = self.single_env.size
        self.size = size
        rows, cols = np.divmod(np.arange(size * size), size)
        next_rows = np.clip(rows[:, None] + MOVES[None, :, 0], 0, size - 1)
        next_cols = np.clip(cols[:, None] + MOVES[None, :, 1], 0, size - 1)
        # next_cell[cell * 5 + action]: one gather moves the whole batch.
        self._next_cell = (next_rows * size + next_cols).reshape(-1)
        self.cell = np.full(self.num_envs, (size // 2) * size + size // 2, dtype=np.int64)
        self._setup_task_tables()

    def _setup_task_tables(self) -> None:
        raise NotImplementedError

    def _reset_state(self, env_ids: np.ndarray) -> None:
        size = self.size
        if self.single_env.random_start:
            row = uniform_to_index(self._streams.draw(env_ids), size)
            col = uniform_to_index(self._streams.draw(env_ids), size)
            self.cell[env_ids] = row * size + col
        else:
            self.cell[env_ids] = (size // 2) * size + size // 2

    def _move(self, actions: np.ndarray) -> None:
        self.cell = self._next_cell[self.cell * len(MOVES) + actions]

    def _raw_observations(self) -> np.ndarray:
        return self.cell.copy()

    def _cell_tuple(self, cell: int) -> tuple[int, int]:
        row, col = divmod(int(cell), self.size)
        return row, col


class DarkRoomVectorEnv(_GridVectorEnv):
    """Native vector version of :class:`~zoo.envs.darkroom.DarkRoomEnv` (module docstring).

    ``gym.make_vec("zoo/DarkRoom-v0", num_envs=N, tasks=[(row, col), ...])``.
    """

    single_env_class = DarkRoomEnv
    default_max_episode_steps = 20
    _terminate_on_goal = False

    def _setup_task_tables(self) -> None:
        self._task_goal = np.array([row * self.size + col for row, col in self.tasks], dtype=np.int64)  # type: ignore[misc]
        self.goal = self._task_goal[self.task_index]

    def _reset_state(self, env_ids: np.ndarray) -> None:
        super()._reset_state(env_ids)
        self.goal[env_ids] = self._task_goal[self.task_index[env_ids]]

    def _advance(self, actions: np.ndarray, stepping: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._move(actions)
        reached = self.cell == self.goal
        terminated = reached if self._terminate_on_goal else np.zeros(self.num_envs, dtype=bool)
        return reached.astype(np.float64), terminated

    def _frame(self, index: int) -> np.ndarray:
        return render_grid(
            self.size,
            [(self._cell_tuple(self.goal[index]), "goal"), (self._cell_tuple(self.cell[index]), "agent")],
        )


class DarkRoomHardVectorEnv(DarkRoomVectorEnv):
    """Native vector version of :class:`~zoo.envs.darkroom.DarkRoomHardEnv` (module docstring)."""

    single_env_class = DarkRoomHardEnv
    default_max_episode_steps = 20
    _terminate_on_goal = True


class DarkKeyToDoorVectorEnv(_GridVectorEnv):
    """Native vector version of :class:`~zoo.envs.key_to_door.DarkKeyToDoorEnv` (module docstring).

    The random start cells come from per-sub-environment generators (seed ``seed + i``), so
    the batch equals single environments in a ``SyncVectorEnv``. Infos add ``"has_key"``.
    """

    single_env_class = DarkKeyToDoorEnv
    default_max_episode_steps = 50

    def _setup_task_tables(self) -> None:
        size = self.size
        self._task_key = np.array([key[0] * size + key[1] for key, _ in self.tasks], dtype=np.int64)  # type: ignore[misc]
        self._task_door = np.array([door[0] * size + door[1] for _, door in self.tasks], dtype=np.int64)  # type: ignore[misc]
        self.key = self._task_key[self.task_index]
        self.door = self._task_door[self.task_index]
        self.has_key = np.zeros(self.num_envs, dtype=bool)

    def _reset_state(self, env_ids: np.ndarray) -> None:
        super()._reset_state(env_ids)
        self.key[env_ids] = self._task_key[self.task_index[env_ids]]
        self.door[env_ids] = self._task_door[self.task_index[env_ids]]
        self.has_key[env_ids] = False

    def _advance(self, actions: np.ndarray, stepping: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._move(actions)
        picked = (self.cell == self.key) & ~self.has_key
        self.has_key |= picked
        opened = (self.cell == self.door) & self.has_key
        return picked.astype(np.float64) + opened, opened

    def _extra_infos(self, infos: dict[str, Any], stepped: np.ndarray) -> None:
        infos["has_key"] = self.has_key.copy()
        infos["_has_key"] = self._all_true.copy()

    def _frame(self, index: int) -> np.ndarray:
        markers = [(self._cell_tuple(self.door[index]), "door")]
        if not self.has_key[index]:
            markers.append((self._cell_tuple(self.key[index]), "key"))
        markers.append((self._cell_tuple(self.cell[index]), "agent"))
        return render_grid(self.size, markers)


class BanditVectorEnv(TaskVectorEnv):
    """Native vector version of :class:`~zoo.envs.bandit.AdversarialBanditEnv` (module docstring).

    Every pull ends an episode, so with the default ``NEXT_STEP`` autoreset every other
    ``step`` only resets; use ``autoreset_mode="same-step"`` to pull at every step. Each pull
    draws one double from the sub-environment's generator. Infos add ``"regret"`` (masked
    by ``"_regret"`` for the sub-envs that pulled).
    """

    single_env_class = AdversarialBanditEnv
    default_max_episode_steps = 1

    def _raw_obs_width(self) -> int:
        return 1

    def _setup_tables(self) -> None:
        self._task_means = np.array(self.tasks, dtype=np.float64).reshape(len(self.tasks), N_ARMS)
        self._task_best = self._task_means.max(axis=1)
        self._regret = np.zeros(self.num_envs, dtype=np.float64)

    def _reset_state(self, env_ids: np.ndarray) -> None:
        self._regret[env_ids] = 0.0

    def _advance(self, actions: np.ndarray, stepping: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        task = self.task_index[stepping]
        chosen = self._task_means[task, actions[stepping]]
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        rewards[stepping] = self._streams.draw(stepping) < chosen
        self._regret = np.zeros(self.num_envs, dtype=np.float64)
        self._regret[stepping] = self._task_best[task] - chosen
        return rewards, np.ones(self.num_envs, dtype=bool)

    def _raw_observations(self) -> np.ndarray:
        return np.zeros((self.num_envs, 1), dtype=np.float32)

    def _extra_infos(self, infos: dict[str, Any], stepped: np.ndarray) -> None:
        infos["regret"] = self._regret.copy()
        infos["_regret"] = stepped.copy()

    def _frame(self, index: int) -> np.ndarray:
        env = AdversarialBanditEnv(task=self.task_of(index), render_mode="rgb_array")
        env.reset()
        return env.render()  # type: ignore[return-value]


class WatermazeVectorEnv(TaskVectorEnv):
    """Native vector version of :class:`~zoo.envs.watermaze.WatermazeEnv` (module docstring).

    ``gym.make_vec("zoo/Watermaze-v0", num_envs=N, tasks=[(x, y), ...])``. Each swimmer moves
    with the single environment's dynamics and draws its respawns from its own generator;
    all frames are ray-cast in one batch. Infos add ``"platform_reached"``. ``task_in_obs``
    is not supported (observations are pixels).
    """

    single_env_class = WatermazeEnv  # type: ignore[assignment]
    single_env: WatermazeEnv  # type: ignore[assignment]
    default_max_episode_steps = 50

    def _raw_obs_width(self) -> int:
        raise ValueError("task_in_obs=True is not supported by zoo/Watermaze-v0 (pixel observations)")

    def _setup_tables(self) -> None:
        self._task_centres = np.array(self.tasks, dtype=np.float64).reshape(len(self.tasks), 2)
        self.positions = np.zeros((self.num_envs, 2), dtype=np.float64)
        self.headings = np.zeros(self.num_envs, dtype=np.float64)
        self.platform_reached = np.zeros(self.num_envs, dtype=bool)
        self._frames = self.single_env._render_frames(self.positions, self.headings)

    def _generator(self, index: int) -> np.random.Generator:
        generator = self._streams.generators[index]
        assert generator is not None
        return generator

    def _reset_envs(self, env_ids: np.ndarray) -> None:
        # The draws of WatermazeEnv.reset, in its order: the task (integers), then the spawn.
        for index in env_ids.tolist():
            generator = self._generator(index)
            if not self.fixed_tasks:
                self.task_index[index] = int(generator.integers(len(self.tasks)))
            self._reset_state(np.array([index]))
        self.elapsed_steps[env_ids] = 0

    def _reset_state(self, env_ids: np.ndarray) -> None:
        for index in env_ids.tolist():
            task = self.task_of(index)
            self.positions[index], self.headings[index] = self.single_env._spawn(self._generator(index), task)  # type: ignore[arg-type]
        self.platform_reached[env_ids] = False

    def _advance(self, actions: np.ndarray, stepping: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        self.platform_reached[:] = False
        for index in stepping.tolist():
            task = self.task_of(index)
            position, heading, reached = self.single_env._move(
                self.positions[index],
                float(self.headings[index]),
                int(actions[index]),
                task,  # type: ignore[arg-type]
            )
            if reached:
                position, heading = self.single_env._spawn(self._generator(index), task)  # type: ignore[arg-type]
            self.positions[index], self.headings[index] = position, heading
            self.platform_reached[index] = reached
            rewards[index] = float(reached)
        return rewards, np.zeros(self.num_envs, dtype=bool)

    def _raw_observations(self) -> np.ndarray:
        self._frames = self.single_env._render_frames(self.positions, self.headings)
        return self._frames.copy()

    def _extra_infos(self, infos: dict[str, Any], stepped: np.ndarray) -> None:
        infos["platform_reached"] = self.platform_reached.copy()
        infos["_platform_reached"] = self._all_true.copy()

    def _frame(self, index: int) -> np.ndarray:
        return self._frames[index].copy()


def make_multitask_vec_env(
    env_id: str,
    tasks: Sequence[Any],
    task_in_obs: bool = False,
    seed: int | None = None,
    **kwargs: Any,
) -> TaskVectorEnv:
    """Return the native vector environment of ``env_id`` where sub-environment ``i`` runs ``tasks[i]``.

    :param env_id: a meta-RL id with a native vector version (bandit, grid worlds, Watermaze).
    :param tasks: one task per sub-environment (repeat a task to give it more sub-envs).
    :param task_in_obs: observation = float32 ``concat(one-hot(cell), one-hot(task index))``,
        so that one policy can tell the tasks apart.
    :param seed: sub-environment ``i`` is seeded with ``seed + i`` before the first reset.
    :param kwargs: further arguments (``autoreset_mode``, ``render_mode``, ``size``, ...).
    """
    tasks = list(tasks)
    if not tasks:
        raise ValueError("tasks=[] is not allowed; give at least one task")
    env = gym.make_vec(env_id, num_envs=len(tasks), tasks=tasks, task_in_obs=task_in_obs, seed=seed, **kwargs)
    if not isinstance(env, TaskVectorEnv):
        raise ValueError(
            f"env_id={env_id!r} has no native vector version; use one of the zoo bandit/grid ids"
        )
    return env
