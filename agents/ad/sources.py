"""Source algorithms whose learning histories Algorithm Distillation imitates, and their collection.

Fast numpy sources run one task per sub-environment of a vector environment, in lockstep:

* :class:`UCB` and :class:`ThompsonSampling` for the bandit;
* :class:`TabularQLearning` for the dark grid worlds (one Q-table per task);
* :class:`NoisyExpert` ("noise distillation"): a scripted optimal policy whose ε decays
  from 1 to 0 over the history, so the history still shows improvement.

:class:`SB3Source` trains a Stable-Baselines3 algorithm (PPO, A2C, DQN, ...) from scratch on
each task and records every transition of its single learning stream with a callback.

:func:`collect_histories` writes the histories to a dataset directory (see
:mod:`zoo.agents.ad.dataset`), one task at a time, and resumes where it stopped.
"""

from __future__ import annotations

import copy
import inspect
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from zoo.envs.base import check_integer
from zoo.envs.watermaze import WatermazeEnv

from .dataset import History, HistoryDataset, HistoryWriter, _task_to_json, describe_space

__all__ = [
    "UCB",
    "NoisyExpert",
    "SB3Source",
    "Source",
    "TabularQLearning",
    "ThompsonSampling",
    "check_source",
    "collect_histories",
    "make_task_vector_env",
    "resolve_tasks",
]


def resolve_tasks(
    env_id: str, tasks: Iterable[Any] | None, split: str, env_kwargs: dict[str, Any] | None = None
) -> list[Any]:
    """The tasks to run as a list: ``tasks`` itself, or every task of ``split`` when it is None.

    :param env_id: a meta-RL environment id.
    :param tasks: a sequence (or other iterable) of tasks, or None.
    :param split: the task split used when ``tasks`` is None.
    :param env_kwargs: environment constructor arguments (e.g. ``{"size": 3}``).
    :return: a non-empty list of tasks.
    :raises ValueError: naming ``tasks`` when it is a count, a string or otherwise not a collection
        of tasks, or when it is empty.
    """
    import zoo.envs

    if tasks is None:
        return list(zoo.envs.tasks(env_id, split, **(env_kwargs or {})))
    if isinstance(tasks, (str, bytes, dict)) or not isinstance(tasks, Iterable):
        # tasks=100 reads as "100 tasks": say how to ask for that.
        hint = (
            " (for the first n tasks: tasks=zoo.envs.tasks(env_id, split)[:n])"
            if isinstance(tasks, int)
            else ""
        )
        raise ValueError(
            f"tasks={tasks!r} is not allowed; give a sequence of tasks, or None for every task of "
            f"split={split!r}{hint}"
        )
    resolved = list(tasks)
    if not resolved:
        raise ValueError("tasks=[] is empty; give at least one task")
    return resolved


def make_task_vector_env(
    env_id: str, tasks: Sequence[Any], env_kwargs: dict[str, Any] | None = None, vectorization: str = "auto"
) -> gym.vector.VectorEnv:
    """A vector environment whose sub-environment ``i`` runs ``tasks[i]``.

    :param env_id: a meta-RL environment id.
    :param tasks: one task per sub-environment.
    :param env_kwargs: constructor arguments (e.g. ``size``).
    :param vectorization: ``"native"`` (the env's numpy vector version,
        ``gym.make_vec(id, num_envs=N, tasks=...)``), ``"sync"`` (a SyncVectorEnv of single
        environments) or ``"auto"`` (native when the env registers one).
    """
    if vectorization not in ("auto", "native", "sync"):
        raise ValueError(f"vectorization={vectorization!r} is not allowed; use 'auto', 'native' or 'sync'")
    if len(tasks) == 0:
        raise ValueError("tasks=[] is empty; give at least one task")
    env_kwargs = dict(env_kwargs or {})
    spec = gym.spec(env_id)
    if vectorization == "native" or (vectorization == "auto" and spec.vector_entry_point is not None):
        return gym.make_vec(
            env_id,
            num_envs=len(tasks),
            vectorization_mode="vector_entry_point",
            tasks=list(tasks),
            **env_kwargs,
        )
    return gym.vector.SyncVectorEnv([partial(gym.make, env_id, task=task, **env_kwargs) for task in tasks])


class VectorPolicy(ABC):
    """A batch of per-task learners driven in lockstep by :func:`run_vectorised`."""

    @abstractmethod
    def act(self, observations: np.ndarray, acting: np.ndarray) -> np.ndarray:
        """Actions for every sub-environment (rows where ``acting`` is False are ignored)."""

    def observe(
        self,
        acting: np.ndarray,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        next_observations: np.ndarray,
    ) -> None:
        """Learn from the transitions of the ``acting`` rows (``next_observations``: true final obs at an end).

        The default learns nothing (scripted and evaluated policies).
        """
        return None


def _final_observations(
    next_observations: np.ndarray, infos: dict[str, Any], ended: np.ndarray, mode: AutoresetMode
) -> np.ndarray:
    if mode != AutoresetMode.SAME_STEP or not ended.any():
        return next_observations
    result = np.array(next_observations, copy=True)
    final = infos.get("final_obs")
    mask = infos.get("_final_obs", ended)
    for index in np.flatnonzero(ended & mask):
        result[index] = final[index]
    return result


