"""Learning-history datasets as Hub dataset repos (``repo_type="dataset"``).

A dataset is a directory of files (the format is defined by Algorithm Distillation: memory-
mapped ``.npy`` arrays and a ``manifest.json``); this module only moves directories. ``.npy``
files are data: after a download their headers are checked and a file whose dtype holds Python
objects (which ``np.load`` could only read by unpickling) is refused. Read them with
``np.load(path, allow_pickle=False)`` (or ``mmap_mode="r"``).
"""

from __future__ import annotations

import os
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
    api = HfApi(endpoint=hub_endpoint(endpoint), token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    remote = set(api.list_repo_files(repo_id, repo_type="dataset", revision=revision))
    operations: list[Any] = [
        CommitOperationDelete(path_in_repo=path)
        for path in sorted(remote - set(files))
        if path != ".gitattributes"
    ]
    operations += [
        CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(folder / path)) for path in files
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
