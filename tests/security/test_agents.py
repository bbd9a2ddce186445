"""SB3-format agents (config.json + model.safetensors): every agent loader x every payload.

Loaders: ``load_agent(folder)``, ``load_from_hub``, ``zoo pull``, ``zoo enjoy --repo``,
``load_teacher(..., source="hub", org=...)``, ``KickstartedPPO/A2C(teacher="org/repo")`` and
``zoo train --algo kickstarted_ppo --teacher org/repo``. Each test builds a real agent folder,
poisons one field or file, stages it (locally or as a Hub repo) and asserts the outcome with
:func:`factory.check_outcome`: an ``UntrustedFileError`` naming the file and the field (or, for
fields that are merely ignored, a load that did not use them), and never the marker.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .conftest import Artifacts, copy_artifact
from .factory import (
    ENV_ID,
    ORG,
    OTHER_REPO,
    POISONED_REPO,
    TEACHER_PREFIX,
    TEACHER_REPO,
    TEACHER_TASK,
    EvilModules,
    Expect,
    Hub,
    Payload,
    check_outcome,
    edit_json,
    edit_tensors,
    not_used,
    pickle_payload,
    refuse,
    replace_bytes,
    run_cli,
    safetensors_bytes,
    sb3_zip_payload,
    symlink_outside,
    torch_pickle_payload,
)

CONFIG, WEIGHTS = "config.json", "model.safetensors"


# --------------------------------------------------------------------------------------------
# Context and loaders
# --------------------------------------------------------------------------------------------


@dataclass
class Ctx:
    tmp: Path
    folder: Path
    marker: Path
    request: pytest.FixtureRequest
    evil: EvilModules
    outside: Path
    artifacts: Artifacts
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]
    loader: AgentLoader
    repo_files: dict[str, bytes] = field(default_factory=dict)  # extra files staged with the repo

    @property
    def hub(self) -> Hub:
        """The local Hub, started on first use (local loaders rarely need one)."""
        return self.request.getfixturevalue("hub")

    @property
    def config(self) -> Path:
        return self.folder / CONFIG

    @property
    def weights(self) -> Path:
        return self.folder / WEIGHTS

    def payload_zip(self) -> bytes:
        return sb3_zip_payload(self.artifacts.sb3_zip, self.marker)

    def shipped_file(self, name: str, content: bytes) -> str:
        """Ship ``content`` inside the folder / repo under ``name``; return the absolute path it lands at."""
        (self.folder / name).write_bytes(content)
        if self.loader.hub:
            return str(self.hub.blob_path(self.loader.repo_id, content))
        return str((self.folder / name).resolve())


class AgentLoader:
    name = "?"
    hub = True
    repo_id = POISONED_REPO
    prefix = ""

    def stage(self, ctx: Ctx) -> None:
        if self.hub:
            self.ctx_put(ctx)

    def prepare(self, ctx: Ctx) -> None:
        """Start the Hub before the payload is built when the loader reads from it (HF_HOME is set then)."""
        if self.hub:
            ctx.hub  # noqa: B018

    def ctx_put(self, ctx: Ctx) -> None:
        files = {
            self.prefix + path.relative_to(ctx.folder).as_posix(): path.read_bytes()
            for path in sorted(ctx.folder.rglob("*"))
            if path.is_file() and not path.name.startswith(".")
        }
        files.update(ctx.repo_files)
        ctx.hub.put(self.repo_id, files)

    def load(self, ctx: Ctx) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


class LoadAgent(AgentLoader):
    name, hub = "load_agent", False

    def load(self, ctx: Ctx) -> Any:
        from zoo import hub

        return hub.load_agent(ctx.folder, device="cpu")


class LoadFromHub(AgentLoader):
    name = "load_from_hub"

    def load(self, ctx: Ctx) -> Any:
        from zoo import hub

        return hub.load_from_hub(self.repo_id, device="cpu")


class ZooPull(AgentLoader):
    name = "zoo_pull"

    def load(self, ctx: Ctx) -> Any:
        from zoo import hub

        output = ctx.tmp / "pulled"
        run_cli(["pull", "--repo", self.repo_id, "--output", str(output), "--device", "cpu"], ctx.capsys)
        return hub.load_agent(output / self.repo_id.split("/")[-1], device="cpu")


class ZooEnjoy(AgentLoader):
    name = "zoo_enjoy"

    def load(self, ctx: Ctx) -> Any:
        argv = ["enjoy", "--repo", self.repo_id, "--algo", "ppo", "--env", ENV_ID, "--episodes", "1"]
        run_cli([*argv, "--device", "cpu", "--log-folder", str(ctx.tmp / "logs")], ctx.capsys)
        return None


class LoadTeacher(AgentLoader):
    name, repo_id, prefix = "load_teacher", TEACHER_REPO, TEACHER_PREFIX

    def load(self, ctx: Ctx) -> Any:
        from zoo import hub

        return hub.load_teacher(ENV_ID, task=TEACHER_TASK, source="hub", org=ORG, device="cpu")


class KickstartedTeacher(AgentLoader):
    def __init__(self, algo: str) -> None:
        self.algo = algo
        self.name = f"{algo}_teacher_repo"

    def load(self, ctx: Ctx) -> Any:
        from zoo import agents

        cls = getattr(agents, self.algo)
        extra = {"n_steps": 16, "batch_size": 16} if self.algo == "KickstartedPPO" else {"n_steps": 5}
        cls("MlpPolicy", ENV_ID, teacher=self.repo_id, policy_kwargs={"net_arch": [8]}, device="cpu", **extra)
        return None


class ZooTrainTeacher(AgentLoader):
    name = "zoo_train_teacher"

    def load(self, ctx: Ctx) -> Any:
        argv = ["train", "--algo", "kickstarted_ppo", "--env", ENV_ID, "--teacher", self.repo_id, "-n", "16"]
        params = ["--params", "n_envs:1", "n_steps:16", "batch_size:16", "policy_kwargs:{net_arch: [8]}"]
        tail = [
            "--log-folder",
            str(ctx.tmp / "logs"),
            "--eval-episodes",
            "1",
            "--no-progress-bar",
            "--device",
            "cpu",
        ]
        run_cli([*argv, *params, *tail], ctx.capsys)
        return None


LOADERS: list[AgentLoader] = [
    LoadAgent(),
    LoadFromHub(),
    ZooPull(),
    ZooEnjoy(),
    LoadTeacher(),
    KickstartedTeacher("KickstartedPPO"),
    KickstartedTeacher("KickstartedA2C"),
    ZooTrainTeacher(),
]
CORE = {"load_agent", "load_from_hub"}


# --------------------------------------------------------------------------------------------
# Payloads
# --------------------------------------------------------------------------------------------

PAYLOADS: list[Payload] = []


def payload(name: str, **options: Any) -> Callable[[Callable[[Ctx], Expect]], Callable[[Ctx], Expect]]:
    def register(apply: Callable[[Ctx], Expect]) -> Callable[[Ctx], Expect]:
        PAYLOADS.append(Payload(name, apply, **options))
        return apply

    return register


def hyper(ctx: Ctx, key: str, value: Any) -> None:
    edit_json(ctx.config, lambda config: config["hyperparameters"].__setitem__(key, value))


def policy_kwarg(ctx: Ctx, key: str, value: Any) -> None:
    edit_json(ctx.config, lambda config: config["policy_kwargs"].__setitem__(key, value))


def top(ctx: Ctx, key: str, value: Any) -> None:
    edit_json(ctx.config, lambda config: config.__setitem__(key, value))


# -- pickles behind innocent names -------------------------------------------------------------


@payload("weights_are_sb3_zip", tags=["pickle"], scope="all")
def _(ctx: Ctx) -> Expect:
    replace_bytes(ctx.weights, ctx.payload_zip())
    return refuse(WEIGHTS)


@payload("weights_are_pickle", tags=["pickle"], scope="core")
def _(ctx: Ctx) -> Expect:
    replace_bytes(ctx.weights, pickle_payload(ctx.marker))
    return refuse(WEIGHTS)


@payload("weights_are_torch_pickle", tags=["pickle"], scope="core")
def _(ctx: Ctx) -> Expect:
    replace_bytes(ctx.weights, torch_pickle_payload(ctx.marker))
    return refuse(WEIGHTS)


@payload("config_is_pickle", tags=["pickle"], scope="core")
def _(ctx: Ctx) -> Expect:
    replace_bytes(ctx.config, pickle_payload(ctx.marker))
    return refuse(CONFIG)


@payload("only_a_pickled_sb3_zip", tags=["pickle"], scope="all")
def _(ctx: Ctx) -> Expect:
    ctx.config.unlink()
    ctx.weights.unlink()
    name = "ppo-zoo-DarkRoom-v0.zip"
    (ctx.folder / name).write_bytes(ctx.payload_zip())
    if ctx.loader.hub:
        return refuse(name)
    # a local folder without config.json is no agent folder at all: "not found" is a fine answer
    return refuse((name, CONFIG), also_ok=(FileNotFoundError,))


# -- teacher fields: the loader must never resolve a teacher named by a config ------------------

TEACHER = "hyperparameters.teacher"


@payload("teacher_is_shipped_pickle", base="kppo", tags=["teacher"], scope="all")
def _(ctx: Ctx) -> Expect:
    # the payload travels beside config.json; in the HF cache its blob path is its content hash
    hyper(ctx, "teacher", ctx.shipped_file("weights.bin", ctx.payload_zip()))
    return refuse(CONFIG, TEACHER)


@payload("a2c_teacher_is_shipped_pickle", base="ka2c", tags=["teacher"], scope="core")
def _(ctx: Ctx) -> Expect:
    hyper(ctx, "teacher", ctx.shipped_file("weights.bin", ctx.payload_zip()))
    return refuse(CONFIG, TEACHER)


@payload("teacher_is_pickle_outside", base="kppo", tags=["teacher"], scope="all")
def _(ctx: Ctx) -> Expect:
    target = ctx.outside / "teacher.zip"
    target.write_bytes(ctx.payload_zip())
    hyper(ctx, "teacher", str(target))
    return refuse(CONFIG, TEACHER)


@payload("teacher_is_relative_pickle", base="kppo", tags=["teacher"], scope="all")
def _(ctx: Ctx) -> Expect:
    (ctx.outside / "teacher.zip").write_bytes(ctx.payload_zip())
    ctx.monkeypatch.chdir(ctx.outside)
    hyper(ctx, "teacher", "teacher")  # resolve_teacher also tries "<name>.zip"
    return refuse(CONFIG, TEACHER)


@payload("teacher_is_itself", base="kppo", tags=["teacher"], scope="all")
def _(ctx: Ctx) -> Expect:
    # a repo naming itself recursed until RecursionError; a local folder naming itself likewise
    hyper(ctx, "teacher", ctx.loader.repo_id if ctx.loader.hub else str(ctx.folder))
    return refuse(CONFIG, TEACHER)


@payload("a2c_teacher_is_itself", base="ka2c", tags=["teacher"], scope="core")
def _(ctx: Ctx) -> Expect:
    hyper(ctx, "teacher", ctx.loader.repo_id if ctx.loader.hub else str(ctx.folder))
    return refuse(CONFIG, TEACHER)


@payload("teacher_is_another_repo", base="kppo", tags=["teacher"], scope="all")
def _(ctx: Ctx) -> Expect:
    ctx.hub.put_folder(OTHER_REPO, ctx.artifacts.ppo)  # valid: resolving it would "work"
    hyper(ctx, "teacher", OTHER_REPO)
    return refuse(CONFIG, TEACHER, forbidden_repos=(OTHER_REPO,))


@payload("teacher_is_another_folder", base="kppo", tags=["teacher"], scope="all")
def _(ctx: Ctx) -> Expect:
    other = copy_artifact(ctx.artifacts.ppo, ctx.outside / "agent")
    hyper(ctx, "teacher", str(other))
    return refuse(CONFIG, TEACHER)


@payload("teacher_in_policy_kwargs", base="kppo", tags=["teacher"], scope="core")
def _(ctx: Ctx) -> Expect:
    target = ctx.outside / "teacher.zip"
    target.write_bytes(ctx.payload_zip())
    policy_kwarg(ctx, "teacher", str(target))
    return refuse(CONFIG, ("policy_kwargs.teacher", "policy_kwargs"))


@payload("teacher_on_plain_ppo", tags=["teacher"], scope="core")
def _(ctx: Ctx) -> Expect:
    target = ctx.outside / "teacher.zip"
    target.write_bytes(ctx.payload_zip())
    hyper(ctx, "teacher", str(target))
    return refuse(CONFIG, TEACHER, neutral=not_used(lambda model: _no_attribute(model, "teacher")))


def _no_attribute(model: Any, name: str) -> None:
    assert name not in vars(model), f"the config set {name}={vars(model)[name]!r} on the agent"


# -- classes and callables named by the config ------------------------------------------------

OS_SYSTEM = {"module": "os", "name": "system"}


def _evil_reference(ctx: Ctx, module: str) -> dict[str, str]:
    return {"module": ctx.evil.env_module if module == "<top-level>" else module, "name": "ReLU"}


ACTIVATION_MODULES = [
    "os",
    "builtins",
    "subprocess",
    "<top-level>",
    "torch.nn_evil",
    "torch.optim_evil",
    "stable_baselines3_evil",
    "sb3_contrib_evil",
    "zoo_evil",
    "torch_evil",
]

for _module in ACTIVATION_MODULES:

    def _activation(ctx: Ctx, module: str = _module) -> Expect:
        if module in ("os", "builtins", "subprocess"):
            reference = {
                "module": module,
                "name": {"os": "system", "builtins": "eval", "subprocess": "Popen"}[module],
            }
        else:
            reference = _evil_reference(ctx, module)
        policy_kwarg(ctx, "activation_fn", {"__class__": reference})
        return refuse(CONFIG, "policy_kwargs.activation_fn")

    PAYLOADS.append(
        Payload(
            f"activation_fn_from_{_module.strip('<>').replace('.', '_')}",
            _activation,
            scope="all" if _module == "torch.nn_evil" else "core",
            tags=["code"],
        )
    )


@payload("policy_class_from_os", tags=["code"], scope="core")
def _(ctx: Ctx) -> Expect:
    top(ctx, "policy", OS_SYSTEM)
    return refuse(CONFIG, "policy")


@payload("policy_class_from_prefix_lookalike", tags=["code"], scope="core")
def _(ctx: Ctx) -> Expect:
    top(ctx, "policy", {"module": "stable_baselines3_evil", "name": "MlpPolicy"})
    return refuse(CONFIG, "policy")


@payload("algorithm_not_allowed", tags=["code"], scope="core")
def _(ctx: Ctx) -> Expect:
    top(ctx, "algorithm", "system")
    top(ctx, "class", OS_SYSTEM)
    return refuse(CONFIG, "algorithm")


@payload("features_extractor_not_an_extractor", tags=["code"], scope="core")
def _(ctx: Ctx) -> Expect:
    policy_kwarg(ctx, "features_extractor_class", {"__class__": {"module": "torch.nn", "name": "ReLU"}})
    return refuse(CONFIG, "policy_kwargs.features_extractor_class")


@payload("features_extractor_vec_env", tags=["code"], scope="core")
def _(ctx: Ctx) -> Expect:
    reference = {"module": "stable_baselines3.common.vec_env", "name": "SubprocVecEnv"}
    policy_kwarg(ctx, "features_extractor_class", {"__class__": reference})
    return refuse(CONFIG, "policy_kwargs.features_extractor_class")


@payload("optimizer_not_an_optimizer", tags=["code"], scope="core")
def _(ctx: Ctx) -> Expect:
    policy_kwarg(ctx, "optimizer_class", {"__class__": {"module": "torch.nn", "name": "ReLU"}})
    return refuse(CONFIG, "policy_kwargs.optimizer_class")


@payload("optimizer_from_evil_module", tags=["code"], scope="core")
def _(ctx: Ctx) -> Expect:
    policy_kwarg(ctx, "optimizer_class", {"__class__": {"module": "torch.optim_evil", "name": "ReLU"}})
    return refuse(CONFIG, "policy_kwargs.optimizer_class")


@payload("rollout_buffer_not_a_rollout_buffer", tags=["code"], scope="core")
def _(ctx: Ctx) -> Expect:
    hyper(
        ctx,
        "rollout_buffer_class",
        {"__class__": {"module": "stable_baselines3.common.buffers", "name": "ReplayBuffer"}},
    )
    return refuse(CONFIG, "hyperparameters.rollout_buffer_class")


@payload("rollout_buffer_from_os", tags=["code"], scope="core")
def _(ctx: Ctx) -> Expect:
    hyper(ctx, "rollout_buffer_class", {"__class__": OS_SYSTEM})
    return refuse(CONFIG, "hyperparameters.rollout_buffer_class")


@payload("replay_buffer_not_a_replay_buffer", base="dqn", tags=["code"], scope="core")
def _(ctx: Ctx) -> Expect:
    reference = {"module": "stable_baselines3.common.buffers", "name": "RolloutBuffer"}
    hyper(ctx, "replay_buffer_class", {"__class__": reference})
    return refuse(CONFIG, "hyperparameters.replay_buffer_class")


@payload("replay_buffer_from_prefix_lookalike", base="dqn", tags=["code"], scope="core")
def _(ctx: Ctx) -> Expect:
    hyper(ctx, "replay_buffer_class", {"__class__": {"module": "stable_baselines3_evil", "name": "Evil"}})
    return refuse(CONFIG, "hyperparameters.replay_buffer_class")


@payload("class_reference_nested_in_kwargs", tags=["code"], scope="core")
def _(ctx: Ctx) -> Expect:
    hyper(ctx, "rollout_buffer_kwargs", {"hook": {"__class__": OS_SYSTEM}})
    return refuse(CONFIG, ("hyperparameters.rollout_buffer_kwargs.hook", "rollout_buffer_kwargs"))


@payload("schedule_unknown_kind", tags=["code"], scope="core")
def _(ctx: Ctx) -> Expect:
    hyper(ctx, "learning_rate", {"__schedule__": "eval", "code": "__import__('os').system('true')"})
    return refuse(CONFIG, "hyperparameters.learning_rate")


@payload("schedule_garbage_fields", tags=["code"], scope="core")
def _(ctx: Ctx) -> Expect:
    hyper(ctx, "learning_rate", {"__schedule__": "linear", "start": [], "end": {"__class__": OS_SYSTEM}})
    return refuse(CONFIG, "hyperparameters.learning_rate")


@payload("schedule_missing_fields", tags=["code"], scope="core")
def _(ctx: Ctx) -> Expect:
    hyper(ctx, "clip_range", {"__schedule__": "linear"})
    return refuse(CONFIG, "hyperparameters.clip_range")


@payload("hyperparameter_replaces_a_method", tags=["code"], scope="core")
def _(ctx: Ctx) -> Expect:
    hyper(ctx, "predict", 1)

    def unused(model: Any) -> None:
        assert callable(model.predict), "the config replaced the predict method"

    return refuse(CONFIG, "hyperparameters.predict", neutral=not_used(unused))


@payload("tensorboard_log_path", tags=["path"], scope="all")
def _(ctx: Ctx) -> Expect:
    target = str(ctx.outside / "tb")
    hyper(ctx, "tensorboard_log", target)

    def unused(model: Any) -> None:
        assert getattr(model, "tensorboard_log", None) != target, "tensorboard_log was taken from the config"

    return refuse(CONFIG, "hyperparameters.tensorboard_log", neutral=not_used(unused))


@payload("env_in_hyperparameters_imports_module", tags=["env"], scope="core")
def _(ctx: Ctx) -> Expect:
    hyper(ctx, "env", ctx.evil.env_id)
    return refuse(CONFIG, "hyperparameters.env", neutral=not_used(lambda model: None))


@payload("device_in_hyperparameters", tags=["path"], scope="core")
def _(ctx: Ctx) -> Expect:
    hyper(ctx, "device", "cuda:7")

    def unused(model: Any) -> None:
        assert str(model.device) == "cpu"

    return refuse(CONFIG, "hyperparameters.device", neutral=not_used(unused))


# -- env ids -----------------------------------------------------------------------------------


@payload("env_id_imports_module", tags=["env"], scope="all")
def _(ctx: Ctx) -> Expect:
    top(ctx, "env_id", ctx.evil.env_id)
    return refuse(CONFIG, "env_id")


@payload("env_id_with_zoo_module_part", tags=["env"], scope="core")
def _(ctx: Ctx) -> Expect:
    top(ctx, "env_id", f"zoo:{ENV_ID}")
    return refuse(CONFIG, "env_id")


@payload("env_id_unregistered", tags=["env"], scope="core")
def _(ctx: Ctx) -> Expect:
    top(ctx, "env_id", "NoSuchNamespace/NoSuchEnv-v9")
    return refuse(CONFIG, "env_id")


@payload("env_kwargs_tagged_object", tags=["env"], scope="core")
def _(ctx: Ctx) -> Expect:
    top(ctx, "env_kwargs", {"size": {"__class__": OS_SYSTEM}})
    return refuse(CONFIG, ("env_kwargs.size", "env_kwargs"), neutral=not_used())


# -- malformed JSON ----------------------------------------------------------------------------


def _raw_config(content: bytes) -> Callable[[Ctx], Expect]:
    def apply(ctx: Ctx) -> Expect:
        replace_bytes(ctx.config, content)
        return refuse(CONFIG)

    return apply


for _name, _content, _scope in [
    ("config_truncated", None, "all"),
    ("config_empty", b"", "core"),
    ("config_is_a_list", b"[]", "core"),
    ("config_is_a_string", b'"config"', "core"),
    ("config_not_utf8", b'{"format": "\xff\xfe"}', "core"),
    (
        "config_nested_too_deeply",
        b'{"policy_kwargs": {"net_arch": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
        "core",
    ),
]:

    def _malformed(ctx: Ctx, content: bytes | None = _content) -> Expect:
        data = ctx.config.read_bytes()
        replace_bytes(ctx.config, data[: len(data) // 2] if content is None else content)
        return refuse(CONFIG)

    PAYLOADS.append(Payload(_name, _malformed, scope=_scope, tags=["json"]))


@payload("config_nan_literal", tags=["json", "nan"], scope="core")
def _(ctx: Ctx) -> Expect:
    text = ctx.config.read_text().replace('"gamma": 0.99', '"gamma": NaN')
    assert "NaN" in text
    ctx.config.write_text(text)
    return refuse(CONFIG, ("hyperparameters.gamma", "NaN"))


@payload("config_infinity_literal", tags=["json", "nan"], scope="core")
def _(ctx: Ctx) -> Expect:
    text = ctx.config.read_text().replace('"learning_rate": 0.0003', '"learning_rate": Infinity')
    assert "Infinity" in text
    ctx.config.write_text(text)
    return refuse(CONFIG, ("hyperparameters.learning_rate", "Infinity"))


@payload("nan_hyperparameter_tagged", tags=["nan"], scope="core")
def _(ctx: Ctx) -> Expect:
    hyper(ctx, "gamma", {"__float__": "nan"})
    return refuse(CONFIG, "hyperparameters.gamma")


@payload("hyperparameter_wrong_type", tags=["json"], scope="core")
def _(ctx: Ctx) -> Expect:
    hyper(ctx, "n_epochs", "ten")
    return refuse(CONFIG, "hyperparameters.n_epochs")


# -- resource bombs (the memory guard turns a missed one into a failure, not an OOM) -----------

FAST = 20.0


@payload("net_arch_40_gigabytes", tags=["oversize"], scope="all")
def _(ctx: Ctx) -> Expect:
    policy_kwarg(ctx, "net_arch", [100_000, 100_000])
    return refuse(CONFIG, "policy_kwargs.net_arch", max_seconds=FAST)


@payload("net_arch_dict_huge", tags=["oversize"], scope="core")
def _(ctx: Ctx) -> Expect:
    policy_kwarg(ctx, "net_arch", {"pi": [10**9], "vf": [8]})
    return refuse(CONFIG, ("policy_kwargs.net_arch", "pi"), max_seconds=FAST)


def _box(shape: list[int]) -> dict[str, Any]:
    scalar = {"dtype": "<f4", "shape": [], "data": [0.0]}
    return {"type": "Box", "low": scalar, "high": {**scalar, "data": [1.0]}, "shape": shape, "dtype": "<f4"}


@payload("observation_box_of_a_billion", tags=["oversize"], scope="core")
def _(ctx: Ctx) -> Expect:
    top(ctx, "observation_space", _box([10**9]))
    return refuse(CONFIG, ("observation_space", "shape"), max_seconds=FAST)


@payload("observation_box_squared", tags=["oversize"], scope="core")
def _(ctx: Ctx) -> Expect:
    top(ctx, "observation_space", _box([100_000, 100_000]))
    return refuse(CONFIG, ("observation_space", "shape"), max_seconds=FAST)


@payload("observation_discrete_trillion", tags=["oversize"], scope="all")
def _(ctx: Ctx) -> Expect:
    top(ctx, "observation_space", {"type": "Discrete", "n": 10**12, "start": 0})
    return refuse(CONFIG, ("observation_space", "observation_space.n"), max_seconds=FAST)


@payload("action_discrete_trillion", tags=["oversize"], scope="core")
def _(ctx: Ctx) -> Expect:
    top(ctx, "action_space", {"type": "Discrete", "n": 10**12, "start": 0})
    return refuse(CONFIG, ("action_space", "action_space.n"), max_seconds=FAST)


@payload("observation_dtype_object", tags=["oversize"], scope="core")
def _(ctx: Ctx) -> Expect:
    box = _box([3])
    box["dtype"] = "|O"
    top(ctx, "observation_space", box)
    return refuse(CONFIG, ("observation_space", "dtype"))


@payload("rollout_steps_trillion", tags=["oversize"], scope="core")
def _(ctx: Ctx) -> Expect:
    hyper(ctx, "n_steps", 10**12)
    return refuse(CONFIG, "hyperparameters.n_steps", max_seconds=FAST)


@payload("replay_buffer_size_trillion", base="dqn", tags=["oversize"], scope="core")
def _(ctx: Ctx) -> Expect:
    hyper(ctx, "buffer_size", 10**12)
    return refuse(CONFIG, "hyperparameters.buffer_size", max_seconds=FAST)


@payload("safetensors_header_claims_huge_tensor", tags=["oversize", "safetensors"], scope="all")
def _(ctx: Ctx) -> Expect:
    header = {
        "policy.action_net.weight": {
            "dtype": "F32",
            "shape": [100_000, 100_000],
            "data_offsets": [0, 4 * 10**10],
        }
    }
    replace_bytes(ctx.weights, safetensors_bytes(header, b"\0" * 64))
    return refuse(WEIGHTS, max_seconds=FAST)


@payload("safetensors_header_length_huge", tags=["oversize", "safetensors"], scope="core")
def _(ctx: Ctx) -> Expect:
    replace_bytes(ctx.weights, (2**62).to_bytes(8, "little") + b"{}")
    return refuse(WEIGHTS, max_seconds=FAST)


@payload("safetensors_shape_disagrees_with_config", tags=["safetensors"], scope="core")
def _(ctx: Ctx) -> Expect:
    import torch

    def change(tensors: dict[str, Any]) -> None:
        tensors["policy.action_net.weight"] = torch.zeros(5, 64)

    edit_tensors(ctx.weights, change)
    return refuse(WEIGHTS, ("action_net", "shape", "policy_kwargs", "net_arch"))


@payload("safetensors_missing_tensor", tags=["safetensors"], scope="core")
def _(ctx: Ctx) -> Expect:
    edit_tensors(ctx.weights, lambda tensors: tensors.pop("policy.action_net.bias"))
    return refuse(WEIGHTS)


@payload("safetensors_extra_tensor", tags=["safetensors"], scope="core")
def _(ctx: Ctx) -> Expect:
    import torch

    edit_tensors(ctx.weights, lambda tensors: tensors.__setitem__("policy.evil", torch.zeros(3)))
    return refuse(WEIGHTS)


@payload("safetensors_truncated", tags=["safetensors"], scope="core")
def _(ctx: Ctx) -> Expect:
    data = ctx.weights.read_bytes()
    replace_bytes(ctx.weights, data[: len(data) - 100])
    return refuse(WEIGHTS)


@payload("weights_nan", tags=["nan", "safetensors"], scope="all")
def _(ctx: Ctx) -> Expect:
    def change(tensors: dict[str, Any]) -> None:
        tensors["policy.action_net.weight"][0, 0] = math.nan

    edit_tensors(ctx.weights, change)
    return refuse(WEIGHTS)


@payload("weights_inf", tags=["nan", "safetensors"], scope="core")
def _(ctx: Ctx) -> Expect:
    def change(tensors: dict[str, Any]) -> None:
        tensors["policy.value_net.bias"][0] = math.inf

    edit_tensors(ctx.weights, change)
    return refuse(WEIGHTS)


# -- symbolic links out of a local folder -----------------------------------------------------


@payload("config_links_outside", local_only=True, tags=["symlink"], scope="core")
def _(ctx: Ctx) -> Expect:
    symlink_outside(ctx.config, ctx.outside)  # the target is even a valid config
    return refuse(CONFIG)


@payload("weights_link_outside", local_only=True, tags=["symlink"], scope="core")
def _(ctx: Ctx) -> Expect:
    symlink_outside(ctx.weights, ctx.outside)
    return refuse(WEIGHTS)


@payload("config_links_to_system_file", local_only=True, tags=["symlink"], scope="core")
def _(ctx: Ctx) -> Expect:
    ctx.config.unlink()
    ctx.config.symlink_to("/etc/hostname" if os.path.exists("/etc/hostname") else "/etc/passwd")
    return refuse(CONFIG)


# --------------------------------------------------------------------------------------------
# The matrix
# --------------------------------------------------------------------------------------------


def _cases() -> list[Any]:
    cases = []
    for item in PAYLOADS:
        for loader in LOADERS:
            if (item.local_only and loader.hub) or (item.hub_only and not loader.hub):
                continue
            if item.scope == "core" and loader.name not in CORE:
                continue
            cases.append(pytest.param(item, loader, id=f"{item.name}-{loader.name}"))
    return cases


@pytest.mark.parametrize(("item", "loader"), _cases())
def test_poisoned_agent_is_refused(
    item: Payload,
    loader: AgentLoader,
    artifacts: Artifacts,
    tmp_path: Path,
    marker: Path,
    request: pytest.FixtureRequest,
    evil: EvilModules,
    outside: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = copy_artifact(getattr(artifacts, item.base), tmp_path / "agent")
    ctx = Ctx(tmp_path, folder, marker, request, evil, outside, artifacts, monkeypatch, capsys, loader)
    loader.prepare(ctx)
    expect = item.apply(ctx)
    loader.stage(ctx)
    check_outcome(lambda: loader.load(ctx), expect, marker, hub=ctx.hub if expect.forbidden_repos else None)


@pytest.mark.parametrize("loader", LOADERS, ids=repr)
def test_valid_agent_loads_through_every_loader(
    loader: AgentLoader,
    artifacts: Artifacts,
    tmp_path: Path,
    marker: Path,
    request: pytest.FixtureRequest,
    evil: EvilModules,
    outside: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The control: the unpoisoned artifacts load (so a refusal above is due to the payload)."""
    folder = copy_artifact(artifacts.kppo if "teacher" in loader.name else artifacts.ppo, tmp_path / "agent")
    ctx = Ctx(tmp_path, folder, marker, request, evil, outside, artifacts, monkeypatch, capsys, loader)
    loader.prepare(ctx)
    loader.stage(ctx)
    model = loader.load(ctx)
    if model is not None:
        action, _ = model.predict(np.array(0), deterministic=True)
        assert model.action_space.contains(np.asarray(action).item())
    assert not marker.exists()
