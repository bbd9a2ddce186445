"""zoo.hub: pickle-free save/load, push to / load from a Hub (a local HF-compatible server), cards,
videos, datasets, teachers. The real huggingface_hub client talks to ``tests/hub_server.py``."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from conftest import HUB_ORG as ORG
from hub_server import point_huggingface_hub_at
from huggingface_hub import HfApi, ModelCard, constants
from sb3_contrib import QRDQN, TQC, TRPO, MaskablePPO, RecurrentPPO
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

import zoo.envs  # noqa: F401  (registers zoo/ ids)
from zoo import hub
from zoo.hub.card import generate_model_card
from zoo.hub.serialization import resolve_class, space_from_json, space_to_json


@pytest.fixture
def hub_server(hub_server, monkeypatch):
    """conftest's local Hub, also named in huggingface_hub's import-time constants.

    A user points huggingface_hub at a mirror by setting ``HF_ENDPOINT`` before Python starts;
    the fixture sets it later, after the import. huggingface_hub before 1.4 builds the
    ``CommitInfo`` of a commit against that import-time endpoint and cannot parse a commit URL
    of another host, so the lowest-versions CI run needs the constants to agree.
    """
    point_huggingface_hub_at(hub_server.url, monkeypatch)
    return hub_server


def _cache_root(tmp_path: Path) -> Path:
    return tmp_path / "hf-home" / "hub"


def _observations(space: gym.Space, n: int = 8) -> np.ndarray:
    space.seed(123)
    return np.stack([space.sample() for _ in range(n)])


def _same_predictions(a, b, observations, **kwargs) -> bool:
    action_a, _ = a.predict(observations, deterministic=True, **kwargs)
    action_b, _ = b.predict(observations, deterministic=True, **kwargs)
    return np.allclose(action_a, action_b)


def _same_weights(a, b) -> bool:
    state_a, state_b = a.policy.state_dict(), b.policy.state_dict()
    return state_a.keys() == state_b.keys() and all(th.equal(state_a[k], state_b[k].cpu()) for k in state_a)


def tiny() -> dict:
    """Fresh tiny policy kwargs (SB3 writes into the dict it is given, e.g. ``use_sde``)."""
    return {"net_arch": [16]}


TINY = tiny()  # only for the parameter lists below, which are deep-copied before use
OFF_POLICY = {"buffer_size": 500, "learning_starts": 0}

SB3_AGENTS = [
    pytest.param(PPO, "MlpPolicy", "CartPole-v1", {"policy_kwargs": TINY}, id="PPO"),
    pytest.param(A2C, "MlpPolicy", "CartPole-v1", {"policy_kwargs": TINY}, id="A2C"),
    pytest.param(DQN, "MlpPolicy", "CartPole-v1", {"policy_kwargs": TINY, **OFF_POLICY}, id="DQN"),
    pytest.param(SAC, "MlpPolicy", "Pendulum-v1", {"policy_kwargs": TINY, **OFF_POLICY}, id="SAC"),
    pytest.param(TD3, "MlpPolicy", "Pendulum-v1", {"policy_kwargs": TINY, **OFF_POLICY}, id="TD3"),
    pytest.param(DDPG, "MlpPolicy", "Pendulum-v1", {"policy_kwargs": TINY, **OFF_POLICY}, id="DDPG"),
    pytest.param(
        RecurrentPPO,
        "MlpLstmPolicy",
        "CartPole-v1",
        {"policy_kwargs": {"net_arch": [16], "lstm_hidden_size": 8}},
        id="RecurrentPPO",
    ),
    pytest.param(MaskablePPO, "MlpPolicy", "CartPole-v1", {"policy_kwargs": TINY}, id="MaskablePPO"),
    pytest.param(QRDQN, "MlpPolicy", "CartPole-v1", {"policy_kwargs": TINY, **OFF_POLICY}, id="QRDQN"),
    pytest.param(
        TQC,
        "MlpPolicy",
        "Pendulum-v1",
        {"policy_kwargs": {"net_arch": [16], "n_critics": 2}, **OFF_POLICY},
        id="TQC",
    ),
    pytest.param(TRPO, "MlpPolicy", "CartPole-v1", {"policy_kwargs": TINY}, id="TRPO"),
]


# ---------------------------------------------------------------------------------------------
# Local serialization
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "policy", "env_id", "kwargs"), SB3_AGENTS)
def test_save_load_round_trip(tmp_path, cls, policy, env_id, kwargs):
    kwargs = copy.deepcopy(kwargs)
    model = cls(policy, env_id, device="cpu", seed=1, **kwargs)
    hub.save_agent(model, tmp_path / "agent", env_id=env_id)
    assert sorted(p.name for p in (tmp_path / "agent").iterdir()) == ["config.json", "model.safetensors"]
    loaded = hub.load_agent(tmp_path / "agent", device="cpu")
    assert type(loaded) is cls
    assert _same_weights(model, loaded)
    assert _same_predictions(model, loaded, _observations(model.observation_space))
    assert loaded.gamma == model.gamma and loaded.learning_rate == model.learning_rate
    _assert_nothing_saved_is_dropped(tmp_path / "agent")


def _assert_nothing_saved_is_dropped(folder):
    """Every hyper-parameter save_agent writes is on the trust boundary's allow-list (or rebuilt)."""
    from zoo.hub import trust

    saved = json.loads((folder / "config.json").read_text())["hyperparameters"]
    kept = trust.agent_hyperparameters(saved, path=folder / "config.json")
    dropped = set(saved) - set(kept) - trust.FORBIDDEN_HYPERPARAMETERS - trust.REBUILT_ON_LOAD
    assert not dropped, f"saved but not restored: {sorted(dropped)}"


