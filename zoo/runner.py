"""The experiment runner behind ``zoo train`` / ``zoo enjoy``: builds objects from a config and calls them.

Run folders follow rl-baselines3-zoo: ``<log_folder>/<algo>/<env>_<n>/`` with the model,
``config.yml`` (the hyperparameters used), ``args.yml`` (the command's arguments),
``command.txt``, TensorBoard events, ``evaluations.npz``, ``results.json``, a learning-curve PNG
and ``checkpoints/`` from which ``--resume`` continues.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from zoo.algos import KICKSTARTED_ALGOS, algo_class, check_algo
from zoo.config import EnjoyConfig, TrainConfig
from zoo.envs import task_from_json
from zoo.hub.teachers import env_name
from zoo.io import atomic_save_model, atomic_write_text, atomic_write_yaml
from zoo.params import RUNNER_KEYS, load_hyperparams, parse_params

CHECKPOINT_MODEL = "last.zip"
CHECKPOINT_BUFFER = "replay_buffer.pkl"
CHECKPOINT_STATE = "state.json"


def check_env_id(env_id: str) -> str:
    """Return ``env_id`` if registered, else raise ValueError listing the zoo's environments."""
    import zoo.envs

    if env_id in gym.registry:
        return env_id
    raise ValueError(
        f"--env {env_id!r} is not a registered environment. Zoo environments: {', '.join(zoo.envs.ENV_IDS)} "
        "(any other Gymnasium id works too)"
    )


def numbered_folders(root: str | Path, prefix: str) -> list[Path]:
    """Existing ``<root>/<prefix>_<n>`` folders, by increasing ``n``."""
    pattern = re.compile(rf"^{re.escape(prefix)}_(\d+)$")
    found = [
        (int(m.group(1)), p) for p in Path(root).glob("*") if p.is_dir() and (m := pattern.match(p.name))
    ]
    return [path for _, path in sorted(found)]


def new_numbered_folder(root: str | Path, prefix: str) -> Path:
    """Create and return ``<root>/<prefix>_<n>`` with the next free ``n`` (from 1)."""
    folders = numbered_folders(root, prefix)
    next_index = int(folders[-1].name.rsplit("_", 1)[1]) + 1 if folders else 1
    path = Path(root) / f"{prefix}_{next_index}"
    path.mkdir(parents=True, exist_ok=False)
    return path


def run_folders(log_folder: str | Path, algo: str, env_id: str) -> list[Path]:
    """Existing run folders of ``algo`` on ``env_id``, oldest first."""
    return numbered_folders(Path(log_folder) / algo, env_name(env_id))


def latest_run(log_folder: str | Path, algo: str, env_id: str) -> Path:
    """The newest run folder, or a FileNotFoundError saying where it looked."""
    folders = run_folders(log_folder, algo, env_id)
    if not folders:
        raise FileNotFoundError(f"no run of --algo {algo} on --env {env_id} under {Path(log_folder) / algo}")
    return folders[-1]


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


def make_training_env(env_id: str, n_envs: int, seed: int, vec_env: str, env_kwargs: dict[str, Any]) -> Any:
    """An SB3 VecEnv with episode monitoring: the zoo's native vector env when asked and available."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecMonitor

    spec = gym.spec(env_id)
    if vec_env == "native" and spec.vector_entry_point is not None:
        from zoo.envs.sb3 import SB3VecEnv

        native = gym.make_vec(env_id, num_envs=n_envs, **env_kwargs)
        env = VecMonitor(SB3VecEnv(native))
        env.seed(seed)
        return env
    if vec_env not in ("native", "dummy"):
        raise ValueError(f"vec_env={vec_env!r} is not allowed; use 'native' or 'dummy'")
    return make_vec_env(env_id, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs)


def _checkpoint_callback(run_dir: Path, every: int, n_envs: int) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    class AtomicCheckpoint(BaseCallback):
        """Writes ``checkpoints/last.zip`` (and the replay buffer) atomically every ``every`` steps."""

        def __init__(self) -> None:
            super().__init__()
            self.folder = run_dir / "checkpoints"
            self.every = max(every // n_envs, 1)

        def _on_step(self) -> bool:
            if self.n_calls % self.every == 0:
                save_checkpoint(self.model, self.folder)
            return True

    return AtomicCheckpoint()


def save_checkpoint(model: Any, folder: Path) -> None:
    """Model zip, replay buffer (off-policy) and step count, each written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    if getattr(model, "replay_buffer", None) is not None:
        temporary = folder / f".{CHECKPOINT_BUFFER}.tmp"
        model.save_replay_buffer(temporary)
        temporary.replace(folder / CHECKPOINT_BUFFER)
    atomic_save_model(model, folder / CHECKPOINT_MODEL)
    atomic_write_text(folder / CHECKPOINT_STATE, json.dumps({"num_timesteps": int(model.num_timesteps)}))


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


