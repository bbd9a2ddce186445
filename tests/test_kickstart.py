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
    teacher = PPO(
        "MlpPolicy", gym.make("zoo/DarkRoom-v0", task=goal), policy_kwargs={"net_arch": {"pi": [], "vf": [8]}}
    )
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
        "MlpPolicy",
        "CartPole-v1",
        teacher=teacher,
        kickstart_coef=0.7,
        policy_kwargs={"net_arch": [8]},
        seed=2,
    )
    obs = th.as_tensor(np.random.default_rng(0).normal(size=(6, 4)), dtype=th.float32)
    with th.no_grad():
        p_teacher = teacher.policy.get_distribution(obs).distribution.probs
    student_dist = student.policy.get_distribution(obs)
    log_q = th.log(student_dist.distribution.probs).detach()
    expected = 0.7 * float(
        np.mean([-sum(float(p_teacher[i, a] * log_q[i, a]) for a in range(2)) for i in range(6)])
    )
    coefficients = student._kickstart_begin()
    term = student._kickstart_term(coefficients, SimpleNamespace(observations=obs), student_dist)
    assert term is not None and term.requires_grad
    assert term.item() == pytest.approx(expected, rel=1e-5)

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
    hand = sum(-(th.softmax(t, -1) * th.log_softmax(s, -1)).sum(-1) for t, s in zip(logits_t, logits_s))
    assert th.allclose(kickstart_divergence("categorical", logits_t, logits_s), hand, atol=1e-6)


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "zoo/DarkRoom-v0"])
def test_box_and_discrete_observation_students_learn_with_a_teacher(env_id):
    kwargs = {"n_steps": 32, "batch_size": 32, "n_epochs": 1, "policy_kwargs": {"net_arch": [8]}, "seed": 0}
    teacher = PPO("MlpPolicy", env_id, **kwargs)
    student = KickstartedPPO("MlpPolicy", env_id, teacher=teacher, kickstart_coef=1.0, **kwargs)
    student.learn(64)
    logged = student.logger.name_to_value
    assert math.isfinite(logged["train/kickstart_loss"]) and logged["train/kickstart_loss"] > 0
    assert 0.0 <= logged["train/teacher_agreement"] <= 1.0


# --------------------------------------------------------------------------- bit for bit
@pytest.mark.parametrize(("plain", "kickstarted"), [(PPO, KickstartedPPO), (A2C, KickstartedA2C)])
def test_zero_coefficient_is_the_plain_update_bit_for_bit(plain, kickstarted):
    kwargs = {"n_steps": 32, "policy_kwargs": {"net_arch": [16]}, "seed": 3}
    teacher = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [16]}, seed=9)
    reference = plain("MlpPolicy", "CartPole-v1", **kwargs).learn(256)
    student = kickstarted("MlpPolicy", "CartPole-v1", teacher=teacher, kickstart_coef=0.0, **kwargs).learn(
        256
    )
    assert _params_equal(reference, student)
    # A positive coefficient does change the update (the test above could not pass vacuously).
    pulled = kickstarted("MlpPolicy", "CartPole-v1", teacher=teacher, kickstart_coef=1.0, **kwargs).learn(256)
    assert not _params_equal(reference, pulled)


def test_zero_coefficient_contrib_variants_match_their_parents_bit_for_bit():
    from sb3_contrib import MaskablePPO, RecurrentPPO
    from sb3_contrib.common.envs import InvalidActionEnvDiscrete

    def masked_env():
        return InvalidActionEnvDiscrete(dim=4, n_invalid_actions=2)

    masked_teacher = PPO("MlpPolicy", masked_env(), policy_kwargs={"net_arch": [8]}, seed=1)
    kwargs = {"n_steps": 32, "batch_size": 16, "policy_kwargs": {"net_arch": [8]}, "seed": 3}
    reference = MaskablePPO("MlpPolicy", masked_env(), **kwargs).learn(64)
    student = KickstartedMaskablePPO(
        "MlpPolicy", masked_env(), teacher=masked_teacher, kickstart_coef=0.0, **kwargs
    ).learn(64)
    assert _params_equal(reference, student)

    teacher = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, seed=1)
    kwargs = {**kwargs, "policy_kwargs": {"lstm_hidden_size": 8, "net_arch": [8]}}
    reference = RecurrentPPO("MlpLstmPolicy", "CartPole-v1", **kwargs).learn(64)
    student = KickstartedRecurrentPPO(
        "MlpLstmPolicy", "CartPole-v1", teacher=teacher, kickstart_coef=0.0, **kwargs
    ).learn(64)
    assert _params_equal(reference, student)


