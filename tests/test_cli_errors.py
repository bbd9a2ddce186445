"""Bad input ends with one ``zoo: error:`` line naming the flag, the value and what is allowed.

Nothing is built first: no run folder, no dataset, no traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from zoo.cli import main

ENV = "zoo/DarkRoom-v0"


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run ``zoo argv``; assert it exits non-zero with one ``zoo: error:`` line and return that line."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    assert exit_info.value.code not in (0, None)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = [line for line in captured.err.splitlines() if line.startswith("zoo: error: ")]
    assert len(lines) == 1, captured.err
    return lines[0]


def train(tmp_path: Path, *extra: str, algo: str = "ppo", env: str = ENV) -> list[str]:
    return [
        "train", "--algo", algo, "--env", env, "-n", "64", "--log-folder", str(tmp_path / "logs"),
        "--no-progress-bar", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("-n", "0"), ["-n/--n-timesteps 0", "at least 1"]),
        (("--eval-freq", "-5"), ["--eval-freq -5", "at least 1"]),
        (("--checkpoint-freq", "-1"), ["--checkpoint-freq -1", "at least 1"]),
        (("--eval-episodes", "0"), ["--eval-episodes 0", "at least 1"]),
        (("--num-threads", "0"), ["--num-threads 0", "-1 (torch's default) or at least 1"]),
        (("--params", "batch_size:0"), ["--params batch_size:0", "positive integer"]),
        (("--params", "n_steps:-4"), ["--params n_steps:-4", "positive integer"]),
        (("--params", "n_envs:abc"), ["--params n_envs:abc", "n_envs must be a positive integer", "'abc'"]),
        (("--params", "buffer_size:1.5"), ["--params buffer_size:1.5", "positive integer"]),
        (("--params", "learning_starts:-1"), ["--params learning_starts:-1", "0 or more"]),
        (("--params", "train_freq:[4, fortnight]"), ["--params train_freq", '"episode"']),
        (("--params", "policy_kwargs:5"), ["--params policy_kwargs:5", "must be a mapping"]),
        (("--params", "n_envs:2", "n_envs:4"), ["--params 'n_envs:4'", "given twice"]),
        (("--device", "cpu", "--params", "device:cpu"), ["--params device:cpu", "set by --device"]),
        (("--params", "seed:3"), ["--params seed:3", "set by --seed"]),
        (("--device", "tpu"), ["--device 'tpu'", "auto, cpu, cuda, cuda:N", "mps"]),
        (("--env-kwargs", "bogus:1"), ["--env-kwargs bogus", "DarkRoomEnv", "it takes:", "size", "task"]),
        (("--env-kwargs", "bogus"), ["--env-kwargs 'bogus' is malformed"]),
        (
            ("--params", "policy_kwargs:{bogus_argument: 1}"),
            ["--algo ppo could not be built", "bogus_argument"],
        ),
    ],
)
def test_train_refuses_bad_flags_before_making_a_run_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...], expected: list[str]
) -> None:
    line = refused(capsys, *train(tmp_path, *extra))
    for text in expected:
        assert text in line
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize(
    ("algo", "env", "expected"),
    [
        ("dqn", "zoo/ContinuousSeek-d5-v0", ["--algo dqn needs a Discrete action space", "Box(", "sac"]),
        ("sac", ENV, ["--algo sac needs a Box action space", "Discrete(5)", "dqn"]),
        ("td3", "zoo/BitFlip-v0", ["--algo td3 needs a Box action space", "Discrete(20)"]),
    ],
)
def test_algo_and_action_space_mismatch_says_which_space_is_needed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], algo: str, env: str, expected: list[str]
) -> None:
    line = refused(capsys, *train(tmp_path, algo=algo, env=env))
    for text in expected:
        assert text in line
    assert not (tmp_path / "logs").exists()


def test_cuda_device_that_is_missing_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    count = torch.cuda.device_count()
    line = refused(capsys, *train(tmp_path, "--device", f"cuda:{count}"))
    assert f"--device cuda:{count}" in line
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("--episodes", "0"), "--episodes 0"),
        (("--video-steps", "0"), "--video-steps 0"),
        (("--device", "gpu"), "--device 'gpu'"),
        (("--run", "a", "--repo", "b/c"), "--run a and --repo b/c both given"),
    ],
)
def test_enjoy_refuses_bad_flags(
    capsys: pytest.CaptureFixture[str], extra: tuple[str, ...], expected: str
) -> None:
    assert expected in refused(capsys, "enjoy", "--algo", "ppo", "--env", ENV, *extra)


def test_push_refuses_zero_eval_episodes(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--eval-episodes 0" in refused(
        capsys, "push", "--algo", "ppo", "--env", ENV, "--eval-episodes", "0"
    )


def test_enjoy_or_push_of_a_run_of_another_env_is_refused(tmp_path: Path, capsys) -> None:
    main([*train(tmp_path, "--params", "n_envs:2", "n_steps:16", "batch_size:32"), "--device", "cpu"])
    (run,) = (tmp_path / "logs" / "ppo").iterdir()
    capsys.readouterr()
    for command in ("enjoy", "push"):
        line = refused(capsys, command, "--algo", "ppo", "--env", "zoo/DarkRoomHard-v0", "--run", str(run))
        assert f"--run {run} is a run on --env {ENV}, not on --env zoo/DarkRoomHard-v0" in line
    line = refused(capsys, "enjoy", "--algo", "a2c", "--env", ENV, "--run", str(run))
    assert "trained with --algo ppo, not --algo a2c" in line


def test_a_value_error_from_an_agent_becomes_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import zoo.agents.ad

    def refuse(*args: object, **kwargs: object) -> None:
        raise ValueError("source 'ucb' is a bandit algorithm;\nit cannot learn zoo/DarkRoom-v0")

    monkeypatch.setattr(zoo.agents.ad, "collect_histories", refuse)
    line = refused(capsys, "ad", "collect", "--env", ENV, "--source", "ucb", "--output", str(tmp_path / "d"))
    assert line == "zoo: error: source 'ucb' is a bandit algorithm; it cannot learn zoo/DarkRoom-v0"


def test_ad_collect_with_an_argument_ppo_does_not_take_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = refused(capsys, "ad", "collect", "--env", ENV, "--source", "ppo", "--source-params", "n_step:20",
                   "--output", str(tmp_path / "histories"))  # fmt: skip
    assert "['n_step'] are not arguments of PPO; allowed: [" in line and "'n_steps'" in line
    assert not (tmp_path / "histories").exists()


def test_ad_collect_with_a_bandit_source_on_a_grid_world_is_refused(tmp_path: Path, capsys) -> None:
    line = refused(capsys, "ad", "collect", "--env", ENV, "--source", "ucb", "--episodes", "2",
                   "--output", str(tmp_path / "histories"))  # fmt: skip
    assert "ucb" in line
    assert not (tmp_path / "histories").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("ad", "train", "--dataset", "x", "--steps", "0"), "--steps 0"),
        (("ad", "train", "--dataset", "x", "--dropout", "1.0"), "--dropout 1.0"),
        (("ad", "eval", "--model", "x", "--env", ENV, "--temperature", "0"), "--temperature 0"),
        (("ad", "eval", "--model", "x", "--env", ENV, "--device", "cuda:x"), "--device 'cuda:x'"),
        (("pbt", "--env", ENV, "--population-size", "0"), "--population-size 0"),
        (("pull", "--repo", "a/b", "--device", "tpu"), "--device 'tpu'"),
    ],
)
def test_other_commands_refuse_bad_flags(capsys, argv: tuple[str, ...], expected: str) -> None:
    assert expected in refused(capsys, *argv)


def test_params_read_exponent_numbers_without_a_dot_as_numbers() -> None:
    """YAML 1.1 reads ``1e-3`` as a string; the agents now refuse strings, so the CLI converts."""
    from zoo.params import parse_params

    assert parse_params(["gradient_reg:1e-3", "x:[1e-2, 3]", "name:abc"]) == {
        "gradient_reg": 0.001,
        "x": [0.01, 3],
        "name": "abc",
    }


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("--params", "vec_env:native"), ["--params vec_env:native", "set by --vec-env"]),
        (("--params", "eval_freq:10"), ["--params eval_freq:10", "set by --eval-freq"]),
    ],
)
def test_runner_settings_are_flags_not_hyperparameters(tmp_path: Path, capsys, extra, expected) -> None:
    line = refused(capsys, *train(tmp_path, *extra))
    assert all(part in line for part in expected), line
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("--load-best", "--load-last-checkpoint"), "--load-best and --load-last-checkpoint both given"),
        (("--load-checkpoint", "0"), "--load-checkpoint 0 is not allowed"),
        (("--repo", "org/x", "--load-best"), "--load-best picks a file of a run folder"),
        (("--trust-remote-code",), "--trust-remote-code is for --repo"),
        (("--repo", "no-slash"), "--repo 'no-slash' must look like 'org/name'"),
    ],
)
def test_enjoy_loading_flags(tmp_path: Path, capsys, extra, expected) -> None:
    line = refused(capsys, "enjoy", "--algo", "ppo", "--env", ENV, "--log-folder", str(tmp_path), *extra)
    assert expected in line and "repo_id=" not in line, line


def test_error_lines_name_flags_for_python_arguments() -> None:
    from zoo.cli import flag_message
    from zoo.config import EnjoyConfig, PullConfig, TrainConfig

    enjoy, pull = EnjoyConfig(algo="ppo", env=ENV), PullConfig(repo="org/x")
    hub_text = (
        "filename='ppo-x.zip' of repo_id='org/x' at revision='main' is a Stable-Baselines3 .zip; "
        "Pass trust_remote_code=True only if you trust the repo's author"
    )
    assert flag_message(hub_text, enjoy) == (
        "filename='ppo-x.zip' of --repo 'org/x' at revision='main' is a Stable-Baselines3 .zip; "
        "Pass --trust-remote-code only if you trust the repo's author"
    )
    assert "--revision 'main'" in flag_message(hub_text, pull)  # pull has --revision, enjoy does not
    assert (
        flag_message("env_id='A-v1', but it was trained on 'B-v1'", enjoy)
        == "--env 'A-v1', but it was trained on 'B-v1'"
    )
    assert flag_message("trust_remote_code=False refuses it", pull) == "--no-trust-remote-code refuses it"
    # Hyperparameter keys named as file keys are not flags, even where a flag has the same name.
    kept = "zoo/hyperparams/ppo.yml setting n_timesteps: 0 is not allowed: n_timesteps must be positive"
    assert flag_message(kept, TrainConfig(algo="ppo", env=ENV)) == kept


def test_enjoy_repo_passes_trust_remote_code(tmp_path: Path, hub_server, capsys) -> None:
    from huggingface_hub import HfApi
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", ENV, n_steps=16, batch_size=16, policy_kwargs={"net_arch": [8]}, device="cpu")
    model.save(tmp_path / "ppo-zoo-DarkRoom-v0.zip")
    repo_id = "zoo-test/ppo-zoo-DarkRoom-v0"
    api = HfApi(endpoint=hub_server.url)
    api.create_repo(repo_id)
    api.upload_file(
        path_or_fileobj=tmp_path / "ppo-zoo-DarkRoom-v0.zip",
        path_in_repo="ppo-zoo-DarkRoom-v0.zip",
        repo_id=repo_id,
    )
    argv = ("enjoy", "--repo", repo_id, "--algo", "ppo", "--env", ENV, "--episodes", "1", "--device", "cpu")
    line = refused(capsys, *argv)
    assert "Pass --trust-remote-code only if" in line and "--repo 'zoo-test/ppo-zoo-DarkRoom-v0'" in line
    assert "trust_remote_code" not in line and "repo_id=" not in line
    with pytest.warns(UserWarning, match="unpickling"):
        main([*argv, "--trust-remote-code"])
    assert "Episode returns:" in capsys.readouterr().out


def test_rl_zoo3_noise_keys_become_sb3_action_noise(tmp_path: Path) -> None:
    """``noise_type`` / ``noise_std`` (rl_zoo3's keys, the ReenGAGE paper's Gaussian noise) reach the agent."""
    import numpy as np
    from stable_baselines3.common.noise import NormalActionNoise

    from zoo.config import TrainConfig
    from zoo.runner import _build_model, make_training_env, plan_training

    config = TrainConfig(
        algo="ddpg", env="Pendulum-v1", device="cpu", params=["noise_type:normal", "noise_std:0.03"]
    )
    plan = plan_training(config)
    assert plan.action_noise == ("normal", 0.03) and "noise_type" not in plan.agent_kwargs
    env = make_training_env("Pendulum-v1", 1, 0, "dummy", {})
    model = _build_model(config, plan, env)
    assert isinstance(model.action_noise, NormalActionNoise)
    np.testing.assert_allclose(model.action_noise._sigma, [0.03])


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (["noise_type:pink", "noise_std:0.1"], "noise_type='pink' is not allowed"),
        (["noise_type:normal", "noise_std:-1"], "noise_std=-1 must be a number >= 0"),
        (["noise_std:0.1"], "noise_std=0.1 needs a noise_type"),
    ],
)
def test_bad_noise_keys_are_refused(
    capsys: pytest.CaptureFixture[str], params: list[str], expected: str
) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--algo", "ddpg", "--env", "Pendulum-v1", "--device", "cpu", "--params", *params])
    assert expected in capsys.readouterr().err
