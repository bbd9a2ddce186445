"""ReenGAGE critics: goal gradients, losses, parent equivalence, learning, save/load, bad input."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import DDPG, DQN, SAC, TD3, HerReplayBuffer
from stable_baselines3.common.envs import BitFlippingEnv
from stable_baselines3.common.logger import configure as configure_logger
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from torch import nn

import zoo  # noqa: F401  (registers the environments)
from zoo.agents import MultiReenGAGE, ReenGAGEDDPG, ReenGAGEDQN, ReenGAGESAC, ReenGAGETD3
from zoo.agents.reengage import MultiGoalPolicy, cell_goal_rewards
from zoo.agents.reengage.loss import reengage_gradient_loss
from zoo.envs.seek import ContinuousSeekEnv

SEEK = "zoo/ContinuousSeek-d5-v0"
DRIVE = "zoo/DriveSeek-v0"
BITFLIP = "zoo/BitFlip-v0"
# Small buffers: HerReplayBuffer spends seconds allocating per-slot info lists for 1e6 slots.
HER = {"replay_buffer_class": HerReplayBuffer, "buffer_size": 5000}


def tiny() -> dict[str, Any]:
    """Tiny networks (a fresh dict each time: SB3 algorithms write into ``policy_kwargs``)."""
    return {"policy_kwargs": {"net_arch": [16]}}


def tiny_multi() -> dict[str, Any]:
    return {"policy_kwargs": {"net_arch": [16], "encoder_arch": [8], "features_dim": 8}}


def seek_env(dim: int = 3) -> gym.Env:
    return gym.make(SEEK, dim=dim)


class FixedBuffer:
    """Replay-buffer stand-in whose ``sample`` returns one given batch."""

    def __init__(self, batch: DictReplayBufferSamples) -> None:
        self.batch = batch

    def sample(self, batch_size: int, env: Any = None) -> DictReplayBufferSamples:
        return self.batch


def goal_batch(
    batch_size: int, dim: int, action_dim: int | None = None, dtype: th.dtype = th.float32, seed: int = 0
) -> DictReplayBufferSamples:
    """Random transitions of a goal env whose observation is the achieved goal (same goal for s and s')."""
    generator = th.Generator().manual_seed(seed)

    def rand(*shape: int, scale: float = 1.0) -> th.Tensor:
        return (th.rand(*shape, generator=generator, dtype=th.float64) * 2 - 1).mul(scale).to(dtype)

    achieved, next_achieved, goal = rand(batch_size, dim), rand(batch_size, dim), rand(batch_size, dim)
    rewards = -(th.arange(batch_size) % 3 != 0).to(dtype).reshape(-1, 1)  # mixes -1 and 0
    dones = (th.arange(batch_size) % 4 == 1).to(dtype).reshape(-1, 1)
    return DictReplayBufferSamples(
        observations={"observation": achieved, "achieved_goal": achieved, "desired_goal": goal},
        actions=rand(batch_size, action_dim or dim, scale=0.3),
        next_observations={
            "observation": next_achieved,
            "achieved_goal": next_achieved,
            "desired_goal": goal.clone(),
        },
        dones=dones,
        rewards=rewards,
    )


# ---------------------------------------------------------------------------------------------
# Analytic critics: goal gradients and losses equal hand-computed values
# ---------------------------------------------------------------------------------------------


class QuadraticCritic(nn.Module):
    """``Q_k(s, a, g) = -w_k * ||g - achieved - a||**2``, so ``grad_g Q_k = -2 w_k (g - achieved - a)``."""

    def __init__(self, weights: list[float]) -> None:
        super().__init__()
        self.w = nn.Parameter(th.tensor(weights))
        self.optimizer = th.optim.SGD(self.parameters(), lr=0.0)

    def forward(self, obs: dict[str, th.Tensor], actions: th.Tensor) -> tuple[th.Tensor, ...]:
        offset = obs["desired_goal"] - obs["achieved_goal"] - actions
        squared = offset.pow(2).sum(dim=1, keepdim=True)
        return tuple(-weight * squared for weight in self.w)

    def q1_forward(self, obs: dict[str, th.Tensor], actions: th.Tensor) -> th.Tensor:
        return self(obs, actions)[0]


class LinearActor(nn.Module):
    """``pi(s, g) = k * (g - achieved)``."""

    def __init__(self, gain: float) -> None:
        super().__init__()
        self.k = nn.Parameter(th.tensor(gain))

    def forward(self, obs: dict[str, th.Tensor]) -> th.Tensor:
        return self.k * (obs["desired_goal"] - obs["achieved_goal"])


def test_td3_goal_gradient_and_losses_match_hand_computation():
    dim, gamma, gradient_reg = 3, 0.9, 0.7
    model = ReenGAGETD3(
        "MultiInputPolicy",
        seek_env(dim),
        gradient_reg=gradient_reg,
        gamma=gamma,
        policy_delay=2,  # one update: no actor step, so the critic's .grad is the critic loss's alone
        target_noise_clip=0.0,  # no smoothing noise
        learning_starts=0,
        **tiny(),
    )
    model.set_logger(configure_logger(None, []))
    critic, critic_target = QuadraticCritic([0.5, 0.7]), QuadraticCritic([0.4, 0.6])
    gain = 0.3
    model.critic, model.critic_target, model.actor_target = critic, critic_target, LinearActor(gain)
    batch = goal_batch(8, dim)
    model.replay_buffer = FixedBuffer(batch)  # type: ignore[assignment]
    model.train(gradient_steps=1, batch_size=8)

    obs, next_obs = batch.observations, batch.next_observations
    r, done = batch.rewards, batch.dones
    next_offset = next_obs["desired_goal"] - next_obs["achieved_goal"]  # action k * offset: |a| < 1, no clip
    next_squared = ((1 - gain) * next_offset).pow(2).sum(1, keepdim=True)
    y = r + gamma * (1 - done) * (-0.6 * next_squared)  # min over target critics: the larger weight
    grad_y = gamma * (1 - done) * (-0.6) * 2 * (1 - gain) ** 2 * next_offset
    offset = obs["desired_goal"] - obs["achieved_goal"] - batch.actions
    squared = offset.pow(2).sum(1, keepdim=True)
    td_loss = sum(((-w * squared - y) ** 2).mean() for w in (0.5, 0.7))
    grad_terms = [(-r) * (-2 * w * offset - grad_y) ** 2 for w in (0.5, 0.7)]
    grad_loss = sum(term.mean() for term in grad_terms)
    logged = model.logger.name_to_value
    assert logged["train/critic_td_loss"] == pytest.approx(float(td_loss), rel=1e-5)
    assert logged["train/critic_grad_loss"] == pytest.approx(float(grad_loss), rel=1e-5)
    assert logged["train/critic_loss"] == pytest.approx(float(td_loss + gradient_reg * grad_loss), rel=1e-5)
    # The gradient term is differentiated w.r.t. the critic's parameters (create_graph=True).
    expected_grad = [
        float(
            (2 * (-w * squared - y) * (-squared)).mean()
            + gradient_reg * ((-r) * 2 * (-2 * w * offset - grad_y) * (-2 * offset)).mean()
        )
        for w in (0.5, 0.7)
    ]
    assert critic.w.grad is not None
    np.testing.assert_allclose(critic.w.grad.numpy(), expected_grad, rtol=1e-5)
    assert critic_target.w.grad is None  # the target is a constant


def test_gradient_loss_weights_only_unreached_goals():
    critic_gradient = th.tensor([[1.0, 2.0], [3.0, 4.0]])
    target_gradient = th.tensor([[0.0, 0.0], [1.0, 1.0]])
    rewards = th.tensor([[-1.0], [0.0]])
    loss = reengage_gradient_loss(critic_gradient, target_gradient, rewards)
    assert float(loss) == pytest.approx((1.0 + 4.0) / 4)  # second sample reached its goal: weight 0


class LinearQNetwork(nn.Module):
    """``Q(s, ., g) = W (g - achieved)``, so ``grad_g Q_a = W_a``."""

    def __init__(self, weight: th.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, obs: dict[str, th.Tensor]) -> th.Tensor:
        return (obs["desired_goal"] - obs["achieved_goal"]) @ self.weight.T


@pytest.mark.parametrize("soft_value", ["softmax_mean", "logsumexp"])
def test_dqn_soft_target_gradient_matches_hand_computation(soft_value):
    n_bits, gamma, gradient_reg, temperature = 4, 0.8, 0.5, 0.3
    model = ReenGAGEDQN(
        "MultiInputPolicy",
        gym.make(BITFLIP, n_bits=n_bits),
        gradient_reg=gradient_reg,
        gradient_temperature=temperature,
        soft_value=soft_value,
        gamma=gamma,
        learning_starts=0,
        **tiny(),
    )
    model.set_logger(configure_logger(None, []))
    generator = th.Generator().manual_seed(3)
    weight, target_weight = (
        th.randn(n_bits, n_bits, generator=generator),
        th.randn(n_bits, n_bits, generator=generator),
    )
    model.q_net, model.q_net_target = LinearQNetwork(weight.clone()), LinearQNetwork(target_weight.clone())
    batch = goal_batch(6, n_bits, action_dim=1)
    batch = batch._replace(actions=th.tensor([[0], [1], [2], [3], [1], [0]]))
    model.replay_buffer = FixedBuffer(batch)  # type: ignore[assignment]
    model.train(gradient_steps=1, batch_size=6)

    obs, next_obs, r, done = batch.observations, batch.next_observations, batch.rewards, batch.dones
    next_q = (next_obs["desired_goal"] - next_obs["achieved_goal"]) @ target_weight.T
    y = r + gamma * (1 - done) * next_q.max(dim=1, keepdim=True).values
    q = ((obs["desired_goal"] - obs["achieved_goal"]) @ weight.T).gather(1, batch.actions)
    softmax = th.softmax(next_q / temperature, dim=1)
    mean_weight = softmax @ target_weight  # gradient of tau * logsumexp(Q'/tau)
    if soft_value == "softmax_mean":
        # d/dx [sum_a p_a Q_a] = sum_a p_a w_a + sum_a Q_a p_a (w_a - mean_weight) / tau
        spread = target_weight.unsqueeze(0) - mean_weight.unsqueeze(1)
        mean_weight = mean_weight + ((softmax * next_q).unsqueeze(2) * spread).sum(1) / temperature
    grad_y = gamma * (1 - done) * mean_weight
    grad_q = weight[batch.actions.squeeze(1)]
    td_loss = nn.functional.smooth_l1_loss(q, y)
    grad_loss = ((-r) * (grad_q - grad_y) ** 2).mean()
    logged = model.logger.name_to_value
    assert logged["train/critic_td_loss"] == pytest.approx(float(td_loss), rel=1e-5)
    assert logged["train/critic_grad_loss"] == pytest.approx(float(grad_loss), rel=1e-5)
    assert logged["train/loss"] == pytest.approx(float(td_loss + gradient_reg * grad_loss), rel=1e-5)


# ---------------------------------------------------------------------------------------------
# Finite differences agree with autograd for the target gradient (real MLPs; SB3's feature
# extractors cast to float32, so smooth tanh networks and a float32-sized step are used)
# ---------------------------------------------------------------------------------------------


def finite_difference(function: Any, goal: th.Tensor, step: float) -> th.Tensor:
    """Central differences of the per-sample outputs of ``function(goal)`` w.r.t. each goal entry."""
    gradient = th.zeros_like(goal)
    flat = gradient.reshape(goal.shape[0], -1)
    for index in range(flat.shape[1]):
        delta = th.zeros_like(goal).reshape(goal.shape[0], -1)
        delta[:, index] = step
        delta = delta.reshape(goal.shape)
        flat[:, index] = ((function(goal + delta) - function(goal - delta)) / (2 * step)).reshape(-1)
    return gradient


FD_STEP = 1e-2
FD_TOLERANCE = {"rtol": 1e-2, "atol": 2e-4}


def with_next_goal(batch: DictReplayBufferSamples, goal: th.Tensor) -> DictReplayBufferSamples:
    return batch._replace(next_observations={**batch.next_observations, "desired_goal": goal})


@pytest.mark.parametrize("cls", [ReenGAGEDDPG, ReenGAGETD3])
def test_td3_target_gradient_matches_finite_differences(cls):
    model = cls(
        "MultiInputPolicy", seek_env(3), seed=0, policy_kwargs={"net_arch": [16], "activation_fn": nn.Tanh}
    )
    batch = goal_batch(5, 3)

    def target(goal: th.Tensor) -> th.Tensor:
        th.manual_seed(7)  # TD3's smoothing noise: the same draw for every evaluation
        return model._critic_goal_target(with_next_goal(batch, goal), model.gamma)[0]

    th.manual_seed(7)
    _, autograd_gradient = model._critic_goal_target(batch, model.gamma)
    numeric = finite_difference(target, batch.next_observations["desired_goal"], FD_STEP)
    assert autograd_gradient.abs().max() > 1e-2  # the check is not vacuous
    th.testing.assert_close(autograd_gradient, numeric, **FD_TOLERANCE)


def test_sac_target_gradient_matches_finite_differences():
    # One critic: the min over two target critics has kinks that a finite step may straddle.
    policy_kwargs = {"net_arch": [16], "activation_fn": nn.Tanh, "n_critics": 1}
    model = ReenGAGESAC("MultiInputPolicy", seek_env(3), seed=0, policy_kwargs=policy_kwargs)
    batch = goal_batch(5, 3)
    ent_coef = th.tensor(0.3)

    def target(goal: th.Tensor) -> th.Tensor:
        th.manual_seed(11)  # the reparameterisation noise is held fixed
        return model._critic_goal_target(with_next_goal(batch, goal), model.gamma, ent_coef)[0]

    th.manual_seed(11)
    _, autograd_gradient = model._critic_goal_target(batch, model.gamma, ent_coef)
    numeric = finite_difference(target, batch.next_observations["desired_goal"], FD_STEP)
    assert autograd_gradient.abs().max() > 1e-2
    th.testing.assert_close(autograd_gradient, numeric, **FD_TOLERANCE)


def test_dqn_target_gradient_matches_finite_differences():
    model = ReenGAGEDQN(
        "MultiInputPolicy",
        gym.make(BITFLIP, n_bits=4),
        seed=0,
        policy_kwargs={"net_arch": [16], "activation_fn": nn.Tanh},
        soft_value="logsumexp",
    )
    batch = goal_batch(5, 4, action_dim=1)
    tau = model.gradient_temperature

    def soft_target(goal: th.Tensor) -> th.Tensor:
        q = model.q_net_target({**batch.next_observations, "desired_goal": goal})
        return model.gamma * (1 - batch.dones) * tau * th.logsumexp(q / tau, dim=1, keepdim=True)

    autograd_gradient = model.soft_target_gradient(batch, model.gamma)
    numeric = finite_difference(soft_target, batch.next_observations["desired_goal"], FD_STEP)
    assert autograd_gradient.abs().max() > 1e-2
    th.testing.assert_close(autograd_gradient, numeric, **FD_TOLERANCE)


def multi_goal_batch(batch_size: int, dtype: th.dtype = th.float64) -> DictReplayBufferSamples:
    """DriveSeek-shaped transitions: a few real goals (b = 1), one weighted goal, padding rows."""
    generator = th.Generator().manual_seed(5)
    n_goals = 200
    rows = th.zeros(batch_size, n_goals, 3, dtype=dtype)
    rows[:, :4, 1:] = th.randint(0, 21, (batch_size, 4, 2), generator=generator).to(dtype)
    rows[:, :3, 0] = 1.0
    rows[:, 3, 0] = 0.5
    next_cell = th.randint(0, 21, (batch_size, 2), generator=generator).to(dtype)
    next_cell[0] = rows[0, 1, 1:]  # sample 0 lands on a real goal
    next_cell[1] = rows[1, 3, 1:]  # sample 1 lands on the weighted goal
    cell = th.randint(0, 21, (batch_size, 2), generator=generator).to(dtype)

    def observation(position: th.Tensor) -> th.Tensor:
        heading = th.rand(batch_size, 1, generator=generator, dtype=dtype) * 6
        return th.cat([position, th.cos(heading), th.sin(heading)], dim=1)

    obs = {"observation": observation(cell), "achieved_goal": cell, "desired_goal": rows}
    next_obs = {
        "observation": observation(next_cell),
        "achieved_goal": next_cell,
        "desired_goal": rows.clone(),
    }
    rewards = (rows[..., 0] ** 2 * cell_goal_rewards(next_cell, rows)).sum(1, keepdim=True)
    actions = th.rand(batch_size, 1, generator=generator, dtype=dtype) * 2 - 1
    return DictReplayBufferSamples(obs, actions, next_obs, th.zeros(batch_size, 1, dtype=dtype), rewards)


def test_multi_weight_gradient_matches_finite_differences():
    # The first release's option: the goal gradient also flows through pi' (see
    # test_reengage_reference.py for the paper's default, pi' held fixed).
    kwargs = tiny_multi()
    kwargs["policy_kwargs"]["actor_goal_gradient"] = True
    model = MultiReenGAGE("MultiGoalPolicy", gym.make(DRIVE), seed=0, **kwargs)
    model.policy.double()
    batch = multi_goal_batch(4)
    goal_rewards = model.goal_rewards(batch)
    assert float(goal_rewards.sum()) >= 2  # the batch does contain rewarded goals

    def total_target(weights: th.Tensor) -> th.Tensor:
        # y(b) = sum_i b_i^2 R_i + gamma (1 - done) Q'(s', pi'(s', g(b)), g(b)), for the 4 goal rows used.
        rows = batch.next_observations["desired_goal"].clone()
        rows[:, :4, 0] = weights
        reward = (rows[..., 0] ** 2 * goal_rewards).sum(1, keepdim=True)
        moved = with_next_goal(batch, rows)._replace(rewards=reward)
        return model._target_and_weight_gradient(moved, model.gamma, goal_rewards)[0]

    _, autograd_gradient = model._target_and_weight_gradient(batch, model.gamma, goal_rewards)
    numeric = finite_difference(total_target, batch.next_observations["desired_goal"][:, :4, 0].clone(), 1e-6)
    th.testing.assert_close(autograd_gradient[:, :4], numeric, rtol=1e-5, atol=1e-7)
    th.testing.assert_close(autograd_gradient[:, 4:], th.zeros_like(autograd_gradient[:, 4:]))  # padding


# ---------------------------------------------------------------------------------------------
# gradient_reg = 0 is the parent algorithm, bit for bit
# ---------------------------------------------------------------------------------------------


def make_pair(name: str) -> tuple[Any, Any]:
    """Factories of (parent, ReenGAGE with gradient_reg=0) built with the same seed and env."""
    common = {"seed": 3, "learning_starts": 50, "batch_size": 16}
    if name in ("ddpg", "td3", "sac"):
        parent_cls = {"ddpg": DDPG, "td3": TD3, "sac": SAC}[name]
        cls = {"ddpg": ReenGAGEDDPG, "td3": ReenGAGETD3, "sac": ReenGAGESAC}[name]
        return (
            lambda: parent_cls("MultiInputPolicy", seek_env(), **HER, **common, **tiny()),
            lambda: cls("MultiInputPolicy", seek_env(), gradient_reg=0.0, **HER, **common, **tiny()),
        )
    if name == "dqn":
        bitflip = {"train_freq": 1, **HER, **common, **tiny()}
        return (
            lambda: DQN("MultiInputPolicy", gym.make(BITFLIP, n_bits=6), **bitflip),
            lambda: ReenGAGEDQN("MultiInputPolicy", gym.make(BITFLIP, n_bits=6), gradient_reg=0.0, **bitflip),
        )
    ddpg_like = {"policy_delay": 1, "target_policy_noise": 0.1, "target_noise_clip": 0.0}
    return (
        lambda: TD3(
            MultiGoalPolicy,
            gym.make(DRIVE),
            **ddpg_like,
            **common,
            buffer_size=5000,
            policy_kwargs={**tiny_multi()["policy_kwargs"], "n_critics": 1},
        ),
        lambda: MultiReenGAGE(
            "MultiGoalPolicy", gym.make(DRIVE), gradient_reg=0.0, buffer_size=5000, **common, **tiny_multi()
        ),
    )


@pytest.mark.parametrize("name", ["ddpg", "td3", "sac", "dqn", "multi"])
def test_zero_gradient_reg_reproduces_parent_bit_for_bit(name):
    make_parent, make_reengage = make_pair(name)
    steps = 120
    # Build and train one after the other: SB3 seeds the global torch RNG at construction.
    parent = make_parent().learn(steps)
    reengage = make_reengage().learn(steps)
    parent_state, reengage_state = parent.policy.state_dict(), reengage.policy.state_dict()
    assert parent_state.keys() == reengage_state.keys()
    for key, value in parent_state.items():
        assert th.equal(value, reengage_state[key]), key
    assert reengage.logger.name_to_value["train/critic_td_loss"] == pytest.approx(
        parent.logger.name_to_value["train/critic_loss" if name != "dqn" else "train/loss"]
    )


def test_positive_gradient_reg_changes_the_update_and_logs_both_terms():
    common = {"seed": 3, "learning_starts": 50, "batch_size": 16, **HER}
    parent = DDPG("MultiInputPolicy", seek_env(), **common, **tiny()).learn(100)
    model = ReenGAGEDDPG("MultiInputPolicy", seek_env(), gradient_reg=0.5, **common, **tiny()).learn(100)
    logged = model.logger.name_to_value
    assert {"train/critic_td_loss", "train/critic_grad_loss", "train/critic_loss", "train/actor_loss"} <= set(
        logged
    )
    assert logged["train/critic_grad_loss"] > 0
    assert any(
        not th.equal(a, b)
        for a, b in zip(parent.policy.state_dict().values(), model.policy.state_dict().values())
    )


# ---------------------------------------------------------------------------------------------
# Learning
# ---------------------------------------------------------------------------------------------


def success_rate(model: Any, env_id: str, episodes: int, **env_kwargs: Any) -> float:
    env = gym.make(env_id, **env_kwargs)
    successes = 0
    for episode in range(episodes):
        obs, _ = env.reset(seed=1000 + episode)
        done, success = False, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = env.step(action)
            success = success or bool(info["is_success"])
            done = terminated or truncated
        successes += success
    return successes / episodes


def mean_return(model: Any, env_id: str, episodes: int) -> float:
    env = gym.make(env_id)
    total = 0.0
    for episode in range(episodes):
        obs, _ = env.reset(seed=2000 + episode)
        done = False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
    return total / episodes


@pytest.mark.slow
def test_reengage_ddpg_solves_continuous_seek_d5():
    dim = 5
    model = ReenGAGEDDPG(
        "MultiInputPolicy",
        SEEK,
        gradient_reg=0.2,
        replay_buffer_class=HerReplayBuffer,
        buffer_size=10_000,
        learning_starts=500,
        batch_size=128,
        gamma=0.9,
        action_noise=NormalActionNoise(np.zeros(dim), 0.2 * np.ones(dim)),
        policy_kwargs={"net_arch": [64, 64]},
        seed=0,
    )
    model.learn(4000)
    assert success_rate(model, SEEK, 20) >= 0.8


@pytest.mark.slow
def test_multi_reengage_improves_drive_seek_return():
    model = MultiReenGAGE(
        "MultiGoalPolicy",
        DRIVE,
        gradient_reg=0.2,
        buffer_size=10_000,
        learning_starts=500,
        batch_size=32,
        gamma=0.9,
        action_noise=NormalActionNoise(np.zeros(1), 0.3 * np.ones(1)),
        policy_kwargs={"net_arch": [64, 64], "encoder_arch": [32], "features_dim": 32},
        seed=0,
    )
    before = mean_return(model, DRIVE, 10)
    model.learn(2000)
    after = mean_return(model, DRIVE, 10)
    assert after > before


# ---------------------------------------------------------------------------------------------
# Save / load
# ---------------------------------------------------------------------------------------------


def trained(name: str) -> tuple[Any, gym.Env]:
    common = {"seed": 1, "learning_starts": 30, "batch_size": 8}
    if name == "dqn":
        env = gym.make(BITFLIP, n_bits=5)
        return ReenGAGEDQN("MultiInputPolicy", env, train_freq=1, **HER, **common, **tiny()).learn(60), env
    if name == "multi":
        env = gym.make(DRIVE)
        return MultiReenGAGE("MultiGoalPolicy", env, buffer_size=5000, **common, **tiny_multi()).learn(
            60
        ), env
    cls = {"ddpg": ReenGAGEDDPG, "td3": ReenGAGETD3, "sac": ReenGAGESAC}[name]
    env = seek_env()
    return cls("MultiInputPolicy", env, gradient_reg=0.3, **HER, **common, **tiny()).learn(60), env


AGENTS = ["ddpg", "td3", "sac", "dqn", "multi"]


def assert_same_actions(model: Any, loaded: Any, env: gym.Env) -> None:
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        expected, _ = model.predict(obs, deterministic=True)
        actual, _ = loaded.predict(obs, deterministic=True)
        np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", AGENTS)
def test_save_load_round_trip(name, tmp_path):
    model, env = trained(name)
    path = tmp_path / "model.zip"
    model.save(path)
    loaded = type(model).load(path, env=env)
    assert loaded.gradient_reg == model.gradient_reg
    assert_same_actions(model, loaded, env)
    # Training continues (the replay buffer is not saved: refill it past one episode first).
    loaded.set_env(env)
    loaded.learning_starts = loaded.num_timesteps + 45
    loaded.learn(60, reset_num_timesteps=False)
    assert loaded.logger.name_to_value["train/critic_td_loss"] >= 0


@pytest.mark.parametrize("name", AGENTS)
def test_hub_round_trip(name, tmp_path):
    hub = pytest.importorskip("zoo.hub")
    if not hasattr(hub, "save_agent") or not hasattr(hub, "load_agent"):
        pytest.skip("zoo.hub.save_agent/load_agent are not available")
    model, env = trained(name)
    hub.save_agent(model, tmp_path / "agent")
    loaded = hub.load_agent(tmp_path / "agent", device="cpu")
    assert type(loaded) is type(model)
    assert loaded.gradient_reg == model.gradient_reg
    assert_same_actions(model, loaded, env)


# ---------------------------------------------------------------------------------------------
# Bad configurations
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [ReenGAGEDDPG, ReenGAGETD3, ReenGAGESAC])
def test_shared_features_extractor_is_refused(cls):
    with pytest.raises(ValueError, match="share_features_extractor"):
        cls("MultiInputPolicy", seek_env(), policy_kwargs={"share_features_extractor": True})


