"""Learning-history datasets as Hub dataset repos (``repo_type="dataset"``).

A dataset is a directory of files (the format is defined by Algorithm Distillation: memory-
mapped ``.npy`` arrays and a ``manifest.json``); this module moves directories. ``.npy``
files are data: after a download their headers are checked and a file whose dtype holds Python
objects (which ``np.load`` could only read by unpickling) is refused. Read them with
``np.load(path, allow_pickle=False)`` (or ``mmap_mode="r"``).

A learning-history dataset is pushed with two more things, generated at push time so the
ecosystem reads it: its transitions as Parquet (``data/task_XXXXX.parquet``, columns in
:data:`zoo.agents.ad.TRANSITION_COLUMNS`, written by :func:`zoo.agents.ad.write_parquet`) and a
``README.md`` dataset card whose ``configs`` point ``datasets.load_dataset(repo_id)`` at them
(:func:`generate_dataset_card`). The manifest and ``.npy`` arrays stay beside them, unchanged,
for :func:`load_dataset_from_hub` and ``HistoryDataset.load``. The conversion is imported from
``zoo.agents.ad`` only when such a dataset is pushed (it owns the format).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .push import _check_repo_id, download_snapshot, hub_endpoint
from .trust import npy_header


def check_npy_files(directory: str | os.PathLike[str]) -> list[Path]:
    """Check that every ``.npy`` file under ``directory`` is plain numeric/boolean data.

    Only the headers are read (no array is loaded, nothing is unpickled), through
    :func:`zoo.hub.trust.npy_header`.

    :param directory: the folder to scan.
    :return: the ``.npy`` files found.
    :raises UntrustedFileError: naming the first file that is not a plain array.
    """
    found = []
    for path in sorted(Path(directory).rglob("*.npy")):
        npy_header(path, root=directory)
        found.append(path)
    return found


#: ``format`` of an Algorithm Distillation manifest (``zoo.agents.ad.dataset.FORMAT_NAME``).
HISTORY_FORMAT = "zoo-ad-histories"
#: Files ``push_dataset`` generates for a learning-history dataset (local files of these names are replaced).
CARD_NAME = "README.md"
PARQUET_PATTERN = "data/*.parquet"


def _size_category(count: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
    bounds += [(10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    for bound, name in bounds:
        if count < bound:
            return name
    return "n>1B"


def generate_dataset_card(manifest: dict[str, Any], repo_id: str, *, transitions: int, episodes: int) -> Any:
    """The ``README.md`` dataset card of a learning-history dataset (pure: builds, writes nothing).

    Its YAML holds ``configs`` (``default``: ``data/*.parquet`` as the ``train`` split), so
    ``datasets.load_dataset(repo_id)`` returns the transitions, and the tags the Hub lists
    reinforcement-learning datasets by.

    :param manifest: the dataset's manifest (env id, tasks, source, ...).
    :param repo_id: ``"org/name"``, used in the loading examples.
    :param transitions: total number of steps (rows).
    :param episodes: total number of completed episodes.
    :return: a ``huggingface_hub.DatasetCard`` (``str(card)`` is the file, ``card.data`` its metadata).
    """
    from huggingface_hub import DatasetCard, DatasetCardData

    env_id = str(manifest.get("env_id"))
    source = manifest.get("source") or {}
    source_name = str(source.get("name", "unknown"))
    tasks = manifest.get("tasks") or []
    slug = env_id.replace("/", "-")
    data = DatasetCardData(
        pretty_name=f"{source_name} learning histories on {env_id}",
        task_categories=["reinforcement-learning"],
        tags=[
            "reinforcement-learning",
            "offline-rl",
            "in-context-rl",
            "algorithm-distillation",
            "distill-zoo",
            slug,
        ],
        size_categories=[_size_category(transitions)],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": PARQUET_PATTERN}]}],
    )
    hyperparameters = json.dumps(source.get("hyperparameters", {}), sort_keys=True)
    env_kwargs = json.dumps(manifest.get("env_kwargs", {}), sort_keys=True)
    minari_id = f"{slug.lower()}/{source_name.replace('_', '-')}-v0"
    content = f"""---
{data.to_yaml()}
---

# {source_name} learning histories on `{env_id}`

Learning histories for [Algorithm Distillation](https://arxiv.org/abs/2210.14215) (Laskin et al.,
ICLR 2023), collected with [distill-zoo](https://github.com/distill-zoo/distill-zoo): the source
algorithm `{source_name}` (hyper-parameters `{hyperparameters}`) learned each of {len(tasks)} tasks of
`{env_id}` (env kwargs `{env_kwargs}`, split
`{manifest.get("split")}`) from scratch; every step it took is recorded, in the order it learned.

{transitions} transitions, {episodes} episodes, {len(tasks)} tasks (one Parquet file per task).

## Transitions (`datasets`)

```python
import datasets

transitions = datasets.load_dataset("{repo_id}", split="train")
```

| column | meaning |
|---|---|
| `task_index` | index of the task in `manifest.json`'s task list |
| `task` | the task, as `env.reset(options={{"task": ...}})` takes it |
| `episode` | episode number inside the task's learning history |
| `step` | step number inside the episode |
| `observation` | the observation acted on |
| `action` | the action taken (discrete) |
| `reward` | the reward received |
| `terminated` | the episode reached a terminal state (do not bootstrap) |
| `truncated` | the episode was cut by the time limit |
| `next_observation` | the observation after the step (the final one at an episode end) |

Rows are in learning order: sort by `task_index`, `episode`, `step` after shuffling.

## Learning histories (distill-zoo)

`manifest.json` and the memory-mapped `.npy` arrays beside it are the training format:

```python
from zoo.agents.ad import AlgorithmDistillation, HistoryDataset, export_minari
from zoo.hub import load_dataset_from_hub

histories = HistoryDataset.load(load_dataset_from_hub("{repo_id}"))
model = AlgorithmDistillation(histories)
export_minari(histories, "{minari_id}")  # a Minari dataset
```

Loading never unpickles: the arrays are read with `allow_pickle=False` after their headers are checked.
"""
    return DatasetCard(content)


def _history_format(folder: Path) -> bool:
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        return json.loads(manifest.read_text(encoding="utf-8")).get("format") == HISTORY_FORMAT
    except (ValueError, AttributeError, OSError):
        return False


def _write_ecosystem_files(folder: Path, repo_id: str, target: Path) -> list[str]:
    """Write the Parquet transitions and the dataset card of the dataset in ``folder`` into ``target``."""
    from zoo.agents.ad import HistoryDataset, write_parquet

    dataset = HistoryDataset.load(folder)
    written = write_parquet(dataset, target)
    card = generate_dataset_card(
        dataset.manifest,
        repo_id,
        transitions=sum(len(history) for history in dataset.histories),
        episodes=sum(history.episodes for history in dataset.histories),
    )
    card.save(target / CARD_NAME)
    return [path.relative_to(target).as_posix() for path in written] + [CARD_NAME]


def push_dataset(
    local_dir: str | os.PathLike[str],
    repo_id: str,
    *,
    commit_message: str | None = None,
    private: bool = False,
    revision: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
) -> Any:
    """Upload a dataset directory to a dataset repo in one commit, mirroring it exactly.

    Remote files that are not in ``local_dir`` are deleted in the same commit, so a revision
    never mixes files of two versions of a dataset. Hidden files (``.name``) are skipped.
    A learning-history dataset (a ``manifest.json`` of format ``zoo-ad-histories``) is pushed
    with its transitions as ``data/task_XXXXX.parquet`` and a ``README.md`` dataset card, generated
    from the histories (a local ``README.md`` and ``data/*.parquet`` are not uploaded), so
    ``datasets.load_dataset(repo_id)`` returns the transitions.

    :param local_dir: the dataset folder.
    :param repo_id: ``"org/name"``.
    :param commit_message: commit message.
    :param private: create the repo private.
    :param revision: branch to commit to (default: the default branch).
    :param token: Hugging Face token.
    :param endpoint: Hub URL (default: ``HF_ENDPOINT``).
    :return: huggingface_hub's ``CommitInfo``.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    folder = Path(local_dir)
    _check_repo_id(repo_id)
    if not folder.is_dir():
        raise ValueError(f"local_dir={str(local_dir)!r} is not a directory")
    check_npy_files(folder)
    root = folder.resolve()
    files = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise ValueError(f"local_dir={str(local_dir)!r}: {relative} links outside the folder")
        files.append(relative.as_posix())
    if not files:
        raise ValueError(f"local_dir={str(local_dir)!r} holds no files to upload")
    with tempfile.TemporaryDirectory(prefix="zoo-dataset-") as scratch:
        sources = {path: folder / path for path in files}
        if _history_format(folder):
            generated = _write_ecosystem_files(folder, repo_id, Path(scratch))
            sources = {path: source for path, source in sources.items() if path != CARD_NAME}
            sources = {
                path: source
                for path, source in sources.items()
                if not (path.startswith("data/") and path.endswith(".parquet"))
            }
            sources.update({path: Path(scratch) / path for path in generated})
        api = HfApi(endpoint=hub_endpoint(endpoint), token=token)
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        remote = set(api.list_repo_files(repo_id, repo_type="dataset", revision=revision))
        operations: list[Any] = [
            CommitOperationDelete(path_in_repo=path)
            for path in sorted(remote - set(sources))
            if path != ".gitattributes"
        ]
        operations += [
            CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(sources[path]))
            for path in sorted(sources)
        ]
        return api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message or f"Upload dataset {folder.name}",
            repo_type="dataset",
            revision=revision,
        )


def load_dataset_from_hub(
    repo_id: str,
    revision: str | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
) -> Path:
    """Download a dataset repo through the huggingface_hub cache and return its local folder.

    The folder is inside the cache: read it, do not modify it. Offline (``HF_HUB_OFFLINE=1``) it
    is served from the cache, or a ``NotCachedError`` says it is not there.

    :param repo_id: ``"org/name"``.
    :param revision: branch, tag or commit sha (``None``: the default branch).
    :param cache_dir: cache folder (default: ``HF_HUB_CACHE`` / ``HF_HOME/hub``).
    :param endpoint: Hub URL (default: ``HF_ENDPOINT``).
    :param token: Hugging Face token.
    :return: the snapshot folder.
    """
    snapshot = download_snapshot(
        repo_id,
        revision,
        repo_type="dataset",
        ignore_patterns=[".gitattributes"],
        cache_dir=cache_dir,
        endpoint=endpoint,
        token=token,
    )
    check_npy_files(snapshot.path)
    return snapshot.path
