"""Learning-history datasets in the ecosystem: HF ``datasets`` (Parquet + dataset card) and Minari.

``datasets.load_dataset`` runs in a subprocess whose ``HF_ENDPOINT`` is the local test Hub (both
``datasets`` and ``huggingface_hub`` read the endpoint once, at import), as a user would run it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from zoo import hub
from zoo.agents import ad
from zoo.agents.ad.dataset import ARRAY_NAMES, OPTIONAL_ARRAY_NAMES

pytest.importorskip("pyarrow")

ORG = "zoo-test"
ALL_ARRAYS = ARRAY_NAMES + OPTIONAL_ARRAY_NAMES


@pytest.fixture
def minari_path(tmp_path, monkeypatch):
    pytest.importorskip("minari")
    path = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(path))
    return path


def _key_to_door(folder: Path) -> ad.HistoryDataset:
    """Key-to-Door on a 3x3 grid: episodes that terminate (door reached) and some cut at 50 steps."""
    tasks = [((0, 0), (2, 2)), ((1, 1), (0, 2)), ((2, 0), (0, 1))]
    return ad.collect_histories(
        "zoo/DarkKeyToDoor-v0",
        ad.NoisyExpert(decay_fraction=1.0),
        folder,
        episodes=4,
        tasks=tasks,
        env_kwargs={"size": 3},
    )


def _assert_same_histories(left: ad.HistoryDataset, right: ad.HistoryDataset) -> None:
    assert len(left) == len(right)
    for first, second in zip(left.histories, right.histories):
        for name in ALL_ARRAYS:
            a, b = getattr(first, name), getattr(second, name)
            assert a.dtype == b.dtype, name
            np.testing.assert_array_equal(a, b, err_msg=name)


# ---------------------------------------------------------------------------------------------
# What collection records
# ---------------------------------------------------------------------------------------------


def test_collection_records_terminated_truncated_and_final_observations(tmp_path):
    dataset = _key_to_door(tmp_path / "data")
    size = 3
    for history, task in zip(dataset.histories, dataset.tasks):
        np.testing.assert_array_equal(history.terminated | history.truncated, history.dones)
        assert history.final_observations.shape == (history.episodes,)
        ends = np.flatnonzero(history.dones)
        door = task[1][0] * size + task[1][1]
        # An episode terminates on the door (with the key); the others were cut at 50 steps.
        assert (history.final_observations[history.terminated[ends]] == door).all()
        lengths = np.diff(np.concatenate(([-1], ends)))
        assert (lengths[history.truncated[ends]] == 50).all()
        assert (lengths[~history.truncated[ends]] < 50).all()
    assert any(history.terminated.any() for history in dataset.histories)
    # reloading keeps them; subsampling keeps one final observation per kept episode
    loaded = ad.HistoryDataset.load(tmp_path / "data")
    _assert_same_histories(dataset, loaded)
    half = loaded.subsample(2).histories[0]
    assert half.final_observations.shape == (half.episodes,)
    np.testing.assert_array_equal(half.final_observations, loaded.histories[0].final_observations[::2])


def test_vector_source_and_sb3_source_record_the_same_kind_of_end(tmp_path):
    pytest.importorskip("stable_baselines3")
    dataset = ad.collect_histories(
        "zoo/DarkRoom-v0",
        ad.SB3Source("A2C", hyperparameters={"n_steps": 5}),
        tmp_path / "sb3",
        episodes=2,
        tasks=[(0, 0)],
        env_kwargs={"size": 3},
    )
    history = dataset.histories[0]
    # Dark Room never terminates: both episodes end by the 20-step time limit
    assert not history.terminated.any() and history.truncated.sum() == 2
    assert history.final_observations.shape == (2,)
    assert ((history.final_observations >= 0) & (history.final_observations < 9)).all()


def test_old_datasets_without_the_optional_arrays_still_load_and_flags_are_recovered(tmp_path):
    dataset = _key_to_door(tmp_path / "data")
    manifest_path = tmp_path / "data" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["completed"].values():
        for name in OPTIONAL_ARRAY_NAMES:
            (tmp_path / "data" / entry["files"].pop(name)["file"]).unlink()
    manifest_path.write_text(json.dumps(manifest))
    old = ad.HistoryDataset.load(tmp_path / "data")
    for recorded, history in zip(dataset.histories, old.histories):
        assert history.terminated is None and history.final_observations is None
        terminated, truncated = ad.export.episode_flags(history, 50)
        np.testing.assert_array_equal(terminated, recorded.terminated & ~recorded.truncated)
        np.testing.assert_array_equal(truncated, recorded.truncated)
        table = ad.transitions_table(history, 0, None, 50).to_pydict()
        ends = np.flatnonzero(history.dones)
        assert all(table["next_observation"][index] is None for index in ends)
        assert None not in [
            table["next_observation"][index] for index in range(len(history)) if index not in ends
        ]


def test_poisoned_optional_arrays_are_refused_naming_the_file(tmp_path):
    from zoo.hub.trust import UntrustedFileError

    _key_to_door(tmp_path / "data")
    folder = tmp_path / "data"
    manifest = json.loads((folder / "manifest.json").read_text())
    files = manifest["completed"]["0"]["files"]

    terminated = np.load(folder / files["terminated"]["file"])
    flipped = terminated.copy()
    flipped[0] = not flipped[0]
    np.save(folder / files["terminated"]["file"], flipped)
    with pytest.raises(UntrustedFileError, match=r"terminated.*disagrees with dones"):
        ad.HistoryDataset.load(folder)
    np.save(folder / files["terminated"]["file"], terminated)

    final = np.load(folder / files["final_observations"]["file"])
    np.save(folder / files["final_observations"]["file"], np.full_like(final, 99))
    with pytest.raises(UntrustedFileError, match=r"final_observations.*observation at index 0 is 99"):
        ad.HistoryDataset.load(folder)
    np.save(folder / files["final_observations"]["file"], final[:-1])
    with pytest.raises(
        UntrustedFileError, match=r"final_observations.npy: holds int64\[3\]; expected int64\[4\]"
    ):
        ad.HistoryDataset.load(folder)
    np.save(folder / files["final_observations"]["file"], final)

    files["truncated"]["file"] = "../outside.npy"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UntrustedFileError, match=r"completed.0.files.truncated.file"):
        ad.HistoryDataset.load(folder)
    files["truncated"] = "not an object"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UntrustedFileError, match=r"completed.0.files.truncated"):
        ad.HistoryDataset.load(folder)


# ---------------------------------------------------------------------------------------------
# Parquet transitions, the dataset card and datasets.load_dataset
# ---------------------------------------------------------------------------------------------


def _expected_columns(dataset: ad.HistoryDataset) -> dict[str, list]:
    columns: dict[str, list] = {name: [] for name in ad.TRANSITION_COLUMNS}
    for task_index, (history, task) in enumerate(zip(dataset.histories, dataset.manifest["tasks"])):
        ends = np.flatnonzero(history.dones)
        following = np.concatenate((history.observations[1:], history.observations[:1]))
        following[ends] = history.final_observations
        episode = np.concatenate(([0], np.cumsum(history.dones)[:-1]))
        starts = np.concatenate(([0], ends + 1))
        columns["task_index"] += [task_index] * len(history)
        columns["task"] += [task] * len(history)
        columns["episode"] += episode.tolist()
        columns["step"] += (np.arange(len(history)) - starts[episode]).tolist()
        columns["observation"] += history.observations.tolist()
        columns["action"] += history.actions.tolist()
        columns["reward"] += history.rewards.tolist()
        columns["terminated"] += history.terminated.tolist()
        columns["truncated"] += history.truncated.tolist()
        columns["next_observation"] += following.tolist()
    return columns


def test_generate_dataset_card_points_datasets_at_the_parquet_files(tmp_path):
    from huggingface_hub import DatasetCard

    from zoo.hub.datasets import generate_dataset_card

    dataset = _key_to_door(tmp_path / "data")
    card = generate_dataset_card(dataset.manifest, f"{ORG}/keydoor", transitions=1234, episodes=12)
    assert isinstance(card, DatasetCard)
    data = card.data.to_dict()
    assert data["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/*.parquet"}]}
    ]
    assert data["task_categories"] == ["reinforcement-learning"]
    assert data["size_categories"] == ["1K<n<10K"]
    assert "zoo-DarkKeyToDoor-v0" in data["tags"]
    assert f'load_dataset("{ORG}/keydoor", split="train")' in card.text
    reparsed = DatasetCard(str(card))
    assert reparsed.data.to_dict()["configs"] == data["configs"]


def test_push_dataset_then_datasets_load_dataset_returns_the_transitions(hub_server, tmp_path):
    pytest.importorskip("datasets")
    dataset = _key_to_door(tmp_path / "data")
    (tmp_path / "data" / "README.md").write_text("stale card")  # replaced by the generated one
    repo_id = f"{ORG}/keydoor-histories"
    hub.push_dataset(tmp_path / "data", repo_id)

    # the training format is untouched and still loads through the trust boundary
    snapshot = hub.load_dataset_from_hub(repo_id)
    names = sorted(path.relative_to(snapshot).as_posix() for path in snapshot.rglob("*") if path.is_file())
    assert "manifest.json" in names and "README.md" in names
    assert [name for name in names if name.startswith("data/")] == [
        f"data/task_0000{i}.parquet" for i in range(3)
    ]
    _assert_same_histories(ad.HistoryDataset.load(snapshot), dataset)
    assert "stale card" not in (snapshot / "README.md").read_text()

    out = tmp_path / "loaded.json"
    code = (
        "import json, sys, datasets\n"
        f"d = datasets.load_dataset({repo_id!r}, split='train')\n"
        "json.dump({'columns': d.column_names, 'rows': d.num_rows, 'data': d.to_dict()}, open(sys.argv[1], 'w'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(out.read_text())
    total = sum(len(history) for history in dataset.histories)
    assert loaded["rows"] == total
    assert loaded["columns"] == list(ad.TRANSITION_COLUMNS)
    expected = _expected_columns(dataset)
    for name in ad.TRANSITION_COLUMNS:
        assert loaded["data"][name] == expected[name], name
    # the datasets library fetched from the local Hub, never elsewhere
    assert any(path.endswith("data/task_00002.parquet") for _, path in hub_server.requests)


def test_push_dataset_mirrors_deletions_and_regenerates_the_parquet(hub_server, tmp_path):
    dataset = _key_to_door(tmp_path / "data")
    repo_id = f"{ORG}/keydoor-mirror"
    hub.push_dataset(tmp_path / "data", repo_id)
    smaller = tmp_path / "smaller"
    ad.collect_histories(
        dataset.env_id,
        ad.NoisyExpert(decay_fraction=1.0),
        smaller,
        episodes=2,
        tasks=dataset.tasks[:1],
        env_kwargs={"size": 3},
    )
    commit = hub.push_dataset(smaller, repo_id)
    snapshot = hub.load_dataset_from_hub(repo_id, revision=commit.oid)
    files = sorted(path.relative_to(snapshot).as_posix() for path in snapshot.rglob("*") if path.is_file())
    assert [name for name in files if name.startswith("data/")] == ["data/task_00000.parquet"]
    assert not any(name.startswith("task_00001") for name in files)


def test_parquet_of_box_observations_keeps_their_shape(tmp_path):
    import pyarrow.parquet as pq

    observations = np.arange(4 * 2 * 3, dtype=np.float32).reshape(4, 2, 3)
    history = ad.History(
        observations,
        np.array([0, 1, 0, 1]),
        np.ones(4, dtype=np.float32),
        np.array([False, True, False, False]),
        np.array([False, True, False, False]),
        np.array([False, False, False, False]),
        np.full((1, 2, 3), -1.0, dtype=np.float32),
    )
    table = ad.transitions_table(history, 3, [0.5, 0.25])
    pq.write_table(table, tmp_path / "t.parquet")
    rows = pq.read_table(tmp_path / "t.parquet").to_pylist()
    assert rows[0]["observation"] == observations[0].tolist()
    assert rows[0]["next_observation"] == observations[1].tolist()
    assert rows[1]["next_observation"] == [[-1.0] * 3] * 2
    assert rows[3]["next_observation"] is None  # an unfinished episode: the next observation is unknown
    assert [row["step"] for row in rows] == [0, 1, 0, 1] and [row["episode"] for row in rows] == [0, 0, 1, 1]
    assert rows[0]["task"] == [0.5, 0.25] and rows[0]["task_index"] == 3


# ---------------------------------------------------------------------------------------------
# Minari
# ---------------------------------------------------------------------------------------------


def test_export_minari_then_minari_load_dataset(tmp_path, minari_path):
    import minari

    dataset = _key_to_door(tmp_path / "data")
    ad.export_minari(dataset, "zoo/keydoor/noisy-expert-v0", author="zoo tests")
    exported = minari.load_dataset("zoo/keydoor/noisy-expert-v0")
    assert exported.total_episodes == sum(history.episodes for history in dataset.histories)
    assert exported.total_steps == sum(len(history) for history in dataset.histories)
    episodes = list(exported.iterate_episodes())
    metadata = list(exported.storage.get_episode_metadata(range(exported.total_episodes)))
    position = 0
    for task_index, (history, task) in enumerate(zip(dataset.histories, dataset.manifest["tasks"])):
        ends = np.flatnonzero(history.dones)
        start = 0
        for episode_number, end in enumerate(ends):
            episode, meta = episodes[position], metadata[position]
            np.testing.assert_array_equal(
                episode.observations,
                np.append(history.observations[start : end + 1], history.final_observations[episode_number]),
            )
            np.testing.assert_array_equal(episode.actions, history.actions[start : end + 1])
            np.testing.assert_array_equal(episode.rewards, history.rewards[start : end + 1])
            np.testing.assert_array_equal(episode.terminations, history.terminated[start : end + 1])
            np.testing.assert_array_equal(episode.truncations, history.truncated[start : end + 1])
            assert (episode.infos["task_index"] == task_index).all()
            assert meta["options"] == {"task": task}
            start, position = end + 1, position + 1
    assert exported.storage.metadata["zoo_manifest"]["env_id"] == "zoo/DarkKeyToDoor-v0"

    env = exported.recover_environment()
    try:
        assert env.spec.id == "zoo/DarkKeyToDoor-v0" and env.unwrapped.size == 3
        assert env.spec.max_episode_steps == 50
        observation, info = env.reset(seed=0, options={"task": dataset.tasks[0]})
        assert info["task"] == dataset.tasks[0]
        assert env.observation_space.contains(observation)
    finally:
        env.close()


def test_export_then_import_minari_round_trip(tmp_path, minari_path):
    dataset = _key_to_door(tmp_path / "data")
    ad.export_minari(dataset, "keydoor-v1")
    back = ad.import_minari("keydoor-v1", tmp_path / "imported")
    _assert_same_histories(back, dataset)
    assert back.manifest == dataset.manifest
    assert back.tasks == dataset.tasks
    # and the imported dataset trains AD as the original does
    assert back.episode_returns().shape == dataset.episode_returns().shape


def test_import_minari_of_a_dataset_written_by_minari_itself(tmp_path, minari_path):
    """A Minari dataset the zoo did not write: grouped by the reset options' task."""
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer

    buffers = []
    for index, task in enumerate([[0, 0], [2, 2], [0, 0]]):
        buffers.append(
            EpisodeBuffer(
                id=index,
                options={"task": task},
                observations=np.array([4, 5, 8]),
                actions=np.array([2, 3]),
                rewards=np.array([0.0, 1.0]),
                terminations=np.array([False, False]),
                truncations=np.array([False, index != 1]),
            )
        )
    minari.create_dataset_from_buffers(
        "plain/darkroom-v0", buffers, env=gym.spec("zoo/DarkRoom-v0"), algorithm_name="x", data_format="arrow"
    )
    imported = ad.import_minari("plain/darkroom-v0", tmp_path / "imported")
    assert imported.tasks == [(0, 0), (2, 2)]
    assert [len(history) for history in imported.histories] == [4, 2]
    np.testing.assert_array_equal(imported.histories[0].final_observations, [8, 8])
    # an episode cut off without a flag (the last one of the second task) counts as truncated
    assert imported.histories[1].truncated.tolist() == [False, True]
    assert imported.source == {"name": "minari", "hyperparameters": {"dataset_id": "plain/darkroom-v0"}}


