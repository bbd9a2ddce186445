"""Atomic file writes: readers see the old file or the new one, never half of one.

Every file the zoo writes (agents, configs, datasets, checkpoints, videos, run folders) goes
through :func:`atomic_path`: a temporary file in the destination's folder is written, flushed to
disk, given the permissions the process's umask asks for (``mkstemp`` alone would leave 0600),
and renamed over the destination. On any failure the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "current_umask"]


def current_umask() -> int:
    """The process's umask (read without changing it for longer than one call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync(path: str) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot fsync; the rename is still atomic
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, mode: int = 0o666, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` atomically.

    :param path: the destination (its folder is created if missing).
    :param mode: permissions before the umask is applied (``0o666``: as ``open`` creates files).
    :param suffix: the temporary file's suffix (writers that pick a format by extension need
        the destination's, e.g. ``".mp4"``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, mode & ~current_umask())
        _fsync(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`).

    :param path: destination.
    :param data: content.
    :return: the destination path.
    """
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write a UTF-8 text file atomically.

    :param path: destination.
    :param text: content.
    :return: the destination path.
    """
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], data: Any, *, indent: int | None = 2) -> Path:
    """Write strict JSON (no NaN / inf) atomically.

    :param path: destination.
    :param data: JSON-serialisable data.
    :param indent: ``json.dumps`` indentation (``None``: compact).
    :return: the destination path.
    """
    separators = (",", ":") if indent is None else None
    return atomic_write_text(
        path, json.dumps(data, indent=indent, separators=separators, allow_nan=False) + "\n"
    )
