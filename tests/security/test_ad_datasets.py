"""Algorithm Distillation models, learning-history datasets and VecNormalize statistics: every
loader x every payload (see ``factory.py`` for the verdict each test ends with).

AD loaders: ``AlgorithmDistillation.load(folder)``, ``zoo.hub.load_agent(folder)`` (agent.json),
``load_from_hub`` and ``load_pretrained(env_id)`` (a tampered bundle inside the package). Dataset loaders: ``HistoryDataset.load(folder)``, ``load_dataset_from_hub`` then
``HistoryDataset.load``, and ``AlgorithmDistillation(folder)`` (which reads the dataset and makes
its env). VecNormalize loaders: ``restore_vec_normalize(folder, venv)``, ``load_agent(folder,
env=venv)`` and ``load_from_hub(repo, env=venv)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .conftest import Artifacts, copy_artifact
from .factory import (
    ENV_ID,
    ORG,
    EvilModules,
    Expect,
    Hub,
    Payload,
    check_outcome,
    edit_json,
    edit_tensors,
    not_used,
    npy_bytes,
    npy_header_only,
    npz_payload,
    object_npy_payload,
    pickle_payload,
    refuse,
    replace_bytes,
    sb3_zip_payload,
    symlink_outside,
)

CONFIG, WEIGHTS, AGENT, MANIFEST, VECNORM = (
    "config.json",
    "model.safetensors",
    "agent.json",
    "manifest.json",
    "vec_normalize.json",
)
REWARDS = "task_00000_rewards.npy"
OBSERVATIONS = "task_00000_observations.npy"
ACTIONS = "task_00000_actions.npy"
FAST = 20.0


@dataclass
class Ctx:
    tmp: Path
    folder: Path
    marker: Path
    request: pytest.FixtureRequest
    evil: EvilModules
    outside: Path
    artifacts: Artifacts
    loader: Loader

    @property
    def hub(self) -> Hub:
        return self.request.getfixturevalue("hub")

    def file(self, name: str) -> Path:
        return self.folder / name


class Loader:
    name = "?"
    family = "?"
    hub = False
    repo_type = "model"
    repo_id = f"{ORG}/poisoned"

    def prepare(self, ctx: Ctx) -> None:
        if self.hub:
            ctx.hub  # noqa: B018 - starts the Hub (sets HF_HOME) before the payload is built

    def stage(self, ctx: Ctx) -> None:
        if self.hub:
            ctx.hub.put_folder(self.repo_id, ctx.folder, repo_type=self.repo_type)

    def load(self, ctx: Ctx) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


def _simple(
    name: str, family: str, load: Callable[[Loader, Ctx], Any], *, hub: bool = False, repo_type: str = "model"
) -> Loader:
    loader = Loader()
    loader.name, loader.family, loader.hub, loader.repo_type = name, family, hub, repo_type
    loader.load = lambda ctx: load(loader, ctx)  # type: ignore[method-assign]
    return loader


def _ad_load(loader: Loader, ctx: Ctx) -> Any:
    from zoo.agents.ad import AlgorithmDistillation

    return AlgorithmDistillation.load(ctx.folder, device="cpu")


def _ad_load_agent(loader: Loader, ctx: Ctx) -> Any:
    from zoo import hub

    return hub.load_agent(ctx.folder, device="cpu")


def _ad_from_hub(loader: Loader, ctx: Ctx) -> Any:
    from zoo import hub

    return hub.load_from_hub(loader.repo_id, device="cpu")


class _Pretrained(Loader):
    """``zoo.agents.ad.load_pretrained``: the poisoned folder is installed as the package's bundle."""

    name = "load_pretrained"
    family = "ad"

    def stage(self, ctx: Ctx) -> None:
        from zoo.agents.ad import pretrained

        bundles = ctx.tmp / "bundled"
        bundles.mkdir()
        ctx.folder = ctx.folder.rename(bundles / ENV_ID.replace("/", "-"))
        ctx.request.getfixturevalue("monkeypatch").setattr(pretrained, "BUNDLE_ROOT", bundles)

    def load(self, ctx: Ctx) -> Any:
        from zoo.agents.ad import load_pretrained

        return load_pretrained(ENV_ID, device="cpu")


