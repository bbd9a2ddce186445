"""Pretrained Algorithm Distillation models bundled with the package (no network).

Layout (package data, written by ``benchmarks/ad_pretrained.py``)::

    bundled/<EnvName>/config.json         architecture, metadata (env id, source), hyper-parameters
    bundled/<EnvName>/model.safetensors   the weights
    bundled/<EnvName>/README.md           model card: recipe (data, source, budget, seeds) and results

``<EnvName>`` is the env id with ``/`` turned into ``-`` (``zoo/DarkRoom-v0`` ->
``zoo-DarkRoom-v0``). The files are read through :meth:`AlgorithmDistillation.load`, i.e. the
same trust boundary as a download.

:func:`make_source` rebuilds the source algorithm a model (or dataset) names in its metadata, so
its own learning curve can be drawn next to the model's (``source_learning_curve``). An SB3
source is rebuilt by its recorded algorithm name, which must be an algorithm class of
stable_baselines3 or sb3_contrib; nothing else is looked up, imported or unpickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .algorithm import AlgorithmDistillation
from .sources import UCB, NoisyExpert, SB3Source, Source, TabularQLearning, ThompsonSampling

__all__ = ["BUNDLE_ROOT", "available_pretrained", "load_pretrained", "make_source", "pretrained_path"]

BUNDLE_ROOT = Path(__file__).resolve().parent / "bundled"

_SOURCES: dict[str, type[Source]] = {
    TabularQLearning.name: TabularQLearning,
    NoisyExpert.name: NoisyExpert,
    UCB.name: UCB,
    ThompsonSampling.name: ThompsonSampling,
}


def _folder_name(env_id: str) -> str:
    return env_id.replace("/", "-")


def available_pretrained() -> list[str]:
    """Env ids that have a bundled pretrained model, sorted."""
    if not BUNDLE_ROOT.is_dir():
        return []
    found = []
    for folder in sorted(BUNDLE_ROOT.iterdir()):
        if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
            found.append(folder.name.replace("-", "/", 1))
    return found


def pretrained_path(env_id: str) -> Path:
    """The folder of the bundled model for ``env_id`` (``config.json``, ``model.safetensors``, ``README.md``).

    :param env_id: a registered env id, e.g. ``"zoo/DarkRoom-v0"``.
    :raises ValueError: no model is bundled for ``env_id``; the message lists those that are.
    """
    if not isinstance(env_id, str) or env_id not in available_pretrained():
        raise ValueError(
            f"env_id={env_id!r} has no bundled pretrained Algorithm Distillation model; "
            f"available: {available_pretrained()}"
        )
    return BUNDLE_ROOT / _folder_name(env_id)


def load_pretrained(env_id: str, device: str | torch.device = "auto") -> AlgorithmDistillation:
    """The bundled pretrained AD model for ``env_id``, ready for ``predict`` and ``evaluate_in_context``.

    Its recipe (source algorithm, histories, budget, seeds) and its measured in-context returns
    are in the model card, ``pretrained_path(env_id) / "README.md"``; ``model.metadata["source"]``
    names the source (see :func:`make_source`).

    :param env_id: ``"zoo/DarkRoom-v0"``, ... (see :func:`available_pretrained`).
    :param device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ...
    :raises ValueError: no model is bundled for ``env_id``.
    """
    return AlgorithmDistillation.load(pretrained_path(env_id), device=device)


def _make_sb3_source(name: str, hyperparameters: dict[str, Any]) -> SB3Source:
    """An :class:`SB3Source` from its recorded ``{"algorithm", "policy", **keyword arguments}``.

    Only an algorithm class of stable_baselines3 or sb3_contrib is looked up by the recorded name
    (nothing is imported from a path or unpickled), and it must be the one ``name`` says.
    """
    arguments = dict(hyperparameters)
    algorithm, policy = arguments.pop("algorithm", None), arguments.pop("policy", None)
    if not isinstance(algorithm, str) or not isinstance(policy, str):
        raise ValueError(
            f"source name={name!r} needs hyperparameters with 'algorithm' and 'policy' names "
            f"(as SB3Source.hyperparameters() records them); got {hyperparameters!r}"
        )
    source = SB3Source(algorithm, policy, arguments)
    if source.name != name:
        raise ValueError(f"source name={name!r} does not match its algorithm={algorithm!r} ({source.name!r})")
    return source


def make_source(description: dict[str, Any]) -> Source:
    """The source algorithm described by ``{"name": ..., "hyperparameters": {...}}``.

    That is the ``source`` entry of a dataset's manifest and of a model's ``metadata``.

    :param description: the description.
    :raises ValueError: an unknown name or hyper-parameters the source does not accept.
    """
    if not isinstance(description, dict) or not isinstance(description.get("name"), str):
        raise ValueError(
            f"description={description!r} is not allowed; give {{'name': ..., 'hyperparameters': {{...}}}}"
        )
    name = description["name"]
    hyperparameters = description.get("hyperparameters") or {}
    if not isinstance(hyperparameters, dict):
        raise ValueError(f"hyperparameters={hyperparameters!r} is not allowed; give a dict")
    if name.startswith("sb3_"):
        return _make_sb3_source(name, hyperparameters)
    if name not in _SOURCES:
        raise ValueError(
            f"source name={name!r} cannot be rebuilt here; known: {sorted(_SOURCES)} or 'sb3_<algorithm>'"
        )
    try:
        return _SOURCES[name](**hyperparameters)
    except TypeError as error:
        raise ValueError(f"hyperparameters={hyperparameters!r} do not fit source {name!r}: {error}") from None
