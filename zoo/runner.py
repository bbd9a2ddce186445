"""The experiment runner behind ``zoo train`` / ``zoo enjoy``: builds objects from a config and calls them.

Run folders are rl-baselines3-zoo's, so ``python -m rl_zoo3.enjoy`` / ``--load-checkpoint`` read
zoo runs and ``zoo enjoy`` reads rl_zoo3's::

    <log_folder>/<algo>/<EnvName>_<n>/
        <EnvName>.zip                      the final agent (SB3 zip)
        <EnvName>/config.yml, args.yml     hyperparameters used, the command's arguments
        rl_model_<steps>_steps.zip         checkpoints, as SB3's CheckpointCallback names them
        rl_model_replay_buffer_<steps>_steps.pkl   the latest checkpoint's replay buffer (off-policy)
        best_model.zip, evaluations.npz    the best evaluated agent, SB3's evaluation record
        0.monitor.csv …                    SB3 Monitor episode logs
        tensorboard/                       TensorBoard events

and the zoo's own files: ``model/`` (the pickle-free agent, safetensors + JSON, loaded first),
``results.json``, ``learning_curve.png`` and ``command.txt``. ``<EnvName>`` is the env id with
``/`` turned into ``-`` (huggingface_sb3's ``EnvironmentName``, which rl_zoo3 uses).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import io
import json
import os
import re
import shlex
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml

from zoo.algos import KICKSTARTED_ALGOS, algo_class, algo_name_of, check_action_space, check_algo
from zoo.config import EnjoyConfig, TrainConfig
from zoo.envs import task_from_json
from zoo.hub.teachers import env_name
from zoo.io import (
    atomic_save_model,
    atomic_save_replay_buffer,
    atomic_write_bytes,
    atomic_write_text,
    atomic_write_yaml,
)
from zoo.params import RUNNER_KEYS, check_hyperparams, load_hyperparams, parse_params

#: SB3's ``CheckpointCallback`` file names (rl_zoo3 gives it ``name_prefix="rl_model"``).
CHECKPOINT_PREFIX = "rl_model"
_CHECKPOINT_ZIP = re.compile(rf"^{CHECKPOINT_PREFIX}_(\d+)_steps\.zip$")
_CHECKPOINT_BUFFER = re.compile(rf"^{CHECKPOINT_PREFIX}_replay_buffer_(\d+)_steps\.pkl$")
#: Where zoo runs before the rl_zoo3 layout kept their one checkpoint (still resumed from).
LEGACY_CHECKPOINT = Path("checkpoints") / "last.zip"
LEGACY_BUFFER = Path("checkpoints") / "replay_buffer.pkl"
EVALUATIONS = "evaluations.npz"
BEST_MODEL = "best_model.zip"
VEC_NORMALIZE = "vecnormalize.pkl"
#: Held (``flock``) by the ``zoo train`` running a folder; the OS drops it when that process dies.
LOCK_FILE = ".train.lock"
#: ``gym.make``'s own keyword arguments, accepted with --env-kwargs besides the env's.
GYM_MAKE_KWARGS = frozenset({"max_episode_steps", "disable_env_checker"})


class RunInUseError(ValueError):
    """A run folder is locked by another ``zoo train``."""


def check_env_id(env_id: str) -> str:
    """Return ``env_id`` if registered, else raise ValueError listing the zoo's environments."""
    import zoo.envs

    if env_id in gym.registry:
        return env_id
    raise ValueError(
        f"--env {env_id!r} is not a registered environment. Zoo environments: {', '.join(zoo.envs.ENV_IDS)} "
        "(any other Gymnasium id works too)"
    )


def params_folder(run_dir: Path) -> Path:
    """``<run>/<EnvName>/``, where rl_zoo3 keeps ``config.yml``, ``args.yml`` and ``vecnormalize.pkl``."""
    return run_dir / run_dir.name.rpartition("_")[0]


def numbered_folders(root: str | Path, prefix: str) -> list[Path]:
    """Existing ``<root>/<prefix>_<n>`` folders, by increasing ``n``."""
    pattern = re.compile(rf"^{re.escape(prefix)}_(\d+)$")
    found = [
        (int(m.group(1)), p) for p in Path(root).glob("*") if p.is_dir() and (m := pattern.match(p.name))
    ]
    return [path for _, path in sorted(found)]


def new_numbered_folder(root: str | Path, prefix: str) -> Path:
    """Create and return ``<root>/<prefix>_<n>`` with the next free ``n`` (from 1).

    Safe against other processes doing the same: the folder is made with ``exist_ok=False``
    and a collision takes the next number.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    folders = numbered_folders(root, prefix)
    index = int(folders[-1].name.rsplit("_", 1)[1]) + 1 if folders else 1
    while True:
        path = root / f"{prefix}_{index}"
        try:
            path.mkdir()
        except FileExistsError:
            index += 1
            continue
        return path


def run_folders(log_folder: str | Path, algo: str, env_id: str) -> list[Path]:
    """Existing run folders of ``algo`` on ``env_id``, oldest first."""
    return numbered_folders(Path(log_folder) / algo, env_name(env_id))


def checkpoint_paths(run_dir: Path, steps: int) -> tuple[Path, Path]:
    """The checkpoint zip and replay buffer of ``steps``, named as SB3's ``CheckpointCallback`` names them."""
    return (
        run_dir / f"{CHECKPOINT_PREFIX}_{steps}_steps.zip",
        run_dir / f"{CHECKPOINT_PREFIX}_replay_buffer_{steps}_steps.pkl",
    )


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """A run folder's checkpoint zips ``(steps, path)``, oldest first."""
    found = [
        (int(match.group(1)), path)
        for path in run_dir.glob(f"{CHECKPOINT_PREFIX}_*_steps.zip")
        if (match := _CHECKPOINT_ZIP.match(path.name)) and path.is_file()
    ]
    return sorted(found)


