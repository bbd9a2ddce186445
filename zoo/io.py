"""Atomic file writes for run folders: YAML and SB3 model zips on top of ``zoo.hub``'s writer."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import yaml

from zoo.hub.serialization import atomic_write_bytes, atomic_write_text

__all__ = ["atomic_save_model", "atomic_write_bytes", "atomic_write_text", "atomic_write_yaml"]


def atomic_write_yaml(path: str | os.PathLike[str], data: Any) -> Path:
    """Dump ``data`` as YAML atomically."""
    return atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def atomic_save_model(model: Any, path: str | os.PathLike[str]) -> Path:
    """Save an SB3 model's zip atomically (SB3's own ``save`` writes in place)."""
    buffer = io.BytesIO()
    model.save(buffer)
    return atomic_write_bytes(path, buffer.getvalue())
