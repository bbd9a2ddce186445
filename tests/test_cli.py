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

#: rl-baselines3-zoo's layout (``<EnvName>.zip``, ``<EnvName>/config.yml`` …) and the zoo's own files.
RUN_FILES = (
    "{env}.zip",
    "{env}/config.yml",
    "{env}/args.yml",
    "command.txt",
    "results.json",
    "evaluations.npz",
    "0.monitor.csv",
)


def run_files(env: str) -> list[str]:
    return [name.format(env=env.replace("/", "-")) for name in RUN_FILES]


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
    for name in run_files("zoo/DarkRoom-v0"):
        assert (run / name).is_file(), name
    assert (run / "learning_curve.png").stat().st_size > 1000
    assert list((run / "tensorboard").rglob("events.out.tfevents.*"))
    config = yaml.safe_load((run / "zoo-DarkRoom-v0" / "config.yml").read_text())
    assert config["n_steps"] == 32 and config["n_envs"] == 4 and config["policy"] == "MlpPolicy"
    args = yaml.safe_load((run / "zoo-DarkRoom-v0" / "args.yml").read_text())
    assert args["algo"] == "ppo" and args["n_timesteps"] == 512 and args["env"] == "zoo/DarkRoom-v0"
    assert args["env_kwargs"] is None  # rl_zoo3's enjoy reads it (a mapping or null)
    assert not (run / "config.yml").exists() and not (run / "model.zip").exists()  # one copy of each
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
    steps = sorted(int(path.name.split("_")[2]) for path in run.glob("rl_model_*_steps.zip"))
    assert steps[-1] == first and steps[0] == 64  # SB3 CheckpointCallback names, every 64 steps
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


TEACHERS = Path(__file__).resolve().parent.parent / "hub" / "teachers"
ON_POLICY = ("--params", "n_envs:2", "n_steps:16", "batch_size:32")
OFF_POLICY = ("--params", "learning_starts:40", "buffer_size:2000", "batch_size:32")
#: --algo -> (env, budget, extra arguments). Maskable agents need an env with action masks, which no
#: zoo env has; they are covered by tests/test_kickstart.py and tests/test_hub.py.
SMOKE = {
    "ppo": ("zoo/DarkRoom-v0", 64, ON_POLICY),
    "a2c": ("zoo/DarkRoom-v0", 64, ON_POLICY[:2]),
    "trpo": ("zoo/DarkRoom-v0", 64, ON_POLICY),
    "recurrent_ppo": ("zoo/DarkRoom-v0", 64, ON_POLICY),
    "dqn": ("zoo/DarkRoom-v0", 80, OFF_POLICY),
    "qrdqn": ("zoo/DarkRoom-v0", 80, OFF_POLICY),
    "ddpg": ("zoo/ContinuousSeek-d5-v0", 80, OFF_POLICY),
    "td3": ("zoo/ContinuousSeek-d5-v0", 80, OFF_POLICY),
    "sac": ("zoo/ContinuousSeek-d5-v0", 80, OFF_POLICY),
    "tqc": ("zoo/ContinuousSeek-d5-v0", 80, OFF_POLICY),
    "reengage_ddpg": ("zoo/ContinuousSeek-d5-v0", 80, OFF_POLICY),
    "reengage_td3": ("zoo/ContinuousSeek-d5-v0", 80, OFF_POLICY),
    "reengage_sac": ("zoo/ContinuousSeek-d5-v0", 80, OFF_POLICY),
    "reengage_dqn": ("zoo/BitFlip-v0", 80, OFF_POLICY),
    "multi_reengage": ("zoo/DriveSeek-v0", 80, OFF_POLICY),
    "kickstarted_ppo": (
        "zoo/DarkRoom-v0",
        64,
        (*ON_POLICY, "--teacher", str(TEACHERS / "zoo-DarkRoom-v0" / "1-7"), "--env-kwargs", "task:[1,7]"),
    ),
    "kickstarted_a2c": (
        "zoo/DarkRoom-v0",
        64,
        (*ON_POLICY[:2], "--teacher", "bundled", "--env-kwargs", "task:[1,7]"),
    ),
    "kickstarted_recurrent_ppo": (
        "zoo/DarkRoom-v0",
        64,
        (*ON_POLICY, "--teacher", str(TEACHERS / "zoo-DarkRoom-v0" / "1-7"), "--env-kwargs", "task:[1,7]"),
    ),
}


def test_smoke_table_covers_every_algo_but_the_maskable_ones() -> None:
    from zoo.algos import ALGOS

    assert set(ALGOS) - set(SMOKE) == {"maskable_ppo", "kickstarted_maskable_ppo"}


