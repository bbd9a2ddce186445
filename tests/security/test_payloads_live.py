"""The payloads are live: handed to the unsafe primitive each one targets, each writes the marker.

These prove that "the marker was never written" in the other tests means "the loader did not
run the payload", not "the payload was a dud". They exercise the primitives directly (pickle,
SB3's zip loader, ``np.load(allow_pickle=True)``, ``gym.make("module:Env")``, ``importlib``),
never the zoo's loaders. The marker is removed after each proof so that the ``marker`` fixture's
final check stays meaningful.
"""

from __future__ import annotations

import importlib
import io
import pickle
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from .conftest import Artifacts
from .factory import (
    ENV_ID,
    EvilModules,
    npz_payload,
    object_npy_payload,
    pickle_payload,
    sb3_zip_payload,
    torch_pickle_payload,
)


def _proved(marker: Path) -> None:
    assert marker.exists(), "the payload did not run: the security tests built on it would prove nothing"
    marker.unlink()


def test_pickle_payload_runs_on_unpickling(marker: Path) -> None:
    data = pickle_payload(marker)
    assert not marker.exists()  # building it ran nothing
    pickle.loads(data)
    _proved(marker)


def test_torch_pickle_payload_runs_under_torch_load(marker: Path) -> None:
    import torch

    torch.load(io.BytesIO(torch_pickle_payload(marker)), weights_only=False)
    _proved(marker)


def test_sb3_zip_payload_runs_under_sb3_load(artifacts: Artifacts, marker: Path, tmp_path: Path) -> None:
    from stable_baselines3.common.save_util import load_from_zip_file

    path = tmp_path / "ppo-zoo-DarkRoom-v0.zip"
    path.write_bytes(sb3_zip_payload(artifacts.sb3_zip, marker))
    assert not marker.exists()
    load_from_zip_file(path, device="cpu")
    _proved(marker)


def test_object_npy_payload_runs_under_allow_pickle(marker: Path) -> None:
    np.load(io.BytesIO(object_npy_payload(marker)), allow_pickle=True)
    _proved(marker)


def test_npz_payload_runs_under_allow_pickle(marker: Path) -> None:
    with np.load(io.BytesIO(npz_payload(marker)), allow_pickle=True) as archive:
        archive["evil"]
    _proved(marker)


def test_module_env_id_imports_the_module(evil: EvilModules, marker: Path) -> None:
    import zoo.envs  # noqa: F401

    env = gym.make(evil.env_id)  # gymnasium imports the part before ':'
    env.close()
    _proved(marker)


@pytest.mark.parametrize("name", [*EvilModules.TOP_LEVEL, "torch.nn_evil", "torch.optim_evil"])
def test_allow_list_lookalike_modules_are_importable(evil: EvilModules, marker: Path, name: str) -> None:
    module = importlib.import_module(name)
    assert module.ReLU is module.Evil
    _proved(marker)
    assert ENV_ID  # the same env every other test uses


def test_teacher_payload_runs_if_a_loader_ever_resolves_it(
    artifacts: Artifacts, marker: Path, tmp_path: Path
) -> None:
    """``load_policy_from_zip`` (for a user's own local files) unpickles: a teacher path from a config must never reach it."""
    from zoo.agents.common.utils import load_policy_from_zip

    path = tmp_path / "weights.bin"
    path.write_bytes(sb3_zip_payload(artifacts.sb3_zip, marker))
    with pytest.raises(Exception):  # noqa: B017 - whatever it raises afterwards, the code already ran
        load_policy_from_zip(path)
    _proved(marker)
