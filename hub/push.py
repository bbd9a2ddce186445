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
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .files import atomic_write_text
from .serialization import (
    AGENT_FILE,
    CONFIG_FILE,
    VEC_NORMALIZE_FILE,
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
#: Files ``push_to_hub`` manages: stale copies from an earlier push are deleted in the same commit.
MANAGED_FILES = (
    CONFIG_FILE,
    WEIGHTS_FILE,
    VEC_NORMALIZE_FILE,
    AGENT_FILE,
    RESULTS_FILE,
    VIDEO_FILE,
    README_FILE,
)
ORG_ENV_VAR = "ZOO_HUB_ORG"
_TRUE = {"1", "ON", "YES", "TRUE"}


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

    return constants.is_offline_mode() or os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE


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
    where = f"repo {repo_id!r} at revision {revision or 'main'!r}"
    return f"file {filename!r} of {where}" if filename else where


# --------------------------------------------------------------------------------------------
# Downloading
# --------------------------------------------------------------------------------------------


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

    Online, the revision is first resolved to a commit sha with one API call; files already in
    the cache for that commit are not downloaded again. Offline (``HF_HUB_OFFLINE=1``), or when
    the Hub cannot be reached, the cache alone answers.

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
    import httpx2
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
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
        "cache_dir": cache,
        "allow_patterns": list(allow_patterns) if allow_patterns is not None else None,
        "ignore_patterns": list(ignore_patterns) if ignore_patterns is not None else None,
        "endpoint": endpoint,
        "token": token,
    }
    commit: str | None = None
    offline_reason: str | None = None
    if local_files_only:
        offline_reason = "local_files_only=True"
    elif is_offline():
        offline_reason = "offline mode is on (HF_HUB_OFFLINE)"
    if offline_reason is None:
        try:
            info = HfApi(endpoint=endpoint, token=token).repo_info(
                repo_id, repo_type=repo_type, revision=revision
            )
            commit = info.sha
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
        except (httpx2.ConnectError, httpx2.TimeoutException, OfflineModeIsEnabled) as error:
            offline_reason = f"the Hub at {endpoint} could not be reached ({type(error).__name__})"
        except HfHubHTTPError as error:
            if error.response is None or error.response.status_code < 500:
                raise HubError(
                    f"{_describe(repo_id, revision)}: {error}", repo_id=repo_id, revision=revision
                ) from error
            offline_reason = f"the Hub at {endpoint} answered {error.response.status_code}"

    if offline_reason is None:
        assert commit is not None
        try:
            path = snapshot_download(revision=commit, force_download=force_download, **common)
        except EntryNotFoundError as error:
            raise HubNotFoundError(
                f"{_describe(repo_id, revision)}: {error}", repo_id=repo_id, revision=revision
            ) from error
        except (HfHubHTTPError, httpx2.HTTPError, OSError) as error:
            # Files are written under .incomplete names and renamed when whole, so a failed
            # download leaves nothing that a later load would take for the real file.
            raise HubError(
                f"download of {_describe(repo_id, revision)} (commit {commit}) failed: {error}",
                repo_id=repo_id,
                revision=revision,
            ) from error
        _remember_ref(cache, repo_id, repo_type, revision or "main", commit)
        return HubSnapshot(Path(path), repo_id, repo_type, revision, commit, "hub")

    try:
        path = snapshot_download(revision=revision or "main", local_files_only=True, **common)
    except (LocalEntryNotFoundError, FileNotFoundError) as error:
        raise NotCachedError(
            f"{_describe(repo_id, revision)} is not in the huggingface_hub cache ({cache}) and {offline_reason}",
            repo_id=repo_id,
            revision=revision,
        ) from error
    return HubSnapshot(Path(path), repo_id, repo_type, revision, Path(path).name, "cache")


