"""Save and load agents as ``model.safetensors`` + ``config.json``, without pickle.

Stable-Baselines3's own ``.zip`` format pickles the agent's attributes, so loading one
downloaded from the network can run arbitrary code. This module stores instead:

``model.safetensors``
    The tensors needed to act: the state dict of every ``torch.nn.Module`` listed by the
    agent's ``_get_torch_save_params()`` (for SB3 agents that is ``policy``, which holds
    actor, critics and target networks), flattened as ``"<module>.<parameter>"`` keys, plus
    the extra PyTorch variables such as SAC's ``log_ent_coef``. Optimizer states are *not*
    saved: a loaded agent acts exactly like the saved one, and continued training starts
    from fresh optimizer moments (as when fine-tuning a published model).
``config.json``
    The algorithm class, the policy class, ``policy_kwargs`` (classes such as
    ``activation_fn`` written by dotted name), the observation and action spaces, every
    hyper-parameter that is plain JSON (schedules written as their constant or linear
    form), the environment id and kwargs when known, and the library versions.
``vec_normalize.json`` (optional)
    The running mean and variance of a ``VecNormalize`` wrapper, as JSON arrays.

Everything read back from those files passes :mod:`zoo.hub.trust`, the one module that parses
untrusted bytes: classes come from its allow-list (SB3, sb3-contrib and ``zoo`` algorithms,
policies, extractors and buffers; ``torch.nn`` modules; ``torch.optim`` optimizers),
hyper-parameters from its per-field allow-list (never ``teacher``, paths or callables), and the
model's tensor shapes are checked against the safetensors header before anything is allocated. Agents that are not SB3 algorithms (Algorithm Distillation) save themselves
through their own ``save(directory)``; this module adds an ``agent.json`` naming the class so
that :func:`load_agent` can find its ``load(directory, device)``.
"""

from __future__ import annotations

import enum
import importlib.metadata
import inspect
import math
import os
import platform
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces

from . import trust
from .files import atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text
from .trust import (
    UntrustedFileError,
    decode_array,
    decode_value,
    lookup_algorithm,
    resolve_class,
    space_from_json,
    zoo_agent_classes,
)

__all__ = [
    "UntrustedFileError",
    "algorithm_registry",
    "atomic_write_bytes",
    "atomic_write_text",
    "class_reference",
    "decode_array",
    "decode_value",
    "encode_array",
    "encode_value",
    "load_agent",
    "read_agent_config",
    "read_json",
    "resolve_class",
    "restore_vec_normalize",
    "save_agent",
    "space_from_json",
    "space_to_json",
    "write_json",
]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
VEC_NORMALIZE_FILE = "vec_normalize.json"
AGENT_FILE = "agent.json"
FORMAT_NAME = "distill-zoo-agent"
FORMAT_VERSION = 1

# Attributes never written to / restored from config.json: objects rebuilt by the loader,
# run-time state, and values with side effects on load (``seed`` reseeds the global RNGs).
_SKIPPED_ATTRIBUTES = frozenset(
    {
        "policy",
        "policy_class",
        "policy_kwargs",
        "observation_space",
        "action_space",
        "device",
        "env",
        "seed",
        "start_time",
        "tensorboard_log",
        "verbose",
        "_last_obs",
        "_last_episode_starts",
        "_last_original_obs",
        "ep_info_buffer",
        "ep_success_buffer",
        "_logger",
        "_custom_logger",
        "_vec_normalize_env",
        "replay_buffer",
        "rollout_buffer",
    }
)

_NOT_ENCODABLE = object()


# --------------------------------------------------------------------------------------------
# Class references through the allow-list
# --------------------------------------------------------------------------------------------


