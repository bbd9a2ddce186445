"""Run folders lose nothing: resumed curves, no stub folders, race-free numbers, locks, umask, safe models."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from zoo.cli import main
from zoo.runner import LOCK_FILE, latest_run, new_numbered_folder, run_lock

ENV = "zoo/DarkRoom-v0"
TINY_PPO = ("--params", "n_envs:2", "n_steps:16", "batch_size:32")


def train_args(tmp_path: Path, steps: int, *extra: str, algo: str = "ppo", env: str = ENV) -> list[str]:
    return [
        "train", "--algo", algo, "--env", env, "-n", str(steps), "--log-folder", str(tmp_path / "logs"),
        "--eval-episodes", "2", "--no-progress-bar", "--device", "cpu", *extra,
    ]  # fmt: skip


def run_dirs(tmp_path: Path, algo: str = "ppo") -> list[Path]:
    return sorted((tmp_path / "logs" / algo).glob("zoo-DarkRoom-v0_*"))


def evaluations(run: Path) -> dict[str, np.ndarray]:
    with np.load(run / "evaluations.npz", allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def test_resume_appends_to_evaluations(tmp_path: Path) -> None:
    main(train_args(tmp_path, 128, *TINY_PPO, "--eval-freq", "32"))
    (run,) = run_dirs(tmp_path)
    first = evaluations(run)
    assert list(first["timesteps"]) == [32, 64, 96, 128]
    main(train_args(tmp_path, 256, *TINY_PPO, "--eval-freq", "32", "--resume"))
    both = evaluations(run)
    timesteps = list(both["timesteps"])
    assert timesteps[:4] == [32, 64, 96, 128] and max(timesteps) == 256
    assert timesteps == sorted(set(timesteps))  # strictly increasing: the second segment continues
    assert np.array_equal(both["results"][:4], first["results"])
    assert np.array_equal(both["ep_lengths"][:4], first["ep_lengths"])
    assert both["results"].shape == both["ep_lengths"].shape == (len(timesteps), 2)
    assert (run / "command.txt").read_text().count("\n") == 2  # both commands recorded


def test_resume_with_another_eval_episodes_is_refused(tmp_path: Path, capsys) -> None:
    main(train_args(tmp_path, 64, *TINY_PPO, "--eval-freq", "32"))
    before = evaluations(run_dirs(tmp_path)[0])
    with pytest.raises(SystemExit):
        main([*train_args(tmp_path, 128, *TINY_PPO, "--resume"), "--eval-episodes", "3"])
    assert "resume it with --eval-episodes 2" in capsys.readouterr().err
    assert np.array_equal(evaluations(run_dirs(tmp_path)[0])["timesteps"], before["timesteps"])


def test_failed_runs_leave_no_folder_behind_the_good_one(tmp_path: Path, capsys) -> None:
    main(train_args(tmp_path, 64, *TINY_PPO))
    (good,) = run_dirs(tmp_path)
    failing = [
        ("--params", "n_envs:2", "batch_size:0"),  # refused by the hyperparameter checks
        ("--params", "n_envs:2", "policy_kwargs:{bogus_argument: 1}"),  # by the policy's constructor
        ("--params", "n_envs:2", "--env-kwargs", "task:[99,99]"),  # by the env
    ]
    for extra in failing:
        with pytest.raises(SystemExit):
            main(train_args(tmp_path, 64, *extra))
        assert "zoo: error:" in capsys.readouterr().err
        assert run_dirs(tmp_path) == [good], extra
    # The good run is still the latest for --resume and enjoy.
    main(train_args(tmp_path, 128, *TINY_PPO, "--resume"))
    assert run_dirs(tmp_path) == [good]
    main(["enjoy", "--algo", "ppo", "--env", ENV, "--log-folder", str(tmp_path / "logs"), "--episodes", "1",
          "--device", "cpu"])  # fmt: skip


def test_run_failing_before_its_first_checkpoint_is_removed(tmp_path: Path, monkeypatch, capsys) -> None:
    from stable_baselines3 import PPO

    def fail(self: PPO, *args: object, **kwargs: object) -> None:
        raise ValueError("refused in learn")

    monkeypatch.setattr(PPO, "learn", fail)
    with pytest.raises(SystemExit):
        main(train_args(tmp_path, 64, *TINY_PPO))
    assert "zoo: error: refused in learn" in capsys.readouterr().err
    assert run_dirs(tmp_path) == []


def test_latest_run_skips_folders_that_hold_no_run(tmp_path: Path) -> None:
    main(train_args(tmp_path, 64, *TINY_PPO))
    (good,) = run_dirs(tmp_path)
    stub = good.with_name("zoo-DarkRoom-v0_2")
    stub.mkdir()  # what an older zoo left after a failed start
    assert latest_run(tmp_path / "logs", "ppo", ENV) == good
    started = good.with_name("zoo-DarkRoom-v0_3")
    started.mkdir()
    (started / "args.yml").write_text("algo: ppo\n")  # a run in progress, no model yet
    assert latest_run(tmp_path / "logs", "ppo", ENV) == started
    assert latest_run(tmp_path / "logs", "ppo", ENV, finished=True) == good
    assert new_numbered_folder(tmp_path / "logs" / "ppo", "zoo-DarkRoom-v0").name == "zoo-DarkRoom-v0_4"


def test_new_numbered_folder_is_race_free(tmp_path: Path) -> None:
    threads, calls = 8, 5
    barrier = threading.Barrier(threads)
    made: list[Path] = []
    errors: list[BaseException] = []

    def make() -> None:
        barrier.wait()
        try:
            for _ in range(calls):
                made.append(new_numbered_folder(tmp_path / "runs", "run"))
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=make) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors
    assert sorted(int(path.name.split("_")[1]) for path in made) == list(range(1, threads * calls + 1))


def test_new_numbered_folder_is_race_free_across_processes(tmp_path: Path) -> None:
    script = (
        "import sys; from zoo.runner import new_numbered_folder\n"
        "for _ in range(5): print(new_numbered_folder(sys.argv[1], 'run').name)\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / "runs")], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    names = [name for process in processes for name in process.communicate(timeout=120)[0].split()]
    assert all(process.returncode == 0 for process in processes)
    assert sorted(int(name.split("_")[1]) for name in names) == list(range(1, 21))


@pytest.fixture
def held_lock(tmp_path: Path) -> Iterator[Path]:
    """A finished run whose lock this test holds, as a second ``zoo train`` would."""
    main(train_args(tmp_path, 64, *TINY_PPO))
    (run,) = run_dirs(tmp_path)
    with open(run / LOCK_FILE, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield run


def test_resume_of_a_running_run_is_refused(tmp_path: Path, held_lock: Path, capsys) -> None:
    def contents() -> dict[str, bytes]:
        return {path.name: path.read_bytes() for path in held_lock.iterdir() if path.is_file()}

    before = contents()
    assert "rl_model_64_steps.zip" in before
    with pytest.raises(SystemExit) as exit_info:
        main(train_args(tmp_path, 128, *TINY_PPO, "--resume"))
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert f"zoo: error: run folder {held_lock} is in use" in error
    assert contents() == before  # untouched: checkpoints, evaluations, monitor files, command.txt


def test_lock_goes_away_with_the_process_that_held_it(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from zoo.runner import run_lock\n"
         "with run_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(600)\n",
         str(tmp_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(ValueError, match=rf"process {holder.pid}"), run_lock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
    with run_lock(tmp_path):  # killed, not cleaned up: no stale lock
        pass


def test_run_files_respect_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        main(train_args(tmp_path, 64, *TINY_PPO, "--env-kwargs", "task:[1,7]"))
        main(train_args(tmp_path, 64, "--params", "learning_starts:16", "buffer_size:200", "batch_size:16",
                        algo="dqn"))  # fmt: skip
    finally:
        os.umask(previous)
    ppo_run, dqn_run = run_dirs(tmp_path, "ppo")[0], run_dirs(tmp_path, "dqn")[0]
    names = [
        "zoo-DarkRoom-v0.zip", "zoo-DarkRoom-v0/config.yml", "zoo-DarkRoom-v0/args.yml", "command.txt",
        "results.json", "evaluations.npz", "learning_curve.png", LOCK_FILE, "rl_model_64_steps.zip",
        "0.monitor.csv", "best_model.zip", "model/model.safetensors", "model/config.json",
    ]  # fmt: skip
    for name in names:
        assert (ppo_run / name).is_file(), name
    assert (dqn_run / "rl_model_replay_buffer_64_steps.pkl").is_file()
    args = yaml.safe_load((ppo_run / "zoo-DarkRoom-v0" / "args.yml").read_text())
    assert args["env_kwargs"] == {"task": [1, 7]}  # where rl_zoo3's enjoy reads the env's arguments
    files = [path for run in (ppo_run, dqn_run) for path in run.rglob("*") if path.is_file()]
    assert any("tfevents" in path.name for path in files)
    modes = {str(path.relative_to(tmp_path)): oct(path.stat().st_mode & 0o777) for path in files}
    assert modes == dict.fromkeys(modes, oct(0o644))
    assert not [path for path in files if path.name.endswith(".tmp")]  # no temporary file left over


def test_enjoy_and_push_load_the_pickle_free_model_folder(tmp_path: Path, hub_server, capsys) -> None:
    main(train_args(tmp_path, 64, *TINY_PPO))
    (run,) = run_dirs(tmp_path)
    (run / "zoo-DarkRoom-v0.zip").unlink()  # only model/ (safetensors + JSON) is left
    logs = ("--algo", "ppo", "--env", ENV, "--log-folder", str(tmp_path / "logs"))
    main(["enjoy", *logs, "--episodes", "1", "--device", "cpu"])
    assert "Episode returns:" in capsys.readouterr().out
    main(["push", *logs, "--eval-episodes", "1", "--no-video"])
    assert "Pushed to zoo-test/ppo-zoo-DarkRoom-v0" in capsys.readouterr().out


def test_enjoy_falls_back_to_the_zip_without_model_folder(tmp_path: Path, capsys) -> None:
    import shutil

    main(train_args(tmp_path, 64, *TINY_PPO))
    (run,) = run_dirs(tmp_path)
    shutil.rmtree(run / "model")
    main(["enjoy", "--run", str(run), "--algo", "ppo", "--env", ENV, "--episodes", "1", "--device", "cpu"])
    assert "Episode returns:" in capsys.readouterr().out


def test_num_threads_sets_torch_threads_for_the_run(tmp_path: Path) -> None:
    # rl_zoo3's --num-threads: one thread per run is what parallel runs on a small machine need.
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        main(train_args(tmp_path, 32, *TINY_PPO, "--num-threads", "1"))
        assert torch.get_num_threads() == 1
        torch.set_num_threads(2)
        main(train_args(tmp_path / "default", 32, *TINY_PPO))
        assert torch.get_num_threads() == 2  # -1, the default, leaves torch alone
    finally:
        torch.set_num_threads(before)
