"""Learning histories in the offline-RL ecosystem: Hugging Face ``datasets`` (Parquet) and Minari.

**Transitions (Parquet).** :func:`write_parquet` writes one ``data/task_XXXXX.parquet`` file per
history, one row per step, in learning order, with the columns of :data:`TRANSITION_COLUMNS`:

====================  ==========================================================================
``task_index``        int64, index into the dataset's task list (``HistoryDataset.tasks``)
``task``              the task itself, as the env takes it in ``reset(options={"task": ...})``
``episode``           int64, episode number inside the task's history (0, 1, ...)
``step``              int64, step number inside the episode (0, 1, ...)
``observation``       the observation acted on (int64 for Discrete, nested lists for Box)
``action``            int64
``reward``            float32
``terminated``        bool, the episode reached a terminal state (do not bootstrap)
``truncated``         bool, the episode was cut by the time limit (bootstrap)
``next_observation``  the observation after the step (the final one at an episode end); null
                      only where it is unknown (see below)
====================  ==========================================================================

``zoo.hub.push_dataset`` pushes these files with a dataset card whose ``configs`` point at them,
so ``datasets.load_dataset(repo_id)`` returns the transitions.

**Minari.** :func:`export_minari` writes one Minari episode per episode of every history
(observations including the final one, actions, rewards, terminations and truncations as the
env returned them), the task in each episode's reset ``options`` (``{"task": ...}``, recorded in
the episode metadata) and ``infos["task_index"]``, the env spec with the dataset's ``env_kwargs``
(so ``recover_environment()`` builds the zoo env), and the zoo manifest header in the metadata
key ``zoo_manifest``. :func:`import_minari` reads a Minari dataset (the zoo's or another with
Discrete actions) back into a learning-history dataset directory; export then import gives the
same arrays.

**Datasets collected before the flags were recorded** hold only ``dones``. The flags are then
recovered from the time limit: an episode that ended before ``max_episode_steps`` terminated, one
that lasted ``max_episode_steps`` steps was truncated (an episode that reached a terminal state
exactly on its last allowed step is then reported as truncated only). Their final observations
are unknown: ``next_observation`` is null at those episode ends, and Minari export refuses them.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from .dataset import History, HistoryDataset, HistoryWriter, _task_to_json, describe_space

__all__ = [
    "TRANSITION_COLUMNS",
    "episode_flags",
    "export_minari",
    "import_minari",
    "transitions_table",
    "write_parquet",
]

#: Columns of the Parquet transitions, in order.
TRANSITION_COLUMNS: tuple[str, ...] = (
    "task_index",
    "task",
    "episode",
    "step",
    "observation",
    "action",
    "reward",
    "terminated",
    "truncated",
    "next_observation",
)

#: Where :func:`write_parquet` puts the files inside a dataset repo.
PARQUET_FOLDER = "data"


def _episode_layout(dones: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Episode number and step-in-episode of every step, and the start index of every episode."""
    dones = np.asarray(dones, dtype=bool)
    episode = (
        np.concatenate(([0], np.cumsum(dones)[:-1])).astype(np.int64) if len(dones) else np.zeros(0, np.int64)
    )
    starts = np.concatenate(([0], np.flatnonzero(dones) + 1)).astype(np.int64)
    step = np.arange(len(dones), dtype=np.int64) - starts[episode] if len(dones) else np.zeros(0, np.int64)
    return episode, step, starts


