"""``benchmarks/ad_per_task.py``: the per-task breakdown of an AD model's in-context returns."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from conftest import load_benchmark

import zoo.envs
from zoo.envs.darkroom import DarkRoomEnv

ROOM = "zoo/DarkRoom-v0"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    # The script imports its sibling ``ad_pretrained`` as ``python benchmarks/ad_per_task.py`` does.
    folder = str(Path(__file__).resolve().parents[1] / "benchmarks")
    sys.path.insert(0, folder)
    try:
        return load_benchmark("ad_per_task")
    finally:
        sys.path.remove(folder)


def test_the_breakdown_is_computed_from_the_returns_it_writes(
    script: ModuleType, tmp_path: Path, capsys
) -> None:
    output = tmp_path / "per_task.json"
    script.main(["--env", ROOM, "--split", "test", "--stop", "3", "--episodes", "4", "--eval-seeds", "2",
                 "--mark", "4", "--found-by", "2", "--temperatures", "1", "0.5", "--output", str(output)])  # fmt: skip
    document = json.loads(output.read_text())
    assert document["task_set"] == ["test", 0, 3, 1] and document["eval_seeds"] == [10000, 10001]
    tasks = list(zoo.envs.tasks(ROOM, "test"))[:3]
    optimum = np.array([DarkRoomEnv.optimal_return(tuple(t)) for t in tasks])
    assert [r["temperature"] for r in document["results"]] == [1.0, 0.5]
    for result in document["results"]:
        returns = np.array(result["returns"])
        assert returns.shape == (2, 3, 4)
        assert result["fraction_of_optimum_at_mark"] == pytest.approx(
            returns[:, :, 3].mean() / optimum.mean()
        )
        found = (returns[:, :, :2] > 0).any(axis=-1)
        assert result["found_share"] == pytest.approx(found.mean())
        assert sum(result["later_return_shares"].values()) == pytest.approx(1.0, abs=1e-3)
        assert [row["task"] for row in result["tasks"]] == [list(t) for t in tasks]
        for i, row in enumerate(result["tasks"]):
            assert row["optimum"] == optimum[i]
            assert row["fraction_at_mark"] == pytest.approx((returns[:, i, 3] / optimum[i]).mean())
    printed = capsys.readouterr().out
    assert "temperature 1:" in printed and "temperature 0.5:" in printed and "| task | optimum |" in printed


def test_the_recipe_held_out_tasks_are_the_default(script: ModuleType, tmp_path: Path) -> None:
    output = tmp_path / "per_task.json"
    script.main(["--env", "zoo/DarkKeyToDoor-v0", "--episodes", "2", "--eval-seeds", "1", "--mark", "1",
                 "--found-by", "1", "--output", str(output)])  # fmt: skip
    document = json.loads(output.read_text())
    assert document["task_set"] == ["test", 0, None, 13]
    assert len(document["results"][0]["tasks"]) == 100


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--episodes", "0"], "--episodes 0: must be >= 1"),
        (["--episodes", "5", "--mark", "6"], "--mark 6: the run has --episodes 5"),
        (["--temperatures", "0"], "--temperatures [0.0]: every temperature must be > 0"),
        (["--episodes", "5", "--mark", "5", "--found-by", "5"], "--found-by 5: must be below --episodes 5"),
        (["--split", "test", "--start", "50"], "no tasks"),
        (["--worst", "-1"], "--worst -1: must be >= 0"),
        (["--split", "test", "--start", "-5"], "--split/--start/--stop/--step=('test', -5, None, 1) is not"),
        (["--split", "test", "--step", "0"], "--split/--start/--stop/--step=('test', 0, None, 0) is not"),
    ],
)
def test_bad_arguments_are_refused_by_name(script: ModuleType, argv: list[str], match: str, capsys) -> None:
    with pytest.raises(SystemExit):
        script.main(["--env", ROOM, *argv])
    assert match in capsys.readouterr().err


def test_optimal_repeats_counts_what_follows_an_optimal_episode(script: ModuleType) -> None:
    # Two tasks (optimum 2 and 1), two seeds, four episodes.
    returns = np.array(
        [
            [[0, 2, 2, 1], [0, 0, 0, 0]],  # task 0: first optimal in episode 2; task 1 never rewarded
            [[2, 1, 2, 2], [1, 1, 0, 1]],  # task 1 reaches its optimum 1 in episode 1
        ],
        dtype=float,
    )
    figures = script.optimal_repeats(returns, np.array([2.0, 1.0]))
    assert figures["optimal_share"] == pytest.approx(3 / 4)
    assert figures["first_optimal_median"] == 1.0  # episodes 2, 1 and 1
    # Optimal episodes with a next one: seed 0 task 0 episodes 2, 3; seed 1 task 0 episodes 1, 3;
    # seed 1 task 1 episodes 1, 2. Optimal again next: 2->3, 3->4 (seed 1 task 0), 1->2 (task 1).
    assert figures["next_optimal_after_optimal"] == pytest.approx(3 / 6)
    # The other 6 of the 12 pairs: 3 from seed 0 task 1 (never optimal) and 3 followed by an optimal one.
    assert figures["next_optimal_after_other"] == pytest.approx(3 / 6)
    nothing = script.optimal_repeats(np.zeros((1, 1, 3)), np.array([2.0]))
    assert nothing["optimal_share"] == 0.0 and nothing["first_optimal_median"] is None
    assert nothing["next_optimal_after_optimal"] is None and nothing["next_optimal_after_other"] == 0.0