def class_reference(cls: type) -> dict[str, str]:
    """Describe a class as ``{"module": ..., "name": ...}`` for JSON.

    :param cls: the class; it must be defined in an allow-listed package.
    :return: the reference, resolvable by :func:`resolve_class`.
    """
    module, name = cls.__module__, cls.__qualname__
    if "." in name or "<" in name:
        raise ValueError(f"class {cls!r} is not defined at module level and cannot be saved by name")
    if not trust._in_allowed_package(module) or not issubclass(cls, trust.allowed_bases()):
        raise ValueError(
            f"class {module}.{name} cannot be saved by name: only torch.nn modules, torch.optim "
            "optimizers, and SB3 / sb3-contrib / zoo policies, extractors and buffers are allowed"
        )
    return {"module": module, "name": name}


def algorithm_registry() -> dict[str, type]:
    """Return every algorithm class :func:`load_agent` may build, by class name.

    SB3 and sb3-contrib classes come first; every name in ``zoo.agents.__all__`` that imports
    and is a class is added (zoo families that fail to import are skipped silently).
    """
    registry: dict[str, type] = {}
    for name in trust.ALGORITHM_MODULES:
        try:
            registry[name] = lookup_algorithm(name)
        except UntrustedFileError:  # its package is not installed
            continue
    registry.update(zoo_agent_classes())
    return registry


# --------------------------------------------------------------------------------------------
# JSON encoding of values, arrays and spaces
# --------------------------------------------------------------------------------------------


def _encode_float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def encode_array(array: np.ndarray) -> dict[str, Any]:
    """Encode a numeric array as strict JSON (non-finite floats as ``"inf"``, ``"-inf"``, ``"nan"``).

    :param array: the array.
    :return: ``{"dtype", "shape", "data"}`` with ``data`` flattened in C order.
    """
    array = np.asarray(array)
    if array.dtype.kind == "f":
        data: list[Any] = [_encode_float(float(x)) for x in array.ravel()]
    elif array.dtype.kind in "iub":
        data = [int(x) for x in array.ravel()]
    else:
        raise ValueError(f"array of dtype {array.dtype} cannot be encoded; numeric arrays only")
    return {"dtype": array.dtype.str, "shape": list(array.shape), "data": data}


def space_to_json(space: spaces.Space) -> dict[str, Any]:
    """Encode a Gymnasium space (Box, Discrete, MultiDiscrete, MultiBinary, Dict, Tuple) as JSON.

    :param space: the space.
    :return: a JSON-serialisable mapping, decoded by :func:`space_from_json`.
    """
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "low": encode_array(space.low),
            "high": encode_array(space.high),
            "shape": list(space.shape),
            "dtype": np.dtype(space.dtype).str,
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "nvec": encode_array(space.nvec),
            "start": encode_array(space.start),
            "dtype": np.dtype(space.dtype).str,
        }
    if isinstance(space, spaces.MultiBinary):
        n = space.n
        return {"type": "MultiBinary", "n": int(n) if np.isscalar(n) else [int(x) for x in n]}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": [[key, space_to_json(sub)] for key, sub in space.spaces.items()]}
    if isinstance(space, spaces.Tuple):
        return {"type": "Tuple", "spaces": [space_to_json(sub) for sub in space.spaces]}
    raise ValueError(
        f"space={space!r} cannot be saved; supported: Box, Discrete, MultiDiscrete, MultiBinary, Dict, Tuple"
    )


