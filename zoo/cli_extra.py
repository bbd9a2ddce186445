"""Subcommands that belong to agent families: ``zoo ad collect|train|eval`` and ``zoo pbt``.

Filled in as the families land; the registry keeps :mod:`zoo.cli` unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def subcommands() -> dict[str, Any]:
    """Extra ``name -> config dataclass`` entries for the ``zoo`` command."""
    return {}


def handler_for(config: Any) -> Callable[[Any], None]:
    """The function that runs a config returned by one of :func:`subcommands`."""
    raise ValueError(f"no handler for {type(config).__name__}")
