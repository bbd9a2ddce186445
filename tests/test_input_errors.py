"""Bad input gets a clear ValueError naming the parameter, the value and what is allowed (issue #11)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import zoo  # noqa: F401  (registers the environments)
from zoo.envs import ENV_IDS

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
    message = "'task'" if env_id in zoo.envs.META_ENV_IDS else "no reset options"
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
