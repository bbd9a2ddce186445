"""``benchmarks/ad_pretrained.py``'s cache of from-scratch learning curves (shared by training seeds)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from conftest import load_benchmark

import zoo.envs

ROOT = Path(__file__).resolve().parents[1]
ROOM = "zoo/DarkRoom-v0"
THOMPSON = {"name": "thompson", "hyperparameters": {}}


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("ad_pretrained")


def test_a_scratch_curve_is_computed_once_then_read_from_the_cache(bench: ModuleType, tmp_path: Path) -> None:
    source = {"name": "q_learning", "hyperparameters": {"initial_value": 10.0, "gamma": 0.9}}
    tasks = list(zoo.envs.tasks(ROOM, "test"))[:2]
    assert bench._cached_scratch_curve(source, ROOM, tasks, 5, 10_000, tmp_path) is None
    curve = bench._scratch_curve(source, ROOM, tasks, 5, 10_000, tmp_path)
    assert len(curve) == 5
    assert bench._cached_scratch_curve(source, ROOM, tasks, 5, 10_000, tmp_path) == curve
    # Another seed, task set or learner is another curve, not a cache hit.
    assert bench._cached_scratch_curve(source, ROOM, tasks, 5, 10_001, tmp_path) is None
    assert bench._cached_scratch_curve(source, ROOM, tasks[:1], 5, 10_000, tmp_path) is None
    assert bench._cached_scratch_curve(THOMPSON, ROOM, tasks, 5, 10_000, tmp_path) is None
    assert bench._cached_scratch_curve(source, ROOM, tasks, 5, 10_000, None) is None


def test_a_corrupt_cached_curve_names_its_file(bench: ModuleType, tmp_path: Path) -> None:
    tasks = list(zoo.envs.tasks(ROOM, "test"))[:1]
    _, path = bench._scratch_key(THOMPSON, ROOM, tasks, 3, 0, tmp_path)
    path.write_text("{truncated")
    with pytest.raises(SystemExit, match=rf"cached curve {path} cannot be read.*delete it"):
        bench._cached_scratch_curve(THOMPSON, ROOM, tasks, 3, 0, tmp_path)