def episode_flags(history: History, max_episode_steps: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``(terminated, truncated)`` of every step of ``history``.

    The recorded arrays when the history has them; otherwise recovered from the time limit (see
    the module docstring).

    :param history: a learning history.
    :param max_episode_steps: the env's time limit (``None``: no limit, every end is terminal).
    """
    if history.terminated is not None and history.truncated is not None:
        return np.asarray(history.terminated, dtype=bool), np.asarray(history.truncated, dtype=bool)
    dones = np.asarray(history.dones, dtype=bool)
    _, step, _ = _episode_layout(dones)
    at_limit = (step + 1 >= max_episode_steps) if max_episode_steps else np.zeros(len(dones), dtype=bool)
    return dones & ~at_limit, dones & at_limit


def _next_observations(history: History) -> tuple[np.ndarray, np.ndarray]:
    """The observation after every step and whether it is known."""
    observations = np.asarray(history.observations)
    dones = np.asarray(history.dones, dtype=bool)
    length = len(dones)
    following = np.zeros_like(observations)
    known = np.zeros(length, dtype=bool)
    if length:
        following[:-1] = observations[1:]
        known[:-1] = ~dones[:-1]
    if history.final_observations is not None:
        ends = np.flatnonzero(dones)
        following[ends] = np.asarray(history.final_observations)
        known[ends] = True
    return following, known


def _arrow_array(values: np.ndarray, known: np.ndarray | None = None) -> Any:
    """A pyarrow array of ``values`` (fixed-size lists for each trailing dimension), null where not ``known``."""
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    mask = None if known is None or known.all() else ~known
    if values.ndim == 1:
        return pa.array(values, mask=mask)
    array: Any = pa.array(values.reshape(-1))
    for size in reversed(values.shape[1:]):
        array = pa.FixedSizeListArray.from_arrays(array, size)
    if mask is not None:
        array = pa.FixedSizeListArray.from_arrays(array.flatten(), values.shape[1], mask=pa.array(mask))
    return array


def _task_column(task: Any, length: int) -> Any:
    import pyarrow as pa

    value = _task_to_json(task)
    try:
        return pa.array([value] * length)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # A task whose parts mix types has no Arrow type; it is stored as its JSON text.
        return pa.array([json.dumps(value)] * length)


def transitions_table(
    history: History, task_index: int, task: Any = None, max_episode_steps: int | None = None
) -> Any:
    """One history as a ``pyarrow.Table`` of transitions (columns: :data:`TRANSITION_COLUMNS`).

    :param history: the history.
    :param task_index: the value of the ``task_index`` column.
    :param task: the task (the ``task`` column).
    :param max_episode_steps: the env's time limit, used only when the history lacks the flags.
    """
    import pyarrow as pa

    episode, step, _ = _episode_layout(history.dones)
    terminated, truncated = episode_flags(history, max_episode_steps)
    following, known = _next_observations(history)
    length = len(history)
    columns = {
        "task_index": pa.array(np.full(length, task_index, dtype=np.int64)),
        "task": _task_column(task, length),
        "episode": pa.array(episode),
        "step": pa.array(step),
        "observation": _arrow_array(np.asarray(history.observations)),
        "action": pa.array(np.asarray(history.actions, dtype=np.int64)),
        "reward": pa.array(np.asarray(history.rewards, dtype=np.float32)),
        "terminated": pa.array(terminated),
        "truncated": pa.array(truncated),
        "next_observation": _arrow_array(following, known),
    }
    return pa.table(columns)


def _max_episode_steps(dataset: HistoryDataset) -> int | None:
    limit = dataset.manifest.get("max_episode_steps")
    if limit is None:
        try:
            limit = gym.spec(dataset.env_id).max_episode_steps
        except gym.error.Error:
            return None
    return int(limit) if limit else None


def write_parquet(dataset: HistoryDataset, directory: str | os.PathLike[str]) -> list[Path]:
    """Write ``directory/data/task_XXXXX.parquet``, one file of transitions per history.

    :param dataset: the histories.
    :param directory: the folder to write into (``data/`` is created in it).
    :return: the files written, in task order.
    """
    import pyarrow.parquet as pq

    from zoo.hub.files import atomic_path

    if not isinstance(dataset, HistoryDataset):
        raise ValueError(f"dataset={dataset!r} is not a HistoryDataset")
    folder = Path(directory) / PARQUET_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    limit = _max_episode_steps(dataset)
    written = []
    for task_index, (history, task) in enumerate(zip(dataset.histories, dataset.manifest["tasks"])):
        path = folder / f"task_{task_index:05d}.parquet"
        with atomic_path(path) as temporary:
            pq.write_table(transitions_table(history, task_index, task, limit), temporary)
        written.append(path)
    return written


# --------------------------------------------------------------------------------------------
# Minari
# --------------------------------------------------------------------------------------------


def _import_minari() -> Any:
    try:
        import minari
    except ImportError as error:  # pragma: no cover - the extra is installed in CI
        raise ImportError(
            "Minari export needs the minari package: pip install 'distill-zoo[minari]'"
        ) from error
    return minari


def _check_dataset_id(dataset_id: Any) -> None:
    from minari.dataset.minari_dataset import parse_dataset_id

    if not isinstance(dataset_id, str):
        raise ValueError(f"dataset_id={dataset_id!r} is not a string")
    try:
        _, _, version = parse_dataset_id(dataset_id)
    except (ValueError, TypeError):
        version = None
    if version is None:
        raise ValueError(
            f"dataset_id={dataset_id!r} is not a Minari dataset id; use (namespace/)name-v<version>, "
            "e.g. 'zoo/darkroom/noisy-expert-v0'"
        )


def _env_spec(dataset: HistoryDataset) -> gym.envs.registration.EnvSpec:
    env_id = dataset.env_id
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as error:
        raise ValueError(
            f"dataset's env_id={env_id!r} is not a registered Gymnasium environment ({error}); import the "
            "package that registers it before exporting"
        ) from error
    return replace(spec, kwargs={**spec.kwargs, **dataset.env_kwargs})


def export_minari(
    dataset: HistoryDataset,
    dataset_id: str,
    *,
    algorithm_name: str | None = None,
    author: str | None = None,
    author_email: str | None = None,
    code_permalink: str | None = None,
    description: str | None = None,
    data_format: str = "arrow",
) -> Any:
    """Write ``dataset`` as the local Minari dataset ``dataset_id`` (under ``MINARI_DATASETS_PATH``).

    Every completed episode of every history becomes one Minari episode, in task order then
    learning order; a history's unfinished last episode (if any) is left out with a warning.

    :param dataset: the histories; they must hold final observations (collected by this version).
    :param dataset_id: a new Minari id, ``(namespace/)name-v<version>``.
    :param algorithm_name: recorded in the metadata (default: the dataset's source name).
    :param author: recorded in the metadata.
    :param author_email: recorded in the metadata.
    :param code_permalink: recorded in the metadata.
    :param description: recorded in the metadata.
    :param data_format: Minari storage format: ``"arrow"`` (default, needs only pyarrow) or
        ``"hdf5"`` (needs h5py).
    :return: the ``minari.MinariDataset``.
    """
    minari = _import_minari()
    from minari.data_collector.episode_buffer import EpisodeBuffer
    from minari.storage.datasets_root_dir import get_dataset_path

    if not isinstance(dataset, HistoryDataset):
        raise ValueError(f"dataset={dataset!r} is not a HistoryDataset")
    _check_dataset_id(dataset_id)
    if data_format not in ("arrow", "hdf5"):
        raise ValueError(f"data_format={data_format!r} is not allowed; use 'arrow' or 'hdf5'")
    if get_dataset_path(dataset_id).exists():
        raise ValueError(
            f"dataset_id={dataset_id!r} already exists in {get_dataset_path()}; choose a new id or version"
        )
    spec = _env_spec(dataset)
    missing = [index for index, history in enumerate(dataset.histories) if history.final_observations is None]
    if missing:
        raise ValueError(
            f"dataset has no final observations for tasks {missing[:5]} (collected before they were "
            "recorded); Minari episodes need them: collect the histories again with collect_histories"
        )
    env = gym.make(spec)
    try:
        observation_space, action_space = env.observation_space, env.action_space
    finally:
        env.close()
    limit = _max_episode_steps(dataset)
    buffers = []
    for task_index, (history, task) in enumerate(zip(dataset.histories, dataset.manifest["tasks"])):
        terminated, truncated = episode_flags(history, limit)
        dones = np.asarray(history.dones, dtype=bool)
        ends = np.flatnonzero(dones)
        if len(dones) and not dones[-1]:
            warnings.warn(
                f"task {task_index}: the last {len(dones) - (ends[-1] + 1 if len(ends) else 0)} steps "
                "form an unfinished episode, which is not exported",
                stacklevel=2,
            )
        start = 0
        for episode, end in enumerate(ends):
            observations = np.concatenate(
                (history.observations[start : end + 1], history.final_observations[episode : episode + 1])
            )
            buffers.append(
                EpisodeBuffer(
                    id=len(buffers),
                    options={"task": _task_to_json(task)},
                    observations=observations,
                    actions=np.asarray(history.actions[start : end + 1]),
                    rewards=np.asarray(history.rewards[start : end + 1], dtype=np.float64),
                    terminations=terminated[start : end + 1],
                    truncations=truncated[start : end + 1],
                    infos={"task_index": [task_index] * (end + 2 - start)},
                )
            )
            start = end + 1
    header = {key: value for key, value in dataset.manifest.items() if key != "completed"}
    exported = minari.create_dataset_from_buffers(
        dataset_id,
        buffers,
        env=spec,
        eval_env=spec,
        algorithm_name=algorithm_name or str(dataset.source.get("name", "unknown")),
        author=author,
        author_email=author_email,
        code_permalink=code_permalink,
        description=description
        or f"Learning histories of {dataset.source.get('name')} on {len(dataset)} tasks of {dataset.env_id}",
        observation_space=observation_space,
        action_space=action_space,
        data_format=data_format,
        jpeg_encoding=False,
    )
    exported.storage.update_metadata({"zoo_manifest": json.loads(json.dumps(header))})
    return minari.load_dataset(dataset_id)


def _check_episode(
    episode: Any, index: int, dataset_id: str, observation: dict[str, Any], n_actions: int
) -> tuple[np.ndarray, ...]:
    """The checked arrays of one Minari episode: ``(observations, actions, rewards, terminated, truncated)``."""

    def refuse(problem: str) -> ValueError:
        return ValueError(f"dataset_id={dataset_id!r}: episode {index} {problem}")

    observations = np.asarray(episode.observations)
    actions = np.asarray(episode.actions)
    rewards = np.asarray(episode.rewards)
    terminated = np.asarray(episode.terminations)
    truncated = np.asarray(episode.truncations)
    length = len(rewards)
    shape = tuple(observation["shape"])
    if observations.shape != (length + 1, *shape):
        raise refuse(f"has observations of shape {observations.shape}; expected {(length + 1, *shape)}")
    if actions.shape != (length,) or terminated.shape != (length,) or truncated.shape != (length,):
        raise refuse("has actions, terminations or truncations of a different length than its rewards")
    if actions.dtype.kind not in "iu" or (length and ((actions < 0) | (actions >= n_actions)).any()):
        raise refuse(f"has actions outside 0..{n_actions - 1} (or not integers)")
    if terminated.dtype != bool or truncated.dtype != bool:
        raise refuse("has terminations or truncations that are not booleans")
    if rewards.dtype.kind not in "iuf" or not np.isfinite(rewards).all():
        raise refuse("has rewards that are not finite numbers")
    if length == 0:
        raise refuse("has no steps")
    if (terminated[:-1] | truncated[:-1]).any():
        raise refuse("ends before its last step (a termination or truncation inside it)")
    if observation["kind"] == "discrete":
        if (
            observations.dtype.kind not in "iu"
            or ((observations < 0) | (observations >= observation["n"])).any()
        ):
            raise refuse(f"has observations outside 0..{observation['n'] - 1} (or not integers)")
    elif observations.dtype.kind == "f" and not np.isfinite(observations).all():
        raise refuse("has observations that are not finite")
    # Minari marks an episode cut off by the end of collection as neither; it did not terminate.
    truncated = truncated.copy()
    truncated[-1] |= not terminated[-1]
    dtype = np.dtype(observation["dtype"]) if observation["kind"] == "discrete" else observations.dtype
    return (
        observations.astype(dtype),
        actions.astype(np.int64),
        rewards.astype(np.float32),
        terminated,
        truncated,
    )


def _task_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def import_minari(dataset_id: str, directory: str | os.PathLike[str]) -> HistoryDataset:
    """Read the local Minari dataset ``dataset_id`` into a learning-history dataset in ``directory``.

    Episodes are grouped into one history per task: by ``infos["task_index"]`` and the zoo
    manifest (datasets written by :func:`export_minari`), else by the ``task`` of the episode's
    reset ``options``, else all episodes form one history (task ``None``). Spaces, shapes, dtypes
    and value ranges are checked before anything is written, and the written dataset is loaded
    back through the same checks as any other.

    :param dataset_id: a local Minari dataset id.
    :param directory: a new (or empty) folder for the dataset.
    :return: the loaded :class:`HistoryDataset`.
    """
    minari = _import_minari()
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise ValueError(f"directory={str(directory)!r} is not empty; import into a new folder")
    try:
        source = minari.load_dataset(dataset_id)
    except (ValueError, FileNotFoundError, OSError) as error:
        raise ValueError(f"dataset_id={dataset_id!r} cannot be loaded by Minari: {error}") from error
    spec = source.spec
    if not isinstance(spec.action_space, gym.spaces.Discrete):
        raise ValueError(
            f"dataset_id={dataset_id!r} has action_space={spec.action_space}; Algorithm Distillation "
            "needs a Discrete action space"
        )
    try:
        observation = describe_space(spec.observation_space, "observation_space")
    except ValueError as error:
        raise ValueError(f"dataset_id={dataset_id!r}: {error}") from error
    if spec.env_spec is None:
        raise ValueError(
            f"dataset_id={dataset_id!r} records no env spec; the dataset's env_id would be unknown"
        )
    env_id = spec.env_spec.id
    try:
        registered = gym.spec(env_id)
    except gym.error.Error as error:
        raise ValueError(
            f"dataset_id={dataset_id!r} names env_id={env_id!r}, which is not registered"
        ) from error
    n_actions = int(spec.action_space.n)
    metadata = source.storage.metadata
    zoo_header = metadata.get("zoo_manifest") if isinstance(metadata.get("zoo_manifest"), dict) else None
    episode_ids = list(source.episode_indices)
    options = [item.get("options") or {} for item in source.storage.get_episode_metadata(episode_ids)]
    groups: dict[str, list[tuple[np.ndarray, ...]]] = {}
    tasks: dict[str, Any] = {}
    for episode, option in zip(source.iterate_episodes(episode_ids), options):
        arrays = _check_episode(episode, int(episode.id), dataset_id, observation, n_actions)
        task = option.get("task") if isinstance(option, dict) else None
        task_index = (
            np.asarray(episode.infos.get("task_index", [])) if isinstance(episode.infos, dict) else []
        )
        zoo_tasks = zoo_header.get("tasks") if zoo_header is not None else None
        if isinstance(zoo_tasks, list) and len(task_index) and 0 <= int(task_index[0]) < len(zoo_tasks):
            key = f"index:{int(task_index[0])}"
            task = zoo_tasks[int(task_index[0])]
        else:
            key = _task_key(task)
        tasks.setdefault(key, task)
        groups.setdefault(key, []).append(arrays)
    if not groups:
        raise ValueError(f"dataset_id={dataset_id!r} holds no episodes")
    keys = list(groups)
    if zoo_header is not None and all(key.startswith("index:") for key in keys):
        keys.sort(key=lambda key: int(key.split(":")[1]))
        header = dict(zoo_header)
        header["tasks"] = [tasks[key] for key in keys]
    else:
        env_kwargs = {
            name: value
            for name, value in spec.env_spec.kwargs.items()
            if registered.kwargs.get(name, object()) != value
        }
        header = {
            "env_id": env_id,
            "env_kwargs": json.loads(json.dumps(env_kwargs)),
            "split": "minari",
            "tasks": [tasks[key] for key in keys],
            "source": {"name": "minari", "hyperparameters": {"dataset_id": dataset_id}},
            "episodes": max(len(groups[key]) for key in keys),
            "seed": 0,
            "tasks_per_batch": 1,
            "observation_space": observation,
            "action_space": describe_space(spec.action_space, "action_space"),
            "max_episode_steps": spec.env_spec.max_episode_steps,
        }
    header.pop("format", None)
    header.pop("version", None)
    writer = HistoryWriter(directory, header)
    for task_index, key in enumerate(keys):
        writer.write_task(task_index, _history(groups[key]))
    return HistoryDataset.load(directory)


def _history(episodes: Sequence[tuple[np.ndarray, ...]]) -> History:
    """One history from checked Minari episodes, in order."""
    observations, actions, rewards, terminated, truncated = (
        np.concatenate(
            [episode[part][: len(episode[1])] if part == 0 else episode[part] for episode in episodes]
        )
        for part in range(5)
    )
    return History(
        observations,
        actions,
        rewards,
        terminated | truncated,
        terminated,
        truncated,
        np.stack([episode[0][-1] for episode in episodes]),
    )