# --------------------------------------------------------------------------- learning
@pytest.mark.slow
def test_kickstarted_student_beats_scratch_on_darkroom():
    goal = (0, 0)  # distance 8 from the centre: best return 13
    teacher = _darkroom_teacher(goal)
    teacher_return = evaluate_policy(teacher, gym.make("zoo/DarkRoom-v0", task=goal), n_eval_episodes=1)[0]
    assert teacher_return == 13

    def train(with_teacher: bool) -> float:
        env = make_vec_env("zoo/DarkRoom-v0", n_envs=4, seed=0, env_kwargs={"task": goal})
        kwargs = {
            "n_steps": 64,
            "batch_size": 64,
            "learning_rate": 1e-3,
            "policy_kwargs": {"net_arch": [32]},
            "seed": 0,
        }
        if with_teacher:
            model = KickstartedPPO("MlpPolicy", env, teacher=teacher, kickstart_coef=1.0, **kwargs)
        else:
            model = PPO("MlpPolicy", env, **kwargs)
        model.learn(3072)
        return evaluate_policy(model, gym.make("zoo/DarkRoom-v0", task=goal), n_eval_episodes=1)[0]

    kickstarted, scratch = train(True), train(False)
    assert kickstarted >= 10, kickstarted
    assert scratch < 10, scratch


# --------------------------------------------------------------------------- save / load
def test_save_load_round_trip_excludes_the_teacher(tmp_path):
    kwargs = {"n_steps": 32, "batch_size": 32, "policy_kwargs": {"net_arch": [8]}, "seed": 0}
    teacher = PPO(
        "MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [32, 32]}, seed=1
    )  # another architecture
    student = KickstartedPPO("MlpPolicy", "CartPole-v1", teacher=teacher, kickstart_coef="lin_1.0", **kwargs)
    student.learn(64)
    path = tmp_path / "student.zip"
    student.save(path)
    with zipfile.ZipFile(path) as archive:
        data = archive.read("data").decode()
        policy_state = th.load(archive.open("policy.pth"), weights_only=True)
    assert "_teachers" not in data and "teacher" not in data.replace("kickstart", "")
    assert set(policy_state) == set(student.policy.state_dict())

    loaded = KickstartedPPO.load(path, env=gym.make("CartPole-v1"))
    assert loaded.teachers == {} and loaded.kickstart_coef == "lin_1.0"
    assert _params_equal(student, loaded)
    obs = np.zeros((3, 4), dtype=np.float32)
    assert np.array_equal(
        loaded.predict(obs, deterministic=True)[0], student.predict(obs, deterministic=True)[0]
    )

    loaded.learn(32)  # without a teacher: plain PPO
    assert "train/kickstart_loss" not in loaded.logger.name_to_value
    loaded.set_teacher(teacher, kickstart_coef=0.5)
    loaded.learn(32, reset_num_timesteps=False)
    assert loaded.logger.name_to_value["train/kickstart_coef"] == 0.5
    assert "train/kickstart_loss" in loaded.logger.name_to_value

    again = KickstartedA2C.load if False else KickstartedPPO.load
    with_teacher = again(path, env=gym.make("CartPole-v1"), teacher=teacher)
    assert set(with_teacher.teachers) == {None}


