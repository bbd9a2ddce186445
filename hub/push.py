"""Publish agents to the Hugging Face Hub and load them back, without unpickling.

``push_to_hub`` saves the agent (:func:`zoo.hub.save_agent`), evaluates it, records a replay
video, writes a model card and uploads everything in **one commit**. ``load_from_hub``
downloads through the ``huggingface_hub`` cache and rebuilds the agent from
``config.json`` + ``model.safetensors``.

Settings are read when a function is called (not when it is imported), so setting them
later in a process works: ``HF_ENDPOINT`` (the Hub's URL), ``HF_HUB_OFFLINE`` (load from
the cache only), ``HF_HOME`` / ``HF_HUB_CACHE`` (the cache folder) and ``ZOO_HUB_ORG`` (the
default organisation of :func:`make_repo_id`).
"""

from __future__ import annotations

import datetime as _dt
import inspect
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .serialization import (
    AGENT_FILE,
    CONFIG_FILE,
    WEIGHTS_FILE,
    is_sb3_algorithm,
    load_agent,
    read_agent_config,
    restore_vec_normalize,
    save_agent,
    write_json,
)
from .trust import UntrustedFileError, lookup_algorithm

RESULTS_FILE = "results.json"
VIDEO_FILE = "replay.mp4"
README_FILE = "README.md"
LOGS_FOLDER = "logs"
SB3_VEC_NORMALIZE_FILE = "vec_normalize.pkl"
RL_ZOO_CONFIG_FILE = "config.yml"
RL_ZOO_ARGS_FILE = "args.yml"
RL_ZOO_ENV_KWARGS_FILE = "env_kwargs.yml"
RL_ZOO_METRICS_FILE = "train_eval_metrics.zip"
#: Files a push never deletes (the Hub's own settings of the repo).
KEPT_FILES = frozenset({".gitattributes"})
ORG_ENV_VAR = "ZOO_HUB_ORG"
_TRUE = {"1", "ON", "YES", "TRUE"}
logger = logging.getLogger(__name__)


