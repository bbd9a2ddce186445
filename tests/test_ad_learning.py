"""AD training, in-context evaluation, persistence and bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import zoo.envs
from zoo.agents.ad import (
    UCB,
    AlgorithmDistillation,
    HistoryDataset,
    NoisyExpert,
    TabularQLearning,
    ThompsonSampling,
    collect_histories,
    evaluate_in_context,
)

BANDIT = "zoo/AdversarialBandit-v0"
ROOM = "zoo/DarkRoom-v0"
TINY = dict(n_layers=1, n_heads=2, embed_dim=16, batch_size=8, warmup_steps=2)


@pytest.fixture(scope="module")
def room_dataset(tmp_path_factory):
    directory = tmp_path_factory.mktemp("room")
    return collect_histories(ROOM, NoisyExpert(), directory, episodes=4, env_kwargs={"size": 3})


@pytest.mark.slow
def test_bandit_ad_improves_in_context_on_held_out_tasks(tmp_path):
    torch.manual_seed(0)
    train_tasks = zoo.envs.tasks(BANDIT, "train")
    dataset = collect_histories(
        BANDIT, ThompsonSampling(), tmp_path / "data", episodes=100, tasks=train_tasks[:100]
    )
    held_out = train_tasks[800:1000]  # same distribution, never seen in training
    kwargs = dict(context_length=40, n_layers=2, n_heads=2, embed_dim=32, batch_size=32, learning_rate=1e-3)
    agent = AlgorithmDistillation(dataset, warmup_steps=30, seed=0, **kwargs).learn(250)
    untrained = AlgorithmDistillation(dataset, seed=1, **kwargs)
    trained_curve = evaluate_in_context(agent, BANDIT, tasks=held_out, episodes=60).mean
    untrained_curve = evaluate_in_context(untrained, BANDIT, tasks=held_out, episodes=60).mean
    assert trained_curve.shape == (60,)
    # Returns are Bernoulli rewards averaged over 200 tasks; random pulls average about 0.5.
    assert trained_curve[-20:].mean() > trained_curve[:10].mean() + 0.05
    assert trained_curve[-20:].mean() > untrained_curve[-20:].mean() + 0.1
    assert abs(untrained_curve[-20:].mean() - untrained_curve[:10].mean()) < 0.05


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_dark_room_ad_finds_held_out_goals_in_context(tmp_path, seed):
    # 5 x 5 room; five goal cells are never rewarded in training (the registered split of a
    # 5 x 5 room puts every test goal in column 0, a column no training goal has).
    held_out = [(0, 1), (1, 4), (3, 0), (4, 3), (2, 2)]
    train = [(row, col) for row in range(5) for col in range(5) if (row, col) not in held_out]
    dataset = collect_histories(
        ROOM, NoisyExpert(decay_fraction=0.25), tmp_path / "data", episodes=40, tasks=train * 4,
        env_kwargs={"size": 5},
    )  # fmt: skip
    kwargs = dict(
        context_length=100, n_layers=2, n_heads=2, embed_dim=32, batch_size=16, learning_rate=1e-3,
        dropout=0.0, attention_dropout=0.0, subsample=2,
    )  # fmt: skip
    agent = AlgorithmDistillation(dataset, warmup_steps=30, seed=seed, **kwargs).learn(600)
    untrained = AlgorithmDistillation(dataset, seed=seed + 10, **kwargs)
    trained_curve = evaluate_in_context(agent, ROOM, tasks=held_out * 4, episodes=10).mean
    untrained_curve = evaluate_in_context(untrained, ROOM, tasks=held_out * 4, episodes=10).mean
    # Optimal returns here are 15-20; a random walk earns about 1. Measured over seeds 0-2:
    # episode 1 about 1.2-2.3, episodes 8-10 about 7.4-10.6; untrained flat near 0.7.
    assert trained_curve[-3:].mean() > trained_curve[0] + 4.0
    assert trained_curve[-3:].mean() > untrained_curve[-3:].mean() + 4.0
    assert untrained_curve[-3:].mean() < 2.0


def test_save_load_round_trip_predicts_the_same(room_dataset, tmp_path):
    agent = AlgorithmDistillation(room_dataset, context_length=30, **TINY).learn(3)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "notes.txt").write_text("kept")  # e.g. checkpoints or logs next to the model
    agent.save(tmp_path / "model")
    assert sorted(path.name for path in (tmp_path / "model").iterdir()) == [
        "config.json",
        "model.safetensors",
        "notes.txt",
    ]
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["metadata"]["env_id"] == ROOM and config["model"]["context_length"] == 30
    assert config["model"]["grid_size"] == 3  # Dark Room cells are embedded as row + column
    loaded = AlgorithmDistillation.load(tmp_path / "model", device="cpu")
    for key, value in agent.policy.state_dict().items():
        torch.testing.assert_close(loaded.policy.state_dict()[key], value)
    observations = np.array([4, 4, 3])
    state_a = state_b = None
    for step in range(5):
        reward = None if step == 0 else np.array([0.0, 1.0, 0.0])
        actions_a, state_a = agent.predict(observations, state_a, deterministic=True, reward=reward)
        actions_b, state_b = loaded.predict(observations, state_b, deterministic=True, reward=reward)
        np.testing.assert_array_equal(actions_a, actions_b)
    (tmp_path / "model" / "model.safetensors").unlink()
    with pytest.raises(ValueError, match=r"model\.safetensors"):
        AlgorithmDistillation.load(tmp_path / "model")


@pytest.mark.parametrize(
    ("context_length", "kv_cache"),
    [
        (10, "banded"),  # the window slides: the cache is the band-masked full forward
        (30, "banded"),  # everything inside the window: both caches are the plain causal forward
        (30, "recompute"),
    ],
)
def test_predict_follows_the_full_forward(room_dataset, context_length, kv_cache):
    agent = AlgorithmDistillation(
        room_dataset, context_length=context_length, n_layers=2, n_heads=2, embed_dim=16, seed=0
    )
    history = room_dataset.histories[0]
    state = None
    chosen = []
    for t in range(25):
        reward = None if t == 0 else history.rewards[t - 1]
        action, state = agent.predict(
            history.observations[t], state, reward=reward, deterministic=True, kv_cache=kv_cache
        )
        state.last_actions = np.array([history.actions[t]])  # follow the recorded actions
        chosen.append(action)
    previous_actions = np.concatenate(([5], history.actions[:24]))
    previous_rewards = np.concatenate(([0.0], history.rewards[:24]))
    with torch.no_grad():
        logits = agent.policy(
            torch.as_tensor(np.array(history.observations[:25])[None]),
            torch.as_tensor(previous_actions[None]),
            torch.as_tensor(previous_rewards[None], dtype=torch.float32),
        )
    np.testing.assert_array_equal(np.array(chosen), logits[0].argmax(-1).numpy())


def test_predict_refuses_a_state_of_the_other_cache_kind(room_dataset):
    agent = AlgorithmDistillation(room_dataset, context_length=10, **TINY)
    _, state = agent.predict(np.array([4, 4]), kv_cache="recompute")
    with pytest.raises(ValueError, match=r"kv_cache='banded'.*started with kv_cache='recompute'"):
        agent.predict(np.array([4, 4]), state, reward=0.0)
    with pytest.raises(ValueError, match=r"kv_cache='exact' is not allowed"):
        agent.predict(np.array([4, 4]), kv_cache="exact")


def test_predict_needs_the_previous_reward(room_dataset):
    agent = AlgorithmDistillation(room_dataset, context_length=10, **TINY)
    _, state = agent.predict(np.array([4, 4]))
    with pytest.raises(ValueError, match="reward"):
        agent.predict(np.array([4, 4]), state)
    with pytest.raises(ValueError, match="temperature"):
        agent.predict(np.array([4, 4]), temperature=0.0)


def test_resumed_training_equals_uninterrupted(room_dataset, tmp_path):
    straight = AlgorithmDistillation(room_dataset, context_length=20, seed=5, **TINY).learn(6)
    first = AlgorithmDistillation(
        room_dataset, context_length=20, seed=5, checkpoint_dir=tmp_path / "ckpt", checkpoint_every=3, **TINY
    )
    original_sample = first.sample_batch
    calls = []

    def crash_on_fifth_batch():
        calls.append(1)
        if len(calls) == 5:  # step 5 of 6; the checkpoint of step 3 is on disk
            raise KeyboardInterrupt
        return original_sample()

    first.sample_batch = crash_on_fifth_batch
    with pytest.raises(KeyboardInterrupt):
        first.learn(6)
    assert json.loads((tmp_path / "ckpt" / "latest.json").read_text())["num_steps"] == 3
    resumed = AlgorithmDistillation(
        room_dataset, context_length=20, seed=5, checkpoint_dir=tmp_path / "ckpt", checkpoint_every=3, **TINY
    )
    resumed.learn(6, resume=True)
    assert resumed.num_steps == 6
    for key, value in straight.policy.state_dict().items():
        torch.testing.assert_close(resumed.policy.state_dict()[key], value)
    assert json.loads((tmp_path / "ckpt" / "latest.json").read_text())["num_steps"] == 6


def test_tensorboard_keys(room_dataset, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    AlgorithmDistillation(
        room_dataset, context_length=20, tensorboard_log=str(tmp_path / "tb"), **TINY
    ).learn(5, log_interval=2)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    # SB3's logger and SB3's key names (train/learning_rate, not train/lr).
    assert set(events.Tags()["scalars"]) == {
        "train/loss",
        "train/accuracy",
        "train/learning_rate",
        "train/n_updates",
        "time/time_elapsed",
        "time/tokens_per_second",
    }
    assert [event.step for event in events.Scalars("train/loss")] == [2, 4, 5]  # every 2 steps and the last
    assert [event.value for event in events.Scalars("train/n_updates")] == [2, 4, 5]
    with pytest.raises(ValueError, match="log_interval=0"):
        AlgorithmDistillation(room_dataset, context_length=20, **TINY).learn(1, log_interval=0)


def test_progress_bar_is_sb3s_rich_bar(room_dataset, monkeypatch):
    import warnings

    import tqdm.rich

    bars = []

    class RecordingBar(tqdm.rich.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(tqdm.rich, "tqdm", RecordingBar)
    with warnings.catch_warnings():
        warnings.simplefilter("error", tqdm.TqdmExperimentalWarning)
        AlgorithmDistillation(room_dataset, context_length=20, **TINY).learn(3, progress_bar=True)
    (bar,) = bars
    assert bar.n == bar.total == 3
    assert bar.desc.startswith("AD loss ") and "accuracy" in bar.desc


def test_bad_inputs_raise_clear_value_errors(room_dataset, tmp_path):
    empty = HistoryDataset([], room_dataset.manifest)
    with pytest.raises(ValueError, match="empty"):
        AlgorithmDistillation(empty)
    with pytest.raises(ValueError, match="context_length=500"):
        AlgorithmDistillation(room_dataset, context_length=500)  # histories are 80 steps
    agent = AlgorithmDistillation(room_dataset, context_length=20, **TINY)
    with pytest.raises(ValueError, match="DarkRoomHard"):
        evaluate_in_context(agent, "zoo/DarkRoomHard-v0", episodes=2)
    with pytest.raises(ValueError, match="env_kwargs"):
        evaluate_in_context(agent, ROOM, episodes=2, env_kwargs={"size": 5})
    with pytest.raises(ValueError, match="batch_size"):
        AlgorithmDistillation(room_dataset, batch_size=0)


def test_grid_worlds_embed_cells_as_row_plus_column(room_dataset):
    agent = AlgorithmDistillation(room_dataset, context_length=20, **TINY)
    assert agent.config.grid_size == 3
    encoder = agent.policy.observation_encoder
    cells = torch.arange(9)
    expected = encoder.rows.weight[cells // 3] + encoder.columns.weight[cells % 3]
    torch.testing.assert_close(encoder(cells), expected)
    plain = AlgorithmDistillation(room_dataset, context_length=20, observation_encoding="embedding", **TINY)
    assert plain.config.grid_size == 0 and isinstance(plain.policy.observation_encoder, torch.nn.Embedding)
    with pytest.raises(ValueError, match="observation_encoding='pixels'"):
        AlgorithmDistillation(room_dataset, observation_encoding="pixels")


def test_grid_encoding_is_refused_for_non_grid_environments(tmp_path):
    bandit = collect_histories(
        BANDIT, UCB(), tmp_path / "bandit", episodes=30, tasks=zoo.envs.tasks(BANDIT)[:2]
    )
    assert AlgorithmDistillation(bandit, context_length=10, **TINY).config.grid_size == 0
    with pytest.raises(ValueError, match="observation_encoding='grid'"):
        AlgorithmDistillation(bandit, context_length=10, observation_encoding="grid", **TINY)


@pytest.mark.parametrize("kv_cache", ["banded", "recompute"])
def test_evaluation_returns_one_curve_per_episode_index(room_dataset, kv_cache):
    agent = AlgorithmDistillation(room_dataset, context_length=20, **TINY)
    result = evaluate_in_context(agent, ROOM, split="test", episodes=3, kv_cache=kv_cache)
    assert result.returns.shape == (len(zoo.envs.tasks(ROOM, "test", size=3)), 3)
    assert result.mean.shape == result.std.shape == (3,)
    assert np.all((result.returns >= 0) & (result.returns <= 20))


def test_in_context_result_prints_rounded_numbers_not_float32_noise():
    from zoo.agents.ad import InContextResult

    # Returns summed from float32 rewards: 0.2 reads back as 0.20000000298023224.
    returns = np.array([[0.2, 1.0, 2.0], [0.2, 0.0, 3.0]], dtype=np.float32).astype(np.float64)
    assert repr(float(returns[0, 0])) == "0.20000000298023224"
    result = InContextResult(returns, [(0, 1), (2, 3)], "AD")
    text = repr(result)
    assert (
        text
        == "InContextResult(label='AD', tasks=2, episodes=3, first episode 0.20 ± 0.00, last episode 2.50 ± 0.50)"
    )
    assert result.summary().splitlines() == [
        "AD: return per episode, mean ± std over 2 tasks",
        "  episode 1: 0.20 ± 0.00",
        "  episode 2: 0.50 ± 0.50",
        "  episode 3: 2.50 ± 0.50",
    ]
    assert result.to_dict() == {"label": "AD", "mean": [0.2, 0.5, 2.5], "std": [0.0, 0.5, 0.5], "tasks": 2}
    assert "array(" not in text and "object at" not in text
    assert repr(InContextResult(np.zeros((0, 0)))) == "InContextResult(label='', tasks=0, episodes=0)"


def test_rl2_trial_wrapper_spans_episodes_of_one_task():
    import gymnasium as gym

    from zoo.agents.ad import TrialWrapper

    tasks = zoo.envs.tasks(ROOM, "train", size=3)
    env = TrialWrapper(gym.make(ROOM, size=3), tasks, episodes_per_trial=3)
    observation, info = env.reset(seed=0)
    assert observation.shape == (9 + 5 + 2,) and observation[4] == 1.0 and observation[-1] == 1.0
    task = info["task"]
    steps, starts = 0, 0
    done = False
    while not done:
        observation, reward, done, truncated, info = env.step(2)  # always "right"
        steps += 1
        starts += observation[-1] == 1.0
        assert observation[9 + 2] == 1.0 and observation[-2] == reward and not truncated
        assert env.unwrapped.task == task
    assert steps == 60 and starts == 2 and len(info["episode_returns"]) == 3


def test_source_curve_and_plot(tmp_path):
    from zoo.agents.ad import TabularQLearning, plot_in_context, source_learning_curve

    curve = source_learning_curve(TabularQLearning(), ROOM, split="test", episodes=5, env_kwargs={"size": 3})
    assert curve.returns.shape == (2, 5)
    path = plot_in_context([curve], tmp_path / "curve.png", optimal=19.0)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="results"):
        plot_in_context([], tmp_path / "none.png")


@pytest.mark.slow
def test_watermaze_pixels_end_to_end(tmp_path):
    from zoo.agents.ad import SB3Source

    env_id = "zoo/Watermaze-v0"
    tasks = zoo.envs.tasks(env_id, "train")[:1]
    source = SB3Source("A2C", policy="CnnPolicy", hyperparameters={"n_steps": 10})
    dataset = collect_histories(env_id, source, tmp_path / "data", episodes=1, tasks=tasks)
    assert dataset.observation_space["kind"] == "image"
    assert dataset.histories[0].observations.dtype == np.uint8
    assert dataset.histories[0].observations.shape[1:] == (72, 96, 3)
    agent = AlgorithmDistillation(dataset, context_length=8, **TINY).learn(2)
    assert type(agent.policy.observation_encoder).__name__ == "_CNNEncoder"
    result = evaluate_in_context(agent, env_id, split="test", n_tasks=2, episodes=1)
    assert result.returns.shape == (2, 1)


def test_in_context_evaluation_feeds_exactly_the_recorded_history(room_dataset):
    # The vector env autoresets on the step after an episode ends (NEXT_STEP); that step must
    # not enter the context. Re-running the recorded history through the banded full forward
    # must give back every action the cached evaluation chose.
    from zoo.agents.ad.evaluation import _InContextPolicy
    from zoo.agents.ad.sources import make_task_vector_env, run_vectorised

    agent = AlgorithmDistillation(
        room_dataset, context_length=30, n_layers=2, n_heads=2, embed_dim=16, seed=3
    )
    agent.policy.eval()
    tasks = zoo.envs.tasks(ROOM, "all", size=3)
    env = make_task_vector_env(ROOM, tasks, {"size": 3})
    histories = run_vectorised(env, _InContextPolicy(agent, len(tasks), True, 1.0, 0), 4, 0, 20)
    for history in histories:
        assert len(history) == 80 and history.episodes == 4
        previous_actions = np.concatenate(([5], history.actions[:-1]))
        previous_rewards = np.concatenate(([0.0], history.rewards[:-1])).astype(np.float32)
        with torch.no_grad():
            logits = agent.policy(
                torch.as_tensor(history.observations[None]),
                torch.as_tensor(previous_actions[None]),
                torch.as_tensor(previous_rewards[None]),
            )
        np.testing.assert_array_equal(logits[0].argmax(-1).numpy(), history.actions)


KEY = "zoo/DarkKeyToDoor-v0"


@pytest.fixture(scope="module")
def key_dataset(tmp_path_factory):
    # Episodes end early at the door, so episode boundaries fall anywhere in a window.
    source = TabularQLearning(
        learning_rate=1.0, gamma=0.95, initial_value=1.0, epsilon_start=0.0, epsilon_end=0.0,
        return_levels=2, planning_sweeps=5,
    )  # fmt: skip
    tasks = zoo.envs.tasks(KEY, "train")[::500]
    return collect_histories(KEY, source, tmp_path_factory.mktemp("key"), episodes=12, tasks=tasks)


def test_training_windows_mark_the_step_after_every_episode_end(key_dataset):
    agent = AlgorithmDistillation(key_dataset, context_length=60, episode_starts=True, seed=1, **TINY)
    assert agent.config.episode_starts
    assert any(h.terminated.any() for h in key_dataset.histories)  # some episodes end at the door
    for _ in range(5):
        batch = agent.sample_batch()
        assert batch["episode_starts"].shape == batch["targets"].shape
    # Rebuild one window by hand from the sampler's own draw.
    agent.rng = np.random.default_rng(7)
    batch = agent.sample_batch()
    rng = np.random.default_rng(7)
    index = int(rng.integers(len(key_dataset.histories), size=agent.batch_size)[0])
    history = key_dataset.histories[index]
    start = int(rng.integers(len(history) - 60 + 1))
    ends = np.concatenate(([True], history.dones))[start : start + 60]
    np.testing.assert_array_equal(batch["episode_starts"][0].numpy(), ends)
    # Plain models draw no flags.
    assert (
        "episode_starts" not in AlgorithmDistillation(key_dataset, context_length=60, **TINY).sample_batch()
    )


def test_evaluation_and_predict_feed_the_model_the_episode_boundaries(key_dataset, tmp_path):
    agent = AlgorithmDistillation(key_dataset, context_length=60, episode_starts=True, seed=1, **TINY)
    agent.learn(3)
    fed = []
    original = agent.policy.step

    def spy(cache, observations, actions, rewards, active=None, episode_starts=None):
        if active is None or active[0]:
            fed.append(bool(episode_starts[0]))
        return original(cache, observations, actions, rewards, active, episode_starts)

    agent.policy.step = spy  # type: ignore[method-assign]
    result = evaluate_in_context(agent, KEY, tasks=[((0, 0), (0, 1))], episodes=3, seed=0)
    # The flags are True exactly on the first step of each of the 3 episodes, whose lengths
    # (the steps between the flags) are the episode lengths the evaluation ran.
    assert result.returns.shape == (1, 3) and fed[0] and sum(fed) == 3
    lengths = np.diff([*np.flatnonzero(fed), len(fed)])
    assert all(1 <= length <= 50 for length in lengths) and len(fed) == lengths.sum()
    agent.policy.step = original  # type: ignore[method-assign]
    # predict: the first call starts an episode by itself; later calls must say.
    _, state = agent.predict(np.array([3]))
    with pytest.raises(ValueError, match=r"episode_start=None: this model marks the first step"):
        agent.predict(np.array([4]), state, reward=0.0)
    with pytest.raises(ValueError, match=r"episode_start='no' is not allowed"):
        agent.predict(np.array([4]), state, reward=0.0, episode_start="no")
    agent.predict(np.array([4]), state, reward=0.0, episode_start=np.array([False]))
    # Saved and loaded, the flag is part of the architecture.
    agent.save(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["model"]["episode_starts"] is True
    assert AlgorithmDistillation.load(tmp_path / "model").config.episode_starts
    # The flag passes the trust boundary as a boolean only; without it the weights do not fit.
    from zoo.hub.trust import UntrustedFileError

    for value, error in (("yes", UntrustedFileError), (False, ValueError)):
        config["model"]["episode_starts"] = value
        (tmp_path / "model" / "config.json").write_text(json.dumps(config))
        with pytest.raises(error, match=r"episode_start|model\.safetensors"):
            AlgorithmDistillation.load(tmp_path / "model")
    with pytest.raises(ValueError, match=r"episode_starts=1 is not allowed; use True or False"):
        AlgorithmDistillation(key_dataset, context_length=60, episode_starts=1)  # type: ignore[arg-type]
