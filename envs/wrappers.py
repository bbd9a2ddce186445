"""Small wrappers shared by the zoo's agents and environments.

:class:`TaskOneHotObservation` is the single-environment twin of the native vector
environments' ``task_in_obs=True`` (see :func:`zoo.envs.vector.make_multitask_vec_env`):
wrapping ``gym.make(env_id, task=tasks[i])`` gives, step for step, the observations of
sub-environment ``i`` of ``make_multitask_vec_env(env_id, tasks, task_in_obs=True)``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = ["TaskOneHotObservation", "task_one_hot_width"]


def task_one_hot_width(observation_space: spaces.Space) -> int:
    """Width of the observation part of a task-in-obs vector: ``n`` for ``Discrete(n)``
    (one-hot), the flattened size for a ``Box``.

    :param observation_space: the wrapped environment's observation space.
    """
    if isinstance(observation_space, spaces.Discrete):
        return int(observation_space.n)
    if isinstance(observation_space, spaces.Box):
        return int(np.prod(observation_space.shape))
    raise ValueError(
        f"observation_space={observation_space!r} is not supported; use a Discrete or Box observation space"
    )


class TaskOneHotObservation(gym.Wrapper):
    """Observation = float32 ``concat(one-hot(cell) or flattened obs, one-hot(task index))``.

    The task index is the position of ``info["task"]`` in ``tasks``; the wrapped environment
    must report its task in ``info["task"]`` (every zoo meta-RL environment does).

    :param env: a zoo meta-RL environment with a ``Discrete`` or ``Box`` observation space.
    :param tasks: the task list that defines the indices (e.g. the tasks of a multi-task run).
    """

    def __init__(self, env: gym.Env, tasks: Sequence[Any]) -> None:
        super().__init__(env)
        self.tasks: list[Hashable] = [_hashable(task) for task in tasks]
        if not self.tasks:
            raise ValueError("tasks=[] is not allowed; give at least one task")
        self._index = {task: index for index, task in enumerate(self.tasks)}
        self._width = task_one_hot_width(env.observation_space)
        self._discrete = isinstance(env.observation_space, spaces.Discrete)
        self.observation_space = spaces.Box(0.0, 1.0, (self._width + len(self.tasks),), np.float32)
        self.task_index = 0

    def _encode(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        task = _hashable(info.get("task"))
        if task not in self._index:
            raise ValueError(f"info['task']={task!r} is not in the wrapper's tasks ({len(self.tasks)} tasks)")
        self.task_index = self._index[task]
        encoded = np.zeros(self._width + len(self.tasks), dtype=np.float32)
        if self._discrete:
            encoded[int(observation)] = 1.0
        else:
            encoded[: self._width] = np.asarray(observation, dtype=np.float32).reshape(-1)
        encoded[self._width + self.task_index] = 1.0
        return encoded

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        """Reset the wrapped environment and encode its observation."""
        observation, info = self.env.reset(seed=seed, options=options)
        return self._encode(observation, info), info

    def step(self, action: Any) -> tuple[np.ndarray, Any, bool, bool, dict]:
        """Step the wrapped environment and encode its observation."""
        observation, reward, terminated, truncated, info = self.env.step(action)
        return self._encode(observation, info), reward, terminated, truncated, info


def _hashable(task: Any) -> Hashable:
    """Nested sequences (e.g. lists from JSON) become tuples so that tasks compare and hash."""
    if isinstance(task, np.ndarray):
        task = task.tolist()
    if isinstance(task, list | tuple):
        return tuple(_hashable(item) for item in task)
    return task
