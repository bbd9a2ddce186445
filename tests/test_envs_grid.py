"""Semantics of the meta-RL bandit and grid worlds: rewards, tasks, splits, bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import zoo.envs
from zoo.envs.bandit import AdversarialBanditEnv
from zoo.envs.darkroom import DarkRoomEnv, DarkRoomHardEnv
from zoo.envs.key_to_door import DarkKeyToDoorEnv

GRID_IDS = ("zoo/DarkRoom-v0", "zoo/DarkRoomHard-v0", "zoo/DarkKeyToDoor-v0")
BANDIT_ID = "zoo/AdversarialBandit-v0"


def towards(position: tuple[int, int], target: tuple[int, int]) -> int:
    """Scripted move: rows first, then columns; no-op on the target."""
    if position[0] < target[0]:
        return 3
    if position[0] > target[0]:
        return 1
    if position[1] < target[1]:
        return 2
    if position[1] > target[1]:
        return 4
    return 0


def cell_of(observation: int, size: int) -> tuple[int, int]:
    row, col = divmod(int(observation), size)
    return row, col


def run_scripted(env: gym.Env, target_of, seed: int = 0) -> tuple[float, int, bool]:
    observation, info = env.reset(seed=seed)
    size = env.unwrapped.size
    total, steps = 0.0, 0
    while True:
        action = towards(cell_of(observation, size), target_of(info))
        observation, reward, terminated, truncated, info = env.step(action)
        total += reward
        steps += 1
        if terminated or truncated:
            return total, steps, terminated


# -- Dark Room ----------------------------------------------------------------------------------


def test_dark_room_scripted_policy_reaches_the_optimal_return_for_every_goal() -> None:
    for goal in zoo.envs.tasks("zoo/DarkRoom-v0", "all"):
        env = gym.make("zoo/DarkRoom-v0", task=goal)
        distance = abs(goal[0] - 4) + abs(goal[1] - 4)
        total, steps, terminated = run_scripted(env, lambda info: info["task"])
        # Reaching the goal after d moves pays on steps d..20; a centre goal pays all 20 steps.
        assert total == (20 if distance == 0 else 21 - distance)
        assert steps == 20 and not terminated


def test_dark_room_return_never_exceeds_the_optimum_under_random_actions() -> None:
    rng = np.random.default_rng(0)
    goal = (4, 6)
    env = gym.make("zoo/DarkRoom-v0", task=goal)
    for episode in range(50):
        env.reset(seed=episode)
        total = sum(env.step(int(rng.integers(5)))[1] for _ in range(20))
        assert total <= 21 - 2


@pytest.mark.parametrize(
    ("env_id", "toymeta_kwargs"),
    [
        ("zoo/DarkRoom-v0", {"size": 9, "terminate_on_goal": False}),
        ("zoo/DarkRoomHard-v0", {"size": 17, "terminate_on_goal": True}),
    ],
)
def test_dark_room_matches_toymeta(env_id: str, toymeta_kwargs: dict) -> None:
    toymeta_dark_room = pytest.importorskip("toymeta.dark_room")
    rng = np.random.default_rng(1)
    goals = zoo.envs.tasks(env_id, "all")
    for goal in [goals[int(index)] for index in rng.choice(len(goals), 25, replace=False)] + [goals[0]]:
        ours = gym.make(env_id, task=goal)
        theirs = toymeta_dark_room.DarkRoom(goal=goal, random_start=False, **toymeta_kwargs)
        observation, _ = ours.reset(seed=0)
        their_observation, _ = theirs.reset(seed=0)
        assert observation == their_observation
        # Biased walk towards the goal so that rewards and terminations actually happen.
        for _ in range(20):
            action = towards(cell_of(observation, ours.unwrapped.size), goal) if rng.random() < 0.7 else 0
            action = action if rng.random() < 0.8 else int(rng.integers(5))
            observation, reward, terminated, _, _ = ours.step(action)
            their_observation, their_reward, their_terminated, _, _ = theirs.step(action)
            assert (observation, reward, terminated) == (their_observation, their_reward, their_terminated)
            if terminated:
                break


def test_dark_room_hard_pays_once_and_terminates() -> None:
    for goal in zoo.envs.tasks("zoo/DarkRoomHard-v0", "all"):
        env = gym.make("zoo/DarkRoomHard-v0", task=goal)
        distance = abs(goal[0] - 8) + abs(goal[1] - 8)
        total, steps, terminated = run_scripted(env, lambda info: info["task"])
        if distance <= 20:
            assert (total, steps, terminated) == (1.0, max(distance, 1), True)
        else:
            assert (total, steps, terminated) == (0.0, 20, False)


def test_dark_room_actions_move_as_documented_and_clip_at_walls() -> None:
    env = DarkRoomEnv(task=(0, 0))
    env.reset(seed=0)
    assert env.agent == (4, 4)
    expected = {0: (4, 4), 1: (3, 4), 2: (4, 5), 3: (5, 4), 4: (4, 3)}
    for action, cell in expected.items():
        env.reset()
        observation, *_ = env.step(action)
        assert observation == cell[0] * 9 + cell[1]
    env.reset()
    for _ in range(10):
        observation, *_ = env.step(1)
    assert observation == 0 * 9 + 4


def test_actions_may_be_numpy_scalars_or_zero_d_arrays() -> None:
    env = gym.make("zoo/DarkRoom-v0", task=(0, 0))
    env.reset(seed=0)
    assert env.step(np.int64(2))[0] == 41
    assert env.step(np.array(3, dtype=np.int32))[0] == 50
    assert env.step(1)[0] == 41


# -- Key-to-Door --------------------------------------------------------------------------------


def test_key_to_door_scripted_policy_gets_two_and_terminates() -> None:
    for seed, task in enumerate(zoo.envs.tasks("zoo/DarkKeyToDoor-v0", "train")[::97]):
        env = gym.make("zoo/DarkKeyToDoor-v0", task=task)

        def target(info: dict) -> tuple[int, int]:
            key, door = info["task"]
            return door if info["has_key"] else key

        total, steps, terminated = run_scripted(env, target, seed=seed)
        assert total == 2.0 and terminated and steps <= 33


def test_key_to_door_pays_at_most_two_and_the_key_only_once() -> None:
    env = gym.make("zoo/DarkKeyToDoor-v0")
    rng = np.random.default_rng(0)
    for episode in range(200):
        env.reset(seed=episode)
        total = 0.0
        while True:
            _, reward, terminated, truncated, info = env.step(int(rng.integers(5)))
            total += reward
            if terminated:
                assert info["has_key"] and reward >= 1.0
            if terminated or truncated:
                break
        assert total <= 2.0
    # Standing on the key: +1 once, then nothing while staying there.
    env = DarkKeyToDoorEnv(task=((0, 0), (8, 8)))
    env.reset(seed=0)
    env.agent = (0, 0)
    rewards = [env.step(0)[1] for _ in range(5)]
    assert rewards == [1.0, 0.0, 0.0, 0.0, 0.0] and env.has_key


def test_key_to_door_door_without_key_pays_nothing() -> None:
    env = DarkKeyToDoorEnv(task=((0, 0), (0, 1)))
    env.reset(seed=0)
    env.agent = (0, 2)
    observation, reward, terminated, _, info = env.step(4)
    assert (observation, reward, terminated, info["has_key"]) == (1, 0.0, False, False)
    assert env.step(4)[1:3] == (1.0, False)  # key
    assert env.step(2)[1:3] == (1.0, True)  # door, with the key


def test_key_to_door_matches_toymeta_from_the_same_start() -> None:
    toymeta_key_door = pytest.importorskip("toymeta.dark_key_door")
    rng = np.random.default_rng(2)
    tasks = zoo.envs.tasks("zoo/DarkKeyToDoor-v0", "all")
    for index in rng.choice(len(tasks), 20, replace=False):
        key, door = tasks[int(index)]
        ours = DarkKeyToDoorEnv(task=(key, door))
        theirs = toymeta_key_door.DarkKeyToDoor(
            size=9, goal=(np.array(door), np.array(key)), random_start=True
        )
        ours.reset(seed=0)
        theirs.reset(seed=0)
        theirs.agent_pos = np.array(ours.agent, dtype=np.float32)
        for _ in range(50):
            action = int(rng.integers(5))
            observation, reward, terminated, _, info = ours.step(action)
            their_observation, their_reward, their_terminated, _, their_info = theirs.step(action)
            assert (observation, reward, terminated) == (their_observation, their_reward, their_terminated)
            assert info["has_key"] == their_info["has_key"]
            if terminated:
                break


def test_key_to_door_start_is_random_and_seeded() -> None:
    env = gym.make("zoo/DarkKeyToDoor-v0", task=((0, 0), (8, 8)))
    starts = {env.reset(seed=seed)[0] for seed in range(60)}
    assert len(starts) > 20
    assert env.reset(seed=7)[0] == env.reset(seed=7)[0]


# -- Bandit -------------------------------------------------------------------------------------


def test_bandit_task_splits_favour_the_documented_parity() -> None:
    train = zoo.envs.tasks(BANDIT_ID, "train")
    test = zoo.envs.tasks(BANDIT_ID, "test")
    assert len(train) == len(test) == 1000
    odd_best_train = np.mean([int(np.argmax(task)) % 2 == 1 for task in train])
    even_best_test = np.mean([int(np.argmax(task)) % 2 == 0 for task in test])
    assert 0.92 < odd_best_train < 0.98
    assert 0.92 < even_best_test < 0.98
    for task in train[:50]:
        assert len(task) == 10 and all(isinstance(mean, float) and 0.0 <= mean <= 1.0 for mean in task)
    assert zoo.envs.tasks(BANDIT_ID, "train") == train  # fixed, not re-drawn


def test_bandit_rewards_are_bernoulli_and_regret_is_reported() -> None:
    task = (0.1, 0.9, 0.0, 1.0, 0.5, 0.2, 0.3, 0.4, 0.6, 0.7)
    env = gym.make(BANDIT_ID, task=task)
    observation, info = env.reset(seed=0)
    assert np.array_equal(observation, np.zeros(1, dtype=np.float32)) and info["task"] == task
    rewards = []
    for _ in range(2000):
        env.reset()
        _, reward, terminated, _, info = env.step(1)
        assert terminated and info["regret"] == pytest.approx(0.1)
        rewards.append(reward)
    assert 0.87 < np.mean(rewards) < 0.93
    env.reset()
    assert env.step(3)[1] == 1.0 and env.step(2)[1] == 0.0


def test_bandit_rejects_invalid_tasks() -> None:
    for bad in [(0.5,) * 9, (0.5,) * 9 + (1.5,), (0.5,) * 9 + (float("nan"),), "abc", 3, (0.5,) * 9 + ("x",)]:
        with pytest.raises(ValueError, match="task"):
            AdversarialBanditEnv(task=bad)
    env = AdversarialBanditEnv()
    with pytest.raises(ValueError, match="task"):
        env.reset(options={"task": (2.0,) * 10})


# -- tasks, splits and switching --------------------------------------------------------------------

SPLIT_SIZES = {
    "zoo/AdversarialBandit-v0": (1000, 1000),
    "zoo/DarkRoom-v0": (64, 17),
    "zoo/DarkRoomHard-v0": (231, 58),
    "zoo/DarkKeyToDoor-v0": (5184, 1296),
}


@pytest.mark.parametrize("env_id", list(SPLIT_SIZES))
def test_splits_are_disjoint_fixed_and_cover_all_tasks(env_id: str) -> None:
    train, test, every = (zoo.envs.tasks(env_id, split) for split in ("train", "test", "all"))
    assert (len(train), len(test)) == SPLIT_SIZES[env_id]
    assert not set(train) & set(test)
    assert set(train) | set(test) == set(every) and len(every) == len(set(every))
    for task in every[:5]:
        hash(task)


def test_grid_split_rules_are_the_documented_ones() -> None:
    assert zoo.envs.tasks("zoo/DarkRoom-v0", "test") == [
        (r, c) for r in range(9) for c in range(9) if (r * 9 + c) % 5 == 0
    ]
    assert len(zoo.envs.tasks("zoo/DarkRoom-v0", "all", size=5)) == 25
    for key, door in zoo.envs.tasks("zoo/DarkKeyToDoor-v0", "test")[:200]:
        assert key != door and ((key[0] * 9 + key[1]) * 81 + door[0] * 9 + door[1]) % 5 == 0


@pytest.mark.parametrize("env_id", [*GRID_IDS, BANDIT_ID])
def test_task_switching_and_train_sampling(env_id: str) -> None:
    train = set(zoo.envs.tasks(env_id, "train"))
    test_task = zoo.envs.tasks(env_id, "test")[3]
    env = gym.make(env_id)
    seen = {env.reset(seed=0)[1]["task"]} | {env.reset()[1]["task"] for _ in range(100)}
    assert seen <= train and len(seen) > 10
    _, info = env.reset(options={"task": test_task})
    assert info["task"] == test_task
    assert all(env.reset()[1]["task"] == test_task for _ in range(5))
    step_info = env.step(0)[-1]
    assert step_info["task"] == test_task
    fixed = gym.make(env_id, task=test_task)
    assert all(fixed.reset(seed=seed)[1]["task"] == test_task for seed in range(5))


def test_tasks_accept_lists_as_well_as_tuples() -> None:
    env = gym.make("zoo/DarkKeyToDoor-v0", task=[[1, 2], [3, 4]])
    assert env.reset(seed=0)[1]["task"] == ((1, 2), (3, 4))
    env = gym.make("zoo/DarkRoom-v0", task=np.array([2, 3]))
    assert env.reset(seed=0)[1]["task"] == (2, 3)


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: DarkRoomEnv(size=1), "size=1"),
        (lambda: DarkRoomEnv(size=2.5), "size=2.5"),
        (lambda: DarkRoomHardEnv(size=0), "size=0"),
        (lambda: DarkKeyToDoorEnv(size=-3), "size=-3"),
        (lambda: DarkRoomEnv(task=(9, 0)), r"task \(goal\)=\(9, 0\).*\[0, 8\]"),
        (lambda: DarkRoomEnv(task=(0, -1)), r"task \(goal\)"),
        (lambda: DarkRoomEnv(task=(1.5, 0)), r"task \(goal\)"),
        (lambda: DarkRoomEnv(task=5), r"task \(goal\)=5"),
        (lambda: DarkRoomHardEnv(task=(16, 17)), r"task \(goal\).*\[0, 16\]"),
        (lambda: DarkKeyToDoorEnv(task=((0, 0), (0, 0))), "same cell"),
        (lambda: DarkKeyToDoorEnv(task=((0, 9), (0, 0))), r"task \(key\)"),
        (lambda: DarkKeyToDoorEnv(task=((0, 1), (9, 0))), r"task \(door\)"),
        (lambda: DarkKeyToDoorEnv(task=(0, 1)), "task"),
        (lambda: DarkRoomEnv(render_mode="human"), "render_mode"),
    ],
)
def test_bad_constructor_arguments_raise_value_error(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("env_id", [*GRID_IDS, BANDIT_ID])
def test_unknown_task_in_reset_options_raises(env_id: str) -> None:
    env = gym.make(env_id)
    bad = {"zoo/DarkKeyToDoor-v0": ((3, 3), (3, 3)), BANDIT_ID: (0.5,) * 3}.get(env_id, (40, 40))
    with pytest.raises(ValueError, match=r'options\["task"\]'):
        env.reset(options={"task": bad})


@pytest.mark.parametrize("env_id", [*GRID_IDS, BANDIT_ID])
@pytest.mark.parametrize(
    "action",
    [-1, 10, 5.0, 2.0, float("nan"), np.array([1, 2]), np.array([1]), True, "1", None, np.float32(1)],
)
def test_bad_actions_raise_value_error(env_id: str, action) -> None:
    env = gym.make(env_id, disable_env_checker=True)
    env.reset(seed=0)
    n = env.action_space.n
    if isinstance(action, int) and not isinstance(action, bool) and 0 <= action < n:
        pytest.skip("valid for this env")
    with pytest.raises(ValueError, match="action"):
        env.unwrapped.step(action)


def test_render_shows_agent_and_hidden_goal() -> None:
    env = gym.make("zoo/DarkRoom-v0", task=(0, 8), render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (144, 144, 3) and frame.dtype == np.uint8
    cell = 16
    assert tuple(frame[0 * cell + 8, 8 * cell + 8]) == (60, 200, 90)  # goal, top right
    assert tuple(frame[4 * cell + 8, 4 * cell + 8]) == (230, 60, 60)  # agent, centre
    assert env.metadata["render_fps"] > 0
    key_door = gym.make("zoo/DarkKeyToDoor-v0", task=((0, 0), (8, 8)), render_mode="rgb_array")
    key_door.reset(seed=0)
    frame = key_door.render()
    assert tuple(frame[8, 8]) == (240, 200, 40) and tuple(frame[8 * cell + 8, 8 * cell + 8]) in {
        (150, 90, 220),
        (230, 60, 60),
    }
    bandit = gym.make(BANDIT_ID, render_mode="rgb_array")
    bandit.reset(seed=0)
    bandit.step(0)
    assert bandit.render().shape == (64, 160, 3)


def test_darkroom_optimal_return_matches_the_scripted_policy() -> None:
    """``DarkRoomEnv.optimal_return`` (used by the quickstart and benchmarks) equals what an optimal walk earns."""
    from zoo.envs.darkroom import DarkRoomEnv

    for goal in DarkRoomEnv.tasks("all"):
        env = gym.make("zoo/DarkRoom-v0", task=goal)
        env.reset(seed=0)
        row, col, total = 4, 4, 0.0
        for _ in range(20):
            if row != goal[0]:
                action = 1 if goal[0] < row else 3
                row += -1 if action == 1 else 1
            elif col != goal[1]:
                action = 4 if goal[1] < col else 2
                col += -1 if action == 4 else 1
            else:
                action = 0
            total += float(env.step(action)[1])
        assert total == DarkRoomEnv.optimal_return(goal), goal
    assert np.mean([DarkRoomEnv.optimal_return(g) for g in DarkRoomEnv.tasks("all")]) == pytest.approx(
        16.54, abs=0.01
    )