def test_loaded_dqn_keeps_exploration_and_trains(tmp_path):
    model = DQN("MlpPolicy", "CartPole-v1", policy_kwargs=tiny(), exploration_final_eps=0.2, **OFF_POLICY)
    hub.save_agent(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["hyperparameters"]["exploration_schedule"]["__schedule__"] == "linear"
    assert config["hyperparameters"]["train_freq"] == {"__tuple__": [4, "step"]}
    loaded = hub.load_agent(tmp_path, device="cpu", env=make_vec_env("CartPole-v1"))
    assert loaded.exploration_final_eps == 0.2
    loaded.learn(64)  # a reloaded agent can continue training (fresh optimizer state)
    assert loaded.num_timesteps == 64


def test_policy_kwargs_classes_go_through_the_allow_list(tmp_path):
    model = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8], "activation_fn": th.nn.ReLU})
    hub.save_agent(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["policy_kwargs"]["activation_fn"] == {
        "__class__": {"module": "torch.nn.modules.activation", "name": "ReLU"}
    }
    assert hub.load_agent(tmp_path, device="cpu").policy_kwargs["activation_fn"] is th.nn.ReLU

    for forbidden in ({"module": "os", "name": "system"}, {"module": "builtins", "name": "eval"}):
        with pytest.raises(ValueError, match="not allowed"):
            resolve_class(forbidden)
    with pytest.raises(ValueError, match="not an allowed class"):
        resolve_class({"module": "torch.nn", "name": "init"})  # a module attribute that is not a class
    config["policy_kwargs"]["activation_fn"] = {"__class__": {"module": "subprocess", "name": "Popen"}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="subprocess"):
        hub.load_agent(tmp_path, device="cpu")


def test_unknown_algorithm_is_refused(tmp_path):
    hub.save_agent(PPO("MlpPolicy", "CartPole-v1", policy_kwargs=tiny()), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["algorithm"] = "EvilAlgo"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="EvilAlgo"):
        hub.load_agent(tmp_path)


def test_config_cannot_replace_methods_or_add_attributes(tmp_path):
    hub.save_agent(PPO("MlpPolicy", "CartPole-v1", policy_kwargs=tiny()), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["hyperparameters"]["made_up"] = 1
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert not hasattr(hub.load_agent(tmp_path, device="cpu"), "made_up")
    # Names outside the hyper-parameter allow-list (here a method's) are never restored.
    config["hyperparameters"]["predict"] = "boom"
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = hub.load_agent(tmp_path, device="cpu")
    assert "predict" not in vars(loaded) and callable(loaded.predict)
    loaded.predict(np.zeros(4, dtype=np.float32))


@pytest.mark.gpu
def test_load_on_cuda_predicts_like_cpu(tmp_path):
    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs=tiny(), device="cpu", **OFF_POLICY)
    hub.save_agent(model, tmp_path)
    loaded = hub.load_agent(tmp_path, device="cuda")
    assert loaded.device.type == "cuda"
    observations = _observations(model.observation_space)
    np.testing.assert_allclose(
        model.predict(observations, deterministic=True)[0],
        loaded.predict(observations, deterministic=True)[0],
        rtol=1e-5,
        atol=1e-5,
    )


def test_unencodable_policy_kwargs_fail_at_save(tmp_path):
    class LocalActivation(th.nn.ReLU):
        pass

    model = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8], "activation_fn": LocalActivation})
    with pytest.raises(ValueError, match="activation_fn"):
        hub.save_agent(model, tmp_path)


@pytest.mark.parametrize(
    "space",
    [
        gym.spaces.Box(-np.inf, np.inf, (3, 2), np.float32),
        gym.spaces.Box(np.array([0, -1]), np.array([1, 5]), dtype=np.int64),
        gym.spaces.Discrete(7, start=2),
        gym.spaces.MultiDiscrete([3, 4, 5]),
        gym.spaces.MultiBinary([2, 3]),
        gym.spaces.Dict(
            {"observation": gym.spaces.Box(-1, 1, (4,)), "desired_goal": gym.spaces.Box(0, 1, (200, 3))}
        ),
    ],
)
def test_space_json_round_trip(space):
    text = json.dumps(space_to_json(space), allow_nan=False)  # strict JSON: no Infinity literal
    assert space_from_json(json.loads(text)) == space


def test_vec_normalize_statistics_round_trip(tmp_path):
    venv = VecNormalize(make_vec_env("Pendulum-v1", n_envs=2, seed=0))
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=32, n_epochs=1, policy_kwargs=tiny(), device="cpu")
    model.learn(64)
    hub.save_agent(model, tmp_path)
    stats = json.loads((tmp_path / "vec_normalize.json").read_text())
    assert stats["norm_obs"] is True
    loaded = hub.load_agent(tmp_path, device="cpu", env=make_vec_env("Pendulum-v1", n_envs=2))
    restored = loaded.get_env()
    assert isinstance(restored, VecNormalize) and not restored.training
    np.testing.assert_allclose(restored.obs_rms.mean, venv.obs_rms.mean)
    np.testing.assert_allclose(restored.obs_rms.var, venv.obs_rms.var)
    assert restored.obs_rms.count == venv.obs_rms.count


# ---------------------------------------------------------------------------------------------
# Model card (pure)
# ---------------------------------------------------------------------------------------------


def test_generate_model_card_is_pure_and_parses():
    text, metadata = generate_model_card(
        "PPO",
        "zoo/DarkRoom-v0",
        1.5,
        0.25,
        repo_id="org/ppo-zoo-DarkRoom-v0",
        n_eval_episodes=7,
        has_video=True,
    )
    again, _ = generate_model_card(
        "PPO",
        "zoo/DarkRoom-v0",
        1.5,
        0.25,
        repo_id="org/ppo-zoo-DarkRoom-v0",
        n_eval_episodes=7,
        has_video=True,
    )
    assert text == again
    card = ModelCard(text)
    assert card.data.library_name == "stable-baselines3"  # as huggingface_sb3's package_to_hub
    assert {"zoo/DarkRoom-v0", "stable-baselines3", "distill-zoo", "PPO"} <= set(card.data.tags)
    assert metadata["library_name"] == "stable-baselines3"
    assert card.data.to_dict() == metadata  # the metadata returned is the card's front matter
    result = card.data.eval_results[0]
    assert result.metric_type == "mean_reward"
    assert result.metric_value == "1.50 +/- 0.25"
    assert result.dataset_type == "zoo/DarkRoom-v0"
    assert result.task_type == "reinforcement-learning"
    assert metadata["model-index"][0]["results"][0]["metrics"][0]["value"] == "1.50 +/- 0.25"
    assert 'load_from_hub("org/ppo-zoo-DarkRoom-v0")' in text
    assert "replay.mp4" in text
    assert "huggingface_sb3" not in text  # no SB3 .zip named: no snippet for it
    with_zip, _ = generate_model_card(
        "PPO",
        "zoo/DarkRoom-v0",
        1.5,
        0.25,
        repo_id="org/ppo-zoo-DarkRoom-v0",
        sb3_zip="ppo-zoo-DarkRoom-v0.zip",
    )
    assert 'load_from_hub("org/ppo-zoo-DarkRoom-v0", "ppo-zoo-DarkRoom-v0.zip")' in with_zip
    assert "rl_zoo3.load_from_hub --algo ppo --env zoo/DarkRoom-v0 -orga org" in with_zip
    zoo_agent, _ = generate_model_card("KickstartedPPO", "zoo/DarkRoom-v0", 0.0, 0.0, sb3_zip="x.zip")
    assert "from zoo.agents import KickstartedPPO" in zoo_agent and "rl_zoo3.load_from_hub" not in zoo_agent
    with pytest.raises(ValueError, match="n_eval_episodes"):
        generate_model_card("PPO", "CartPole-v1", 0.0, 0.0, n_eval_episodes=0)