def test_teacher_from_zip_and_hub_directory(tmp_path):
    from zoo.hub import save_agent

    teacher = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, seed=1)
    teacher.save(tmp_path / "teacher.zip")
    save_agent(teacher, tmp_path / "teacher_dir")
    obs = th.as_tensor(np.random.default_rng(0).normal(size=(5, 4)), dtype=th.float32)
    expected = teacher.policy.get_distribution(obs).distribution.probs
    for source in (tmp_path / "teacher.zip", str(tmp_path / "teacher"), tmp_path / "teacher_dir"):
        student = KickstartedA2C("MlpPolicy", "CartPole-v1", teacher=source, n_steps=8)
        loaded = student.teachers[None]
        assert all(not p.requires_grad for p in loaded.parameters())
        assert th.allclose(loaded.get_distribution(obs).distribution.probs, expected, atol=1e-6)


def test_teacher_from_a_hub_repo_id_goes_through_load_from_hub(monkeypatch):
    import zoo.hub

    teacher = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, seed=1)
    calls = []

    def fake_load_from_hub(repo_id, device="auto", **kwargs):
        calls.append((repo_id, device))
        return teacher

    monkeypatch.setattr(zoo.hub, "load_from_hub", fake_load_from_hub, raising=False)
    student = KickstartedPPO("MlpPolicy", "CartPole-v1", teacher="some-org/ppo-CartPole-v1", n_steps=8)
    assert calls == [("some-org/ppo-CartPole-v1", "cpu")]
    assert student.teachers[None] is teacher.policy


# --------------------------------------------------------------------------- contrib variants
def test_recurrent_student_term_is_masked_like_the_other_losses():
    teacher = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": {"pi": [], "vf": [8]}}, seed=1)
    with th.no_grad():  # a confident teacher, so that padded and real samples give different terms
        teacher.policy.action_net.weight.copy_(th.tensor([[0.0, 0.0, 40.0, 10.0], [0.0, 0.0, -40.0, -10.0]]))
        teacher.policy.action_net.bias.copy_(th.tensor([3.0, 0.0]))
    student = KickstartedRecurrentPPO(
        "MlpLstmPolicy",
        make_vec_env("CartPole-v1", n_envs=2, seed=0),
        teacher=teacher,
        n_steps=64,
        batch_size=64,
        n_epochs=1,
        policy_kwargs={"lstm_hidden_size": 8, "net_arch": [8]},
        seed=0,
    )
    student.learn(128)
    assert "train/kickstart_loss" in student.logger.name_to_value
    batch = next(iter(student.rollout_buffer.get(64)))
    mask = batch.mask > 1e-8
    assert (~mask).any(), "the batch should contain padding"
    _, _, _, distribution = student._evaluate_with_distribution(
        lambda: student.policy.evaluate_actions(
            batch.observations, batch.actions.long().flatten(), batch.lstm_states, batch.episode_starts
        ),
        True,
    )
    term = student._kickstart_term({None: 1.0}, batch, distribution, sample_mask=mask)
    with th.no_grad():
        p_teacher = teacher.policy.get_distribution(batch.observations).distribution.probs
    log_q = th.log_softmax(distribution.distribution.logits.detach(), -1)
    per_sample = -(p_teacher * log_q).sum(-1)
    assert term.item() == pytest.approx(per_sample[mask].mean().item(), rel=1e-5)
    (gradient,) = th.autograd.grad(term, distribution.distribution.logits)
    assert th.all(gradient[~mask] == 0) and th.any(gradient[mask] != 0)  # padding gets no pull


