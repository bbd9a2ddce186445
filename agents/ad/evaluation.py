"""In-context evaluation: frozen weights, many held-out tasks at once, return per episode index."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from zoo.envs.base import check_bool, check_integer, check_real

from .algorithm import AlgorithmDistillation
from .dataset import History
from .model import KV_CACHE_KINDS
from .sources import VectorPolicy, make_task_vector_env, resolve_tasks, run_vectorised

__all__ = ["InContextResult", "evaluate_in_context", "result_from_histories"]


@dataclass
class InContextResult:
    """Returns of an in-context run: ``returns[i, e]`` is task ``i``'s return in episode ``e``."""

    #: ``(tasks, episodes)`` episode returns.
    returns: np.ndarray
    #: The tasks, one per row.
    tasks: list[Any] = field(default_factory=list)
    #: What produced it (``"AD"``, ``"ED"``, a source name, ``"RL2"``, ...).
    label: str = ""

    @property
    def mean(self) -> np.ndarray:
        """Mean return per episode index, over tasks."""
        return self.returns.mean(axis=0)

    @property
    def std(self) -> np.ndarray:
        """Standard deviation of the return per episode index, over tasks."""
        return self.returns.std(axis=0)

    @property
    def episodes(self) -> int:
        """Number of episodes per task."""
        return int(self.returns.shape[1])

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible summary: means and standard deviations (over tasks) per episode index.

        Values are rounded to 6 decimals: returns summed from float32 rewards would otherwise
        show float32 noise (``0.20000000298023224`` for a reward of 0.2).
        """
        return {
            "label": self.label,
            "mean": [round(value, 6) for value in self.mean.tolist()],
            "std": [round(value, 6) for value in self.std.tolist()],
            "tasks": len(self.tasks),
        }

    def summary(self, decimals: int = 2) -> str:
        """A readable table: mean ± standard deviation over tasks of the return per episode.

        :param decimals: decimals of the printed numbers.
        """
        check_integer("decimals", decimals, 0)
        header = f"{self.label or 'result'}: return per episode, mean ± std over {len(self.returns)} tasks"
        rows = [
            f"  episode {index + 1:>{len(str(self.episodes))}}: {mean:.{decimals}f} ± {std:.{decimals}f}"
            for index, (mean, std) in enumerate(zip(self.mean.tolist(), self.std.tolist(), strict=True))
        ]
        return "\n".join([header, *rows])

    def __repr__(self) -> str:
        if self.returns.size == 0:
            return (
                f"InContextResult(label={self.label!r}, tasks={len(self.returns)}, episodes={self.episodes})"
            )
        mean, std = self.mean, self.std
        return (
            f"InContextResult(label={self.label!r}, tasks={len(self.returns)}, episodes={self.episodes}, "
            f"first episode {mean[0]:.2f} ± {std[0]:.2f}, last episode {mean[-1]:.2f} ± {std[-1]:.2f})"
        )


def result_from_histories(
    histories: Sequence[History], tasks: Sequence[Any], label: str, episodes: int
) -> InContextResult:
    """Turn recorded histories into a result with ``episodes`` columns.

    :param histories: one per task.
    :param tasks: the tasks.
    :param label: name of the method.
    :param episodes: episodes per task to keep.
    """
    rows = [history.episode_returns()[:episodes] for history in histories]
    return InContextResult(np.stack(rows).astype(np.float64), list(tasks), label)


class _InContextPolicy(VectorPolicy):
    """Drives an AD model on a vector environment; histories that wait for an autoreset do not advance."""

    def __init__(
        self,
        agent: AlgorithmDistillation,
        n: int,
        deterministic: bool,
        temperature: float,
        seed: int,
        kv_cache: str = "banded",
    ) -> None:
        self.agent = agent
        self.cache = agent.policy.empty_cache(n, kind=kv_cache)
        self.previous_actions = torch.full(
            (n,), agent.config.n_actions, dtype=torch.long, device=agent.device
        )
        self.previous_rewards = torch.zeros(n, device=agent.device)
        # True until a history's first step of an episode is fed (see ModelConfig.episode_starts).
        self.episode_starts = torch.ones(n, dtype=torch.bool, device=agent.device)
        self.deterministic = deterministic
        self.temperature = temperature
        self.generator = torch.Generator(device=agent.device).manual_seed(seed)

    def act(self, observations: np.ndarray, acting: np.ndarray) -> np.ndarray:
        tensor, _ = self.agent._observation_tensor(observations)
        active = torch.as_tensor(acting, device=self.agent.device)
        logits = self.agent.policy.step(
            self.cache, tensor, self.previous_actions, self.previous_rewards, active, self.episode_starts
        )
        self.episode_starts &= ~active
        return self.agent._choose(logits, self.deterministic, self.temperature, self.generator).cpu().numpy()

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
        rows = torch.as_tensor(np.flatnonzero(acting), device=self.agent.device)
        self.previous_actions[rows] = torch.as_tensor(actions, device=self.agent.device)[rows]
        self.previous_rewards[rows] = torch.as_tensor(rewards, device=self.agent.device)[rows]
        ended = torch.as_tensor(terminated | truncated, device=self.agent.device)
        self.episode_starts |= ended & torch.as_tensor(acting, device=self.agent.device)


@torch.no_grad()
def evaluate_in_context(
    model: AlgorithmDistillation,
    env_id: str,
    split: str = "test",
    episodes: int = 10,
    tasks: Sequence[Any] | None = None,
    n_tasks: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    deterministic: bool = False,
    temperature: float = 1.0,
    seed: int = 0,
    vectorization: str = "auto",
    label: str = "AD",
    kv_cache: str = "banded",
) -> InContextResult:
    """Run a frozen AD model on held-out tasks for ``episodes`` episodes each, all tasks at once.

    The context is never reset between episodes of a task: any improvement is in-context learning.

    :param model: a trained (or loaded) :class:`AlgorithmDistillation`.
    :param env_id: must equal the model's environment id.
    :param split: task split used when ``tasks`` is None (``"test"`` = held-out tasks).
    :param episodes: episodes per task.
    :param tasks: explicit tasks (overrides ``split``).
    :param n_tasks: use only the first ``n_tasks`` tasks (an integer >= 1; all of them when
        there are fewer; ``None``: all).
    :param env_kwargs: constructor arguments; default: the model's (a different value raises).
    :param deterministic: argmax actions instead of sampling.
    :param temperature: sampling temperature (> 0).
    :param seed: seeds the environments and the action sampling.
    :param vectorization: see :func:`zoo.agents.ad.make_task_vector_env`.
    :param label: name stored in the result.
    :param kv_cache: ``"banded"`` (sliding-window KV cache) or ``"recompute"`` (a fresh forward
        over the last ``context_length`` steps at every step: exactly the trained function; see
        :meth:`zoo.agents.ad.TransformerPolicy.empty_cache`).
    :return: an :class:`InContextResult`.
    """
    if env_id != model.env_id:
        raise ValueError(
            f"env_id={env_id!r} does not match the model's environment {model.env_id!r} "
            "(the dataset it was trained on)"
        )
    if env_kwargs is None:
        env_kwargs = model.env_kwargs
    elif dict(env_kwargs) != model.env_kwargs:
        raise ValueError(f"env_kwargs={env_kwargs!r} differ from the model's {model.env_kwargs!r}")
    check_integer("episodes", episodes, 1)
    if n_tasks is not None:
        check_integer("n_tasks", n_tasks, 1)  # a negative value would silently drop tasks from the end
    check_real("temperature", temperature, 0.0, exclusive_minimum=True)
    check_integer("seed", seed, 0)
    check_bool("deterministic", deterministic)
    if kv_cache not in KV_CACHE_KINDS:
        raise ValueError(f"kv_cache={kv_cache!r} is not allowed; use one of {KV_CACHE_KINDS}")
    tasks = resolve_tasks(env_id, tasks, split, env_kwargs)
    if n_tasks is not None:
        tasks = tasks[:n_tasks]  # never empty: resolve_tasks refuses [] and n_tasks >= 1
    env = make_task_vector_env(env_id, tasks, env_kwargs, vectorization)
    model.policy.eval()
    try:
        policy = _InContextPolicy(model, len(tasks), deterministic, temperature, seed, kv_cache)
        max_steps = gym.spec(env_id).max_episode_steps or 1000
        histories = run_vectorised(env, policy, episodes, seed, max_steps)
    finally:
        env.close()
    return result_from_histories(histories, tasks, label, episodes)
