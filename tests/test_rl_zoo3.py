"""The zoo and rl-baselines3-zoo read each other's run folders and hyperparameter files.

The real ``rl_zoo3`` (``python -m rl_zoo3.train`` / ``rl_zoo3.enjoy``, as a user types them) runs on
zoo runs and zoo hyperparameter files, and ``zoo enjoy`` on rl_zoo3 runs. Budgets are tiny: each
training run is about a thousand Dark Room steps.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("rl_zoo3")

from zoo.cli import main
from zoo.config import EnjoyConfig

ENV = "zoo/DarkRoom-v0"
ENV_NAME = "zoo-DarkRoom-v0"  # rl_zoo3's EnvironmentName: "/" -> "-"
TINY_PPO = ("--params", "n_envs:2", "n_steps:32", "batch_size:64", "policy_kwargs:{net_arch: [16]}")
#: Hyperparameter keys rl_zoo3's ExperimentManager takes out before building the agent.
RL_ZOO3_KEYS = {
    "n_envs", "n_timesteps", "normalize", "env_wrapper", "frame_stack", "callback", "vec_env_wrapper",
    "env_kwargs", "monitor_kwargs", "noise_type", "noise_std",
}  # fmt: skip


def rl_zoo3(module: str, *argv: str, cwd: Path) -> str:
    """Run ``python -m rl_zoo3.<module> argv`` in ``cwd``; return its output, failing the test on an error."""
    completed = subprocess.run(
        [sys.executable, "-m", f"rl_zoo3.{module}", *argv, "--gym-packages", "zoo", "--device", "cpu"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed.stdout


def zoo_train(log_folder: Path, steps: int, *extra: str) -> Path:
    main([
        "train", "--algo", "ppo", "--env", ENV, "-n", str(steps), "--log-folder", str(log_folder),
        "--eval-episodes", "2", "--no-progress-bar", "--device", "cpu", *TINY_PPO, *extra,
    ])  # fmt: skip
    (run,) = sorted((log_folder / "ppo").glob(f"{ENV_NAME}_*"))
    return run


@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A zoo run on Dark Room goal (1, 7): checkpoints every 64 steps, evaluations, the final agent."""
    root = tmp_path_factory.mktemp("zoo_run")
    return zoo_train(
        root / "logs", 256, "--checkpoint-freq", "64", "--eval-freq", "64", "--env-kwargs", "task:[1,7]"
    )


@pytest.fixture(scope="module")
def rl_zoo3_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An rl_zoo3 run trained from the zoo's own ppo.yml (VecNormalize on, checkpoints, best model)."""
    root = tmp_path_factory.mktemp("rl_zoo3_run")
    conf = resources.files("zoo.hyperparams").joinpath("ppo.yml")
    rl_zoo3(
        "train", "--algo", "ppo", "--env", ENV, "-conf", str(conf), "-n", "256", "-f", "logs",
        "--save-freq", "512", "--eval-freq", "512", "--eval-episodes", "2", "--seed", "0",
        # Dark Room's observations are Discrete: VecNormalize may scale rewards only.
        "--hyperparams", "normalize:'dict(norm_obs=False, norm_reward=True)'",
        cwd=root,
    )  # fmt: skip
    return root / "logs" / "ppo" / f"{ENV_NAME}_1"


def test_zoo_run_folder_has_rl_zoo3_layout(zoo_run: Path) -> None:
    for name in (f"{ENV_NAME}.zip", f"{ENV_NAME}/config.yml", f"{ENV_NAME}/args.yml", "evaluations.npz",
                 "0.monitor.csv", "best_model.zip", "rl_model_64_steps.zip",
                 "rl_model_256_steps.zip"):  # fmt: skip
        assert (zoo_run / name).is_file(), name
    # One copy of each: no model.zip beside <EnvName>.zip, no config/args outside <EnvName>/.
    assert not [
        name
        for name in ("model.zip", "config.yml", "args.yml", "env_kwargs.yml")
        if (zoo_run / name).exists()
    ]
    with np.load(zoo_run / "evaluations.npz") as evaluations:
        assert list(evaluations["timesteps"]) == [64, 128, 192, 256]
    monitor = (zoo_run / "0.monitor.csv").read_text().splitlines()
    assert monitor[0].startswith("#{") and monitor[1] == "r,l,t" and len(monitor) > 2


def test_rl_zoo3_enjoy_replays_a_zoo_run(zoo_run: Path) -> None:
    out = rl_zoo3("enjoy", "--folder", "logs", "--algo", "ppo", "--env", ENV, "-n", "50", "--no-render",
                  cwd=zoo_run.parents[2])  # fmt: skip
    assert f"{ENV_NAME}_1/{ENV_NAME}.zip" in out and "Episode Reward" in out


def test_rl_zoo3_enjoy_loads_a_zoo_checkpoint(zoo_run: Path) -> None:
    out = rl_zoo3("enjoy", "--folder", "logs", "--algo", "ppo", "--env", ENV, "-n", "30", "--no-render",
                  "--load-checkpoint", "128", cwd=zoo_run.parents[2])  # fmt: skip
    assert "rl_model_128_steps.zip" in out


def test_rl_zoo3_reads_the_run_files_of_a_zoo_run(zoo_run: Path) -> None:
    """What rl_zoo3's enjoy does with <EnvName>/: get_saved_hyperparams, then args.yml's env_kwargs."""
    from rl_zoo3.utils import get_saved_hyperparams

    hyperparams, stats_path = get_saved_hyperparams(str(zoo_run / ENV_NAME), test_mode=True)
    assert stats_path is not None and hyperparams["n_steps"] == 32 and hyperparams["normalize"] is False
    with open(zoo_run / ENV_NAME / "args.yml") as handle:
        args = yaml.load(handle, Loader=yaml.UnsafeLoader)  # as rl_zoo3 reads it
    assert args["env_kwargs"] == {"task": [1, 7]} and args["algo"] == "ppo" and args["env"] == ENV


