"""The trust boundary's own promises: files follow the umask, corrupt files are named, limits hold.

The attacker's view (poisoned repos, every loader x every payload, the fuzzer) is in
``tests/security``; this file checks the writers and the smaller guarantees of ``zoo.hub.trust``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

import zoo.hub as hub
from zoo.agents.ad import AlgorithmDistillation, NoisyExpert, collect_histories
from zoo.hub import trust
from zoo.hub.files import atomic_write_bytes
from zoo.hub.trust import UntrustedFileError

ROOM = "zoo/DarkRoom-v0"
TINY_AD = dict(n_layers=1, n_heads=2, embed_dim=16, batch_size=8, warmup_steps=2, context_length=20)


@pytest.fixture
def umask():
    """Set a umask for one test and restore the previous one."""
    previous = os.umask(0o022)
    os.umask(previous)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(previous)


def modes(folder: Path) -> dict[str, int]:
    return {
        path.relative_to(folder).as_posix(): stat.S_IMODE(path.stat().st_mode)
        for path in folder.rglob("*")
        if path.is_file()
    }


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_atomic_writer_follows_the_umask(tmp_path, umask, mask):
    umask(mask)
    atomic_write_bytes(tmp_path / "file.bin", b"x")
    assert stat.S_IMODE((tmp_path / "file.bin").stat().st_mode) == 0o666 & ~mask
    assert [path.name for path in tmp_path.iterdir()] == ["file.bin"]  # no temporary left behind


def test_saved_agents_datasets_and_checkpoints_follow_the_umask(tmp_path, umask):
    umask(0o022)
    hub.save_agent(
        PPO("MlpPolicy", "CartPole-v1", policy_kwargs={"net_arch": [8]}, n_steps=16), tmp_path / "ppo"
    )
    dataset = collect_histories(ROOM, NoisyExpert(), tmp_path / "data", episodes=2, env_kwargs={"size": 3})
    agent = AlgorithmDistillation(dataset, checkpoint_dir=tmp_path / "ckpt", checkpoint_every=1, **TINY_AD)
    agent.learn(1)
    agent.save(tmp_path / "ad")
    found = {
        **modes(tmp_path / "ppo"),
        **modes(tmp_path / "data"),
        **modes(tmp_path / "ad"),
        **modes(tmp_path / "ckpt"),
    }
    assert {
        "config.json",
        "model.safetensors",
        "manifest.json",
        "task_00000_rewards.npy",
        "latest.json",
    } <= set(found)
    assert set(found.values()) == {0o644}, found
    checkpoint = next((tmp_path / "ckpt").glob("step_*"))
    assert stat.S_IMODE(checkpoint.stat().st_mode) == 0o755


def test_replay_video_follows_the_umask(tmp_path, umask):
    umask(0o027)
    model = PPO("MlpPolicy", ROOM, policy_kwargs={"net_arch": [8]}, n_steps=16)
    hub.record_video(model, ROOM, tmp_path / "replay.mp4", n_steps=3)
    assert stat.S_IMODE((tmp_path / "replay.mp4").stat().st_mode) == 0o640


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ad")
    dataset = collect_histories(ROOM, NoisyExpert(), folder / "data", episodes=2, env_kwargs={"size": 3})
    agent = AlgorithmDistillation(
        dataset, checkpoint_dir=folder / "ckpt", checkpoint_every=1, seed=1, **TINY_AD
    )
    agent.learn(1)
    return dataset, folder / "ckpt"


def _resume(dataset, checkpoint_dir):
    agent = AlgorithmDistillation(
        dataset, checkpoint_dir=checkpoint_dir, checkpoint_every=1, seed=1, **TINY_AD
    )
    agent.learn(2, resume=True)
    return agent


def _copy(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda ckpt: (ckpt / "latest.json").write_text('{"checkpoint": "step_0'), "latest.json"),
        (lambda ckpt: (ckpt / "latest.json").write_text('{"checkpoint": "../../etc"}'), "latest.json"),
        (lambda ckpt: (ckpt / "latest.json").write_text('{"checkpoint": 3}'), "latest.json"),
        (lambda ckpt: _step(ckpt, "state.json").write_text("{"), "state.json"),
        (lambda ckpt: _step(ckpt, "state.json").write_text('{"param_groups": []}'), "step_"),
        (lambda ckpt: _truncate(_step(ckpt, "state.safetensors")), "state.safetensors"),
    ],
    ids=[
        "truncated-latest",
        "traversal-latest",
        "wrong-type-latest",
        "truncated-state",
        "incomplete-state",
        "truncated-weights",
    ],
)
def test_corrupt_ad_checkpoints_are_named(trained_checkpoint, tmp_path, damage, named):
    dataset, checkpoint = trained_checkpoint
    copy = _copy(checkpoint, tmp_path / "ckpt")
    damage(copy)
    with pytest.raises(UntrustedFileError, match=named):
        _resume(dataset, copy)


def _step(checkpoint: Path, name: str) -> Path:
    return next(checkpoint.glob("step_*")) / name


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-7])


def test_intact_ad_checkpoint_resumes(trained_checkpoint, tmp_path):
    dataset, checkpoint = trained_checkpoint
    assert _resume(dataset, _copy(checkpoint, tmp_path / "ckpt")).num_steps == 2


def test_loading_an_ad_model_does_not_reseed_the_process(tmp_path):
    dataset = collect_histories(ROOM, NoisyExpert(), tmp_path / "data", episodes=2, env_kwargs={"size": 3})
    AlgorithmDistillation(dataset, seed=7, **TINY_AD).save(tmp_path / "ad")
    after = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        loaded = AlgorithmDistillation.load(tmp_path / "ad", device="cpu")
        after.append(torch.rand(3))
    # Reseeding with the saved seed would make both draws equal.
    assert not torch.equal(after[0], after[1])
    assert loaded.seed == 7


def test_teachers_nest_only_to_the_depth_limit():
    with (
        trust.resolving_teacher("a"),
        trust.resolving_teacher("b"),
        pytest.raises(ValueError, match=r"teacher='c'.*at most 2"),
        trust.resolving_teacher("c"),
    ):
        pass
    with trust.resolving_teacher("d"):  # the count is released on exit
        pass


def test_class_references_must_be_inside_an_allowed_package_not_a_prefix_of_one():
    with pytest.raises(UntrustedFileError, match="not allowed"):
        trust.resolve_class({"module": "torch.nn_evil", "name": "Module"}, path="config.json", field_name="x")
    with pytest.raises(UntrustedFileError, match="not allowed"):
        trust.resolve_class({"module": "os", "name": "system"}, path="config.json", field_name="x")
    assert trust.resolve_class({"module": "torch.nn", "name": "ReLU"}) is torch.nn.ReLU


def test_safetensors_header_must_tile_the_file(tmp_path):
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(4), "b": torch.ones(2, 3)}, str(tmp_path / "w.safetensors"))
    assert trust.safetensors_header(tmp_path / "w.safetensors") == {"a": (4,), "b": (2, 3)}
    raw = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(raw[:-4])
    with pytest.raises(UntrustedFileError, match=r"cut\.safetensors.*truncated"):
        trust.safetensors_header(tmp_path / "cut.safetensors")
    with pytest.raises(UntrustedFileError, match="shape"):
        trust.check_safetensors_shapes(tmp_path / "w.safetensors", {"a": (4,), "b": (3, 2)})
    np.save(tmp_path / "fake.safetensors", np.zeros(3))  # another format behind the name
    with pytest.raises(UntrustedFileError, match=r"fake\.safetensors"):
        trust.safetensors_header(tmp_path / "fake.safetensors.npy")


@pytest.mark.parametrize(
    "error",
    [
        UntrustedFileError("/data/run/manifest.json", "is not JSON", field="episodes"),
        hub.HubError("no such revision", repo_id="org/agent", revision="v2", filename="config.json"),
        hub.HubNotFoundError("not found", repo_id="org/agent", filename="model.safetensors"),
        hub.UnsafeFormatError("only a pickle", repo_id="org/agent", filename="model.zip"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_errors_survive_pickling_so_a_worker_process_reports_them(error: Exception) -> None:
    # A process pool (or Ray) pickles a worker's exception; one that cannot be rebuilt breaks the
    # pool ("BrokenProcessPool") and hides the message, so each must round-trip as itself.
    import pickle

    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
