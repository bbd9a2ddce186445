"""The ReenGAGE paper's hyperparameters per env id (Levine & Feizi 2023, Appendix Tables 1-4).

``zoo train --algo reengage_ddpg --env zoo/ContinuousSeek-d20-v1`` is the paper's run: each entry
loads through the zoo's hyperparameter loader to the appendix's values, and a few hundred steps
of ``zoo train`` run with them (batch and buffer sizes shrunk with ``--params``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from zoo.cli import main
from zoo.params import check_hyperparams, load_hyperparams

SEEK = {5: "zoo/ContinuousSeek-d5-v1", 10: "zoo/ContinuousSeek-d10-v1", 20: "zoo/ContinuousSeek-d20-v1"}
#: Appendix Table 1, shared by every ContinuousSeek run (DDPG and SAC, with and without ReenGAGE).
TABLE_1 = {
    "policy": "MultiInputPolicy",
    "buffer_size": 1_000_000,
    "learning_starts": 1000,
    "train_freq": 1,
    "gradient_steps": 1,
    "gamma": 0.95,
    "tau": 0.005,
    "policy_kwargs": {"net_arch": [256, 256]},
    "replay_buffer_class": "HerReplayBuffer",
    "replay_buffer_kwargs": {"n_sampled_goal": 4, "goal_selection_strategy": "future"},
}
#: Gaussian action noise of Table 1, as rl_zoo3 spells it (SAC explores by its entropy instead).
DDPG_NOISE = {"noise_type": "normal", "noise_std": 0.03}
#: (batch, learning rate) per d: Table 2 (DDPG) and Table 3 (SAC, ReenGAGE at alpha = 0.2 / d).
BEST = {
    "ddpg": {5: (512, 1e-3), 10: (256, 5e-4), 20: (256, 5e-4)},
    "reengage_ddpg": {5: (512, 1.5e-3), 10: (512, 1e-3), 20: (128, 5e-4)},
    "reengage_td3": {5: (512, 1.5e-3), 10: (512, 1e-3), 20: (128, 5e-4)},  # the paper's DDPG values
    "sac": {5: (8192, 2.5e-3), 10: (1024, 1.5e-3), 20: (4096, 5e-4)},
    "reengage_sac": {5: (2048, 2.5e-3), 10: (512, 2.5e-3), 20: (8192, 2.5e-3)},
}
#: Appendix Table 4 (Multi-ReenGAGE on the multi-goal envs).
TABLE_4 = {
    "policy": "MultiGoalPolicy",
    "n_timesteps": 160_000,
    "buffer_size": 1_000_000,
    "learning_starts": 1000,
    "train_freq": 1,
    "gradient_steps": 1,
    "batch_size": 256,
    "learning_rate": 1e-3,
    "gamma": 0.95,
    "tau": 0.005,
    "gradient_reg": 10.0,
    "noise_type": "normal",
    "policy_kwargs": {"encoder_arch": [400, 400], "features_dim": 20, "net_arch": [400]},
}
MULTI_NOISE = {"zoo/DriveSeek-v1": 0.05, "zoo/NoisySeek-v1": 0.1}
BITFLIP = {
    "policy": "MultiInputPolicy",
    "learning_rate": 1e-3,
    "replay_buffer_class": "HerReplayBuffer",
    "replay_buffer_kwargs": {"n_sampled_goal": 4, "goal_selection_strategy": "future"},
}
REENGAGE_DQN = {"gradient_reg": 0.5, "gradient_temperature": 0.5, "soft_value": "softmax_mean"}


def loaded(algo: str, env_id: str) -> dict[str, Any]:
    """The entry as the zoo's runner reads it (file entry over ``default:``, then checked)."""
    return check_hyperparams(load_hyperparams(algo, env_id), source=f"zoo/hyperparams/{algo}.yml")


