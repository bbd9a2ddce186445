"""The ``zoo`` command: run folders, resume, bad-input messages (tiny budgets, tmp_path)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from zoo.cli import main
from zoo.params import parse_params

RUN_FILES = ("model.zip", "config.yml", "args.yml", "command.txt", "results.json", "evaluations.npz")


def run_zoo(*argv: str) -> None:
    main(list(argv))


def train_args(tmp_path: Path, algo: str, env: str, steps: int, *extra: str) -> list[str]:
    return [
        "train",
        "--algo",
        algo,
        "--env",
        env,
        "-n",
        str(steps),
        "--log-folder",
        str(tmp_path / "logs"),
        "--eval-episodes",
        "2",
        "--no-progress-bar",
        "--device",
        "cpu",
        *extra,
    ]


def only_run_folder(tmp_path: Path, algo: str, env: str) -> Path:
    folders = sorted((tmp_path / "logs" / algo).glob(f"{env.replace('/', '-')}_*"))
    assert len(folders) == 1, folders
    return folders[0]


def test_train_ppo_writes_complete_run_folder(tmp_path: Path) -> None:
    run_zoo(
        *train_args(
            tmp_path, "ppo", "zoo/DarkRoom-v0", 512, "--params", "n_steps:32", "batch_size:64", "n_envs:4"
        )
    )
    run = only_run_folder(tmp_path, "ppo", "zoo/DarkRoom-v0")
    assert run.name == "zoo-DarkRoom-v0_1"
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    assert (run / "learning_curve.png").stat().st_size > 1000
    assert list((run / "tensorboard").rglob("events.out.tfevents.*"))
    config = yaml.safe_load((run / "config.yml").read_text())
    assert config["n_steps"] == 32 and config["env_id"] == "zoo/DarkRoom-v0"
    args = yaml.safe_load((run / "args.yml").read_text())
    assert args["algo"] == "ppo" and args["n_timesteps"] == 512
    results = json.loads((run / "results.json").read_text())
    assert results["num_timesteps"] >= 512 and np.isfinite(results["mean_return"])
    assert "train" in (run / "command.txt").read_text()


def test_second_run_gets_next_index(tmp_path: Path) -> None:
    for _ in range(2):
        run_zoo(*train_args(tmp_path, "a2c", "zoo/DarkRoom-v0", 64, "--params", "n_envs:2"))
    names = sorted(p.name for p in (tmp_path / "logs" / "a2c").iterdir())
    assert names == ["zoo-DarkRoom-v0_1", "zoo-DarkRoom-v0_2"]


def test_resume_continues_step_count_from_checkpoint(tmp_path: Path) -> None:
    common = ("--params", "n_steps:32", "batch_size:64", "n_envs:2")
    run_zoo(*train_args(tmp_path, "ppo", "zoo/DarkRoom-v0", 256, *common, "--checkpoint-freq", "64"))
    run = only_run_folder(tmp_path, "ppo", "zoo/DarkRoom-v0")
    first = json.loads((run / "results.json").read_text())["num_timesteps"]
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    assert state["num_timesteps"] == first
    run_zoo(*train_args(tmp_path, "ppo", "zoo/DarkRoom-v0", 512, *common, "--resume"))
    assert only_run_folder(tmp_path, "ppo", "zoo/DarkRoom-v0") == run  # same folder, no new run
    second = json.loads((run / "results.json").read_text())["num_timesteps"]
    assert first < second and second >= 512


def test_resume_without_run_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_zoo(*train_args(tmp_path, "ppo", "zoo/DarkRoom-v0", 64, "--resume"))
    assert exit_info.value.code == 2
    assert "no run of --algo ppo on --env zoo/DarkRoom-v0" in capsys.readouterr().err


def test_unknown_algo_lists_valid_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_zoo(*train_args(tmp_path, "ppo2", "zoo/DarkRoom-v0", 64))
    error = capsys.readouterr().err
    assert "'ppo2' is not a known algorithm" in error
    assert "kickstarted_ppo" in error and "reengage_ddpg" in error


def test_unknown_env_lists_zoo_envs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_zoo(*train_args(tmp_path, "ppo", "zoo/DarkRom-v0", 64))
    error = capsys.readouterr().err
    assert "'zoo/DarkRom-v0' is not a registered environment" in error
    assert "zoo/DarkRoom-v0" in error and "zoo/Watermaze-v0" in error


@pytest.mark.parametrize(
    ("pair", "reason"),
    [
        ("learning_rate", "expected key:value"),
        ("learning rate:0.1", "is not a valid parameter name"),
        ("gamma:", "the value after ':' is empty"),
        ("net_arch:[64,", "not valid YAML"),
    ],
)
def test_malformed_params_name_the_pair(pair: str, reason: str) -> None:
    with pytest.raises(ValueError, match="malformed") as error_info:
        parse_params([pair])
    assert repr(pair) in str(error_info.value) and reason in str(error_info.value)


def test_unknown_hyperparameter_key_is_refused_before_training(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        run_zoo(*train_args(tmp_path, "ppo", "zoo/DarkRoom-v0", 64, "--params", "learnin_rate:0.1"))
    error = capsys.readouterr().err
    assert "learnin_rate" in error and "learning_rate" in error
    assert not (tmp_path / "logs").exists()


def test_teacher_with_non_kickstarted_algo_is_refused(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        run_zoo(*train_args(tmp_path, "ppo", "zoo/DarkRoom-v0", 64, "--teacher", "some/teacher"))
    assert "--teacher is only taken by kickstarted algorithms" in capsys.readouterr().err


def test_console_script_help_lists_subcommands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "zoo.cli", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("train", "enjoy", "push", "pull", "bench", "quickstart"):
        assert command in result.stdout
