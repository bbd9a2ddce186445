"""Population-based training (Jaderberg et al. 2017) of the kickstarting coefficient(s).

The kickstarting paper tunes λ_k (one per teacher), the learning rate and the entropy
coefficient with PBT. :func:`run_pbt` does this on Ray Tune's ``PopulationBasedTraining``:
every member is a kickstarted agent that trains for ``steps_per_interval`` env steps, is
evaluated, and reports its return with a real Tune checkpoint (the SB3 ``.zip`` and a small
``state.json``). At each perturbation, members in the bottom quantile *exploit* a better one —
Tune restarts them from the donor's checkpoint (``tune.get_checkpoint()``), the SB3 weights
and optimiser state are loaded, and only then the *explored* (perturbed) hyperparameters are
applied. The result records every member's hyperparameters per interval, i.e. the λ schedule
it followed, and which checkpoint each exploit restored.

Ray is an optional dependency: ``pip install "distill-zoo[pbt]"``. By default Ray starts on
this machine's CPUs (``ray.init(num_cpus=...)``) and PBT is synchronous for small
populations; give ``address`` to use a running cluster.

Example::

    from zoo.agents.kickstart.pbt import PBTConfig, run_pbt

    result = run_pbt(PBTConfig(env_id="CartPole-v1", teacher="teacher.zip", population_size=4,
                               perturbations=5, steps_per_interval=4096))
    print(result.best_return, result.best_config, result.lambda_schedules)
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..common.parallel import init_ray

__all__ = ["PBTConfig", "PBTResult", "policy_fingerprint", "run_pbt"]

_ALGORITHMS = ("KickstartedPPO", "KickstartedA2C", "KickstartedMaskablePPO")


def _import_ray() -> Any:
    try:
        import ray
        from ray import tune  # noqa: F401
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "population-based training needs Ray Tune: pip install 'distill-zoo[pbt]'"
        ) from error
    return ray


@dataclass
class PBTConfig:
    """Everything one population-based training run needs (plain data: it travels to Ray workers)."""

    env_id: str
    """Gymnasium id of the training environment."""
    teacher: Any = None
    """A teacher as ``KickstartedPPO`` takes it, or a mapping task index -> teacher. Models and
    policies are saved to ``storage_path`` first and handed to the workers as paths."""
    algorithm: str = "KickstartedPPO"
    """One of ``KickstartedPPO``, ``KickstartedA2C``, ``KickstartedMaskablePPO``."""
    policy: str = "MlpPolicy"
    """SB3 policy name."""
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    """Further constructor arguments (``n_steps``, ``policy_kwargs``, ...); not the tuned ones."""
    n_envs: int = 1
    """Parallel envs per member (ignored when ``tasks`` is given)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the env."""
    tasks: list[Any] | None = None
    """If given, each member trains on ``zoo.envs.vector.make_multitask_vec_env(env_id, tasks)``
    (sub-env i runs task i) wrapped in ``zoo.envs.sb3.SB3VecEnv``; teacher keys are indices into it."""
    task_in_obs: bool = False
    """Append the one-hot task index to observations (multi-task envs)."""
    population_size: int = 4
    """Number of members."""
    perturbations: int = 4
    """Number of exploit/explore rounds; the run lasts ``perturbations + 1`` intervals of training."""
    steps_per_interval: int = 4096
    """Env steps each member trains between two reports."""
    eval_episodes: int = 8
    """Deterministic evaluation episodes per report (the PBT score is their mean return)."""
    kickstart_coef_range: tuple[float, float] = (0.0, 4.0)
    """Initial λ is drawn uniformly here (per teacher); resampling draws here too."""
    learning_rate_range: tuple[float, float] = (1e-4, 3e-3)
    """Initial learning rate is drawn log-uniformly here."""
    ent_coef_range: tuple[float, float] = (0.0, 0.02)
    """Initial entropy coefficient is drawn uniformly here."""
    quantile_fraction: float = 0.5
    """Fraction of the population that exploits (bottom) / is exploited (top)."""
    resample_probability: float = 0.25
    """Probability that explore resamples a hyperparameter instead of scaling it by 0.8 or 1.2."""
    synch: bool | None = None
    """Synchronous PBT (all members report before perturbing); ``None``: when population <= 8."""
    seed: int = 0
    """Seed of the initial hyperparameter draws; member i's agent and envs use ``seed + 1000 * i``."""
    address: str | None = None
    """Address of a running Ray cluster; ``None`` starts Ray locally."""
    num_cpus: int | None = None
    """CPUs for a local Ray (``None``: all of this machine's)."""
    storage_path: str | None = None
    """Where Tune writes trials and checkpoints (default: a temporary directory)."""
    name: str = "kickstart_pbt"
    """Name of the Tune experiment."""
    device: str = "auto"
    """Torch device of every member."""
    verbose: int = 0
    """Tune verbosity."""

    def __post_init__(self) -> None:
        if self.algorithm not in _ALGORITHMS:
            raise ValueError(f"algorithm={self.algorithm!r} must be one of {_ALGORITHMS}")
        for name in ("population_size", "steps_per_interval", "eval_episodes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be an integer >= 1")
        if self.population_size < 2:
            raise ValueError(f"population_size={self.population_size} must be >= 2 for PBT")
        if (
            isinstance(self.perturbations, bool)
            or not isinstance(self.perturbations, int)
            or self.perturbations < 0
        ):
            raise ValueError(f"perturbations={self.perturbations!r} must be an integer >= 0")
        for name in ("kickstart_coef_range", "learning_rate_range", "ent_coef_range"):
            low, high = getattr(self, name)
            if not 0 <= low <= high or (name == "learning_rate_range" and low <= 0):
                raise ValueError(f"{name}={(low, high)!r} must satisfy 0 <= low <= high (low > 0 for rates)")
        if not 0 < self.quantile_fraction <= 0.5:
            raise ValueError(f"quantile_fraction={self.quantile_fraction} must be in (0, 0.5]")