def run_vectorised(
    env: gym.vector.VectorEnv, policy: VectorPolicy, episodes: int, seed: int, max_episode_steps: int
) -> list[History]:
    """Run ``policy`` on every sub-environment until each has ``episodes`` episodes; record them.

    Works with the NEXT_STEP and SAME_STEP autoreset modes: in NEXT_STEP mode the step after
    an episode end only resets that sub-environment, and it is neither recorded nor learned from.

    :param env: the vector environment (one task per sub-environment).
    :param policy: the learners.
    :param episodes: episodes to record per sub-environment.
    :param seed: seed of ``env.reset``.
    :param max_episode_steps: upper bound of an episode's length (sizes the buffers).
    """
    n = env.num_envs
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if isinstance(mode, str):
        mode = AutoresetMode(mode)
    observations, _ = env.reset(seed=seed)
    observations = np.asarray(observations)
    capacity = episodes * max_episode_steps
    buffer_observations = np.zeros((n, capacity, *observations.shape[1:]), dtype=observations.dtype)
    buffer_actions = np.zeros((n, capacity), dtype=np.int64)
    buffer_rewards = np.zeros((n, capacity), dtype=np.float32)
    buffer_dones = np.zeros((n, capacity), dtype=bool)
    buffer_terminated = np.zeros((n, capacity), dtype=bool)
    buffer_truncated = np.zeros((n, capacity), dtype=bool)
    buffer_final = np.zeros((n, episodes, *observations.shape[1:]), dtype=observations.dtype)
    lengths = np.zeros(n, dtype=np.int64)
    finished = np.zeros(n, dtype=np.int64)
    pending_reset = np.zeros(n, dtype=bool)
    while (finished < episodes).any():
        acting = ~pending_reset
        actions = np.asarray(policy.act(observations, acting), dtype=np.int64)
        next_observations, rewards, terminated, truncated, infos = env.step(actions)
        next_observations = np.asarray(next_observations)
        rewards = np.asarray(rewards, dtype=np.float32)
        terminated = np.asarray(terminated, dtype=bool) & acting
        truncated = np.asarray(truncated, dtype=bool) & acting
        ended = terminated | truncated
        record = np.flatnonzero(acting & (finished < episodes))
        if (lengths[record] >= capacity).any():
            raise RuntimeError(f"an episode ran longer than max_episode_steps={max_episode_steps}")
        slots = lengths[record]
        buffer_observations[record, slots] = observations[record]
        buffer_actions[record, slots] = actions[record]
        buffer_rewards[record, slots] = rewards[record]
        buffer_dones[record, slots] = ended[record]
        buffer_terminated[record, slots] = terminated[record]
        buffer_truncated[record, slots] = truncated[record]
        final = _final_observations(next_observations, infos, ended, mode)
        ending = record[ended[record]]
        buffer_final[ending, finished[ending]] = final[ending]
        lengths[record] += 1
        finished[record] += ended[record]
        policy.observe(acting, observations, actions, rewards, terminated, truncated, final)
        pending_reset = ended if mode == AutoresetMode.NEXT_STEP else np.zeros(n, dtype=bool)
        observations = next_observations
    return [
        History(
            buffer_observations[index, : lengths[index]].copy(),
            buffer_actions[index, : lengths[index]].copy(),
            buffer_rewards[index, : lengths[index]].copy(),
            buffer_dones[index, : lengths[index]].copy(),
            buffer_terminated[index, : lengths[index]].copy(),
            buffer_truncated[index, : lengths[index]].copy(),
            buffer_final[index, : finished[index]].copy(),
        )
        for index in range(n)
    ]


class Source(ABC):
    """A source RL algorithm: learns each task from scratch and returns its learning history."""

    #: Name stored in the dataset manifest.
    name: str = "source"

    @abstractmethod
    def hyperparameters(self) -> dict[str, Any]:
        """JSON-compatible hyper-parameters (stored in the manifest)."""

    @abstractmethod
    def collect(
        self, env_id: str, env_kwargs: dict[str, Any], tasks: Sequence[Any], episodes: int, seed: int
    ) -> list[History]:
        """Learn every task from scratch for ``episodes`` episodes; one history per task.

        :param env_id: environment id.
        :param env_kwargs: constructor arguments.
        :param tasks: the tasks of this batch.
        :param episodes: episodes per task.
        :param seed: seed of this batch.
        """

    def unsuitable_for(self, env_id: str, env: gym.Env) -> str | None:
        """Why this source cannot learn ``env`` (``None`` when it can); checked before collecting.

        :param env_id: environment id.
        :param env: one environment of ``env_id`` (its spaces and spec).
        """
        return None


class VectorisedSource(Source):
    """A numpy source that learns all tasks of a batch at once on a vector environment.

    :param vectorization: see :func:`make_task_vector_env`.
    """

    def __init__(self, vectorization: str = "auto") -> None:
        self.vectorization = vectorization

    @abstractmethod
    def make_policy(
        self, env: gym.vector.VectorEnv, tasks: Sequence[Any], episodes: int, rng: np.random.Generator
    ) -> VectorPolicy:
        """Fresh learners for the tasks of one batch."""

    def collect(
        self, env_id: str, env_kwargs: dict[str, Any], tasks: Sequence[Any], episodes: int, seed: int
    ) -> list[History]:
        env = make_task_vector_env(env_id, tasks, env_kwargs, self.vectorization)
        try:
            spec = gym.spec(env_id)
            max_steps = spec.max_episode_steps or 1000
            policy = self.make_policy(env, tasks, episodes, np.random.default_rng(seed))
            return run_vectorised(env, policy, episodes, seed, max_steps)
        finally:
            env.close()


def _check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    if not (value >= 0 if allow_zero else value > 0) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be {'>= 0' if allow_zero else '> 0'} and finite")