def encode_value(value: Any) -> Any:
    """Encode a hyper-parameter or ``policy_kwargs`` value as JSON, or return a sentinel.

    Plain JSON values pass through; tuples become ``{"__tuple__": [...]}``; enums their value;
    numpy scalars Python numbers; allow-listed classes ``{"__class__": {...}}``; SB3 constant and
    linear schedules ``{"__schedule__": ...}``. Anything else is not encodable.

    :param value: the value.
    :return: the JSON form, or the module's private ``_NOT_ENCODABLE`` sentinel.
    """
    from stable_baselines3.common.utils import ConstantSchedule, FloatSchedule, LinearSchedule

    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, enum.Enum):
        return encode_value(value.value)
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": _encode_float(value)}
    if isinstance(value, np.generic) and np.asarray(value).dtype.kind in "fiub":
        return encode_value(value.item())
    if isinstance(value, FloatSchedule):
        return encode_value(value.value_schedule)
    if isinstance(value, ConstantSchedule):
        return encode_value(float(value.val))
    if isinstance(value, LinearSchedule):
        return {
            "__schedule__": "linear",
            "start": float(value.start),
            "end": float(value.end),
            "end_fraction": float(value.end_fraction),
        }
    if isinstance(value, type):
        try:
            return {"__class__": class_reference(value)}
        except ValueError:
            return _NOT_ENCODABLE
    if isinstance(value, tuple):
        items = [encode_value(item) for item in value]
        return _NOT_ENCODABLE if any(item is _NOT_ENCODABLE for item in items) else {"__tuple__": items}
    if isinstance(value, list):
        items = [encode_value(item) for item in value]
        return _NOT_ENCODABLE if any(item is _NOT_ENCODABLE for item in items) else items
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value) or any(key.startswith("__") for key in value):
            return _NOT_ENCODABLE
        encoded = {key: encode_value(item) for key, item in value.items()}
        return _NOT_ENCODABLE if any(item is _NOT_ENCODABLE for item in encoded.values()) else encoded
    return _NOT_ENCODABLE


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write strict JSON atomically (see :mod:`zoo.hub.files`).

    :param path: destination.
    :param data: JSON-serialisable data (no NaN / inf).
    """
    atomic_write_json(path, data)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a strict JSON file; any problem is an :class:`UntrustedFileError` naming it.

    :param path: the file.
    """
    return trust.read_json(path)


def library_versions() -> dict[str, str]:
    """Return the versions of Python and the libraries a saved agent depends on."""
    versions = {"python": platform.python_version()}
    for package in (
        "distill-zoo",
        "stable-baselines3",
        "sb3-contrib",
        "torch",
        "gymnasium",
        "numpy",
        "huggingface-hub",
    ):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


# --------------------------------------------------------------------------------------------
# Save / load
# --------------------------------------------------------------------------------------------


def is_sb3_algorithm(model: Any) -> bool:
    """Return whether ``model`` is a Stable-Baselines3 ``BaseAlgorithm``.

    :param model: any object.
    """
    from stable_baselines3.common.base_class import BaseAlgorithm

    return isinstance(model, BaseAlgorithm)


def _is_custom_agent(model: Any) -> bool:
    # Agents that are not SB3 algorithms (Algorithm Distillation) save themselves.
    cls = type(model)
    return callable(getattr(model, "save", None)) and callable(getattr(cls, "load", None))


def _policy_reference(model: Any) -> dict[str, str]:
    policy_class = model.policy_class
    for alias, cls in getattr(model, "policy_aliases", {}).items():
        if cls is policy_class:
            return {"alias": alias}
    return class_reference(policy_class)


def _state_to_tensors(model: Any) -> tuple[dict[str, th.Tensor], list[str], list[str]]:
    from stable_baselines3.common.save_util import recursive_getattr

    module_names, variable_names = model._get_torch_save_params()
    tensors: dict[str, th.Tensor] = {}
    saved_modules: list[str] = []
    for name in module_names:
        attr = recursive_getattr(model, name)
        if not isinstance(attr, th.nn.Module):  # optimizers: not needed to act (see module doc)
            continue
        attr = getattr(attr, "_orig_mod", attr)  # unwrap torch.compile
        saved_modules.append(name)
        for key, tensor in attr.state_dict().items():
            # clone: safetensors refuses tensors sharing memory (shared feature extractors)
            tensors[f"{name}.{key}"] = tensor.detach().to("cpu").contiguous().clone()
    saved_variables: list[str] = []
    for name in variable_names:
        value = recursive_getattr(model, name)
        if isinstance(value, th.Tensor):
            tensors[name] = value.detach().to("cpu").contiguous().clone()
            saved_variables.append(name)
    return tensors, saved_modules, saved_variables


