"""``benchmarks/ad_pretrained.py``: its cache of from-scratch learning curves (shared by training seeds), and
the bundled models' cards naming the command that trained them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType

import pytest
from conftest import load_benchmark

import zoo.envs
from zoo.agents.ad import available_pretrained, pretrained_path

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


@pytest.mark.parametrize("env_id", available_pretrained())
def test_a_bundled_card_names_the_command_that_trained_its_weights(bench: ModuleType, env_id: str) -> None:
    # Running the card's command again (recipe, or its --set variant) trains weights of this shape
    # from this source: the card, the script and the shipped config agree.
    folder = pretrained_path(env_id)
    card = (folder / "README.md").read_text()
    config = json.loads((folder / "config.json").read_text())
    command = re.search(
        r"Trained by `python benchmarks/ad_pretrained\.py --env (\S+) --seeds 0 1 2(?: --set ([^`]+))?`", card
    )
    assert command is not None and command[1] == env_id
    overrides = tuple(command[2].split()) if command[2] else ()
    assert overrides == bench.BUNDLED_VARIANTS.get(env_id, ())
    recipe, _ = bench.resolve(env_id, overrides)
    assert config["num_steps"] == recipe.train_steps
    assert config["hyperparameters"]["subsample"] == recipe.subsample
    for key in ("context_length", "n_layers", "n_heads", "embed_dim"):
        assert config["model"][key] == recipe.model[key], key
    assert config["metadata"]["source"]["name"] == recipe.source["name"]
    assert f"{recipe.task_repeats}\n  histories per task" in card
