"""The factory of poisoned repos and folders: valid artifacts built once per session from real
agents, copied per test and poisoned one field or file at a time (see ``factory.py``)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .factory import ENV_ID, EvilModules, Hub


@dataclass(frozen=True)
class Artifacts:
    """Valid, tiny artifacts (read-only: tests poison copies)."""

    ppo: Path  #: PPO MlpPolicy net_arch=[8] on zoo/DarkRoom-v0, saved with zoo.hub.save_agent
    kppo: Path  #: KickstartedPPO (teacher: a PPO), same env
    ka2c: Path  #: KickstartedA2C, same env
    dqn: Path  #: DQN (a replay buffer class in its config), same env
    vecnorm: Path  #: PPO on CartPole-v1 with vec_normalize.json
    ad: Path  #: a tiny Algorithm Distillation model (agent.json + config.json + model.safetensors)
    dataset: Path  #: a tiny learning-history dataset (Dark Room 3x3, 2 episodes per task)
    sb3_zip: bytes  #: a real SB3 PPO .zip (pickled attributes), the base of pickle payloads


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    import torch
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    import zoo.envs  # noqa: F401 - registers the zoo ids
    from zoo import hub
    from zoo.agents import KickstartedA2C, KickstartedPPO, ad

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("valid-artifacts")
    tiny = {"net_arch": [8]}
    ppo = PPO("MlpPolicy", ENV_ID, policy_kwargs=dict(tiny), n_steps=16, batch_size=16, device="cpu", seed=0)
    hub.save_agent(ppo, root / "ppo", env_id=ENV_ID)
    ppo.save(root / "ppo.zip")
    kppo = KickstartedPPO(
        "MlpPolicy",
        ENV_ID,
        teacher=ppo,
        policy_kwargs=dict(tiny),
        n_steps=16,
        batch_size=16,
        device="cpu",
        seed=0,
    )
    hub.save_agent(kppo, root / "kppo", env_id=ENV_ID)
    ka2c = KickstartedA2C(
        "MlpPolicy", ENV_ID, teacher=ppo, policy_kwargs=dict(tiny), n_steps=5, device="cpu", seed=0
    )
    hub.save_agent(ka2c, root / "ka2c", env_id=ENV_ID)
    dqn = DQN(
        "MlpPolicy",
        ENV_ID,
        policy_kwargs=dict(tiny),
        buffer_size=100,
        learning_starts=0,
        device="cpu",
        seed=0,
    )
    hub.save_agent(dqn, root / "dqn", env_id=ENV_ID)

    venv = VecNormalize(make_vec_env("CartPole-v1", n_envs=1, seed=0))
    vec_model = PPO(
        "MlpPolicy", venv, policy_kwargs=dict(tiny), n_steps=16, batch_size=16, device="cpu", seed=0
    )
    venv.reset()
    for _ in range(5):
        venv.step([venv.action_space.sample()])
    hub.save_agent(vec_model, root / "vecnorm", env_id="CartPole-v1", vec_normalize=venv)
    venv.close()

    dataset = ad.collect_histories(
        ENV_ID, ad.NoisyExpert(), root / "dataset", episodes=2, env_kwargs={"size": 3}, seed=0
    )
    model = ad.AlgorithmDistillation(
        dataset,
        context_length=8,
        n_layers=1,
        n_heads=2,
        embed_dim=8,
        batch_size=4,
        warmup_steps=0,
        device="cpu",
    )
    hub.save_agent(model, root / "ad", env_id=ENV_ID)
    for folder in (root / "ppo", root / "kppo", root / "ka2c", root / "dqn", root / "vecnorm", root / "ad"):
        assert (folder / "config.json").is_file()
    assert (root / "vecnorm" / "vec_normalize.json").is_file()
    return Artifacts(
        ppo=root / "ppo",
        kppo=root / "kppo",
        ka2c=root / "ka2c",
        dqn=root / "dqn",
        vecnorm=root / "vecnorm",
        ad=root / "ad",
        dataset=root / "dataset",
        sb3_zip=(root / "ppo.zip").read_bytes(),
    )


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    """The file every payload creates if it ever runs; it must never exist."""
    path = tmp_path / "PAYLOAD-RAN.marker"
    yield path
    assert not path.exists(), f"PAYLOAD EXECUTED during the test: {path}"


@pytest.fixture
def evil(tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EvilModules]:
    """Importable modules whose import creates the marker (env ids ``evilmod_*:...``, allow-list look-alikes)."""
    modules = EvilModules(tmp_path / "evil", marker, monkeypatch, uuid.uuid4().hex[:10])
    yield modules
    modules.cleanup()


@pytest.fixture
def hub(hub_server: Any) -> Hub:
    """The local HF-compatible Hub (``hub_server`` from tests/conftest.py sets HF_ENDPOINT/HF_HOME)."""
    return Hub(hub_server)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside every snapshot / downloaded folder (targets of traversal and links)."""
    path = tmp_path / "outside"
    path.mkdir()
    return path


def copy_artifact(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination, symlinks=False)
    return destination
