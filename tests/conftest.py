"""Shared pytest configuration: GPU tests skip without CUDA; torch uses one thread per worker."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import gymnasium
import gymnasium.envs.registration
import gymnasium.wrappers.common
import pytest

#: The organisation the local Hub fixture uses for pushes and teacher repos.
HUB_ORG = "zoo-test"


def load_benchmark(name: str) -> ModuleType:
    """A script of ``benchmarks/`` (not a package) imported as a module, for testing its helpers."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while its classes are made
    spec.loader.exec_module(module)
    return module


#: Where Gymnasium's TimeLimit lives, as found before any test module runs (``None``: absent).
#: Importing rl_zoo3 (its ``gym_patches``) replaces it process-wide with one that adds
#: ``info["TimeLimit.truncated"]``; with pytest-xdist every worker imports every test module, so
#: one module importing rl_zoo3 would change the infos every other test sees. rl_zoo3 itself runs
#: in subprocesses here.
_TIME_LIMIT_HOMES = {
    (module, "TimeLimit"): getattr(module, "TimeLimit", None)
    for module in (gymnasium.wrappers, gymnasium.wrappers.common, gymnasium.envs.registration)
}


@pytest.fixture(autouse=True)
def _gymnasium_time_limit_unpatched() -> Iterator[None]:
    """Undo rl_zoo3's process-wide TimeLimit patch before each test."""
    for (module, name), original in _TIME_LIMIT_HOMES.items():
        if original is None:
            if hasattr(module, name):
                delattr(module, name)
        elif getattr(module, name, None) is not original:
            setattr(module, name, original)
    yield


def pytest_configure(config: pytest.Config) -> None:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return
    # Two cores shared by pytest-xdist workers: one intra-op thread each avoids oversubscription.
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    if has_cuda:
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device (marked gpu)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture
def hub_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A local HF-compatible Hub on 127.0.0.1 and a fresh huggingface_hub cache, set through env variables.

    The real ``huggingface_hub`` client talks to it (``tests/hub_server.py``).
    """
    from hub_server import HubServer, point_huggingface_hub_at
    from huggingface_hub import constants

    server = HubServer(tmp_path / "hub-store").start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    # Clients that take no endpoint= (huggingface_sb3) and huggingface_hub < 1.4 read the
    # import-time constants, as if HF_ENDPOINT had been set before Python started.
    point_huggingface_hub_at(server.url, monkeypatch)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("ZOO_HUB_ORG", HUB_ORG)
    monkeypatch.setenv("ZOO_TEACHER_ORG", HUB_ORG)
    yield server
    server.stop()