def test_maskable_student_masks_the_teacher():
    from sb3_contrib.common.envs import InvalidActionEnvDiscrete

    env = InvalidActionEnvDiscrete(dim=4, n_invalid_actions=2)
    teacher = PPO("MlpPolicy", env, policy_kwargs={"net_arch": {"pi": [], "vf": [8]}}, seed=0)
    with th.no_grad():  # the teacher prefers action 0 strongly, then 1
        teacher.policy.action_net.weight.zero_()
        teacher.policy.action_net.bias.copy_(th.tensor([10.0, 5.0, 0.0, 0.0]))
    student = KickstartedMaskablePPO(
        "MlpPolicy", env, teacher=teacher, n_steps=32, batch_size=32, policy_kwargs={"net_arch": [8]}, seed=0
    )
    student.learn(64)
    assert "train/teacher_agreement" in student.logger.name_to_value
    obs = th.zeros((2, *env.observation_space.shape))
    masks = th.tensor([[False, True, True, True], [True, True, False, False]])
    distribution = student.policy.get_distribution(obs, action_masks=masks.numpy())
    term = student._kickstart_term(
        {None: 1.0}, SimpleNamespace(observations=obs, action_masks=masks), distribution
    )
    teacher_probs = th.softmax(th.where(masks, th.tensor([10.0, 5.0, 0.0, 0.0]), th.tensor(-1e8)), -1)
    log_q = th.log_softmax(distribution.distribution.logits.detach(), -1)
    expected = -(teacher_probs * th.where(masks, log_q, th.zeros_like(log_q))).sum(-1).mean()
    assert term.item() == pytest.approx(expected.item(), rel=1e-5)
    assert teacher_probs[0, 0] == 0  # the masked action gets no teacher probability

    # the per-rollout teacher cache applies the buffer's masks the same way
    rows = np.arange(16)
    part = student.rollout_buffer._get_samples(rows)
    distribution = student.policy.get_distribution(part.observations, action_masks=part.action_masks)
    uncached = student._kickstart_term({None: 1.0}, part, distribution)
    student._teacher_cache = student._build_teacher_cache({None: 1.0})
    student._kickstart_batch_inds = rows
    cached = student._kickstart_term({None: 1.0}, part, distribution)
    student._teacher_cache = student._kickstart_batch_inds = None
    assert cached.item() == pytest.approx(uncached.item(), rel=1e-5)


# --------------------------------------------------------------------------- many teachers
def _constant_teacher(env, action: int) -> PPO:
    teacher = PPO("MlpPolicy", env, policy_kwargs={"net_arch": {"pi": [], "vf": [8]}}, seed=0)
    with th.no_grad():
        teacher.policy.action_net.weight.zero_()
        teacher.policy.action_net.bias.zero_()
        teacher.policy.action_net.bias[action] = 20.0
    return teacher


def test_each_sample_is_distilled_from_its_own_tasks_teacher():
    tasks = [(0, 0), (0, 8), (8, 0)]
    env = _multitask_env(tasks)
    teachers = {0: _constant_teacher(env, 1), 1: _constant_teacher(env, 2)}  # task 2: no teacher
    student = KickstartedPPO(
        "MlpPolicy",
        env,
        teacher=teachers,
        kickstart_coef={0: 2.0, 1: "lin_2.0_2.0"},
        n_steps=32,
        batch_size=96,
        learning_rate=3e-3,
        policy_kwargs={"net_arch": [16]},
        seed=0,
    )
    student.learn(96 * 8)
    # the buffer recorded the sub-env's task for every sample
    assert np.array_equal(
        student.rollout_buffer.task_indices.reshape(3, -1), np.repeat([[0], [1], [2]], 32, axis=1)
    )
    logged = student.logger.name_to_value
    assert logged["train/kickstart_coef/task_0"] == 2.0 and logged["train/kickstart_coef/task_1"] == 2.0
    assert logged["train/teacher_agreement/task_0"] == 1.0 and logged["train/teacher_agreement/task_1"] == 1.0
    assert "train/kickstart_loss/task_2" not in logged
    # the student now follows teacher i on task i's observations
    obs = env.reset()
    actions, _ = student.predict(obs, deterministic=True)
    assert actions[0] == 1 and actions[1] == 2

    # the term on one batch: Σ_k λ_k Σ_{samples of task k} H(teacher_k ‖ student) / batch size
    batch = next(iter(student.rollout_buffer.get(96)))
    distribution = student.policy.get_distribution(batch.observations)
    term = student._kickstart_term({0: 2.0, 1: 0.5}, batch, distribution)
    log_q = th.log_softmax(distribution.distribution.logits.detach(), -1)
    expected = 0.0
    for key, coef in ((0, 2.0), (1, 0.5)):
        index = batch.task_indices == key
        with th.no_grad():
            p_teacher = teachers[key].policy.get_distribution(batch.observations[index]).distribution.probs
        expected += coef * float(-(p_teacher * log_q[index]).sum())
    assert term.item() == pytest.approx(expected / 96, rel=1e-5)

    # inside train() the teachers are evaluated once per rollout; the term is the same
    rows = np.random.default_rng(0).permutation(96)[:40]
    part = student.rollout_buffer._get_samples(rows)
    distribution = student.policy.get_distribution(part.observations)
    uncached = student._kickstart_term({0: 2.0, 1: 0.5}, part, distribution)
    student._teacher_cache = student._build_teacher_cache({0: 2.0, 1: 0.5})
    student._kickstart_batch_inds = rows
    cached = student._kickstart_term({0: 2.0, 1: 0.5}, part, distribution)
    student._teacher_cache = student._kickstart_batch_inds = None
    assert cached.item() == pytest.approx(uncached.item(), rel=1e-5)