def assert_has(hyperparams: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        assert key in hyperparams, key
        if isinstance(value, float):
            assert hyperparams[key] == pytest.approx(value), key
        else:
            assert hyperparams[key] == value, key


@pytest.mark.parametrize("algo", sorted(BEST))
@pytest.mark.parametrize("dim", sorted(SEEK))
def test_continuous_seek_entries_are_the_papers(algo: str, dim: int) -> None:
    hyperparams = loaded(algo, SEEK[dim])
    batch_size, learning_rate = BEST[algo][dim]
    assert_has(hyperparams, {**TABLE_1, "batch_size": batch_size, "learning_rate": learning_rate})
    if "sac" in algo:
        assert "noise_type" not in hyperparams and "noise_std" not in hyperparams
    else:
        assert_has(hyperparams, DDPG_NOISE)
    if algo.startswith("reengage_"):
        assert hyperparams["gradient_reg"] == pytest.approx(0.2)  # alpha = 0.2 / d, the zoo's mean over d
    else:
        assert "gradient_reg" not in hyperparams
    # The budgets: d = 10 to 50k steps, d = 20 beyond 100k (the paper's figures reach 250k).
    assert hyperparams["n_timesteps"] >= {5: 10_000, 10: 50_000, 20: 100_000}[dim]


@pytest.mark.parametrize("algo", sorted(BEST))
def test_continuous_seek_v1_is_the_d10_entry(algo: str) -> None:
    assert loaded(algo, "zoo/ContinuousSeek-v1") == loaded(algo, SEEK[10])


@pytest.mark.parametrize("env_id", sorted(MULTI_NOISE))
def test_multi_goal_entries_are_table_4(env_id: str) -> None:
    hyperparams = loaded("multi_reengage", env_id)
    assert_has(hyperparams, {**TABLE_4, "noise_std": MULTI_NOISE[env_id]})
    assert "replay_buffer_class" not in hyperparams  # MultiReenGAGE learns every goal at once: no HER


@pytest.mark.parametrize("env_id", ["zoo/BitFlip-v0", "zoo/BitFlip-n40-v0"])
@pytest.mark.parametrize("algo", ["dqn", "reengage_dqn"])
def test_bitflip_entries_are_the_papers(algo: str, env_id: str) -> None:
    hyperparams = loaded(algo, env_id)
    assert_has(hyperparams, BITFLIP)
    if algo == "reengage_dqn":
        assert_has(hyperparams, REENGAGE_DQN)
    else:
        assert not set(REENGAGE_DQN) & set(hyperparams)
    assert hyperparams["n_timesteps"] >= 200_000


def test_v0_entries_keep_the_first_release_settings() -> None:
    """The -v0 envs changed behaviour only in -v1; their hyperparameters stay what they were."""
    hyperparams = loaded("reengage_ddpg", "zoo/ContinuousSeek-d5-v0")
    assert hyperparams["gamma"] == 0.98 and hyperparams["policy_kwargs"] == {"net_arch": [256, 256, 256]}


#: Shrunk sizes so that a few hundred steps train (every other setting is the file's).
FAST = ("buffer_size:2000", "batch_size:16", "learning_starts:200")
TRAIN_CASES = [
    ("reengage_ddpg", SEEK[5]),
    ("reengage_ddpg", SEEK[10]),
    ("reengage_ddpg", SEEK[20]),
    ("ddpg", SEEK[10]),
    ("reengage_td3", SEEK[5]),
    ("reengage_sac", SEEK[20]),
    ("sac", SEEK[5]),
    ("multi_reengage", "zoo/DriveSeek-v1"),
    ("multi_reengage", "zoo/NoisySeek-v1"),
    ("reengage_dqn", "zoo/BitFlip-v0"),
    ("dqn", "zoo/BitFlip-n40-v0"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("algo", "env_id"), TRAIN_CASES)
def test_zoo_train_runs_with_the_papers_hyperparameters(tmp_path: Path, algo: str, env_id: str) -> None:
    steps = 300
    main([
        "train", "--algo", algo, "--env", env_id, "-n", str(steps), "--log-folder", str(tmp_path / "logs"),
        "--eval-episodes", "2", "--eval-freq", "150", "--no-progress-bar", "--device", "cpu",
        "--params", *FAST,
    ])  # fmt: skip
    (run,) = sorted((tmp_path / "logs" / algo).glob(f"{env_id.replace('/', '-')}_*"))
    results = json.loads((run / "results.json").read_text())
    assert results["num_timesteps"] >= steps
    if "noise_type" in load_hyperparams(algo, env_id):
        # the paper's Gaussian exploration noise reached the agent (rl_zoo3's noise_type / noise_std)
        from stable_baselines3.common.noise import NormalActionNoise
        from stable_baselines3.common.save_util import load_from_zip_file

        data, _, _ = load_from_zip_file(run / f"{env_id.replace('/', '-')}.zip", device="cpu")
        assert isinstance(data["action_noise"], NormalActionNoise)
        expected = load_hyperparams(algo, env_id)["noise_std"]
        assert float(data["action_noise"]._sigma.flat[0]) == pytest.approx(expected)
