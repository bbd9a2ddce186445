"""Kickstarted PPO / A2C / RecurrentPPO / MaskablePPO (Schmitt et al. 2018)."""

from __future__ import annotations

import math
import zipfile
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import MaskablePPO
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

import zoo.envs  # noqa: F401  (registers zoo/ ids)
from zoo.agents import KickstartedA2C, KickstartedMaskablePPO, KickstartedPPO, KickstartedRecurrentPPO
from zoo.agents.common.schedules import (
    ConstantSchedule,
    ExponentialSchedule,
    LinearSchedule,
    coefficient_value,
    parse_schedule,
)
from zoo.agents.kickstart.distill import kickstart_divergence

SIZE = 9
MOVES = {0: (0, 0), 1: (-1, 0), 2: (0, 1), 3: (1, 0), 4: (0, -1)}


def _best_action(cell: int, goal: tuple[int, int], size: int = SIZE) -> int:
    row, col = divmod(cell, size)
    if row > goal[0]:
        return 1
    if row < goal[0]:
        return 3
    if col < goal[1]:
        return 2
    if col > goal[1]:
        return 4
    return 0


def _table_policy(model: PPO, table: np.ndarray, scale: float = 20.0) -> PPO:
    """Make a linear policy (net_arch pi=[]) act by a lookup table: the input is a one-hot."""
    action_net = model.policy.action_net
    with th.no_grad():
        action_net.weight.zero_()
        action_net.bias.zero_()
        for row, action in enumerate(table):
            action_net.weight[int(action), row] = scale
    return model


def _darkroom_teacher(goal: tuple[int, int]) -> PPO:
    """An SB3 PPO whose policy walks straight to ``goal`` (a scripted-competent teacher)."""
    teacher = PPO("MlpPolicy", gym.make("zoo/DarkRoom-v0", task=goal), policy_kwargs={"net_arch": {"pi": [], "vf": [8]}})
    table = np.array([_best_action(cell, goal) for cell in range(SIZE * SIZE)])
    return _table_policy(teacher, table)


def _multitask_env(tasks: list[tuple[int, int]], seed: int = 0):
    from zoo.envs.sb3 import SB3VecEnv
    from zoo.envs.vector import make_multitask_vec_env

    return SB3VecEnv(make_multitask_vec_env("zoo/DarkRoom-v0", tasks, task_in_obs=True, seed=seed))


def _params_equal(a, b) -> bool:
    state_a, state_b = a.policy.state_dict(), b.policy.state_dict()
    return state_a.keys() == state_b.keys() and all(th.equal(state_a[k], state_b[k]) for k in state_a)


# --------------------------------------------------------------------------- the term itself
def test_term_equals_hand_computed_cross_entropy():
    teacher = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, seed=1)
    student = KickstartedPPO(
        "MlpPolicy", "CartPole-v1", teacher=teacher, kickstart_coef=0.7, policy_kwargs={"net_arch": [8]}, seed=2
    )
    obs = th.as_tensor(np.random.default_rng(0).normal(size=(6, 4)), dtype=th.float32)
    with th.no_grad():
        p_teacher = teacher.policy.get_distribution(obs).distribution.probs
    student_dist = student.policy.get_distribution(obs)
    log_q = th.log(student_dist.distribution.probs).detach()
    expected = 0.7 * float(np.mean([-sum(float(p_teacher[i, a] * log_q[i, a]) for a in range(2)) for i in range(6)]))
    coefficients = student._kickstart_begin()
    term = student._kickstart_term(coefficients, SimpleNamespace(observations=obs), student_dist)
    assert term is not None and term.requires_grad
    assert term.item() == pytest.approx(expected, rel=1e-5)
    assert student._kickstart_stats["train/kickstart_loss"][0] == pytest.approx(expected / 0.7, rel=1e-5)

    # "kl": the teacher's entropy is subtracted, the gradient is the same.
    student.kickstart_loss = "kl"
    entropy = float(-(p_teacher * th.log(p_teacher)).sum(-1).mean())
    kl_term = student._kickstart_term(coefficients, SimpleNamespace(observations=obs), student_dist)
    assert kl_term.item() == pytest.approx(expected - 0.7 * entropy, rel=1e-4, abs=1e-6)
    params = list(student.policy.action_net.parameters())
    grad_ce = th.autograd.grad(term, params, retain_graph=True)
    grad_kl = th.autograd.grad(kl_term, params)
    for g1, g2 in zip(grad_ce, grad_kl):
        assert th.allclose(g1, g2, atol=1e-6)