class _BanditPolicy(VectorPolicy):
    def __init__(self, n: int, arms: int, rng: np.random.Generator) -> None:
        self.counts = np.zeros((n, arms))
        self.sums = np.zeros((n, arms))
        self.rng = rng

    def observe(
        self,
        acting: np.ndarray,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        next_observations: np.ndarray,
    ) -> None:
        rows = np.flatnonzero(acting)
        np.add.at(self.counts, (rows, actions[rows]), 1.0)
        np.add.at(self.sums, (rows, actions[rows]), rewards[rows])


class _UCBPolicy(_BanditPolicy):
    def __init__(self, n: int, arms: int, rng: np.random.Generator, exploration: float) -> None:
        super().__init__(n, arms, rng)
        self.exploration = exploration

    def act(self, observations: np.ndarray, acting: np.ndarray) -> np.ndarray:
        total = self.counts.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            means = self.sums / self.counts
            bonus = self.exploration * np.sqrt(2.0 * np.log(np.maximum(total, 1.0)) / self.counts)
        scores = np.where(self.counts == 0, np.inf, means + bonus)
        # Random tie-breaking keeps the first pulls of untried arms in random order.
        scores = scores + 1e-9 * self.rng.random(scores.shape)
        return np.argmax(scores, axis=1)


class _ThompsonPolicy(_BanditPolicy):
    def act(self, observations: np.ndarray, acting: np.ndarray) -> np.ndarray:
        # Beta-Bernoulli posterior; rewards in [0, 1] are treated as success probabilities.
        successes = self.sums
        failures = self.counts - self.sums
        samples = self.rng.beta(1.0 + successes, 1.0 + failures)
        return np.argmax(samples, axis=1)


def _discrete_actions(env: gym.vector.VectorEnv) -> int:
    space = env.single_action_space
    if not isinstance(space, gym.spaces.Discrete):
        raise ValueError(f"action_space={space} is not Discrete; this source needs discrete actions")
    return int(space.n)


class _BanditSource(VectorisedSource):
    """A bandit algorithm: it never looks at observations, so it only fits one-pull episodes."""

    def unsuitable_for(self, env_id: str, env: gym.Env) -> str | None:
        one_pull = env.spec is not None and env.spec.max_episode_steps == 1
        if one_pull and isinstance(env.action_space, gym.spaces.Discrete):
            return None
        return (
            f"{self.name!r} is a bandit algorithm; it ignores observations, so it only fits one-pull "
            "episodes (max_episode_steps=1) with discrete arms"
        )


class UCB(_BanditSource):
    """UCB1 on every bandit task: pull ``argmax mean + exploration * sqrt(2 ln t / n)``.

    :param exploration: scale of the confidence bonus.
    :param vectorization: see :func:`make_task_vector_env`.
    """

    name = "ucb"

    def __init__(self, exploration: float = 1.0, vectorization: str = "auto") -> None:
        super().__init__(vectorization)
        _check_positive("exploration", exploration, allow_zero=True)
        self.exploration = exploration

    def hyperparameters(self) -> dict[str, Any]:
        return {"exploration": self.exploration}

    def make_policy(
        self, env: gym.vector.VectorEnv, tasks: Sequence[Any], episodes: int, rng: np.random.Generator
    ) -> VectorPolicy:
        return _UCBPolicy(env.num_envs, _discrete_actions(env), rng, self.exploration)


class ThompsonSampling(_BanditSource):
    """Beta-Bernoulli Thompson sampling on every bandit task.

    :param vectorization: see :func:`make_task_vector_env`.
    """

    name = "thompson"

    def hyperparameters(self) -> dict[str, Any]:
        return {}

    def make_policy(
        self, env: gym.vector.VectorEnv, tasks: Sequence[Any], episodes: int, rng: np.random.Generator
    ) -> VectorPolicy:
        return _ThompsonPolicy(env.num_envs, _discrete_actions(env), rng)


def _epsilon_schedule(
    episode: np.ndarray, episodes: int, start: float, end: float, fraction: float
) -> np.ndarray:
    """Linear decay from ``start`` to ``end`` over the first ``fraction`` of the episodes."""
    horizon = fraction * max(episodes - 1, 1)
    if horizon <= 0:
        return np.full(np.shape(episode), end, dtype=np.float64)
    progress = np.clip(episode / horizon, 0.0, 1.0)
    return start + (end - start) * progress


