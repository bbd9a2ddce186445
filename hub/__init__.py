"""Hugging Face Hub sharing of agents, pretrained teachers and learning-history datasets.

``save_agent`` / ``load_agent`` write and read a local directory (``model.safetensors`` +
``config.json``); ``push_to_hub`` / ``load_from_hub`` publish and fetch agents with a model
card, evaluation results and a replay video; ``push_dataset`` / ``load_dataset_from_hub`` move
learning-history datasets; ``load_teacher`` returns the zoo's pretrained teachers. Submodules
are imported on first use so that ``import zoo.hub`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    # local, pickle-free serialisation
    "save_agent": "zoo.hub.serialization",
    "load_agent": "zoo.hub.serialization",
    "restore_vec_normalize": "zoo.hub.serialization",
    "space_to_json": "zoo.hub.serialization",
    "space_from_json": "zoo.hub.serialization",
    "algorithm_registry": "zoo.hub.serialization",
    # model cards
    "generate_model_card": "zoo.hub.card",
    # the Hub
    "push_to_hub": "zoo.hub.push",
    "load_from_hub": "zoo.hub.push",
    "make_repo_id": "zoo.hub.push",
    "load_from_hub_with_info": "zoo.hub.push",
    "evaluate_agent": "zoo.hub.push",
    "download_snapshot": "zoo.hub.push",
    "download_file": "zoo.hub.push",
    "HubSnapshot": "zoo.hub.push",
    "PushResult": "zoo.hub.push",
    "sb3_zip_name": "zoo.hub.push",
    "hub_endpoint": "zoo.hub.push",
    "hub_cache_dir": "zoo.hub.push",
    "HubError": "zoo.hub.push",
    "HubNotFoundError": "zoo.hub.push",
    "NotCachedError": "zoo.hub.push",
    "UnsafeFormatError": "zoo.hub.push",
    # datasets
    "push_dataset": "zoo.hub.datasets",
    "load_dataset_from_hub": "zoo.hub.datasets",
    # video
    "record_video": "zoo.hub.video",
    # teachers
    "load_teacher": "zoo.hub.teachers",
    "TeacherInfo": "zoo.hub.teachers",
    "teacher_folder": "zoo.hub.teachers",
    "push_teachers": "zoo.hub.teachers",
    "teacher_repo_id": "zoo.hub.teachers",
    "task_slug": "zoo.hub.teachers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'zoo.hub' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