# ---------------------------------------------------------------------------------------------
# Push / pull
# ---------------------------------------------------------------------------------------------


def test_make_repo_id(monkeypatch):
    monkeypatch.setenv("ZOO_HUB_ORG", "someone")
    assert hub.make_repo_id("PPO", "zoo/DarkRoom-v0") == "someone/ppo-zoo-DarkRoom-v0"
    assert hub.make_repo_id("dqn", "CartPole-v1", org="other") == "other/dqn-CartPole-v1"
    monkeypatch.delenv("ZOO_HUB_ORG")
    with pytest.raises(ValueError, match="ZOO_HUB_ORG"):
        hub.make_repo_id("PPO", "CartPole-v1")


def test_push_uploads_everything_in_one_commit_and_loads_back(hub_server, tmp_path):
    import imageio

    model = PPO("MlpPolicy", "zoo/DarkRoom-v0", policy_kwargs=tiny(), device="cpu", seed=0)
    commit = hub.push_to_hub(model, None, "zoo/DarkRoom-v0", n_eval_episodes=3, video_length=12)
    repo_id = f"{ORG}/ppo-zoo-DarkRoom-v0"
    repo = hub_server.get_repo("model", repo_id)
    assert repo is not None and len(repo.commits) == 2  # the repo's initial commit + one push
    files = set(repo.files(commit.oid))
    assert files == {
        ".gitattributes",
        "README.md",
        "config.json",
        "model.safetensors",
        "results.json",
        "replay.mp4",
        "ppo-zoo-DarkRoom-v0.zip",  # what huggingface_sb3 and rl_zoo3 download
        "config.yml",
        "args.yml",
        "env_kwargs.yml",
        "train_eval_metrics.zip",
    }
    assert set(commit.uploaded) == files - {".gitattributes"} and commit.removed == ()

    results = json.loads(Path(hub.download_file(repo_id, "results.json")).read_text())
    # huggingface_sb3's results.json fields
    assert {
        "mean_reward",
        "std_reward",
        "is_deterministic",
        "n_eval_episodes",
        "eval_datetime",
        "env_id",
    } <= set(results)
    assert results["n_eval_episodes"] == 3 and results["is_deterministic"] is True
    assert results["env_id"] == "zoo/DarkRoom-v0" and len(results["episode_lengths"]) == 3
    assert results["mean_reward"] == pytest.approx(np.mean(results["episode_returns"]))
    assert results["std_reward"] == pytest.approx(np.std(results["episode_returns"]))
    card = ModelCard(hub.download_file(repo_id, "README.md").read_text())
    metric = card.data.eval_results[0]
    assert metric.metric_value == f"{results['mean_reward']:.2f} +/- {results['std_reward']:.2f}"
    assert metric.dataset_name == "zoo/DarkRoom-v0"
    config = json.loads(Path(hub.download_file(repo_id, "config.json")).read_text())
    assert config["env_id"] == "zoo/DarkRoom-v0" and config["algorithm"] == "PPO"
    assert {"stable-baselines3", "torch", "gymnasium"} <= set(config["versions"])

    reader = imageio.get_reader(hub.download_file(repo_id, "replay.mp4"), "ffmpeg")
    frame = reader.get_data(0)
    assert frame.ndim == 3 and min(frame.shape[:2]) >= 64 and frame.shape[0] % 2 == 0
    assert reader.count_frames() == 13  # first frame + one per step
    reader.close()

    loaded = hub.load_from_hub(repo_id, device="cpu")
    assert type(loaded) is PPO and _same_weights(model, loaded)
    assert _same_predictions(model, loaded, np.arange(81))


@pytest.mark.parametrize(("cls", "policy", "env_id", "kwargs"), SB3_AGENTS)
def test_push_pull_round_trip_every_algorithm(hub_server, cls, policy, env_id, kwargs):
    kwargs = copy.deepcopy(kwargs)
    model = cls(policy, env_id, device="cpu", seed=2, **kwargs)
    repo_id = hub.make_repo_id(cls.__name__, env_id)
    hub.push_to_hub(model, repo_id, env_id, n_eval_episodes=1, record_replay=False)
    loaded = hub.load_from_hub(repo_id, device="cpu", algo=cls.__name__, env_id=env_id)
    assert type(loaded) is cls
    observations = _observations(model.observation_space)
    if cls is MaskablePPO:
        masks = np.ones((len(observations), 2), dtype=bool)
        masks[:, 0] = False
        assert _same_predictions(model, loaded, observations, action_masks=masks)
        assert (loaded.predict(observations, action_masks=masks, deterministic=True)[0] == 1).all()
    else:
        assert _same_predictions(model, loaded, observations)
    assert _same_weights(model, loaded)


def test_second_push_replaces_files_and_revisions_stay_loadable(hub_server):
    repo_id = hub.make_repo_id("PPO", "Pendulum-v1")
    first = PPO(
        "MlpPolicy", VecNormalize(make_vec_env("Pendulum-v1")), policy_kwargs=tiny(), device="cpu", seed=0
    )
    first_commit = hub.push_to_hub(first, repo_id, "Pendulum-v1", n_eval_episodes=1, record_replay=False)
    second = PPO("MlpPolicy", "Pendulum-v1", policy_kwargs=tiny(), device="cpu", seed=1)
    second_commit = hub.push_to_hub(second, repo_id, "Pendulum-v1", n_eval_episodes=1, record_replay=False)
    repo = hub_server.get_repo("model", repo_id)
    assert "vec_normalize.json" in repo.files(first_commit.oid)
    assert "vec_normalize.json" not in repo.files(second_commit.oid)  # stale file deleted in the same commit
    assert set(second_commit.removed) == {"vec_normalize.json", "vec_normalize.pkl"}

    observations = _observations(first.observation_space)
    assert _same_weights(second, hub.load_from_hub(repo_id, device="cpu"))
    old = hub.load_from_hub(repo_id, revision=first_commit.oid, device="cpu")
    assert _same_weights(first, old) and _same_predictions(first, old, observations)