def test_zoo_resume_continues_from_the_newest_checkpoint(tmp_path: Path) -> None:
    run = zoo_train(tmp_path / "logs", 128, "--checkpoint-freq", "64")
    (run / "rl_model_128_steps.zip").unlink()  # as if it stopped after 64 steps
    (run / f"{ENV_NAME}.zip").unlink()
    zoo_train(tmp_path / "logs", 192, "--checkpoint-freq", "64", "--resume")
    steps = sorted(int(path.name.split("_")[2]) for path in run.glob("rl_model_*_steps.zip"))
    assert steps == [64, 128, 192]  # continued from 64, not from 0
    with np.load(run / "evaluations.npz") as evaluations:
        assert list(evaluations["timesteps"]) == sorted(set(evaluations["timesteps"]))


def test_rl_zoo3_trains_from_the_zoo_hyperparameter_file(rl_zoo3_run: Path) -> None:
    for name in (f"{ENV_NAME}.zip", f"{ENV_NAME}/config.yml", f"{ENV_NAME}/vecnormalize.pkl",
                 "rl_model_512_steps.zip", "best_model.zip", "evaluations.npz", "0.monitor.csv"):  # fmt: skip
        assert (rl_zoo3_run / name).is_file(), name


@pytest.mark.parametrize("algo", ["ppo", "a2c", "dqn", "sac", "td3", "ddpg", "qrdqn", "tqc", "trpo"])
def test_every_entry_of_rl_zoo3_algos_is_complete_for_rl_zoo3(algo: str) -> None:
    """rl_zoo3 takes an env's entry alone (no merge with default): n_timesteps, constructor arguments."""
    from rl_zoo3.utils import ALGOS

    table = yaml.safe_load(resources.files("zoo.hyperparams").joinpath(f"{algo}.yml").read_text())
    accepted = {name for klass in ALGOS[algo].__mro__ if "__init__" in klass.__dict__
                for name in inspect.signature(klass.__init__).parameters}  # fmt: skip
    for env_id, entry in table.items():
        assert "n_timesteps" in entry, (algo, env_id)
        assert set(entry) - RL_ZOO3_KEYS <= accepted, (algo, env_id, set(entry) - RL_ZOO3_KEYS - accepted)


def test_zoo_enjoy_replays_an_rl_zoo3_run(rl_zoo3_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = ("--algo", "ppo", "--env", ENV, "--log-folder", str(rl_zoo3_run.parents[1]), "--device", "cpu")
    main(["enjoy", *logs, "--episodes", "2"])
    main(["enjoy", *logs, "--episodes", "1", "--load-checkpoint", "512"])
    main(["enjoy", *logs, "--episodes", "1", "--load-best"])
    main(["enjoy", *logs, "--episodes", "1", "--load-last-checkpoint"])
    out = capsys.readouterr().out
    assert out.count("Episode returns:") == 4


def test_zoo_reads_rl_zoo3_run_files(rl_zoo3_run: Path) -> None:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from zoo.runner import _normalized, read_run_yaml, recorded_run

    assert (rl_zoo3_run / ENV_NAME / "config.yml").read_text().startswith("!!python/object/apply")
    assert read_run_yaml(rl_zoo3_run / ENV_NAME / "config.yml")["normalize"].startswith("dict(norm_obs=False")
    assert recorded_run(rl_zoo3_run) == {"env": ENV, "algo": "ppo"}
    config = EnjoyConfig(algo="ppo", env=ENV, run=str(rl_zoo3_run))
    env = _normalized(make_vec_env(ENV, n_envs=1), config)  # zoo enjoy's env: the run's statistics, frozen
    assert isinstance(env, VecNormalize) and not env.training and not env.norm_reward


def test_zoo_enjoy_refuses_an_rl_zoo3_run_of_another_env(rl_zoo3_run: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(
            [
                "enjoy",
                "--algo",
                "ppo",
                "--env",
                "zoo/DarkRoomHard-v0",
                "--run",
                str(rl_zoo3_run),
                "--device",
                "cpu",
            ]
        )
    assert f"is a run on --env {ENV}, not on --env zoo/DarkRoomHard-v0" in capsys.readouterr().err


def test_missing_checkpoint_lists_the_ones_there(rl_zoo3_run: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["enjoy", "--algo", "ppo", "--env", ENV, "--run", str(rl_zoo3_run), "--load-checkpoint", "100"])
    assert "rl_model_100_steps.zip does not exist (checkpoints of this run, in steps: 512, 1024)" in (
        capsys.readouterr().err
    )


def test_run_yaml_reader_runs_no_code(tmp_path: Path) -> None:
    from zoo.runner import read_run_yaml

    path = tmp_path / "config.yml"
    path.write_text(
        "!!python/object/apply:collections.OrderedDict\n"
        "- - - policy\n    - MlpPolicy\n"
        "  - - train_freq\n    - !!python/tuple [1, step]\n"
        "  - - evil\n    - !!python/object/apply:os.system ['touch " + str(tmp_path / "pwned") + "']\n"
    )
    assert read_run_yaml(path) == {"policy": "MlpPolicy", "train_freq": (1, "step"), "evil": None}
    assert not (tmp_path / "pwned").exists()


def test_namespaced_env_ids_name_folders_as_rl_zoo3_does() -> None:
    from huggingface_sb3 import EnvironmentName

    from zoo.hub.teachers import env_name

    for env_id in (ENV, "zoo:zoo/DarkRoom-v0", "CartPole-v1"):
        assert env_name(env_id) == str(EnvironmentName(env_id))
