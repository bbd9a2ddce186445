"""Baselines that AD is compared with, in the same harness (returns per episode index on held-out tasks).

* Expert Distillation (ED): the same transformer trained only on expert trajectories
  (:func:`collect_expert_histories` + :class:`~zoo.agents.ad.AlgorithmDistillation`).
* The source algorithm's own learning curve on the held-out tasks (:func:`source_learning_curve`).
* RL²: sb3-contrib's RecurrentPPO on trials of several episodes of one task
  (:class:`TrialWrapper`, :func:`train_rl2`, :func:`evaluate_rl2`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from .dataset import HistoryDataset
from .evaluation import InContextResult, result_from_histories
from .sources import NoisyExpert, Source, check_source, collect_histories, resolve_tasks

__all__ = [
    "TrialWrapper",
    "collect_expert_histories",
    "evaluate_rl2",
    "source_learning_curve",
    "train_rl2",
]


def collect_expert_histories(
    env_id: str, directory: str | os.PathLike[str], episodes: int, **kwargs: Any
) -> HistoryDataset:
    """Expert trajectories for Expert Distillation: a noiseless :class:`NoisyExpert` on every train task.

    :param env_id: a meta-RL environment with a scripted expert.
    :param directory: dataset directory.
    :param episodes: expert episodes per task.
    :param kwargs: forwarded to :func:`collect_histories` (``tasks``, ``env_kwargs``, ``seed``, ...).
    """
    return collect_histories(env_id, NoisyExpert(decay_fraction=0.0), directory, episodes, **kwargs)


def source_learning_curve(
    source: Source,
    env_id: str,
    split: str = "test",
    episodes: int = 10,
    tasks: Sequence[Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
) -> InContextResult:
    """The source algorithm learning the held-out tasks from scratch: return per episode index.

    :param source: the source algorithm (e.g. the one whose histories AD was trained on).
    :param env_id: environment id.
    :param split: task split used when ``tasks`` is None.
    :param episodes: episodes per task.
    :param tasks: explicit tasks.
    :param env_kwargs: constructor arguments.
    :param seed: seed.
    """
    env_kwargs = dict(env_kwargs or {})
    tasks = resolve_tasks(env_id, tasks, split, env_kwargs)
    probe = gym.make(env_id, **env_kwargs)
    try:
        check_source(source, env_id, probe)  # UCB on Dark Room would otherwise run silently
    finally:
        probe.close()
    histories = source.collect(env_id, env_kwargs, tasks, episodes, seed)
    return result_from_histories(histories, tasks, source.name, episodes)


class TrialWrapper(gym.Wrapper):
    """RL² trials: ``episodes_per_trial`` episodes of one task form one episode of the wrapper.

    The observation is ``concat(encoded observation, one-hot previous action, previous reward,
    inner-episode-start flag)`` as a float32 vector, so a recurrent policy whose hidden state
    lives for the whole trial can learn across the inner episodes. Each trial draws a task from
    ``tasks`` with the wrapper's generator (seeded by ``reset(seed=...)``). ``info["episode_returns"]`` holds the inner episodes'
    returns when the trial ends.

    :param env: a meta-RL environment (discrete actions).
    :param tasks: tasks to draw trials from.
    :param episodes_per_trial: inner episodes per trial.
    """

    def __init__(self, env: gym.Env, tasks: Sequence[Any], episodes_per_trial: int) -> None:
        super().__init__(env)
        if episodes_per_trial < 1:
            raise ValueError(f"episodes_per_trial={episodes_per_trial!r} must be >= 1")
        if len(tasks) == 0:
            raise ValueError("tasks=[] is empty; give at least one task")
        if not isinstance(env.action_space, gym.spaces.Discrete):
            raise ValueError(f"action_space={env.action_space} must be Discrete for the RL² trial wrapper")
        self.tasks = list(tasks)
        self.episodes_per_trial = episodes_per_trial
        self.n_actions = int(env.action_space.n)
        inner = env.observation_space
        if isinstance(inner, gym.spaces.Discrete):
            self.observation_size = int(inner.n)
        else:
            self.observation_size = int(np.prod(inner.shape))
        size = self.observation_size + self.n_actions + 2
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)
        self._returns: list[float] = []
        self._current_return = 0.0
        self._task: Any = None
        self._task_rng = np.random.default_rng()

    def _encode(
        self, observation: Any, previous_action: int | None, previous_reward: float, start: bool
    ) -> np.ndarray:
        vector = np.zeros(self.observation_space.shape, dtype=np.float32)
        if isinstance(self.env.observation_space, gym.spaces.Discrete):
            vector[int(observation)] = 1.0
        else:
            vector[: self.observation_size] = np.asarray(observation, dtype=np.float32).reshape(-1)
        if previous_action is not None:
            vector[self.observation_size + previous_action] = 1.0
        vector[-2] = previous_reward
        vector[-1] = float(start)
        return vector

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        """Start a trial on a task drawn from ``tasks``.

        :param seed: seeds the wrapper's and the inner environment's generators.
        :param options: ``{"task": t}`` forces the trial's task.
        """
        if seed is not None:
            self._task_rng = np.random.default_rng(seed)
        if options is not None and options.get("task") is not None:
            self._task = options["task"]
        else:
            self._task = self.tasks[int(self._task_rng.integers(len(self.tasks)))]
        observation, info = self.env.reset(seed=seed, options={"task": self._task})
        self._returns = []
        self._current_return = 0.0
        return self._encode(observation, None, 0.0, True), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Step the inner episode; an inner episode end starts the next one of the same task."""
        action = int(action)
        observation, reward, terminated, truncated, info = self.env.step(action)
        self._current_return += float(reward)
        start = False
        trial_over = False
        if terminated or truncated:
            self._returns.append(self._current_return)
            self._current_return = 0.0
            if len(self._returns) >= self.episodes_per_trial:
                trial_over = True
                info = {**info, "episode_returns": list(self._returns)}
            else:
                observation, _ = self.env.reset()
                start = True
        return self._encode(observation, action, float(reward), start), float(reward), trial_over, False, info