def train(config: TrainConfig, command: list[str] | None = None) -> Path:
    """Train ``config.algo`` on ``config.env``; returns the run folder.

    All inputs are checked before any training starts: algo, env, ``--params`` pairs and keys,
    and the teacher (a kickstarted agent checks its spaces at construction).
    """
    from stable_baselines3.common.callbacks import CallbackList, EvalCallback
    from stable_baselines3.common.evaluation import evaluate_policy

    check_algo(config.algo)
    check_env_id(config.env)
    cls = algo_class(config.algo)
    hyperparams = load_hyperparams(config.algo, config.env)
    hyperparams.update(parse_params(config.params))
    env_kwargs = dict(hyperparams.pop("env_kwargs", None) or {})
    env_kwargs.update(parse_params(config.env_kwargs))
    if "task" in env_kwargs:
        env_kwargs["task"] = task_from_json(env_kwargs["task"])
    n_timesteps = int(config.n_timesteps or hyperparams.pop("n_timesteps", 100_000))
    hyperparams.pop("n_timesteps", None)
    if n_timesteps < 1:
        raise ValueError(f"-n/--n-timesteps {n_timesteps} is not allowed; it must be at least 1")
    n_envs = int(hyperparams.pop("n_envs", 1))
    vec_env = str(hyperparams.pop("vec_env", "dummy"))
    for key in RUNNER_KEYS:
        hyperparams.pop(key, None)
    allowed = _constructor_parameters(cls)
    unknown = sorted(set(hyperparams) - allowed)
    if unknown:
        raise ValueError(
            f"--params / hyperparameter key(s) {unknown} are not arguments of {cls.__name__}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    agent_kwargs = _resolve_special_values(hyperparams)
    agent_kwargs.update(_teacher_kwargs(config, env_kwargs))

    resume_dir = latest_run(config.log_folder, config.algo, config.env) if config.resume else None
    env = make_training_env(config.env, n_envs, config.seed, vec_env, env_kwargs)
    eval_env = make_training_env(config.env, 1, config.seed + 10_000, vec_env, env_kwargs)

    if resume_dir is not None:
        run_dir = resume_dir
        model = _load_checkpoint(cls, run_dir, env, config, agent_kwargs)
    else:
        run_dir = new_numbered_folder(Path(config.log_folder) / config.algo, env_name(config.env))
        atomic_write_yaml(run_dir / "config.yml", {"env_id": config.env, "n_envs": n_envs, **hyperparams})
        atomic_write_yaml(run_dir / "args.yml", dataclasses.asdict(config))
        atomic_write_text(
            run_dir / "command.txt", shlex.join(command if command is not None else sys.argv) + "\n"
        )
        if env_kwargs:
            atomic_write_yaml(run_dir / "env_kwargs.yml", _plain(env_kwargs))
        model = cls(
            env=env,
            seed=config.seed,
            device=config.device,
            tensorboard_log=str(run_dir / "tensorboard"),
            verbose=config.verbose,
            **agent_kwargs,
        )

    eval_every = config.eval_freq or max(n_timesteps // 10, 1)
    checkpoint_every = config.checkpoint_freq or max(n_timesteps // 10, 1)
    callbacks = CallbackList(
        [
            EvalCallback(
                eval_env,
                eval_freq=max(eval_every // n_envs, 1),
                n_eval_episodes=config.eval_episodes,
                log_path=str(run_dir),
                best_model_save_path=None,
                verbose=0,
            ),
            _checkpoint_callback(run_dir, checkpoint_every, n_envs),
        ]
    )
    remaining = n_timesteps - int(model.num_timesteps)
    started = time.perf_counter()
    if remaining > 0:
        model.learn(
            total_timesteps=remaining,
            callback=callbacks,
            progress_bar=config.progress_bar,
            tb_log_name="run",
            reset_num_timesteps=not config.resume,
        )
    elapsed = time.perf_counter() - started
    save_checkpoint(model, run_dir / "checkpoints")
    atomic_save_model(model, run_dir / "model.zip")
    _save_safetensors(model, run_dir / "model")

    mean_return, std_return = evaluate_policy(model, eval_env, n_eval_episodes=config.eval_episodes)
    results = {
        "env_id": config.env,
        "algo": config.algo,
        "num_timesteps": int(model.num_timesteps),
        "mean_return": float(mean_return),
        "std_return": float(std_return),
        "eval_episodes": config.eval_episodes,
        "train_seconds": elapsed,
    }
    atomic_write_text(run_dir / "results.json", json.dumps(results, indent=2) + "\n")
    evaluations = run_dir / "evaluations.npz"
    if evaluations.is_file():
        from zoo.plots import plot_evaluations

        plot_evaluations(evaluations, run_dir / "learning_curve.png", f"{config.algo} on {config.env}")
    env.close()
    eval_env.close()
    return run_dir


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _save_safetensors(model: Any, folder: Path) -> None:
    try:
        from zoo.hub import save_agent
    except ImportError:  # the hub module is optional for training
        return
    save_agent(model, folder)


def _load_checkpoint(
    cls: Any, run_dir: Path, env: Any, config: TrainConfig, agent_kwargs: dict[str, Any]
) -> Any:
    folder = run_dir / "checkpoints"
    checkpoint = folder / CHECKPOINT_MODEL
    if not checkpoint.is_file():
        raise FileNotFoundError(f"--resume: {run_dir} has no checkpoint ({checkpoint} is missing)")
    try:
        model = cls.load(checkpoint, env=env, device=config.device)
    except Exception as error:
        raise ValueError(f"--resume: the checkpoint {checkpoint} could not be loaded: {error}") from error
    buffer = folder / CHECKPOINT_BUFFER
    if buffer.is_file() and getattr(model, "replay_buffer", None) is not None:
        model.load_replay_buffer(buffer)
    if "teacher" in agent_kwargs and hasattr(model, "set_teacher"):
        model.set_teacher(agent_kwargs["teacher"])
    return model


def _run_folder_of(config: EnjoyConfig) -> Path:
    return Path(config.run) if config.run else latest_run(config.log_folder, config.algo, config.env)


def load_run_model(config: EnjoyConfig) -> Any:
    """The trained agent of a run folder (or Hub repo) for ``zoo enjoy``."""
    if config.repo is not None:
        from zoo.hub import load_from_hub

        return load_from_hub(config.repo, device=config.device)
    model_path = _run_folder_of(config) / "model.zip"
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path.parent} has no model.zip; train it first with zoo train")
    return algo_class(config.algo).load(model_path, device=config.device)


def _run_env_kwargs(config: EnjoyConfig) -> dict[str, Any]:
    """The env arguments the run was trained with (``env_kwargs.yml``), e.g. its task."""
    if config.repo is not None:
        return {}
    env_kwargs_file = _run_folder_of(config) / "env_kwargs.yml"
    if not env_kwargs_file.is_file():
        return {}
    import yaml

    stored = yaml.safe_load(env_kwargs_file.read_text()) or {}
    return {key: task_from_json(value) for key, value in stored.items()}


def enjoy(config: EnjoyConfig) -> dict[str, Any]:
    """Run the agent for a few episodes, print the returns, optionally record a video."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    check_algo(config.algo)
    check_env_id(config.env)
    model = load_run_model(config)
    env_kwargs = _run_env_kwargs(config)
    env = make_vec_env(config.env, n_envs=1, seed=config.seed, env_kwargs=env_kwargs)
    returns, _ = evaluate_policy(
        model,
        env,
        n_eval_episodes=config.episodes,
        deterministic=config.deterministic,
        return_episode_rewards=True,
    )
    env.close()
    summary: dict[str, Any] = {"returns": returns, "mean_return": float(np.mean(returns))}
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

    check_algo(config.algo)
    check_env_id(config.env)
    run_dir = Path(config.run) if config.run else latest_run(config.log_folder, config.algo, config.env)
    model_path = run_dir / "model.zip"
    if not model_path.is_file():
        raise FileNotFoundError(f"{run_dir} has no model.zip; train it first with zoo train")
    model = algo_class(config.algo).load(model_path, device="cpu")
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