class HubError(RuntimeError):
    """A Hub operation failed; the message names the repo, revision and file involved.

    :param message: what went wrong.
    :param repo_id: the repo id.
    :param revision: the revision asked for (``None``: the default branch).
    :param filename: the file involved, if any.
    """

    def __init__(
        self, message: str, *, repo_id: str, revision: str | None = None, filename: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.repo_id = repo_id
        self.revision = revision
        self.filename = filename

    def __str__(self) -> str:
        # OSError subclasses (FileNotFoundError) would otherwise format "[Errno None] ...".
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled with its keyword arguments (the default pickles only the message, and the class
        # then cannot be rebuilt), so an error raised in a worker process reaches the caller.
        keywords = {"repo_id": self.repo_id, "revision": self.revision, "filename": self.filename}
        return (_rebuild_hub_error, (type(self), self.message, keywords))


def _rebuild_hub_error(cls: type[HubError], message: str, keywords: dict[str, Any]) -> HubError:
    return cls(message, **keywords)


class HubNotFoundError(HubError, FileNotFoundError):
    """The repo, revision or file does not exist on the Hub."""


class NotCachedError(HubError, FileNotFoundError):
    """Offline (or the Hub unreachable) and the requested files are not in the local cache."""


class UnsafeFormatError(HubError, UntrustedFileError):
    """The repo holds only a pickled model, which is loaded only with ``trust_remote_code=True``."""

    def __init__(
        self, message: str, *, repo_id: str, revision: str | None = None, filename: str | None = None
    ) -> None:
        HubError.__init__(self, message, repo_id=repo_id, revision=revision, filename=filename)
        self.path = Path(filename or repo_id)
        self.problem = message
        self.field = None


@dataclass(frozen=True)
class HubSnapshot:
    """Files of one revision of a repo, in the local ``huggingface_hub`` cache.

    :param path: the snapshot folder.
    :param repo_id: the repo id.
    :param repo_type: ``"model"`` or ``"dataset"``.
    :param revision: the revision asked for (``None``: the default branch).
    :param commit: the commit sha the files belong to.
    :param source: ``"hub"`` if the Hub answered, ``"cache"`` if served from the cache alone
        (offline mode, or the Hub unreachable).
    """

    path: Path
    repo_id: str
    repo_type: str
    revision: str | None
    commit: str
    source: str


# --------------------------------------------------------------------------------------------
# Settings, read at call time
# --------------------------------------------------------------------------------------------


def hub_endpoint(endpoint: str | None = None) -> str:
    """Return the Hub URL: ``endpoint``, else ``HF_ENDPOINT``, else huggingface_hub's default.

    :param endpoint: explicit URL, or ``None``.
    """
    from huggingface_hub import constants

    return (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def hub_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> str:
    """Return the cache folder: ``cache_dir``, ``HF_HUB_CACHE``, ``HF_HOME/hub``, else the default.

    :param cache_dir: explicit folder, or ``None``.
    """
    from huggingface_hub import constants

    if cache_dir is not None:
        return str(cache_dir)
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return constants.HF_HUB_CACHE


def is_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` is set now (or was when huggingface_hub was imported)."""
    from huggingface_hub import constants

    # constants.is_offline_mode() only exists in newer releases; the constant is in all of them.
    return (
        bool(getattr(constants, "HF_HUB_OFFLINE", False))
        or os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE
    )


def make_repo_id(algo: str, env_id: str, org: str | None = None) -> str:
    """Return ``"<org>/<algo>-<EnvName>"``, the env id's ``/`` turned into ``-``.

    :param algo: algorithm name, lower-cased in the repo name (``"PPO"`` -> ``"ppo"``).
    :param env_id: Gymnasium env id, e.g. ``"zoo/DarkRoom-v0"`` -> ``"ppo-zoo-DarkRoom-v0"``.
    :param org: user or organisation; defaults to the ``ZOO_HUB_ORG`` environment variable.
    """
    if not algo or "/" in algo:
        raise ValueError(f"algo={algo!r} must be a non-empty name without '/'")
    if not env_id:
        raise ValueError(f"env_id={env_id!r} must be a non-empty env id")
    org = org or os.environ.get(ORG_ENV_VAR)
    if not org:
        raise ValueError(f"org={org!r}: pass org=... or set the {ORG_ENV_VAR} environment variable")
    if "/" in org:
        raise ValueError(f"org={org!r} must not contain '/'")
    from zoo.hub.teachers import env_name

    return f"{org}/{algo.lower()}-{env_name(env_id)}"


def _check_repo_id(repo_id: str) -> None:
    parts = repo_id.split("/") if isinstance(repo_id, str) else []
    if len(parts) != 2 or not all(parts) or ".." in repo_id:
        raise ValueError(f"repo_id={repo_id!r} must look like 'org/name'")


def _describe(repo_id: str, revision: str | None, filename: str | None = None) -> str:
    # Named after the Python arguments; the CLI maps them to its flags.
    where = f"repo_id={repo_id!r} at revision={revision or 'main'!r}"
    return f"filename={filename!r} of {where}" if filename else where


# --------------------------------------------------------------------------------------------
# Downloading
# --------------------------------------------------------------------------------------------


def network_errors() -> tuple[type[BaseException], ...]:
    """Exception classes meaning "the Hub could not be reached", for every supported huggingface_hub.

    huggingface_hub before 1.0 raises ``requests`` errors (``OSError`` subclasses); from 1.0 on
    it raises its own ``huggingface_hub.errors.HTTPError`` for transport failures. Both are
    named through public modules only. Catch :class:`huggingface_hub.errors.HfHubHTTPError` (an
    answer with an error status) before these.
    """
    from huggingface_hub import errors

    found: list[type[BaseException]] = [OSError, ConnectionError, TimeoutError]
    for name in ("HTTPError", "OfflineModeIsEnabled"):
        cls = getattr(errors, name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)


def _status_code(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def download_snapshot(
    repo_id: str,
    revision: str | None = None,
    *,
    repo_type: str = "model",
    allow_patterns: Sequence[str] | None = None,
    ignore_patterns: Sequence[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
    force_download: bool = False,
    local_files_only: bool = False,
) -> HubSnapshot:
    """Download (or find in the cache) the files of one revision of a repo.

    Everything goes through huggingface_hub's ``snapshot_download`` and its cache: online, it
    resolves the revision (recording which commit a branch or tag points to, so that a later
    offline load of the branch finds it) and downloads only files not cached yet. Offline
    (``HF_HUB_OFFLINE=1``), or when the Hub cannot be reached, the cache alone answers. The
    commit sha is read from the snapshot folder's name, which huggingface_hub sets to it.

    :param repo_id: ``"org/name"``.
    :param revision: branch, tag or commit sha; ``None`` for the default branch.
    :param repo_type: ``"model"`` or ``"dataset"``.
    :param allow_patterns: glob patterns of files to fetch (all by default).
    :param ignore_patterns: glob patterns of files to skip.
    :param cache_dir: cache folder (see :func:`hub_cache_dir`).
    :param endpoint: Hub URL (see :func:`hub_endpoint`).
    :param token: Hugging Face token (``None``: the saved one, if any).
    :param force_download: download again even if cached.
    :param local_files_only: use the cache only, as if offline.
    :return: the snapshot.
    """
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    _check_repo_id(repo_id)
    if repo_type not in ("model", "dataset"):
        raise ValueError(f"repo_type={repo_type!r} must be 'model' or 'dataset'")
    endpoint = hub_endpoint(endpoint)
    cache = hub_cache_dir(cache_dir)
    common = {
        "repo_id": repo_id,
        "repo_type": repo_type,
        "revision": revision,
        "cache_dir": cache,
        "allow_patterns": list(allow_patterns) if allow_patterns is not None else None,
        "ignore_patterns": list(ignore_patterns) if ignore_patterns is not None else None,
        "endpoint": endpoint,
        "token": token,
    }
    offline_reason: str | None = None
    if local_files_only:
        offline_reason = "local_files_only=True"
    elif is_offline():
        offline_reason = "offline mode is on (HF_HUB_OFFLINE)"
    if offline_reason is None:
        # One API call first, to tell "not found" from "unreachable" (snapshot_download alone
        # silently falls back to the cache, and then we could not say where the files came from).
        try:
            HfApi(endpoint=endpoint, token=token).repo_info(repo_id, repo_type=repo_type, revision=revision)
        except RevisionNotFoundError as error:
            raise HubNotFoundError(
                f"{_describe(repo_id, revision)}: revision not found on {endpoint}",
                repo_id=repo_id,
                revision=revision,
            ) from error
        except RepositoryNotFoundError as error:
            raise HubNotFoundError(
                f"{_describe(repo_id, revision)}: repository not found on {endpoint}",
                repo_id=repo_id,
                revision=revision,
            ) from error
        except HfHubHTTPError as error:
            status = _status_code(error)
            if status is None or status < 500:
                raise HubError(
                    f"{_describe(repo_id, revision)}: {_one_line(error)}", repo_id=repo_id, revision=revision
                ) from error
            offline_reason = f"the Hub at {endpoint} answered {status}"
        except network_errors() as error:
            offline_reason = f"the Hub at {endpoint} could not be reached ({type(error).__name__})"

    if offline_reason is None:
        try:
            path = Path(snapshot_download(force_download=force_download, **common))
        except (RevisionNotFoundError, RepositoryNotFoundError, EntryNotFoundError) as error:
            if isinstance(error, LocalEntryNotFoundError):
                raise HubError(
                    f"download of {_describe(repo_id, revision)} from {endpoint} failed: {_one_line(error)}",
                    repo_id=repo_id,
                    revision=revision,
                ) from error
            raise HubNotFoundError(
                f"{_describe(repo_id, revision)}: {_one_line(error)}", repo_id=repo_id, revision=revision
            ) from error
        except network_errors() as error:
            # Files are written under .incomplete names and renamed when whole, so a failed
            # download leaves nothing that a later load would take for the real file.
            raise HubError(
                f"download of {_describe(repo_id, revision)} from {endpoint} failed: {_one_line(error)}",
                repo_id=repo_id,
                revision=revision,
            ) from error
        return HubSnapshot(path, repo_id, repo_type, revision, path.name, "hub")

    common["revision"] = revision or "main"
    try:
        path = Path(snapshot_download(local_files_only=True, **common))
    except (LocalEntryNotFoundError, FileNotFoundError) as error:
        raise NotCachedError(
            f"{_describe(repo_id, revision)} is not in the huggingface_hub cache ({cache}) and {offline_reason}",
            repo_id=repo_id,
            revision=revision,
        ) from error
    return HubSnapshot(path, repo_id, repo_type, revision, path.name, "cache")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def download_file(
    repo_id: str,
    filename: str,
    revision: str | None = None,
    *,
    repo_type: str = "model",
    cache_dir: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
) -> Path:
    """Download one file through the cache; errors name the repo, revision and file.

    :param repo_id: ``"org/name"``.
    :param filename: path of the file in the repo.
    :param revision: branch, tag or commit sha; ``None`` for the default branch.
    :param repo_type: ``"model"`` or ``"dataset"``.
    :param cache_dir: cache folder (see :func:`hub_cache_dir`).
    :param endpoint: Hub URL (see :func:`hub_endpoint`).
    :param token: Hugging Face token.
    :return: the local path (inside the cache; do not modify).
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    _check_repo_id(repo_id)
    offline = is_offline()
    try:
        return Path(
            hf_hub_download(
                repo_id,
                filename,
                repo_type=repo_type,
                revision=revision,
                cache_dir=hub_cache_dir(cache_dir),
                endpoint=hub_endpoint(endpoint),
                token=token,
                local_files_only=offline,
            )
        )
    except RevisionNotFoundError as error:
        raise HubNotFoundError(
            f"{_describe(repo_id, revision, filename)}: revision not found",
            repo_id=repo_id,
            revision=revision,
            filename=filename,
        ) from error
    except RepositoryNotFoundError as error:
        raise HubNotFoundError(
            f"{_describe(repo_id, revision, filename)}: repository not found",
            repo_id=repo_id,
            revision=revision,
            filename=filename,
        ) from error
    except EntryNotFoundError as error:
        if isinstance(error, LocalEntryNotFoundError):
            reason = "offline mode is on (HF_HUB_OFFLINE)" if offline else "the Hub could not be reached"
            raise NotCachedError(
                f"{_describe(repo_id, revision, filename)} is not in the huggingface_hub cache and {reason}",
                repo_id=repo_id,
                revision=revision,
                filename=filename,
            ) from error
        raise HubNotFoundError(
            f"{_describe(repo_id, revision, filename)}: file not found",
            repo_id=repo_id,
            revision=revision,
            filename=filename,
        ) from error
    except HfHubHTTPError as error:
        raise HubError(
            f"{_describe(repo_id, revision, filename)}: {_one_line(error)}",
            repo_id=repo_id,
            revision=revision,
            filename=filename,
        ) from error
    except network_errors() as error:
        raise HubError(
            f"download of {_describe(repo_id, revision, filename)} from {hub_endpoint(endpoint)} failed: "
            f"{_one_line(error)}",
            repo_id=repo_id,
            revision=revision,
            filename=filename,
        ) from error


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def evaluate_agent(
    model: Any,
    env_id: str,
    *,
    n_eval_episodes: int = 10,
    deterministic: bool = True,
    env_kwargs: Mapping[str, Any] | None = None,
    seed: int | None = 0,
    vec_normalize: Any = None,
    evaluate_fn: Callable[[Any, int], Sequence[float]] | None = None,
) -> dict[str, Any]:
    """Evaluate an agent and return the ``results.json`` content.

    :param model: the agent.
    :param env_id: environment id.
    :param n_eval_episodes: number of evaluation episodes.
    :param deterministic: deterministic actions.
    :param env_kwargs: keyword arguments of ``gym.make``.
    :param seed: seed of the evaluation environment.
    :param vec_normalize: a ``VecNormalize`` (or the statistics directory) whose observation
        statistics are applied, frozen, during evaluation.
    :param evaluate_fn: ``evaluate_fn(model, n_eval_episodes) -> episode returns`` for agents
        that SB3's ``evaluate_policy`` cannot run (Algorithm Distillation's in-context rollouts).
    :return: huggingface_sb3's ``results.json`` fields (``env_id``, ``mean_reward``, ``std_reward``,
        ``n_eval_episodes``, ``is_deterministic``, ``eval_datetime``: UTC, ISO 8601) and the
        ``episode_returns`` (plus ``episode_lengths`` when SB3 evaluated).
    """
    if n_eval_episodes < 1:
        raise ValueError(f"n_eval_episodes={n_eval_episodes} must be at least 1")
    if evaluate_fn is not None:
        returns = [float(r) for r in evaluate_fn(model, n_eval_episodes)]
        lengths: list[int] | None = None
    else:
        if not is_sb3_algorithm(model):
            raise ValueError(
                f"model of type {type(model).__name__} is not an SB3 algorithm: pass evaluate_fn=... "
                "(e.g. the agent's own in-context evaluation)"
            )
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.evaluation import evaluate_policy
        from stable_baselines3.common.vec_env import VecNormalize

        env: Any = make_vec_env(env_id, n_envs=1, seed=seed, env_kwargs=dict(env_kwargs or {}))
        if vec_normalize is not None:
            statistics = vec_normalize
            if isinstance(vec_normalize, VecNormalize):
                from .serialization import vec_normalize_to_json

                statistics = vec_normalize_to_json(vec_normalize)
            env = restore_vec_normalize(statistics, env)
        try:
            episode_returns, episode_lengths = evaluate_policy(
                model,
                env,
                n_eval_episodes=n_eval_episodes,
                deterministic=deterministic,
                return_episode_rewards=True,
                warn=False,
            )
        finally:
            env.close()
        returns = [float(r) for r in episode_returns]  # type: ignore[union-attr]
        lengths = [int(n) for n in episode_lengths]  # type: ignore[union-attr]
    results: dict[str, Any] = {
        "env_id": env_id,
        "mean_reward": float(np.mean(returns)),
        "std_reward": float(np.std(returns)),
        "n_eval_episodes": len(returns),
        "is_deterministic": bool(deterministic),
        "eval_datetime": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "episode_returns": returns,
    }
    if lengths is not None:
        results["episode_lengths"] = lengths
    return results


# --------------------------------------------------------------------------------------------
# Push
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PushResult:
    """What :func:`push_to_hub` committed.

    :param repo_id: the repo pushed to.
    :param revision: the branch committed to (``None``: the default branch).
    :param oid: the new commit sha.
    :param commit_url: the commit's URL on the Hub.
    :param uploaded: the files of the new commit (the repo holds exactly these, plus ``.gitattributes``).
    :param removed: files of earlier pushes (or of other tools) that the commit deleted.
    :param dataset_repo_id: the dataset repo pushed with the model (``dataset_repo_id=``), if any.
    :param dataset_oid: that dataset push's commit sha.
    """

    repo_id: str
    revision: str | None
    oid: str
    commit_url: str
    uploaded: tuple[str, ...]
    removed: tuple[str, ...]
    dataset_repo_id: str | None = None
    dataset_oid: str | None = None


def sb3_zip_name(repo_id: str) -> str:
    """Return ``"<repo-name>.zip"``, the file huggingface_sb3 and rl_zoo3 download from a repo.

    :param repo_id: ``"org/name"``, e.g. ``"org/ppo-zoo-DarkRoom-v0"`` -> ``"ppo-zoo-DarkRoom-v0.zip"``.
    """
    _check_repo_id(repo_id)
    return f"{repo_id.split('/')[1]}.zip"


def _write_sb3_files(
    model: Any,
    folder: Path,
    repo_id: str,
    env_id: str,
    env_kwargs: Mapping[str, Any] | None,
    vec_normalize: Any,
    results: Mapping[str, Any],
    hyperparameters: Mapping[str, Any],
    seed: int | None,
) -> None:
    """Write the files the SB3 ecosystem reads: SB3's own ``.zip`` and rl_zoo3's YAML and metrics."""
    import io
    import zipfile

    import yaml

    model.save(folder / sb3_zip_name(repo_id))
    if vec_normalize is not None:
        vec_normalize.save(str(folder / SB3_VEC_NORMALIZE_FILE))
    # rl_zoo3's download_from_hub fetches these three and the metrics archive by name; they are
    # plain YAML (safe_dump) describing what is already in config.json.
    # config.yml holds rl_zoo3's hyperparameter keys: the algorithm's constructor arguments.
    accepted = set(inspect.signature(type(model).__init__).parameters) - {"self", "policy", "env"}
    zoo_config: dict[str, Any] = {
        "policy": _policy_name(model),
        "normalize": vec_normalize is not None,
        "n_timesteps": int(getattr(model, "num_timesteps", 0)),
        "n_envs": int(getattr(model, "n_envs", 1) or 1),
    }
    zoo_config.update(
        {
            key: value
            for key, value in hyperparameters.items()
            if key in accepted and isinstance(value, (bool, int, float, str)) and key not in zoo_config
        }
    )
    arguments = {
        "algo": type(model).__name__.lower(),
        "env": env_id,
        "env_kwargs": dict(env_kwargs or {}),
        "seed": seed,
        "n_eval_episodes": results["n_eval_episodes"],
    }
    for name, content in (
        (RL_ZOO_CONFIG_FILE, zoo_config),
        (RL_ZOO_ARGS_FILE, arguments),
        (RL_ZOO_ENV_KWARGS_FILE, dict(env_kwargs or {})),
    ):
        (folder / name).write_text(yaml.safe_dump(_yaml_plain(content), sort_keys=True), encoding="utf-8")
    evaluations = io.BytesIO()
    returns = np.asarray(results["episode_returns"], dtype=np.float64)
    lengths = np.asarray(results.get("episode_lengths", [0] * len(returns)), dtype=np.int64)
    timesteps = np.asarray([int(getattr(model, "num_timesteps", 0))], dtype=np.int64)
    np.savez(evaluations, timesteps=timesteps, results=returns[None, :], ep_lengths=lengths[None, :])
    with zipfile.ZipFile(folder / RL_ZOO_METRICS_FILE, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("evaluations.npz", evaluations.getvalue())


def _yaml_plain(value: Any) -> Any:
    # safe_dump writes only plain types: tuples (env tasks) become lists, numpy scalars numbers,
    # anything else its repr (the JSON config is the faithful record).
    if isinstance(value, Mapping):
        return {str(key): _yaml_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_yaml_plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _policy_name(model: Any) -> str:
    aliases = getattr(model, "policy_aliases", {}) or {}
    policy_class = getattr(model, "policy_class", None)
    for alias, cls in aliases.items():
        if cls is policy_class:
            return str(alias)
    return getattr(policy_class, "__name__", "MlpPolicy")


def push_to_hub(
    model: Any,
    repo_id: str | None,
    env_id: str,
    *,
    n_eval_episodes: int = 10,
    deterministic: bool = True,
    env_kwargs: Mapping[str, Any] | None = None,
    record_replay: bool = True,
    video_length: int = 200,
    tensorboard_dir: str | os.PathLike[str] | None = None,
    commit_message: str | None = None,
    evaluate_fn: Callable[[Any, int], Sequence[float]] | None = None,
    act_fn: Callable[[Any, bool, float], Any] | None = None,
    vec_normalize: Any = None,
    private: bool = False,
    revision: str | None = None,
    seed: int | None = 0,
    tags: Sequence[str] = (),
    token: str | bool | None = None,
    endpoint: str | None = None,
    dataset_repo_id: str | None = None,
    dataset_dir: str | os.PathLike[str] | None = None,
    description: str | None = None,
) -> PushResult:
    """Evaluate an agent, record a replay and make it the repo's whole content in one commit.

    The commit holds ``model.safetensors`` and ``config.json`` (plus ``vec_normalize.json``
    when the agent uses ``VecNormalize``): the pickle-free format :func:`load_from_hub` reads;
    ``results.json`` (huggingface_sb3's fields: ``mean_reward``, ``std_reward``,
    ``is_deterministic``, ``n_eval_episodes``, ``eval_datetime``, ``env_id``, and the
    ``episode_returns``); ``replay.mp4``; ``README.md``, a model card with ``model-index``
    metadata and ``library_name: stable-baselines3``; and, optionally, the TensorBoard logs
    under ``logs/``.

    For SB3 and zoo agents (every subclass of SB3's ``BaseAlgorithm``) it also holds what the
    SB3 ecosystem downloads: SB3's own ``<repo-name>.zip`` (``huggingface_sb3.load_from_hub``
    and rl_zoo3's ``load_from_hub``), ``vec_normalize.pkl`` when the agent uses ``VecNormalize``,
    and rl_zoo3's ``config.yml``, ``args.yml``, ``env_kwargs.yml`` and
    ``train_eval_metrics.zip``. Those files are pickles written by SB3; the zoo's loaders never
    read them unless asked to with ``trust_remote_code=True``. Algorithm Distillation is not an
    SB3 algorithm (SB3 cannot save or load it), so its repo has no ``.zip``.

    The commit *replaces* the repo's files: every file already in the revision that this push
    does not produce (files of an earlier push, or uploaded by another tool) is deleted in the
    same commit, except ``.gitattributes``. The deleted paths are returned in
    :attr:`PushResult.removed` and logged as a warning on the ``zoo.hub.push`` logger. The
    commit is made on top of the head that was listed (``parent_commit``), so a concurrent push
    makes this one fail instead of mixing files of both.

    :param model: an SB3 / sb3-contrib / zoo agent, or Algorithm Distillation.
    :param repo_id: ``"org/name"``; ``None`` builds it with :func:`make_repo_id`.
    :param env_id: the environment the agent plays (recorded in config.json and the card).
    :param n_eval_episodes: evaluation episodes for ``results.json`` and the card.
    :param deterministic: deterministic actions during evaluation and the replay.
    :param env_kwargs: keyword arguments of ``gym.make`` (recorded, used for evaluation);
        default: the model's own ``env_kwargs`` attribute if it has one (AD does).
    :param record_replay: record ``replay.mp4`` (the env must support ``rgb_array``).
    :param video_length: number of steps in the replay.
    :param tensorboard_dir: a TensorBoard log folder uploaded under ``logs/``.
    :param commit_message: commit message (default: ``"Upload <Algo> agent for <env>"``).
    :param evaluate_fn: ``evaluate_fn(model, n) -> returns`` for agents SB3 cannot evaluate.
    :param act_fn: ``act_fn(observation, episode_start, previous_reward) -> action`` for the
        replay (default: ``model.predict``, given ``reward=`` when it accepts one, as AD does).
    :param vec_normalize: a ``VecNormalize`` whose statistics are saved and used to evaluate.
    :param private: create the repo private.
    :param revision: branch to commit to (default: the default branch).
    :param seed: seed of the evaluation and replay environments.
    :param tags: extra model card tags.
    :param token: Hugging Face token (``None``: the saved one).
    :param endpoint: Hub URL (see :func:`hub_endpoint`).
    :param dataset_repo_id: also publish the training data, to this dataset repo, before the
        model (with :func:`~zoo.hub.push_dataset`: Parquet transitions and a dataset card); the
        model card then lists it under ``datasets:`` and shows how to load it. For Algorithm
        Distillation that is its learning-history dataset.
    :param dataset_dir: the dataset folder to publish (default: the folder the model's
        ``dataset`` was loaded from, as AD keeps it).
    :param description: a paragraph placed under the model card's title (e.g. the recipe).
    :return: the commit, its files and the files it removed.
    :raises HubError: the Hub could not be reached or refused the push; the message names the
        endpoint and the repo.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from .card import generate_model_card
    from .serialization import _find_vec_normalize

    algo_name = type(model).__name__
    if env_kwargs is None and isinstance(getattr(model, "env_kwargs", None), Mapping):
        env_kwargs = dict(model.env_kwargs)
    if evaluate_fn is None and not is_sb3_algorithm(model):
        raise ValueError(
            f"model of type {algo_name} is not an SB3 algorithm: pass evaluate_fn=lambda model, n: returns, "
            "e.g. for AD: evaluate_in_context(model, env_id, episodes=n).returns[:, -1]"
        )
    if repo_id is None:
        repo_id = make_repo_id(algo_name, env_id)
    _check_repo_id(repo_id)
    if n_eval_episodes < 1:
        raise ValueError(f"n_eval_episodes={n_eval_episodes} must be at least 1")
    if video_length < 1:
        raise ValueError(f"video_length={video_length} must be at least 1")
    if tensorboard_dir is not None and not Path(tensorboard_dir).is_dir():
        raise ValueError(f"tensorboard_dir={str(tensorboard_dir)!r} is not a directory")
    found_vec_normalize = _find_vec_normalize(model, vec_normalize) if is_sb3_algorithm(model) else None
    data_folder: Path | None = None
    if dataset_repo_id is not None:
        _check_repo_id(dataset_repo_id)
        if dataset_dir is None:
            dataset = getattr(model, "dataset", None)
            dataset_dir = getattr(dataset, "directory", None)
        if dataset_dir is None:
            raise ValueError(
                f"dataset_repo_id={dataset_repo_id!r} needs the dataset's folder: the model has none "
                "(e.g. a loaded model); pass dataset_dir=<the histories' folder>"
            )
        data_folder = Path(dataset_dir)
        if not data_folder.is_dir():
            raise ValueError(f"dataset_dir={str(dataset_dir)!r} is not a directory")
    elif dataset_dir is not None:
        raise ValueError(f"dataset_dir={str(dataset_dir)!r} is given without dataset_repo_id; pass both")
    url = hub_endpoint(endpoint)
    api = HfApi(endpoint=url, token=token)

    def hub_call(what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except HfHubHTTPError as error:
            raise HubError(
                f"push_to_hub: the Hub at {url} refused to {what} for repo_id={repo_id!r}: {_one_line(error)}",
                repo_id=repo_id,
                revision=revision,
            ) from error
        except network_errors() as error:
            raise HubError(
                f"push_to_hub: the Hub at {url} could not be reached to {what} for repo_id={repo_id!r} "
                f"({type(error).__name__}: {_one_line(error)})",
                repo_id=repo_id,
                revision=revision,
            ) from error

    # Before the (slow) evaluation and replay: fail fast when the Hub cannot be reached.
    hub_call("check the repo", lambda: api.repo_exists(repo_id, repo_type="model"))
    dataset_oid = None
    if data_folder is not None and dataset_repo_id is not None:
        from .datasets import push_dataset

        data_repo = dataset_repo_id
        dataset_info = hub_call(
            f"push the dataset {data_repo!r}",
            lambda: push_dataset(
                data_folder,
                data_repo,
                commit_message=f"Upload the training data of {repo_id}",
                private=private,
                token=token,
                endpoint=endpoint,
            ),
        )
        dataset_oid = str(dataset_info.oid)

    with tempfile.TemporaryDirectory(prefix="zoo-push-") as staging:
        folder = Path(staging)
        save_agent(model, folder, env_id=env_id, env_kwargs=env_kwargs, vec_normalize=found_vec_normalize)
        results = evaluate_agent(
            model,
            env_id,
            n_eval_episodes=n_eval_episodes,
            deterministic=deterministic,
            env_kwargs=env_kwargs,
            seed=seed,
            vec_normalize=found_vec_normalize,
            evaluate_fn=evaluate_fn,
        )
        write_json(folder / RESULTS_FILE, results)
        if record_replay:
            from .video import record_video

            record_video(
                model,
                env_id,
                folder / VIDEO_FILE,
                n_steps=video_length,
                env_kwargs=env_kwargs,
                deterministic=deterministic,
                seed=seed,
                vec_normalize=found_vec_normalize,
                act_fn=act_fn,
            )
        hyperparameters = {}
        if (folder / CONFIG_FILE).is_file():
            config = read_agent_config(folder)
            hyperparameters = {
                key: value
                for key, value in config.get("hyperparameters", {}).items()
                if not isinstance(value, dict) and not key.startswith("_")
            }
        sb3_zip = None
        if is_sb3_algorithm(model):
            sb3_zip = sb3_zip_name(repo_id)
            _write_sb3_files(
                model,
                folder,
                repo_id,
                env_id,
                env_kwargs,
                found_vec_normalize,
                results,
                hyperparameters,
                seed,
            )
        readme, _ = generate_model_card(
            algo_name,
            env_id,
            results["mean_reward"],
            results["std_reward"],
            repo_id=repo_id,
            n_eval_episodes=results["n_eval_episodes"],
            deterministic=deterministic,
            hyperparameters=hyperparameters,
            tags=tags,
            has_video=record_replay,
            sb3_zip=sb3_zip,
            description=description,
            dataset_repo_id=dataset_repo_id,
        )
        (folder / README_FILE).write_text(readme, encoding="utf-8")
        if tensorboard_dir is not None:
            shutil.copytree(tensorboard_dir, folder / LOGS_FOLDER, symlinks=False)

        local_files = sorted(
            path.relative_to(folder).as_posix()
            for path in folder.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        )
        hub_call(
            "create the repo",
            lambda: api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True),
        )
        head = hub_call(
            "read the repo", lambda: api.repo_info(repo_id, repo_type="model", revision=revision)
        ).sha
        remote_files = hub_call(
            "list the repo's files", lambda: api.list_repo_files(repo_id, repo_type="model", revision=head)
        )
        removed = sorted(path for path in set(remote_files) - set(local_files) if path not in KEPT_FILES)
        operations: list[Any] = [CommitOperationDelete(path_in_repo=path) for path in removed]
        operations += [
            CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(folder / path)) for path in local_files
        ]
        # create_commit (not upload_folder): with hf_xet installed, upload_folder may split a
        # folder into several commits; one commit keeps every revision self-consistent.
        info = hub_call(
            "commit",
            lambda: api.create_commit(
                repo_id,
                operations,
                commit_message=commit_message or f"Upload {algo_name} agent for {env_id}",
                repo_type="model",
                revision=revision,
                parent_commit=head,
            ),
        )
    if removed:
        logger.warning(
            "push_to_hub removed %d file(s) of earlier pushes from %s: %s",
            len(removed),
            repo_id,
            ", ".join(removed),
        )
    return PushResult(
        repo_id=repo_id,
        revision=revision,
        oid=str(info.oid),
        commit_url=str(info.commit_url),
        uploaded=tuple(local_files),
        removed=tuple(removed),
        dataset_repo_id=dataset_repo_id,
        dataset_oid=dataset_oid,
    )


# --------------------------------------------------------------------------------------------
# Load
# --------------------------------------------------------------------------------------------


def load_from_hub(
    repo_id: str,
    revision: str | None = None,
    device: str = "auto",
    *,
    algo: str | None = None,
    env_id: str | None = None,
    trust_remote_code: bool = False,
    env: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
    force_download: bool = False,
) -> Any:
    """Download an agent and rebuild it from ``config.json`` + ``model.safetensors``.

    Nothing downloaded is unpickled unless ``trust_remote_code=True``: a repo holding only an
    SB3 ``.zip`` (whose attributes are pickled) is refused otherwise, and loaded with a
    warning when trusted.

    :param repo_id: ``"org/name"``.
    :param revision: branch, tag or commit sha (``None``: the default branch).
    :param device: torch device (``"auto"``: CUDA when available).
    :param algo: if given, the repo's algorithm must match (case-insensitive), else ValueError.
    :param env_id: if given, the repo's env id must match, else ValueError.
    :param trust_remote_code: allow loading a pickled SB3 ``.zip``.
    :param env: optional environment to attach (see :func:`zoo.hub.load_agent`).
    :param cache_dir: cache folder (see :func:`hub_cache_dir`).
    :param endpoint: Hub URL (see :func:`hub_endpoint`).
    :param token: Hugging Face token.
    :param force_download: download again even if cached.
    :return: the agent, of the class named in the repo's config.
    """
    model, _ = load_from_hub_with_info(
        repo_id,
        revision,
        device,
        algo=algo,
        env_id=env_id,
        trust_remote_code=trust_remote_code,
        env=env,
        cache_dir=cache_dir,
        endpoint=endpoint,
        token=token,
        force_download=force_download,
    )
    return model


def load_from_hub_with_info(
    repo_id: str,
    revision: str | None = None,
    device: str = "auto",
    *,
    algo: str | None = None,
    env_id: str | None = None,
    trust_remote_code: bool = False,
    env: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
    force_download: bool = False,
    subfolder: str | None = None,
    local_files_only: bool = False,
) -> tuple[Any, HubSnapshot]:
    """Same as :func:`load_from_hub`, also returning where the files came from.

    :param subfolder: load the agent saved in this folder of the repo (teacher repos hold one
        agent per task folder).
    :param local_files_only: use the cache only, as if offline.
    :return: ``(model, snapshot)``; ``snapshot.source`` is ``"hub"`` or ``"cache"`` and
        ``snapshot.commit`` the commit sha.
    """
    prefix = f"{subfolder.strip('/')}/" if subfolder else ""
    snapshot = download_snapshot(
        repo_id,
        revision,
        allow_patterns=[f"{prefix}*"] if prefix else None,
        # the replay, the card and the logs are not needed to act; SB3's pickles (.zip, .pkl)
        # are only fetched below, when the repo has nothing else
        ignore_patterns=[
            f"{prefix}{VIDEO_FILE}",
            f"{prefix}{LOGS_FOLDER}/*",
            "*.mp4",
            "*.gif",
            "*.zip",
            "*.pkl",
        ],
        cache_dir=cache_dir,
        endpoint=endpoint,
        token=token,
        force_download=force_download,
        local_files_only=local_files_only,
    )
    folder = snapshot.path / prefix if prefix else snapshot.path
    try:
        config = read_agent_config(folder)
    except FileNotFoundError:
        config = None
    if config is None:
        # Only now (no config.json): fetch the .zip of the same commit, to load it if trusted or
        # to name it in the refusal. Downloading it runs nothing.
        if snapshot.source == "hub" and not _has_remote_zip(snapshot, prefix, endpoint, token):
            return _load_pickled_zip(folder, snapshot, algo, device, trust_remote_code, env, prefix), snapshot
        snapshot = download_snapshot(
            repo_id,
            snapshot.commit,
            allow_patterns=[f"{prefix}*.zip"],
            cache_dir=cache_dir,
            endpoint=endpoint,
            token=token,
            force_download=force_download,
            local_files_only=local_files_only or snapshot.source == "cache",
        )
        snapshot = HubSnapshot(
            snapshot.path, repo_id, snapshot.repo_type, revision, snapshot.commit, snapshot.source
        )
        folder = snapshot.path / prefix if prefix else snapshot.path
        model = _load_pickled_zip(folder, snapshot, algo, device, trust_remote_code, env, prefix)
        _check_expectations(repo_id, revision, algo, env_id, type(model).__name__, None)
        return model, snapshot
    _check_expectations(repo_id, revision, algo, env_id, str(config.get("algorithm")), config.get("env_id"))
    if (folder / CONFIG_FILE).is_file() or (folder / AGENT_FILE).is_file():
        try:
            return load_agent(folder, device=device, env=env), snapshot
        except FileNotFoundError as error:
            if snapshot.source == "cache":
                # huggingface_hub before 1.0 returns a cached snapshot without checking that
                # every file is there (an earlier download may have failed half-way).
                raise NotCachedError(
                    f"{_describe(repo_id, revision, prefix + WEIGHTS_FILE)} is not (wholly) in the "
                    f"huggingface_hub cache, and the Hub was not asked: {error}",
                    repo_id=repo_id,
                    revision=revision,
                ) from error
            raise HubNotFoundError(
                f"{_describe(repo_id, revision, prefix + WEIGHTS_FILE)}: {error}",
                repo_id=repo_id,
                revision=revision,
            ) from error
    raise HubNotFoundError(
        f"{_describe(repo_id, revision, prefix + CONFIG_FILE)}: file not found",
        repo_id=repo_id,
        revision=revision,
        filename=prefix + CONFIG_FILE,
    )


def _has_remote_zip(
    snapshot: HubSnapshot, prefix: str, endpoint: str | None, token: str | bool | None
) -> bool:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    try:
        files = HfApi(endpoint=hub_endpoint(endpoint), token=token).list_repo_files(
            snapshot.repo_id, repo_type=snapshot.repo_type, revision=snapshot.commit
        )
    except (HfHubHTTPError, *network_errors()):
        return True  # let the download say what is wrong
    return any(
        path.startswith(prefix) and path.endswith(".zip") and "/" not in path[len(prefix) :] for path in files
    )


def _check_expectations(
    repo_id: str,
    revision: str | None,
    algo: str | None,
    env_id: str | None,
    found_algo: str,
    found_env: str | None,
) -> None:
    if algo is not None and algo.lower() != found_algo.lower():
        raise ValueError(f"algo={algo!r}, but {_describe(repo_id, revision)} holds a {found_algo} agent")
    if env_id is not None and env_id != found_env:
        raise ValueError(
            f"env_id={env_id!r}, but {_describe(repo_id, revision)} was trained on {found_env!r}"
        )


def _load_pickled_zip(
    folder: Path,
    snapshot: HubSnapshot,
    algo: str | None,
    device: str,
    trust_remote_code: bool,
    env: Any,
    prefix: str = "",
) -> Any:
    # rl_zoo3 repos also hold train_eval_metrics.zip (not a model); huggingface_sb3 names the
    # model <repo-name>.zip.
    archives = sorted(path for path in folder.glob("*.zip") if path.name != RL_ZOO_METRICS_FILE)
    preferred = folder / f"{snapshot.repo_id.split('/')[1]}.zip"
    if preferred in archives:
        archives.remove(preferred)
        archives.insert(0, preferred)
    if not archives:
        raise HubNotFoundError(
            f"{_describe(snapshot.repo_id, snapshot.revision, prefix + CONFIG_FILE)}: file not found in commit "
            f"{snapshot.commit} (no config.json written by zoo.hub, and no SB3 .zip)",
            repo_id=snapshot.repo_id,
            revision=snapshot.revision,
            filename=prefix + CONFIG_FILE,
        )
    archive = archives[0]
    if not trust_remote_code:
        raise UnsafeFormatError(
            f"{_describe(snapshot.repo_id, snapshot.revision, prefix + archive.name)} is a Stable-Baselines3 .zip, whose "
            "attributes are pickled: loading it can execute arbitrary code. Pass trust_remote_code=True only if "
            "you trust the repo's author.",
            repo_id=snapshot.repo_id,
            revision=snapshot.revision,
            filename=archive.name,
        )
    name = algo or archive.name.split("-")[0]
    cls = _lookup_algorithm_case_insensitive(name)
    warnings.warn(
        f"trust_remote_code=True: unpickling {archive.name} from {snapshot.repo_id!r} (commit {snapshot.commit}) "
        "with SB3's load, which can execute code stored in the file",
        UserWarning,
        stacklevel=3,
    )
    return cls.load(archive, env=env, device=device)


def _lookup_algorithm_case_insensitive(name: str) -> type:
    from .serialization import algorithm_registry

    for candidate, cls in algorithm_registry().items():
        if candidate.lower() == name.lower():
            return cls
    return lookup_algorithm(name)