def test_missing_repo_revision_and_file_name_what_was_asked(hub_server):
    with pytest.raises(hub.HubNotFoundError, match=f"'{ORG}/nope'.*'main'"):
        hub.load_from_hub(f"{ORG}/nope")
    repo_id = hub.make_repo_id("PPO", "CartPole-v1")
    hub.push_to_hub(
        PPO("MlpPolicy", "CartPole-v1", policy_kwargs=tiny()),
        repo_id,
        "CartPole-v1",
        n_eval_episodes=1,
        record_replay=False,
    )
    bad_revision = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(hub.HubNotFoundError, match=f"{repo_id}.*{bad_revision}.*revision not found"):
        hub.load_from_hub(repo_id, revision=bad_revision)
    with pytest.raises(
        hub.HubNotFoundError, match=f"filename='missing.bin' of repo_id='{repo_id}' at revision='main'"
    ):
        hub.download_file(repo_id, "missing.bin")
    HfApi(endpoint=hub_server.url).create_repo(f"{ORG}/empty", exist_ok=True)
    with pytest.raises(hub.HubNotFoundError, match=f"filename='config.json' of repo_id='{ORG}/empty'"):
        hub.load_from_hub(f"{ORG}/empty")


def test_config_naming_another_algo_or_env_is_refused(hub_server):
    repo_id = hub.make_repo_id("PPO", "CartPole-v1")
    hub.push_to_hub(
        PPO("MlpPolicy", "CartPole-v1", policy_kwargs=tiny()),
        repo_id,
        "CartPole-v1",
        n_eval_episodes=1,
        record_replay=False,
    )
    with pytest.raises(ValueError, match=r"algo='DQN'.*PPO"):
        hub.load_from_hub(repo_id, algo="DQN")
    with pytest.raises(ValueError, match=r"env_id='Acrobot-v1'.*CartPole-v1"):
        hub.load_from_hub(repo_id, env_id="Acrobot-v1")
    assert isinstance(hub.load_from_hub(repo_id, algo="ppo", env_id="CartPole-v1"), PPO)


def test_pickled_zip_needs_trust_remote_code(hub_server, tmp_path):
    model = PPO("MlpPolicy", "CartPole-v1", policy_kwargs=tiny(), seed=0)
    model.save(tmp_path / "ppo-CartPole-v1.zip")
    repo_id = f"{ORG}/ppo-CartPole-v1"
    api = HfApi(endpoint=hub_server.url)
    api.create_repo(repo_id)
    api.upload_file(
        path_or_fileobj=tmp_path / "ppo-CartPole-v1.zip", path_in_repo="ppo-CartPole-v1.zip", repo_id=repo_id
    )
    with pytest.raises(hub.UnsafeFormatError, match=r"pickled.*trust_remote_code=True"):
        hub.load_from_hub(repo_id)
    with pytest.warns(UserWarning, match="unpickling ppo-CartPole-v1.zip"):
        loaded = hub.load_from_hub(repo_id, trust_remote_code=True, device="cpu")
    assert type(loaded) is PPO and _same_predictions(model, loaded, _observations(model.observation_space))


def test_second_load_hits_the_cache_and_offline_mode_uses_it(hub_server, monkeypatch, tmp_path):
    repo_id = hub.make_repo_id("A2C", "CartPole-v1")
    model = A2C("MlpPolicy", "CartPole-v1", policy_kwargs=tiny(), seed=0)
    hub.push_to_hub(model, repo_id, "CartPole-v1", n_eval_episodes=1, record_replay=False)
    hub_server.requests.clear()
    hub.load_from_hub(repo_id, device="cpu")
    first_downloads = [r for r in hub_server.requests if r[0] == "GET" and "/resolve/" in r[1]]
    assert any(path.endswith("model.safetensors") for _, path in first_downloads)
    hub_server.requests.clear()
    hub.load_from_hub(repo_id, device="cpu")
    assert not [r for r in hub_server.requests if "/resolve/" in r[1]]  # nothing downloaded again

    hub_server.requests.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # read at call time, after huggingface_hub's import
    offline = hub.load_from_hub(repo_id, device="cpu")
    assert hub_server.requests == []
    assert _same_predictions(model, offline, _observations(model.observation_space))
    with pytest.raises(
        hub.NotCachedError, match=f"'{ORG}/never-downloaded'.*not in the huggingface_hub cache"
    ):
        hub.load_from_hub(f"{ORG}/never-downloaded")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # as if set before the import
    _, snapshot = hub.load_from_hub_with_info(repo_id, device="cpu")
    assert snapshot.source == "cache" and hub_server.requests == []


def test_unreachable_hub_falls_back_to_the_cache(hub_server, monkeypatch):
    repo_id = hub.make_repo_id("PPO", "CartPole-v1")
    hub.push_to_hub(
        PPO("MlpPolicy", "CartPole-v1", policy_kwargs=tiny()),
        repo_id,
        "CartPole-v1",
        n_eval_episodes=1,
        record_replay=False,
    )
    _, online = hub.load_from_hub_with_info(repo_id, device="cpu")
    assert online.source == "hub"
    hub_server.stop()
    _, cached = hub.load_from_hub_with_info(repo_id, device="cpu")
    assert cached.source == "cache" and cached.commit == online.commit


def test_interrupted_download_leaves_nothing_a_later_load_would_take(hub_server, monkeypatch, tmp_path):
    repo_id = hub.make_repo_id("PPO", "CartPole-v1")
    model = PPO("MlpPolicy", "CartPole-v1", policy_kwargs=tiny(), seed=0)
    hub.push_to_hub(model, repo_id, "CartPole-v1", n_eval_episodes=1, record_replay=False)
    # The server promises the whole file (Content-Length), sends half, drops the connection, and
    # answers 500 to the client's resume attempt.
    hub_server.interrupt_downloads.add("model.safetensors")
    with pytest.raises(hub.HubError, match=repo_id):
        hub.load_from_hub(repo_id, device="cpu")
    cache = _cache_root(tmp_path)
    weights = [p for p in cache.rglob("model.safetensors")]
    assert weights == []  # no half file under the real name
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.NotCachedError):
        hub.load_from_hub(repo_id, device="cpu")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    hub_server.failing_downloads.clear()
    loaded = hub.load_from_hub(repo_id, device="cpu")
    assert _same_weights(model, loaded)


def test_vec_normalize_travels_with_the_model(hub_server):
    venv = VecNormalize(make_vec_env("Pendulum-v1", seed=0))
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=32, n_epochs=1, policy_kwargs=tiny(), device="cpu")
    model.learn(32)
    repo_id = hub.make_repo_id("PPO", "Pendulum-v1")
    hub.push_to_hub(model, repo_id, "Pendulum-v1", n_eval_episodes=1, record_replay=False)
    loaded = hub.load_from_hub(repo_id, device="cpu", env=make_vec_env("Pendulum-v1"))
    np.testing.assert_allclose(loaded.get_env().obs_rms.mean, venv.obs_rms.mean)


