"""Bad input gets a clear ValueError naming the parameter, the value and what is allowed (issue #11)."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import zoo.envs
from zoo.envs import ENV_IDS, META_ENV_IDS

VECTOR_IDS = ("zoo/AdversarialBandit-v0", "zoo/DarkRoom-v0", "zoo/DarkRoomHard-v0", "zoo/DarkKeyToDoor-v0")

# -- environments: reset options ------------------------------------------------------------------


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reset_options_that_are_not_a_dict_are_refused(env_id: str) -> None:
    env = gym.make(env_id)
    with pytest.raises(ValueError, match=r"options='x' is not allowed.*None or a dict"):
        env.reset(options="x")


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_unknown_reset_option_keys_are_refused_naming_the_key(env_id: str) -> None:
    env = gym.make(env_id)
    message = "'task'" if env_id in META_ENV_IDS else "no reset options"
    with pytest.raises(ValueError, match=rf"options key 'tsak' is not supported.*{message}"):
        env.reset(options={"tsak": 3})


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_none_and_empty_reset_options_still_work(env_id: str) -> None:
    env = gym.make(env_id)
    env.reset(seed=0, options=None)
    env.reset(options={})


@pytest.mark.parametrize("env_id", VECTOR_IDS)
def test_vector_reset_options_are_checked(env_id: str) -> None:
    env = gym.make_vec(env_id, num_envs=2)
    with pytest.raises(ValueError, match=r"options='x' is not allowed.*'reset_mask'"):
        env.reset(options="x")
    with pytest.raises(ValueError, match=r"options key 'tsak' is not supported.*'reset_mask'"):
        env.reset(options={"tsak": 3})
    env.reset(seed=0, options={})


# -- environments: vector constructor arguments ---------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"task_in_obs": "yes"}, "task_in_obs='yes' is not allowed; use True or False"),
        ({"task_in_obs": 1}, "task_in_obs=1 is not allowed"),
        ({"num_envs": -2}, "num_envs=-2 is not allowed"),
        ({"num_envs": 2.0}, r"num_envs=2\.0 is not allowed"),
        ({"seed": "1"}, "seed='1' is not allowed"),
        ({"seed": -1}, "seed=-1 is not allowed"),
        ({"max_episode_steps": 2.5}, r"max_episode_steps=2\.5 is not allowed"),
        ({"tasks": 5}, "tasks=5 is not allowed; give a list with one task per sub-environment"),
    ],
)
@pytest.mark.parametrize("env_id", VECTOR_IDS)
def test_bad_vector_constructor_arguments_are_refused(env_id: str, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        gym.make_vec(env_id, **{"num_envs": 2, **kwargs})


def test_vector_flags_accept_numpy_bools_and_integers() -> None:
    env = gym.make_vec("zoo/DarkRoom-v0", num_envs=np.int64(2), task_in_obs=np.bool_(True), seed=np.int64(3))
    observations, _ = env.reset()
    assert observations.shape == (2, 81 + len(env.tasks))


# -- Algorithm Distillation -----------------------------------------------------------------------

ROOM = "zoo/DarkRoom-v0"
TINY = dict(n_layers=1, n_heads=2, embed_dim=16, batch_size=8, warmup_steps=2)


@pytest.fixture(scope="module")
def room_dataset(tmp_path_factory):
    from zoo.agents.ad import NoisyExpert, collect_histories

    directory = tmp_path_factory.mktemp("room")
    return collect_histories(ROOM, NoisyExpert(), directory, episodes=4)  # 9 x 9: observations 0 .. 80


@pytest.fixture(scope="module")
def room_agent(room_dataset):
    from zoo.agents.ad import AlgorithmDistillation

    return AlgorithmDistillation(room_dataset, context_length=20, **TINY)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_layers": 0}, "n_layers=0 is not allowed"),
        ({"n_layers": 1.5}, r"n_layers=1\.5 is not allowed"),
        ({"embed_dim": 0}, "embed_dim=0 is not allowed"),
        ({"embed_dim": -4}, "embed_dim=-4 is not allowed"),
        ({"n_heads": 0}, "n_heads=0 is not allowed"),
        ({"embed_dim": 12, "n_heads": 4}, "embed_dim=12 is not allowed with n_heads=4"),
        ({"weight_decay": -0.1}, r"weight_decay=-0\.1 is not allowed; use a real number >= 0"),
        ({"weight_decay": "0.1"}, "weight_decay='0.1' is not allowed"),
        ({"min_lr_ratio": 1.5}, r"min_lr_ratio=1\.5 is not allowed; use a real number in \[0, 1\]"),
        ({"min_lr_ratio": -0.1}, r"min_lr_ratio=-0\.1 is not allowed"),
        ({"max_grad_norm": 0.0}, r"max_grad_norm=0\.0 is not allowed; use a real number > 0"),
        ({"max_grad_norm": -1}, "max_grad_norm=-1 is not allowed"),
        ({"learning_rate": float("nan")}, "learning_rate=nan is not allowed"),
        ({"dropout": -0.1}, r"dropout=-0\.1 is not allowed"),
        ({"attention_dropout": 1.0}, r"attention_dropout=1\.0 is not allowed"),
        ({"warmup_steps": 2.5}, r"warmup_steps=2\.5 is not allowed"),
    ],
)
def test_bad_ad_hyperparameters_are_refused_before_the_dataset_is_read(kwargs: dict, match: str) -> None:
    from zoo.agents.ad import AlgorithmDistillation

    # The dataset path does not exist: the argument check must come first.
    with pytest.raises(ValueError, match=match):
        AlgorithmDistillation("/nonexistent/dataset", **kwargs)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("n_layers", 0, "n_layers=0"),
        ("embed_dim", 0, "embed_dim=0"),
        ("n_heads", 0, "n_heads=0"),
        ("n_observations", 0, "n_observations=0"),
        ("rope_base", 0.0, "rope_base=0.0"),
    ],
)
def test_model_config_refuses_empty_architectures(field: str, value, match: str) -> None:
    from zoo.agents.ad.model import ModelConfig, TransformerPolicy

    kwargs = dict(observation_kind="discrete", observation_shape=(), n_observations=4, n_actions=3)
    kwargs[field] = value
    with pytest.raises(ValueError, match=match):
        TransformerPolicy(ModelConfig(**kwargs))


@pytest.mark.parametrize(
    ("observation", "match"),
    [
        (81, r"observation=81 is out of range; .*integers in \[0, 80\]"),
        (-1, r"observation=-1 is out of range"),
        (np.array([3, 81]), r"observation=81 is out of range"),
        (3.0, "observation has dtype float64"),
        (np.zeros((2, 2), dtype=np.int64), r"observation has shape \(2, 2\)"),
    ],
)
def test_ad_predict_refuses_observations_outside_the_space(room_agent, observation, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        room_agent.predict(observation)


def test_ad_predict_refuses_bad_state_and_reward(room_agent) -> None:
    _, state = room_agent.predict(np.array([40, 41]))
    with pytest.raises(ValueError, match=r"reward=.* is not allowed.*shape \(2,\)"):
        room_agent.predict(np.array([40, 41]), state, reward=np.zeros(3))
    with pytest.raises(ValueError, match="state=tuple is not allowed"):
        room_agent.predict(40, state=(None,), reward=0.0)
    with pytest.raises(ValueError, match="temperature=0 is not allowed"):
        room_agent.predict(40, temperature=0)
    actions, _ = room_agent.predict(np.array([40, 41]), state, reward=[0.0, 1.0])
    assert actions.shape == (2,)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_tasks": -1}, "n_tasks=-1 is not allowed; use an integer >= 1"),
        ({"n_tasks": 0}, "n_tasks=0 is not allowed"),
        ({"n_tasks": 2.0}, r"n_tasks=2\.0 is not allowed"),
        ({"episodes": 0}, "episodes=0 is not allowed"),
        ({"temperature": -1.0}, r"temperature=-1\.0 is not allowed"),
        ({"deterministic": "yes"}, "deterministic='yes' is not allowed"),
        ({"kv_cache": "full"}, r"kv_cache='full' is not allowed; use one of \('banded', 'recompute'\)"),
    ],
)
def test_evaluate_in_context_refuses_bad_arguments(room_agent, kwargs: dict, match: str) -> None:
    from zoo.agents.ad import evaluate_in_context

    with pytest.raises(ValueError, match=match):
        evaluate_in_context(room_agent, ROOM, **{"episodes": 1, **kwargs})


def test_evaluate_in_context_n_tasks_none_means_all(room_agent) -> None:
    from zoo.agents.ad import evaluate_in_context

    assert evaluate_in_context(room_agent, ROOM, episodes=1, n_tasks=None).returns.shape[0] == len(
        zoo.envs.tasks(ROOM, "test")
    )
    assert evaluate_in_context(room_agent, ROOM, episodes=1, n_tasks=2).returns.shape[0] == 2


@pytest.mark.parametrize("source_name", ["UCB", "ThompsonSampling"])
def test_bandit_sources_on_a_grid_world_are_refused_naming_the_valid_ones(source_name: str, tmp_path) -> None:
    from zoo.agents import ad

    source = getattr(ad, source_name)()
    with pytest.raises(ValueError, match=rf"source='{source.name}' does not fit env_id='{ROOM}'") as error:
        ad.collect_histories(ROOM, source, tmp_path / "data", episodes=2, env_kwargs={"size": 3})
    assert "'q_learning'" in str(error.value) and "'noisy_expert'" in str(error.value)
    assert "'ucb'" not in str(error.value).split("Sources for")[1]
    assert not (tmp_path / "data").exists()  # refused before anything was written


def test_source_learning_curve_refuses_a_source_that_cannot_learn_the_env() -> None:
    from zoo.agents import ad

    with pytest.raises(ValueError, match=rf"source='ucb' does not fit env_id='{ROOM}'"):
        ad.source_learning_curve(ad.UCB(), ROOM, episodes=2, env_kwargs={"size": 3})


def test_grid_sources_on_the_bandit_are_refused_naming_the_valid_ones(tmp_path) -> None:
    from zoo.agents import ad

    bandit = "zoo/AdversarialBandit-v0"
    with pytest.raises(ValueError, match=r"source='q_learning' does not fit.*'ucb', 'thompson'"):
        ad.collect_histories(bandit, ad.TabularQLearning(), tmp_path / "data", episodes=2)
    # Every meta-RL env has a scripted expert now (Watermaze too); an env without one is named.
    reason = ad.NoisyExpert().unsuitable_for("zoo/ContinuousSeek-v1", None)  # type: ignore[arg-type]
    assert reason is not None and "'zoo/ContinuousSeek-v1' has no scripted expert" in reason
    assert "DarkKeyToDoor and Watermaze" in reason
    with pytest.raises(ValueError, match=r"source='ucb' is not a Source"):
        ad.collect_histories(bandit, "ucb", tmp_path / "data", episodes=2)
    with pytest.raises(ValueError, match=r"tasks_per_batch=0 is not allowed"):
        ad.collect_histories(bandit, ad.UCB(), tmp_path / "data", episodes=2, tasks_per_batch=0)


# -- ReenGAGE --------------------------------------------------------------------------------------


def _reengage(name: str, **kwargs: Any) -> Any:
    from zoo.agents import MultiReenGAGE, ReenGAGEDDPG, ReenGAGEDQN, ReenGAGESAC, ReenGAGETD3

    classes = {
        "ddpg": ReenGAGEDDPG,
        "td3": ReenGAGETD3,
        "sac": ReenGAGESAC,
        "dqn": ReenGAGEDQN,
        "multi": MultiReenGAGE,
    }
    env = {"dqn": "zoo/BitFlip-v0", "multi": "zoo/DriveSeek-v0"}.get(name, "zoo/ContinuousSeek-d5-v0")
    policy = "MultiGoalPolicy" if name == "multi" else "MultiInputPolicy"
    return classes[name](policy, gym.make(env), buffer_size=100, **kwargs)


@pytest.mark.parametrize("name", ["ddpg", "td3", "sac", "dqn", "multi"])
@pytest.mark.parametrize(
    ("value", "match"),
    [
        (True, "gradient_reg=True is not allowed; use a finite real number >= 0"),
        ("0.2", r"gradient_reg='0\.2' is not allowed"),
        (math.inf, "gradient_reg=inf is not allowed"),
    ],
)
def test_reengage_gradient_reg_must_be_a_real_number(name: str, value, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _reengage(name, gradient_reg=value)


def test_reengage_dqn_gradient_temperature_must_be_a_real_number() -> None:
    with pytest.raises(ValueError, match=r"gradient_temperature='0\.1' is not allowed"):
        _reengage("dqn", gradient_temperature="0.1")


@pytest.mark.parametrize("name", ["multi", "td3"])
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"policy_delay": 0}, "policy_delay=0 is not allowed; use an integer >= 1"),
        ({"policy_delay": 1.5}, r"policy_delay=1\.5 is not allowed"),
        ({"target_policy_noise": -1}, "target_policy_noise=-1 is not allowed; use a finite real number >= 0"),
        ({"target_noise_clip": -0.5}, r"target_noise_clip=-0\.5 is not allowed"),
    ],
)
def test_reengage_td3_smoothing_arguments_are_refused_at_construction(
    name: str, kwargs: dict, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        _reengage(name, **kwargs)


@pytest.mark.parametrize("name", ["ddpg", "td3", "sac", "dqn", "multi"])
def test_reengage_integer_gradient_reg_is_still_accepted(name: str) -> None:
    assert _reengage(name, gradient_reg=0).gradient_reg == 0.0
