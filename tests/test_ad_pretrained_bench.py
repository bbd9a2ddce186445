"""``benchmarks/ad_pretrained.py``: its cache of from-scratch learning curves (shared by training seeds), and
the bundled models' cards naming the command that trained them."""

from __future__ import annotations

import json
import re
import shlex
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
    overrides = tuple(shlex.split(command[2])) if command[2] else ()  # as a shell would pass them
    assert overrides == bench.BUNDLED_VARIANTS.get(env_id, ())
    recipe, _ = bench.resolve(env_id, overrides)
    assert config["num_steps"] == recipe.train_steps
    assert config["hyperparameters"]["subsample"] == recipe.subsample
    for key in ("context_length", "n_layers", "n_heads", "embed_dim"):
        assert config["model"][key] == recipe.model[key], key
    assert config["metadata"]["source"]["name"] == recipe.source["name"]
    assert f"{recipe.task_repeats}\n  histories per task" in card


def test_key_to_door_trains_and_evaluates_on_keys_all_over_the_room(bench: ModuleType) -> None:
    # The task lists are ordered by key cell: the first 512 train / 100 test pairs (the recipe until
    # 2026-12-03) all had the key in the top row, and the held-out figures measured only those (the
    # model trained on them: 0.68 of 2 there, 0.30 with keys in every row). The strided selection
    # covers every key cell and keeps the splits disjoint.
    env_id = "zoo/DarkKeyToDoor-v0"
    recipe, _ = bench.resolve(env_id)
    train = bench._tasks(env_id, "train", recipe.train_tasks, recipe.train_stride)
    held_out = bench._task_set(env_id, recipe.held_out)
    assert len(train) == 519 and len(held_out) == 100
    cells = {(row, col) for row in range(9) for col in range(9)}
    assert {key for key, _ in train} == cells
    assert {key[0] for key, _ in held_out} == set(range(9))
    assert len({key for key, _ in held_out}) >= 75
    assert not set(train) & set(held_out)
    assert set(held_out) <= set(zoo.envs.tasks(env_id, "test"))
    assert bench._describe_task_set(recipe.held_out) == "test split [0::13]"


def test_task_sets_can_be_set_and_bad_ones_are_refused_by_name(bench: ModuleType) -> None:
    recipe, variant = bench.resolve(ROOM, ['held_out=["test", 2, null, 3]', "train_stride=4"])
    assert recipe.held_out == ("test", 2, None, 3) and recipe.train_stride == 4
    assert bench._task_set(ROOM, recipe.held_out) == list(zoo.envs.tasks(ROOM, "test"))[2::3]
    assert bench._tasks(ROOM, "train", None, 4) == list(zoo.envs.tasks(ROOM, "train"))[::4]
    assert "train_stride=4" in variant
    for item in ('held_out=["test", 0]', 'held_out=["test", -1, null]', 'held_out=["test", 0, null, 0]',
                 'held_out=["test", 5, 5]', 'held_out="test"'):  # fmt: skip
        with pytest.raises(ValueError, match=r"held_out=.* is not \(split, start, stop\)"):
            bench.resolve(ROOM, [item])
    for value in ("0", "1.5", "true"):
        with pytest.raises(ValueError, match="train_stride"):
            bench.resolve(ROOM, [f"train_stride={value}"])