def _hyperparameters(model: Any) -> tuple[dict[str, Any], list[str]]:
    excluded = set(model._excluded_save_params()) | _SKIPPED_ATTRIBUTES
    saved: dict[str, Any] = {}
    skipped: list[str] = []
    for key, value in vars(model).items():
        if key in excluded:
            continue
        encoded = encode_value(value)
        if encoded is _NOT_ENCODABLE:
            skipped.append(key)
        else:
            saved[key] = encoded
    return saved, sorted(skipped)


def _find_vec_normalize(model: Any, vec_normalize: Any) -> Any:
    from stable_baselines3.common.vec_env import VecNormalize, unwrap_vec_normalize

    if vec_normalize is not None:
        found = unwrap_vec_normalize(vec_normalize) if not isinstance(vec_normalize, VecNormalize) else None
        found = vec_normalize if isinstance(vec_normalize, VecNormalize) else found
        if found is None:
            raise ValueError(f"vec_normalize={vec_normalize!r} is not (and does not wrap) a VecNormalize")
        return found
    getter = getattr(model, "get_vec_normalize_env", None)
    return getter() if callable(getter) else None


def _running_stats_to_json(stats: Any) -> Any:
    if isinstance(stats, dict):
        return {key: _running_stats_to_json(value) for key, value in stats.items()}
    return {"mean": encode_array(stats.mean), "var": encode_array(stats.var), "count": float(stats.count)}


def _running_stats_from_json(checked: Mapping[str, Any]) -> Any:
    from stable_baselines3.common.running_mean_std import RunningMeanStd

    if "mean" not in checked:
        return {key: _running_stats_from_json(value) for key, value in checked.items()}
    stats = RunningMeanStd(shape=checked["mean"].shape)
    stats.mean = checked["mean"].astype(np.float64)
    stats.var = checked["var"].astype(np.float64)
    stats.count = float(checked["count"])
    return stats


def vec_normalize_to_json(vec_normalize: Any) -> dict[str, Any]:
    """Encode the statistics and settings of a ``VecNormalize`` as JSON (no pickle).

    :param vec_normalize: the ``VecNormalize`` wrapper.
    :return: a JSON-serialisable mapping, restored by :func:`restore_vec_normalize`.
    """
    return {
        "obs_rms": _running_stats_to_json(vec_normalize.obs_rms) if vec_normalize.norm_obs else None,
        "ret_rms": _running_stats_to_json(vec_normalize.ret_rms),
        "norm_obs": bool(vec_normalize.norm_obs),
        "norm_reward": bool(vec_normalize.norm_reward),
        "norm_obs_keys": list(vec_normalize.norm_obs_keys) if vec_normalize.norm_obs_keys else None,
        "clip_obs": float(vec_normalize.clip_obs),
        "clip_reward": float(vec_normalize.clip_reward),
        "gamma": float(vec_normalize.gamma),
        "epsilon": float(vec_normalize.epsilon),
    }