def test_multi_shared_features_extractor_is_refused():
    with pytest.raises(ValueError, match="share_features_extractor"):
        MultiReenGAGE("MultiGoalPolicy", gym.make(DRIVE), policy_kwargs={"share_features_extractor": True})


@pytest.mark.parametrize("cls", [ReenGAGEDDPG, ReenGAGETD3, ReenGAGESAC, MultiReenGAGE])
@pytest.mark.parametrize("value", [-0.1, math.nan, "big"])
def test_bad_gradient_reg_is_refused(cls, value):
    env = gym.make(DRIVE) if cls is MultiReenGAGE else seek_env()
    policy = "MultiGoalPolicy" if cls is MultiReenGAGE else "MultiInputPolicy"
    with pytest.raises(ValueError, match="gradient_reg"):
        cls(policy, env, gradient_reg=value)


def test_bad_dqn_arguments_are_refused():
    with pytest.raises(ValueError, match="gradient_reg"):
        ReenGAGEDQN("MultiInputPolicy", gym.make(BITFLIP), gradient_reg=-1)
    with pytest.raises(ValueError, match="gradient_temperature"):
        ReenGAGEDQN("MultiInputPolicy", gym.make(BITFLIP), gradient_temperature=-0.1)
    with pytest.raises(ValueError, match="gradient_temperature"):
        ReenGAGEDQN("MultiInputPolicy", gym.make(BITFLIP), gradient_temperature=0.0, soft_value="logsumexp")
    with pytest.raises(ValueError, match="soft_value"):
        ReenGAGEDQN("MultiInputPolicy", gym.make(BITFLIP), soft_value="max")


