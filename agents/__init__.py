"""SB3-compatible agents of distill-zoo.

Every public class is importable from here (``from zoo.agents import KickstartedPPO``).
Families are imported on first use, so that importing one does not pay for the others.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    # Kickstarting (Schmitt et al. 2018)
    "KickstartedPPO": "zoo.agents.kickstart",
    "KickstartedA2C": "zoo.agents.kickstart",
    "KickstartedRecurrentPPO": "zoo.agents.kickstart",
    "KickstartedMaskablePPO": "zoo.agents.kickstart",
    # ReenGAGE (Levine & Feizi 2023)
    "ReenGAGEDDPG": "zoo.agents.reengage",
    "ReenGAGETD3": "zoo.agents.reengage",
    "ReenGAGESAC": "zoo.agents.reengage",
    "ReenGAGEDQN": "zoo.agents.reengage",
    "MultiReenGAGE": "zoo.agents.reengage",
    # Algorithm Distillation (Laskin et al. 2023)
    "AlgorithmDistillation": "zoo.agents.ad",
    "evaluate_in_context": "zoo.agents.ad",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'zoo.agents' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