def restore_vec_normalize(source: str | os.PathLike[str] | Mapping[str, Any], venv: Any) -> Any:
    """Wrap ``venv`` in a ``VecNormalize`` holding saved statistics, ready for evaluation.

    The wrapper is returned with ``training=False`` (statistics frozen) and ``norm_reward=False``
    (evaluation reports raw returns), as rl-baselines3-zoo does when it enjoys a model.

    :param source: a directory or ``vec_normalize.json`` written by :func:`save_agent`, or the
        mapping from :func:`vec_normalize_to_json`.
    :param venv: an SB3 ``VecEnv``.
    :return: the ``VecNormalize`` wrapper.
    """
    from stable_baselines3.common.vec_env import VecNormalize

    if isinstance(source, Mapping):
        path: Path = Path("<vec_normalize>")
        data: Any = source
    else:
        path = Path(source)
        path = path / VEC_NORMALIZE_FILE if path.is_dir() else path
        data = trust.read_json_object(path)
    settings = trust.vec_normalize_settings(data, path=path)
    shape = getattr(venv.observation_space, "shape", None)
    obs_rms = settings["obs_rms"]
    if (
        obs_rms is not None
        and "mean" in obs_rms
        and shape is not None
        and tuple(obs_rms["mean"].shape) != tuple(shape)
    ):
        raise UntrustedFileError(
            path,
            f"statistics of shape {list(obs_rms['mean'].shape)} do not fit observations of shape {list(shape)}",
            field="obs_rms",
        )
    wrapper = VecNormalize(
        venv,
        training=False,
        norm_obs=settings["norm_obs"],
        norm_reward=False,
        clip_obs=settings["clip_obs"],
        clip_reward=settings["clip_reward"],
        gamma=settings["gamma"],
        epsilon=settings["epsilon"],
        norm_obs_keys=settings["norm_obs_keys"],
    )
    if obs_rms is not None:
        wrapper.obs_rms = _running_stats_from_json(obs_rms)
    wrapper.ret_rms = _running_stats_from_json(settings["ret_rms"])
    return wrapper


def save_agent(
    model: Any,
    directory: str | os.PathLike[str],
    *,
    env_id: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    vec_normalize: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Save an agent as ``model.safetensors`` + ``config.json`` (+ ``vec_normalize.json``).

    :param model: an SB3 / sb3-contrib / zoo algorithm, or an agent with its own
        ``save(directory)`` and ``load(directory, device)`` (Algorithm Distillation).
    :param directory: destination directory (created if needed); existing files are replaced.
    :param env_id: the environment id the agent was trained on, recorded in the config.
    :param env_kwargs: keyword arguments of ``gym.make``, recorded if they are plain JSON.
    :param vec_normalize: a ``VecNormalize`` (or a VecEnv wrapping one) whose statistics are
        saved; by default the model's own ``get_vec_normalize_env()`` is used.
    :param extra: additional plain-JSON entries stored under ``config["extra"]``.
    :return: the directory.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    env_kwargs_json = encode_value(dict(env_kwargs)) if env_kwargs is not None else None
    if env_kwargs_json is _NOT_ENCODABLE:
        raise ValueError(f"env_kwargs={env_kwargs!r} must be plain JSON to be saved")
    extra_json = encode_value(dict(extra)) if extra is not None else None
    if extra_json is _NOT_ENCODABLE:
        raise ValueError(f"extra={extra!r} must be plain JSON to be saved")

    if not is_sb3_algorithm(model):
        if not _is_custom_agent(model):
            raise ValueError(
                f"model of type {type(model).__name__} cannot be saved: expected an SB3 BaseAlgorithm or "
                "an agent with save(directory) and a classmethod load(directory, device)"
            )
        model.save(directory)
        reference = class_reference_for_agent(type(model))
        write_json(
            directory / AGENT_FILE,
            {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "algorithm": type(model).__name__,
                "class": reference,
                "env_id": env_id,
                "env_kwargs": env_kwargs_json,
                "extra": extra_json,
                "versions": library_versions(),
            },
        )
        return directory

    from safetensors.torch import save_file

    policy_kwargs = {key: value for key, value in model.policy_kwargs.items() if key != "device"}
    policy_kwargs_json = encode_value(policy_kwargs)
    if policy_kwargs_json is _NOT_ENCODABLE:
        bad = [key for key, value in policy_kwargs.items() if encode_value(value) is _NOT_ENCODABLE]
        raise ValueError(
            f"policy_kwargs entries {bad} cannot be saved: values must be plain JSON or allow-listed "
            "classes (torch.nn modules, torch.optim optimizers, SB3 / sb3-contrib / zoo classes)"
        )
    tensors, modules, variables = _state_to_tensors(model)
    hyperparameters, skipped = _hyperparameters(model)
    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "algorithm": type(model).__name__,
        "class": {"module": type(model).__module__, "name": type(model).__name__},
        "policy": _policy_reference(model),
        "policy_kwargs": policy_kwargs_json,
        "observation_space": space_to_json(model.observation_space),
        "action_space": space_to_json(model.action_space),
        "hyperparameters": hyperparameters,
        "not_saved": skipped,
        "parameters": {"modules": modules, "variables": variables},
        "env_id": env_id,
        "env_kwargs": env_kwargs_json,
        "extra": extra_json,
        "versions": library_versions(),
    }
    (directory / AGENT_FILE).unlink(missing_ok=True)  # a stale marker would redirect load_agent
    found = _find_vec_normalize(model, vec_normalize)
    if found is not None:
        write_json(directory / VEC_NORMALIZE_FILE, vec_normalize_to_json(found))
    else:
        (directory / VEC_NORMALIZE_FILE).unlink(missing_ok=True)

    with atomic_path(directory / WEIGHTS_FILE) as temporary:
        save_file(tensors, str(temporary), metadata={"format": "pt", "algorithm": type(model).__name__})
    write_json(directory / CONFIG_FILE, config)
    return directory