NEVER_READS_AGENT_JSON = ("AlgorithmDistillation.load", "load_pretrained")


def _dataset_load(loader: Loader, ctx: Ctx) -> Any:
    from zoo.agents.ad import HistoryDataset

    return HistoryDataset.load(ctx.folder)


def _dataset_from_hub(loader: Loader, ctx: Ctx) -> Any:
    from zoo import hub
    from zoo.agents.ad import HistoryDataset

    return HistoryDataset.load(hub.load_dataset_from_hub(loader.repo_id))


def _ad_from_dataset(loader: Loader, ctx: Ctx) -> Any:
    from zoo.agents.ad import AlgorithmDistillation

    AlgorithmDistillation(
        ctx.folder, context_length=8, n_layers=1, n_heads=2, embed_dim=8, batch_size=4, device="cpu"
    )
    return None


def _cartpole() -> Any:
    from stable_baselines3.common.env_util import make_vec_env

    return make_vec_env("CartPole-v1", n_envs=1, seed=0)


def _restore(loader: Loader, ctx: Ctx) -> Any:
    from zoo import hub

    return hub.restore_vec_normalize(ctx.folder, _cartpole())


def _vec_load_agent(loader: Loader, ctx: Ctx) -> Any:
    from zoo import hub

    return hub.load_agent(ctx.folder, device="cpu", env=_cartpole())


def _vec_from_hub(loader: Loader, ctx: Ctx) -> Any:
    from zoo import hub

    return hub.load_from_hub(loader.repo_id, device="cpu", env=_cartpole())


LOADERS = [
    _simple("AlgorithmDistillation.load", "ad", _ad_load),
    _simple("load_agent", "ad", _ad_load_agent),
    _simple("load_from_hub", "ad", _ad_from_hub, hub=True),
    _Pretrained(),
    _simple("HistoryDataset.load", "dataset", _dataset_load),
    _simple("load_dataset_from_hub", "dataset", _dataset_from_hub, hub=True, repo_type="dataset"),
    _simple("AlgorithmDistillation(dataset)", "dataset", _ad_from_dataset),
    _simple("restore_vec_normalize", "vecnorm", _restore),
    _simple("load_agent(env=)", "vecnorm", _vec_load_agent),
    _simple("load_from_hub(env=)", "vecnorm", _vec_from_hub, hub=True),
]

PAYLOADS: dict[str, list[Payload]] = {"ad": [], "dataset": [], "vecnorm": []}


def payload(
    family: str, name: str, **options: Any
) -> Callable[[Callable[[Ctx], Expect]], Callable[[Ctx], Expect]]:
    def register(apply: Callable[[Ctx], Expect]) -> Callable[[Ctx], Expect]:
        PAYLOADS[family].append(Payload(name, apply, base=family, **options))
        return apply

    return register