def test_push_to_hub_checks_arguments(hub_server):
    model = PPO("MlpPolicy", "CartPole-v1", policy_kwargs=tiny())
    with pytest.raises(ValueError, match="repo_id='no-slash'"):
        hub.push_to_hub(model, "no-slash", "CartPole-v1")
    with pytest.raises(ValueError, match="n_eval_episodes=0"):
        hub.push_to_hub(model, f"{ORG}/x", "CartPole-v1", n_eval_episodes=0)
    with pytest.raises(ValueError, match="tensorboard_dir"):
        hub.push_to_hub(model, f"{ORG}/x", "CartPole-v1", tensorboard_dir="/does/not/exist")
    assert hub_server.get_repo("model", f"{ORG}/x") is None  # nothing created on bad input


def test_tensorboard_logs_are_uploaded(hub_server, tmp_path):
    logs = tmp_path / "tb" / "PPO_1"
    logs.mkdir(parents=True)
    (logs / "events.out.tfevents.1").write_bytes(b"fake-events")
    repo_id = hub.make_repo_id("PPO", "CartPole-v1")
    commit = hub.push_to_hub(
        PPO("MlpPolicy", "CartPole-v1", policy_kwargs=tiny()),
        repo_id,
        "CartPole-v1",
        n_eval_episodes=1,
        record_replay=False,
        tensorboard_dir=tmp_path / "tb",
    )
    assert "logs/PPO_1/events.out.tfevents.1" in hub_server.get_repo("model", repo_id).files(commit.oid)


def test_push_replaces_every_file_of_earlier_pushes_and_other_tools(hub_server, tmp_path, caplog):
    repo_id = hub.make_repo_id("PPO", "zoo/DarkRoom-v0")
    api = HfApi(endpoint=hub_server.url)
    api.create_repo(repo_id)
    # What another tool (or an old zoo) left: stale weights a loader could pick up under a newer card.
    (tmp_path / "old.safetensors").write_bytes(b"stale")
    api.upload_file(
        path_or_fileobj=tmp_path / "old.safetensors", path_in_repo="model.safetensors", repo_id=repo_id
    )
    api.upload_file(
        path_or_fileobj=tmp_path / "old.safetensors", path_in_repo="weights/old.bin", repo_id=repo_id
    )
    api.upload_file(path_or_fileobj=tmp_path / "old.safetensors", path_in_repo="notes.txt", repo_id=repo_id)
    model = PPO("MlpPolicy", "zoo/DarkRoom-v0", policy_kwargs=tiny(), seed=0)
    with caplog.at_level("WARNING", logger="zoo.hub.push"):
        first = hub.push_to_hub(model, repo_id, "zoo/DarkRoom-v0", n_eval_episodes=1, record_replay=False)
    repo = hub_server.get_repo("model", repo_id)
    assert set(repo.files(first.oid)) == {".gitattributes", *first.uploaded}
    assert first.removed == ("notes.txt", "weights/old.bin")  # model.safetensors was replaced, not removed
    assert "removed 2 file(s)" in caplog.text and "weights/old.bin" in caplog.text
    assert len(repo.commits) == 5  # initial + 3 uploads + exactly one push commit

    logs = tmp_path / "tb" / "PPO_1"
    logs.mkdir(parents=True)
    (logs / "events.out.tfevents.1").write_bytes(b"fake-events")
    second = hub.push_to_hub(
        model, repo_id, "zoo/DarkRoom-v0", n_eval_episodes=1, video_length=5, tensorboard_dir=tmp_path / "tb"
    )
    third = hub.push_to_hub(model, repo_id, "zoo/DarkRoom-v0", n_eval_episodes=1, record_replay=False)
    assert set(third.removed) == {"replay.mp4", "logs/PPO_1/events.out.tfevents.1"}
    assert set(repo.files(third.oid)) == {".gitattributes", *third.uploaded} == set(repo.files(first.oid))
    assert "replay.mp4" in repo.files(second.oid)
    assert _same_weights(model, hub.load_from_hub(repo_id, device="cpu"))


def test_push_without_network_raises_one_hub_error_naming_endpoint_and_repo(monkeypatch, tmp_path):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    model = PPO("MlpPolicy", "CartPole-v1", policy_kwargs=tiny())
    with pytest.raises(hub.HubError) as caught:
        hub.push_to_hub(
            model, f"{ORG}/ppo-CartPole-v1", "CartPole-v1", n_eval_episodes=1, record_replay=False
        )
    message = str(caught.value)
    assert "\n" not in message and endpoint in message and f"repo_id='{ORG}/ppo-CartPole-v1'" in message
    assert "could not be reached" in message
    assert caught.value.repo_id == f"{ORG}/ppo-CartPole-v1"


def test_loading_a_zoo_push_downloads_no_pickle(hub_server):
    repo_id = hub.make_repo_id("PPO", "zoo/DarkRoom-v0")
    hub.push_to_hub(
        PPO("MlpPolicy", "zoo/DarkRoom-v0", policy_kwargs=tiny()),
        repo_id,
        "zoo/DarkRoom-v0",
        n_eval_episodes=1,
        video_length=5,
    )
    hub_server.requests.clear()
    hub.load_from_hub(repo_id, device="cpu")
    fetched = [path for method, path in hub_server.requests if method == "GET" and "/resolve/" in path]
    assert any(path.endswith("/model.safetensors") for path in fetched)
    assert not [path for path in fetched if path.endswith((".zip", ".pkl", ".mp4"))]


def test_offline_loads_of_a_branch_and_a_commit_after_one_online_load(hub_server, monkeypatch):
    repo_id = hub.make_repo_id("PPO", "CartPole-v1")
    model = PPO("MlpPolicy", "CartPole-v1", policy_kwargs=tiny(), seed=3)
    pushed = hub.push_to_hub(model, repo_id, "CartPole-v1", n_eval_episodes=1, record_replay=False)
    _, online = hub.load_from_hub_with_info(repo_id, revision="main", device="cpu")
    assert online.source == "hub" and online.commit == pushed.oid == online.path.name
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_server.requests.clear()
    for revision in (None, "main", pushed.oid):
        loaded, snapshot = hub.load_from_hub_with_info(repo_id, revision=revision, device="cpu")
        assert snapshot.source == "cache" and snapshot.commit == pushed.oid
        assert _same_weights(model, loaded)
    assert hub_server.requests == []