def class_reference_for_agent(cls: type) -> dict[str, str]:
    """Reference a non-SB3 agent class; it must be exported by ``zoo.agents``.

    :param cls: the agent class.
    """
    if zoo_agent_classes().get(cls.__name__) is not cls:
        raise ValueError(
            f"agent class {cls.__module__}.{cls.__qualname__} is not exported by zoo.agents, so it "
            "could not be loaded back by name"
        )
    return {"module": cls.__module__, "name": cls.__name__}


def read_agent_config(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the description of a saved agent: ``agent.json`` if present, else ``config.json``.

    Only the ``format`` and ``algorithm`` fields are checked here; :func:`load_agent` checks the rest.

    :param directory: a directory written by :func:`save_agent`.
    :raises FileNotFoundError: if the directory holds neither file.
    :raises UntrustedFileError: if a file is corrupt or names a class outside the allow-list.
    """
    directory = Path(directory)
    for name in (AGENT_FILE, CONFIG_FILE):
        path = directory / name
        if path.is_file() or path.is_symlink():
            data = trust.read_json_object(path, root=directory)
            if data.get("format") == FORMAT_NAME:
                trust.field(data, "algorithm", str, path=path)
                return data
    path = directory / CONFIG_FILE
    if path.is_file():
        # A directory written by a zoo agent's own save() (AD) without zoo.hub's agent.json.
        data = trust.read_json_object(path, root=directory)
        name = data.get("algorithm")
        cls = zoo_agent_classes().get(name) if isinstance(name, str) else None
        if cls is not None and not _is_sb3_class(cls) and callable(getattr(cls, "load", None)):
            metadata = data.get("metadata")
            return {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "algorithm": name,
                "class": {"module": cls.__module__, "name": name},
                "env_id": metadata.get("env_id") if isinstance(metadata, dict) else None,
            }
        raise UntrustedFileError(
            path,
            f"is not an agent written by zoo.hub.save_agent (format {FORMAT_NAME!r}) or a zoo agent's save()",
        )
    raise FileNotFoundError(
        f"{directory} holds no {CONFIG_FILE} or {AGENT_FILE} written by zoo.hub.save_agent "
        f"(format {FORMAT_NAME!r})"
    )


def _is_sb3_class(cls: type) -> bool:
    from stable_baselines3.common.base_class import BaseAlgorithm

    return issubclass(cls, BaseAlgorithm)


def _policy_from_config(cls: type, reference: Any, path: Path) -> Any:
    from stable_baselines3.common.policies import BasePolicy

    if isinstance(reference, dict) and "alias" in reference:
        alias = reference["alias"]
        if not isinstance(alias, str) or alias not in getattr(cls, "policy_aliases", {}):
            raise UntrustedFileError(
                path,
                f"policy alias {alias!r} is unknown to {cls.__name__}; "
                f"known: {sorted(getattr(cls, 'policy_aliases', {}))}",
                field="policy.alias",
            )
        return alias
    return resolve_class(reference, path=path, field_name="policy", base=BasePolicy)


def _saved_names(config: Mapping[str, Any], key: str, path: Path) -> list[str]:
    parameters = trust.field(config, "parameters", dict, path=path)
    names = trust.field(parameters, key, list, path=path, prefix="parameters")
    if not all(isinstance(name, str) for name in names):
        raise UntrustedFileError(
            path, f"is {names!r}; a list of names was expected", field=f"parameters.{key}"
        )
    return names


def load_agent(
    directory: str | os.PathLike[str],
    device: str | th.device = "auto",
    *,
    env: Any = None,
) -> Any:
    """Rebuild an agent saved by :func:`save_agent`, ready for ``.predict``; nothing is unpickled.

    Every field is read through :mod:`zoo.hub.trust`: the config may only name allow-listed
    classes and plain hyper-parameters, and the network it describes is first built on the
    ``meta`` device (no memory) so that its shapes can be compared with the safetensors header.

    :param directory: the directory holding ``config.json`` and ``model.safetensors``.
    :param device: torch device for the model (``"auto"``: CUDA when available).
    :param env: optional environment to attach (spaces are checked). If the directory holds
        ``vec_normalize.json`` the env is wrapped in a frozen ``VecNormalize`` with those
        statistics; without ``env`` use :func:`restore_vec_normalize` yourself.
    :return: the agent, of the class named in the config.
    :raises UntrustedFileError: naming the file and field of anything corrupt or refused.
    """
    directory = Path(directory)
    config = read_agent_config(directory)
    if "policy" not in config:
        return _load_custom_agent(directory, config, device)

    from stable_baselines3.common.save_util import recursive_getattr, recursive_setattr

    path = directory / CONFIG_FILE
    cls = lookup_algorithm(config.get("algorithm"), path=path)
    if not _is_sb3_class(cls):
        raise UntrustedFileError(path, f"{cls.__name__} is not an SB3 algorithm", field="algorithm")
    policy = _policy_from_config(cls, config["policy"], path)
    policy_kwargs = trust.policy_kwargs(config.get("policy_kwargs"), path=path)
    observation_space = space_from_json(
        config.get("observation_space"), path=path, field_name="observation_space"
    )
    action_space = space_from_json(config.get("action_space"), path=path, field_name="action_space")
    attributes = trust.agent_hyperparameters(config.get("hyperparameters"), path=path)
    env_id = config.get("env_id")
    if env_id is not None:
        trust.check_env_id(env_id, path=path, field_name="env_id")
    saved_modules = _saved_names(config, "modules", path)
    variables = _saved_names(config, "variables", path)

    if env is not None:
        from stable_baselines3.common.utils import check_for_correct_spaces

        env = cls._wrap_env(env, verbose=0)
        if (directory / VEC_NORMALIZE_FILE).is_file():
            env = restore_vec_normalize(directory, env)
        check_for_correct_spaces(env, observation_space, action_space)
        attributes["n_envs"] = env.num_envs
    else:
        from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

        buffer_class = attributes.get("replay_buffer_class")
        if isinstance(buffer_class, type) and issubclass(buffer_class, HerReplayBuffer):
            # HER needs an env to build its buffer; acting does not need the buffer at all.
            warnings.warn(
                "this agent was trained with HerReplayBuffer, which needs an environment: it is "
                "loaded with a plain replay buffer for acting; pass env=... to continue training with HER",
                stacklevel=2,
            )
            attributes.pop("replay_buffer_class")
            attributes.pop("replay_buffer_kwargs", None)

    signature = inspect.signature(cls.__init__).parameters
    constructor_kwargs = {key: value for key, value in attributes.items() if key in signature}

    def build(build_device: str | th.device) -> Any:
        model = cls(
            policy=policy,
            env=env,
            device=build_device,
            policy_kwargs=policy_kwargs,
            _init_setup_model=False,
            **constructor_kwargs,
        )
        model.observation_space = observation_space
        model.action_space = action_space
        # Restore only attributes the constructor created (and n_envs, which needs an env to be
        # set), never names of methods or properties: a config cannot add behaviour to the class.
        for key, value in attributes.items():
            on_class = getattr(type(model), key, None)
            if callable(on_class) or isinstance(on_class, property):
                raise UntrustedFileError(path, "would replace a method", field=f"hyperparameters.{key}")
            if key in vars(model) or key == "n_envs":
                setattr(model, key, value)
        model._setup_model()
        return model

    def expected_shapes(model: Any) -> dict[str, tuple[int, ...]]:
        module_names, variable_names = model._get_torch_save_params()
        expected_modules = [n for n in module_names if isinstance(recursive_getattr(model, n), th.nn.Module)]
        if sorted(saved_modules) != sorted(expected_modules):
            raise UntrustedFileError(
                path,
                f"lists modules {saved_modules}, but {cls.__name__} saves {expected_modules}",
                field="parameters.modules",
            )
        unknown = sorted(set(variables) - set(variable_names))
        if unknown:
            raise UntrustedFileError(
                path, f"variables {unknown} are unknown to {cls.__name__}", field="parameters.variables"
            )
        shapes: dict[str, tuple[int, ...]] = {}
        for name in saved_modules:
            module = recursive_getattr(model, name)
            shapes.update(trust.state_shapes(getattr(module, "_orig_mod", module), prefix=f"{name}."))
        for name in variables:
            shapes[name] = tuple(recursive_getattr(model, name).shape)
        return shapes

    weights = directory / WEIGHTS_FILE
    if not weights.is_file() and not weights.is_symlink():
        raise FileNotFoundError(f"{weights} is missing")
    planned = trust.shapes_without_allocating(
        lambda: expected_shapes(build("cpu")),
        path=path,
        what="policy_kwargs / observation_space / action_space",
    )
    trust.check_safetensors_shapes(weights, planned, root=directory)
    try:
        model = build(device)
    except UntrustedFileError:
        raise
    except Exception as error:  # the meta build passed, so this is memory or the device
        raise UntrustedFileError(
            path, f"the agent it describes cannot be built: {type(error).__name__}: {error}"
        ) from error
    tensors = trust.load_safetensors(weights, planned, root=directory)
    grouped: dict[str, dict[str, th.Tensor]] = {name: {} for name in saved_modules}
    for key, tensor in tensors.items():
        if key in variables:
            continue
        owner = max((name for name in saved_modules if key.startswith(name + ".")), key=len)
        grouped[owner][key[len(owner) + 1 :]] = tensor
    for name, state in grouped.items():
        module = recursive_getattr(model, name)
        getattr(module, "_orig_mod", module).load_state_dict(state, strict=True)
    for name in variables:
        recursive_setattr(model, f"{name}.data", tensors[name].to(model.device))
    if getattr(model, "use_sde", False):
        model.policy.reset_noise()
    return model


def _load_custom_agent(directory: Path, config: Mapping[str, Any], device: str | th.device) -> Any:
    where = directory / AGENT_FILE if (directory / AGENT_FILE).is_file() else directory / CONFIG_FILE
    if config.get("env_id") is not None:
        trust.check_env_id(config["env_id"], path=where, field_name="env_id")
    reference = config.get("class")
    name = reference.get("name") if isinstance(reference, Mapping) else None
    zoo_classes = zoo_agent_classes()
    if not isinstance(name, str) or name not in zoo_classes or _is_sb3_class(zoo_classes[name]):
        raise UntrustedFileError(where, f"names class {reference!r}, which is not a zoo agent", field="class")
    return zoo_classes[name].load(directory, device=device)
