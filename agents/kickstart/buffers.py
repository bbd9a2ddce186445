"""Rollout buffers that remember which task each sample came from (multi-teacher kickstarting).

The buffer asks the vector env for ``get_attr("task_index")`` once per step (through
``task_index_source``, which the agent sets before every rollout) and stores, for each sample,
the task of the *observation that was acted on*: indices fetched after a step belong to the
next observation, since SB3 vector envs reset finished sub-envs inside ``step``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch as th
from sb3_contrib.common.maskable.buffers import MaskableRolloutBuffer
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.vec_env import VecNormalize

__all__ = [
    "MaskableTaskIndexRolloutBuffer",
    "MaskableTaskRolloutBufferSamples",
    "TaskIndexRolloutBuffer",
    "TaskRolloutBufferSamples",
]


class TaskRolloutBufferSamples(NamedTuple):
    """SB3's rollout samples plus the task index (long tensor, shape (batch,)) of each sample."""

    observations: th.Tensor
    actions: th.Tensor
    old_values: th.Tensor
    old_log_prob: th.Tensor
    advantages: th.Tensor
    returns: th.Tensor
    task_indices: th.Tensor


class MaskableTaskRolloutBufferSamples(NamedTuple):
    """sb3-contrib's maskable rollout samples plus the task index of each sample."""

    observations: th.Tensor
    actions: th.Tensor
    old_values: th.Tensor
    old_log_prob: th.Tensor
    advantages: th.Tensor
    returns: th.Tensor
    action_masks: th.Tensor
    task_indices: th.Tensor


class _TaskIndexMixin:
    """Adds a per-sample ``task_indices`` array to an SB3 rollout buffer."""

    buffer_size: int
    n_envs: int
    pos: int
    generator_ready: bool
    task_indices: np.ndarray
    #: called with no argument, returns the current task index of every sub-env.
    task_index_source: Callable[[], Sequence[int]] | None = None
    _samples_class: type

    def reset(self) -> None:
        self.task_indices = np.zeros((self.buffer_size, self.n_envs), dtype=np.int64)
        self._next_task_indices: np.ndarray | None = None
        super().reset()  # type: ignore[misc]

    def _fetch_task_indices(self) -> np.ndarray:
        if self.task_index_source is None:
            raise RuntimeError("task_index_source is not set: the agent sets it before collecting rollouts")
        indices = np.asarray(self.task_index_source(), dtype=np.int64).reshape(-1)
        if indices.shape != (self.n_envs,):
            raise ValueError(f"task_index_source returned {indices.shape[0]} indices for {self.n_envs} envs")
        return indices

    def add(self, *args: Any, **kwargs: Any) -> None:
        if self._next_task_indices is None:
            self._next_task_indices = self._fetch_task_indices()
        self.task_indices[self.pos] = self._next_task_indices
        super().add(*args, **kwargs)  # type: ignore[misc]
        # The env has stepped already: what it reports now is the task of the next observation.
        self._next_task_indices = self._fetch_task_indices()

    def get(self, batch_size: int | None = None) -> Generator[Any, None, None]:
        if not self.generator_ready:
            self.task_indices = self.swap_and_flatten(self.task_indices)  # type: ignore[attr-defined]
        yield from super().get(batch_size)  # type: ignore[misc]

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> Any:
        samples = super()._get_samples(batch_inds, env)  # type: ignore[misc]
        task_indices = th.as_tensor(self.task_indices[batch_inds].reshape(-1), device=self.device)  # type: ignore[attr-defined]
        return self._samples_class(*samples, task_indices)


class TaskIndexRolloutBuffer(_TaskIndexMixin, RolloutBuffer):
    """:class:`~stable_baselines3.common.buffers.RolloutBuffer` that stores each sample's task index."""

    _samples_class = TaskRolloutBufferSamples


class MaskableTaskIndexRolloutBuffer(_TaskIndexMixin, MaskableRolloutBuffer):
    """sb3-contrib's ``MaskableRolloutBuffer`` that stores each sample's task index."""

    _samples_class = MaskableTaskRolloutBufferSamples