def _model_files(run_dir: Path) -> list[Path]:
    """Where a run folder may hold its final agent, in the order they are preferred.

    ``model/`` is the zoo's pickle-free copy (safetensors + JSON), ``<EnvName>.zip`` the SB3 zip
    that rl-baselines3-zoo and the zoo write, ``model.zip`` the name zoo runs used before.
    """
    env_prefix = run_dir.name.rpartition("_")[0]
    return [run_dir / "model" / "config.json", run_dir / f"{env_prefix}.zip", run_dir / "model.zip"]


def is_started_run(run_dir: Path) -> bool:
    """A folder that holds a run: its arguments, a checkpoint or a model (an empty one does not)."""
    markers = [params_folder(run_dir) / "args.yml", run_dir / "args.yml", run_dir / LEGACY_CHECKPOINT]
    return bool(checkpoints(run_dir)) or any(path.is_file() for path in markers + _model_files(run_dir))


def is_finished_run(run_dir: Path) -> bool:
    """A folder that holds a trained agent."""
    return any(path.is_file() for path in _model_files(run_dir))


def latest_run(log_folder: str | Path, algo: str, env_id: str, *, finished: bool = False) -> Path:
    """The newest run folder, or a FileNotFoundError saying where it looked.

    Folders that hold no run (an empty stub left by an older zoo, a folder another ``zoo train``
    has just made) are skipped, so they never hide the good run before them. With
    ``finished``, only folders holding a trained agent count (``zoo enjoy`` / ``zoo push``), so
    a run still in progress does not hide the last finished one either.
    """
    accept = is_finished_run if finished else is_started_run
    folders = [folder for folder in run_folders(log_folder, algo, env_id) if accept(folder)]
    if not folders:
        kind = "finished run" if finished else "run"
        raise FileNotFoundError(
            f"no {kind} of --algo {algo} on --env {env_id} under {Path(log_folder) / algo}"
        )
    return folders[-1]


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir``'s lock while a ``zoo train`` writes to it.

    An OS lock (``fcntl.flock``, non-blocking) on ``.train.lock``: a second ``zoo train`` of the
    same folder is refused at once, and the lock goes away with the process that held it, so a
    crashed run never leaves a stale lock behind.

    :raises RunInUseError: naming the folder (and the holder's process id when known).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock, as before
        yield
        return
    path = run_dir / LOCK_FILE
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            by = f" (process {holder})" if holder.isdigit() else ""
            raise RunInUseError(
                f"run folder {run_dir} is in use: another zoo train is running it{by}; wait for it to "
                "finish or stop it, then resume"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _constructor_parameters(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for parameter in inspect.signature(init).parameters.values():
            if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                names.add(parameter.name)
    return names - {"self", "env"}


def _resolve_special_values(hyperparams: dict[str, Any]) -> dict[str, Any]:
    resolved = dict(hyperparams)
    if resolved.get("replay_buffer_class") == "HerReplayBuffer":
        from stable_baselines3 import HerReplayBuffer

        resolved["replay_buffer_class"] = HerReplayBuffer
    for key in ("learning_rate", "clip_range"):
        value = resolved.get(key)
        if isinstance(value, str):
            from zoo.agents.common.schedules import ExponentialSchedule, parse_schedule

            # rl-baselines3-zoo's "lin_3e-4" (linear to 0) and the zoo's "lin_a_b" / constants.
            schedule = parse_schedule(value, name=key)
            if isinstance(schedule, ExponentialSchedule):
                raise ValueError(
                    f"{key}={value!r}: exp_ schedules are for kickstart_coef; use a number or lin_"
                )
            resolved[key] = schedule
    return resolved


def check_env_kwargs(env_id: str, env_kwargs: dict[str, Any]) -> None:
    """Refuse ``--env-kwargs`` keys the env's constructor does not take, listing those it takes."""
    if not env_kwargs:
        return
    from gymnasium.envs.registration import load_env_creator

    spec = gym.spec(env_id)
    creator = spec.entry_point if callable(spec.entry_point) else load_env_creator(spec.entry_point)
    try:
        parameters = inspect.signature(creator).parameters.values()
    except (TypeError, ValueError):  # a builtin or C entry point: gym.make will say
        return
    if any(parameter.kind == parameter.VAR_KEYWORD for parameter in parameters):
        return
    accepted = {
        parameter.name
        for parameter in parameters
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    } | GYM_MAKE_KWARGS
    unknown = sorted(set(env_kwargs) - accepted)
    if unknown:
        name = getattr(creator, "__name__", str(spec.entry_point))
        raise ValueError(
            f"--env-kwargs {', '.join(unknown)}: not an argument of --env {env_id} ({name}); "
            f"it takes: {', '.join(sorted(accepted))}"
        )


def _check_device_available(device: str) -> None:
    """A CUDA / MPS device asked for by name must exist here (``auto`` falls back to the CPU)."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA device is available on this machine; use auto or cpu")
    if device.startswith("cuda:") and int(device.partition(":")[2]) >= torch.cuda.device_count():
        raise ValueError(
            f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s), numbered from 0"
        )
    if device == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--device mps: MPS is not available on this machine; use auto or cpu")


def resolve_vec_env(env_id: str, vec_env: str) -> str:
    """``--vec-env auto`` -> ``native`` when ``env_id`` registers a numpy vector env, else ``dummy``."""
    if vec_env not in ("auto", "native", "dummy"):
        raise ValueError(f"--vec-env {vec_env!r} is not allowed; use auto, native or dummy")
    if vec_env == "auto":
        return "native" if gym.spec(env_id).vector_entry_point is not None else "dummy"
    return vec_env


def make_training_env(
    env_id: str,
    n_envs: int,
    seed: int,
    vec_env: str,
    env_kwargs: dict[str, Any],
    monitor_dir: Path | None = None,
    append: bool = False,
) -> Any:
    """An SB3 VecEnv with episode monitoring: the zoo's native vector env when asked and available.

    With ``monitor_dir``, episodes are logged to SB3 Monitor files there as rl_zoo3 does
    (``0.monitor.csv``, one per env with DummyVecEnv, one for a native vector env); ``append``
    continues existing files (a resumed run) instead of starting them again.
    """
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.monitor import ResultsWriter
    from stable_baselines3.common.vec_env import VecMonitor

    spec = gym.spec(env_id)
    if vec_env == "native" and spec.vector_entry_point is not None:
        from zoo.envs.sb3 import SB3VecEnv

        native = gym.make_vec(env_id, num_envs=n_envs, **env_kwargs)
        env = VecMonitor(SB3VecEnv(native))
        if monitor_dir is not None:
            # VecMonitor does not pass SB3's override_existing on; its writer is set here instead.
            env.results_writer = ResultsWriter(
                str(monitor_dir / "0"),
                header={"t_start": env.t_start, "env_id": env_id},
                override_existing=not append,
            )
        env.seed(seed)
        return env
    if vec_env not in ("native", "dummy"):
        raise ValueError(f"--vec-env {vec_env!r} is not allowed; use auto, native or dummy")
    return make_vec_env(
        env_id,
        n_envs=n_envs,
        seed=seed,
        env_kwargs=env_kwargs,
        monitor_dir=None if monitor_dir is None else str(monitor_dir),
        monitor_kwargs={"override_existing": not append},
    )


def _make_env_or_explain(
    env_id: str,
    n_envs: int,
    seed: int,
    vec_env: str,
    env_kwargs: dict[str, Any],
    monitor_dir: Path | None = None,
    append: bool = False,
) -> Any:
    try:
        return make_training_env(env_id, n_envs, seed, vec_env, env_kwargs, monitor_dir, append)
    except TypeError as error:  # an argument the (vector) env refuses that its signature did not show
        raise ValueError(
            f"--env {env_id} could not be made with --env-kwargs {env_kwargs}: {error}"
        ) from error


def _checkpoint_callback(run_dir: Path, every: int, n_envs: int) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    class AtomicCheckpoint(BaseCallback):
        """SB3's ``CheckpointCallback`` files (``rl_model_<steps>_steps.zip``), each written atomically."""

        def __init__(self) -> None:
            super().__init__()
            self.every = max(every // n_envs, 1)

        def _on_step(self) -> bool:
            if self.n_calls % self.every == 0:
                save_checkpoint(self.model, run_dir)
            return True

    return AtomicCheckpoint()


def previous_evaluations(run_dir: Path, up_to: int) -> dict[str, np.ndarray]:
    """The ``evaluations.npz`` arrays of the earlier segments, up to the checkpoint's step count.

    Evaluations after ``up_to`` (made after the last checkpoint by a run that then stopped) are
    dropped: the resumed run redoes those steps, and the curve's timesteps stay increasing.
    """
    path = run_dir / EVALUATIONS
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    if not {"timesteps", "results", "ep_lengths"} <= set(arrays):
        raise ValueError(
            f"--resume: {path} lacks SB3's timesteps/results/ep_lengths arrays; move it away to resume "
            "(the resumed run would otherwise overwrite it)"
        )
    keep = np.asarray(arrays["timesteps"]) <= up_to
    return {name: values[keep] for name, values in arrays.items() if len(values) == len(keep)}


def _evaluation_callback(
    eval_env: Any, run_dir: Path, every: int, n_episodes: int, previous: dict[str, np.ndarray]
) -> Any:
    from stable_baselines3.common.callbacks import EvalCallback

    class ContinuingEvaluation(EvalCallback):
        """SB3's ``EvalCallback`` whose ``evaluations.npz`` continues the earlier segments' curve.

        SB3 keeps its records only when ``log_path`` is set and then writes them in place with
        ``np.savez``; here ``log_path`` is an in-memory buffer during each step, and the buffer
        is written with the shared atomic writer. ``best_model.zip`` (rl_zoo3's ``--load-best``)
        is written the same way when an evaluation beats every earlier one, the earlier
        segments' included.
        """

        def __init__(self) -> None:
            super().__init__(eval_env, eval_freq=every, n_eval_episodes=n_episodes, verbose=0)
            self.target = run_dir / EVALUATIONS
            if previous:
                self.evaluations_timesteps = [int(step) for step in previous["timesteps"]]
                self.evaluations_results = previous["results"].tolist()
                self.evaluations_length = previous["ep_lengths"].tolist()
                if "successes" in previous:
                    self.evaluations_successes = previous["successes"].tolist()
                if len(previous["results"]):
                    self.best_mean_reward = float(np.max(np.mean(previous["results"], axis=-1)))

        def _on_step(self) -> bool:
            buffer = io.BytesIO()
            self.log_path = buffer  # type: ignore[assignment]
            best_before = self.best_mean_reward
            try:
                keep_going = super()._on_step()
            finally:
                self.log_path = None
            if buffer.tell() > 0:
                atomic_write_bytes(self.target, buffer.getvalue())
            if self.best_mean_reward > best_before:
                atomic_save_model(self.model, run_dir / BEST_MODEL)
            return keep_going

    return ContinuingEvaluation()


def save_checkpoint(model: Any, run_dir: Path) -> Path:
    """``rl_model_<steps>_steps.zip`` (and the replay buffer), each written atomically.

    The zip is written last: a checkpoint exists once its zip does. Every checkpoint zip is kept
    (rl_zoo3's ``--load-checkpoint <steps>``); only the newest replay buffer is, since a buffer
    can be gigabytes and ``--resume`` needs only the last one.
    """
    steps = int(model.num_timesteps)
    model_path, buffer_path = checkpoint_paths(run_dir, steps)
    has_buffer = getattr(model, "replay_buffer", None) is not None
    if has_buffer:
        atomic_save_replay_buffer(model, buffer_path)
    atomic_save_model(model, model_path)
    if has_buffer:  # only now: until the new zip exists, the older checkpoint is the one to resume
        for older in run_dir.glob(f"{CHECKPOINT_PREFIX}_replay_buffer_*_steps.pkl"):
            if older != buffer_path and _CHECKPOINT_BUFFER.match(older.name):
                older.unlink(missing_ok=True)
    return model_path


def _teacher_kwargs(config: TrainConfig, env_kwargs: dict[str, Any]) -> dict[str, Any]:
    if config.teacher is None:
        return {}
    if config.algo not in KICKSTARTED_ALGOS:
        raise ValueError(
            f"--teacher is only taken by kickstarted algorithms ({', '.join(sorted(KICKSTARTED_ALGOS))}), "
            f"not by --algo {config.algo}"
        )
    if config.teacher == "bundled":
        from zoo.hub import load_teacher

        # The zoo's pretrained teacher for this env and the task given with --env-kwargs task:[…].
        return {"teacher": load_teacher(config.env, task=env_kwargs.get("task"), device="cpu")}
    return {"teacher": config.teacher}


@dataclasses.dataclass
class TrainingPlan:
    """Everything :func:`train` needs, checked before any folder, env or model is made."""

    cls: Any
    """The agent class."""
    hyperparams: dict[str, Any]
    """The agent's constructor arguments (plain YAML values)."""
    agent_kwargs: dict[str, Any]
    """The same with schedules and classes resolved, and the teacher."""
    env_kwargs: dict[str, Any]
    """Arguments of ``gym.make`` (the file's, then --env-kwargs)."""
    n_timesteps: int
    """Training budget."""
    n_envs: int
    """Parallel training environments."""
    vec_env: str
    """``native`` or ``dummy`` (``--vec-env auto`` resolved)."""
    saved_hyperparams: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The hyperparameter entry as used (file, then --params), runner keys included: config.yml."""
    action_noise: tuple[str, float] | None = None
    """rl_zoo3's ``noise_type`` and ``noise_std`` (exploration noise of off-policy agents), if given."""


#: rl_zoo3's ``noise_type`` values and the SB3 noise classes they name.
NOISE_TYPES = ("normal", "ornstein-uhlenbeck")


def _action_noise_spec(hyperparams: dict[str, Any], source: str) -> tuple[str, float] | None:
    """Pop rl_zoo3's ``noise_type`` / ``noise_std`` (checked) from the hyperparameters."""
    noise_type = hyperparams.pop("noise_type", None)
    noise_std = hyperparams.pop("noise_std", None)
    if noise_type is None:
        if noise_std is not None:
            raise ValueError(
                f"{source}: noise_std={noise_std!r} needs a noise_type ({', '.join(NOISE_TYPES)})"
            )
        return None
    if noise_type not in NOISE_TYPES:
        raise ValueError(
            f"{source}: noise_type={noise_type!r} is not allowed; use one of {', '.join(NOISE_TYPES)}"
        )
    if isinstance(noise_std, bool) or not isinstance(noise_std, int | float) or not noise_std >= 0:
        raise ValueError(
            f"{source}: noise_std={noise_std!r} must be a number >= 0 with noise_type={noise_type!r}"
        )
    return str(noise_type), float(noise_std)


def _make_action_noise(spec: tuple[str, float] | None, env: Any) -> dict[str, Any]:
    """``{"action_noise": ...}`` for an SB3 constructor, as rl_zoo3 builds it from noise_type/noise_std."""
    if spec is None:
        return {}
    from gymnasium import spaces
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    if not isinstance(env.action_space, spaces.Box):
        raise ValueError(
            f"noise_type={spec[0]!r} needs a continuous (Box) action space; the env has {env.action_space}"
        )
    shape = env.action_space.shape
    noise_class = NormalActionNoise if spec[0] == "normal" else OrnsteinUhlenbeckActionNoise
    return {"action_noise": noise_class(mean=np.zeros(shape), sigma=spec[1] * np.ones(shape))}


def plan_training(config: TrainConfig) -> TrainingPlan:
    """Check every input of ``zoo train`` (flags, hyperparameters, env arguments, teacher).

    :raises ValueError: (or FileNotFoundError / ImportError) naming the flag and value at fault.
    """
    config.validate()
    check_algo(config.algo)
    check_env_id(config.env)
    env_name(config.env)
    _check_device_available(config.device)
    cls = algo_class(config.algo)
    overrides = parse_params(config.params)
    hyperparams = check_hyperparams(
        {**load_hyperparams(config.algo, config.env), **overrides},
        overrides=overrides.keys(),
        source=f"zoo/hyperparams/{config.algo}.yml ({config.env})",
    )
    saved_hyperparams = _plain(copy.deepcopy(hyperparams))
    env_kwargs = dict(hyperparams.pop("env_kwargs", None) or {})
    env_kwargs.update(parse_params(config.env_kwargs, flag="--env-kwargs"))
    if "task" in env_kwargs:
        env_kwargs["task"] = task_from_json(env_kwargs["task"])
    check_env_kwargs(config.env, env_kwargs)
    n_timesteps = int(config.n_timesteps or hyperparams.get("n_timesteps", 100_000))
    n_envs = int(hyperparams.get("n_envs", 1))
    vec_env = resolve_vec_env(config.env, config.vec_env)
    for key in RUNNER_KEYS:
        hyperparams.pop(key, None)
    action_noise = _action_noise_spec(
        hyperparams, f"zoo/hyperparams/{config.algo}.yml ({config.env}) / --params"
    )
    allowed = _constructor_parameters(cls)
    unknown = sorted(set(hyperparams) - allowed)
    if unknown:
        raise ValueError(
            f"--params / hyperparameter key(s) {unknown} are not arguments of {cls.__name__}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    # A deep copy: constructors fill in their policy_kwargs (A2C adds its RMSprop class), and
    # config.yml must record what was given.
    agent_kwargs = _resolve_special_values(copy.deepcopy(hyperparams))
    agent_kwargs.update(_teacher_kwargs(config, env_kwargs))
    return TrainingPlan(
        cls,
        hyperparams,
        agent_kwargs,
        env_kwargs,
        n_timesteps,
        n_envs,
        vec_env,
        saved_hyperparams,
        action_noise,
    )


def _build_model(config: TrainConfig, plan: TrainingPlan, env: Any) -> Any:
    """The new agent, built before its run folder exists (TensorBoard's folder is set once it does)."""
    try:
        return plan.cls(
            env=env,
            seed=config.seed,
            device=config.device,
            tensorboard_log=None,
            verbose=config.verbose,
            **_make_action_noise(plan.action_noise, env),
            **plan.agent_kwargs,
        )
    except (AssertionError, TypeError) as error:  # SB3 asserts spaces; a policy_kwargs key it lacks
        raise ValueError(
            f"--algo {config.algo} could not be built on --env {config.env} with these hyperparameters: {error}"
        ) from error


def run_arguments(config: TrainConfig, plan: TrainingPlan) -> dict[str, Any]:
    """``args.yml``: the command's arguments, sorted as rl_zoo3 writes them.

    ``env_kwargs`` holds the env arguments used (a mapping, or null), as in rl_zoo3's ``args.yml``,
    whose ``enjoy`` passes it to ``gym.make``; the ``--env-kwargs`` pairs as typed are in command.txt.
    """
    arguments = dataclasses.asdict(config)
    arguments["env_kwargs"] = _plain(plan.env_kwargs) or None
    arguments["vec_env"] = plan.vec_env
    return dict(sorted(arguments.items()))


def _write_run_files(
    run_dir: Path, config: TrainConfig, plan: TrainingPlan, command: list[str] | None
) -> None:
    """``<EnvName>/config.yml``, command.txt, then ``<EnvName>/args.yml``, which marks the folder as a run."""
    params = params_folder(run_dir)
    params.mkdir(exist_ok=True)
    atomic_write_yaml(params / "config.yml", dict(sorted(plan.saved_hyperparams.items())))
    atomic_write_text(run_dir / "command.txt", _command_line(command) + "\n")
    atomic_write_yaml(params / "args.yml", run_arguments(config, plan))


def _command_line(command: list[str] | None) -> str:
    return shlex.join(command if command is not None else sys.argv)


def train(config: TrainConfig, command: list[str] | None = None) -> Path:
    """Train ``config.algo`` on ``config.env``; returns the run folder.

    Every input is checked, the envs and the agent are built, and only then is a run folder
    made: a run that fails its checks leaves nothing behind. The folder is locked while the
    run writes to it (see :func:`run_lock`); ``--resume`` continues the latest run's newest
    checkpoint, appends to its ``evaluations.npz`` and Monitor files.
    """
    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.evaluation import evaluate_policy

    plan = plan_training(config)
    if config.num_threads != -1:
        import torch

        torch.set_num_threads(config.num_threads)
    resume_dir = latest_run(config.log_folder, config.algo, config.env) if config.resume else None
    make_env = _make_env_or_explain
    with contextlib.ExitStack() as stack:
        if resume_dir is not None:
            stack.enter_context(run_lock(resume_dir))
            env = make_env(
                config.env, plan.n_envs, config.seed, plan.vec_env, plan.env_kwargs, resume_dir, True
            )
        else:
            # Unmonitored: its Monitor files would need the run folder, made once all checks pass.
            env = make_env(config.env, plan.n_envs, config.seed, plan.vec_env, plan.env_kwargs)
        envs = [env]
        stack.callback(lambda: [each.close() for each in envs])
        check_action_space(config.algo, config.env, env.action_space)
        eval_env = make_env(config.env, 1, config.seed + 10_000, plan.vec_env, plan.env_kwargs)
        stack.callback(eval_env.close)

        if resume_dir is not None:
            run_dir = resume_dir
            model = _load_checkpoint(plan.cls, run_dir, env, config, plan.agent_kwargs)
            previous = previous_evaluations(run_dir, int(model.num_timesteps))
            _check_same_evaluation_size(run_dir, previous, config.eval_episodes)
            command_file = run_dir / "command.txt"
            earlier = command_file.read_text() if command_file.is_file() else ""
            atomic_write_text(command_file, earlier + _command_line(command) + "\n")
        else:
            model = _build_model(config, plan, env)
            run_dir = new_numbered_folder(Path(config.log_folder) / config.algo, env_name(config.env))
            try:
                # Locked before args.yml makes it a run that a --resume elsewhere could pick.
                stack.enter_context(run_lock(run_dir))
                _write_run_files(run_dir, config, plan, command)
                monitored = make_env(
                    config.env, plan.n_envs, config.seed, plan.vec_env, plan.env_kwargs, run_dir
                )
                envs.append(monitored)
                model.set_env(monitored)
            except BaseException:
                shutil.rmtree(run_dir, ignore_errors=True)
                raise
            envs.remove(env)
            env.close()
            model.tensorboard_log = str(run_dir / "tensorboard")
            previous = {}

        eval_every = config.eval_freq or max(plan.n_timesteps // 10, 1)
        checkpoint_every = config.checkpoint_freq or max(plan.n_timesteps // 10, 1)
        callbacks = CallbackList(
            [
                _evaluation_callback(
                    eval_env, run_dir, max(eval_every // plan.n_envs, 1), config.eval_episodes, previous
                ),
                _checkpoint_callback(run_dir, checkpoint_every, plan.n_envs),
            ]
        )
        remaining = plan.n_timesteps - int(model.num_timesteps)
        started = time.perf_counter()
        if remaining > 0:
            try:
                model.learn(
                    total_timesteps=remaining,
                    callback=callbacks,
                    progress_bar=config.progress_bar,
                    tb_log_name="run",
                    reset_num_timesteps=resume_dir is None,
                )
            except Exception:
                if resume_dir is None and not checkpoints(run_dir):
                    # Failed at its first steps (a hyperparameter SB3 only trips over in learn):
                    # nothing worth resuming, and the folder would hide the run before it.
                    shutil.rmtree(run_dir, ignore_errors=True)
                raise
        elapsed = time.perf_counter() - started
        save_checkpoint(model, run_dir)
        atomic_save_model(model, run_dir / f"{env_name(config.env)}.zip")
        _save_safetensors(model, run_dir / "model", config.env, plan.env_kwargs)

        mean_return, std_return = evaluate_policy(model, eval_env, n_eval_episodes=config.eval_episodes)
        results = {
            "env_id": config.env,
            "algo": config.algo,
            "num_timesteps": int(model.num_timesteps),
            "mean_return": clean_number(mean_return),
            "std_return": clean_number(std_return),
            "eval_episodes": config.eval_episodes,
            "train_seconds": round(elapsed, 3),
        }
        atomic_write_text(run_dir / "results.json", json.dumps(results, indent=2) + "\n")
        evaluations = run_dir / EVALUATIONS
        if evaluations.is_file():
            from zoo.plots import plot_evaluations

            plot_evaluations(evaluations, run_dir / "learning_curve.png", f"{config.algo} on {config.env}")
    return run_dir


def clean_number(value: Any, digits: int = 6) -> float:
    """A float without float32 noise (``0.20000000298023224`` -> ``0.2``): ``digits`` decimals."""
    return round(float(value), digits)


def _check_same_evaluation_size(run_dir: Path, previous: dict[str, np.ndarray], eval_episodes: int) -> None:
    """One evaluations.npz holds one number of episodes per evaluation (SB3's results matrix)."""
    if not previous or previous["results"].ndim != 2 or len(previous["results"]) == 0:
        return
    earlier = previous["results"].shape[1]
    if earlier != eval_episodes:
        raise ValueError(
            f"--eval-episodes {eval_episodes}: {run_dir} evaluated {earlier} episodes per evaluation "
            f"so far ({EVALUATIONS}); resume it with --eval-episodes {earlier}"
        )


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _save_safetensors(model: Any, folder: Path, env_id: str, env_kwargs: dict[str, Any]) -> None:
    try:
        from zoo.hub import save_agent
    except ImportError:  # the hub module is optional for training
        return
    try:
        save_agent(model, folder, env_id=env_id, env_kwargs=_plain(env_kwargs) or None)
    except ValueError:  # env_kwargs that are not plain JSON: record the env id alone
        save_agent(model, folder, env_id=env_id)


def latest_checkpoint(run_dir: Path) -> tuple[Path, Path | None] | None:
    """The newest checkpoint zip of a run folder and its replay buffer (if kept), or None.

    ``rl_model_<steps>_steps.zip`` as the zoo and rl_zoo3 (``--save-freq``) write them, else the
    ``checkpoints/last.zip`` of zoo runs made before the rl_zoo3 layout.
    """
    found = checkpoints(run_dir)
    if found:
        steps, path = found[-1]
        buffer = checkpoint_paths(run_dir, steps)[1]
        return path, buffer if buffer.is_file() else None
    legacy = run_dir / LEGACY_CHECKPOINT
    if legacy.is_file():
        buffer = run_dir / LEGACY_BUFFER
        return legacy, buffer if buffer.is_file() else None
    return None


def _load_checkpoint(
    cls: Any, run_dir: Path, env: Any, config: TrainConfig, agent_kwargs: dict[str, Any]
) -> Any:
    found = latest_checkpoint(run_dir)
    if found is None:
        raise FileNotFoundError(
            f"--resume: {run_dir} has no checkpoint ({CHECKPOINT_PREFIX}_<steps>_steps.zip is missing)"
        )
    checkpoint, buffer = found
    try:
        model = cls.load(checkpoint, env=env, device=config.device)
    except Exception as error:
        raise ValueError(f"--resume: the checkpoint {checkpoint} could not be loaded: {error}") from error
    if buffer is not None and getattr(model, "replay_buffer", None) is not None:
        model.load_replay_buffer(buffer)
    if "teacher" in agent_kwargs and hasattr(model, "set_teacher"):
        model.set_teacher(agent_kwargs["teacher"])
    return model


def _selects_a_zip(config: Any) -> bool:
    """Whether ``zoo enjoy`` was asked for the best model or a checkpoint rather than the final agent."""
    return bool(
        getattr(config, "load_best", False)
        or getattr(config, "load_checkpoint", None) is not None
        or getattr(config, "load_last_checkpoint", False)
    )


def _run_folder_of(config: Any) -> Path:
    """``--run``, or the newest run of ``--algo`` on ``--env`` (a finished one unless a checkpoint is asked for)."""
    if config.run:
        run_dir = Path(config.run)
        if not run_dir.is_dir():
            raise FileNotFoundError(f"--run {run_dir} is not a folder")
        return run_dir
    return latest_run(config.log_folder, config.algo, config.env, finished=not _selects_a_zip(config))


class _RunYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, plus what rl_zoo3's run files hold, without running anything.

    rl_zoo3 dumps ``config.yml`` / ``args.yml`` as ``OrderedDict`` objects (YAML's
    ``!!python/object/apply:collections.OrderedDict`` with a list of pairs): read as a dict.
    ``!!python/tuple`` is read as a tuple; any other Python tag (a class, an object) as None:
    nothing is imported or called.
    """


def _ordered_dict(loader: yaml.SafeLoader, node: yaml.Node) -> dict[Any, Any]:
    if isinstance(node, yaml.SequenceNode):
        arguments = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):  # the long form, with args: / state:
        arguments = loader.construct_mapping(node, deep=True).get("args", [])
    else:
        return {}
    pairs = arguments[0] if arguments else []
    return {pair[0]: pair[1] for pair in pairs if isinstance(pair, list | tuple) and len(pair) == 2}


def _tuple(loader: yaml.SafeLoader, node: yaml.Node) -> tuple[Any, ...]:
    return tuple(loader.construct_sequence(node, deep=True))  # type: ignore[arg-type]


def _python_object(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> None:
    return None


_RunYamlLoader.add_constructor("tag:yaml.org,2002:python/object/apply:collections.OrderedDict", _ordered_dict)
_RunYamlLoader.add_constructor("tag:yaml.org,2002:python/tuple", _tuple)
_RunYamlLoader.add_multi_constructor("tag:yaml.org,2002:python/", _python_object)


def read_run_yaml(path: Path) -> dict[str, Any]:
    """A run file's mapping (the zoo's plain YAML or rl_zoo3's OrderedDict dump), or {} (absent, not a mapping)."""
    if not path.is_file():
        return {}
    try:
        data = yaml.load(path.read_text(), Loader=_RunYamlLoader)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def recorded_run(run_dir: Path) -> dict[str, str]:
    """The env id and algo a run folder says it was trained with (``<EnvName>/args.yml``, older zoo files)."""
    recorded: dict[str, str] = {}
    for folder in (params_folder(run_dir), run_dir):
        args = read_run_yaml(folder / "args.yml")
        config = read_run_yaml(folder / "config.yml")
        for key, value in (
            ("env", args.get("env")),
            ("env", config.get("env_id")),
            ("algo", args.get("algo")),
        ):
            if isinstance(value, str):
                recorded.setdefault(key, value)
    return recorded


def _check_run_matches(run_dir: Path, algo: str, env_id: str) -> None:
    """Refuse a run folder trained on another env (or with another algo) than the flags say."""
    recorded = recorded_run(run_dir)
    if recorded.get("env", env_id) != env_id:
        raise ValueError(
            f"--run {run_dir} is a run on --env {recorded['env']}, not on --env {env_id}; "
            f"pass --env {recorded['env']} or another run folder"
        )
    if recorded.get("algo", algo) != algo:
        raise ValueError(
            f"--run {run_dir} was trained with --algo {recorded['algo']}, not --algo {algo}; "
            f"pass --algo {recorded['algo']} or another run folder"
        )


def selected_zip(run_dir: Path, config: Any) -> Path | None:
    """The zip ``--load-best`` / ``--load-checkpoint N`` / ``--load-last-checkpoint`` name, as rl_zoo3's enjoy reads them.

    None without those flags (the final agent).

    :raises FileNotFoundError: naming the file, and the checkpoints the run has.
    """
    if not _selects_a_zip(config):
        return None
    if getattr(config, "load_best", False):
        path, flag = run_dir / BEST_MODEL, "--load-best"
    elif getattr(config, "load_checkpoint", None) is not None:
        path = checkpoint_paths(run_dir, int(config.load_checkpoint))[0]
        flag = f"--load-checkpoint {config.load_checkpoint}"
    else:
        found = checkpoints(run_dir)
        if not found:
            raise FileNotFoundError(
                f"--load-last-checkpoint: {run_dir} has no {CHECKPOINT_PREFIX}_<steps>_steps.zip"
            )
        return found[-1][1]
    if not path.is_file():
        steps = ", ".join(str(step) for step, _ in checkpoints(run_dir)) or "none"
        raise FileNotFoundError(f"{flag}: {path} does not exist (checkpoints of this run, in steps: {steps})")
    return path


def load_run_agent(run_dir: Path, algo: str, env_id: str, device: str, zip_path: Path | None = None) -> Any:
    """The trained agent of a run folder: its pickle-free ``model/`` when present, else the SB3 zip.

    Reads zoo runs and rl-baselines3-zoo runs (``<EnvName>.zip``) alike.

    :param zip_path: load this zip of the run instead (a checkpoint, ``best_model.zip``).
    :raises ValueError: if the folder is a run of another env or algo.
    :raises FileNotFoundError: if it holds no agent.
    """
    _check_run_matches(run_dir, algo, env_id)
    if zip_path is not None:
        return algo_class(algo).load(zip_path, device=device)
    safe, *zips = _model_files(run_dir)
    if safe.is_file():
        from zoo.hub import load_agent

        model = load_agent(safe.parent, device=device)
        if algo_name_of(model) != algo:
            raise ValueError(
                f"--run {run_dir} holds a {type(model).__name__} agent, not one of --algo {algo}"
            )
        return model
    for path in zips:
        if path.is_file():
            return algo_class(algo).load(path, device=device)
    others = [
        flag
        for flag, there in (
            ("--load-best", (run_dir / BEST_MODEL).is_file()),
            ("--load-last-checkpoint", bool(checkpoints(run_dir))),
        )
        if there
    ]
    hint = f" (it has {' and '.join(others)} to offer)" if others else ""
    raise FileNotFoundError(
        f"{run_dir} has no model/ or {zips[0].name}{hint}; train it to the end first with zoo train"
    )


def load_run_model(config: EnjoyConfig) -> Any:
    """The trained agent of a run folder (or Hub repo) for ``zoo enjoy``."""
    if config.repo is not None:
        from zoo.hub import load_from_hub

        return load_from_hub(config.repo, device=config.device, trust_remote_code=config.trust_remote_code)
    run_dir = _run_folder_of(config)
    return load_run_agent(run_dir, config.algo, config.env, config.device, selected_zip(run_dir, config))


def run_env_kwargs(run_dir: Path) -> dict[str, Any]:
    """The env arguments a run was trained with, e.g. its task.

    rl_zoo3's order: ``<EnvName>/config.yml``'s ``env_kwargs``, replaced by ``args.yml``'s when
    set; then ``env_kwargs.yml`` of zoo runs made before the rl_zoo3 layout.
    """
    params = params_folder(run_dir)
    stored = read_run_yaml(params / "config.yml").get("env_kwargs") or {}
    from_args = read_run_yaml(params / "args.yml").get("env_kwargs")
    if isinstance(from_args, dict):
        stored = from_args
    if not stored:
        stored = read_run_yaml(run_dir / "env_kwargs.yml")
    if not isinstance(stored, dict):
        return {}
    return {key: task_from_json(value) if key == "task" else value for key, value in stored.items()}


def _run_env_kwargs(config: EnjoyConfig) -> dict[str, Any]:
    if config.repo is not None:
        return {}
    return run_env_kwargs(_run_folder_of(config))


def _normalized(env: Any, config: EnjoyConfig) -> Any:
    """``env`` with the run's VecNormalize statistics (``<EnvName>/vecnormalize.pkl``), frozen, if it has them."""
    if config.repo is not None:
        return env
    path = params_folder(_run_folder_of(config)) / VEC_NORMALIZE
    if not path.is_file():
        return env
    from stable_baselines3.common.vec_env import VecNormalize

    normalized = VecNormalize.load(str(path), env)
    normalized.training = False
    normalized.norm_reward = False
    return normalized


def enjoy(config: EnjoyConfig) -> dict[str, Any]:
    """Run the agent for a few episodes, print the returns, optionally record a video."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    config.validate()
    check_algo(config.algo)
    check_env_id(config.env)
    _check_device_available(config.device)
    model = load_run_model(config)
    env_kwargs = _run_env_kwargs(config)
    env = _normalized(make_vec_env(config.env, n_envs=1, seed=config.seed, env_kwargs=env_kwargs), config)
    try:
        returns, _ = evaluate_policy(
            model,
            env,
            n_eval_episodes=config.episodes,
            deterministic=config.deterministic,
            return_episode_rewards=True,
        )
    finally:
        env.close()
    summary: dict[str, Any] = {
        "returns": [clean_number(value) for value in returns],
        "mean_return": clean_number(np.mean(returns)),
    }
    if config.video:
        from zoo.hub import record_video

        summary["video"] = str(
            record_video(
                model,
                config.env,
                config.video,
                n_steps=config.video_steps,
                env_kwargs=env_kwargs,
                deterministic=config.deterministic,
            )
        )
    return summary


def push(config: Any) -> str:
    """Publish a run folder's model with ``zoo.hub.push_to_hub``; returns the repo id."""
    from zoo.hub import make_repo_id, push_to_hub

    if hasattr(config, "validate"):
        config.validate()
    check_algo(config.algo)
    check_env_id(config.env)
    run_dir = _run_folder_of(config)
    model = load_run_agent(run_dir, config.algo, config.env, device="cpu")
    repo_id = config.repo or make_repo_id(config.algo, config.env)
    tensorboard = run_dir / "tensorboard"
    push_to_hub(
        model,
        repo_id,
        config.env,
        n_eval_episodes=config.eval_episodes,
        record_replay=config.video,
        commit_message=config.commit_message,
        tensorboard_dir=tensorboard if tensorboard.is_dir() else None,
    )
    return repo_id


def pull(config: Any) -> Path:
    """Download a Hub agent (safely) and save it under ``<output>/<repo name>``; returns that folder."""
    from zoo.hub import load_from_hub, save_agent

    model = load_from_hub(
        config.repo,
        revision=config.revision,
        device=config.device,
        trust_remote_code=config.trust_remote_code,
    )
    folder = Path(config.output) / config.repo.split("/")[-1]
    save_agent(model, folder)
    return folder