def test_many_teachers_need_task_indices_from_the_env():
    teacher = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]})
    with pytest.raises(ValueError, match="task_index"):
        KickstartedPPO("MlpPolicy", "CartPole-v1", teacher={0: teacher})
    with pytest.raises(ValueError, match="mapping of teachers"):
        KickstartedRecurrentPPO("MlpLstmPolicy", "CartPole-v1", teacher={0: teacher})


# --------------------------------------------------------------------------- bad input
def test_space_mismatch_names_both_spaces():
    from stable_baselines3.common.policies import ActorCriticPolicy

    teacher = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]})
    with pytest.raises(ValueError, match=r"Discrete\(2\).*Discrete\(3\)"):
        KickstartedPPO("MlpPolicy", "Acrobot-v1", teacher=teacher)
    other_obs = ActorCriticPolicy(spaces.Box(-1, 1, (3,)), spaces.Discrete(2), lambda _: 0.0)
    with pytest.raises(ValueError, match=r"observation space Box\(-1.0, 1.0, \(3,\)"):
        KickstartedA2C("MlpPolicy", "CartPole-v1", teacher=other_obs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kickstart_coef": "lin_a_0"}, "kickstart_coef='lin_a_0'"),
        ({"kickstart_coef": "cubic_1"}, "not a valid schedule string"),
        ({"kickstart_coef": "exp_1.0_1.5"}, "decay"),
        ({"kickstart_coef": -1.0}, ">= 0"),
        ({"kickstart_coef": "lin_-1_0"}, "negative"),
        ({"kickstart_coef": True}, "bool"),
        ({"kickstart_coef": {0: 1.0}}, "mapping"),
        ({"kickstart_loss": "mse"}, "kickstart_loss='mse'"),
        ({"teacher": 42}, "teacher=42"),
        ({"teacher": "no/such/file.zip"}, "no such file"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    arguments = {"teacher": PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}), **kwargs}
    with pytest.raises(ValueError, match=match):
        KickstartedPPO("MlpPolicy", "CartPole-v1", **arguments)


def test_mapping_keys_must_match():
    env = _multitask_env([(0, 0), (0, 8)])
    teachers = {0: _constant_teacher(env, 1), 1: _constant_teacher(env, 2)}
    with pytest.raises(ValueError, match="keys"):
        KickstartedPPO("MlpPolicy", env, teacher=teachers, kickstart_coef={0: 1.0, 5: 1.0})
    with pytest.raises(ValueError, match="task index"):
        KickstartedPPO("MlpPolicy", env, teacher={"a": teachers[0]})
    student = KickstartedPPO("MlpPolicy", env, teacher=teachers, kickstart_coef={0: 1.0, 1: 0.5}, n_steps=8)
    student.learn(16)
    assert student.logger.name_to_value["train/kickstart_coef/task_1"] == 0.5


def test_multi_teacher_student_save_load_keeps_per_teacher_coefficients(tmp_path):
    env = _multitask_env([(0, 0), (0, 8)])
    teachers = {0: _constant_teacher(env, 1), 1: _constant_teacher(env, 2)}
    student = KickstartedPPO("MlpPolicy", env, teacher=teachers, kickstart_coef={0: 1.0, 1: 0.5}, n_steps=8)
    student.save(tmp_path / "student.zip")
    loaded = KickstartedPPO.load(tmp_path / "student.zip", env=env, teacher=teachers)
    loaded.learn(16)
    assert loaded.logger.name_to_value["train/kickstart_coef/task_1"] == 0.5


