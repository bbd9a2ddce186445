"""Native vector envs equal N single envs (infos included); multi-task vector env; the SB3 VecEnv adapter."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import zoo.envs
from zoo.envs.vector import (
    BanditVectorEnv,
    DarkKeyToDoorVectorEnv,
    DarkRoomHardVectorEnv,
    DarkRoomVectorEnv,
    TaskVectorEnv,
    WatermazeVectorEnv,
    make_multitask_vec_env,
)
from zoo.envs.wrappers import TaskOneHotObservation

VECTOR_CLASSES = {
    "zoo/AdversarialBandit-v0": BanditVectorEnv,
    "zoo/DarkRoom-v0": DarkRoomVectorEnv,
    "zoo/DarkRoomHard-v0": DarkRoomHardVectorEnv,
    "zoo/DarkKeyToDoor-v0": DarkKeyToDoorVectorEnv,
    "zoo/Watermaze-v0": WatermazeVectorEnv,
}
ENV_IDS = list(VECTOR_CLASSES)
MODES = [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP]


def some_tasks(env_id: str, count: int) -> list:
    """A mix of train and test tasks, with Dark Room Hard goals close enough to be reached."""
    if env_id == "zoo/DarkRoomHard-v0":
        return [(8, 9), (7, 8), (8, 8), (9, 8), (8, 6), (0, 0), (6, 8), (8, 10)][:count]
    if env_id == "zoo/DarkKeyToDoor-v0":
        return [((4, 4), (4, 5)), ((3, 4), (5, 4)), ((0, 0), (8, 8)), ((4, 5), (4, 4))] * (count // 4 + 1)
    every = zoo.envs.tasks(env_id, "all")
    return [every[(index * 37) % len(every)] for index in range(count)]


def assert_same_infos(native: dict, reference: dict, where: str = "info") -> None:
    """Every key the ``SyncVectorEnv`` of singles reports is in the native infos, with the same
    ``_key`` mask and, where the mask is set, the same values (``final_info`` recursively)."""
    for key, value in reference.items():
        if key.startswith("_"):
            continue
        assert key in native, f"{where}[{key!r}] is missing from the native infos"
        mask = reference[f"_{key}"]
        np.testing.assert_array_equal(native[f"_{key}"], mask, err_msg=f"{where}[{key!r}] mask differs")
        if isinstance(value, dict):
            assert_same_infos(native[key], value, f"{where}[{key!r}]")
            continue
        assert native[key].shape[0] == mask.shape[0]
        for index in np.flatnonzero(mask).tolist():
            np.testing.assert_array_equal(
                np.asarray(native[key][index]),
                np.asarray(value[index]),
                err_msg=f"{where}[{key!r}][{index}] differs",
            )
        if isinstance(value, np.ndarray) and value.dtype != object and key != "final_obs":
            assert native[key].dtype == value.dtype, f"{where}[{key!r}] dtype differs"


def assert_same_steps(
    native: gym.vector.VectorEnv, reference: gym.vector.VectorEnv, steps: int, seed: int
) -> int:
    """Step both with the same random actions; compare everything a user relies on."""
    observations, infos = native.reset(seed=seed)
    reference_observations, reference_infos = reference.reset(seed=seed)
    np.testing.assert_array_equal(observations, reference_observations)
    assert_same_infos(infos, reference_infos, "reset info")
    rng = np.random.default_rng(seed)
    episodes = 0
    for step in range(steps):
        actions = rng.integers(native.single_action_space.n, size=native.num_envs)
        result = native.step(actions)
        expected = reference.step(actions)
        for name, got, want in zip(
            ("obs", "reward", "terminated", "truncated"), result[:4], expected[:4], strict=True
        ):
            np.testing.assert_array_equal(got, want, err_msg=f"{name} differs at step {step}")
        infos = result[4]
        assert infos["task_index"].shape == (native.num_envs,)
        assert_same_infos(infos, expected[4], f"step {step} info")
        episodes += int(np.sum(result[2] | result[3]))
    return episodes


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_make_vec_builds_the_native_class(env_id: str) -> None:
    tasks = some_tasks(env_id, 4)[:4]
    env = gym.make_vec(env_id, num_envs=4, tasks=tasks)
    assert type(env) is VECTOR_CLASSES[env_id]
    assert env.num_envs == 4 and env.tasks == [env.single_env._validate_task(task, "t") for task in tasks]
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    observations, infos = env.reset(seed=0)
    assert env.observation_space.contains(observations)
    np.testing.assert_array_equal(infos["task_index"], np.arange(4))


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("mode", MODES, ids=lambda mode: mode.value)
@pytest.mark.parametrize("with_tasks", [True, False], ids=["tasks", "no-tasks"])
def test_vector_env_equals_sync_vector_env_of_singles(
    env_id: str, mode: AutoresetMode, with_tasks: bool
) -> None:
    num_envs = 8
    tasks = some_tasks(env_id, num_envs)[:num_envs] if with_tasks else None
    native = gym.make_vec(env_id, num_envs=num_envs, tasks=tasks, autoreset_mode=mode)
    reference = SyncVectorEnv(
        [
            lambda index=index: gym.make(env_id, task=None if tasks is None else tasks[index])
            for index in range(num_envs)
        ],
        autoreset_mode=mode,
    )
    steps = {"zoo/DarkKeyToDoor-v0": 150, "zoo/Watermaze-v0": 110}.get(env_id, 60)
    episodes = assert_same_steps(native, reference, steps=steps, seed=11)
    assert episodes > num_envs  # autoreset was exercised
    # Reseeding reproduces the same run; a second reset(seed) restarts the generators.
    assert assert_same_steps(native, reference, steps=30, seed=3) >= 0


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_vector_infos_carry_the_task_as_sync_vector_env_does(env_id: str) -> None:
    tasks = some_tasks(env_id, 3)[:3]
    native = gym.make_vec(env_id, num_envs=3, tasks=tasks)
    reference = SyncVectorEnv([lambda task=task: gym.make(env_id, task=task) for task in tasks])
    infos = native.reset(seed=0)[1]
    reference_infos = reference.reset(seed=0)[1]
    # An object array of the singles' info["task"] with an all-True "_task" mask, as SyncVectorEnv makes.
    assert infos["task"].dtype == reference_infos["task"].dtype == object
    assert list(infos["task"]) == list(reference_infos["task"]) == [native.task_of(i) for i in range(3)]
    np.testing.assert_array_equal(infos["_task"], [True, True, True])
    step_infos = native.step(np.zeros(3, dtype=np.int64))[4]
    assert list(step_infos["task"]) == list(reference.step(np.zeros(3, dtype=np.int64))[4]["task"])


def test_watermaze_make_vec_vector_entry_point_equals_singles_and_pays() -> None:
    tasks = zoo.envs.tasks("zoo/Watermaze-v0", "all")[::8]
    native = gym.make_vec(
        "zoo/Watermaze-v0", num_envs=8, vectorization_mode="vector_entry_point", tasks=tasks
    )
    assert type(native) is WatermazeVectorEnv and native.single_observation_space.shape == (72, 96, 3)
    reference = SyncVectorEnv([lambda task=task: gym.make("zoo/Watermaze-v0", task=task) for task in tasks])
    observations, infos = native.reset(seed=0)
    reference_observations, reference_infos = reference.reset(seed=0)
    np.testing.assert_array_equal(observations, reference_observations)
    assert_same_infos(infos, reference_infos)
    rng = np.random.default_rng(0)
    paid = 0.0
    for step in range(110):  # two truncations at 50 steps and the NEXT_STEP autoresets after them
        actions = rng.choice([0, 0, 0, 6, 7, 4], size=8)  # mostly forward, to reach platforms
        result, expected = native.step(actions), reference.step(actions)
        for got, want in zip(result[:4], expected[:4], strict=True):
            np.testing.assert_array_equal(got, want, err_msg=f"step {step}")
        assert_same_infos(result[4], expected[4], f"step {step} info")
        paid += float(result[1].sum())
    assert paid > 0  # platforms were reached, so the respawns drew from each sub-env's generator
    with pytest.raises(ValueError, match="task_in_obs"):
        gym.make_vec("zoo/Watermaze-v0", num_envs=2, task_in_obs=True)
    with pytest.raises(ValueError, match=r"tasks\[1\]"):
        gym.make_vec("zoo/Watermaze-v0", num_envs=2, tasks=[tasks[0], (5.0, 5.0)])


def test_no_task_vector_env_draws_train_tasks_per_episode() -> None:
    env = gym.make_vec("zoo/DarkKeyToDoor-v0", num_envs=16, autoreset_mode="same-step")
    _, infos = env.reset(seed=0)
    seen = set(infos["task_index"].tolist())
    for _ in range(200):
        infos = env.step(np.zeros(16, dtype=np.int64))[4]
        seen |= set(infos["task_index"].tolist())
    assert len(seen) > 16
    train = set(zoo.envs.tasks("zoo/DarkKeyToDoor-v0", "train"))
    assert {env.tasks[index] for index in seen} <= train


def test_disabled_autoreset_with_reset_mask_equals_singles() -> None:
    tasks = some_tasks("zoo/DarkRoomHard-v0", 6)
    native = gym.make_vec("zoo/DarkRoomHard-v0", num_envs=6, tasks=tasks, autoreset_mode="disabled")
    reference = SyncVectorEnv(
        [lambda task=task: gym.make("zoo/DarkRoomHard-v0", task=task) for task in tasks],
        autoreset_mode="Disabled",
    )
    native.reset(seed=0)
    reference.reset(seed=0)
    rng = np.random.default_rng(0)
    resets = 0
    for _ in range(80):
        actions = rng.integers(5, size=6)
        result, expected = native.step(actions), reference.step(actions)
        for got, want in zip(result[:4], expected[:4], strict=True):
            np.testing.assert_array_equal(got, want)
        done = result[2] | result[3]
        if done.any():
            resets += 1
            observations, _ = native.reset(options={"reset_mask": done})
            reference_observations, _ = reference.reset(options={"reset_mask": done.copy()})
            np.testing.assert_array_equal(observations, reference_observations)
    assert resets > 2


def test_key_to_door_vector_infos_carry_has_key() -> None:
    env = gym.make_vec("zoo/DarkKeyToDoor-v0", num_envs=2, tasks=[((0, 0), (8, 8)), ((8, 8), (0, 0))])
    _, infos = env.reset(seed=0)
    assert not infos["has_key"].any()
    env.cell[:] = [1, 9 * 9 - 2]  # next to the keys
    _, rewards, _, _, infos = env.step(np.array([4, 2]))
    np.testing.assert_array_equal(rewards, [1.0, 1.0])
    np.testing.assert_array_equal(infos["has_key"], [True, True])


def test_bandit_vector_reports_regret() -> None:
    task = (0.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25)
    env = gym.make_vec("zoo/AdversarialBandit-v0", num_envs=3, tasks=[task] * 3, autoreset_mode="same-step")
    env.reset(seed=0)
    _, rewards, terminated, _, infos = env.step(np.array([0, 1, 9]))
    np.testing.assert_array_equal(rewards[:2], [0.0, 1.0])
    # Same-step autoreset: the pull's info is the final info, the top level is the reset's.
    np.testing.assert_allclose(infos["final_info"]["regret"], [1.0, 0.0, 0.75])
    assert not infos["_regret"].any() and infos["_final_info"].all()
    assert terminated.all()
    env = gym.make_vec("zoo/AdversarialBandit-v0", num_envs=3, tasks=[task] * 3)
    env.reset(seed=0)
    infos = env.step(np.array([0, 1, 9]))[4]
    np.testing.assert_allclose(infos["regret"], [1.0, 0.0, 0.75])
    assert infos["_regret"].all()


# -- multi-task env and the task-in-obs wrapper ------------------------------------------------------


@pytest.mark.parametrize("env_id", ["zoo/DarkRoom-v0", "zoo/DarkKeyToDoor-v0", "zoo/AdversarialBandit-v0"])
def test_multitask_task_in_obs_equals_wrapped_singles(env_id: str) -> None:
    tasks = some_tasks(env_id, 4)[:4]
    native = make_multitask_vec_env(env_id, tasks, task_in_obs=True, seed=5, autoreset_mode="same-step")
    assert isinstance(native, TaskVectorEnv)
    width = native.single_env.observation_space.n if env_id != "zoo/AdversarialBandit-v0" else 1
    assert native.single_observation_space == gym.spaces.Box(0.0, 1.0, (width + 4,), np.float32)
    reference = SyncVectorEnv(
        [lambda task=task: TaskOneHotObservation(gym.make(env_id, task=task), tasks) for task in tasks],
        autoreset_mode="SameStep",
    )
    observations, _ = native.reset(seed=5)
    np.testing.assert_array_equal(observations[:, width:], np.eye(4, dtype=np.float32))
    assert_same_steps(native, reference, steps=60, seed=5)


def test_multitask_seed_makes_runs_reproducible_and_tasks_fixed() -> None:
    tasks = some_tasks("zoo/DarkKeyToDoor-v0", 6)[:6]
    first = make_multitask_vec_env("zoo/DarkKeyToDoor-v0", tasks, seed=42)
    second = make_multitask_vec_env("zoo/DarkKeyToDoor-v0", tasks, seed=42)
    observations, infos = first.reset()
    np.testing.assert_array_equal(observations, second.reset()[0])
    for _ in range(100):
        infos = first.step(np.ones(6, dtype=np.int64))[4]
        np.testing.assert_array_equal(infos["task_index"], np.arange(6))


def test_task_one_hot_wrapper_rejects_foreign_tasks() -> None:
    env = TaskOneHotObservation(gym.make("zoo/DarkRoom-v0", task=(1, 1)), [(0, 0)])
    with pytest.raises(ValueError, match="task"):
        env.reset(seed=0)


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_envs": 0}, "num_envs=0"),
        ({"num_envs": 2, "tasks": [(0, 0)]}, "num_envs=2"),
        ({"num_envs": 1, "tasks": [(9, 9)]}, r"tasks\[0\]"),
        ({"num_envs": 1, "autoreset_mode": "sometimes"}, "autoreset_mode='sometimes'"),
        ({"num_envs": 1, "size": 1}, "size=1"),
        ({"num_envs": 1, "max_episode_steps": 0}, "max_episode_steps=0"),
    ],
)
def test_bad_vector_arguments_raise_value_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DarkRoomVectorEnv(**kwargs)


@pytest.mark.parametrize(
    "actions",
    [
        np.array([0, 5]),
        np.array([-1, 0]),
        np.array([0.0, 1.0]),
        np.array([0, 1, 2]),
        np.array([np.nan, 1.0]),
        [True, False],
    ],
)
def test_bad_vector_actions_raise_value_error(actions) -> None:
    env = gym.make_vec("zoo/DarkRoom-v0", num_envs=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="actions"):
        env.step(actions)


def test_bad_vector_reset_arguments_raise_value_error() -> None:
    env = gym.make_vec("zoo/DarkRoom-v0", num_envs=2)
    with pytest.raises(ValueError, match="task"):
        env.reset(options={"task": (0, 0)})
    with pytest.raises(ValueError, match="reset_mask"):
        env.reset(options={"reset_mask": np.array([1, 0])})
    with pytest.raises(ValueError, match="seed"):
        env.reset(seed=[1, 2, 3])


def test_vector_render_returns_one_frame_per_env() -> None:
    env = gym.make_vec("zoo/DarkKeyToDoor-v0", num_envs=3, render_mode="rgb_array")
    env.reset(seed=0)
    frames = env.render()
    assert len(frames) == 3 and all(frame.shape == (144, 144, 3) for frame in frames)
    single = gym.make("zoo/DarkKeyToDoor-v0", render_mode="rgb_array")
    assert single.reset(seed=1)[1]["task"] == env.task_of(1)  # sub-env 1 is seeded with seed + 1
    np.testing.assert_array_equal(frames[1], single.render())


# -- SB3 adapter ----------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sb3_adapter_equals_dummy_vec_env_of_singles(env_id: str) -> None:
    from stable_baselines3.common.vec_env import DummyVecEnv

    from zoo.envs.sb3 import SB3VecEnv

    tasks = some_tasks(env_id, 6)[:6]
    adapted = SB3VecEnv(gym.make_vec(env_id, num_envs=6, tasks=tasks))
    reference = DummyVecEnv([lambda task=task: gym.make(env_id, task=task) for task in tasks])
    adapted.seed(9)
    reference.seed(9)
    np.testing.assert_array_equal(adapted.reset(), reference.reset())
    rng = np.random.default_rng(9)
    finished = 0
    for _ in range(120):
        actions = rng.integers(adapted.action_space.n, size=6)
        adapted.step_async(actions)
        reference.step_async(actions)
        observations, rewards, dones, infos = adapted.step_wait()
        expected_observations, expected_rewards, expected_dones, expected_infos = reference.step_wait()
        np.testing.assert_array_equal(observations, expected_observations)
        np.testing.assert_array_equal(rewards, expected_rewards)
        np.testing.assert_array_equal(dones, expected_dones)
        for info, expected in zip(infos, expected_infos, strict=True):
            assert info["TimeLimit.truncated"] == expected["TimeLimit.truncated"]
            assert ("terminal_observation" in info) == ("terminal_observation" in expected)
            if "terminal_observation" in info:
                np.testing.assert_array_equal(info["terminal_observation"], expected["terminal_observation"])
        finished += int(dones.sum())
    assert finished > 6
    assert adapted.get_attr("task_index") == list(range(6))
    assert adapted.get_attr("task_index", indices=[2, 4]) == [2, 4]
    adapted.close()


def test_sb3_adapter_attributes_methods_seed_and_render() -> None:
    from zoo.envs.sb3 import SB3VecEnv

    tasks = some_tasks("zoo/DarkRoom-v0", 4)
    native = gym.make_vec("zoo/DarkRoom-v0", num_envs=4, tasks=tasks, render_mode="rgb_array")
    env = SB3VecEnv(native)
    assert native.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP  # switched for SB3
    assert env.seed(3) == [3, 4, 5, 6]
    first = env.reset()
    assert env.reset_infos[1]["task_index"] == 1
    assert env.get_attr("render_mode") == ["rgb_array"] * 4
    assert env.env_method("task_of", 2, indices=[0]) == [native.tasks[2]]
    assert env.env_is_wrapped(gym.Wrapper) == [False] * 4
    frames = env.get_images()
    assert len(frames) == 4 and frames[0].shape == (144, 144, 3)
    assert env.render().ndim == 3
    env.set_attr("max_episode_steps", 5)
    for _ in range(5):
        env.step_async(np.zeros(4, dtype=np.int64))
        _, _, dones, infos = env.step_wait()
    assert dones.all() and all(info["TimeLimit.truncated"] for info in infos)
    np.testing.assert_array_equal(infos[0]["terminal_observation"], first[0])
    env.close()


def test_sb3_adapter_rejects_next_step_sync_env_and_accepts_same_step() -> None:
    from zoo.envs.sb3 import SB3VecEnv

    make = [lambda: gym.make("zoo/DarkRoom-v0", task=(0, 0))] * 2
    with pytest.raises(ValueError, match="autoreset_mode"):
        SB3VecEnv(SyncVectorEnv(make))
    env = SB3VecEnv(SyncVectorEnv(make, autoreset_mode=AutoresetMode.SAME_STEP))
    env.reset()
    for _ in range(20):
        env.step_async(np.array([1, 4]))
        _, _, dones, infos = env.step_wait()
    assert dones.all() and infos[0]["TimeLimit.truncated"]
    assert (infos[0]["terminal_observation"], infos[1]["terminal_observation"]) == (
        4,
        36,
    )  # (0, 4) and (4, 0)


@pytest.mark.slow
def test_sb3_ppo_trains_on_the_adapter() -> None:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    from zoo.envs.sb3 import SB3VecEnv

    torch.set_num_threads(1)
    env = VecMonitor(SB3VecEnv(gym.make_vec("zoo/DarkRoom-v0", num_envs=8)))
    model = PPO(
        "MlpPolicy", env, n_steps=32, batch_size=64, n_epochs=1, policy_kwargs={"net_arch": [16]}, seed=0
    )
    model.learn(total_timesteps=512)
    assert model.num_timesteps == 512
    assert len(model.ep_info_buffer) > 0  # episodes finished through the adapter's autoreset
    actions, _ = model.predict(env.reset(), deterministic=True)
    assert actions.shape == (8,)
