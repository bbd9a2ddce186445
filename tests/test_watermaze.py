"""Pixel Watermaze: frames, turning, platform reward and respawn, tasks, DMLab adapter."""

from __future__ import annotations

import importlib.util
import itertools

import gymnasium as gym
import numpy as np
import pytest

import zoo.envs
from zoo.envs.watermaze import WatermazeDMLab, WatermazeEnv


def test_frame_shape_dtype_and_render_equals_observation() -> None:
    env = gym.make("zoo/Watermaze-v0", render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (72, 96, 3) and obs.dtype == np.uint8
    np.testing.assert_array_equal(env.render(), obs)
    obs, *_ = env.step(0)
    np.testing.assert_array_equal(env.render(), obs)
    assert len(np.unique(obs.reshape(-1, 3), axis=0)) > 10, "frame shows more than a flat colour"


def test_turning_changes_the_view_and_a_full_turn_restores_it() -> None:
    env = WatermazeEnv(task=WatermazeEnv.tasks("train")[0])
    first, _ = env.reset(seed=1)
    views = [first]
    for _ in range(16):  # 16 turns of 22.5 degrees = one full turn
        views.append(env.step(4)[0])
    for a, b in itertools.pairwise(views):
        assert not np.array_equal(a, b)
    np.testing.assert_allclose(views[-1].astype(int), first.astype(int), atol=2)
    right = env.step(5)[0]
    np.testing.assert_allclose(right.astype(int), views[-2].astype(int), atol=2)


def test_moving_forward_changes_the_view() -> None:
    env = WatermazeEnv()
    env.reset(seed=2)
    env._position = np.zeros(2)
    env._heading = 0.0
    before = env._render_frame()
    after, *_ = env.step(0)
    assert not np.array_equal(before, after)


def test_platform_pays_and_respawns_off_the_platform() -> None:
    task = WatermazeEnv.tasks("train")[3]
    env = WatermazeEnv(task=task)
    _, info = env.reset(seed=0)
    assert info["task"] == task
    platform = np.array(task)
    # Put the agent just behind the platform, facing it: one step forward lands on it.
    env._heading = 0.0
    env._position = platform - np.array([0.2, 0.0])
    obs, reward, terminated, truncated, info = env.step(0)
    assert reward == 1.0 and info["platform_reached"]
    assert not terminated and not truncated
    assert np.linalg.norm(env._position - platform) > env.platform_radius
    np.testing.assert_array_equal(obs, env._render_frame())
    # Away from the platform nothing is paid.
    env._position = -platform / max(np.linalg.norm(platform), 1e-6) * 0.5
    env._heading = float(np.arctan2(-platform[1], -platform[0]))
    assert env.step(1)[1] == 0.0


def test_random_policy_sometimes_finds_the_platform_and_positions_stay_in_pool() -> None:
    env = gym.make("zoo/Watermaze-v0")
    env.reset(seed=0)
    env.action_space.seed(0)
    total = 0.0
    for _ in range(1500):
        _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        total += reward
        assert np.linalg.norm(env.unwrapped._position) <= 1.0
        if terminated or truncated:
            env.reset()
    assert total > 0


def test_task_interface() -> None:
    train, test, everything = (WatermazeEnv.tasks(split) for split in ("train", "test", "all"))
    assert len(everything) == 64 and set(train) | set(test) == set(everything)
    assert not set(train) & set(test) and len(test) > 0
    assert all(0 <= np.arctan2(y, x) < np.pi / 2 for x, y in test)
    assert zoo.envs.tasks("zoo/Watermaze-v0", "test") == test
    env = gym.make("zoo/Watermaze-v0")
    seen = {env.reset(seed=seed)[1]["task"] for seed in range(30)}
    assert seen <= set(train) and len(seen) > 1
    _, info = env.reset(options={"task": test[0]})
    assert info["task"] == test[0]
    assert env.reset()[1]["task"] == test[0], "a given task is kept for later resets"
    assert env.step(0)[4]["task"] == test[0]
    with pytest.raises(ValueError, match=r"task=.*not a Watermaze task"):
        env.reset(options={"task": (0.123, 0.456)})
    with pytest.raises(ValueError, match="task="):
        WatermazeEnv(task=(5.0, 5.0))
    with pytest.raises(ValueError, match="split='valid'"):
        WatermazeEnv.tasks("valid")


def test_bad_actions_raise() -> None:
    env = WatermazeEnv()
    env.reset(seed=0)
    for action in (8, -1, 2.5, np.array([1, 2])):
        with pytest.raises(ValueError, match="action="):
            env.step(action)


@pytest.mark.skipif(importlib.util.find_spec("deepmind_lab") is not None, reason="deepmind_lab is installed")
def test_dmlab_adapter_without_deepmind_lab_explains_how_to_install() -> None:
    with pytest.raises(ImportError, match="deepmind_lab") as error:
        WatermazeDMLab()
    assert "github.com/google-deepmind/lab" in str(error.value)
    assert "zoo/Watermaze-v0" in str(error.value)
