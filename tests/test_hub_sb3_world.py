"""A zoo push, read by the SB3 ecosystem's own tools: huggingface_sb3's ``load_from_hub`` and
rl_zoo3's ``python -m rl_zoo3.load_from_hub`` / ``rl_zoo3.enjoy``, run against the local Hub
(``tests/hub_server.py``) through ``HF_ENDPOINT``, as a user would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import HUB_ORG as ORG
from hub_server import point_huggingface_hub_at
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

import zoo.envs  # noqa: F401  (registers zoo/ ids)
from zoo import hub

huggingface_sb3 = pytest.importorskip("huggingface_sb3")


def _tiny() -> dict:
    return {"net_arch": [16]}


@pytest.fixture
def trusting(hub_server, monkeypatch):
    """huggingface_sb3 as a user in this process would run it, on the local Hub.

    huggingface_hub reads ``HF_ENDPOINT`` and the cache folder when it is imported (before the
    ``hub_server`` fixture sets them), so they are set on its constants too. huggingface_sb3
    (the sb3-team fork rl_zoo3 depends on) refuses to fetch a pickle unless the user opts in
    with ``TRUST_REMOTE_CODE``.
    """
    from huggingface_hub import constants

    point_huggingface_hub_at(hub_server.url, monkeypatch)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", hub.hub_cache_dir())
    monkeypatch.setenv("TRUST_REMOTE_CODE", "True")


def _kickstarted():
    from zoo.agents import KickstartedPPO

    teacher = PPO("MlpPolicy", "zoo/DarkRoom-v0", policy_kwargs=_tiny(), device="cpu", seed=9)
    return KickstartedPPO(
        "MlpPolicy", "zoo/DarkRoom-v0", teacher=teacher, policy_kwargs=_tiny(), device="cpu"
    )


@pytest.mark.parametrize("agent", ["PPO", "KickstartedPPO"])
def test_huggingface_sb3_load_from_hub_opens_a_zoo_push(hub_server, trusting, agent):
    if agent == "PPO":
        model = PPO("MlpPolicy", "zoo/DarkRoom-v0", policy_kwargs=_tiny(), device="cpu", seed=0)
        cls: type = PPO
    else:
        model = _kickstarted()
        cls = type(model)
    repo_id = hub.make_repo_id(agent, "zoo/DarkRoom-v0")
    pushed = hub.push_to_hub(model, repo_id, "zoo/DarkRoom-v0", n_eval_episodes=1, record_replay=False)
    filename = f"{repo_id.split('/')[1]}.zip"
    assert filename == hub.sb3_zip_name(repo_id) and filename in pushed.uploaded

    path = huggingface_sb3.load_from_hub(repo_id, filename)
    assert Path(path).name == filename and Path(hub.hub_cache_dir()) in Path(path).parents
    loaded = cls.load(path, device="cpu")
    observations = np.arange(81)
    expected, _ = model.predict(observations, deterministic=True)
    np.testing.assert_array_equal(loaded.predict(observations, deterministic=True)[0], expected)

    # the card says what huggingface_sb3's package_to_hub says
    from huggingface_hub import ModelCard

    card = ModelCard.load(huggingface_sb3.load_from_hub(repo_id, "README.md"))
    assert card.data.library_name == "stable-baselines3" and "distill-zoo" in card.data.tags
    results = json.loads(Path(huggingface_sb3.load_from_hub(repo_id, "results.json")).read_text())
    assert results["is_deterministic"] is True and results["env_id"] == "zoo/DarkRoom-v0"


def test_rl_zoo3_load_from_hub_and_enjoy_a_zoo_push(hub_server, tmp_path):
    """``python -m rl_zoo3.load_from_hub`` lays a zoo push out as an rl_zoo3 run, which
    ``rl_zoo3.enjoy`` plays with its VecNormalize statistics.

    The agent uses VecNormalize: rl_zoo3 2.9.2 catches ``requests``' HTTPError when
    ``vec_normalize.pkl`` is missing, but huggingface_hub >= 1.0 raises its own, so with it
    rl_zoo3 cannot download any repo without that file (from the zoo or anyone else).
    """
    pytest.importorskip("rl_zoo3")
    venv = VecNormalize(make_vec_env("CartPole-v1", seed=0))
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, policy_kwargs=_tiny(), device="cpu")
    model.learn(64)
    hub.push_to_hub(model, f"{ORG}/ppo-CartPole-v1", "CartPole-v1", n_eval_episodes=2, record_replay=False)

    environment = {**os.environ, "TRUST_REMOTE_CODE": "True", "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "rl_zoo3.load_from_hub",
            "--algo",
            "ppo",
            "--env",
            "CartPole-v1",
            "-orga",
            ORG,
            "-f",
            "logs/",
        ],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    run_dir = tmp_path / "logs" / "ppo" / "CartPole-v1_1"
    assert {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()} == {
        "CartPole-v1.zip",
        "CartPole-v1/config.yml",
        "CartPole-v1/args.yml",
        "CartPole-v1/env_kwargs.yml",
        "CartPole-v1/vecnormalize.pkl",
        "evaluations.npz",
    }
    loaded = PPO.load(run_dir / "CartPole-v1.zip", device="cpu")
    observations = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    np.testing.assert_array_equal(
        loaded.predict(observations, deterministic=True)[0],
        model.predict(observations, deterministic=True)[0],
    )
    with np.load(run_dir / "evaluations.npz") as evaluations:
        assert evaluations["results"].shape == (1, 2) and evaluations["timesteps"].tolist() == [64]

    enjoy = subprocess.run(
        [
            sys.executable,
            "-m",
            "rl_zoo3.enjoy",
            "--algo",
            "ppo",
            "--env",
            "CartPole-v1",
            "-f",
            "logs/",
            "-n",
            "40",
            "--no-render",
            "--device",
            "cpu",
        ],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert enjoy.returncode == 0, enjoy.stderr[-3000:]
    assert "Mean reward:" in enjoy.stdout


def test_zoo_loader_still_reads_only_safetensors_and_json_of_the_same_repo(hub_server):
    model = PPO("MlpPolicy", "zoo/DarkRoom-v0", policy_kwargs=_tiny(), device="cpu", seed=0)
    repo_id = hub.make_repo_id("PPO", "zoo/DarkRoom-v0")
    hub.push_to_hub(model, repo_id, "zoo/DarkRoom-v0", n_eval_episodes=1, record_replay=False)
    hub_server.requests.clear()
    loaded = hub.load_from_hub(repo_id, device="cpu")  # trust_remote_code=False: no unpickling
    downloaded = [path for method, path in hub_server.requests if method == "GET" and "/resolve/" in path]
    assert not [path for path in downloaded if path.endswith((".zip", ".pkl"))]
    np.testing.assert_array_equal(
        loaded.predict(np.arange(81), deterministic=True)[0],
        model.predict(np.arange(81), deterministic=True)[0],
    )