def test_hub_code_uses_only_public_huggingface_hub_apis():
    """Private modules of one huggingface_hub release (httpx2 of 2.x, file_download helpers)
    break the other releases the declared floor allows."""
    import ast

    root = Path(hub.__file__).parent
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert not name.startswith(("httpx", "requests")), f"{path.name} imports {name}"
                if name.startswith("huggingface_hub."):
                    assert name in {"huggingface_hub.errors", "huggingface_hub.constants"}, (
                        f"{path.name}: {name}"
                    )


# ---------------------------------------------------------------------------------------------
# Video
# ---------------------------------------------------------------------------------------------


def test_record_video_writes_a_playable_mp4(tmp_path):
    import imageio

    model = PPO("MlpPolicy", "zoo/DarkRoom-v0", policy_kwargs=tiny())
    path = hub.record_video(model, "zoo/DarkRoom-v0", tmp_path / "out" / "replay.mp4", episodes=1)
    assert [p.name for p in path.parent.iterdir()] == ["replay.mp4"]  # no temporary left behind
    reader = imageio.get_reader(path, "ffmpeg")
    assert reader.count_frames() == 21  # DarkRoom episodes last 20 steps
    assert reader.get_data(0).mean() > 0
    reader.close()
    with pytest.raises(ValueError, match="path="):
        hub.record_video(model, "zoo/DarkRoom-v0", tmp_path / "replay.gif")


def test_upscale_frame_makes_even_frames_of_at_least_64_pixels():
    from zoo.hub.video import upscale_frame

    frame = upscale_frame(np.full((5, 9, 3), 200, dtype=np.uint8))
    assert frame.shape == (65 + 1, 117 + 1, 3) and frame.dtype == np.uint8
    assert upscale_frame(np.zeros((100, 80, 3), dtype=np.uint8)).shape == (100, 80, 3)


# ---------------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------------


def _make_dataset(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "observations.npy", np.arange(n * 3, dtype=np.int32).reshape(n, 3))
    np.save(folder / "rewards.npy", np.linspace(0, 1, n, dtype=np.float32))
    (folder / "manifest.json").write_text(json.dumps({"n": n}))


def test_dataset_push_and_pull(hub_server, tmp_path, monkeypatch):
    local = tmp_path / "histories"
    _make_dataset(local, 10)
    repo_id = f"{ORG}/darkroom-histories"
    first = hub.push_dataset(local, repo_id)
    assert hub_server.get_repo("dataset", repo_id) is not None
    assert hub_server.get_repo("model", repo_id) is None
    path = hub.load_dataset_from_hub(repo_id)
    assert sorted(p.name for p in path.iterdir()) == ["manifest.json", "observations.npy", "rewards.npy"]
    np.testing.assert_array_equal(
        np.load(path / "observations.npy", allow_pickle=False), np.load(local / "observations.npy")
    )

    (local / "rewards.npy").unlink()
    _make_dataset(local, 4)
    (local / "rewards.npy").unlink()
    hub.push_dataset(local, repo_id)
    latest = hub.load_dataset_from_hub(repo_id)
    assert sorted(p.name for p in latest.iterdir()) == ["manifest.json", "observations.npy"]
    assert np.load(latest / "observations.npy", allow_pickle=False).shape == (4, 3)
    old = hub.load_dataset_from_hub(repo_id, revision=first.oid)
    assert np.load(old / "observations.npy", allow_pickle=False).shape == (10, 3)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.load_dataset_from_hub(repo_id) == latest
    with pytest.raises(hub.NotCachedError, match="not in the huggingface_hub cache"):
        hub.load_dataset_from_hub(f"{ORG}/other")


def test_object_arrays_are_refused(hub_server, tmp_path):
    local = tmp_path / "bad"
    local.mkdir()
    np.save(local / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="unpickling"):
        hub.push_dataset(local, f"{ORG}/bad")
    # and on download, even if a repo holds one
    api = HfApi(endpoint=hub_server.url)
    api.create_repo(f"{ORG}/bad", repo_type="dataset")
    api.upload_file(
        path_or_fileobj=local / "objects.npy",
        path_in_repo="objects.npy",
        repo_id=f"{ORG}/bad",
        repo_type="dataset",
    )
    with pytest.raises(ValueError, match="unpickling"):
        hub.load_dataset_from_hub(f"{ORG}/bad")


# ---------------------------------------------------------------------------------------------
# Teachers
# ---------------------------------------------------------------------------------------------


def test_task_slugs():
    assert hub.task_slug(None) == "default"
    assert hub.task_slug((3, 4)) == "3-4"
    assert hub.task_slug(((1, 2), (5, 6))) == "1-2_5-6"
    assert hub.task_slug(np.int64(7)) == "7"
    with pytest.raises(ValueError, match="folder name"):
        hub.task_slug(("../x",))
    assert hub.teacher_folder("zoo/DarkRoom-v0", (3, 4), root="/r") == Path("/r/zoo-DarkRoom-v0/3-4")


def test_load_teacher_from_bundle_hub_and_cache(hub_server, tmp_path, monkeypatch):
    env_id, task = "zoo/DarkRoom-v0", (3, 4)
    teacher = PPO("MlpPolicy", "zoo/DarkRoom-v0", policy_kwargs=tiny(), device="cpu", seed=5)
    bundle = tmp_path / "bundle"
    hub.save_agent(teacher, hub.teacher_folder(env_id, task, root=bundle), env_id=env_id)

    model, info = hub.load_teacher(env_id, task, bundle_root=bundle, return_info=True, device="cpu")
    assert info.source == "bundled" and info.revision.startswith("distill-zoo") and info.repo_id is None
    assert model.teacher_info == info and _same_weights(teacher, model)
    with pytest.raises(FileNotFoundError, match="no bundled teacher"):
        hub.load_teacher(env_id, (2, 2), source="bundled", bundle_root=bundle)
    with pytest.raises(ValueError, match="source='web'"):
        hub.load_teacher(env_id, task, source="web")

    # publish the bundle folder in the teacher repo, <org>/ppo-<EnvName>/<task-slug>/
    repo_id = hub.teacher_repo_id(env_id)
    assert repo_id == f"{ORG}/ppo-zoo-DarkRoom-v0"
    other = PPO("MlpPolicy", "zoo/DarkRoom-v0", policy_kwargs=tiny(), device="cpu", seed=6)
    hub.save_agent(other, hub.teacher_folder(env_id, (1, 1), root=bundle), env_id=env_id)
    commit = hub.push_teachers(env_id, bundle)
    assert set(hub_server.get_repo("model", repo_id).files(commit.oid)) == {
        ".gitattributes",
        "1-1/config.json",
        "1-1/model.safetensors",
        "3-4/config.json",
        "3-4/model.safetensors",
    }
    model, info = hub.load_teacher(env_id, task, source="hub", return_info=True, device="cpu")
    assert (info.source, info.revision, info.repo_id) == ("hub", commit.oid, repo_id)
    assert _same_weights(teacher, model)
    assert _same_weights(other, hub.load_teacher(env_id, (1, 1), source="hub", device="cpu"))
    # no bundle: "auto" asks the Hub; offline, the cache answers
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, info = hub.load_teacher(
        env_id, task, bundle_root=tmp_path / "empty", return_info=True, device="cpu"
    )
    assert (info.source, info.revision) == ("cache", commit.oid)
    with pytest.raises(hub.HubNotFoundError, match=f"filename='5-5/config.json' of repo_id='{repo_id}'"):
        hub.load_teacher(env_id, (5, 5), bundle_root=tmp_path / "empty")  # the cached tree lacks it
    monkeypatch.setenv("ZOO_TEACHER_ORG", "elsewhere")
    with pytest.raises(hub.NotCachedError, match="'elsewhere/ppo-zoo-DarkRoom-v0'"):
        hub.load_teacher(env_id, task, bundle_root=tmp_path / "empty")