def test_gaussian_and_multidiscrete_closed_forms():
    rng = th.Generator().manual_seed(0)
    mean_t, mean_s = th.randn(5, 3, generator=rng), th.randn(5, 3, generator=rng)
    std_t, std_s = th.rand(5, 3, generator=rng) + 0.2, th.rand(5, 3, generator=rng) + 0.2
    teacher, student = th.distributions.Normal(mean_t, std_t), th.distributions.Normal(mean_s, std_s)
    expected_kl = th.distributions.kl_divergence(teacher, student).sum(-1)
    expected_ce = expected_kl + teacher.entropy().sum(-1)
    ce = kickstart_divergence("gaussian", [mean_t, std_t], [mean_s, std_s], "cross_entropy")
    kl = kickstart_divergence("gaussian", [mean_t, std_t], [mean_s, std_s], "kl")
    assert th.allclose(ce, expected_ce, atol=1e-5) and th.allclose(kl, expected_kl, atol=1e-5)

    logits_t = [th.randn(4, 3, generator=rng), th.randn(4, 2, generator=rng)]
    logits_s = [th.randn(4, 3, generator=rng), th.randn(4, 2, generator=rng)]
    hand = sum(
        -(th.softmax(t, -1) * th.log_softmax(s, -1)).sum(-1) for t, s in zip(logits_t, logits_s)
    )
    assert th.allclose(kickstart_divergence("categorical", logits_t, logits_s), hand, atol=1e-6)


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "zoo/DarkRoom-v0"])
def test_box_and_discrete_observation_students_learn_with_a_teacher(env_id):
    kwargs = {"n_steps": 32, "batch_size": 32, "n_epochs": 1, "policy_kwargs": {"net_arch": [8]}, "seed": 0}
    teacher = PPO("MlpPolicy", env_id, **kwargs)
    student = KickstartedPPO("MlpPolicy", env_id, teacher=teacher, kickstart_coef=1.0, **kwargs)
    student.learn(64)
    stats = student._kickstart_stats
    assert len(stats["train/kickstart_loss"]) == 1 and all(math.isfinite(v) for v in stats["train/kickstart_loss"])
    assert all(0.0 <= v <= 1.0 for v in stats["train/teacher_agreement"])


# --------------------------------------------------------------------------- bit for bit
@pytest.mark.parametrize(("plain", "kickstarted"), [(PPO, KickstartedPPO), (A2C, KickstartedA2C)])
def test_zero_coefficient_is_the_plain_update_bit_for_bit(plain, kickstarted):
    kwargs = {"n_steps": 32, "policy_kwargs": {"net_arch": [16]}, "seed": 3}
    teacher = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [16]}, seed=9)
    reference = plain("MlpPolicy", "CartPole-v1", **kwargs).learn(256)
    student = kickstarted("MlpPolicy", "CartPole-v1", teacher=teacher, kickstart_coef=0.0, **kwargs).learn(256)
    assert _params_equal(reference, student)
    # A positive coefficient does change the update (the test above could not pass vacuously).
    pulled = kickstarted("MlpPolicy", "CartPole-v1", teacher=teacher, kickstart_coef=1.0, **kwargs).learn(256)
    assert not _params_equal(reference, pulled)


# --------------------------------------------------------------------------- learning
@pytest.mark.slow
def test_kickstarted_student_beats_scratch_on_darkroom():
    goal = (0, 0)  # distance 8 from the centre: best return 13
    teacher = _darkroom_teacher(goal)
    teacher_return = evaluate_policy(teacher, gym.make("zoo/DarkRoom-v0", task=goal), n_eval_episodes=1)[0]
    assert teacher_return == 13

    def train(with_teacher: bool) -> float:
        env = make_vec_env("zoo/DarkRoom-v0", n_envs=4, seed=0, env_kwargs={"task": goal})
        kwargs = {"n_steps": 64, "batch_size": 64, "learning_rate": 1e-3, "policy_kwargs": {"net_arch": [32]}, "seed": 0}
        if with_teacher:
            model = KickstartedPPO("MlpPolicy", env, teacher=teacher, kickstart_coef=1.0, **kwargs)
        else:
            model = PPO("MlpPolicy", env, **kwargs)
        model.learn(3072)
        return evaluate_policy(model, gym.make("zoo/DarkRoom-v0", task=goal), n_eval_episodes=1)[0]

    kickstarted, scratch = train(True), train(False)
    assert kickstarted >= 10, kickstarted
    assert scratch < 10, scratch
