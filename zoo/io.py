"""Atomic file writes for run folders: YAML, NumPy archives, SB3 model zips and replay buffers.

Everything a run folder holds goes through ``zoo.hub``'s one atomic writer, so a crash leaves
the old file or the new one, never half of it, and every file gets the same permissions.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from zoo.hub.serialization import atomic_write_bytes, atomic_write_text

__all__ = [
    "atomic_save_model",
    "atomic_save_replay_buffer",
    "atomic_write_bytes",
    "atomic_write_npz",
    "atomic_write_text",
    "atomic_write_yaml",
]


def atomic_write_yaml(path: str | os.PathLike[str], data: Any) -> Path:
    """Dump ``data`` as YAML atomically."""
    return atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def atomic_write_npz(path: str | os.PathLike[str], **arrays: Any) -> Path:
    """Write ``arrays`` as an uncompressed ``.npz`` (``np.savez``) atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


def atomic_save_model(model: Any, path: str | os.PathLike[str]) -> Path:
    """Save an SB3 model's zip atomically (SB3's own ``save`` writes in place)."""
    buffer = io.BytesIO()
    model.save(buffer)
    return atomic_write_bytes(path, buffer.getvalue())


class _UnclosableBytesIO(io.BytesIO):
    """SB3's ``save_to_pkl`` closes the file it is given; this buffer keeps its bytes readable."""

    def close(self) -> None:
        pass


def atomic_save_replay_buffer(model: Any, path: str | os.PathLike[str]) -> Path:
    """Save an off-policy model's replay buffer (SB3's pickle) atomically."""
    buffer = _UnclosableBytesIO()
    model.save_replay_buffer(buffer)
    return atomic_write_bytes(path, buffer.getvalue())