def test_teacher_for_another_env_is_refused(tmp_path):
    teacher = PPO("MlpPolicy", "zoo/DarkRoom-v0", policy_kwargs=tiny())
    folder = hub.teacher_folder("zoo/DarkRoomHard-v0", None, root=tmp_path)
    hub.save_agent(teacher, folder, env_id="zoo/DarkRoom-v0")
    with pytest.raises(ValueError, match="trained on 'zoo/DarkRoom-v0'"):
        hub.load_teacher("zoo/DarkRoomHard-v0", bundle_root=tmp_path)


def test_teacher_repo_defaults_to_the_project_org(monkeypatch):
    monkeypatch.delenv("ZOO_TEACHER_ORG", raising=False)
    assert hub.teacher_repo_id("zoo/DarkRoom-v0") == "distill-zoo/ppo-zoo-DarkRoom-v0"
    assert hub.teacher_repo_id("zoo/DarkRoom-v0", org="me") == "me/ppo-zoo-DarkRoom-v0"


def test_packaged_teachers_load_if_present():
    """Every teacher bundled in the package loads without the network (none may exist yet)."""
    from zoo.hub.teachers import bundled_teachers

    for folder in bundled_teachers():
        assert hub.load_agent(folder, device="cpu").policy is not None


def test_import_zoo_hub_is_cheap():
    import subprocess
    import sys

    code = "import sys, zoo.hub; print('huggingface_hub' in sys.modules, 'moviepy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.fixture(autouse=True)
def _quiet_warnings():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Monitor.*")
        yield


# ---------------------------------------------------------------------------------------------
# Zoo agents
# ---------------------------------------------------------------------------------------------


def _darkroom_teacher() -> PPO:
    return PPO("MlpPolicy", "zoo/DarkRoom-v0", policy_kwargs=tiny(), device="cpu", seed=9)


def _zoo_agent(name: str):
    from stable_baselines3 import HerReplayBuffer

    import zoo.agents as agents

    her = {"replay_buffer_class": HerReplayBuffer, "buffer_size": 400, "learning_starts": 0}
    if name in ("KickstartedPPO", "KickstartedA2C"):
        cls = getattr(agents, name)
        return cls(
            "MlpPolicy", "zoo/DarkRoom-v0", teacher=_darkroom_teacher(), policy_kwargs=tiny(), device="cpu"
        )
    if name == "KickstartedRecurrentPPO":
        return agents.KickstartedRecurrentPPO(
            "MlpLstmPolicy",
            "zoo/DarkRoom-v0",
            teacher=_darkroom_teacher(),
            policy_kwargs={"net_arch": [16], "lstm_hidden_size": 8},
            device="cpu",
        )
    if name == "KickstartedMaskablePPO":
        return agents.KickstartedMaskablePPO(
            "MlpPolicy", "zoo/DarkRoom-v0", teacher=_darkroom_teacher(), policy_kwargs=tiny(), device="cpu"
        )
    if name == "ReenGAGEDQN":
        env = gym.make("zoo/BitFlip-v0", n_bits=4)
        return agents.ReenGAGEDQN("MultiInputPolicy", env, policy_kwargs=tiny(), device="cpu", **her)
    if name in ("ReenGAGESAC", "ReenGAGETD3", "ReenGAGEDDPG"):
        env = gym.make("zoo/ContinuousSeek-d5-v0", dim=3)
        return getattr(agents, name)("MultiInputPolicy", env, policy_kwargs=tiny(), device="cpu", **her)
    if name == "MultiReenGAGE":
        policy_kwargs = {"net_arch": [16], "encoder_arch": [8], "features_dim": 8}
        return agents.MultiReenGAGE(
            "MultiGoalPolicy",
            gym.make("zoo/DriveSeek-v0"),
            policy_kwargs=policy_kwargs,
            device="cpu",
            buffer_size=200,
        )
    raise AssertionError(name)


ZOO_AGENTS = [
    "KickstartedPPO",
    "KickstartedA2C",
    "KickstartedRecurrentPPO",
    "KickstartedMaskablePPO",
    "ReenGAGEDQN",
    "ReenGAGESAC",
    "ReenGAGETD3",
    "ReenGAGEDDPG",
    "MultiReenGAGE",
]


@pytest.mark.parametrize("name", ZOO_AGENTS)
def test_zoo_agents_save_and_load_without_pickle(tmp_path, name):
    model = _zoo_agent(name)
    hub.save_agent(model, tmp_path)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*HerReplayBuffer.*")
        loaded = hub.load_agent(tmp_path, device="cpu")
    assert type(loaded) is type(model)
    assert _same_weights(model, loaded)
    observations = _observations(model.observation_space, 4)
    if isinstance(observations, np.ndarray) and observations.dtype == object:  # Dict spaces
        observations = {key: np.stack([o[key] for o in observations]) for key in observations[0]}
    assert _same_predictions(model, loaded, observations)
    _assert_nothing_saved_is_dropped(tmp_path)