def train_rl2(
    env_id: str,
    total_timesteps: int,
    episodes_per_trial: int = 10,
    tasks: Sequence[Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    n_envs: int = 8,
    seed: int = 0,
    **ppo_kwargs: Any,
) -> Any:
    """Train RL² (RecurrentPPO with an LSTM over whole trials) on the train tasks.

    :param env_id: meta-RL environment id.
    :param total_timesteps: environment steps of training.
    :param episodes_per_trial: inner episodes per trial.
    :param tasks: training tasks (default: the train split).
    :param env_kwargs: constructor arguments.
    :param n_envs: parallel trials.
    :param seed: seed.
    :param ppo_kwargs: RecurrentPPO keyword arguments.
    :return: the trained ``RecurrentPPO`` model.
    """
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env

    env_kwargs = dict(env_kwargs or {})
    tasks = resolve_tasks(env_id, tasks, "train", env_kwargs)
    vec_env = make_vec_env(
        lambda: TrialWrapper(gym.make(env_id, **env_kwargs), tasks, episodes_per_trial),
        n_envs=n_envs,
        seed=seed,
    )
    defaults: dict[str, Any] = {"n_steps": 256, "batch_size": 256, "gamma": 0.99, "ent_coef": 0.01}
    model = RecurrentPPO("MlpLstmPolicy", vec_env, seed=seed, verbose=0, **{**defaults, **ppo_kwargs})
    model.learn(total_timesteps)
    return model


def evaluate_rl2(
    model: Any,
    env_id: str,
    split: str = "test",
    episodes: int = 10,
    tasks: Sequence[Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    deterministic: bool = False,
    seed: int = 0,
) -> InContextResult:
    """Run a trained RL² model for one trial of ``episodes`` episodes on every held-out task.

    :param model: a RecurrentPPO trained on :class:`TrialWrapper` observations.
    :param env_id: environment id.
    :param split: task split used when ``tasks`` is None.
    :param episodes: inner episodes of the evaluation trial.
    :param tasks: explicit tasks.
    :param env_kwargs: constructor arguments.
    :param deterministic: greedy actions.
    :param seed: seed.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv

    env_kwargs = dict(env_kwargs or {})
    tasks = resolve_tasks(env_id, tasks, split, env_kwargs)
    vec_env = DummyVecEnv(
        [(lambda task=task: TrialWrapper(gym.make(env_id, **env_kwargs), [task], episodes)) for task in tasks]
    )
    vec_env.seed(seed)
    observations = vec_env.reset()
    returns: list[list[float] | None] = [None] * len(tasks)
    lstm_states = None
    episode_starts = np.ones(len(tasks), dtype=bool)
    while any(item is None for item in returns):
        actions, lstm_states = model.predict(
            observations, state=lstm_states, episode_start=episode_starts, deterministic=deterministic
        )
        observations, _, dones, infos = vec_env.step(actions)
        episode_starts = dones
        for index, (done, info) in enumerate(zip(dones, infos)):
            if done and returns[index] is None:
                returns[index] = info["episode_returns"]
    vec_env.close()
    return InContextResult(np.array(returns, dtype=np.float64), tasks, "RL2")