def test_negative_schedule_value_is_refused_at_update():
    student = KickstartedPPO(
        "MlpPolicy",
        "CartPole-v1",
        teacher=PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}),
        kickstart_coef=lambda progress: progress - 2.0,
        n_steps=16,
        batch_size=16,
    )
    with pytest.raises(ValueError, match="kickstart_coef"):
        student.learn(16)


# --------------------------------------------------------------------------- schedules
def test_schedule_grammar():
    assert parse_schedule(0.5) == ConstantSchedule(0.5)
    assert parse_schedule("const_0.25")(0.3) == 0.25 and parse_schedule("3e-4")(0.1) == 3e-4
    assert parse_schedule("lin_2.0_0.0") == LinearSchedule(2.0, 0.0)
    assert parse_schedule("lin_2.0_0.0")(0.25) == pytest.approx(0.5)
    assert parse_schedule("lin_1")(0.0) == 0.0
    exp = parse_schedule("exp_2.0_0.5")
    assert exp == ExponentialSchedule(2.0, 0.5)
    assert coefficient_value(exp, 0.9, 3) == pytest.approx(0.25)
    assert coefficient_value(lambda p: 3 * p, 0.5, 7) == 1.5


def test_exponential_coefficient_decays_per_update():
    student = KickstartedA2C(
        "MlpPolicy",
        "CartPole-v1",
        teacher=PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}),
        kickstart_coef="exp_1.0_0.5",
        n_steps=8,
    )
    student.learn(24)  # three updates: 1.0, 0.5, 0.25
    assert student.logger.name_to_value["train/kickstart_coef"] == pytest.approx(0.25)


# --------------------------------------------------------------------------- CUDA
@pytest.mark.gpu
def test_teacher_follows_the_student_to_cuda():
    teacher = PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, device="cpu")
    student = KickstartedPPO(
        "MlpPolicy", "CartPole-v1", teacher=teacher, device="auto", n_steps=32, batch_size=32
    )
    assert student.device.type == "cuda"
    assert all(p.device.type == "cuda" for p in student.teachers[None].parameters())
    student.learn(64)
    assert math.isfinite(student.logger.name_to_value["train/kickstart_loss"])


def test_teacher_by_hub_repo_id_through_the_local_hub(hub_server) -> None:
    """``teacher="org/name"`` downloads the teacher with the real huggingface_hub client (no pickle)."""
    from zoo.envs.sb3 import SB3VecEnv
    from zoo.hub import load_teacher, push_to_hub

    teacher = load_teacher("zoo/DarkRoom-v0", task=(1, 7), device="cpu")
    push_to_hub(
        teacher, "zoo-test/ppo-zoo-DarkRoom-v0", "zoo/DarkRoom-v0",
        n_eval_episodes=1, env_kwargs={"task": (1, 7)}, record_replay=False,
    )  # fmt: skip
    env = SB3VecEnv(gym.make_vec("zoo/DarkRoom-v0", num_envs=2, tasks=[(1, 7), (1, 7)]))
    student = KickstartedPPO(
        "MlpPolicy", env, teacher="zoo-test/ppo-zoo-DarkRoom-v0", n_steps=16, batch_size=32, device="cpu"
    )
    (downloaded,) = student._teachers.values()
    cells = np.arange(81)

    def probabilities(policy) -> th.Tensor:
        with th.no_grad():
            return policy.get_distribution(policy.obs_to_tensor(cells)[0]).distribution.probs

    assert th.equal(probabilities(downloaded), probabilities(teacher.policy))
    assert all(not parameter.requires_grad for parameter in downloaded.parameters())
    student.learn(32)
    assert 0.0 <= student.logger.name_to_value["train/teacher_agreement"] <= 1.0