@pytest.mark.parametrize("cls", [ReenGAGEDDPG, ReenGAGETD3, ReenGAGESAC])
def test_env_without_goal_dict_is_refused(cls):
    with pytest.raises(ValueError, match="desired_goal"):
        cls("MlpPolicy", gym.make("Pendulum-v1"))


def test_discrete_env_without_goal_dict_is_refused():
    with pytest.raises(ValueError, match="desired_goal"):
        ReenGAGEDQN("MlpPolicy", gym.make("CartPole-v1"))


def test_multi_needs_goal_rows():
    with pytest.raises(ValueError, match="desired_goal"):
        MultiReenGAGE("MultiGoalPolicy", seek_env())
    with pytest.raises(ValueError, match="replay_buffer_class"):
        MultiReenGAGE("MultiGoalPolicy", gym.make(DRIVE), replay_buffer_class=HerReplayBuffer)


class PositiveRewardSeek(ContinuousSeekEnv):
    """ContinuousSeek paying +1 on the goal and 0 elsewhere: not what ReenGAGE's weighting needs."""

    def compute_reward(self, achieved_goal: Any, desired_goal: Any, info: Any) -> np.ndarray:
        return super().compute_reward(achieved_goal, desired_goal, info) + 1.0


def test_rewards_outside_minus_one_zero_are_refused():
    env = gym.wrappers.TimeLimit(PositiveRewardSeek(dim=2), 10)
    model = ReenGAGEDDPG("MultiInputPolicy", env, learning_starts=20, batch_size=16, **HER, **tiny())
    with pytest.raises(ValueError, match=r"\{-1, 0\}"):
        model.learn(60)