def json_payloads(family: str, file: str) -> None:
    """Truncated, empty, non-object, NaN-literal, non-UTF-8 and pickled versions of a JSON file."""
    variants: list[tuple[str, Callable[[bytes, Path], bytes]]] = [
        ("truncated", lambda data, marker: data[: len(data) // 2]),
        ("empty", lambda data, marker: b""),
        ("a_list", lambda data, marker: b"[1, 2]"),
        (
            "nan_literal",
            lambda data, marker: (
                data.replace(b"1", b"NaN", 1) if b": 1" not in data else data.replace(b": 1", b": NaN", 1)
            ),
        ),
        ("not_utf8", lambda data, marker: b'{"a": "\xff"}'),
        ("a_pickle", lambda data, marker: pickle_payload(marker)),
    ]
    stem = file.split(".")[0]
    for variant, make in variants:

        def apply(ctx: Ctx, make: Callable[[bytes, Path], bytes] = make, file: str = file) -> Expect:
            path = ctx.file(file)
            replace_bytes(path, make(path.read_bytes(), ctx.marker))
            return refuse(file)

        PAYLOADS[family].append(Payload(f"{stem}_{variant}", apply, base=family, tags=["json"]))


# --------------------------------------------------------------------------------------------
# Algorithm Distillation models
# --------------------------------------------------------------------------------------------


def meta(ctx: Ctx, key: str, value: Any) -> None:
    edit_json(ctx.file(CONFIG), lambda config: config["metadata"].__setitem__(key, value))


def ad_hyper(ctx: Ctx, key: str, value: Any) -> None:
    edit_json(ctx.file(CONFIG), lambda config: config["hyperparameters"].__setitem__(key, value))


def ad_model(ctx: Ctx, key: str, value: Any) -> None:
    edit_json(ctx.file(CONFIG), lambda config: config["model"].__setitem__(key, value))


@payload("ad", "weights_are_sb3_zip", tags=["pickle"])
def _(ctx: Ctx) -> Expect:
    replace_bytes(ctx.file(WEIGHTS), sb3_zip_payload(ctx.artifacts.sb3_zip, ctx.marker))
    return refuse(WEIGHTS)


@payload("ad", "weights_are_pickle", tags=["pickle"])
def _(ctx: Ctx) -> Expect:
    replace_bytes(ctx.file(WEIGHTS), pickle_payload(ctx.marker))
    return refuse(WEIGHTS)


@payload("ad", "metadata_env_id_imports_module", tags=["env"])
def _(ctx: Ctx) -> Expect:
    meta(ctx, "env_id", ctx.evil.env_id)  # AD makes its env to read the grid size
    return refuse(CONFIG, "metadata.env_id")


@payload("ad", "metadata_env_id_unregistered", tags=["env"])
def _(ctx: Ctx) -> Expect:
    meta(ctx, "env_id", "NoSuchNamespace/NoSuchEnv-v9")
    return refuse(CONFIG, "metadata.env_id")


@payload("ad", "agent_json_env_id_imports_module", tags=["env"])
def _(ctx: Ctx) -> Expect:
    edit_json(ctx.file(AGENT), lambda agent: agent.__setitem__("env_id", ctx.evil.env_id))
    if ctx.loader.name in NEVER_READS_AGENT_JSON:
        return refuse(AGENT, "env_id", neutral=not_used())
    return refuse(AGENT, "env_id")


@payload("ad", "agent_json_names_another_class", tags=["code"])
def _(ctx: Ctx) -> Expect:
    edit_json(
        ctx.file(AGENT),
        lambda agent: agent.__setitem__("class", {"module": ctx.evil.env_module, "name": "Evil"}),
    )
    return refuse(AGENT, "class", neutral=not_used(lambda model: _is_ad(model)))


def _is_ad(model: Any) -> None:
    from zoo.agents.ad import AlgorithmDistillation

    assert isinstance(model, AlgorithmDistillation)


@payload("ad", "metadata_env_kwargs_tagged_object", tags=["env"])
def _(ctx: Ctx) -> Expect:
    meta(ctx, "env_kwargs", {"size": {"__class__": {"module": "os", "name": "system"}}})
    return refuse(CONFIG, ("metadata.env_kwargs.size", "env_kwargs"))


for _key, _value in [
    ("tensorboard_log", "<outside>/tb"),
    ("checkpoint_dir", "<outside>/checkpoints"),
]:

    def _path_field(ctx: Ctx, key: str = _key, value: str = _value) -> Expect:
        target = value.replace("<outside>", str(ctx.outside))
        ad_hyper(ctx, key, target)

        def unused(model: Any) -> None:
            assert str(getattr(model, key, None)) != target, f"{key} was taken from the config"

        return refuse(CONFIG, f"hyperparameters.{key}", neutral=not_used(unused))

    PAYLOADS["ad"].append(Payload(f"hyperparameters_{_key}_path", _path_field, base="ad", tags=["path"]))

for _key, _value in [
    ("teacher", "<outside>/teacher.zip"),
    ("dataset", "<outside>"),
    ("_metadata", {"env_id": "CartPole-v1"}),
    ("device", "cuda:7"),
    ("verbose", {"__class__": {"module": "os", "name": "system"}}),
]:

    def _injected(ctx: Ctx, key: str = _key, value: Any = _value) -> Expect:
        if isinstance(value, str):
            value = value.replace("<outside>", str(ctx.outside))
            (ctx.outside / "teacher.zip").write_bytes(sb3_zip_payload(ctx.artifacts.sb3_zip, ctx.marker))
        ad_hyper(ctx, key, value)

        def unused(model: Any) -> None:
            assert key not in vars(model) or vars(model)[key] != value, f"{key} was taken from the config"
            assert str(model.device) == "cpu" and model.env_id != "CartPole-v1"

        return refuse(CONFIG, f"hyperparameters.{key}", neutral=not_used(unused))

    PAYLOADS["ad"].append(
        Payload(f"hyperparameters_inject_{_key.strip('_')}", _injected, base="ad", tags=["code"])
    )


@payload("ad", "model_unknown_key", tags=["json"])
def _(ctx: Ctx) -> Expect:
    ad_model(ctx, "evil", 1)
    return refuse(CONFIG, "model.evil", neutral=not_used())


@payload("ad", "model_embed_dim_huge", tags=["oversize"])
def _(ctx: Ctx) -> Expect:
    ad_model(ctx, "embed_dim", 2**20)
    return refuse(CONFIG, "model.embed_dim", max_seconds=FAST)


@payload("ad", "metadata_observations_trillion", tags=["oversize"])
def _(ctx: Ctx) -> Expect:
    meta(ctx, "observation_space", {"kind": "discrete", "n": 10**12, "shape": [], "dtype": "int64"})
    ad_model(ctx, "grid_size", 0)
    ad_model(ctx, "n_observations", 10**12)
    return refuse(
        CONFIG, ("metadata.observation_space.n", "n_observations", "observation_space"), max_seconds=FAST
    )


@payload("ad", "metadata_actions_trillion", tags=["oversize"])
def _(ctx: Ctx) -> Expect:
    meta(ctx, "n_actions", 10**12)
    ad_model(ctx, "n_actions", 10**12)
    return refuse(CONFIG, ("metadata.n_actions", "n_actions"), max_seconds=FAST)


@payload("ad", "metadata_image_observations_huge", tags=["oversize"])
def _(ctx: Ctx) -> Expect:
    meta(
        ctx, "observation_space", {"kind": "image", "n": 0, "shape": [100_000, 100_000, 3], "dtype": "uint8"}
    )
    ad_model(ctx, "observation_kind", "image")
    ad_model(ctx, "observation_shape", [100_000, 100_000, 3])
    ad_model(ctx, "n_observations", 0)
    ad_model(ctx, "grid_size", 0)
    return refuse(CONFIG, ("observation_space", "shape", "observation_shape"), max_seconds=FAST)


@payload("ad", "model_disagrees_with_metadata", tags=["safetensors"])
def _(ctx: Ctx) -> Expect:
    ad_model(ctx, "n_actions", 7)
    return refuse((CONFIG, WEIGHTS), ("model.n_actions", "n_actions"))


@payload("ad", "safetensors_shape_disagrees", tags=["safetensors"])
def _(ctx: Ctx) -> Expect:
    import torch

    def change(tensors: dict[str, Any]) -> None:
        key = sorted(tensors)[0]
        tensors[key] = torch.zeros(*(dim + 1 for dim in tensors[key].shape))

    edit_tensors(ctx.file(WEIGHTS), change)
    return refuse(WEIGHTS)


@payload("ad", "weights_nan", tags=["nan", "safetensors"])
def _(ctx: Ctx) -> Expect:
    def change(tensors: dict[str, Any]) -> None:
        key = sorted(name for name in tensors if tensors[name].is_floating_point())[0]
        tensors[key].view(-1)[0] = math.nan

    edit_tensors(ctx.file(WEIGHTS), change)
    return refuse(WEIGHTS)


@payload("ad", "config_links_outside", local_only=True, tags=["symlink"])
def _(ctx: Ctx) -> Expect:
    symlink_outside(ctx.file(CONFIG), ctx.outside)
    return refuse(CONFIG)


@payload("ad", "weights_link_outside", local_only=True, tags=["symlink"])
def _(ctx: Ctx) -> Expect:
    symlink_outside(ctx.file(WEIGHTS), ctx.outside)
    return refuse(WEIGHTS)


json_payloads("ad", CONFIG)


# --------------------------------------------------------------------------------------------
# Learning-history datasets
# --------------------------------------------------------------------------------------------


def manifest(ctx: Ctx, change: Callable[[dict[str, Any]], Any]) -> None:
    edit_json(ctx.file(MANIFEST), change)


def entry(ctx: Ctx, name: str, key: str, value: Any) -> None:
    manifest(ctx, lambda data: data["completed"]["0"]["files"][name].__setitem__(key, value))


@payload("dataset", "npy_is_pickle", tags=["pickle"])
def _(ctx: Ctx) -> Expect:
    replace_bytes(ctx.file(REWARDS), pickle_payload(ctx.marker))
    return refuse(REWARDS)


@payload("dataset", "npy_object_dtype", tags=["pickle"])
def _(ctx: Ctx) -> Expect:
    replace_bytes(ctx.file(REWARDS), object_npy_payload(ctx.marker))
    return refuse(REWARDS)


@payload("dataset", "npy_object_dtype_manifest_agrees", tags=["pickle"])
def _(ctx: Ctx) -> Expect:
    replace_bytes(ctx.file(REWARDS), object_npy_payload(ctx.marker))
    entry(ctx, "rewards", "dtype", "object")
    entry(ctx, "rewards", "shape", [1])
    return refuse((REWARDS, MANIFEST))


@payload("dataset", "npz_behind_npy_name", tags=["pickle"])
def _(ctx: Ctx) -> Expect:
    replace_bytes(ctx.file(REWARDS), npz_payload(ctx.marker))
    return refuse(REWARDS)


@payload("dataset", "env_id_imports_module", tags=["env"])
def _(ctx: Ctx) -> Expect:
    manifest(ctx, lambda data: data.__setitem__("env_id", ctx.evil.env_id))
    return refuse(MANIFEST, "env_id")


@payload("dataset", "env_id_unregistered", tags=["env"])
def _(ctx: Ctx) -> Expect:
    manifest(ctx, lambda data: data.__setitem__("env_id", "NoSuchNamespace/NoSuchEnv-v9"))
    return refuse(MANIFEST, "env_id")


@payload("dataset", "env_kwargs_tagged_object", tags=["env"])
def _(ctx: Ctx) -> Expect:
    manifest(
        ctx,
        lambda data: data.__setitem__(
            "env_kwargs", {"size": {"__class__": {"module": "os", "name": "system"}}}
        ),
    )
    return refuse(MANIFEST, ("env_kwargs.size", "env_kwargs"))


def _outside_rewards(ctx: Ctx) -> Path:
    """A valid-looking rewards array outside the folder (the manifest's dtype and shape; other values)."""
    target = ctx.outside / "stolen_rewards.npy"
    target.write_bytes(npy_bytes(np.full(40, 7.0, dtype=np.float32)))
    return target


def _snapshot_relative(ctx: Ctx, target: Path) -> str:
    base = ctx.hub.snapshot_placeholder(ctx.loader.repo_id, "dataset") if ctx.loader.hub else ctx.folder
    return os.path.relpath(target, base)


@payload("dataset", "file_traverses_out", tags=["traversal"])
def _(ctx: Ctx) -> Expect:
    relative = _snapshot_relative(ctx, _outside_rewards(ctx))
    assert relative.startswith("..")
    entry(ctx, "rewards", "file", relative)
    return refuse(MANIFEST, "completed.0.files.rewards.file")


# The optional arrays (terminated, truncated, final_observations) are as untrusted as the four.
TERMINATED = "task_00000_terminated.npy"


@payload("dataset", "optional_npy_is_pickle", tags=["pickle"])
def _(ctx: Ctx) -> Expect:
    replace_bytes(ctx.file(TERMINATED), pickle_payload(ctx.marker))
    return refuse(TERMINATED)


@payload("dataset", "optional_file_traverses_out", tags=["traversal"])
def _(ctx: Ctx) -> Expect:
    relative = _snapshot_relative(ctx, _outside_rewards(ctx))
    entry(ctx, "final_observations", "file", relative)
    return refuse(MANIFEST, "completed.0.files.final_observations.file")


@payload("dataset", "optional_flags_disagree_with_dones", tags=["nan"])
def _(ctx: Ctx) -> Expect:
    import numpy as np

    flags = np.load(ctx.file(TERMINATED))
    np.save(ctx.file(TERMINATED), np.ones_like(flags))
    return refuse(TERMINATED)


@payload("dataset", "file_absolute", tags=["traversal"])
def _(ctx: Ctx) -> Expect:
    entry(ctx, "rewards", "file", str(_outside_rewards(ctx)))
    return refuse(MANIFEST, "completed.0.files.rewards.file")


@payload("dataset", "file_dotdot_inside", tags=["traversal"])
def _(ctx: Ctx) -> Expect:
    entry(ctx, "rewards", "file", f"sub/../{REWARDS}")
    return refuse(MANIFEST, "completed.0.files.rewards.file")


@payload("dataset", "file_backslash_traversal", tags=["traversal"])
def _(ctx: Ctx) -> Expect:
    entry(ctx, "rewards", "file", "..\\..\\stolen_rewards.npy")
    return refuse(MANIFEST, "completed.0.files.rewards.file")


@payload("dataset", "file_not_a_string", tags=["traversal"])
def _(ctx: Ctx) -> Expect:
    entry(ctx, "rewards", "file", {"path": REWARDS})
    return refuse(MANIFEST, "completed.0.files.rewards.file")


@payload("dataset", "file_into_blob_store", hub_only=True, tags=["traversal"])
def _(ctx: Ctx) -> Expect:
    # another file of the same repo, addressed through the cache's blob store, outside the snapshot
    content = npy_bytes(np.full(40, 7.0, dtype=np.float32))
    (ctx.folder / "decoy.bin").write_bytes(content)
    blob = ctx.hub.blob_path(ctx.loader.repo_id, content, "dataset")
    entry(
        ctx,
        "rewards",
        "file",
        os.path.relpath(blob, ctx.hub.snapshot_placeholder(ctx.loader.repo_id, "dataset")),
    )
    return refuse(MANIFEST, "completed.0.files.rewards.file")


@payload("dataset", "npy_links_outside", local_only=True, tags=["symlink"])
def _(ctx: Ctx) -> Expect:
    path = ctx.file(REWARDS)
    path.unlink()
    path.symlink_to(_outside_rewards(ctx))
    return refuse(REWARDS)


@payload("dataset", "manifest_links_outside", local_only=True, tags=["symlink"])
def _(ctx: Ctx) -> Expect:
    symlink_outside(ctx.file(MANIFEST), ctx.outside)
    return refuse(MANIFEST)


@payload("dataset", "npy_header_claims_huge_shape", tags=["oversize"])
def _(ctx: Ctx) -> Expect:
    replace_bytes(ctx.file(REWARDS), npy_header_only("<f4", (10**12,)))
    entry(ctx, "rewards", "shape", [10**12])
    return refuse((REWARDS, MANIFEST), max_seconds=FAST)


@payload("dataset", "manifest_shape_disagrees", tags=["oversize"])
def _(ctx: Ctx) -> Expect:
    entry(ctx, "rewards", "shape", [41])
    return refuse((REWARDS, MANIFEST))


@payload("dataset", "observation_space_trillion", tags=["oversize"])
def _(ctx: Ctx) -> Expect:
    manifest(ctx, lambda data: data["observation_space"].__setitem__("n", 10**12))
    return refuse(MANIFEST, ("observation_space.n", "observation_space"), max_seconds=FAST)


@payload("dataset", "action_space_trillion", tags=["oversize"])
def _(ctx: Ctx) -> Expect:
    manifest(ctx, lambda data: data["action_space"].__setitem__("n", 10**12))
    return refuse(MANIFEST, ("action_space.n", "action_space"), max_seconds=FAST)


def _rewrite_array(name: str, change: Callable[[np.ndarray], None]) -> Callable[[Ctx], None]:
    def apply(ctx: Ctx) -> None:
        path = ctx.file(name)
        array = np.load(path, allow_pickle=False).copy()
        change(array)
        replace_bytes(path, npy_bytes(array))

    return apply


for _name, _file, _change in [
    ("rewards_nan", REWARDS, lambda array: array.__setitem__(3, np.nan)),
    ("rewards_inf", REWARDS, lambda array: array.__setitem__(3, np.inf)),
    ("observations_out_of_range", OBSERVATIONS, lambda array: array.__setitem__(0, 10**6)),
    ("observations_negative", OBSERVATIONS, lambda array: array.__setitem__(0, -1)),
    ("actions_out_of_range", ACTIONS, lambda array: array.__setitem__(0, 99)),
]:

    def _bad_values(ctx: Ctx, file: str = _file, change: Callable[[np.ndarray], None] = _change) -> Expect:
        _rewrite_array(file, change)(ctx)
        return refuse(file)

    PAYLOADS["dataset"].append(Payload(_name, _bad_values, base="dataset", tags=["nan"]))


@payload("dataset", "tasks_shorter_than_completed", tags=["json"])
def _(ctx: Ctx) -> Expect:
    manifest(ctx, lambda data: data.__setitem__("tasks", data["tasks"][:1]))
    return refuse(MANIFEST, ("tasks", "completed"))


@payload("dataset", "completed_key_not_an_index", tags=["json"])
def _(ctx: Ctx) -> Expect:
    manifest(ctx, lambda data: data["completed"].__setitem__("zero", data["completed"]["0"]))
    return refuse(MANIFEST, ("completed.zero", "completed"))


@payload("dataset", "completed_entry_without_files", tags=["json"])
def _(ctx: Ctx) -> Expect:
    manifest(ctx, lambda data: data["completed"]["0"].pop("files"))
    return refuse(MANIFEST, ("completed.0.files", "files"))


json_payloads("dataset", MANIFEST)


# --------------------------------------------------------------------------------------------
# VecNormalize statistics
# --------------------------------------------------------------------------------------------


def stats(ctx: Ctx, change: Callable[[dict[str, Any]], Any]) -> None:
    edit_json(ctx.file(VECNORM), change)


for _name, _field, _change in [
    ("mean_nan", "obs_rms.mean", lambda data: data["obs_rms"]["mean"]["data"].__setitem__(0, "nan")),
    ("var_negative", "obs_rms.var", lambda data: data["obs_rms"]["var"]["data"].__setitem__(0, -1.0)),
    (
        "shape_disagrees_with_env",
        "obs_rms.mean",
        lambda data: data["obs_rms"].update(
            mean={"dtype": "<f8", "shape": [3], "data": [0.0] * 3},
            var={"dtype": "<f8", "shape": [3], "data": [1.0] * 3},
        ),
    ),
    ("shape_huge", "obs_rms.mean", lambda data: data["obs_rms"]["mean"].update(shape=[10**12], data=[])),
    ("dtype_object", "obs_rms.mean", lambda data: data["obs_rms"]["mean"].update(dtype="|O")),
    ("count_negative", "obs_rms.count", lambda data: data["obs_rms"].__setitem__("count", -5.0)),
    ("clip_obs_string", "clip_obs", lambda data: data.__setitem__("clip_obs", "nan")),
    ("epsilon_zero", "epsilon", lambda data: data.__setitem__("epsilon", 0.0)),
    (
        "norm_obs_keys_tagged",
        "norm_obs_keys",
        lambda data: data.__setitem__("norm_obs_keys", [{"__class__": {"module": "os", "name": "system"}}]),
    ),
    ("data_length_disagrees", "obs_rms.mean", lambda data: data["obs_rms"]["mean"]["data"].append(0.0)),
]:

    def _vec(ctx: Ctx, field: str = _field, change: Callable[[dict[str, Any]], Any] = _change) -> Expect:
        stats(ctx, change)
        return refuse(VECNORM, (field, field.split(".")[0]), max_seconds=FAST)

    PAYLOADS["vecnorm"].append(Payload(_name, _vec, base="vecnorm", tags=["json"]))


@payload("vecnorm", "links_outside", local_only=True, tags=["symlink"])
def _(ctx: Ctx) -> Expect:
    symlink_outside(ctx.file(VECNORM), ctx.outside)
    return refuse(VECNORM)


json_payloads("vecnorm", VECNORM)


# --------------------------------------------------------------------------------------------
# The matrix
# --------------------------------------------------------------------------------------------


def _cases() -> list[Any]:
    cases = []
    for loader in LOADERS:
        for item in PAYLOADS[loader.family]:
            if (item.local_only and loader.hub) or (item.hub_only and not loader.hub):
                continue
            cases.append(pytest.param(item, loader, id=f"{loader.family}-{item.name}-{loader.name}"))
    return cases


def _base(artifacts: Artifacts, family: str) -> Path:
    return {"ad": artifacts.ad, "dataset": artifacts.dataset, "vecnorm": artifacts.vecnorm}[family]


@pytest.mark.parametrize(("item", "loader"), _cases())
def test_poisoned_file_is_refused(
    item: Payload,
    loader: Loader,
    artifacts: Artifacts,
    tmp_path: Path,
    marker: Path,
    request: pytest.FixtureRequest,
    evil: EvilModules,
    outside: Path,
) -> None:
    folder = copy_artifact(_base(artifacts, loader.family), tmp_path / "folder")
    ctx = Ctx(tmp_path, folder, marker, request, evil, outside, artifacts, loader)
    loader.prepare(ctx)
    expect = item.apply(ctx)
    loader.stage(ctx)
    check_outcome(lambda: loader.load(ctx), expect, marker)


@pytest.mark.parametrize("loader", LOADERS, ids=repr)
def test_valid_files_load_through_every_loader(
    loader: Loader,
    artifacts: Artifacts,
    tmp_path: Path,
    marker: Path,
    request: pytest.FixtureRequest,
    evil: EvilModules,
    outside: Path,
) -> None:
    """The control: the unpoisoned artifacts load through each loader."""
    folder = copy_artifact(_base(artifacts, loader.family), tmp_path / "folder")
    ctx = Ctx(tmp_path, folder, marker, request, evil, outside, artifacts, loader)
    loader.prepare(ctx)
    loader.stage(ctx)
    result = loader.load(ctx)
    if loader.family == "dataset" and result is not None:
        assert len(result) == 7 and all(len(history) == 40 for history in result.histories)
        assert float(result.episode_returns().sum()) >= 0
    assert not marker.exists()


# --------------------------------------------------------------------------------------------
# The source a model or dataset records, rebuilt by make_source (not by any loader)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hyperparameters", "match"),
    [
        # A recorded name reaches only SB3's algorithm classes, never another attribute or a module.
        ({"algorithm": "get_system_info", "policy": "MlpPolicy"}, "is not an SB3 or sb3-contrib algorithm"),
        ({"algorithm": "os.system", "policy": "MlpPolicy"}, "is not an SB3 or sb3-contrib algorithm"),
        # No path to write to, no class to construct.
        ({"algorithm": "PPO", "policy": "MlpPolicy", "tensorboard_log": "<outside>"}, "tensorboard_log"),
        (
            {"algorithm": "PPO", "policy": "MlpPolicy", "rollout_buffer_class": "os.system"},
            "rollout_buffer_class",
        ),
    ],
)
def test_a_tampered_recorded_sb3_source_is_refused_by_make_source_and_writes_nothing(
    tmp_path: Path, hyperparameters: dict[str, Any], match: str
) -> None:
    from zoo.agents.ad import load_pretrained, make_source

    outside = tmp_path / "outside"
    hyperparameters = {
        key: str(outside) if value == "<outside>" else value for key, value in hyperparameters.items()
    }
    model = load_pretrained("zoo/DarkRoom-v0", device="cpu")
    model.metadata["source"] = {"name": "sb3_ppo", "hyperparameters": hyperparameters}
    with pytest.raises(ValueError, match=match):
        make_source(model.metadata["source"])
    assert not outside.exists()
