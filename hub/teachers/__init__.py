"""Pretrained teachers: bundled with the package, and published on the Hub.

Layout, both in the package and in a Hub repo ``<org>/ppo-<EnvName>``::

    <EnvName>/<task-slug>/model.safetensors     (bundle: under this package's folder)
    <EnvName>/<task-slug>/config.json
    <task-slug>/model.safetensors               (Hub repo: one repo per env)
    <task-slug>/config.json

``<EnvName>`` is the env id with ``/`` turned into ``-`` (``zoo/DarkRoom-v0`` ->
``zoo-DarkRoom-v0``); ``<task-slug>`` is ``default`` for a single-task teacher, else the task's
numbers joined by ``-`` (and nested tuples by ``_``): task ``(3, 4)`` -> ``3-4``, task
``((1, 2), (5, 6))`` -> ``1-2_5-6``.

:func:`load_teacher` returns the SB3 model; pass ``return_info=True`` to also get a
:class:`TeacherInfo` saying where it came from (``"bundled"``, ``"hub"`` or ``"cache"``) and
which revision. The same info is attached to the model as ``model.teacher_info``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUNDLE_ROOT = Path(__file__).resolve().parent
SOURCES = ("auto", "bundled", "hub", "cache")
TEACHER_ALGO = "ppo"
DEFAULT_TEACHER_ORG = "distill-zoo"
TEACHER_ORG_ENV_VAR = "ZOO_TEACHER_ORG"


@dataclass(frozen=True)
class TeacherInfo:
    """Where a teacher came from.

    :param env_id: the env id asked for.
    :param task: the task asked for (``None``: the single-task teacher).
    :param source: ``"bundled"`` (package data), ``"hub"`` (the Hub answered) or ``"cache"``
        (the huggingface_hub cache, offline or with the Hub unreachable).
    :param revision: the Hub commit sha, or ``"distill-zoo==<version>"`` for a bundled teacher.
    :param repo_id: the Hub repo id (``None`` for a bundled teacher).
    :param path: the local folder the weights were read from.
    """

    env_id: str
    task: Any
    source: str
    revision: str
    repo_id: str | None
    path: Path


def env_name(env_id: str) -> str:
    """Return the env id with ``/`` turned into ``-``, as used in folder and repo names.

    A ``module:`` prefix is dropped (``zoo:zoo/DarkRoom-v0`` names the same folders and repos as
    ``zoo/DarkRoom-v0``), as huggingface_sb3's ``EnvironmentName`` and rl_zoo3 do.

    :param env_id: Gymnasium env id.
    """
    if not env_id or not isinstance(env_id, str):
        raise ValueError(f"env_id={env_id!r} must be a non-empty string")
    _, colon, after = env_id.partition(":")
    if ":" in after:
        raise ValueError(f"env_id={env_id!r} has more than one ':'; use module:env_id or env_id")
    return (after if colon else env_id).replace("/", "-")


def task_slug(task: Any) -> str:
    """Return the folder name of a task (see the module docstring).

    :param task: ``None``, a number or string, or a (nested) tuple/list of them.
    """
    if task is None:
        return "default"

    def scalar(value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            if hasattr(value, "item"):  # numpy scalar
                return scalar(value.item())
            raise ValueError(f"task={task!r}: element {value!r} must be an int or a string")
        text = str(value)
        if not text or any(c in text for c in "/\\_-.") or text.startswith("."):
            raise ValueError(f"task={task!r}: element {text!r} cannot be used in a folder name")
        return text

    if isinstance(task, (list, tuple)):
        if not task:
            raise ValueError(f"task={task!r} must not be empty")
        if all(isinstance(item, (list, tuple)) for item in task):
            return "_".join("-".join(scalar(x) for x in item) for item in task)
        return "-".join(scalar(x) for x in task)
    return scalar(task)


def teacher_folder(env_id: str, task: Any = None, root: str | os.PathLike[str] | None = None) -> Path:
    """Return the bundle folder of a teacher: ``<root>/<EnvName>/<task-slug>``.

    :param env_id: Gymnasium env id.
    :param task: the task, or ``None`` for a single-task teacher.
    :param root: bundle root (default: this package's folder).
    """
    return Path(root if root is not None else BUNDLE_ROOT) / env_name(env_id) / task_slug(task)


def teacher_repo_id(env_id: str, org: str | None = None) -> str:
    """Return the Hub repo of an env's teachers, ``<org>/ppo-<EnvName>``.

    :param env_id: Gymnasium env id.
    :param org: organisation; default: the ``ZOO_TEACHER_ORG`` environment variable, else
        ``"distill-zoo"`` (the project's own organisation, where its teachers are published).
    """
    from zoo.hub.push import make_repo_id

    return make_repo_id(
        TEACHER_ALGO, env_id, org=org or os.environ.get(TEACHER_ORG_ENV_VAR) or DEFAULT_TEACHER_ORG
    )


def bundled_teachers(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Return the bundle folders that hold a teacher (``config.json`` + ``model.safetensors``).

    :param root: bundle root (default: this package's folder).
    """
    base = Path(root if root is not None else BUNDLE_ROOT)
    return sorted(
        config.parent
        for config in base.glob("*/*/config.json")
        if (config.parent / "model.safetensors").is_file()
    )


def push_teachers(
    env_id: str,
    bundle_root: str | os.PathLike[str] | None = None,
    *,
    repo_id: str | None = None,
    org: str | None = None,
    commit_message: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
) -> Any:
    """Publish every bundled teacher of ``env_id`` to its Hub repo in one commit.

    Each ``<bundle_root>/<EnvName>/<task-slug>/`` folder becomes ``<task-slug>/`` in the repo
    (default ``<org>/ppo-<EnvName>``), the layout :func:`load_teacher` reads.

    :param env_id: Gymnasium env id.
    :param bundle_root: bundle root (default: this package's folder).
    :param repo_id: target repo (default: :func:`teacher_repo_id`).
    :param org: organisation for the default repo id (see :func:`teacher_repo_id`).
    :param commit_message: commit message.
    :param token: Hugging Face token.
    :param endpoint: Hub URL (default: ``HF_ENDPOINT``).
    :return: huggingface_hub's ``CommitInfo``.
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    from zoo.hub.push import _check_repo_id, hub_endpoint

    env_folder = Path(bundle_root if bundle_root is not None else BUNDLE_ROOT) / env_name(env_id)
    teachers = [folder for folder in bundled_teachers(bundle_root) if folder.parent == env_folder]
    if not teachers:
        raise ValueError(f"env_id={env_id!r}: no bundled teacher under {env_folder}")
    repo_id = repo_id or teacher_repo_id(env_id, org)
    _check_repo_id(repo_id)
    operations = [
        CommitOperationAdd(path_in_repo=f"{folder.name}/{file.name}", path_or_fileobj=str(file))
        for folder in teachers
        for file in sorted(folder.iterdir())
        if file.is_file() and not file.name.startswith(".")
    ]
    api = HfApi(endpoint=hub_endpoint(endpoint), token=token)
    api.create_repo(repo_id, exist_ok=True)
    return api.create_commit(
        repo_id,
        operations,
        commit_message=commit_message or f"Upload teachers for {env_id}",
        repo_type="model",
    )


def default_task(env_id: str, bundle_root: str | os.PathLike[str] | None = None) -> Any:
    """The task of ``load_teacher(env_id)`` without a task: ``None`` (a single-task teacher) unless the
    bundle's ``<EnvName>/index.json`` names a ``default_task`` (multi-task envs such as Dark Room).

    :param env_id: Gymnasium env id.
    :param bundle_root: bundle root (default: this package's folder).
    """
    index = Path(bundle_root if bundle_root is not None else BUNDLE_ROOT) / env_name(env_id) / "index.json"
    if not index.is_file():
        return None
    try:
        task = json.loads(index.read_text())["default_task"]
    except (ValueError, KeyError) as error:
        raise ValueError(f"the teacher index {index} is corrupt: {error}") from error

    from zoo.envs import task_from_json

    return task_from_json(task)


def _package_version() -> str:
    try:
        return f"distill-zoo=={importlib.metadata.version('distill-zoo')}"
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "distill-zoo (source tree)"


def load_teacher(
    env_id: str,
    task: Any = None,
    revision: str | None = None,
    source: str = "auto",
    *,
    device: str = "auto",
    org: str | None = None,
    bundle_root: str | os.PathLike[str] | None = None,
    return_info: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
) -> Any:
    """Return the zoo's pretrained teacher for ``env_id`` (and ``task``), as an SB3 model.

    ``source="auto"`` uses the bundled teacher when there is one and no ``revision`` is asked
    (the bundle is the published teacher pinned at the package's release, and works offline);
    otherwise it asks the Hub, falling back to the huggingface_hub cache when offline or
    unreachable. ``"bundled"``, ``"hub"`` and ``"cache"`` force one source.

    :param env_id: Gymnasium env id.
    :param task: the task (``None``: the env's default teacher, see :func:`default_task`).
    :param revision: Hub branch, tag or commit sha (not allowed with ``source="bundled"``).
    :param source: ``"auto"``, ``"bundled"``, ``"hub"`` or ``"cache"``.
    :param device: torch device.
    :param org: Hub organisation of the teacher repos (default: ``ZOO_TEACHER_ORG``, else
        ``"distill-zoo"``).
    :param bundle_root: bundle root (default: this package's folder; tests pass their own).
    :param return_info: return ``(model, TeacherInfo)`` instead of the model alone.
    :param cache_dir: huggingface_hub cache folder.
    :param endpoint: Hub URL (default: ``HF_ENDPOINT``).
    :param token: Hugging Face token.
    :return: the model (``model.teacher_info`` holds the :class:`TeacherInfo`), or the pair.
    """
    from zoo.hub.push import load_from_hub_with_info
    from zoo.hub.serialization import load_agent, read_agent_config

    if source not in SOURCES:
        raise ValueError(f"source={source!r} must be one of {SOURCES}")
    if source == "bundled" and revision is not None:
        raise ValueError(
            f"revision={revision!r} cannot be used with source='bundled' (bundles have no revisions)"
        )
    if task is None:
        task = default_task(env_id, bundle_root)
    folder = teacher_folder(env_id, task, bundle_root)
    has_bundle = (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()

    if source == "bundled" or (source == "auto" and has_bundle and revision is None):
        if not has_bundle:
            raise FileNotFoundError(
                f"no bundled teacher for env_id={env_id!r}, task={task!r}: {folder} is missing"
            )
        _check_env(read_agent_config(folder).get("env_id"), env_id, folder)
        model = load_agent(folder, device=device)
        info = TeacherInfo(env_id, task, "bundled", _package_version(), None, folder)
    else:
        repo_id = teacher_repo_id(env_id, org)
        model, snapshot = load_from_hub_with_info(
            repo_id,
            revision,
            device,
            subfolder=task_slug(task),
            cache_dir=cache_dir,
            endpoint=endpoint,
            token=token,
            local_files_only=source == "cache",
        )
        config_env = read_agent_config(snapshot.path / task_slug(task)).get("env_id")
        _check_env(config_env, env_id, f"{repo_id}/{task_slug(task)}")
        info = TeacherInfo(
            env_id, task, snapshot.source, snapshot.commit, repo_id, snapshot.path / task_slug(task)
        )
    model.teacher_info = info
    return (model, info) if return_info else model


def _check_env(found: Any, expected: str, where: object) -> None:
    # Teachers saved without an env id (older bundles) are accepted; a different one is not.
    if found is not None and found != expected:
        raise ValueError(f"env_id={expected!r}, but the teacher in {where} was trained on {found!r}")