@dataclass
class PBTResult:
    """What :func:`run_pbt` returns."""

    best_return: float
    """Final evaluation return of the best member."""
    best_config: dict[str, float]
    """The best member's final hyperparameters."""
    best_checkpoint: str | None
    """Directory of the best member's last checkpoint (``model.zip``, ``state.json``)."""
    histories: dict[str, list[dict[str, Any]]]
    """Per trial id, one record per interval: hyperparameters used, return, timesteps, and for
    the first interval after an exploit, the donor (``restored_from_trial``,
    ``restored_from_iteration``) and the weights' fingerprint right after restoring."""
    lambda_schedules: dict[str, list[tuple[int, dict[str, float]]]]
    """Per trial id: ``(num_timesteps at the end of the interval, {teacher key: λ})`` per interval
    the trial ran. λ is constant within an interval. A member that exploits a donor ahead of it
    continues from the donor's step count; the intervals it skipped are in the donor's schedule
    (``restored_from_trial`` / ``restored_from_iteration`` in ``histories``)."""
    storage_path: str
    """Where Tune wrote everything."""


def policy_fingerprint(model: Any) -> str:
    """SHA-256 of a model's policy parameters (sorted by name), to check that weights were copied.

    :param model: an SB3 model.
    :return: a hex digest.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.policy.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _coef_keys(teacher: Any) -> list[str]:
    if isinstance(teacher, Mapping):
        return [f"kickstart_coef/{int(key)}" for key in teacher]
    return ["kickstart_coef"]


def _make_env(spec: Mapping[str, Any], seed: int) -> Any:
    if spec["tasks"] is not None:
        from zoo.envs.sb3 import SB3VecEnv
        from zoo.envs.vector import make_multitask_vec_env

        vector = make_multitask_vec_env(
            spec["env_id"], spec["tasks"], task_in_obs=spec["task_in_obs"], seed=seed, **spec["env_kwargs"]
        )
        from stable_baselines3.common.vec_env import VecMonitor

        return VecMonitor(SB3VecEnv(vector))
    from stable_baselines3.common.env_util import make_vec_env

    import zoo.envs  # noqa: F401  (registers the zoo ids in the worker)

    return make_vec_env(spec["env_id"], n_envs=spec["n_envs"], seed=seed, env_kwargs=spec["env_kwargs"])


def _apply_hyperparameters(
    model: Any, config: Mapping[str, Any], coef_keys: Sequence[str]
) -> dict[str, float]:
    model.learning_rate = float(config["learning_rate"])
    model._setup_lr_schedule()
    model.ent_coef = float(config["ent_coef"])
    if coef_keys == ["kickstart_coef"]:
        coefficient: Any = float(config["kickstart_coef"])
    else:
        coefficient = {int(key.split("/")[1]): float(config[key]) for key in coef_keys}
    if model.teachers:
        model.set_kickstart_coef(coefficient)
    return {key: float(config[key]) for key in ("learning_rate", "ent_coef", *coef_keys)}


def _member(config: dict[str, Any], spec: dict[str, Any]) -> None:
    """One PBT member (a Tune function trainable)."""
    import torch as th
    from ray import tune
    from stable_baselines3.common.evaluation import evaluate_policy

    import zoo.agents

    th.set_num_threads(1)
    algorithm = getattr(zoo.agents, spec["algorithm"])
    teacher = spec["teacher"]
    if isinstance(teacher, Mapping):
        teacher = {int(key): value for key, value in teacher.items()}
    coef_keys = _coef_keys(teacher) if teacher is not None else []
    trial_id = tune.get_context().get_trial_id()
    member_seed = spec["seed"] + 1000 * int(config["member"])
    env = _make_env(spec, member_seed)
    eval_env = _make_env(spec, member_seed + 500)

    checkpoint = tune.get_checkpoint()
    restored: dict[str, Any] = {}
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            state = json.loads((Path(directory) / "state.json").read_text())
            model = algorithm.load(
                Path(directory) / "model.zip", env=env, device=spec["device"], teacher=teacher
            )
        restored = {
            "restored_from_trial": state["trial_id"],
            "restored_from_iteration": state["iteration"],
            "restored_fingerprint": policy_fingerprint(model),
        }
        iteration = int(state["iteration"])
    else:
        model = algorithm(
            spec["policy"],
            env,
            teacher=teacher,
            seed=member_seed,
            device=spec["device"],
            **spec["agent_kwargs"],
        )
        iteration = 0
    # Explore happens after exploit: the (possibly perturbed) config is applied to restored weights.
    used = _apply_hyperparameters(model, config, coef_keys if model.teachers else [])

    while iteration < spec["iterations"]:
        model.learn(spec["steps_per_interval"], reset_num_timesteps=False)
        iteration += 1
        mean_return, _ = evaluate_policy(
            model, eval_env, n_eval_episodes=spec["eval_episodes"], deterministic=True
        )
        fingerprint = policy_fingerprint(model)
        metrics: dict[str, Any] = {
            "episode_return": float(mean_return),
            "num_timesteps": int(model.num_timesteps),
            "iteration": iteration,
            "saved_fingerprint": fingerprint,
            "restored_from_trial": restored.get("restored_from_trial", ""),
            "restored_from_iteration": restored.get("restored_from_iteration", -1),
            "restored_fingerprint": restored.get("restored_fingerprint", ""),
            **{f"hp/{key}": value for key, value in used.items()},
        }
        restored = {}
        with tempfile.TemporaryDirectory() as directory:
            model.save(Path(directory) / "model.zip")
            state = {"trial_id": trial_id, "iteration": iteration, "fingerprint": fingerprint}
            (Path(directory) / "state.json").write_text(json.dumps(state))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))


class _ResultRecorder:
    """Keeps every result the Tune driver receives, per trial, for the members' histories.

    A trial's ``metrics_dataframe`` can miss the result a member reported just before synch PBT
    paused it (the result is processed, but not kept in the trial's progress file), so the
    histories are taken from Tune's callback stream instead. A member restored from an earlier
    checkpoint may report an iteration again: the later report is the one it followed.
    """

    @staticmethod
    def create() -> Any:
        from ray import tune

        class Recorder(tune.Callback):
            def __init__(self) -> None:
                self._results: dict[str, dict[int, dict[str, Any]]] = {}

            def on_trial_result(
                self, iteration: int, trials: Any, trial: Any, result: dict, **info: Any
            ) -> None:
                if "iteration" in result:
                    self._results.setdefault(str(trial.trial_id), {})[int(result["iteration"])] = dict(result)

            def records(self, trial_id: str) -> list[dict[str, Any]]:
                by_iteration = self._results.get(trial_id, {})
                return [by_iteration[key] for key in sorted(by_iteration)]

        return Recorder()


def _teachers_to_paths(teacher: Any, directory: Path) -> Any:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.policies import BasePolicy

    def one(value: Any, name: str) -> Any:
        if isinstance(value, BaseAlgorithm):
            path = directory / f"{name}.zip"
            value.save(path)
            return str(path)
        if isinstance(value, BasePolicy):
            raise ValueError(
                f"teacher ({name}) is a bare policy: run_pbt needs an SB3 model or a path, which workers reload"
            )
        if isinstance(value, (str, os.PathLike)) and Path(value).exists():
            # Workers run in their own directories: hand them absolute paths.
            return str(Path(value).resolve())
        return str(value) if isinstance(value, os.PathLike) else value

    if teacher is None:
        return None
    if isinstance(teacher, Mapping):
        return {int(key): one(value, f"teacher_{int(key)}") for key, value in teacher.items()}
    return one(teacher, "teacher")


def run_pbt(config: PBTConfig) -> PBTResult:
    """Train a population of kickstarted agents with PBT over λ (per teacher), learning rate and entropy.

    :param config: the run's configuration.
    :return: the best member, every member's hyperparameter history and λ schedule.
    :raises ImportError: when Ray Tune is missing (install the ``pbt`` extra).
    """
    ray = _import_ray()
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    storage = Path(config.storage_path or tempfile.mkdtemp(prefix="kickstart_pbt_")).resolve()
    storage.mkdir(parents=True, exist_ok=True)
    teacher = _teachers_to_paths(config.teacher, storage)
    coef_keys = _coef_keys(teacher) if teacher is not None else []
    spec = asdict(config)
    spec.update(teacher=teacher, iterations=config.perturbations + 1)

    mutations: dict[str, Any] = {
        "learning_rate": tune.loguniform(*config.learning_rate_range),
        "ent_coef": tune.uniform(*config.ent_coef_range),
        **{key: tune.uniform(*config.kickstart_coef_range) for key in coef_keys},
    }
    scheduler = PopulationBasedTraining(
        time_attr="training_iteration",
        metric="episode_return",
        mode="max",
        perturbation_interval=1,
        hyperparam_mutations=mutations,
        quantile_fraction=config.quantile_fraction,
        resample_probability=config.resample_probability,
        synch=config.population_size <= 8 if config.synch is None else config.synch,
    )
    random.seed(config.seed)
    np.random.seed(config.seed)
    # Each member's initial hyperparameters are drawn here, so the run is reproducible.
    rng = np.random.default_rng(config.seed)
    low_lr, high_lr = np.log(config.learning_rate_range)
    members = [
        {
            "member": index,
            "learning_rate": float(np.exp(rng.uniform(low_lr, high_lr))),
            "ent_coef": float(rng.uniform(*config.ent_coef_range)),
            **{key: float(rng.uniform(*config.kickstart_coef_range)) for key in coef_keys},
        }
        for index in range(config.population_size)
    ]

    if config.address is not None:
        started_here = init_ray(config.address, log_to_driver=False)
    else:
        started_here = init_ray(num_cpus=config.num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        recorder = _ResultRecorder.create()
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(_member, spec=spec), {"cpu": 1}),
            param_space={
                "member": tune.grid_search(list(range(config.population_size))),
                **{
                    key: tune.sample_from(lambda trial, key=key: members[trial.config["member"]][key])
                    for key in mutations
                },
            },
            tune_config=tune.TuneConfig(scheduler=scheduler, reuse_actors=False),
            run_config=tune.RunConfig(
                name=config.name,
                storage_path=str(storage),
                stop={"training_iteration": config.perturbations + 1},
                verbose=config.verbose,
                checkpoint_config=tune.CheckpointConfig(num_to_keep=config.perturbations + 2),
                callbacks=[recorder],
            ),
        )
        results = tuner.fit()
    finally:
        if started_here:
            ray.shutdown()

    histories: dict[str, list[dict[str, Any]]] = {}
    schedules: dict[str, list[tuple[int, dict[str, float]]]] = {}
    best = None
    for result in results:
        if result.error is not None:
            raise RuntimeError(f"a PBT member failed: {result.error}") from result.error
        trial_id = str(result.metrics.get("trial_id"))
        records = recorder.records(trial_id) or result.metrics_dataframe.to_dict("records")
        histories[trial_id] = records
        schedules[trial_id] = [
            (int(row["num_timesteps"]), {key: float(row[f"hp/{key}"]) for key in coef_keys})
            for row in records
        ]
        if best is None or result.metrics["episode_return"] > best.metrics["episode_return"]:
            best = result
    assert best is not None
    return PBTResult(
        best_return=float(best.metrics["episode_return"]),
        best_config={key[3:]: float(value) for key, value in best.metrics.items() if key.startswith("hp/")},
        best_checkpoint=None if best.checkpoint is None else best.checkpoint.path,
        histories=histories,
        lambda_schedules=schedules,
        storage_path=str(storage),
    )
