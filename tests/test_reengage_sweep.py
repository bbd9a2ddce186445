"""The ReenGAGE benchmark sweep (``benchmarks/reengage.py``): its grid and its resumable bookkeeping."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from conftest import load_benchmark

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sweep() -> ModuleType:
    return load_benchmark("reengage")


def _hyperparams(algo: str) -> dict:
    return yaml.safe_load((ROOT / "zoo" / "hyperparams" / f"{algo}.yml").read_text())


def test_every_cell_runs_the_budget_of_its_hyperparameter_file(sweep: ModuleType) -> None:
    """``zoo train`` with a cell's algo and env is the same run as the cell (the paper's budget).

    The DriveSeek cells alone stop early: the paper's figure runs 160k steps (the file's budget)
    and issue #12 compares it at 40k, which is already a day of one CPU core per cell.
    """
    for cell in sweep.grid():
        budget = _hyperparams(cell.algo)[cell.env_id]["n_timesteps"]
        if cell.env_id == "zoo/DriveSeek-v1":
            assert (cell.steps, budget) == (40_000, 160_000), cell.name
        else:
            assert cell.steps == budget, cell.name


def test_bitflip_budgets_are_those_of_the_appendix_figure(sweep: ModuleType) -> None:
    steps = {cell.name: cell.steps for cell in sweep.grid()}
    assert steps["bitflip20-dqn-her"] == steps["bitflip20-reengage0.5"] == 200_000
    assert steps["bitflip40-dqn-her"] == steps["bitflip40-reengage0.5"] == 1_600_000


def _write(path: Path, steps: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"config": path.name.split("__")[0], "steps": steps, "curve": []}))


def test_finished_cells_are_skipped_and_missing_ones_listed(sweep: ModuleType, tmp_path: Path) -> None:
    cells = [cell for cell in sweep.grid() if cell.name.startswith("seek-d5-")]
    her = cells[0]
    _write(sweep.result_path(tmp_path, her.name, 0), her.steps)
    todo = sweep.pending(cells, [0, 1], tmp_path, 1.0)
    assert (her, 0) not in todo and (her, 1) in todo and len(todo) == 2 * len(cells) - 1
    listing = sweep.listing(cells, [0, 1], tmp_path, 1.0)
    assert f"{her.name} | ddpg | zoo/ContinuousSeek-d5-v1 | {her.steps} | [0] | [1]" in listing


def test_a_result_file_of_another_budget_stops_the_sweep_and_names_itself(
    sweep: ModuleType, tmp_path: Path
) -> None:
    """A 400k-step BitFlip n = 40 file neither counts as the 1.6M-step cell nor gets overwritten."""
    cell = next(cell for cell in sweep.grid() if cell.name == "bitflip40-dqn-her")
    path = sweep.result_path(tmp_path, cell.name, 0)
    _write(path, 400_000)
    before = path.read_text()
    with pytest.raises(SystemExit, match=r"bitflip40-dqn-her__seed0\.json ran 400000 steps.*1600000-step"):
        sweep.pending([cell], [0], tmp_path, 1.0)
    assert path.read_text() == before
    assert "0 (file has 400000 steps)" in sweep.listing([cell], [0], tmp_path, 1.0)


def test_an_unreadable_result_file_is_named(sweep: ModuleType, tmp_path: Path) -> None:
    cell = sweep.grid()[0]
    path = sweep.result_path(tmp_path, cell.name, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    with pytest.raises(SystemExit, match=r"result file .*__seed0\.json cannot be read"):
        sweep.pending([cell], [0], tmp_path, 1.0)


class _Interrupted(Exception):
    pass


def _small_cell(sweep: ModuleType) -> object:
    """BitFlip n = 20 DQN+HER at 600 steps (half of a 1,200-step cell: HER learns from step 500),
    evaluated on 2 episodes every 100 steps."""
    cell = next(cell for cell in sweep.grid() if cell.name == "bitflip20-dqn-her")
    return dataclasses.replace(cell, steps=1_200, eval_every=200, eval_episodes=2)


def test_an_interrupted_cell_resumes_from_its_last_checkpoint(sweep: ModuleType, tmp_path: Path) -> None:
    """With ``checkpoint_every=2`` a run stopped in its 4th evaluation resumes after the 2nd (not
    the 3rd): the finished file keeps the first run's 2 points, lists the resume and has no
    checkpoint left."""
    cell = _small_cell(sweep)
    checkpoints, results = tmp_path / "checkpoints", tmp_path / "results"
    first: list[dict] = []

    def stop_at_fourth(point: dict) -> None:
        first.append(point)
        if len(first) == 4:
            raise _Interrupted

    with pytest.raises(_Interrupted):
        sweep.run_cell(cell, 0, 0.5, stop_at_fourth, checkpoints, checkpoint_every=2)
    folder = sweep.checkpoint_path(checkpoints, cell.name, 0, 0.5)
    state = json.loads((folder / "state.json").read_text())
    assert state["steps"] == 200 and state["curve"] == first[:2]
    assert sorted(path.name for path in folder.parent.iterdir()) == [folder.name]  # no .tmp / .old left

    sweep.run_serial([(cell, 0)], results, 0.5, "test", checkpoints, checkpoint_every=2)
    result = json.loads(sweep.result_path(results, cell.name, 0, 0.5).read_text())
    assert [point["steps"] for point in result["curve"]] == [100, 200, 300, 400, 500, 600]
    assert result["curve"][:2] == first[:2] and result["resumed_at"] == [200]
    assert not folder.exists()


def test_checkpoint_every_must_be_a_positive_count(sweep: ModuleType, tmp_path: Path, capsys) -> None:
    cell = _small_cell(sweep)
    with pytest.raises(ValueError, match=r"checkpoint_every=0: must be an int >= 1"):
        sweep.run_cell(cell, 0, 0.5, None, tmp_path, checkpoint_every=0)
    with pytest.raises(SystemExit):
        sweep.main(["--checkpoint-every", "0", "--cells", cell.name])
    assert "--checkpoint-every 0: must be >= 1" in capsys.readouterr().err