@pytest.mark.slow
@pytest.mark.parametrize("algo", sorted(SMOKE))
def test_train_every_algo_writes_run_folder(tmp_path: Path, algo: str) -> None:
    env, steps, extra = SMOKE[algo]
    run_zoo(*train_args(tmp_path, algo, env, steps, *extra))
    run = only_run_folder(tmp_path, algo, env)
    for name in run_files(env):
        assert (run / name).is_file(), name
    assert (run / "model" / "model.safetensors").is_file()
    results = json.loads((run / "results.json").read_text())
    assert results["algo"] == algo and results["num_timesteps"] >= steps


def test_kickstarted_teacher_with_wrong_spaces_is_refused_before_training(tmp_path: Path, capsys) -> None:
    teacher = str(TEACHERS / "zoo-DarkRoomHard-v0" / "5-11")  # Discrete(289) observations
    with pytest.raises(SystemExit):
        run_zoo(
            *train_args(tmp_path, "kickstarted_ppo", "zoo/DarkRoom-v0", 64, *ON_POLICY, "--teacher", teacher)
        )
    error = capsys.readouterr().err
    assert "Discrete(289)" in error and "Discrete(81)" in error
    assert not (tmp_path / "logs").exists()  # no run folder either


def test_enjoy_prints_returns_and_writes_video(tmp_path: Path, capsys) -> None:
    import imageio.v3 as iio

    run_zoo(*train_args(tmp_path, "ppo", "zoo/DarkRoom-v0", 64, *ON_POLICY))
    video = tmp_path / "enjoy.mp4"
    run_zoo(
        "enjoy", "--algo", "ppo", "--env", "zoo/DarkRoom-v0", "--log-folder", str(tmp_path / "logs"),
        "--episodes", "2", "--video", str(video), "--video-steps", "20", "--device", "cpu",
    )  # fmt: skip
    assert "Episode returns:" in capsys.readouterr().out
    frame = iio.imread(video, index=0)
    assert frame.ndim == 3 and frame.shape[2] == 3


def test_push_then_pull_round_trip_through_local_hub(tmp_path: Path, hub_server, capsys) -> None:
    from stable_baselines3 import PPO

    run_zoo(*train_args(tmp_path, "ppo", "zoo/DarkRoom-v0", 64, *ON_POLICY))
    run_zoo(
        "push", "--algo", "ppo", "--env", "zoo/DarkRoom-v0", "--log-folder", str(tmp_path / "logs"),
        "--eval-episodes", "2", "--no-video",
    )  # fmt: skip
    assert "Pushed to zoo-test/ppo-zoo-DarkRoom-v0" in capsys.readouterr().out
    run_zoo(
        "pull",
        "--repo",
        "zoo-test/ppo-zoo-DarkRoom-v0",
        "--output",
        str(tmp_path / "pulled"),
        "--device",
        "cpu",
    )
    from zoo.hub import load_agent

    pulled = load_agent(tmp_path / "pulled" / "ppo-zoo-DarkRoom-v0", device="cpu")
    trained = PPO.load(
        only_run_folder(tmp_path, "ppo", "zoo/DarkRoom-v0") / "zoo-DarkRoom-v0.zip", device="cpu"
    )
    observations = np.arange(81)
    assert np.array_equal(
        pulled.predict(observations, deterministic=True)[0],
        trained.predict(observations, deterministic=True)[0],
    )


def test_ad_collect_train_eval_pipeline(tmp_path: Path, capsys) -> None:
    dataset = tmp_path / "histories"
    run_zoo("ad", "collect", "--env", "zoo/AdversarialBandit-v0", "--source", "ucb", "--episodes", "40",
            "--output", str(dataset))  # fmt: skip
    assert (dataset / "manifest.json").is_file()
    model = tmp_path / "ad-model"
    run_zoo("ad", "train", "--dataset", str(dataset), "--steps", "3", "--output", str(model),
            "--context-length", "16", "--batch-size", "4", "--device", "cpu")  # fmt: skip
    assert (model / "model.safetensors").is_file()
    run_zoo("ad", "eval", "--model", str(model), "--env", "zoo/AdversarialBandit-v0", "--episodes", "5",
            "--n-tasks", "3", "--plot", str(tmp_path / "curve.png"), "--device", "cpu")  # fmt: skip
    out = capsys.readouterr().out
    assert "episode   5: return" in out
    assert (tmp_path / "curve.png").stat().st_size > 1000