def test_multi_refuses_a_goal_reward_that_does_not_reproduce_the_rewards():
    def wrong(achieved: th.Tensor, rows: th.Tensor) -> th.Tensor:
        return th.ones(rows.shape[:2], dtype=rows.dtype)

    model = MultiReenGAGE(
        "MultiGoalPolicy",
        gym.make(DRIVE),
        goal_reward_fn=wrong,
        learning_starts=20,
        batch_size=8,
        **tiny_multi(),
    )
    with pytest.raises(ValueError, match="goal_reward_fn"):
        model.learn(40)


def test_sb3_bit_flipping_env_works_with_multibinary_goals():
    env = BitFlippingEnv(n_bits=4, continuous=True, max_steps=4)
    model = ReenGAGEDDPG("MultiInputPolicy", env, learning_starts=20, batch_size=8, **HER, **tiny())
    model.learn(40)
    assert model.logger.name_to_value["train/critic_grad_loss"] >= 0


@pytest.mark.parametrize("env_id", [DRIVE, "zoo/NoisySeek-v0"])
def test_multi_reengage_trains_as_td3_on_both_multi_goal_envs(env_id):
    td3 = {"policy_delay": 2, "target_policy_noise": 0.2, "target_noise_clip": 0.5}
    policy_kwargs = {**tiny_multi()["policy_kwargs"], "n_critics": 2}
    model = MultiReenGAGE(
        "MultiGoalPolicy",
        gym.make(env_id),
        buffer_size=1000,
        learning_starts=45,
        batch_size=8,
        policy_kwargs=policy_kwargs,
        **td3,
    ).learn(60)
    assert len(model.critic.q_networks) == 2
    logged = model.logger.name_to_value
    assert math.isfinite(logged["train/critic_grad_loss"]) and "train/actor_loss" in logged
    # The actor reads the critic's encoder but owns none of its parameters.
    actor_parameters = {id(p) for p in model.actor.parameters()}
    assert not actor_parameters & {id(p) for p in model.critic.encoder.parameters()}


# ---------------------------------------------------------------------------------------------
# CUDA
# ---------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("name", AGENTS)
def test_agents_train_on_cuda(name):
    common = {"seed": 1, "learning_starts": 30, "batch_size": 8, "device": "cuda"}
    if name == "dqn":
        model = ReenGAGEDQN(
            "MultiInputPolicy", gym.make(BITFLIP, n_bits=5), train_freq=1, **HER, **common, **tiny()
        )
    elif name == "multi":
        model = MultiReenGAGE("MultiGoalPolicy", gym.make(DRIVE), buffer_size=5000, **common, **tiny_multi())
    else:
        cls = {"ddpg": ReenGAGEDDPG, "td3": ReenGAGETD3, "sac": ReenGAGESAC}[name]
        model = cls("MultiInputPolicy", seek_env(), **HER, **common, **tiny())
    model.learn(60)
    assert model.device.type == "cuda"
    assert math.isfinite(model.logger.name_to_value["train/critic_grad_loss"])
