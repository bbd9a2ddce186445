"""Learning-history datasets: memory-mapped ``.npy`` arrays plus a JSON manifest.

A dataset is one self-contained directory (so it can be pushed to the Hub as a dataset repo)::

    manifest.json                      env id, tasks, source and its hyper-parameters,
                                       spaces, and one entry per completed task
    task_00000_observations.npy        (T, *observation_shape)
    task_00000_actions.npy             (T,) int64
    task_00000_rewards.npy             (T,) float32
    task_00000_dones.npy               (T,) bool - the episode ended after this step
    task_00000_terminated.npy          (T,) bool - optional: the env returned terminated
    task_00000_truncated.npy           (T,) bool - optional: the env returned truncated
    task_00000_final_observations.npy  (E, *observation_shape) - optional: the observation
                                       after the last step of each of the E completed episodes

Step ``t`` of a history is the source's transition ``(o_t, a_t, r_t, done_t)`` in the order
it learned. Arrays are written with :func:`numpy.lib.format.open_memmap` into a temporary
file in the same directory and renamed into place; the manifest is rewritten atomically
after every task, so an interrupted collection loses at most the task in progress and a
reader never sees a half-written task. Arrays are loaded with ``allow_pickle=False``, memory-mapped
from 1 MiB (``zoo.hub.trust.MMAP_MIN_BYTES``) and read below it: a memory map keeps its file
open, and a dataset of thousands of small histories would exceed the open-file limit.

The optional arrays (written by :func:`zoo.agents.ad.collect_histories`; older datasets lack
them) keep what ``dones`` merges: whether an episode ended in a terminal state or at the time
limit, and the observation it ended in. Readers that only know the four arrays ignore them;
:mod:`zoo.agents.ad.export` uses them for Minari and Parquet transitions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from zoo.envs import task_from_json
from zoo.hub import trust
from zoo.hub.files import atomic_path, atomic_write_text

__all__ = [
    "ARRAY_NAMES",
    "MANIFEST_NAME",
    "OPTIONAL_ARRAY_NAMES",
    "History",
    "HistoryDataset",
    "HistoryWriter",
    "describe_space",
    "task_from_json",
]

MANIFEST_NAME = "manifest.json"
FORMAT_NAME = "zoo-ad-histories"
FORMAT_VERSION = 1
ARRAY_NAMES: tuple[str, ...] = ("observations", "actions", "rewards", "dones")
#: Arrays a history may add (see the module docstring); ``None`` when a dataset lacks them.
OPTIONAL_ARRAY_NAMES: tuple[str, ...] = ("terminated", "truncated", "final_observations")


def _task_to_json(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_task_to_json(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def describe_space(space: gym.Space, name: str) -> dict[str, Any]:
    """JSON description of an observation or action space that AD supports.

    :param space: a ``Discrete`` or ``Box`` space.
    :param name: ``"observation_space"`` or ``"action_space"`` (for error messages).
    """
    if isinstance(space, gym.spaces.Discrete):
        return {"kind": "discrete", "n": int(space.n), "shape": [], "dtype": "int64"}
    if isinstance(space, gym.spaces.Box) and name == "observation_space":
        is_image = space.dtype == np.uint8 and len(space.shape) == 3
        return {
            "kind": "image" if is_image else "box",
            "n": 0,
            "shape": list(space.shape),
            "dtype": np.dtype(space.dtype).name,
        }
    allowed = "Discrete" if name == "action_space" else "Discrete or Box"
    raise ValueError(f"{name}={space} is not supported by Algorithm Distillation; use {allowed}")


@dataclass
class History:
    """One learning history: the source's transitions on one task, in order.

    ``terminated`` and ``truncated`` (``(T,)`` bool, ``terminated | truncated == dones``) and
    ``final_observations`` (one per completed episode) are optional.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    terminated: np.ndarray | None = None
    truncated: np.ndarray | None = None
    final_observations: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    @property
    def episodes(self) -> int:
        """Number of completed episodes."""
        return int(np.count_nonzero(self.dones))

    def episode_returns(self) -> np.ndarray:
        """Return of each completed episode, in order."""
        ends = np.flatnonzero(self.dones)
        sums = np.cumsum(self.rewards, dtype=np.float64)
        totals = sums[ends]
        return np.diff(np.concatenate(([0.0], totals)))

    def subsample(self, every: int) -> History:
        """Keep every ``every``-th episode (the 1st, the ``every+1``-th, ...); a partial last episode is dropped.

        :param every: keep one episode in ``every`` (``1`` keeps all).
        """
        if every < 1:
            raise ValueError(f"every={every} must be >= 1")
        if every == 1:
            return self
        ends = np.flatnonzero(self.dones)
        starts = np.concatenate(([0], ends[:-1] + 1))
        keep = [np.arange(start, end + 1) for start, end in zip(starts[::every], ends[::every])]
        index = np.concatenate(keep) if keep else np.zeros(0, dtype=np.int64)
        optional = {
            name: np.asarray(array[index])
            for name, array in self.optional_arrays().items()
            if name != "final_observations"
        }
        if self.final_observations is not None:
            optional["final_observations"] = np.asarray(self.final_observations[::every])
        return History(*(np.asarray(getattr(self, name)[index]) for name in ARRAY_NAMES), **optional)

    def arrays(self) -> dict[str, np.ndarray]:
        """The four arrays by name."""
        return {name: getattr(self, name) for name in ARRAY_NAMES}

    def optional_arrays(self) -> dict[str, np.ndarray]:
        """The optional arrays this history has, by name (see :data:`OPTIONAL_ARRAY_NAMES`)."""
        return {name: getattr(self, name) for name in OPTIONAL_ARRAY_NAMES if getattr(self, name) is not None}