def test_kickstarted_agent_push_and_pull(hub_server):
    model = _zoo_agent("KickstartedPPO")
    repo_id = hub.make_repo_id("KickstartedPPO", "zoo/DarkRoom-v0")
    assert repo_id == f"{ORG}/kickstartedppo-zoo-DarkRoom-v0"
    hub.push_to_hub(model, repo_id, "zoo/DarkRoom-v0", n_eval_episodes=1, video_length=5)
    loaded = hub.load_from_hub(repo_id, device="cpu", algo="KickstartedPPO", env_id="zoo/DarkRoom-v0")
    assert type(loaded) is type(model) and _same_weights(model, loaded)
    card = ModelCard(hub.download_file(repo_id, "README.md").read_text())
    assert card.data.library_name == "stable-baselines3" and "distill-zoo" in card.data.tags


def test_her_agent_loads_for_acting_without_env(hub_server):
    model = _zoo_agent("ReenGAGEDQN")
    repo_id = hub.make_repo_id("ReenGAGEDQN", "zoo/BitFlip-v0")
    hub.push_to_hub(
        model, repo_id, "zoo/BitFlip-v0", env_kwargs={"n_bits": 4}, n_eval_episodes=1, record_replay=False
    )
    with pytest.warns(UserWarning, match="HerReplayBuffer"):
        loaded = hub.load_from_hub(repo_id, device="cpu")
    assert _same_weights(model, loaded)
    env = gym.make("zoo/BitFlip-v0", n_bits=4)
    with_env = hub.load_from_hub(repo_id, device="cpu", env=env)  # with an env, HER is kept
    assert with_env.replay_buffer.__class__.__name__ == "HerReplayBuffer"


def _tiny_ad(dataset):
    from zoo.agents.ad import AlgorithmDistillation

    return AlgorithmDistillation(
        dataset,
        context_length=20,
        n_layers=1,
        n_heads=2,
        embed_dim=16,
        batch_size=8,
        warmup_steps=2,
        device="cpu",
    ).learn(2)


def _evaluate_ad(agent, n):
    from zoo.agents.ad import evaluate_in_context

    return evaluate_in_context(agent, "zoo/DarkRoom-v0", episodes=n, n_tasks=2).returns[:, -1]


def test_algorithm_distillation_push_and_pull_with_its_dataset(hub_server, tmp_path):
    ad = pytest.importorskip("zoo.agents.ad")
    # push_dataset writes Parquet through pyarrow, which only the datasets/minari extras install.
    pytest.importorskip("pyarrow", reason="push_dataset needs pyarrow, not a core dependency")
    dataset = ad.collect_histories(
        "zoo/DarkRoom-v0", ad.NoisyExpert(), tmp_path / "data", episodes=3, env_kwargs={"size": 3}
    )
    data_repo = f"{ORG}/ad-darkroom-histories"
    hub.push_dataset(tmp_path / "data", data_repo)
    pulled = ad.HistoryDataset.load(hub.load_dataset_from_hub(data_repo))
    np.testing.assert_array_equal(pulled.episode_returns(), dataset.episode_returns())

    model = _tiny_ad(pulled)
    repo_id = hub.make_repo_id("AD", "zoo/DarkRoom-v0")
    evaluate = _evaluate_ad

    commit = hub.push_to_hub(
        model, repo_id, "zoo/DarkRoom-v0", n_eval_episodes=2, evaluate_fn=evaluate, video_length=8
    )
    files = set(hub_server.get_repo("model", repo_id).files(commit.oid))
    assert {
        "agent.json",
        "config.json",
        "model.safetensors",
        "results.json",
        "replay.mp4",
        "README.md",
    } <= files
    assert not [path for path in files if path.endswith((".zip", ".pkl", ".yml"))]  # AD is not SB3: no zip
    loaded = hub.load_from_hub(repo_id, device="cpu", algo="AlgorithmDistillation", env_id="zoo/DarkRoom-v0")
    assert type(loaded) is type(model)
    for key, value in model.policy.state_dict().items():
        th.testing.assert_close(loaded.policy.state_dict()[key].cpu(), value.cpu())
    with pytest.raises(ValueError, match="evaluate_fn"):
        hub.push_to_hub(model, repo_id, "zoo/DarkRoom-v0")


def test_algorithm_distillation_is_published_together_with_its_learning_histories(hub_server, tmp_path):
    import yaml

    ad = pytest.importorskip("zoo.agents.ad")
    dataset = ad.collect_histories(
        "zoo/DarkRoom-v0", ad.NoisyExpert(), tmp_path / "data", episodes=3, env_kwargs={"size": 3}
    )
    model = _tiny_ad(dataset)
    evaluate = _evaluate_ad

    repo_id, data_repo = f"{ORG}/ad-with-data", f"{ORG}/ad-with-data-histories"
    result = hub.push_to_hub(
        model,
        repo_id,
        "zoo/DarkRoom-v0",
        n_eval_episodes=2,
        evaluate_fn=evaluate,
        record_replay=False,
        dataset_repo_id=data_repo,
        description="Trained on noisy-expert histories.",
    )
    assert result.dataset_repo_id == data_repo and result.dataset_oid
    # The dataset repo is the model's own histories, readable back, and the card points at it.
    pulled = ad.HistoryDataset.load(hub.load_dataset_from_hub(data_repo))
    np.testing.assert_array_equal(pulled.episode_returns(), dataset.episode_returns())
    repo = hub_server.get_repo("model", repo_id)
    card = hub_server.read_file(repo, result.oid, "README.md").decode()
    metadata = yaml.safe_load(card.split("---")[1])
    assert metadata["datasets"] == [data_repo]
    assert f'load_dataset("{data_repo}", split="train")' in card
    assert "Trained on noisy-expert histories." in card
    # A loaded model has no dataset folder: say what to pass.
    model.save(tmp_path / "saved")
    loaded = ad.AlgorithmDistillation.load(tmp_path / "saved", device="cpu")
    with pytest.raises(
        ValueError, match=rf"dataset_repo_id='{ORG}/x' needs the dataset's folder.*dataset_dir="
    ):
        hub.push_to_hub(loaded, repo_id, "zoo/DarkRoom-v0", evaluate_fn=evaluate, dataset_repo_id=f"{ORG}/x")
    with pytest.raises(ValueError, match=r"dataset_dir=.* is given without dataset_repo_id"):
        hub.push_to_hub(
            loaded, repo_id, "zoo/DarkRoom-v0", evaluate_fn=evaluate, dataset_dir=tmp_path / "data"
        )
    with pytest.raises(ValueError, match=r"dataset_dir=.*nowhere.* is not a directory"):
        hub.push_to_hub(
            loaded,
            repo_id,
            "zoo/DarkRoom-v0",
            evaluate_fn=evaluate,
            dataset_repo_id=f"{ORG}/x",
            dataset_dir=tmp_path / "nowhere",
        )
