"""Atomic file writes for run folders: YAML, SB3 model zips and replay buffers.

Everything a run folder holds goes through ``zoo.hub.files``' one atomic writer, so a crash
leaves the old file or the new one, never half of it, and every file gets the permissions the
umask asks for.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import yaml

from zoo.hub.files import atomic_path, atomic_write_bytes, atomic_write_text

__all__ = [
    "atomic_path",
    "atomic_save_model",
    "atomic_save_replay_buffer",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_yaml",
]


def atomic_write_yaml(path: str | os.PathLike[str], data: Any) -> Path:
    """Dump ``data`` as YAML atomically."""
    return atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def atomic_save_model(model: Any, path: str | os.PathLike[str]) -> Path:
    """Save an SB3 model's zip atomically (SB3's own ``save`` writes in place)."""
    buffer = io.BytesIO()
    model.save(buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def atomic_save_replay_buffer(model: Any, path: str | os.PathLike[str]) -> Path:
    """Save an off-policy model's replay buffer (SB3's pickle) atomically.

    Streamed to the temporary file, not through memory: a buffer can be gigabytes.
    """
    with atomic_path(path, suffix=".pkl") as temporary:
        model.save_replay_buffer(temporary)
    return Path(path)
