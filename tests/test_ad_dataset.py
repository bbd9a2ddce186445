"""AD learning-history datasets: collection, memmap round trip, resume, corruption, sources."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

import zoo.envs
from zoo.agents.ad import (
    UCB,
    HistoryDataset,
    NoisyExpert,
    SB3Source,
    TabularQLearning,
    ThompsonSampling,
    collect_histories,
)

ROOM = "zoo/DarkRoom-v0"
SMALL = {"size": 3}


def _collect(directory, **kwargs):
    arguments = dict(
        env_id=ROOM,
        source=TabularQLearning(),
        directory=directory,
        episodes=6,
        env_kwargs=SMALL,
        seed=3,
        tasks_per_batch=3,
    )
    arguments.update(kwargs)
    return collect_histories(**arguments)


def test_large_arrays_stay_memory_mapped(tmp_path, monkeypatch):
    from zoo.hub import trust

    _collect(tmp_path / "data")
    monkeypatch.setattr(trust, "MMAP_MIN_BYTES", 0)
    for history in HistoryDataset.load(tmp_path / "data").histories:
        assert isinstance(history.observations, np.memmap) and isinstance(history.actions, np.memmap)
        assert not history.observations.flags.writeable


def test_loading_many_small_histories_does_not_keep_a_file_open_each(tmp_path):
    # A memory map keeps its file open; 800 bandit tasks x 7 arrays once exceeded the usual
    # limit of 1024 open files ("Too many open files"). Small arrays are read, so the open files
    # do not grow with the number of tasks.
    bandit = "zoo/AdversarialBandit-v0"
    tasks = zoo.envs.tasks(bandit, "train")[:300]
    collect_histories(bandit, ThompsonSampling(), tmp_path / "bandit", episodes=5, tasks=tasks, seed=0)
    before = len(os.listdir("/proc/self/fd"))
    dataset = HistoryDataset.load(tmp_path / "bandit")
    assert len(dataset) == 300
    assert len(os.listdir("/proc/self/fd")) - before < 10


def test_round_trip_collect_memmap_reload(tmp_path):
    dataset = _collect(tmp_path / "data")
    tasks = zoo.envs.tasks(ROOM, "train", **SMALL)
    assert dataset.tasks == tasks and len(dataset) == len(tasks)
    reloaded = HistoryDataset.load(tmp_path / "data")
    for history in reloaded.histories:
        assert not isinstance(history.observations, np.memmap)  # small arrays are read
        assert len(history) == 6 * 20 and history.episodes == 6  # DarkRoom: 20-step episodes
        assert history.dones[19::20].all() and history.dones.sum() == 6
        assert history.actions.dtype == np.int64 and history.rewards.dtype == np.float32
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())
    assert manifest["env_id"] == ROOM and manifest["env_kwargs"] == SMALL
    assert manifest["source"] == {
        "name": "q_learning",
        "hyperparameters": TabularQLearning().hyperparameters(),
    }
    assert manifest["observation_space"]["n"] == 9 and manifest["action_space"]["n"] == 5
    # The recorded rewards are the environment's: +1 exactly on steps that end on the goal.
    for task, history in zip(reloaded.tasks, reloaded.histories):
        goal_index = task[0] * 3 + task[1]
        next_cells = np.append(history.observations[1:], -1)
        starts_next_episode = history.dones
        on_goal = (next_cells == goal_index) & ~starts_next_episode
        assert np.all(history.rewards[on_goal] == 1.0)


def test_interrupted_collection_resumes_to_the_same_data(tmp_path):
    reference = _collect(tmp_path / "reference")

    class Interrupt(Exception):
        pass

    def stop_after_four(task_index: int) -> None:
        if task_index == 3:  # in the middle of the second batch of three
            raise Interrupt

    with pytest.raises(Interrupt):
        _collect(tmp_path / "resumed", on_task_written=stop_after_four)
    partial = HistoryDataset.load(tmp_path / "resumed")
    assert len(partial) == 4
    written = []
    resumed = _collect(tmp_path / "resumed", on_task_written=written.append)
    assert written == [4, 5, 6]  # completed tasks are not collected again
    for left, right in zip(reference.histories, resumed.histories):
        for name, array in left.arrays().items():
            np.testing.assert_array_equal(array, right.arrays()[name])


def test_resuming_with_other_settings_raises(tmp_path):
    _collect(tmp_path / "data")
    with pytest.raises(ValueError, match="episodes"):
        _collect(tmp_path / "data", episodes=7)


def test_truncated_file_raises_naming_it(tmp_path):
    _collect(tmp_path / "data")
    victim = tmp_path / "data" / "task_00002_observations.npy"
    victim.write_bytes(victim.read_bytes()[:-40])
    with pytest.raises(ValueError, match=re.escape("task_00002_observations.npy")):
        HistoryDataset.load(tmp_path / "data")


def test_missing_file_and_bad_manifest_raise(tmp_path):
    _collect(tmp_path / "data")
    (tmp_path / "data" / "task_00001_rewards.npy").unlink()
    with pytest.raises(ValueError, match=re.escape("task_00001_rewards.npy")):
        HistoryDataset.load(tmp_path / "data")
    (tmp_path / "data" / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest"):
        HistoryDataset.load(tmp_path / "data")
    with pytest.raises(ValueError, match=re.escape("manifest.json")):
        HistoryDataset.load(tmp_path / "nowhere")


def test_subsample_keeps_every_kth_episode(tmp_path):
    dataset = _collect(tmp_path / "data")
    returns = dataset.episode_returns()
    thinned = HistoryDataset.load(tmp_path / "data", subsample=2)
    np.testing.assert_allclose(thinned.episode_returns(), returns[:, ::2])
    assert all(history.episodes == 3 and len(history) == 60 for history in thinned.histories)
    with pytest.raises(ValueError, match="every"):
        dataset.subsample(0)


def test_bandit_sources_improve_over_their_history(tmp_path):
    tasks = zoo.envs.tasks("zoo/AdversarialBandit-v0", "train")[:40]
    for source in (UCB(), ThompsonSampling()):
        dataset = collect_histories(
            "zoo/AdversarialBandit-v0", source, tmp_path / source.name, episodes=120, tasks=tasks
        )
        returns = dataset.episode_returns()
        assert returns.shape == (40, 120)
        assert returns[:, -40:].mean() > returns[:, :10].mean() + 0.1


def test_noisy_expert_goes_from_random_to_optimal(tmp_path):
    dataset = collect_histories(
        ROOM, NoisyExpert(decay_fraction=0.5), tmp_path / "data", episodes=20, env_kwargs=SMALL
    )
    returns = dataset.episode_returns()
    optimal = np.array(
        [21 - abs(row - 1) - abs(col - 1) if (row, col) != (1, 1) else 20 for row, col in dataset.tasks]
    )
    np.testing.assert_array_equal(returns[:, -1], optimal)  # epsilon is 0 in the second half
    assert returns[:, 0].mean() < optimal.mean() - 3
    tasks = zoo.envs.tasks("zoo/DarkKeyToDoor-v0", "train", size=4)[:8]
    keys = collect_histories(
        "zoo/DarkKeyToDoor-v0",
        NoisyExpert(decay_fraction=0.0),
        tmp_path / "keys",
        episodes=3,
        tasks=tasks,
        env_kwargs={"size": 4},
    )
    assert np.all(keys.episode_returns() == 2.0)


def test_sb3_source_records_its_learning_stream(tmp_path):
    tasks = zoo.envs.tasks(ROOM, "train", **SMALL)[:2]
    source = SB3Source("A2C", hyperparameters={"n_steps": 5, "policy_kwargs": {"net_arch": [8]}})
    dataset = collect_histories(ROOM, source, tmp_path / "data", episodes=3, tasks=tasks, env_kwargs=SMALL)
    assert dataset.source["name"] == "sb3_a2c" and dataset.source["hyperparameters"]["algorithm"] == "A2C"
    for history in dataset.histories:
        assert history.episodes == 3 and len(history) == 60
        assert history.observations[0] == 4  # every episode starts in the centre cell of 3x3
        assert np.all(history.observations[20::20] == 4)


def test_optimistic_q_learning_explores_systematically_and_converges_on_dark_room() -> None:
    # Greedy, learning rate 1, Q0 = 1 / (1 - gamma): it tries untried (cell, action) pairs before it
    # settles, so every held-out goal is found and the optimal return reached.
    from zoo.agents.ad import source_learning_curve
    from zoo.envs.darkroom import DarkRoomEnv

    source = TabularQLearning(
        learning_rate=1.0, gamma=0.9, initial_value=10.0, epsilon_start=0.0, epsilon_end=0.0
    )
    curve = source_learning_curve(source, "zoo/DarkRoom-v0", split="test", episodes=200, seed=0)
    optimal = [DarkRoomEnv.optimal_return(goal) for goal in curve.tasks]
    np.testing.assert_allclose(curve.returns[:, -1], optimal)
    assert curve.mean[:5].mean() < 0.5 * np.mean(optimal)  # and it had to learn them


def test_return_levels_let_q_learning_hold_the_key_in_key_to_door() -> None:
    # The observation is the cell only; with return_levels=2 the table tells "key held" apart.
    from zoo.agents.ad import source_learning_curve

    tasks = zoo.envs.tasks("zoo/DarkKeyToDoor-v0", "test")[:20]
    kwargs = {
        "learning_rate": 1.0,
        "gamma": 0.9,
        "initial_value": 5.0,
        "epsilon_start": 0.0,
        "epsilon_end": 0.0,
    }
    late = {}
    for levels in (1, 2):
        source = TabularQLearning(return_levels=levels, **kwargs)
        assert source.hyperparameters()["return_levels"] == levels
        curve = source_learning_curve(source, "zoo/DarkKeyToDoor-v0", tasks=tasks, episodes=80, seed=0)
        late[levels] = curve.mean[-20:].mean()
    assert late[2] > late[1] + 0.3
    with pytest.raises(ValueError, match="return_levels=0 is not allowed"):
        TabularQLearning(return_levels=0)


def test_dyna_planning_backs_a_reward_up_a_remembered_path_at_once() -> None:
    # A chain 0 -> 1 -> 2 (action 1), rewarded and terminal on the last step. Plain Q-learning
    # only updates the pair just taken; a planning sweep replays the remembered first step too.
    from zoo.agents.ad.sources import _QLearningPolicy

    def q_after_the_chain(sweeps: int) -> np.ndarray:
        source = TabularQLearning(learning_rate=1.0, gamma=0.9, initial_value=0.0, planning_sweeps=sweeps)
        policy = _QLearningPolicy(1, 3, 2, 10, np.random.default_rng(0), source)
        yes, no = np.array([True]), np.array([False])
        for state, reward, ends in ((0, 0.0, no), (1, 1.0, yes)):
            policy.observe(
                yes, np.array([state]), np.array([1]), np.array([reward]), ends, no, np.array([state + 1])
            )
        return policy.q[0]

    plain, planned = q_after_the_chain(0), q_after_the_chain(1)
    assert plain[0, 1] == 0.0 and plain[1, 1] == 1.0
    assert planned[0, 1] == pytest.approx(0.9) and planned[1, 1] == 1.0
    # Pairs never tried keep the initial value: optimism still drives exploration.
    assert planned[0, 0] == planned[1, 0] == planned[2].max() == 0.0


def test_dyna_q_learns_key_to_door_in_tens_of_episodes_where_q_learning_needs_hundreds() -> None:
    from zoo.agents.ad import source_learning_curve

    tasks = zoo.envs.tasks("zoo/DarkKeyToDoor-v0", "test")[::65]  # 20 pairs, keys in every row
    late = {}
    for sweeps in (0, 10):
        source = TabularQLearning(
            learning_rate=1.0, gamma=0.95, initial_value=1.0, epsilon_start=0.0, epsilon_end=0.0,
            return_levels=2, planning_sweeps=sweeps,
        )  # fmt: skip
        assert source.hyperparameters()["planning_sweeps"] == sweeps
        curve = source_learning_curve(source, "zoo/DarkKeyToDoor-v0", tasks=tasks, episodes=30, seed=0)
        late[sweeps] = curve.mean[-5:].mean()
    assert late[10] >= 1.9 and late[0] < 1.4, late
    with pytest.raises(ValueError, match=r"planning_sweeps=-1 is not allowed; use an integer >= 0"):
        TabularQLearning(planning_sweeps=-1)


@pytest.mark.parametrize("parallel", [{"n_jobs": 2}, {"address": "local"}])
def test_parallel_and_ray_collection_write_the_same_histories(tmp_path, parallel: dict) -> None:
    if "address" in parallel:
        pytest.importorskip("ray")
    tasks = zoo.envs.tasks("zoo/DarkRoom-v0", "train", size=3)[:6]
    common = {"episodes": 3, "tasks": tasks, "env_kwargs": {"size": 3}, "tasks_per_batch": 2, "seed": 4}
    serial = collect_histories("zoo/DarkRoom-v0", TabularQLearning(), tmp_path / "serial", **common)
    written: list[int] = []
    spread = collect_histories(
        "zoo/DarkRoom-v0",
        TabularQLearning(),
        tmp_path / "spread",
        on_task_written=written.append,
        **common,
        **parallel,
    )
    assert sorted(written) == list(range(6))
    for one, other in zip(serial.histories, spread.histories):
        np.testing.assert_array_equal(one.actions, other.actions)
        np.testing.assert_array_equal(one.rewards, other.rewards)


def test_local_ray_workers_run_at_the_callers_priority(monkeypatch) -> None:
    """Ray's default niceness 15 starves local trials on a shared machine; ``init_ray`` keeps ours."""
    ray = pytest.importorskip("ray")
    from zoo.agents.common.parallel import WORKER_NICENESS, init_ray

    monkeypatch.delenv(WORKER_NICENESS, raising=False)
    assert init_ray(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        assert not init_ray(num_cpus=1)  # already running: not started again
        niceness = ray.get(ray.remote(num_cpus=1)(lambda: os.nice(0)).remote())
    finally:
        ray.shutdown()
    assert niceness == os.nice(0)


def test_collection_refuses_bad_parallel_settings(tmp_path) -> None:
    with pytest.raises(ValueError, match="n_jobs=0 is not allowed"):
        collect_histories("zoo/DarkRoom-v0", TabularQLearning(), tmp_path / "a", episodes=1, n_jobs=0)
    with pytest.raises(ValueError, match="address='' is not allowed"):
        collect_histories("zoo/DarkRoom-v0", TabularQLearning(), tmp_path / "b", episodes=1, address="")


def test_collection_names_tasks_when_given_a_count_instead_of_tasks(tmp_path) -> None:
    # tasks=100 reads as "100 tasks"; it must say how to ask for that, not fail deep in list().
    with pytest.raises(
        ValueError, match=r"tasks=100 is not allowed.*tasks=zoo\.envs\.tasks\(env_id, split\)\[:n\]"
    ):
        collect_histories("zoo/DarkRoom-v0", TabularQLearning(), tmp_path / "a", episodes=1, tasks=100)
    with pytest.raises(ValueError, match="tasks='train' is not allowed; give a sequence of tasks"):
        collect_histories("zoo/DarkRoom-v0", TabularQLearning(), tmp_path / "b", episodes=1, tasks="train")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # nothing written


def test_every_function_taking_tasks_names_a_count_the_same_way(tmp_path) -> None:
    from zoo.agents.ad import (
        evaluate_in_context,
        evaluate_rl2,
        load_pretrained,
        source_learning_curve,
        train_rl2,
    )

    count = r"tasks=3 is not allowed; give a sequence of tasks.*\[:n\]"
    with pytest.raises(ValueError, match=count):
        source_learning_curve(TabularQLearning(), "zoo/DarkRoom-v0", episodes=1, tasks=3)
    with pytest.raises(ValueError, match=count):
        train_rl2("zoo/DarkRoom-v0", total_timesteps=8, tasks=3)
    with pytest.raises(ValueError, match=count):
        evaluate_rl2(None, "zoo/DarkRoom-v0", tasks=3)
    with pytest.raises(ValueError, match=r"tasks=\[\] is empty"):
        source_learning_curve(TabularQLearning(), "zoo/DarkRoom-v0", episodes=1, tasks=[])
    model = load_pretrained("zoo/DarkRoom-v0")
    with pytest.raises(ValueError, match=count):
        evaluate_in_context(model, "zoo/DarkRoom-v0", episodes=1, tasks=3)
    with pytest.raises(ValueError, match=r"tasks=\[\] is empty"):
        evaluate_in_context(model, "zoo/DarkRoom-v0", episodes=1, tasks=[])


def test_noisy_expert_swims_for_the_watermaze_platform_and_records_frames(tmp_path):
    # The expert reads each swimmer's state; the history holds the frames, and the same batch of
    # tasks gives the same frames through the native vector env and a SyncVectorEnv of single envs.
    tasks = zoo.envs.tasks("zoo/Watermaze-v0", "test")[:4]
    data = {}
    for vectorization in ("native", "sync"):
        data[vectorization] = collect_histories(
            "zoo/Watermaze-v0",
            NoisyExpert(decay_fraction=0.5, vectorization=vectorization),
            tmp_path / vectorization,
            episodes=6,
            tasks=tasks,
        )
    dataset = data["native"]
    history = dataset.histories[0]
    assert history.observations.shape == (6 * 50, 72, 96, 3) and history.observations.dtype == np.uint8
    returns = dataset.episode_returns()
    # epsilon is 0 in the second half: several platform visits per 50-step episode; random ~0.2.
    assert returns[:, 3:].mean() >= 3.0 and returns[:, :1].mean() < 1.5
    for mine, theirs in zip(dataset.histories, data["sync"].histories, strict=True):
        np.testing.assert_array_equal(mine.actions, theirs.actions)
        np.testing.assert_array_equal(mine.observations, theirs.observations)