def _atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, separators=(",", ":")))


def _atomic_write_array(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as temporary:
        mapped = np.lib.format.open_memmap(temporary, mode="w+", dtype=array.dtype, shape=array.shape)
        if array.size:
            mapped[...] = array
        mapped.flush()
        del mapped


class HistoryWriter:
    """Create or reopen a dataset directory and add tasks to it one at a time, atomically.

    :param directory: the dataset directory (created if missing).
    :param header: manifest fields fixed for the whole dataset (env id, tasks, source, ...).
        Reopening an existing directory with a different header raises ``ValueError``, so a
        resumed collection cannot silently mix two configurations.
    """

    def __init__(self, directory: str | os.PathLike[str], header: dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        header = json.loads(json.dumps({**header, "format": FORMAT_NAME, "version": FORMAT_VERSION}))
        manifest_path = self.directory / MANIFEST_NAME
        if manifest_path.exists():
            existing, _ = _read_manifest(manifest_path)
            existing_header = {key: value for key, value in existing.items() if key != "completed"}
            if existing_header != header:
                differing = sorted(
                    key
                    for key in set(existing_header) | set(header)
                    if existing_header.get(key) != header.get(key)
                )
                raise ValueError(
                    f"directory={str(self.directory)!r} holds a dataset with a different configuration "
                    f"(fields {differing} differ); use a new directory or resume with the same settings"
                )
            self.manifest = existing
        else:
            self.manifest = {**header, "completed": {}}
            _atomic_write_json(manifest_path, self.manifest)

    @property
    def completed(self) -> set[int]:
        """Indices of the tasks already written."""
        return {int(key) for key in self.manifest["completed"]}

    def write_task(self, task_index: int, history: History) -> None:
        """Write one task's history (each array to a temp file, renamed), then update the manifest.

        :param task_index: index into the manifest's task list.
        :param history: the task's learning history.
        """
        files: dict[str, Any] = {}
        for name, array in {**history.arrays(), **history.optional_arrays()}.items():
            file_name = f"task_{task_index:05d}_{name}.npy"
            _atomic_write_array(self.directory / file_name, np.ascontiguousarray(array))
            files[name] = {"file": file_name, "dtype": array.dtype.name, "shape": list(array.shape)}
        self.manifest["completed"][str(task_index)] = {
            "length": len(history),
            "episodes": history.episodes,
            "files": files,
        }
        _atomic_write_json(self.directory / MANIFEST_NAME, self.manifest)


def _read_manifest(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    # Every field is checked by the trust boundary (a dataset may come from the Hub).
    return trust.history_manifest(path, format_name=FORMAT_NAME, version=FORMAT_VERSION)


def _load_array(path: Path, expected: dict[str, Any], root: Path) -> np.ndarray:
    array = trust.load_npy(path, root=root)
    if array.dtype.name != expected["dtype"] or list(array.shape) != list(expected["shape"]):
        raise trust.UntrustedFileError(
            path,
            f"holds {array.dtype.name}{list(array.shape)}, the manifest says {expected['dtype']}{expected['shape']}",
        )
    return array


class HistoryDataset:
    """A loaded learning-history dataset (arrays of 1 MiB or more stay memory-mapped).

    :param histories: one :class:`History` per task, in task order.
    :param manifest: the manifest (header fields; ``completed`` is ignored).
    :param directory: where it was loaded from, if anywhere.
    """

    def __init__(
        self, histories: Sequence[History], manifest: dict[str, Any], directory: Path | None = None
    ) -> None:
        self.histories = list(histories)
        self.manifest = manifest
        self.directory = directory

    @classmethod
    def load(cls, directory: str | os.PathLike[str], subsample: int = 1) -> HistoryDataset:
        """Load a dataset directory; every listed file is checked against the manifest.

        :param directory: a directory written by :func:`zoo.agents.ad.collect_histories`.
        :param subsample: keep every ``subsample``-th episode of each history.
        """
        directory = Path(directory)
        manifest_path = directory / MANIFEST_NAME
        if not manifest_path.exists():
            raise ValueError(
                f"directory={str(directory)!r} has no {MANIFEST_NAME}; not a learning-history dataset"
            )
        manifest, checked = _read_manifest(manifest_path)
        histories = []
        entries, observation, n_actions = checked["completed"], checked["observation"], checked["n_actions"]
        task_indices = sorted(int(key) for key in entries)
        for task_index in task_indices:
            files = entries[str(task_index)]["files"]
            arrays = {name: _load_array(files[name]["file"], files[name], directory) for name in ARRAY_NAMES}
            trust.check_history_arrays(arrays, files=files, observation=observation, n_actions=n_actions)
            optional = trust.load_optional_history_arrays(
                manifest_path, str(task_index), manifest, observation, arrays, names=OPTIONAL_ARRAY_NAMES
            )
            histories.append(History(**arrays, **optional).subsample(subsample))
        all_tasks = manifest["tasks"]
        header = {**manifest, "tasks": [all_tasks[index] for index in task_indices]}
        return cls(histories, header, directory)

    @property
    def env_id(self) -> str:
        """Environment id the histories were collected on."""
        return str(self.manifest["env_id"])

    @property
    def env_kwargs(self) -> dict[str, Any]:
        """Constructor arguments of the environment (e.g. ``size``)."""
        return dict(self.manifest.get("env_kwargs", {}))

    @property
    def tasks(self) -> list[Any]:
        """The tasks, one per history."""
        return [task_from_json(task) for task in self.manifest["tasks"]]

    @property
    def source(self) -> dict[str, Any]:
        """Source algorithm name and hyper-parameters."""
        return dict(self.manifest["source"])

    @property
    def observation_space(self) -> dict[str, Any]:
        """Description of the observation space (see :func:`describe_space`)."""
        return dict(self.manifest["observation_space"])

    @property
    def n_actions(self) -> int:
        """Number of discrete actions."""
        return int(self.manifest["action_space"]["n"])

    def __len__(self) -> int:
        return len(self.histories)

    def subsample(self, every: int) -> HistoryDataset:
        """A dataset keeping every ``every``-th episode of each history.

        :param every: keep one episode in ``every``.
        """
        return HistoryDataset(
            [history.subsample(every) for history in self.histories], self.manifest, self.directory
        )

    def episode_returns(self) -> np.ndarray:
        """``(tasks, episodes)`` returns, truncated to the shortest history's episode count."""
        returns = [history.episode_returns() for history in self.histories]
        if not returns:
            return np.zeros((0, 0))
        shortest = min(len(item) for item in returns)
        return np.stack([item[:shortest] for item in returns])