class _QLearningPolicy(VectorPolicy):
    def __init__(
        self,
        n: int,
        states: int,
        actions: int,
        episodes: int,
        rng: np.random.Generator,
        source: TabularQLearning,
    ) -> None:
        self.observations = states
        table = (n, states * source.return_levels, actions)
        self.q = np.full(table, source.initial_value, dtype=np.float64)
        if source.planning_sweeps:
            # The learned model of Dyna-Q: the last outcome of every (state, action) tried so far.
            self.known = np.zeros(table, dtype=bool)
            self.next_state = np.zeros(table, dtype=np.int64)
            self.reward = np.zeros(table, dtype=np.float64)
            self.ends = np.zeros(table, dtype=bool)
        self.returns = np.zeros(n)  # return so far in the current episode
        self.episode = np.zeros(n)
        self.episodes = episodes
        self.rng = rng
        self.source = source
        self.rows = np.arange(n)

    def act(self, observations: np.ndarray, acting: np.ndarray) -> np.ndarray:
        epsilon = _epsilon_schedule(
            self.episode,
            self.episodes,
            self.source.epsilon_start,
            self.source.epsilon_end,
            self.source.epsilon_fraction,
        )
        values = self.q[self.rows, self._states(self.rows, observations)]
        noisy = values + 1e-9 * self.rng.random(values.shape)
        greedy = np.argmax(noisy, axis=1)
        random_actions = self.rng.integers(values.shape[1], size=len(greedy))
        return np.where(self.rng.random(len(greedy)) < epsilon, random_actions, greedy)

    def _states(
        self, rows: np.ndarray, observations: np.ndarray, returns: np.ndarray | None = None
    ) -> np.ndarray:
        """Q-table rows: the observation, and the return so far in the episode (capped) as a second index."""
        returns = self.returns[rows] if returns is None else returns
        level = np.clip(np.floor(returns), 0, self.source.return_levels - 1).astype(np.int64)
        return observations.astype(np.int64) + self.observations * level

    def observe(
        self,
        acting: np.ndarray,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        next_observations: np.ndarray,
    ) -> None:
        rows = np.flatnonzero(acting)
        states = self._states(rows, observations[rows])
        next_states = self._states(rows, next_observations[rows], self.returns[rows] + rewards[rows])
        bootstrap = np.where(terminated[rows], 0.0, self.q[rows, next_states].max(axis=1))
        target = rewards[rows] + self.source.gamma * bootstrap
        current = self.q[rows, states, actions[rows]]
        self.q[rows, states, actions[rows]] = current + self.source.learning_rate * (target - current)
        if self.source.planning_sweeps:
            self._remember(rows, states, actions[rows], rewards[rows], terminated[rows], next_states)
            self._plan(rows)
        ended = terminated[rows] | truncated[rows]
        self.returns[rows] = np.where(ended, 0.0, self.returns[rows] + rewards[rows])
        self.episode[rows] += ended

    def _remember(
        self,
        rows: np.ndarray,
        states: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        next_states: np.ndarray,
    ) -> None:
        self.known[rows, states, actions] = True
        self.next_state[rows, states, actions] = next_states
        self.reward[rows, states, actions] = rewards
        self.ends[rows, states, actions] = terminated

    def _plan(self, rows: np.ndarray) -> None:
        """Dyna-Q planning: ``planning_sweeps`` synchronous sweeps of the Q-update over the model.

        Every (state, action) tried so far is updated from its remembered outcome; untried ones
        keep their initial value, so optimism still drives exploration.
        """
        if not len(rows):
            return
        known = self.known[rows]
        next_state = self.next_state[rows]
        reward = self.reward[rows]
        continues = ~self.ends[rows]
        q = self.q[rows]
        flat = next_state.reshape(len(rows), -1)
        for _ in range(self.source.planning_sweeps):
            best = q.max(axis=2)
            bootstrap = np.take_along_axis(best, flat, axis=1).reshape(q.shape)
            target = reward + self.source.gamma * np.where(continues, bootstrap, 0.0)
            q = np.where(known, q + self.source.learning_rate * (target - q), q)
        self.q[rows] = q


class TabularQLearning(VectorisedSource):
    """ε-greedy tabular Q-learning, one Q-table per task (discrete observations).

    :param learning_rate: step size of the update.
    :param gamma: discount factor.
    :param epsilon_start: exploration rate at the first episode.
    :param epsilon_end: exploration rate after the decay.
    :param epsilon_fraction: fraction of the episodes over which ε decays linearly.
    :param initial_value: initial Q-values. Optimism makes exploration systematic: with
        ``initial_value = 1 / (1 - gamma)`` (the largest return a reward of at most 1 per step
        allows), ``epsilon_start = epsilon_end = 0`` and ``learning_rate = 1``, the greedy learner
        tries every (state, action) it has not tried before it settles, then converges to the
        optimal return in a deterministic task.
    :param return_levels: the Q-table is indexed by the observation and by the return so far
        in the episode, capped at ``return_levels - 1`` (1: the observation only). 2 lets it tell
        "key held" from "key not yet found" in Dark Key-to-Door, whose observation is the cell only.
    :param planning_sweeps: Dyna-Q (Sutton & Barto 2018, section 8.2): after every real step, this
        many sweeps of the same update over every (state, action) tried so far, from the last
        outcome each gave (a learned deterministic model). 0 (the default) is plain Q-learning.
        With optimism and ``learning_rate = 1`` it is value iteration on the explored part of the
        task: the greedy learner heads for the nearest untried pair and, once a reward is found,
        for the reward, so it learns a task in far fewer episodes.
    :param vectorization: see :func:`make_task_vector_env`.
    """

    name = "q_learning"

    def __init__(
        self,
        learning_rate: float = 0.3,
        gamma: float = 0.9,
        epsilon_start: float = 1.0,
        epsilon_end: float = 0.05,
        epsilon_fraction: float = 0.5,
        initial_value: float = 0.0,
        return_levels: int = 1,
        planning_sweeps: int = 0,
        vectorization: str = "auto",
    ) -> None:
        super().__init__(vectorization)
        check_integer("return_levels", return_levels, 1)
        check_integer("planning_sweeps", planning_sweeps, 0)
        if not 0 < learning_rate <= 1:
            raise ValueError(f"learning_rate={learning_rate!r} must be in (0, 1]")
        if not 0 <= gamma <= 1:
            raise ValueError(f"gamma={gamma!r} must be in [0, 1]")
        for name, value in (("epsilon_start", epsilon_start), ("epsilon_end", epsilon_end)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name}={value!r} must be in [0, 1]")
        if not 0 < epsilon_fraction <= 1:
            raise ValueError(f"epsilon_fraction={epsilon_fraction!r} must be in (0, 1]")
        self.learning_rate = learning_rate
        self.gamma = gamma
        self.epsilon_start = epsilon_start
        self.epsilon_end = epsilon_end
        self.epsilon_fraction = epsilon_fraction
        self.initial_value = initial_value
        self.return_levels = return_levels
        self.planning_sweeps = planning_sweeps

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "gamma": self.gamma,
            "epsilon_start": self.epsilon_start,
            "epsilon_end": self.epsilon_end,
            "epsilon_fraction": self.epsilon_fraction,
            "initial_value": self.initial_value,
            "return_levels": self.return_levels,
            "planning_sweeps": self.planning_sweeps,
        }

    def unsuitable_for(self, env_id: str, env: gym.Env) -> str | None:
        discrete = isinstance(env.observation_space, gym.spaces.Discrete) and isinstance(
            env.action_space, gym.spaces.Discrete
        )
        if discrete:
            return None
        return (
            f"tabular Q-learning needs Discrete observations and actions, not observation_space="
            f"{env.observation_space} and action_space={env.action_space}"
        )

    def make_policy(
        self, env: gym.vector.VectorEnv, tasks: Sequence[Any], episodes: int, rng: np.random.Generator
    ) -> VectorPolicy:
        space = env.single_observation_space
        if not isinstance(space, gym.spaces.Discrete):
            raise ValueError(f"observation_space={space} is not Discrete; tabular Q-learning needs one")
        return _QLearningPolicy(env.num_envs, int(space.n), _discrete_actions(env), episodes, rng, self)