def _remember_ref(cache: str, repo_id: str, repo_type: str, revision: str, commit: str) -> None:
    # We download by commit sha (resolved once), so huggingface_hub does not record which commit
    # the branch pointed to; record it as it would, so that offline loads of the branch work.
    from huggingface_hub.file_download import repo_folder_name

    if revision == commit:
        return
    ref = Path(cache) / repo_folder_name(repo_id=repo_id, repo_type=repo_type) / "refs" / revision
    if not ref.resolve().is_relative_to(Path(cache).resolve()):
        raise ValueError(f"revision={revision!r} is not a valid branch or tag name")
    ref.parent.mkdir(parents=True, exist_ok=True)
    if not ref.is_file() or ref.read_text() != commit:
        atomic_write_text(ref, commit)


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
    :return: mean and std of the return, the episode returns, settings and the UTC date.
    """
    if n_eval_episodes < 1:
        raise ValueError(f"n_eval_episodes={n_eval_episodes} must be at least 1")
    if evaluate_fn is not None:
        returns = [float(r) for r in evaluate_fn(model, n_eval_episodes)]
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
            episode_returns, _ = evaluate_policy(
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
    return {
        "env_id": env_id,
        "mean_reward": float(np.mean(returns)),
        "std_reward": float(np.std(returns)),
        "n_eval_episodes": len(returns),
        "deterministic": bool(deterministic),
        "episode_returns": returns,
        "eval_datetime": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------------------------
# Push
# --------------------------------------------------------------------------------------------


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
) -> Any:
    """Evaluate an agent, record a replay and upload it with a model card in one commit.

    The repo (created if missing) receives ``model.safetensors``, ``config.json`` (plus
    ``vec_normalize.json`` when the agent uses ``VecNormalize``), ``results.json``,
    ``replay.mp4``, ``README.md`` with ``model-index`` metadata and, optionally, the
    TensorBoard logs under ``logs/``. Files of an earlier push that this one does not
    produce (for instance an old ``vec_normalize.json``) are deleted in the same commit.

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
    :return: huggingface_hub's ``CommitInfo`` (``.oid`` is the new commit sha).
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

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
        )
        (folder / README_FILE).write_text(readme, encoding="utf-8")
        if tensorboard_dir is not None:
            shutil.copytree(tensorboard_dir, folder / LOGS_FOLDER, symlinks=False)

        local_files = sorted(
            path.relative_to(folder).as_posix()
            for path in folder.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        )
        api = HfApi(endpoint=hub_endpoint(endpoint), token=token)
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        remote_files = set(api.list_repo_files(repo_id, repo_type="model", revision=revision))
        stale = [
            path
            for path in remote_files
            if (path in MANAGED_FILES or path.startswith(LOGS_FOLDER + "/")) and path not in local_files
        ]
        operations: list[Any] = [CommitOperationDelete(path_in_repo=path) for path in stale]
        operations += [
            CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(folder / path)) for path in local_files
        ]
        # create_commit (not upload_folder): with hf_xet installed, upload_folder may split a
        # folder into several commits; one commit keeps every revision self-consistent.
        return api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message or f"Upload {algo_name} agent for {env_id}",
            repo_type="model",
            revision=revision,
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
        # the replay, the card and the logs are not needed to act
        ignore_patterns=[f"{prefix}{VIDEO_FILE}", f"{prefix}{LOGS_FOLDER}/*", "*.mp4", "*.gif"],
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
        model = _load_pickled_zip(folder, snapshot, algo, device, trust_remote_code, env, prefix)
        _check_expectations(repo_id, revision, algo, env_id, type(model).__name__, None)
        return model, snapshot
    _check_expectations(repo_id, revision, algo, env_id, str(config.get("algorithm")), config.get("env_id"))
    if (folder / CONFIG_FILE).is_file() or (folder / AGENT_FILE).is_file():
        try:
            return load_agent(folder, device=device, env=env), snapshot
        except FileNotFoundError as error:
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
    archives = sorted(folder.glob("*.zip"))
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