def test_export_minari_refuses_bad_input_naming_the_parameter(tmp_path, minari_path):
    dataset = _key_to_door(tmp_path / "data")
    with pytest.raises(ValueError, match="dataset_id='no version'"):
        ad.export_minari(dataset, "no version")
    with pytest.raises(ValueError, match="dataset_id=3"):
        ad.export_minari(dataset, 3)
    with pytest.raises(ValueError, match="dataset="):
        ad.export_minari("folder", "ok-v0")
    with pytest.raises(ValueError, match="data_format='zip'"):
        ad.export_minari(dataset, "ok-v0", data_format="zip")

    unregistered = ad.HistoryDataset(dataset.histories, {**dataset.manifest, "env_id": "nowhere/Nothing-v0"})
    with pytest.raises(ValueError, match="env_id='nowhere/Nothing-v0' is not a registered"):
        ad.export_minari(unregistered, "ok-v0")

    old = ad.HistoryDataset(
        [ad.History(*history.arrays().values()) for history in dataset.histories], dataset.manifest
    )
    with pytest.raises(ValueError, match="no final observations"):
        ad.export_minari(old, "ok-v0")

    ad.export_minari(dataset, "ok-v0")
    with pytest.raises(ValueError, match="dataset_id='ok-v0' already exists"):
        ad.export_minari(dataset, "ok-v0")