#: Row and column change of the grid actions (0 no-op, 1 up, 2 right, 3 down, 4 left), see zoo.envs.base.
_GRID_MOVES = np.array([(0, 0), (-1, 0), (0, 1), (1, 0), (0, -1)], dtype=np.int64)


def _step_towards(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Grid action moving ``position`` (n, 2) one step towards ``target`` (rows first, then columns)."""
    delta = target - position
    return np.select(
        [delta[:, 0] < 0, delta[:, 0] > 0, delta[:, 1] > 0, delta[:, 1] < 0], [1, 3, 2, 4], default=0
    )


def _swimmer_states(env: gym.vector.VectorEnv) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(n, 2)`` and headings ``(n,)`` of every Watermaze sub-environment, as they are now."""
    native = env.unwrapped
    if hasattr(native, "positions") and hasattr(native, "headings"):
        return native.positions, native.headings
    singles = [sub.unwrapped for sub in getattr(native, "envs", ())]
    if not singles or not all(hasattr(sub, "_position") for sub in singles):
        raise TypeError(f"{type(native).__name__} is not a Watermaze vector environment")
    positions = np.array([sub._position for sub in singles], dtype=np.float64)  # type: ignore[attr-defined]
    headings = np.array([sub._heading for sub in singles], dtype=np.float64)  # type: ignore[attr-defined]
    return positions, headings


def _swim_towards(positions: np.ndarray, headings: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Watermaze action heading each swimmer for its target: turn on the spot when the target is
    more than two turns off, forward while turning when it is more than half a turn off, else forward.
    (Turning while moving everywhere can circle a platform inside the turning radius forever.)"""
    offset = targets - positions
    bearing = np.arctan2(offset[:, 1], offset[:, 0]) - headings
    bearing = (bearing + math.pi) % (2 * math.pi) - math.pi
    turn = WatermazeEnv.turn_angle
    left = bearing > 0
    return np.select(
        [np.abs(bearing) <= turn / 2, np.abs(bearing) <= 2 * turn, left],
        [0, np.where(left, 6, 7), 4],
        default=5,
    )


class _ExpertPolicy(VectorPolicy):
    def __init__(
        self,
        kind: str,
        tasks: Sequence[Any],
        size: int,
        arms: int,
        episodes: int,
        rng: np.random.Generator,
        source: NoisyExpert,
        env: gym.vector.VectorEnv | None = None,
    ) -> None:
        self.kind = kind
        self.env = env
        self.size = size
        self.arms = arms
        self.rng = rng
        self.source = source
        self.episodes = episodes
        n = len(tasks)
        self.episode = np.zeros(n)
        self.episode_reward = np.zeros(n)
        if kind == "bandit":
            self.best = np.array([int(np.argmax(task)) for task in tasks])
        elif kind == "goal":
            self.goal = np.array([tuple(task) for task in tasks], dtype=np.int64)
        elif kind == "watermaze":
            self.platform = np.array([tuple(task) for task in tasks], dtype=np.float64)
        else:
            self.key = np.array([tuple(task[0]) for task in tasks], dtype=np.int64)
            self.door = np.array([tuple(task[1]) for task in tasks], dtype=np.int64)

    def expert_actions(self, observations: np.ndarray) -> np.ndarray:
        if self.kind == "bandit":
            return self.best
        if self.kind == "watermaze":
            assert self.env is not None
            positions, headings = _swimmer_states(self.env)
            return _swim_towards(positions, headings, self.platform)
        cells = observations.astype(np.int64)
        position = np.stack((cells // self.size, cells % self.size), axis=1)
        if self.kind == "goal":
            return _step_towards(position, self.goal)
        # The first reward of an episode is always the key (the door pays only with the key).
        target = np.where((self.episode_reward >= 1.0)[:, None], self.door, self.key)
        return _step_towards(position, target)

    def act(self, observations: np.ndarray, acting: np.ndarray) -> np.ndarray:
        epsilon = _epsilon_schedule(self.episode, self.episodes, 1.0, 0.0, self.source.decay_fraction)
        random_actions = self.rng.integers(self.arms, size=len(self.episode))
        explore = self.rng.random(len(self.episode)) < epsilon
        return np.where(explore, random_actions, self.expert_actions(observations))

    def observe(
        self,
        acting: np.ndarray,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        next_observations: np.ndarray,
    ) -> None:
        self.episode_reward += np.where(acting, rewards, 0.0)
        ended = terminated | truncated
        self.episode += ended
        self.episode_reward[ended] = 0.0


def _expert_kind(env_id: str) -> str:
    if "Bandit" in env_id:
        return "bandit"
    if "KeyToDoor" in env_id:
        return "key_door"
    if "DarkRoom" in env_id:
        return "goal"
    if "Watermaze" in env_id:
        return "watermaze"
    raise ValueError(
        f"env_id={env_id!r} has no scripted expert; NoisyExpert supports the bandit, DarkRoom, "
        "DarkRoomHard, DarkKeyToDoor and Watermaze"
    )


class NoisyExpert(VectorisedSource):
    """An optimal scripted policy with ε-greedy noise decaying from 1 to 0 over the history.

    "Noise distillation" (Zisman et al. 2023): the history improves from random to optimal
    without running a real RL algorithm. ``decay_fraction=0`` gives a noiseless expert, the
    data of Expert Distillation. The experts: the bandit's best arm; the shortest path to the
    goal (Dark Room) or to the key and then the door (Key-to-Door); on Watermaze, swimming
    straight for the platform, which the expert locates from each swimmer's position and heading
    in the environment (privileged state, as any scripted expert; the recorded observations are
    still the frames).

    :param decay_fraction: fraction of the episodes over which ε goes from 1 to 0.
    :param vectorization: see :func:`make_task_vector_env`.
    """

    name = "noisy_expert"

    def __init__(self, decay_fraction: float = 0.8, vectorization: str = "auto") -> None:
        super().__init__(vectorization)
        if not 0 <= decay_fraction <= 1:
            raise ValueError(f"decay_fraction={decay_fraction!r} must be in [0, 1]")
        self.decay_fraction = decay_fraction

    def hyperparameters(self) -> dict[str, Any]:
        return {"decay_fraction": self.decay_fraction}

    def unsuitable_for(self, env_id: str, env: gym.Env) -> str | None:
        try:
            _expert_kind(env_id)
        except ValueError as error:
            return str(error)
        return None

    def make_policy(
        self, env: gym.vector.VectorEnv, tasks: Sequence[Any], episodes: int, rng: np.random.Generator
    ) -> VectorPolicy:
        kind = _expert_kind(env.spec.id if env.spec is not None else self._env_id)
        size = 0
        if kind in ("goal", "key_door"):
            size = math.isqrt(int(env.single_observation_space.n))
        return _ExpertPolicy(kind, tasks, size, _discrete_actions(env), episodes, rng, self, env)

    def collect(
        self, env_id: str, env_kwargs: dict[str, Any], tasks: Sequence[Any], episodes: int, seed: int
    ) -> list[History]:
        self._env_id = env_id
        return super().collect(env_id, env_kwargs, tasks, episodes, seed)


def _make_recorder(records: dict[str, list[Any]], episodes: int) -> Any:
    """An SB3 callback appending every transition of a single-env learning stream to ``records``."""
    from stable_baselines3.common.callbacks import BaseCallback

    class _Recorder(BaseCallback):
        def _on_step(self) -> bool:
            # The callback runs before SB3 overwrites _last_obs: it is the acting observation.
            records["observations"].append(np.array(self.model._last_obs[0]))
            records["actions"].append(int(np.asarray(self.locals["actions"]).reshape(-1)[0]))
            records["rewards"].append(float(self.locals["rewards"][0]))
            done = bool(self.locals["dones"][0])
            records["dones"].append(done)
            # SB3's VecEnv merges the flags; a time limit is marked in the info, the end obs kept there.
            info = self.locals["infos"][0]
            truncated = done and bool(info.get("TimeLimit.truncated", False))
            records["terminated"].append(done and not truncated)
            records["truncated"].append(truncated)
            if done:
                records["final_observations"].append(np.array(info["terminal_observation"]))
            return sum(records["dones"]) < episodes

    return _Recorder()


class SB3Source(Source):
    """Train a Stable-Baselines3 algorithm from scratch on each task; record its one learning stream.

    :param algorithm: an SB3 / sb3-contrib algorithm class or its name (``"PPO"``, ``"A2C"``, ``"DQN"``).
    :param policy: the SB3 policy name.
    :param hyperparameters: keyword arguments of the algorithm (JSON-compatible).
    """

    name = "sb3"

    def __init__(
        self,
        algorithm: str | type = "PPO",
        policy: str = "MlpPolicy",
        hyperparameters: dict[str, Any] | None = None,
    ) -> None:
        import stable_baselines3
        from stable_baselines3.common.base_class import BaseAlgorithm

        found: Any = algorithm
        if isinstance(algorithm, str):
            # Only the packages' algorithm classes: a recorded name (make_source) never reaches anything else.
            found = getattr(stable_baselines3, algorithm, None)
            if found is None:
                import sb3_contrib

                found = getattr(sb3_contrib, algorithm, None)
        if not (isinstance(found, type) and issubclass(found, BaseAlgorithm)):
            raise ValueError(
                f"algorithm={algorithm!r} is not an SB3 or sb3-contrib algorithm; give a class "
                "such as stable_baselines3.PPO or its name ('PPO', 'A2C', 'DQN', 'RecurrentPPO', ...)"
            )
        if not isinstance(policy, str) or not policy:
            raise ValueError(f"policy={policy!r} is not allowed; give an SB3 policy name such as 'MlpPolicy'")
        if hyperparameters is not None and not isinstance(hyperparameters, dict):
            raise ValueError(
                f"hyperparameters={hyperparameters!r} is not allowed; give a dict of keyword arguments"
            )
        given = set(hyperparameters or {})
        if {"seed", "verbose"} & given:
            raise ValueError(
                f"hyperparameters={hyperparameters!r}: 'seed' and 'verbose' are set per task by collect()"
            )
        # Recorded in datasets and models, and rebuilt from them by make_source: no paths to write
        # (tensorboard_log) and no classes (replay/rollout buffer classes) among them.
        accepted = {
            name
            for name in inspect.signature(found.__init__).parameters
            if name
            not in {"self", "policy", "env", "seed", "verbose", "tensorboard_log", "_init_setup_model"}
            and not name.endswith("_class")
        }
        unknown = sorted(given - accepted)
        if unknown:
            raise ValueError(
                f"hyperparameters={hyperparameters!r}: {unknown} are not arguments of {found.__name__}; "
                f"allowed: {sorted(accepted)}"
            )
        self.algorithm: type[BaseAlgorithm] = found
        self.policy = policy
        self.algorithm_kwargs = dict(hyperparameters or {})
        self.name = f"sb3_{found.__name__.lower()}"

    def hyperparameters(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm.__name__, "policy": self.policy, **self.algorithm_kwargs}

    def collect(
        self, env_id: str, env_kwargs: dict[str, Any], tasks: Sequence[Any], episodes: int, seed: int
    ) -> list[History]:
        histories = []
        for offset, task in enumerate(tasks):
            records: dict[str, list[Any]] = {
                "observations": [],
                "actions": [],
                "rewards": [],
                "dones": [],
                "terminated": [],
                "truncated": [],
                "final_observations": [],
            }

            env = gym.make(env_id, task=task, **env_kwargs)
            max_steps = (gym.spec(env_id).max_episode_steps or 1000) * episodes
            # A deep copy: SB3 writes its defaults into the dicts it is given (A2C's policy_kwargs).
            arguments = copy.deepcopy(self.algorithm_kwargs)
            model = self.algorithm(self.policy, env, seed=seed + offset, verbose=0, **arguments)
            model.learn(max_steps, callback=_make_recorder(records, episodes))
            env.close()
            observations = np.asarray(records["observations"])
            final_observations = np.asarray(records["final_observations"]).reshape(
                -1, *observations.shape[1:]
            )
            shape = env.observation_space.shape
            if (
                shape is not None
                and len(shape) == 3
                and observations.shape[1:] == (shape[2], shape[0], shape[1])
            ):
                # SB3 stores images channel-first (VecTransposeImage); keep the environment's layout.
                observations = observations.transpose(0, 2, 3, 1)
                final_observations = final_observations.transpose(0, 2, 3, 1)
            dtype = env.observation_space.dtype or np.float32
            histories.append(
                History(
                    np.ascontiguousarray(observations).astype(dtype),
                    np.asarray(records["actions"], dtype=np.int64),
                    np.asarray(records["rewards"], dtype=np.float32),
                    np.asarray(records["dones"], dtype=bool),
                    np.asarray(records["terminated"], dtype=bool),
                    np.asarray(records["truncated"], dtype=bool),
                    np.ascontiguousarray(final_observations).astype(dtype),
                )
            )
        return histories


def _sources_for(env_id: str, env: gym.Env) -> str:
    """The sources that fit ``env``, by the names ``zoo ad collect --source`` takes."""
    sources: list[Source] = [UCB(), ThompsonSampling(), TabularQLearning(), NoisyExpert()]
    names = [repr(source.name) for source in sources if source.unsuitable_for(env_id, env) is None]
    sb3 = "an SB3 algorithm such as 'ppo', 'a2c' or 'dqn'"
    return f"{', '.join(names)} or {sb3}" if names else sb3


def check_source(source: Any, env_id: str, env: gym.Env) -> None:
    """Raise ValueError naming ``source`` and listing the sources that fit, unless ``source`` can learn ``env``.

    :param source: the source algorithm.
    :param env_id: environment id.
    :param env: one environment of ``env_id``.
    """
    if not isinstance(source, Source):
        raise ValueError(
            f"source={source!r} is not a Source; pass an instance, e.g. TabularQLearning() or "
            f"NoisyExpert(). Sources for {env_id!r}: {_sources_for(env_id, env)}"
        )
    reason = source.unsuitable_for(env_id, env)
    if reason is not None:
        raise ValueError(
            f"source={source.name!r} does not fit env_id={env_id!r}: {reason}. "
            f"Sources for {env_id!r}: {_sources_for(env_id, env)}"
        )


def _one_thread() -> None:
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass


def _collect_batch(
    source: Source, env_id: str, env_kwargs: dict[str, Any], tasks: list[Any], episodes: int, seed: int
) -> list[History]:
    """One batch of tasks (a top-level function, so worker processes and Ray can run it)."""
    import zoo.envs  # noqa: F401  (registers the environments in a fresh worker)

    return source.collect(env_id, env_kwargs, tasks, episodes, seed)


def _collect_with_ray(
    address: str,
    pending: list[tuple[int, list[int], list[int]]],
    arguments: Callable[[int, list[int]], tuple[Any, ...]],
    store: Callable[[list[int], list[int], list[History]], None],
) -> None:
    try:
        import ray
    except ImportError as error:
        raise ImportError(
            f"address={address!r} runs the collection on Ray, which is not installed; "
            "pip install 'distill-zoo[pbt]'"
        ) from error
    from ..common.parallel import init_ray

    started_here = init_ray(
        None if address == "local" else address, include_dashboard=False, log_to_driver=False
    )
    try:
        remote = ray.remote(num_cpus=1)(_collect_batch)
        running = {
            remote.remote(*arguments(batch, indices)): (indices, missing)
            for batch, indices, missing in pending
        }
        while running:
            done, _ = ray.wait(list(running), num_returns=1)
            indices, missing = running.pop(done[0])
            store(indices, missing, ray.get(done[0]))
    finally:
        if started_here:
            ray.shutdown()


def collect_histories(
    env_id: str,
    source: Source,
    directory: str | os.PathLike[str],
    episodes: int,
    tasks: Sequence[Any] | None = None,
    split: str = "train",
    env_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    tasks_per_batch: int = 64,
    on_task_written: Callable[[int], None] | None = None,
    n_jobs: int = 1,
    address: str | None = None,
) -> HistoryDataset:
    """Collect one learning history per task and store them in ``directory`` (resumable).

    Tasks are processed in fixed batches (batch ``j`` = tasks ``j*B .. (j+1)*B - 1``, seed
    ``seed + j``), so a resumed collection reproduces an uninterrupted one exactly: batches
    whose tasks are all written are skipped, and a partly written batch is re-run with the
    same seed and only its missing tasks are written.

    :param env_id: a meta-RL environment id.
    :param source: the source algorithm.
    :param directory: the dataset directory (created, or resumed when it holds the same configuration).
    :param episodes: episodes of each learning history.
    :param tasks: tasks to learn; default: ``zoo.envs.tasks(env_id, split, **env_kwargs)``.
    :param split: task split used when ``tasks`` is None.
    :param env_kwargs: environment constructor arguments (e.g. ``{"size": 3}``).
    :param seed: base seed.
    :param tasks_per_batch: tasks learned at once on one vector environment (numpy sources;
        :class:`SB3Source` always learns one task per batch).
    :param on_task_written: called with the task index after each task is stored.
    :param n_jobs: batches learned at once in parallel worker processes (one torch thread
        each); the histories are the same as with ``n_jobs=1``, and only this process writes
        them, as each batch finishes.
    :param address: run the batches as Ray tasks on the cluster at this address (``"auto"``,
        ``"ray://host:10001"``, or ``"local"`` to start one here); needs the ``pbt`` extra.
        Histories and resuming are the same as without Ray.
    :return: the loaded dataset.
    """
    env_kwargs = dict(env_kwargs or {})
    check_integer("episodes", episodes, 1)
    check_integer("tasks_per_batch", tasks_per_batch, 1)
    check_integer("n_jobs", n_jobs, 1)
    if address is not None and (not isinstance(address, str) or not address):
        raise ValueError(f"address={address!r} is not allowed; give a Ray address such as 'auto' or 'local'")
    check_integer("seed", seed, 0)
    tasks = resolve_tasks(env_id, tasks, split, env_kwargs)
    probe = gym.make(env_id, task=tasks[0], **env_kwargs)
    try:
        check_source(source, env_id, probe)  # before anything is written to ``directory``
    except ValueError:
        probe.close()
        raise
    header = {
        "env_id": env_id,
        "env_kwargs": env_kwargs,
        "split": split,
        "tasks": [_task_to_json(task) for task in tasks],
        "source": {"name": source.name, "hyperparameters": source.hyperparameters()},
        "episodes": episodes,
        "seed": seed,
        "tasks_per_batch": tasks_per_batch,
        "observation_space": describe_space(probe.observation_space, "observation_space"),
        "action_space": describe_space(probe.action_space, "action_space"),
        "max_episode_steps": probe.spec.max_episode_steps if probe.spec is not None else None,
    }
    probe.close()
    writer = HistoryWriter(directory, header)
    # Sources that learn one task at a time gain nothing from batches; one task per batch makes
    # their collection resumable task by task.
    batch_size = tasks_per_batch if isinstance(source, VectorisedSource) else 1
    pending = []
    for batch, start in enumerate(range(0, len(tasks), batch_size)):
        indices = list(range(start, min(start + batch_size, len(tasks))))
        missing = [index for index in indices if index not in writer.completed]
        if missing:
            pending.append((batch, indices, missing))

    def store(indices: list[int], missing: list[int], histories: list[History]) -> None:
        for index, history in zip(indices, histories):
            if index in missing:
                writer.write_task(index, history)
                if on_task_written is not None:
                    on_task_written(index)

    def arguments(batch: int, indices: list[int]) -> tuple[Any, ...]:
        return (source, env_id, env_kwargs, [tasks[index] for index in indices], episodes, seed + batch)

    if address is not None:
        _collect_with_ray(address, pending, arguments, store)
    elif n_jobs > 1 and len(pending) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=min(n_jobs, len(pending)), mp_context=context, initializer=_one_thread
        ) as pool:
            futures = [(pool.submit(_collect_batch, *arguments(b, i)), i, m) for b, i, m in pending]
            for future, indices, missing in futures:  # in order, so a crash leaves a prefix written
                store(indices, missing, future.result())
    else:
        for batch, indices, missing in pending:
            store(indices, missing, _collect_batch(*arguments(batch, indices)))
    return HistoryDataset.load(directory)