def test_ad_cli_repeats_tasks_and_sets_the_architecture(tmp_path: Path, capsys) -> None:
    dataset = tmp_path / "room"
    run_zoo("ad", "collect", "--env", "zoo/DarkRoom-v0", "--source", "noisy_expert", "--episodes", "4",
            "--source-params", "decay_fraction:0.25", "--repeats", "2", "--output", str(dataset))  # fmt: skip
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert (
        len(manifest["tasks"]) == 2 * 64 and manifest["source"]["hyperparameters"]["decay_fraction"] == 0.25
    )
    model = tmp_path / "room-model"
    run_zoo("ad", "train", "--dataset", str(dataset), "--steps", "2", "--output", str(model),
            "--context-length", "40", "--batch-size", "2", "--n-layers", "1", "--attention-dropout", "0",
            "--subsample", "2", "--device", "cpu")  # fmt: skip
    config = json.loads((model / "config.json").read_text())["model"]
    assert (config["n_layers"], config["attention_dropout"], config["grid_size"]) == (1, 0.0, 9)
    with pytest.raises(SystemExit):
        run_zoo(
            "ad", "collect", "--env", "zoo/DarkRoom-v0", "--repeats", "0", "--output", str(tmp_path / "x")
        )
    assert "--repeats 0" in capsys.readouterr().err


def test_ad_eval_on_another_env_is_refused(tmp_path: Path, capsys) -> None:
    dataset = tmp_path / "histories"
    run_zoo("ad", "collect", "--env", "zoo/AdversarialBandit-v0", "--source", "thompson", "--episodes", "20",
            "--output", str(dataset))  # fmt: skip
    model = tmp_path / "ad-model"
    run_zoo("ad", "train", "--dataset", str(dataset), "--steps", "1", "--output", str(model),
            "--context-length", "8", "--batch-size", "2", "--device", "cpu")  # fmt: skip
    with pytest.raises(SystemExit):
        run_zoo("ad", "eval", "--model", str(model), "--env", "zoo/DarkRoom-v0", "--device", "cpu")
    assert "zoo/AdversarialBandit-v0" in capsys.readouterr().err


def test_bench_passes_the_scripts_own_flags_through(capfd) -> None:
    run_zoo("bench", "env_throughput", "--help")  # the script's own argparse answers, exit code 0
    out = capfd.readouterr().out
    assert "usage: env_throughput.py" in out and "--quick" in out


def test_bench_unknown_name_lists_the_benchmarks(capsys) -> None:
    with pytest.raises(SystemExit):
        run_zoo("bench", "throughput")
    error = capsys.readouterr().err
    assert "'throughput' is not a benchmark" in error and "env_throughput" in error


def test_enjoy_replays_the_latest_run_on_its_own_task(tmp_path: Path) -> None:
    from zoo.config import EnjoyConfig
    from zoo.runner import _run_env_kwargs

    run_zoo(*train_args(tmp_path, "ppo", "zoo/DarkRoom-v0", 64, *ON_POLICY, "--env-kwargs", "task:[1,7]"))
    config = EnjoyConfig(algo="ppo", env="zoo/DarkRoom-v0", log_folder=str(tmp_path / "logs"))
    assert _run_env_kwargs(config) == {"task": (1, 7)}


def test_learning_rate_schedule_strings(tmp_path: Path, capsys) -> None:
    run_zoo(*train_args(tmp_path, "ppo", "zoo/DarkRoom-v0", 64, *ON_POLICY, "learning_rate:lin_1e-3"))
    run = only_run_folder(tmp_path, "ppo", "zoo/DarkRoom-v0")
    config = yaml.safe_load((run / "zoo-DarkRoom-v0" / "config.yml").read_text())
    assert config["learning_rate"] == "lin_1e-3"
    with pytest.raises(SystemExit):
        run_zoo(*train_args(tmp_path, "ppo", "zoo/DarkRoom-v0", 64, *ON_POLICY, "learning_rate:exp_1e-3_0.9"))
    assert "exp_ schedules are for kickstart_coef" in capsys.readouterr().err


def test_help_describes_every_subcommand(capsys) -> None:
    with pytest.raises(SystemExit):
        run_zoo("--help")
    out = " ".join(capsys.readouterr().out.split())
    assert "Algorithm Distillation: collect learning histories" in out
    assert "Union" not in out and "typing" not in out


def test_printed_results_have_no_float32_noise_or_object_reprs(tmp_path: Path, capsys) -> None:
    import re

    from zoo.cli import clean
    from zoo.cli_extra import describe_dataset

    assert clean({"r": np.float32(0.2), "xs": [np.float64(1 / 3)], "n": np.int64(3)}) == {
        "r": 0.2,
        "xs": [0.3333],
        "n": 3,
    }
    run_zoo(*train_args(tmp_path, "ppo", "zoo/DarkRoom-v0", 64, *ON_POLICY))
    run_zoo(
        "ad", "collect", "--env", "zoo/DarkRoom-v0", "--episodes", "2", "--output", str(tmp_path / "ad"),
        "--split", "test",
    )  # fmt: skip
    out = capsys.readouterr().out
    assert not re.search(r"\d\.\d{7,}", out), out  # no 0.20000000298023224
    assert " object at 0x" not in out and "learning histories" in out, out

    from types import SimpleNamespace

    dataset = SimpleNamespace(histories=[range(40), range(60)])
    assert describe_dataset(dataset) == "2 learning histories, 0 episodes, 100 steps"
