"""Registry-driven conformance tests: every registered ``zoo/*`` environment is checked.

Registering an environment in ``zoo.envs.register_envs`` is enough for it to be tested here.
"""

from __future__ import annotations

import pickle
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from gymnasium.vector import SyncVectorEnv
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import zoo.envs

ENV_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("zoo/"))
VECTOR_IDS = [env_id for env_id in ENV_IDS if gym.spec(env_id).vector_entry_point is not None]


def assert_same(first: Any, second: Any) -> None:
    """Assert two observations/rewards/flags (arrays, dicts, tuples or scalars) are identical."""
    if isinstance(first, dict):
        assert first.keys() == second.keys()
        for key in first:
            assert_same(first[key], second[key])
    elif isinstance(first, (tuple, list)):
        assert len(first) == len(second)
        for a, b in zip(first, second):
            assert_same(a, b)
    else:
        np.testing.assert_array_equal(np.asarray(first), np.asarray(second))


def assert_same_vector_infos(native: dict[str, Any], reference: dict[str, Any]) -> None:
    """The keys a SyncVectorEnv of singles reports (``info["task"]``, ...) are in the native
    infos with the same masks and, where masked in, the same values."""
    for key, value in reference.items():
        if key.startswith("_") or key in ("final_obs", "final_info"):
            continue
        assert key in native, f"info[{key!r}] is missing from the native vector env"
        np.testing.assert_array_equal(native[f"_{key}"], reference[f"_{key}"])
        for index in np.flatnonzero(reference[f"_{key}"]).tolist():
            assert_same(native[key][index], value[index])


def rollout(env: gym.Env, seed: int, steps: int) -> list[tuple[Any, ...]]:
    """Reset with ``seed`` and take ``steps`` random actions from an action space seeded alike."""
    observation, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    trajectory: list[tuple[Any, ...]] = [(observation,)]
    for _ in range(steps):
        observation, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        trajectory.append((observation, reward, terminated, truncated))
        if terminated or truncated:
            observation, _ = env.reset()
            trajectory.append((observation,))
    return trajectory


def test_registry_lists_the_zoo() -> None:
    # Guards the parametrisation itself: an empty list would make every test below vacuous.
    assert set(zoo.envs.ENV_IDS) <= set(ENV_IDS)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_and_sb3_checkers_pass_without_warnings(env_id: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gymnasium_check_env(env.unwrapped)
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if any(
            isinstance(space, gym.spaces.Box) and len(space.shape) == 2
            for space in getattr(env.observation_space, "spaces", {}).values()
        ):
            # The multi-goal envs' desired_goal is (200, 3) goal rows by the ReenGAGE contract;
            # SB3 only advises flattening 2-D boxes, which ReenGAGE's goal encoder does itself.
            warnings.filterwarnings("ignore", message="Your observation desired_goal has an unconventional")
        sb3_check_env(env.unwrapped)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_trajectory(env_id: str) -> None:
    first = rollout(gym.make(env_id), seed=123, steps=60)
    second = rollout(gym.make(env_id), seed=123, steps=60)
    assert_same(first, second)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_pickle_round_trip_steps_identically(env_id: str) -> None:
    env = gym.make(env_id)
    env.reset(seed=7)
    env.action_space.seed(7)
    for _ in range(3):
        env.step(env.action_space.sample())
    clone = pickle.loads(pickle.dumps(env))
    for _ in range(30):
        action = env.action_space.sample()
        original, copied = env.step(action), clone.step(action)
        assert_same(original[:4], copied[:4])
        if original[2] or original[3]:
            assert_same(env.reset(seed=1)[0], clone.reset(seed=1)[0])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_render_returns_a_frame(env_id: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array")
    assert "rgb_array" in env.metadata["render_modes"]
    env.reset(seed=0)
    frame = env.render()
    assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.size > 0
    env.action_space.seed(0)
    for _ in range(5):
        env.step(env.action_space.sample())
        assert env.render().shape == frame.shape
    if isinstance(env.observation_space, gym.spaces.Box) and env.observation_space.dtype == np.uint8:
        # Pixel environments render exactly what the agent sees.
        assert frame.shape == env.observation_space.shape


@pytest.mark.parametrize("env_id", ENV_IDS)
@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), steps=st.integers(1, 40))
def test_random_rollouts_stay_in_observation_space(env_id: str, seed: int, steps: int) -> None:
    env = gym.make(env_id)
    observation, _ = env.reset(seed=seed)
    assert env.observation_space.contains(observation)
    env.action_space.seed(seed)
    for _ in range(steps):
        action = env.action_space.sample()
        assert env.action_space.contains(action)
        observation, reward, terminated, truncated, _ = env.step(action)
        assert env.observation_space.contains(observation), (env_id, observation)
        assert np.isfinite(reward)
        if terminated or truncated:
            observation, _ = env.reset()
            assert env.observation_space.contains(observation)


@pytest.mark.parametrize("env_id", VECTOR_IDS)
@pytest.mark.parametrize("num_envs", [1, 3])
def test_native_vector_env_equals_sync_vector_of_singles(env_id: str, num_envs: int) -> None:
    train_tasks = zoo.envs.tasks(env_id, "train")
    tasks = [train_tasks[i % len(train_tasks)] for i in range(num_envs)]
    native = gym.make_vec(env_id, num_envs=num_envs, tasks=tasks)
    autoreset_mode = native.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
    singles = SyncVectorEnv(
        [lambda task=task: gym.make(env_id, task=task) for task in tasks], autoreset_mode=autoreset_mode
    )
    native_obs, native_info = native.reset(seed=11)
    single_obs, single_info = singles.reset(seed=11)
    assert_same(native_obs, single_obs)
    assert "task" in single_info  # every meta-RL env reports its task
    assert_same_vector_infos(native_info, single_info)
    np.testing.assert_array_equal(native_info["task_index"], np.arange(num_envs))
    native.action_space.seed(5)
    horizon = gym.spec(env_id).max_episode_steps or 20
    for _ in range(3 * horizon + 2):
        actions = native.action_space.sample()
        native_step = native.step(actions)
        single_step = singles.step(actions)
        assert_same(native_step[:4], single_step[:4])
        assert_same_vector_infos(native_step[4], single_step[4])
        np.testing.assert_array_equal(native_step[4]["task_index"], np.arange(num_envs))
    native.close()
    singles.close()