def test_linear_coefficient_holds_when_the_budget_is_not_a_multiple_of_the_rollout() -> None:
    """SB3's last rollout overshoots the budget (progress_remaining < 0): λ must end at 0, not below."""
    from zoo.agents.common.schedules import coefficient_value, parse_schedule

    schedule = parse_schedule("lin_2.0_0.0")
    assert coefficient_value(schedule, -0.048, n_updates=10) == 0.0
    assert coefficient_value(schedule, 1.0, n_updates=0) == 2.0
    from zoo.hub import load_teacher

    teacher = load_teacher("zoo/DarkRoom-v0", task=(1, 7), device="cpu")
    from zoo.envs.sb3 import SB3VecEnv

    env = SB3VecEnv(gym.make_vec("zoo/DarkRoom-v0", num_envs=2, tasks=[(1, 7), (1, 7)]))
    student = KickstartedPPO(
        "MlpPolicy",
        env,
        teacher=teacher,
        kickstart_coef="lin_2.0_0.0",
        n_steps=16,
        batch_size=32,
        device="cpu",
    )
    student.learn(40)  # 2 rollouts of 32 steps: the second ends past the budget
    assert student.num_timesteps == 64
    assert student.logger.name_to_value["train/kickstart_coef"] == 0.0


def test_recurrent_teacher_runs_through_the_rollout_with_its_hidden_state() -> None:
    """A recurrent (LSTM) teacher is evaluated in time order per sub-env, reset at episode starts."""
    from sb3_contrib import RecurrentPPO

    from zoo.envs.sb3 import SB3VecEnv
    from zoo.hub import load_teacher

    task = ((2, 2), (6, 6))
    teacher = load_teacher("zoo/DarkKeyToDoor-v0", task=task, device="cpu")
    assert isinstance(teacher, RecurrentPPO)
    env = SB3VecEnv(gym.make_vec("zoo/DarkKeyToDoor-v0", num_envs=3, tasks=[task] * 3))
    student = KickstartedPPO(
        "MlpPolicy", env, teacher=teacher, n_steps=64, batch_size=64, device="cpu", seed=0
    )
    _, callback = student._setup_learn(64, None)
    student.collect_rollouts(student.env, callback, student.rollout_buffer, n_rollout_steps=student.n_steps)
    buffer = student.rollout_buffer
    assert buffer.episode_starts[1:].any(), "the rollout should cross an episode boundary (50-step episodes)"
    (logits,) = student._recurrent_teacher_parameters(None, student._teachers[None])

    policy = teacher.policy
    for env_index in range(3):
        state = None
        for step in range(64):
            observation = th.as_tensor(buffer.observations[step, env_index : env_index + 1])
            if state is None:
                shape = policy.lstm_hidden_state_shape
                state = (th.zeros(shape), th.zeros(shape))
            start = th.as_tensor(buffer.episode_starts[step, env_index : env_index + 1], dtype=th.float32)
            with th.no_grad():
                distribution, state = policy.get_distribution(observation, state, start)
            expected = distribution.distribution.logits[0]
            assert th.allclose(logits[env_index * 64 + step], expected, atol=1e-5), (env_index, step)
    # The hidden state is carried into the next rollout instead of restarting from zeros.
    assert student._teacher_states[None][0].abs().sum() > 0
    student.learn(64, reset_num_timesteps=False)
    assert 0.0 <= student.logger.name_to_value["train/teacher_agreement"] <= 1.0


def test_recurrent_student_refuses_a_recurrent_teacher() -> None:
    from zoo.agents import KickstartedRecurrentPPO
    from zoo.envs.sb3 import SB3VecEnv
    from zoo.hub import load_teacher

    task = ((2, 2), (6, 6))
    teacher = load_teacher("zoo/DarkKeyToDoor-v0", task=task, device="cpu")
    env = SB3VecEnv(gym.make_vec("zoo/DarkKeyToDoor-v0", num_envs=2, tasks=[task] * 2))
    with pytest.raises(ValueError, match="does not support recurrent"):
        KickstartedRecurrentPPO(
            "MlpLstmPolicy", env, teacher=teacher, n_steps=16, batch_size=32, device="cpu"
        )
