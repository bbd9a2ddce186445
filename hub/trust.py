"""The trust boundary: everything that reads bytes the zoo did not write itself passes here.

A Hub repo, a dataset repo, a downloaded folder and every field in them are untrusted (see
``SECURITY.md``). This module is the only place that turns such bytes into Python values, and
it does nothing else, so that it can be audited in one sitting. With
``trust_remote_code=False`` nothing here

- unpickles (JSON, safetensors and ``.npy`` headers are parsed; object dtypes are refused),
- imports a module named by the data (classes come from a fixed allow-list; env ids must be
  registered ids without a ``module:`` part),
- follows a path named by the data outside the folder that holds it (no ``..``, no absolute
  paths, no symbolic links leaving the folder),
- resolves another repo (``teacher`` and every other field that names code or files is refused),
- or allocates tensors whose shapes were not checked against the safetensors header first.

Every refusal is an :class:`UntrustedFileError` (a ``ValueError``) naming the file, the field and
what is wrong.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any


class UntrustedFileError(ValueError):
    """A file from an untrusted source is corrupt, malformed, or asks for something refused.

    :param path: the file (or folder) read.
    :param problem: what is wrong, in words.
    :param field: the field inside the file, dotted (``"hyperparameters.teacher"``), if any.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str, *, field: str | None = None) -> None:
        self.path = Path(path)
        self.problem = problem
        self.field = field
        where = f"{self.path}: field {field!r}" if field else str(self.path)
        super().__init__(f"{where}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled with its own arguments, so the error raised in a worker process (a process pool,
        # Ray) reaches the caller as itself instead of breaking the pool.
        return (_rebuild_untrusted_file_error, (type(self), str(self.path), self.problem, self.field))


def _rebuild_untrusted_file_error(
    cls: type[UntrustedFileError], path: str, problem: str, field: str | None
) -> UntrustedFileError:
    return cls(path, problem, field=field)


# --------------------------------------------------------------------------------------------
# Limits: what a file may ask for before anything is allocated
# --------------------------------------------------------------------------------------------

#: Largest JSON file read (config.json, manifest.json, ...).
MAX_JSON_BYTES = 64 * 1024 * 1024
#: Largest number of elements of one observation or action space (a Watermaze frame is 20k).
MAX_SPACE_ELEMENTS = 1 << 24
#: Deepest nesting of Dict / Tuple spaces, and most sub-spaces in all.
MAX_SPACE_DEPTH, MAX_SUBSPACES = 8, 256
#: Widest layer a ``net_arch`` may name.
MAX_LAYER_WIDTH = 1 << 16
#: Largest count-like hyperparameter (buffer sizes, steps, batch sizes).
MAX_COUNT = 1 << 40
#: Largest replay buffer (transitions) a file may ask for; SB3 allocates it when the agent is built.
MAX_BUFFER_SIZE = 10**8
#: Most parallel envs a saved agent may declare.
MAX_ENVS = 1 << 12
#: Deepest chain of teachers resolved through repo ids (a teacher's teacher is never read from
#: a file, so the chain ends at once; the limit guards against a loop through user code).
MAX_TEACHER_DEPTH = 2

_JSON_SCALARS = (str, int, float, bool, type(None))


# --------------------------------------------------------------------------------------------
# JSON files and their fields
# --------------------------------------------------------------------------------------------


def read_json(path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None) -> Any:
    """Parse a strict JSON file (no ``NaN`` / ``Infinity`` literals), naming the file on any error.

    :param path: the file.
    :param root: the folder the file must stay inside (a symbolic link leaving it is refused);
        default: the file's own folder.
    :return: the parsed value.
    """
    path = Path(path)
    check_inside(path, Path(root) if root is not None else path.parent)
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise UntrustedFileError(path, f"is {size} bytes; JSON files are read up to {MAX_JSON_BYTES}")
        raw = path.read_bytes()
    except FileNotFoundError as error:
        raise UntrustedFileError(path, "is missing") from error
    except OSError as error:
        raise UntrustedFileError(path, f"cannot be read: {error}") from error
    if not raw.strip():
        raise UntrustedFileError(path, "is empty (truncated?)")

    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    try:
        return json.loads(raw.decode("utf-8"), parse_constant=refuse)
    except UnicodeDecodeError as error:
        raise UntrustedFileError(path, f"is not UTF-8 text (a binary file?): {error}") from error
    except RecursionError as error:
        raise UntrustedFileError(path, "is nested too deeply") from error
    except ValueError as error:
        raise UntrustedFileError(path, f"is not valid JSON (truncated or corrupt?): {error}") from error


def read_json_object(path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None) -> dict:
    """Like :func:`read_json`, for files whose top level must be a JSON object."""
    data = read_json(path, root=root)
    if not isinstance(data, dict):
        raise UntrustedFileError(path, f"holds a JSON {type(data).__name__}; a JSON object was expected")
    return data


_MISSING = object()


def field(
    mapping: Any,
    key: str,
    kinds: type | tuple[type, ...],
    *,
    path: str | os.PathLike[str],
    prefix: str = "",
    default: Any = _MISSING,
) -> Any:
    """Return ``mapping[key]`` checked against ``kinds`` (``bool`` is never taken for a number).

    :param mapping: the JSON object.
    :param key: the field.
    :param kinds: the allowed Python types of the value.
    :param path: the file, for the error.
    :param prefix: the dotted name of ``mapping`` inside the file (``"hyperparameters"``).
    :param default: returned when the field is absent; without it a missing field is an error.
    """
    name = f"{prefix}.{key}" if prefix else key
    if not isinstance(mapping, dict):
        raise UntrustedFileError(
            path, f"is a {type(mapping).__name__}; a JSON object was expected", field=prefix or None
        )
    if key not in mapping:
        if default is _MISSING:
            raise UntrustedFileError(path, "is missing", field=name)
        return default
    value = mapping[key]
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        allowed = " or ".join("null" if kind is type(None) else kind.__name__ for kind in kinds)
        raise UntrustedFileError(
            path, f"is {value!r} ({type(value).__name__}); expected {allowed}", field=name
        )
    return value


def integer(
    mapping: Any,
    key: str,
    *,
    path: str | os.PathLike[str],
    prefix: str = "",
    low: int = 0,
    high: int = MAX_COUNT,
    default: Any = _MISSING,
) -> int:
    """Return an integer field in ``[low, high]`` (see :func:`field`)."""
    value = field(mapping, key, int, path=path, prefix=prefix, default=default)
    if value is default and default is not _MISSING:
        return value
    if not low <= value <= high:
        name = f"{prefix}.{key}" if prefix else key
        raise UntrustedFileError(path, f"is {value}; allowed: {low} to {high}", field=name)
    return int(value)


def check_plain_json(value: Any, *, path: str | os.PathLike[str], name: str, depth: int = 0) -> Any:
    """Return ``value`` if it is plain JSON data (no ``__class__`` or other tagged objects).

    :param value: the value.
    :param path: the file, for the error.
    :param name: the dotted field name.
    """
    if depth > 32:
        raise UntrustedFileError(path, "is nested too deeply", field=name)
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("__") and key != "__tuple__":
                raise UntrustedFileError(
                    path, f"holds the tagged object {key!r}; plain data expected", field=name
                )
            check_plain_json(item, path=path, name=f"{name}.{key}", depth=depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_plain_json(item, path=path, name=f"{name}.{index}", depth=depth + 1)
    elif not isinstance(value, _JSON_SCALARS):  # pragma: no cover - json.loads makes nothing else
        raise UntrustedFileError(path, f"holds a {type(value).__name__}", field=name)
    return value


# --------------------------------------------------------------------------------------------
# Paths named by files, and files inside downloaded folders
# --------------------------------------------------------------------------------------------


def _link_roots(root: Path) -> list[Path]:
    roots = [root.resolve()]
    # A huggingface_hub snapshot (<cache>/<repo>/snapshots/<commit>/...) holds links into the
    # repo's own blob store (<cache>/<repo>/blobs/), laid out by the client, not by the repo.
    for folder in (root, *root.parents):
        if folder.parent.name == "snapshots" and (folder.parent.parent / "blobs").is_dir():
            roots.append((folder.parent.parent / "blobs").resolve())
            break
    return roots


def check_inside(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> Path:
    """Refuse ``path`` if it, or a symbolic link on the way to it, leads outside ``root``.

    :param path: a path below ``root``.
    :param root: the downloaded folder (a Hub snapshot may link into its repo's blob store).
    :return: ``path``.
    """
    path, root = Path(path), Path(root)
    resolved = path.resolve()
    if not any(resolved.is_relative_to(allowed) for allowed in _link_roots(root)):
        raise UntrustedFileError(path, f"leads outside {root} (to {resolved}); refused")
    return path


def contained_file(
    root: str | os.PathLike[str], name: Any, *, path: str | os.PathLike[str], field_name: str
) -> Path:
    """Return ``root / name`` for a file name read from a file, refusing traversal and links out.

    :param root: the folder the name is relative to.
    :param name: the name as read (must be a relative POSIX path without ``..``).
    :param path: the file that named it, for the error.
    :param field_name: the dotted field holding the name.
    """
    if not isinstance(name, str) or not name:
        raise UntrustedFileError(path, f"is {name!r}; a relative file name was expected", field=field_name)
    parts = name.split("/")
    if (
        name.startswith("/")
        or "\\" in name
        or any(part in ("", ".", "..") for part in parts)
        or ":" in parts[0]
    ):
        raise UntrustedFileError(
            path, f"is {name!r}: only plain relative names inside the folder are allowed", field=field_name
        )
    candidate = Path(root).joinpath(*parts)
    try:
        return check_inside(candidate, root)
    except UntrustedFileError as error:
        raise UntrustedFileError(path, f"names {name!r}, which {error.problem}", field=field_name) from error


def check_env_id(
    value: Any, *, path: str | os.PathLike[str], field_name: str, registered: bool = True
) -> str:
    """Return ``value`` if it is a Gymnasium env id without a ``module:`` part (and registered).

    ``gym.make("module:Env-v0")`` imports ``module``; an id read from a file must never do that.

    :param value: the id read.
    :param path: the file, for the error.
    :param field_name: the field holding it.
    :param registered: also require the id to be registered (import the package that registers
        it before loading, as ``gym.make`` needs anyway).
    """
    import gymnasium as gym

    import zoo.envs  # noqa: F401 - registers the zoo's ids

    if not isinstance(value, str) or not value:
        raise UntrustedFileError(path, f"is {value!r}; a registered env id was expected", field=field_name)
    if ":" in value:
        raise UntrustedFileError(
            path,
            f"is {value!r}: an env id read from a file may not name a module to import (the part before ':')",
            field=field_name,
        )
    if registered and value not in gym.registry:
        raise UntrustedFileError(path, f"is {value!r}, which is not a registered env id", field=field_name)
    return value


# --------------------------------------------------------------------------------------------
# Classes named by files: a fixed allow-list, nothing else is imported
# --------------------------------------------------------------------------------------------

#: Packages whose classes a file may name (exact package or a submodule of it).
ALLOWED_PACKAGES = ("stable_baselines3", "sb3_contrib", "zoo", "torch.nn", "torch.optim")

#: Algorithm classes a file may name, as ``name -> module``; zoo agents come from ``zoo.agents.__all__``.
ALGORITHM_MODULES: dict[str, str] = {
    "PPO": "stable_baselines3",
    "A2C": "stable_baselines3",
    "DQN": "stable_baselines3",
    "SAC": "stable_baselines3",
    "TD3": "stable_baselines3",
    "DDPG": "stable_baselines3",
    "RecurrentPPO": "sb3_contrib",
    "MaskablePPO": "sb3_contrib",
    "QRDQN": "sb3_contrib",
    "TQC": "sb3_contrib",
    "TRPO": "sb3_contrib",
    "ARS": "sb3_contrib",
    "CrossQ": "sb3_contrib",
}


def _in_allowed_package(module: str) -> bool:
    return any(module == package or module.startswith(package + ".") for package in ALLOWED_PACKAGES)


def allowed_bases() -> tuple[type, ...]:
    """The base classes a class named by a file must derive from."""
    import torch as th
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.buffers import BaseBuffer
    from stable_baselines3.common.policies import BasePolicy
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    return (th.nn.Module, th.optim.Optimizer, BasePolicy, BaseFeaturesExtractor, BaseBuffer, BaseAlgorithm)


def resolve_class(
    reference: Any,
    *,
    path: str | os.PathLike[str] | None = None,
    field_name: str | None = None,
    base: type | tuple[type, ...] | None = None,
) -> type:
    """Import a class named ``{"module": ..., "name": ...}`` in a file, through the allow-list.

    :param reference: the reference as read.
    :param path: the file, for the error (``None``: a plain ``ValueError``-compatible error on ``"<config>"``).
    :param field_name: the field holding it.
    :param base: the class must derive from this (default: any of :func:`allowed_bases`).
    :return: the class.
    """
    import importlib

    where = path if path is not None else "<config>"
    module_name = reference.get("module") if isinstance(reference, dict) else None
    name = reference.get("name") if isinstance(reference, dict) else None
    if not isinstance(module_name, str) or not isinstance(name, str) or not name.isidentifier():
        raise UntrustedFileError(
            where, f"reference={reference!r} is not a valid class reference", field=field_name
        )
    if not _in_allowed_package(module_name) or not all(
        part.isidentifier() for part in module_name.split(".")
    ):
        raise UntrustedFileError(
            where,
            f"reference={reference!r}: module {module_name!r} is not allowed; classes may come from "
            f"{', '.join(ALLOWED_PACKAGES)} only",
            field=field_name,
        )
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as error:
        raise UntrustedFileError(
            where, f"reference={reference!r} names a class that cannot be imported", field=field_name
        ) from error
    required = base if base is not None else allowed_bases()
    if not isinstance(cls, type) or not issubclass(cls, required):
        raise UntrustedFileError(
            where, f"reference={reference!r} is not an allowed class here", field=field_name
        )
    return cls


def zoo_agent_classes() -> dict[str, type]:
    """Every class exported by ``zoo.agents.__all__`` (families that fail to import are skipped)."""
    import importlib

    found: dict[str, type] = {}
    try:
        agents = importlib.import_module("zoo.agents")
    except ImportError:
        return found
    for name in getattr(agents, "__all__", []):
        try:
            value = getattr(agents, name)
        except Exception:  # a family that fails to import
            continue
        if isinstance(value, type):
            found[name] = value
    return found


def lookup_algorithm(
    name: Any, *, path: str | os.PathLike[str] | None = None, field_name: str | None = "algorithm"
) -> type:
    """Return the algorithm class called ``name``: SB3, sb3-contrib or ``zoo.agents`` only.

    :param name: the class name as read.
    :param path: the file, for the error.
    :param field_name: the field holding it.
    """
    import importlib

    where = path if path is not None else "<config>"
    if isinstance(name, str) and name in ALGORITHM_MODULES:
        try:
            return getattr(importlib.import_module(ALGORITHM_MODULES[name]), name)
        except (ImportError, AttributeError) as error:
            raise UntrustedFileError(
                where, f"algorithm {name!r} needs a package that is not installed", field=field_name
            ) from error
    zoo_classes = zoo_agent_classes()
    if isinstance(name, str) and name in zoo_classes:
        return zoo_classes[name]
    allowed = sorted(set(ALGORITHM_MODULES) | set(zoo_classes))
    raise UntrustedFileError(
        where, f"algorithm={name!r} is not an allowed agent class; allowed: {allowed}", field=field_name
    )


# --------------------------------------------------------------------------------------------
# Values, arrays and spaces
# --------------------------------------------------------------------------------------------


def decode_float(
    value: Any, *, path: str | os.PathLike[str] = "<config>", field_name: str | None = None
) -> float:
    """A number, or one of the strings ``"nan"``, ``"inf"``, ``"-inf"`` that stand for non-finite floats."""
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UntrustedFileError(path, f"is {value!r}; a number was expected", field=field_name)
    return float(value)


def decode_array(
    encoded: Any, *, path: str | os.PathLike[str] = "<config>", field_name: str | None = None
) -> Any:
    """Decode ``{"dtype", "shape", "data"}`` (numeric dtypes only; the data must fill the shape).

    :param encoded: the JSON mapping.
    :param path: the file, for the error.
    :param field_name: the field holding it.
    """
    import numpy as np

    dtype_name = field(encoded, "dtype", str, path=path, prefix=field_name or "")
    shape = field(encoded, "shape", list, path=path, prefix=field_name or "")
    data = field(encoded, "data", list, path=path, prefix=field_name or "")
    try:
        dtype = np.dtype(dtype_name)
    except TypeError as error:
        raise UntrustedFileError(path, f"dtype {dtype_name!r} is not a dtype", field=field_name) from error
    if dtype.kind not in "fiub":
        raise UntrustedFileError(path, f"dtype {dtype} is not allowed; numeric dtypes only", field=field_name)
    if not all(
        isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_SPACE_ELEMENTS for d in shape
    ):
        raise UntrustedFileError(path, f"shape {shape!r} is not a list of sizes", field=field_name)
    size = math.prod(shape)
    if size != len(data) or size > MAX_SPACE_ELEMENTS:
        raise UntrustedFileError(path, f"holds {len(data)} values for shape {shape}", field=field_name)
    if dtype.kind == "f":
        values: list[Any] = [decode_float(x, path=path, field_name=field_name) for x in data]
    else:
        if not all(isinstance(x, int) for x in data):
            raise UntrustedFileError(path, "holds non-integers in an integer array", field=field_name)
        values = data
    try:
        return np.asarray(values, dtype=dtype).reshape(shape)
    except OverflowError as error:
        raise UntrustedFileError(path, f"holds values outside dtype {dtype}", field=field_name) from error


def space_from_json(
    encoded: Any, *, path: str | os.PathLike[str] = "<config>", field_name: str = "space", depth: int = 0
) -> Any:
    """Decode a Gymnasium space written by ``zoo.hub.serialization.space_to_json``, within the limits.

    :param encoded: the JSON mapping.
    :param path: the file, for the error.
    :param field_name: the field holding it.
    """
    import numpy as np
    from gymnasium import spaces

    if depth > MAX_SPACE_DEPTH:
        raise UntrustedFileError(path, "spaces are nested too deeply", field=field_name)
    kind = field(encoded, "type", str, path=path, prefix=field_name)
    try:
        if kind == "Box":
            shape = field(encoded, "shape", list, path=path, prefix=field_name)
            low = decode_array(encoded.get("low"), path=path, field_name=f"{field_name}.low")
            high = decode_array(encoded.get("high"), path=path, field_name=f"{field_name}.high")
            if list(low.shape) != shape or list(high.shape) != shape:
                raise UntrustedFileError(path, f"low/high do not have shape {shape}", field=field_name)
            dtype = np.dtype(field(encoded, "dtype", str, path=path, prefix=field_name))
            if dtype.kind not in "fiub":
                raise UntrustedFileError(path, f"dtype {dtype} is not numeric", field=field_name)
            return spaces.Box(low=low, high=high, shape=tuple(shape), dtype=dtype)
        if kind == "Discrete":
            n = integer(encoded, "n", path=path, prefix=field_name, low=1, high=1 << 31)
            start = integer(
                encoded, "start", path=path, prefix=field_name, low=-(1 << 31), high=1 << 31, default=0
            )
            return spaces.Discrete(n, start=start)
        if kind == "MultiDiscrete":
            nvec = decode_array(encoded.get("nvec"), path=path, field_name=f"{field_name}.nvec")
            start = (
                decode_array(encoded["start"], path=path, field_name=f"{field_name}.start")
                if "start" in encoded
                else None
            )
            dtype = np.dtype(field(encoded, "dtype", str, path=path, prefix=field_name, default="<i8"))
            return spaces.MultiDiscrete(nvec, dtype=dtype, start=start)
        if kind == "MultiBinary":
            n = field(encoded, "n", (int, list), path=path, prefix=field_name)
            sizes = n if isinstance(n, list) else [n]
            if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in sizes) or (
                math.prod(sizes) > MAX_SPACE_ELEMENTS
            ):
                raise UntrustedFileError(path, f"n={n!r} is not a valid size", field=field_name)
            return spaces.MultiBinary(n)
        if kind in ("Dict", "Tuple"):
            items = field(encoded, "spaces", list, path=path, prefix=field_name)
            if len(items) > MAX_SUBSPACES:
                raise UntrustedFileError(path, f"has {len(items)} sub-spaces", field=field_name)
            if kind == "Tuple":
                return spaces.Tuple(
                    [
                        space_from_json(sub, path=path, field_name=f"{field_name}.{index}", depth=depth + 1)
                        for index, sub in enumerate(items)
                    ]
                )
            decoded = {}
            for index, item in enumerate(items):
                if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
                    raise UntrustedFileError(
                        path, "is not a [key, space] pair", field=f"{field_name}.{index}"
                    )
                decoded[item[0]] = space_from_json(
                    item[1], path=path, field_name=f"{field_name}.{item[0]}", depth=depth + 1
                )
            return spaces.Dict(decoded)
    except UntrustedFileError:
        raise
    except (ValueError, TypeError, AssertionError, OverflowError) as error:
        raise UntrustedFileError(path, f"is not a valid {kind} space: {error}", field=field_name) from error
    raise UntrustedFileError(path, f"space type {kind!r} is not supported", field=field_name)


def decode_value(value: Any, *, path: str | os.PathLike[str] = "<config>", field_name: str = "value") -> Any:
    """Decode a tagged JSON value (tuples, non-finite floats, linear schedules, allow-listed classes).

    :param value: the JSON value.
    :param path: the file, for the error.
    :param field_name: the dotted field holding it.
    """
    if isinstance(value, list):
        return [decode_value(item, path=path, field_name=f"{field_name}.{i}") for i, item in enumerate(value)]
    if not isinstance(value, dict):
        return value
    if "__tuple__" in value:
        items = field(value, "__tuple__", list, path=path, prefix=field_name)
        return tuple(
            decode_value(item, path=path, field_name=f"{field_name}.{i}") for i, item in enumerate(items)
        )
    if "__class__" in value:
        return resolve_class(value["__class__"], path=path, field_name=field_name)
    if "__float__" in value:
        return decode_float(value["__float__"], path=path, field_name=field_name)
    if "__schedule__" in value:
        from stable_baselines3.common.utils import LinearSchedule

        if value.get("__schedule__") != "linear":
            raise UntrustedFileError(
                path, f"schedule {value.get('__schedule__')!r} is not supported", field=field_name
            )
        numbers = [
            decode_float(value.get(key), path=path, field_name=f"{field_name}.{key}")
            for key in ("start", "end", "end_fraction")
        ]
        return LinearSchedule(*numbers)
    tagged = [key for key in value if key.startswith("__")]
    if tagged:
        raise UntrustedFileError(path, f"unknown tagged value {tagged[0]!r}", field=field_name)
    return {
        key: decode_value(item, path=path, field_name=f"{field_name}.{key}") for key, item in value.items()
    }


# --------------------------------------------------------------------------------------------
# Hyper-parameters: data, never instructions
# --------------------------------------------------------------------------------------------

#: Fields that name code, files, other repos or side effects: never taken from a file. ``null``
#: (what an agent without them saves) is ignored; any other value is refused.
FORBIDDEN_HYPERPARAMETERS = frozenset(
    {
        "teacher",
        "teachers",
        "tensorboard_log",
        "checkpoint_dir",
        "dataset",
        "policy",
        "env",
        "device",
        "seed",
        "verbose",
        "goal_reward_fn",
        "action_noise",
        "monitor_wrapper",
        "supported_action_spaces",
        "support_multi_env",
        "sde_support",
        "_init_setup_model",
        "_metadata",
        "_custom_logger",
        "_logger",
    }
)


#: Attributes an agent saves that its ``_setup_model`` rebuilds, so a load does not restore them.
REBUILT_ON_LOAD = frozenset(
    {
        "batch_norm_stats",
        "batch_norm_stats_target",
        "actor_batch_norm_stats",
        "actor_batch_norm_stats_target",
        "critic_batch_norm_stats",
        "critic_batch_norm_stats_target",
        "n_quantiles",  # QR-DQN / TQC read it from policy_kwargs
    }
)


def _number(value: Any, path: Any, name: str) -> float | None:
    # null is data too (QR-DQN saves max_grad_norm=None); the class decides what it means.
    if value is None:
        return None
    if isinstance(value, dict) and set(value) == {"__float__"}:
        number = decode_float(value["__float__"], path=path, field_name=name)
        if math.isnan(number):  # +-inf are meaningful (no clipping); NaN never is
            raise UntrustedFileError(path, "is NaN; a number was expected", field=name)
        return number
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UntrustedFileError(path, f"is {value!r}; a number was expected", field=name)
    return value


def _optional_number(value: Any, path: Any, name: str) -> float | None:
    return None if value is None else _number(value, path, name)


def _count(value: Any, path: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value <= MAX_COUNT:
        raise UntrustedFileError(
            path, f"is {value!r}; an integer from -1 to {MAX_COUNT} was expected", field=name
        )
    return value


def _buffer_size(value: Any, path: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BUFFER_SIZE:
        raise UntrustedFileError(path, f"is {value!r}; allowed: 1 to {MAX_BUFFER_SIZE}", field=name)
    return value


def _n_envs(value: Any, path: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ENVS:
        raise UntrustedFileError(path, f"is {value!r}; allowed: 1 to {MAX_ENVS}", field=name)
    return value


def _flag(value: Any, path: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise UntrustedFileError(path, f"is {value!r}; true or false was expected", field=name)
    return value


def _schedule(value: Any, path: Any, name: str) -> Any:
    if isinstance(value, dict) and "__schedule__" in value:
        return decode_value(value, path=path, field_name=name)
    return _number(value, path, name)


def _optional_schedule(value: Any, path: Any, name: str) -> Any:
    return None if value is None else _schedule(value, path, name)


def _number_or_auto(value: Any, path: Any, name: str) -> Any:
    # SAC's ent_coef / target_entropy: a number, "auto" or "auto_<initial value>".
    if isinstance(value, str):
        if value == "auto" or (value.startswith("auto_") and _is_float(value[5:])):
            return value
        raise UntrustedFileError(
            path, f"is {value!r}; a number, 'auto' or 'auto_<number>' was expected", field=name
        )
    return _number(value, path, name)


def _is_float(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _train_freq(value: Any, path: Any, name: str) -> Any:
    if isinstance(value, dict) and "__tuple__" in value:
        items = value["__tuple__"]
        if (
            isinstance(items, list)
            and len(items) == 2
            and isinstance(items[0], int)
            and not isinstance(items[0], bool)
            and 1 <= items[0] <= MAX_COUNT
            and items[1] in ("step", "episode")
        ):
            return (items[0], items[1])
        raise UntrustedFileError(path, f"is {value!r}; [n, 'step' | 'episode'] was expected", field=name)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
        raise UntrustedFileError(path, f"is {value!r}; a positive integer was expected", field=name)
    return value


def _kickstart_coef(value: Any, path: Any, name: str) -> Any:
    # A number, a schedule, or the zoo's schedule strings ("exp_1_0.99", "lin_1_0"): parsed by
    # zoo.agents.common.schedules, which only reads numbers out of them.
    if isinstance(value, str):
        if len(value) > 64 or not all(c.isalnum() or c in "._-+" for c in value):
            raise UntrustedFileError(path, f"is {value!r}; not a schedule string", field=name)
        return value
    return _schedule(value, path, name)


def _choice(*allowed: str) -> Callable[[Any, Any, str], str]:
    def check(value: Any, path: Any, name: str) -> str:
        if value not in allowed:
            raise UntrustedFileError(path, f"is {value!r}; allowed: {', '.join(allowed)}", field=name)
        return value

    return check


def _buffer_class(kind: str) -> Callable[[Any, Any, str], Any]:
    def check(value: Any, path: Any, name: str) -> Any:
        from stable_baselines3.common import buffers

        if value is None:
            return None
        if not (isinstance(value, dict) and set(value) == {"__class__"}):
            raise UntrustedFileError(path, f"is {value!r}; a buffer class reference was expected", field=name)
        return resolve_class(value["__class__"], path=path, field_name=name, base=getattr(buffers, kind))

    return check


#: Keyword arguments of SB3 buffers a file may set (HER's, and the replay buffer's flags).
_BUFFER_KWARGS: dict[str, Callable[[Any, Any, str], Any]] = {
    "n_sampled_goal": _count,
    "goal_selection_strategy": _choice("future", "final", "episode"),
    "copy_info_dict": _flag,
    "handle_timeout_termination": _flag,
    "optimize_memory_usage": _flag,
}


def _buffer_kwargs(value: Any, path: Any, name: str) -> Any:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UntrustedFileError(path, f"is {value!r}; a mapping was expected", field=name)
    checked = {}
    for key, item in value.items():
        if key not in _BUFFER_KWARGS:
            raise UntrustedFileError(
                path,
                f"buffer argument {key!r} is not allowed; allowed: {', '.join(_BUFFER_KWARGS)}",
                field=name,
            )
        checked[key] = _BUFFER_KWARGS[key](item, path, f"{name}.{key}")
    return checked


#: Every hyper-parameter (and run-time counter) a saved agent may restore, with its check. A
#: class takes the ones its constructor accepts or its instances carry (:func:`agent_hyperparameters`).
HYPERPARAMETER_KINDS: dict[str, Callable[[Any, Any, str], Any]] = {
    # shared by SB3 algorithms
    "learning_rate": _schedule,
    "lr_schedule": _schedule,
    "gamma": _number,
    "use_sde": _flag,
    "sde_sample_freq": _count,
    "stats_window_size": _count,
    "_stats_window_size": _count,
    "n_envs": _n_envs,
    "num_timesteps": _count,
    "_total_timesteps": _count,
    "_num_timesteps_at_start": _count,
    "_episode_num": _count,
    "_n_updates": _count,
    "_n_calls": _count,
    "_current_progress_remaining": _number,
    # on-policy
    "n_steps": _buffer_size,
    "batch_size": _count,
    "n_epochs": _count,
    "gae_lambda": _number,
    "ent_coef": _number_or_auto,
    "vf_coef": _number,
    "max_grad_norm": _number,
    "clip_range": _schedule,
    "clip_range_vf": _optional_schedule,
    "normalize_advantage": _flag,
    "target_kl": _optional_number,
    "rms_prop_eps": _number,
    "use_rms_prop": _flag,
    "rollout_buffer_class": _buffer_class("RolloutBuffer"),
    "rollout_buffer_kwargs": _buffer_kwargs,
    # TRPO, ARS
    "cg_max_steps": _count,
    "cg_damping": _number,
    "line_search_shrinking_factor": _number,
    "line_search_max_iter": _count,
    "n_critic_updates": _count,
    "sub_sampling_factor": _count,
    "n_delta": _count,
    "n_top": _count,
    "delta_std": _schedule,
    "zero_policy": _flag,
    "alive_bonus_offset": _number,
    "n_eval_episodes": _count,
    # off-policy
    "buffer_size": _buffer_size,
    "learning_starts": _count,
    "tau": _number,
    "train_freq": _train_freq,
    "gradient_steps": _count,
    "optimize_memory_usage": _flag,
    "replay_buffer_class": _buffer_class("ReplayBuffer"),
    "replay_buffer_kwargs": _buffer_kwargs,
    "target_update_interval": _count,
    "exploration_fraction": _number,
    "exploration_initial_eps": _number,
    "exploration_final_eps": _number,
    "exploration_rate": _number,
    "exploration_schedule": _schedule,
    "use_sde_at_warmup": _flag,
    "target_entropy": _number_or_auto,
    "policy_delay": _count,
    "target_policy_noise": _number,
    "target_noise_clip": _number,
    "top_quantiles_to_drop_per_net": _count,
    # zoo agents
    "kickstart_coef": _kickstart_coef,
    "kickstart_loss": _choice("cross_entropy", "kl"),
    "gradient_reg": _number,
    "gradient_temperature": _number,
    "soft_value": _choice("softmax_mean", "logsumexp"),
}


def agent_hyperparameters(saved: Any, *, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check the ``hyperparameters`` of a saved agent against the allow-list.

    The loader passes a checked value to the class's constructor when it takes that argument, or
    sets it on the instance when a freshly built instance carries that attribute; nothing else.

    :param saved: ``config["hyperparameters"]`` as read.
    :param path: the file, for the error.
    :return: the decoded values of the allowed fields. Fields outside the allow-list that are not
        forbidden (run-time state of other versions) are dropped; forbidden ones are refused.
    """
    if not isinstance(saved, dict):
        raise UntrustedFileError(
            path, f"is {type(saved).__name__}; a JSON object was expected", field="hyperparameters"
        )
    decoded: dict[str, Any] = {}
    for key, value in saved.items():
        name = f"hyperparameters.{key}"
        if key in FORBIDDEN_HYPERPARAMETERS:
            if value is None:
                continue
            raise UntrustedFileError(
                path,
                f"names code, a file, another repo or a side effect, and is never taken from a file "
                f"(got {value!r}); pass it yourself, e.g. set_teacher(...) or the constructor",
                field=name,
            )
        check = HYPERPARAMETER_KINDS.get(key)
        if check is None:
            continue
        decoded[key] = check(value, path, name)
    rollout = decoded.get("n_steps", 1) * decoded.get("n_envs", 1)
    if rollout > MAX_BUFFER_SIZE:  # an on-policy rollout buffer holds n_steps x n_envs steps
        raise UntrustedFileError(
            path,
            f"n_steps x n_envs = {rollout}; at most {MAX_BUFFER_SIZE} steps are allocated",
            field="hyperparameters.n_steps",
        )
    return decoded


def _layer_widths(value: Any, path: Any, name: str) -> Any:
    if isinstance(value, dict):
        return {key: _layer_widths(item, path, f"{name}.{key}") for key, item in value.items()}
    if not isinstance(value, list):
        raise UntrustedFileError(path, f"is {value!r}; a list of layer widths was expected", field=name)
    for index, width in enumerate(value):
        if isinstance(width, dict):
            _layer_widths(width, path, f"{name}.{index}")
        elif isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= MAX_LAYER_WIDTH:
            raise UntrustedFileError(
                path, f"width {width!r} is not allowed; layers are 1 to {MAX_LAYER_WIDTH} wide", field=name
            )
    return value


def policy_kwargs(saved: Any, *, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Decode ``policy_kwargs``: classes only through the allow-list (each of its proper kind),
    layer widths bounded, everything else plain JSON data.

    :param saved: ``config["policy_kwargs"]`` as read.
    :param path: the file, for the error.
    """
    import torch as th
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    if saved is None:
        return {}
    if not isinstance(saved, dict):
        raise UntrustedFileError(path, f"is {saved!r}; a mapping was expected", field="policy_kwargs")
    class_kinds: dict[str, type] = {
        "activation_fn": th.nn.Module,
        "optimizer_class": th.optim.Optimizer,
        "features_extractor_class": BaseFeaturesExtractor,
    }
    decoded: dict[str, Any] = {}
    for key, value in saved.items():
        name = f"policy_kwargs.{key}"
        if key in class_kinds:
            if not (isinstance(value, dict) and set(value) == {"__class__"}):
                raise UntrustedFileError(path, f"is {value!r}; a class reference was expected", field=name)
            decoded[key] = resolve_class(
                value["__class__"], path=path, field_name=name, base=class_kinds[key]
            )
        elif key in (
            "net_arch",
            "lstm_hidden_size",
            "n_lstm_layers",
            "n_critics",
            "n_quantiles",
            "features_dim",
        ):
            decoded[key] = (
                _layer_widths(value, path, name) if key == "net_arch" else _width(value, path, name)
            )
        else:
            decoded[key] = decode_value(
                check_plain_json(value, path=path, name=name), path=path, field_name=name
            )
    return decoded


def _width(value: Any, path: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LAYER_WIDTH:
        raise UntrustedFileError(path, f"is {value!r}; allowed: 1 to {MAX_LAYER_WIDTH}", field=name)
    return value


# --------------------------------------------------------------------------------------------
# safetensors: shapes from the header before anything is allocated
# --------------------------------------------------------------------------------------------

_SAFETENSORS_DTYPES = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"}


def safetensors_header(
    path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None
) -> dict[str, tuple[int, ...]]:
    """Read a safetensors file's header only: ``{tensor name: shape}``, every entry checked.

    The header must be JSON, name only numeric dtypes, and its offsets must tile the file's data
    exactly, so the shapes bound what loading will allocate by the file's own size.

    :param path: the file.
    :param root: the folder it must stay inside (default: its own folder).
    """
    import struct

    path = Path(path)
    check_inside(path, Path(root) if root is not None else path.parent)
    try:
        with open(path, "rb") as file:
            prefix = file.read(8)
            if len(prefix) < 8:
                raise UntrustedFileError(path, "is not a safetensors file (too short; truncated?)")
            (header_size,) = struct.unpack("<Q", prefix)
            total = os.fstat(file.fileno()).st_size
            if header_size > min(total - 8, 100 * 1024 * 1024):
                raise UntrustedFileError(
                    path, "is not a safetensors file (bad header length; a pickle or zip behind the name?)"
                )
            header_bytes = file.read(header_size)
    except FileNotFoundError as error:
        raise UntrustedFileError(path, "is missing") from error
    except OSError as error:
        raise UntrustedFileError(path, f"cannot be read: {error}") from error
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise UntrustedFileError(path, f"has a corrupt safetensors header: {error}") from error
    if not isinstance(header, dict):
        raise UntrustedFileError(path, "has a corrupt safetensors header (not a JSON object)")
    data_size = total - 8 - header_size
    shapes: dict[str, tuple[int, ...]] = {}
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = entry.get("dtype") if isinstance(entry, dict) else None
        shape = entry.get("shape") if isinstance(entry, dict) else None
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if dtype not in _SAFETENSORS_DTYPES:
            raise UntrustedFileError(
                path, f"tensor {name!r} has dtype {dtype!r}; numeric dtypes only", field=name
            )
        if (
            isinstance(offsets, list)
            and len(offsets) == 2
            and isinstance(offsets[1], int)
            and offsets[1] > data_size
        ):
            raise UntrustedFileError(
                path, f"tensor {name!r} ends past the end of the file's data (truncated?)", field=name
            )
        if not (
            isinstance(shape, list)
            and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
            and isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            and 0 <= offsets[0] <= offsets[1] <= data_size
        ):
            raise UntrustedFileError(
                path, f"tensor {name!r} has a corrupt header entry {entry!r}", field=name
            )
        itemsize = (
            1
            if dtype in ("BOOL", "U8", "I8")
            else (2 if dtype in ("F16", "BF16", "I16") else (4 if dtype in ("F32", "I32") else 8))
        )
        if math.prod(shape) * itemsize != offsets[1] - offsets[0]:
            raise UntrustedFileError(
                path,
                f"tensor {name!r}: shape {shape} does not fit its {offsets[1] - offsets[0]} bytes",
                field=name,
            )
        shapes[name] = tuple(shape)
        spans.append(tuple(offsets))
    position = 0
    for start, end in sorted(spans):
        if start != position:
            raise UntrustedFileError(path, "has overlapping or gapped tensor data (corrupt)")
        position = end
    if position != data_size:
        raise UntrustedFileError(
            path, f"holds {data_size} data bytes but its header describes {position} (truncated?)"
        )
    return shapes


def check_safetensors_shapes(
    path: str | os.PathLike[str],
    expected: Mapping[str, tuple[int, ...]],
    *,
    root: str | os.PathLike[str] | None = None,
) -> None:
    """Refuse a safetensors file whose header does not list exactly ``expected`` (names and shapes).

    :param path: the file.
    :param expected: ``{name: shape}`` of the model that will receive the tensors.
    :param root: the folder it must stay inside (default: its own folder).
    """
    shapes = safetensors_header(path, root=root)
    missing = sorted(set(expected) - set(shapes))
    extra = sorted(set(shapes) - set(expected))
    if missing or extra:
        raise UntrustedFileError(
            path, f"does not hold the model's tensors: missing {missing[:5]}, unexpected {extra[:5]}"
        )
    for name, shape in shapes.items():
        if tuple(expected[name]) != shape:
            raise UntrustedFileError(
                path,
                f"tensor {name!r} has shape {list(shape)}; the config builds {list(expected[name])}",
                field=name,
            )


def load_safetensors(
    path: str | os.PathLike[str],
    expected: Mapping[str, tuple[int, ...]],
    *,
    device: str = "cpu",
    root: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Load a safetensors file whose tensors must be exactly ``expected`` (names and shapes).

    Shapes are compared from the header before any tensor is read; floating tensors must be
    finite (NaN weights are refused, naming the tensor).

    :param path: the file.
    :param expected: ``{name: shape}`` of the model that will receive them.
    :param device: where to load.
    :param root: the folder it must stay inside (default: its own folder).
    :return: the tensors.
    """
    import torch as th
    from safetensors.torch import load_file

    check_safetensors_shapes(path, expected, root=root)
    try:
        tensors = load_file(str(path), device=device)
    except Exception as error:  # safetensors raises its own SafetensorError
        raise UntrustedFileError(path, f"cannot be read as safetensors: {error}") from error
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(th.isfinite(tensor).all()):
            raise UntrustedFileError(path, f"tensor {name!r} holds NaN or infinite values", field=name)
    return tensors


class _StayOnMeta:
    """While active, every tensor is created on the ``meta`` device (shapes, no storage), also
    those a constructor moves ``.to(device)``."""

    def __enter__(self) -> _StayOnMeta:
        import torch as th
        from torch.utils._python_dispatch import TorchDispatchMode

        meta = th.device("meta")

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
                kwargs = dict(kwargs or {})
                if "device" in kwargs:
                    kwargs["device"] = meta
                return func(*args, **kwargs)

        self._device = th.device("meta")
        self._mode = Mode()
        self._device.__enter__()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._mode.__exit__(*exc)
        self._device.__exit__(*exc)


def shapes_without_allocating(build: Callable[[], Any], *, path: str | os.PathLike[str], what: str) -> Any:
    """Run ``build()`` with every tensor on the ``meta`` device and return what it built.

    A config asking for a 40 GB network builds in microseconds this way, and its shapes can be
    compared with the safetensors header before the real model is allocated. Any failure of the
    build is the config's fault and is reported naming the file.

    :param build: constructs the model (or policy) from the config.
    :param path: the config file, for the error.
    :param what: the field(s) the build reads, for the error.
    """
    try:
        with _StayOnMeta():
            return build()
    except UntrustedFileError:
        raise
    except Exception as error:
        raise UntrustedFileError(
            path, f"the model it describes cannot be built: {type(error).__name__}: {error}", field=what
        ) from error


def state_shapes(module: Any, prefix: str = "") -> dict[str, tuple[int, ...]]:
    """``{prefix + name: shape}`` of a module's state dict."""
    return {f"{prefix}{key}": tuple(value.shape) for key, value in module.state_dict().items()}


# --------------------------------------------------------------------------------------------
# .npy arrays: headers checked before anything is mapped
# --------------------------------------------------------------------------------------------


def npy_header(path: str | os.PathLike[str], *, root: str | os.PathLike[str]) -> tuple[tuple[int, ...], Any]:
    """Read a ``.npy`` header: ``(shape, dtype)``; object dtypes (pickles) and non-npy files refused.

    :param path: the file.
    :param root: the folder it must stay inside.
    """
    import numpy as np

    path = Path(path)
    check_inside(path, root)
    try:
        with open(path, "rb") as file:
            version = np.lib.format.read_magic(file)
            reader = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran_order, dtype = reader(file)
            data_start = file.tell()
            size = os.fstat(file.fileno()).st_size
    except FileNotFoundError as error:
        raise UntrustedFileError(path, "is missing") from error
    except (ValueError, OSError, EOFError) as error:
        raise UntrustedFileError(
            path, f"is not a .npy array (an .npz, pickle or truncated file?): {error}"
        ) from error
    if dtype.hasobject:
        raise UntrustedFileError(
            path, f"stores Python objects (dtype {dtype}), which only unpickling could read; refused"
        )
    if fortran_order:
        raise UntrustedFileError(path, "is stored in Fortran order; C order expected")
    if size - data_start != math.prod(shape) * dtype.itemsize:
        raise UntrustedFileError(
            path, f"holds {size - data_start} data bytes for shape {shape} {dtype} (truncated?)"
        )
    return tuple(shape), dtype


#: Arrays at least this large are memory-mapped by :func:`load_npy`; smaller ones are read into
#: memory. A memory map holds an open file descriptor for as long as the array lives, so a dataset
#: of thousands of small per-task files would otherwise exceed the usual limit of 1024 open files.
MMAP_MIN_BYTES = 1 << 20


def load_npy(path: str | os.PathLike[str], *, root: str | os.PathLike[str]) -> Any:
    """Load a ``.npy`` array after :func:`npy_header` accepted it (never unpickles).

    Arrays of :data:`MMAP_MIN_BYTES` or more are memory-mapped read-only, smaller ones read.
    """
    import errno

    import numpy as np

    shape, dtype = npy_header(path, root=root)
    mmap = math.prod(shape) * dtype.itemsize >= MMAP_MIN_BYTES
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except OSError as error:
        if error.errno == errno.EMFILE:
            raise UntrustedFileError(
                path,
                "cannot be opened: too many open files (every memory-mapped array of "
                f"{MMAP_MIN_BYTES} bytes or more keeps one open); raise the limit (`ulimit -n`)",
            ) from error
        raise UntrustedFileError(path, f"cannot be read: {error}") from error
    except (ValueError, EOFError) as error:
        raise UntrustedFileError(path, f"cannot be read: {error}") from error


# --------------------------------------------------------------------------------------------
# Teachers named by the caller (never by a file): a depth limit
# --------------------------------------------------------------------------------------------

_TEACHER_DEPTH: contextvars.ContextVar[int] = contextvars.ContextVar("zoo_teacher_depth", default=0)


@contextlib.contextmanager
def resolving_teacher(teacher: Any) -> Iterator[None]:
    """Count nested teacher resolutions and refuse past :data:`MAX_TEACHER_DEPTH`.

    :param teacher: the teacher being resolved, for the error.
    """
    depth = _TEACHER_DEPTH.get()
    if depth >= MAX_TEACHER_DEPTH:
        raise ValueError(
            f"teacher={teacher!r}: teachers nest {depth + 1} deep; at most {MAX_TEACHER_DEPTH} are resolved"
        )
    token = _TEACHER_DEPTH.set(depth + 1)
    try:
        yield
    finally:
        _TEACHER_DEPTH.reset(token)


# --------------------------------------------------------------------------------------------
# VecNormalize statistics
# --------------------------------------------------------------------------------------------


def _running_stats(encoded: Any, path: Any, name: str, depth: int = 0) -> Any:
    if not isinstance(encoded, dict) or depth > MAX_SPACE_DEPTH:
        raise UntrustedFileError(path, "is not running statistics", field=name)
    if "mean" not in encoded:
        return {
            key: _running_stats(value, path, f"{name}.{key}", depth + 1) for key, value in encoded.items()
        }
    mean = decode_array(encoded.get("mean"), path=path, field_name=f"{name}.mean")
    var = decode_array(encoded.get("var"), path=path, field_name=f"{name}.var")
    count = decode_float(encoded.get("count"), path=path, field_name=f"{name}.count")
    if mean.shape != var.shape:
        raise UntrustedFileError(path, f"mean {mean.shape} and var {var.shape} differ in shape", field=name)
    import numpy as np

    if not (
        np.isfinite(mean).all()
        and np.isfinite(var).all()
        and (var >= 0).all()
        and math.isfinite(count)
        and count >= 0
    ):
        raise UntrustedFileError(path, "holds NaN, infinite or negative statistics", field=name)
    return {"mean": mean, "var": var, "count": count}


def vec_normalize_settings(data: Any, *, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check ``vec_normalize.json``: flags, finite clips, and finite statistics of matching shapes.

    :param data: the parsed file.
    :param path: the file, for the error.
    :return: ``{"norm_obs", "clip_obs", "clip_reward", "gamma", "epsilon", "norm_obs_keys",
        "obs_rms", "ret_rms"}`` with statistics as ``{"mean", "var", "count"}`` (or a mapping of them).
    """
    settings: dict[str, Any] = {"norm_obs": field(data, "norm_obs", bool, path=path)}
    for key in ("clip_obs", "clip_reward", "gamma", "epsilon"):
        value = decode_float(field(data, key, (int, float), path=path), path=path, field_name=key)
        # epsilon divides: it must be > 0; the clips and gamma may be 0.
        if not math.isfinite(value) or value < 0 or (key == "epsilon" and value == 0):
            allowed = "a finite number > 0" if key == "epsilon" else "a finite number >= 0"
            raise UntrustedFileError(path, f"is {value}; {allowed} was expected", field=key)
        settings[key] = value
    keys = field(data, "norm_obs_keys", (list, type(None)), path=path, default=None)
    if keys is not None and not all(isinstance(key, str) for key in keys):
        raise UntrustedFileError(path, "is not a list of names", field="norm_obs_keys")
    settings["norm_obs_keys"] = keys
    obs_rms = field(data, "obs_rms", (dict, type(None)), path=path)
    settings["obs_rms"] = None if obs_rms is None else _running_stats(obs_rms, path, "obs_rms")
    settings["ret_rms"] = _running_stats(field(data, "ret_rms", dict, path=path), path, "ret_rms")
    return settings


# --------------------------------------------------------------------------------------------
# Algorithm Distillation: model config.json and learning-history manifest.json
# --------------------------------------------------------------------------------------------

_OBSERVATION_KINDS = ("discrete", "box", "image")


def _unit_interval(value: Any, path: Any, name: str) -> float:
    number = _number(value, path, name)
    if number is None or not 0.0 <= number < 1.0:
        raise UntrustedFileError(path, f"is {value!r}; allowed: [0, 1)", field=name)
    return float(number)


def _shape(value: Any, path: Any, name: str) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in value
    ):
        raise UntrustedFileError(path, f"is {value!r}; a list of positive sizes was expected", field=name)
    if len(value) > 8 or math.prod(value) > MAX_SPACE_ELEMENTS:
        raise UntrustedFileError(
            path, f"is {value!r}; at most 8 dimensions and {MAX_SPACE_ELEMENTS} elements", field=name
        )
    return value


def observation_description(value: Any, *, path: Any, name: str = "observation_space") -> dict[str, Any]:
    """Check AD's JSON description of an observation space (``zoo.agents.ad.describe_space``)."""
    kind = field(value, "kind", str, path=path, prefix=name)
    if kind not in _OBSERVATION_KINDS:
        raise UntrustedFileError(
            path, f"is {kind!r}; allowed: {', '.join(_OBSERVATION_KINDS)}", field=f"{name}.kind"
        )
    shape = field(value, "shape", list, path=path, prefix=name)
    if shape:
        _shape(shape, path, f"{name}.shape")
    n = integer(value, "n", path=path, prefix=name, low=0, high=MAX_SPACE_ELEMENTS)
    dtype = field(value, "dtype", str, path=path, prefix=name)
    if dtype not in ("int64", "int32", "uint8", "float32", "float64", "bool"):
        raise UntrustedFileError(
            path, f"is {dtype!r}; a numeric dtype name was expected", field=f"{name}.dtype"
        )
    if (kind == "discrete") != (not shape) or (kind == "discrete" and n < 1):
        raise UntrustedFileError(path, f"kind {kind!r} does not fit shape {shape} and n={n}", field=name)
    return {**value, "kind": kind, "shape": shape, "n": n, "dtype": dtype}


#: The architecture fields of an AD model and their bounds (``zoo.agents.ad.ModelConfig``).
_AD_MODEL_LIMITS: dict[str, tuple[int, int]] = {
    "n_observations": (0, MAX_SPACE_ELEMENTS),
    "n_actions": (1, 1 << 16),
    "context_length": (1, 1 << 16),
    "n_layers": (1, 64),
    "n_heads": (1, 64),
    "embed_dim": (1, 1 << 13),
    "grid_size": (0, 1 << 12),
}

#: AD hyper-parameters a saved model may restore (``seed`` is restored as a value, never used to reseed).
_AD_HYPERPARAMETERS: dict[str, Callable[[Any, Any, str], Any]] = {
    "learning_rate": _number,
    "weight_decay": _number,
    "warmup_steps": _count,
    "min_lr_ratio": _number,
    "batch_size": _count,
    "max_grad_norm": _number,
    "subsample": _count,
    "seed": _count,
}


def ad_config(path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Read and check an Algorithm Distillation ``config.json``.

    :param path: the file.
    :param root: the folder it must stay inside (default: its own folder).
    :return: ``{"model": {...}, "metadata": {...}, "hyperparameters": {...}, "num_steps": int}``,
        every field checked: architecture within bounds, env id registered without ``module:``,
        env kwargs plain data, hyper-parameters from the allow-list.
    """
    data = read_json_object(path, root=root)
    if data.get("algorithm") != "AlgorithmDistillation":
        raise UntrustedFileError(
            path, f"is {data.get('algorithm')!r}, not 'AlgorithmDistillation'", field="algorithm"
        )
    model = field(data, "model", dict, path=path)
    known = {
        *_AD_MODEL_LIMITS,
        "observation_kind",
        "observation_shape",
        "dropout",
        "attention_dropout",
        "rope_base",
        "channels_last",
        "episode_starts",
    }
    unknown = sorted(set(model) - known)
    if unknown:
        raise UntrustedFileError(path, f"unknown architecture fields {unknown}", field=f"model.{unknown[0]}")
    checked: dict[str, Any] = {}
    for key, (low, high) in _AD_MODEL_LIMITS.items():
        if key in model:
            checked[key] = integer(model, key, path=path, prefix="model", low=low, high=high)
    kind = field(model, "observation_kind", str, path=path, prefix="model")
    if kind not in _OBSERVATION_KINDS:
        raise UntrustedFileError(
            path, f"is {kind!r}; allowed: {', '.join(_OBSERVATION_KINDS)}", field="model.observation_kind"
        )
    checked["observation_kind"] = kind
    shape = field(model, "observation_shape", list, path=path, prefix="model")
    checked["observation_shape"] = _shape(shape, path, "model.observation_shape") if shape else []
    for key in ("dropout", "attention_dropout"):
        if key in model:
            checked[key] = _unit_interval(model[key], path, f"model.{key}")
    if "rope_base" in model:
        base = _number(model["rope_base"], path, "model.rope_base")
        if base is None or not 1.0 <= base <= 1e12:
            raise UntrustedFileError(
                path, f"is {model['rope_base']!r}; allowed: 1 to 1e12", field="model.rope_base"
            )
        checked["rope_base"] = float(base)
    for key in ("channels_last", "episode_starts"):
        if key in model:
            checked[key] = field(model, key, bool, path=path, prefix="model")

    metadata = field(data, "metadata", dict, path=path)
    checked_metadata = dict(metadata)
    checked_metadata["env_id"] = check_env_id(metadata.get("env_id"), path=path, field_name="metadata.env_id")
    env_kwargs = field(metadata, "env_kwargs", dict, path=path, prefix="metadata", default={})
    checked_metadata["env_kwargs"] = check_plain_json(env_kwargs, path=path, name="metadata.env_kwargs")
    checked_metadata["observation_space"] = observation_description(
        metadata.get("observation_space"), path=path, name="metadata.observation_space"
    )
    checked_metadata["n_actions"] = integer(
        metadata, "n_actions", path=path, prefix="metadata", low=1, high=1 << 16
    )
    for key in ("source", "max_episode_steps"):
        if key in metadata:
            check_plain_json(metadata[key], path=path, name=f"metadata.{key}")

    hyperparameters = field(data, "hyperparameters", dict, path=path)
    checked_hyperparameters = {}
    for key, value in hyperparameters.items():
        if key in _AD_HYPERPARAMETERS:
            checked_hyperparameters[key] = _AD_HYPERPARAMETERS[key](value, path, f"hyperparameters.{key}")
        elif key in FORBIDDEN_HYPERPARAMETERS and value is not None:
            raise UntrustedFileError(
                path, f"is never taken from a file (got {value!r})", field=f"hyperparameters.{key}"
            )
    num_steps = integer(data, "num_steps", path=path, default=0)
    return {
        "model": checked,
        "metadata": checked_metadata,
        "hyperparameters": checked_hyperparameters,
        "num_steps": num_steps,
    }


#: Arrays of a learning history and the dtypes each may have.
_HISTORY_DTYPES: dict[str, tuple[str, ...]] = {
    "observations": ("int64", "int32", "uint8", "float32", "float64"),
    "actions": ("int64", "int32"),
    "rewards": ("float32", "float64"),
    "dones": ("bool",),
}


def history_manifest(
    path: str | os.PathLike[str], *, format_name: str, version: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read and check a learning-history ``manifest.json``.

    :param path: the file.
    :param format_name: the ``format`` it must declare.
    :param version: the ``version`` it must declare.
    :return: ``(manifest, checked)``: the manifest as read, after ``env_id``, the spaces, the tasks
        and every entry's shapes and dtypes were checked; and ``checked`` with ``"observation"``,
        ``"n_actions"`` and ``"completed"``, whose entries hold each file as a checked path inside
        the manifest's folder.
    """
    path = Path(path)
    root = path.parent
    manifest = read_json_object(path, root=root)
    if manifest.get("format") != format_name:
        raise UntrustedFileError(
            path,
            f"is {manifest.get('format')!r}, not a learning-history manifest ({format_name!r})",
            field="format",
        )
    if manifest.get("version") != version:
        raise UntrustedFileError(
            path, f"is {manifest.get('version')!r}; this code reads {version}", field="version"
        )
    check_env_id(manifest.get("env_id"), path=path, field_name="env_id")
    check_plain_json(field(manifest, "env_kwargs", dict, path=path, default={}), path=path, name="env_kwargs")
    tasks = field(manifest, "tasks", list, path=path)
    check_plain_json(tasks, path=path, name="tasks")
    observation = observation_description(manifest.get("observation_space"), path=path)
    action_space = field(manifest, "action_space", dict, path=path)
    n_actions = integer(action_space, "n", path=path, prefix="action_space", low=1, high=1 << 16)
    for key in ("source", "split", "episodes", "seed", "tasks_per_batch", "max_episode_steps"):
        if key in manifest:
            check_plain_json(manifest[key], path=path, name=key)
    completed = field(manifest, "completed", dict, path=path)
    entries: dict[str, Any] = {}
    for key, entry in completed.items():
        prefix = f"completed.{key}"
        if not key.isdigit() or int(key) >= len(tasks):
            raise UntrustedFileError(path, f"is not the index of one of the {len(tasks)} tasks", field=prefix)
        length = integer(entry, "length", path=path, prefix=prefix, low=0, high=MAX_COUNT)
        episodes = integer(entry, "episodes", path=path, prefix=prefix, low=0, high=MAX_COUNT)
        files = field(entry, "files", dict, path=path, prefix=prefix)
        checked_files = {}
        for name, allowed in _HISTORY_DTYPES.items():
            spec = field(files, name, dict, path=path, prefix=f"{prefix}.files")
            where = f"{prefix}.files.{name}"
            dtype = field(spec, "dtype", str, path=path, prefix=where)
            if dtype not in allowed:
                raise UntrustedFileError(
                    path, f"is {dtype!r}; allowed: {', '.join(allowed)}", field=f"{where}.dtype"
                )
            shape = field(spec, "shape", list, path=path, prefix=where)
            expected_tail = observation["shape"] if name == "observations" else []
            if (
                not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
                or shape[:1] != [length]
                or shape[1:] != list(expected_tail)
            ):
                raise UntrustedFileError(
                    path, f"is {shape!r}; expected [{length}, *{expected_tail}]", field=f"{where}.shape"
                )
            checked_files[name] = {
                "file": contained_file(root, spec.get("file"), path=path, field_name=f"{where}.file"),
                "dtype": dtype,
                "shape": shape,
            }
        entries[key] = {"length": length, "episodes": episodes, "files": checked_files}
    return manifest, {"observation": observation, "n_actions": n_actions, "completed": entries}


def check_history_arrays(
    arrays: Mapping[str, Any], *, files: Mapping[str, Any], observation: Mapping[str, Any], n_actions: int
) -> None:
    """Refuse a history whose values the env cannot produce: NaN/inf rewards or observations,
    actions outside ``[0, n_actions)``, discrete observations outside ``[0, n)``.

    :param arrays: the memory-mapped arrays by name.
    :param files: the checked manifest entries (for the file names in the error).
    :param observation: the checked observation description.
    :param n_actions: the number of actions.
    """
    import numpy as np

    def first_bad(mask: Any) -> int:
        return int(np.flatnonzero(np.asarray(mask).reshape(len(mask), -1).any(axis=1))[0])

    rewards, actions, observations = arrays["rewards"], arrays["actions"], arrays["observations"]
    if len(rewards) and not np.isfinite(rewards).all():
        index = first_bad(~np.isfinite(rewards))
        raise UntrustedFileError(
            files["rewards"]["file"], f"reward at index {index} is {rewards[index]} (not finite)"
        )
    if len(actions) and ((actions < 0) | (actions >= n_actions)).any():
        index = first_bad((actions < 0) | (actions >= n_actions))
        raise UntrustedFileError(
            files["actions"]["file"],
            f"action at index {index} is {actions[index]}; allowed: 0 to {n_actions - 1}",
        )
    if len(observations) == 0:
        return
    if observation["kind"] == "discrete":
        bad = (observations < 0) | (observations >= observation["n"])
        if bad.any():
            index = first_bad(bad)
            raise UntrustedFileError(
                files["observations"]["file"],
                f"observation at index {index} is {observations[index]}; allowed: 0 to {observation['n'] - 1}",
            )
    elif observations.dtype.kind == "f" and not np.isfinite(observations).all():
        index = first_bad(~np.isfinite(observations))
        raise UntrustedFileError(files["observations"]["file"], f"observation at index {index} is not finite")


def load_optional_history_arrays(
    manifest_path: Path,
    key: str,
    manifest: dict[str, Any],
    observation: dict[str, Any],
    arrays: dict[str, Any],
    *,
    names: tuple[str, ...],
) -> dict[str, Any]:
    """Load the optional arrays a manifest entry lists (older datasets list none).

    The trust boundary's manifest schema checks the four arrays every history has; these are
    listed beside them and are just as untrusted, so each name is confined to the folder, each
    header checked (:func:`load_npy`), and shapes, dtypes and values must fit.

    :param manifest_path: the manifest.
    :param key: the task's key in ``completed``.
    :param manifest: the manifest as read.
    :param observation: the checked observation description.
    :param arrays: the task's four checked arrays.
    :param names: the optional arrays a history may have (``terminated``, ``truncated``,
        ``final_observations``).
    :return: the ones listed, loaded by :func:`load_npy`.
    """
    import numpy as np

    files = manifest["completed"][key]["files"]
    root = manifest_path.parent
    dones = np.asarray(arrays["dones"])
    found: dict[str, Any] = {}
    for name in names:
        where = f"completed.{key}.files.{name}"
        spec = field(
            files, name, (dict, type(None)), path=manifest_path, prefix=f"completed.{key}.files", default=None
        )
        if spec is None:
            continue
        file = contained_file(root, spec.get("file"), path=manifest_path, field_name=f"{where}.file")
        array = load_npy(file, root=root)
        if name == "final_observations":
            shape = [int(np.count_nonzero(dones)), *observation["shape"]]
            dtype = arrays["observations"].dtype.name
        else:
            shape, dtype = [len(dones)], "bool"
        if list(array.shape) != shape or array.dtype.name != dtype:
            raise UntrustedFileError(
                file, f"holds {array.dtype.name}{list(array.shape)}; expected {dtype}{shape}"
            )
        found[name] = array
    if "terminated" in found and "truncated" in found:
        disagree = (np.asarray(found["terminated"]) | np.asarray(found["truncated"])) != dones
        if disagree.any():
            index = int(np.flatnonzero(disagree)[0])
            raise UntrustedFileError(
                root / files["terminated"]["file"],
                f"at index {index}, terminated | truncated disagrees with dones",
            )
    final = found.get("final_observations")
    if final is not None and len(final):
        check_history_arrays(
            {"observations": final, "actions": np.zeros(0, np.int64), "rewards": np.zeros(0, np.float32)},
            files={"observations": {"file": root / files["final_observations"]["file"]}},
            observation=observation,
            n_actions=1,
        )
    return found
