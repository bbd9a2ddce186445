"""Fuzzing the trust boundary: mutate valid config.json / manifest.json files and load them.

Mutations: delete a key, replace a value by another JSON value of any type (huge and negative
ints, floats including NaN/inf as literals and as strings, paths, ``module:Env-v0`` ids, repo ids,
tagged objects naming classes, lists, dicts, null, booleans), insert unknown keys (``teacher``,
``tensorboard_log``, ``__class__``...), truncate the file's bytes; up to three at once.

Property: the load either succeeds and the result works (``predict`` on an observation of the
loaded space; the dataset's arrays and fields readable) or raises ``UntrustedFileError`` naming
the file. Any other exception fails, and the marker (written by every code payload the values
can name) never appears. Reproducible: ``derandomize=True``, no example database.
"""

from __future__ import annotations

import collections
import copy
import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from .conftest import Artifacts
from .factory import ENV_ID, OTHER_REPO, EvilModules, memory_guard, sb3_zip_payload

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

INSERTED_KEYS = [
    "teacher",
    "tensorboard_log",
    "__class__",
    "__schedule__",
    "env",
    "device",
    "policy",
    "_init_setup_model",
    "predict",
    "checkpoint_dir",
    "file",
    "evil",
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _get(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


class Attacker:
    """The values the fuzzer may write: plain JSON of every type plus the attacker's favourites."""

    def __init__(self, tmp: Path, evil: EvilModules, sb3_zip: bytes) -> None:
        payload = tmp / "fuzz-teacher.zip"
        payload.write_bytes(sb3_zip_payload(sb3_zip, evil.marker))
        self.strings = [
            str(payload),
            str(payload.with_suffix("")),
            evil.env_id,
            f"zoo:{ENV_ID}",
            "CartPole-v1",
            "NoSuchEnv-v9",
            OTHER_REPO,
            "../../../../etc/passwd",
            "/etc/passwd",
            "task_00001_rewards.npy",
            "..",
            "",
            "ReLU",
            "os:system",
        ]
        self.objects = [
            {"__class__": {"module": "os", "name": "system"}},
            {"__class__": {"module": "torch.nn_evil", "name": "ReLU"}},
            {"__class__": {"module": evil.env_module, "name": "Evil"}},
            {"__class__": {"module": "stable_baselines3_evil", "name": "Evil"}},
            {"__class__": {"module": "torch.nn", "name": "ReLU"}},
            {"__schedule__": "linear", "start": 1.0, "end": 0.0, "end_fraction": 1.0},
            {"__schedule__": "eval", "code": "0"},
            {"__tuple__": [1, "step"]},
            {"__float__": "nan"},
            {"type": "Discrete", "n": 10**12},
            {"dtype": "|O", "shape": [1], "data": [0]},
        ]

    def values(self) -> st.SearchStrategy[Any]:
        scalars = st.one_of(
            st.none(),
            st.booleans(),
            st.integers(min_value=-(2**70), max_value=2**70),
            st.sampled_from([0, -1, 1, 2, 3, 8, 2**31, 2**40, 2**63, 10**12, -(10**12)]),
            st.floats(allow_nan=True, allow_infinity=True),
            st.sampled_from(["nan", "inf", "-inf", "NaN", "Infinity"]),
            st.text(max_size=10),
            st.sampled_from(self.strings),
        )
        leaves = st.one_of(scalars, st.sampled_from(self.objects))
        return st.recursive(
            leaves,
            lambda children: st.one_of(
                st.lists(children, max_size=3),
                st.dictionaries(
                    st.one_of(st.text(max_size=6), st.sampled_from(INSERTED_KEYS)), children, max_size=3
                ),
            ),
            max_leaves=6,
        )


def mutate(data: st.DataObject, document: Any, attacker: Attacker) -> tuple[bytes, list[str]]:
    """Apply 1-3 mutations to a copy of ``document``; return the file's bytes and what was done."""
    document = json.loads(json.dumps(document))
    done: list[str] = []
    for _ in range(data.draw(st.integers(min_value=1, max_value=3), label="mutations")):
        paths = _paths(document)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        kind = data.draw(st.sampled_from(["delete", "replace", "replace", "insert"]), label="kind")
        parent = _get(document, path[:-1])
        if kind == "delete":
            del parent[path[-1]]
            done.append(f"delete {path}")
        elif kind == "replace":
            value = copy.deepcopy(data.draw(attacker.values(), label="value"))
            parent[path[-1]] = value
            done.append(f"replace {path} by {value!r}")
        else:
            target = _get(document, path)
            if not isinstance(target, dict):
                target = parent if isinstance(parent, dict) else document
            key = data.draw(st.one_of(st.sampled_from(INSERTED_KEYS), st.text(max_size=8)), label="key")
            value = copy.deepcopy(data.draw(attacker.values(), label="value"))
            target[key] = value
            done.append(f"insert {key!r}={value!r} at {path}")
    raw = json.dumps(document, indent=2, allow_nan=True).encode()
    if data.draw(st.integers(min_value=0, max_value=9), label="truncate?") == 0:
        cut = data.draw(st.integers(min_value=0, max_value=len(raw)), label="cut")
        raw = raw[:cut]
        done.append(f"truncate to {cut} bytes")
    return raw, done


def _judge(load: Any, use: Any, names: tuple[str, ...], marker: Path, done: list[str]) -> str:
    from zoo.hub.trust import UntrustedFileError

    note("mutations: " + "; ".join(done))
    error: BaseException | None = None
    result = None
    try:
        with memory_guard():
            result = load()
            use(result)
    except UntrustedFileError as caught:
        error = caught
    except Exception as caught:  # the property: nothing but UntrustedFileError
        assert not marker.exists(), f"PAYLOAD EXECUTED ({'; '.join(done)})"
        raise AssertionError(
            f"{type(caught).__name__} instead of UntrustedFileError after {'; '.join(done)}: {str(caught)[:800]}"
        ) from caught
    assert not marker.exists(), f"PAYLOAD EXECUTED ({'; '.join(done)})"
    if error is None:
        event("loaded and usable")
        return "loaded"
    label = f"refused: {getattr(error, 'field', None) or 'file'}".split(".")[0]
    event(label)
    assert any(name in str(error) for name in names), f"the error names none of {names}: {error}"
    return label


def _check_spread(outcomes: collections.Counter[str]) -> None:
    """The fuzzer explores both sides: some mutated files still load, others are refused for many reasons."""
    print(dict(outcomes.most_common()))
    assert outcomes["loaded"] >= 5, outcomes
    assert sum(count for label, count in outcomes.items() if label != "loaded") >= 20, outcomes
    assert len(outcomes) >= 4, outcomes


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Hub: a config that makes the loader resolve a repo gets NotCachedError, which fails the property."""
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize("base", ["ppo", "kppo"])
def test_fuzzed_agent_config_loads_or_is_refused(
    base: str,
    artifacts: Artifacts,
    tmp_path: Path,
    marker: Path,
    evil: EvilModules,
    offline_hub: None,
) -> None:
    from zoo import hub

    source = getattr(artifacts, base)
    valid = json.loads((source / "config.json").read_text())
    attacker = Attacker(tmp_path, evil, artifacts.sb3_zip)
    counter = itertools.count()

    def use(model: Any) -> None:
        model.observation_space.seed(0)
        observation = model.observation_space.sample()
        action, _ = model.predict(observation, deterministic=True)
        assert model.action_space.contains(
            np.asarray(action).reshape(model.action_space.shape).astype(model.action_space.dtype)
        )

    @FUZZ
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        folder = tmp_path / f"case-{next(counter)}"
        shutil.copytree(source, folder)
        raw, done = mutate(data, valid, attacker)
        (folder / "config.json").write_bytes(raw)
        outcomes[
            _judge(
                lambda: hub.load_agent(folder, device="cpu"),
                use,
                ("config.json", "model.safetensors"),
                marker,
                done,
            )
        ] += 1
        shutil.rmtree(folder, ignore_errors=True)

    outcomes: collections.Counter[str] = collections.Counter()
    run()
    _check_spread(outcomes)


def test_fuzzed_dataset_manifest_loads_or_is_refused(
    artifacts: Artifacts,
    tmp_path: Path,
    marker: Path,
    evil: EvilModules,
    offline_hub: None,
) -> None:
    from zoo.agents.ad import HistoryDataset

    valid = json.loads((artifacts.dataset / "manifest.json").read_text())
    attacker = Attacker(tmp_path, evil, artifacts.sb3_zip)
    counter = itertools.count()
    names = ("manifest.json", *sorted(path.name for path in artifacts.dataset.glob("task_*.npy")))

    def use(dataset: Any) -> None:
        for history in dataset.histories:
            arrays = [np.asarray(array) for array in history.arrays().values()]
            assert len({len(array) for array in arrays}) == 1
            assert np.isfinite(arrays[2]).all()
        assert isinstance(dataset.env_id, str) and ":" not in dataset.env_id
        assert len(dataset.tasks) == len(dataset)
        assert dataset.n_actions >= 1
        dataset.observation_space  # noqa: B018
        dataset.env_kwargs  # noqa: B018
        dataset.episode_returns()

    @FUZZ
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        folder = tmp_path / f"case-{next(counter)}"
        shutil.copytree(artifacts.dataset, folder)
        raw, done = mutate(data, valid, attacker)
        (folder / "manifest.json").write_bytes(raw)
        outcomes[_judge(lambda: HistoryDataset.load(folder), use, names, marker, done)] += 1
        shutil.rmtree(folder, ignore_errors=True)

    outcomes: collections.Counter[str] = collections.Counter()
    run()
    _check_spread(outcomes)
