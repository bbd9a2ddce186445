"""Goal environments: hindsight-relabelled rewards, goal rows, bad inputs, SB3 + HER."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import DDPG, DQN, HerReplayBuffer

import zoo.envs  # noqa: F401  (registers the environments)
from zoo.envs.bitflip import BitFlipEnv
from zoo.envs.seek import ContinuousSeekEnv, DriveSeekEnv, NoisySeekEnv

GOAL_IDS = [
    "zoo/ContinuousSeek-d5-v0",
    "zoo/ContinuousSeek-v0",
    "zoo/ContinuousSeek-d20-v0",
    "zoo/DriveSeek-v0",
    "zoo/NoisySeek-v0",
    "zoo/ContinuousSeek-d5-v1",
    "zoo/ContinuousSeek-d20-v1",
    "zoo/DriveSeek-v1",
    "zoo/NoisySeek-v1",
    "zoo/BitFlip-v0",
    "zoo/BitFlip-n40-v0",
]


def stored_rollout(env_id: str, seed: int, steps: int, policy=None) -> dict[str, np.ndarray]:
    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    achieved, desired, rewards, successes = [], [], [], []
    for step in range(steps):
        action = env.action_space.sample() if policy is None else policy(obs, step)
        obs, reward, terminated, truncated, info = env.step(action)
        achieved.append(obs["achieved_goal"])
        desired.append(obs["desired_goal"])
        rewards.append(reward)
        successes.append(info["is_success"])
        if terminated or truncated:
            obs, _ = env.reset()
    return {
        "achieved": np.array(achieved),
        "desired": np.array(desired),
        "rewards": np.array(rewards),
        "successes": np.array(successes),
        "env": env,
    }


def greedy_bitflip(obs: dict[str, np.ndarray], step: int) -> int:
    differing = np.flatnonzero(obs["achieved_goal"] != obs["desired_goal"])
    return int(differing[0]) if len(differing) else 0


def drive_towards_goal(obs: dict[str, np.ndarray], step: int) -> np.ndarray:
    return np.array([np.sin(step)], np.float32)


@pytest.mark.parametrize("env_id", GOAL_IDS)
def test_batched_compute_reward_reproduces_paid_rewards(env_id: str) -> None:
    policy = greedy_bitflip if env_id.startswith("zoo/BitFlip") else None
    data = stored_rollout(env_id, seed=3, steps=300, policy=policy)
    env = data["env"].unwrapped
    infos = np.array([{} for _ in data["rewards"]])
    recomputed = env.compute_reward(data["achieved"], data["desired"], infos)
    assert recomputed.shape == data["rewards"].shape
    np.testing.assert_array_equal(recomputed, data["rewards"])
    # A list of infos (what HerReplayBuffer passes without copy_info_dict) works too.
    np.testing.assert_array_equal(
        env.compute_reward(data["achieved"], data["desired"], [{}] * 300), recomputed
    )


@pytest.mark.parametrize("env_id", GOAL_IDS)
def test_relabelling_with_achieved_goal_gives_success_reward(env_id: str) -> None:
    data = stored_rollout(env_id, seed=4, steps=50)
    env = data["env"].unwrapped
    achieved = data["achieved"]
    if isinstance(env, (DriveSeekEnv, NoisySeekEnv)):
        relabelled = np.zeros((len(achieved), 200, 3), np.float32)
        relabelled[:, 0, 0] = 1.0
        relabelled[:, 0, 1:] = achieved
        expected = 1.0
    else:
        relabelled = achieved
        expected = 0.0
    np.testing.assert_array_equal(env.compute_reward(achieved, relabelled, None), expected)


def test_rewards_are_paid_and_successes_flagged() -> None:
    data = stored_rollout("zoo/BitFlip-v0", seed=0, steps=200, policy=greedy_bitflip)
    assert set(np.unique(data["rewards"])) == {-1.0, 0.0}
    np.testing.assert_array_equal(data["successes"], data["rewards"] == 0.0)
    env = ContinuousSeekEnv(dim=2)
    obs, _ = env.reset(seed=0)
    goal = obs["desired_goal"]
    reward = -1.0
    for _ in range(10):
        obs, reward, _, _, info = env.step(np.clip(goal - obs["achieved_goal"], -1, 1).astype(np.float32))
    assert reward == 0.0 and info["is_success"] == 1.0
    data = stored_rollout("zoo/DriveSeek-v0", seed=2, steps=400, policy=drive_towards_goal)
    assert data["rewards"].max() == 1.0 and data["rewards"].min() == 0.0
    np.testing.assert_array_equal(data["successes"], data["rewards"] > 0)


def test_drive_seek_gates_weight_rewards() -> None:
    env = DriveSeekEnv()
    desired = np.zeros((200, 3), np.float32)
    desired[0] = (0.5, 3, 4)
    desired[1] = (1.0, 7, 7)
    assert env.compute_reward(np.array([3.0, 4.0]), desired, {}) == pytest.approx(0.25)
    assert env.compute_reward(np.array([7.0, 7.0]), desired, {}) == 1.0
    assert env.compute_reward(np.array([0.0, 0.0]), desired, {}) == 0.0  # padding rows pay nothing


@pytest.mark.parametrize("env_class", [DriveSeekEnv, NoisySeekEnv])
def test_goal_rows_are_valid(env_class: type) -> None:
    env = env_class()
    counts = set()
    for seed in range(40):
        obs, info = env.reset(seed=seed)
        rows = obs["desired_goal"]
        assert rows.shape == (200, 3) and rows.dtype == np.float32
        gates = rows[:, 0]
        assert set(np.unique(gates)) <= {0.0, 1.0}
        count = int(gates.sum())
        assert 1 <= count <= 200 and info["n_goals"] == count
        assert np.all(gates[:count] == 1.0), "real goals come first"
        assert np.all(rows[count:] == 0.0), "padding rows are all zero"
        cells = rows[:count, 1:]
        assert len(np.unique(cells, axis=0)) == count, "goal cells are distinct"
        np.testing.assert_array_equal(cells, np.round(cells))
        if env_class is DriveSeekEnv:
            cell_space = env.observation_space["achieved_goal"]
            assert cells.min() >= cell_space.low.min() and cells.max() <= cell_space.high.max()
        counts.add(count)
    assert len(counts) > 5, "the number of goals varies between episodes"


@pytest.mark.parametrize(("frame", "low"), [("corner", 0.0), ("centred", -10.5)])
def test_drive_seek_position_wraps_on_the_torus(frame: str, low: float) -> None:
    env = DriveSeekEnv(frame=frame, start="random")
    env.reset(seed=0)
    wrapped = False
    for _ in range(200):
        before = env.unwrapped._position.copy()
        obs, *_ = env.step(np.array([0.3], np.float32))
        wrapped |= bool(np.any(np.abs(obs["observation"][:2] - before) > 2))
        assert np.all(low <= obs["observation"][:2]) and np.all(obs["observation"][:2] <= low + 21)
        assert obs["achieved_goal"].min() >= np.ceil(low) and obs["achieved_goal"].max() <= np.ceil(low) + 20
        assert env.observation_space.contains(obs)
    assert wrapped


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: ContinuousSeekEnv(dim=0), "dim=0"),
        (lambda: ContinuousSeekEnv(dim=2.5), "dim=2.5"),
        (lambda: BitFlipEnv(n_bits=0), "n_bits=0"),
        (lambda: BitFlipEnv(n_bits=-3), "n_bits=-3"),
        (lambda: DriveSeekEnv(render_mode="human"), "render_mode='human'"),
        (lambda: DriveSeekEnv(start="centre"), "start='centre'"),
        (lambda: DriveSeekEnv(frame="middle"), "frame='middle'"),
        (lambda: NoisySeekEnv(goal_sampling="uniform"), "goal_sampling='uniform'"),
        (lambda: ContinuousSeekEnv(success="ever"), "success='ever'"),
    ],
)
def test_bad_constructor_arguments_raise(factory, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        factory()


@pytest.mark.parametrize(
    ("env", "action", "message"),
    [
        (ContinuousSeekEnv(dim=3), np.array([0.0, 2.0, 0.0], np.float32), "outside the action space"),
        (ContinuousSeekEnv(dim=3), np.zeros(4, np.float32), "shape"),
        (ContinuousSeekEnv(dim=3), np.array([np.nan, 0.0, 0.0], np.float32), "NaN"),
        (DriveSeekEnv(), np.array([1.5], np.float32), "outside the action space"),
        (DriveSeekEnv(), np.zeros(2, np.float32), "shape"),
        (NoisySeekEnv(), np.array([np.inf, 0.0]), "NaN or inf"),
        (BitFlipEnv(n_bits=5), 5, "action=5"),
        (BitFlipEnv(n_bits=5), -1, "action=-1"),
        (BitFlipEnv(n_bits=5), 1.5, "action=1.5"),
    ],
)
def test_bad_actions_raise(env: gym.Env, action, message: str) -> None:
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(action)


def test_compute_reward_rejects_wrong_goal_shapes() -> None:
    with pytest.raises(ValueError, match="desired_goal"):
        ContinuousSeekEnv(dim=3).compute_reward(np.zeros((4, 3)), np.zeros((4, 2)), None)
    with pytest.raises(ValueError, match="desired_goal"):
        DriveSeekEnv().compute_reward(np.zeros((4, 2)), np.zeros((4, 2)), None)


@pytest.mark.parametrize(
    ("algo", "env_id"),
    [(DDPG, "zoo/ContinuousSeek-d5-v0"), (DQN, "zoo/BitFlip-v0")],
)
def test_sb3_her_trains_without_error(algo: type, env_id: str) -> None:
    model = algo(
        "MultiInputPolicy",
        gym.make(env_id),
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"},
        learning_starts=100,
        buffer_size=2_000,
        batch_size=32,
        policy_kwargs={"net_arch": [16]},
        seed=0,
    )
    model.learn(400)
    assert model.replay_buffer.size() > 0
    action, _ = model.predict(model.env.reset(), deterministic=True)
    assert model.env.action_space.contains(action[0])