def test_import_minari_refuses_bad_input_naming_the_parameter(tmp_path, minari_path):
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer

    with pytest.raises(ValueError, match="dataset_id='missing-v0' cannot be loaded"):
        ad.import_minari("missing-v0", tmp_path / "a")

    continuous = EpisodeBuffer(
        observations=np.zeros((3, 2), dtype=np.float32),
        actions=np.zeros((2, 2), dtype=np.float32),
        rewards=np.zeros(2),
        terminations=np.array([False, True]),
        truncations=np.array([False, False]),
    )
    minari.create_dataset_from_buffers(
        "continuous-v0",
        [continuous],
        observation_space=gym.spaces.Box(-1, 1, (2,), np.float32),
        action_space=gym.spaces.Box(-1, 1, (2,), np.float32),
        algorithm_name="x",
        data_format="arrow",
    )
    with pytest.raises(ValueError, match=r"dataset_id='continuous-v0' has action_space=Box.*Discrete"):
        ad.import_minari("continuous-v0", tmp_path / "b")

    def darkroom(dataset_id: str, **episode) -> None:
        fields = {
            "observations": np.array([4, 5, 8]),
            "actions": np.array([2, 3]),
            "rewards": np.array([0.0, 1.0]),
            "terminations": np.array([False, False]),
            "truncations": np.array([False, True]),
            **episode,
        }
        minari.create_dataset_from_buffers(
            dataset_id,
            [EpisodeBuffer(**fields)],
            env=gym.spec("zoo/DarkRoom-v0"),
            algorithm_name="x",
            data_format="arrow",
        )

    darkroom("nan-v0", rewards=np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="dataset_id='nan-v0': episode 0 has rewards that are not finite"):
        ad.import_minari("nan-v0", tmp_path / "c")
    darkroom("early-v0", truncations=np.array([True, True]))
    with pytest.raises(ValueError, match="dataset_id='early-v0': episode 0 ends before its last step"):
        ad.import_minari("early-v0", tmp_path / "d")
    assert not (tmp_path / "d").exists()  # nothing written before the checks passed

    darkroom("fine-v0")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(ValueError, match=r"directory=.*full.* is not empty"):
        ad.import_minari("fine-v0", tmp_path / "full")
