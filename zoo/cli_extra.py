"""Subcommands that belong to agent families: ``zoo ad collect|train|eval`` and ``zoo pbt``.

Their configs are dataclasses like :mod:`zoo.config`; the handlers build the family's objects
and call them. Kept apart from :mod:`zoo.cli` so that the core commands stay small.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import tyro

import zoo.envs
from zoo.config import check_at_least, check_device
from zoo.envs import task_from_json
from zoo.io import atomic_write_text
from zoo.params import parse_params

SourceName = Literal["q_learning", "ucb", "thompson", "noisy_expert", "ppo", "a2c", "dqn"]


@dataclass
class AdCollectConfig:
    """Collect learning histories of a source algorithm on an env's train tasks (resumable)."""

    env: str
    """Environment id, e.g. zoo/DarkRoom-v0."""
    source: SourceName = "q_learning"
    """Source algorithm: q_learning, ucb, thompson, noisy_expert (vectorised numpy) or ppo/a2c/dqn (SB3)."""
    episodes: int = 200
    """Episodes in each task's learning history."""
    output: str = "datasets/ad"
    """Dataset folder (memory-mapped arrays + manifest.json); an existing one is resumed."""
    split: Literal["train", "test", "all"] = "train"
    """Task split to collect on."""
    source_params: list[str] = field(default_factory=list)
    """Source hyperparameters as key:value pairs, e.g. learning_rate:0.3 (SB3 sources also policy:CnnPolicy)."""
    repeats: int = 1
    """Learning histories per task (each learned from scratch with its own randomness)."""
    seed: int = 0
    """Random seed."""

    def validate(self) -> None:
        """Refuse counts no collection could use."""
        check_at_least("--episodes", self.episodes)
        check_at_least("--repeats", self.repeats)


@dataclass
class AdTrainConfig:
    """Train an Algorithm Distillation transformer on a learning-history dataset."""

    dataset: str
    """Dataset folder written by zoo ad collect (or pulled from the Hub)."""
    steps: int = 5000
    """Gradient steps."""
    output: str = "logs/ad/model"
    """Folder the trained model is saved to (model.safetensors + config.json)."""
    context_length: int = 256
    """Context length in environment steps."""
    batch_size: int = 64
    """Sequences per gradient step."""
    learning_rate: float = 3e-4
    """Peak learning rate (AdamW, warm-up then cosine decay)."""
    subsample: int = 1
    """Keep every k-th episode of each history."""
    n_layers: int = 4
    """Transformer blocks (paper: 4)."""
    n_heads: int = 4
    """Attention heads (paper: 4)."""
    embed_dim: int = 64
    """Width of the residual stream (paper: 64)."""
    dropout: float = 0.1
    """Dropout on embeddings and residual branches (paper: 0.1)."""
    attention_dropout: float = 0.5
    """Dropout on attention weights (paper: 0.5; 0 lets a CPU use the fused attention kernel)."""
    warmup_steps: int = 500
    """Linear learning-rate warm-up steps (at most 10% of the run)."""
    observation_encoding: Literal["auto", "grid", "embedding"] = "auto"
    """Discrete observations: grid (row + column vectors, grid worlds), embedding, or auto."""
    checkpoint_dir: str | None = None
    """Resumable checkpoints go here (default: <output>/checkpoints)."""
    resume: bool = False
    """Continue from the last checkpoint."""
    seed: int = 0
    """Random seed."""
    device: str = "auto"
    """Torch device."""

    def validate(self) -> None:
        """Refuse sizes and rates no training could use (the model checks how they combine)."""
        for flag, value in (
            ("--steps", self.steps),
            ("--context-length", self.context_length),
            ("--batch-size", self.batch_size),
            ("--subsample", self.subsample),
            ("--n-layers", self.n_layers),
            ("--n-heads", self.n_heads),
            ("--embed-dim", self.embed_dim),
        ):
            check_at_least(flag, value)
        check_at_least("--warmup-steps", self.warmup_steps, 0)
        if not self.learning_rate > 0:
            raise ValueError(f"--learning-rate {self.learning_rate} is not allowed; it must be above 0")
        for flag, rate in (("--dropout", self.dropout), ("--attention-dropout", self.attention_dropout)):
            if not 0 <= rate < 1:
                raise ValueError(f"{flag} {rate} is not allowed; it must be at least 0 and below 1")
        check_device(self.device)


@dataclass
class AdEvalConfig:
    """Evaluate a trained AD model in context on held-out tasks (frozen weights)."""

    model: str
    """Model folder written by zoo ad train."""
    env: str
    """Environment id (must match the dataset's)."""
    episodes: int = 10
    """In-context episodes per task."""
    split: Literal["train", "test", "all"] = "test"
    """Task split to evaluate on."""
    n_tasks: int | None = None
    """Evaluate on the first n tasks of the split (default: all)."""
    temperature: float = 1.0
    """Sampling temperature of the action distribution."""
    deterministic: bool = False
    """Take the most likely action instead of sampling."""
    plot: str | None = None
    """Write the in-context learning curve to this PNG."""
    seed: int = 0
    """Random seed."""
    device: str = "auto"
    """Torch device."""

    def validate(self) -> None:
        """Refuse counts and a temperature no evaluation could use."""
        check_at_least("--episodes", self.episodes)
        check_at_least("--n-tasks", self.n_tasks)
        if not self.temperature > 0:
            raise ValueError(f"--temperature {self.temperature} is not allowed; it must be above 0")
        check_device(self.device)


@dataclass
class PbtCommandConfig:
    """Population-based training of a kickstarted PPO's λ, learning rate and entropy coefficient (Ray Tune)."""

    env: str
    """Environment id."""
    teacher: str | None = None
    """Teacher: a saved model folder/zip or a Hub repo id (default: the zoo's bundled teacher for env)."""
    population_size: int = 4
    """Members of the population."""
    perturbations: int = 4
    """Exploit/explore rounds."""
    steps_per_interval: int = 4096
    """Environment steps each member trains between perturbations."""
    n_envs: int = 8
    """Parallel environments per member."""
    address: str | None = None
    """Address of a running Ray cluster (default: a local Ray on this machine's CPUs)."""
    num_cpus: int | None = None
    """CPUs for a local Ray."""
    output: str = "logs/pbt"
    """Folder for Tune's storage and result.json."""
    env_kwargs: list[str] = field(default_factory=list)
    """Environment keyword arguments as key:value pairs, e.g. task:[1,7]."""
    seed: int = 0
    """Random seed."""
    device: str = "auto"
    """Torch device."""

    def validate(self) -> None:
        """Refuse sizes no population could use."""
        for flag, value in (
            ("--population-size", self.population_size),
            ("--perturbations", self.perturbations),
            ("--steps-per-interval", self.steps_per_interval),
            ("--n-envs", self.n_envs),
            ("--num-cpus", self.num_cpus),
        ):
            check_at_least(flag, value)
        check_device(self.device)


AdCommand = Union[  # noqa: UP007 - tyro reads subcommands from a typing.Union
    Annotated[AdCollectConfig, tyro.conf.subcommand("collect")],
    Annotated[AdTrainConfig, tyro.conf.subcommand("train")],
    Annotated[AdEvalConfig, tyro.conf.subcommand("eval")],
]


def ad(command: Annotated[AdCommand, tyro.conf.OmitSubcommandPrefixes, tyro.conf.arg(name="")]) -> Any:
    """Algorithm Distillation: collect learning histories (collect), train the transformer on them (train),
    evaluate it in context on held-out tasks (eval)."""
    # A function, not the Union itself, so that zoo --help shows this docstring, not typing.Union's.
    return command


def subcommands() -> dict[str, Any]:
    """Extra ``name -> config dataclass`` entries for the ``zoo`` command."""
    return {"ad": ad, "pbt": PbtCommandConfig}


def describe_dataset(dataset: Any) -> str:
    """One line on a learning-history dataset: histories, episodes, steps (not the object's repr)."""
    histories = list(getattr(dataset, "histories", []))
    episodes = sum(int(getattr(history, "episodes", 0)) for history in histories)
    steps = sum(len(history) for history in histories)
    return f"{len(histories)} learning histories, {episodes} episodes, {steps} steps"


def make_source(name: str, params: dict[str, Any]) -> Any:
    """The AD source called ``name`` with ``params``, built by ``zoo.agents.ad.make_source``.

    ``ppo`` / ``a2c`` / ``dqn`` are SB3 sources; ``params`` may name their ``policy`` (default MlpPolicy).
    """
    from zoo.agents import ad

    if name in ("ppo", "a2c", "dqn"):
        arguments = dict(params)
        policy = arguments.pop("policy", "MlpPolicy")  # e.g. policy:CnnPolicy for the pixel Watermaze
        return ad.make_source(
            {
                "name": f"sb3_{name}",
                "hyperparameters": {"algorithm": name.upper(), "policy": policy, **arguments},
            }
        )
    return ad.make_source({"name": name, "hyperparameters": params})


def run_ad_collect(config: AdCollectConfig) -> None:
    from zoo.agents.ad import collect_histories
    from zoo.runner import check_env_id

    config.validate()
    check_env_id(config.env)
    source = make_source(config.source, parse_params(config.source_params, flag="--source-params"))
    tasks = zoo.envs.tasks(config.env, config.split) * config.repeats
    dataset = collect_histories(
        config.env, source, config.output, episodes=config.episodes, tasks=tasks, seed=config.seed
    )
    print(f"Dataset: {config.output} ({describe_dataset(dataset)})")


def run_ad_train(config: AdTrainConfig) -> None:
    from zoo.agents.ad import AlgorithmDistillation

    output = Path(config.output)
    model = AlgorithmDistillation(
        config.dataset,
        context_length=config.context_length,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        subsample=config.subsample,
        n_layers=config.n_layers,
        n_heads=config.n_heads,
        embed_dim=config.embed_dim,
        dropout=config.dropout,
        attention_dropout=config.attention_dropout,
        warmup_steps=config.warmup_steps,
        observation_encoding=config.observation_encoding,
        checkpoint_dir=config.checkpoint_dir or str(output / "checkpoints"),
        tensorboard_log=str(output / "tensorboard"),
        seed=config.seed,
        device=config.device,
    )
    model.learn(config.steps, progress_bar=True, resume=config.resume)
    model.save(output)
    print(f"Model: {output}")


def run_ad_eval(config: AdEvalConfig) -> None:
    from zoo.agents.ad import AlgorithmDistillation, evaluate_in_context
    from zoo.agents.ad.plots import plot_in_context
    from zoo.runner import check_env_id

    check_env_id(config.env)
    model = AlgorithmDistillation.load(config.model, device=config.device)
    result = evaluate_in_context(
        model,
        config.env,
        split=config.split,
        episodes=config.episodes,
        n_tasks=config.n_tasks,
        temperature=config.temperature,
        deterministic=config.deterministic,
        seed=config.seed,
    )
    for episode, (mean, std) in enumerate(zip(result.mean, result.std), start=1):
        print(f"episode {episode:3d}: return {mean:.2f} ± {std:.2f} over {len(result.tasks)} tasks")
    if config.plot:
        print(f"Plot: {plot_in_context([result], config.plot)}")


def run_pbt(config: PbtCommandConfig) -> None:
    from zoo.agents.kickstart.pbt import PBTConfig
    from zoo.agents.kickstart.pbt import run_pbt as run
    from zoo.runner import check_env_id

    check_env_id(config.env)
    env_kwargs = {
        key: task_from_json(value)
        for key, value in parse_params(config.env_kwargs, flag="--env-kwargs").items()
    }
    teacher: Any = config.teacher
    if teacher is None:
        from zoo.hub import load_teacher

        teacher = load_teacher(config.env, task=env_kwargs.get("task"), device="cpu")
    output = Path(config.output).resolve()
    result = run(
        PBTConfig(
            env_id=config.env,
            teacher=teacher,
            n_envs=config.n_envs,
            env_kwargs=env_kwargs,
            population_size=config.population_size,
            perturbations=config.perturbations,
            steps_per_interval=config.steps_per_interval,
            address=config.address,
            num_cpus=config.num_cpus,
            storage_path=str(output),
            seed=config.seed,
            device=config.device,
        )
    )
    from zoo.cli import clean

    summary = {
        "best_return": result.best_return,
        "best_config": result.best_config,
        "best_checkpoint": result.best_checkpoint,
        "lambda_schedules": result.lambda_schedules,
    }
    atomic_write_text(output / "result.json", json.dumps(summary, indent=2, default=str) + "\n")
    best_config = ", ".join(f"{key}={value}" for key, value in clean(dict(result.best_config)).items())
    print(f"Best return {result.best_return:.2f} with {best_config}; result: {output / 'result.json'}")


def handler_for(config: Any) -> Callable[[Any], None]:
    """The function that runs a config returned by one of :func:`subcommands`."""
    handlers: dict[type, Callable[[Any], None]] = {
        AdCollectConfig: run_ad_collect,
        AdTrainConfig: run_ad_train,
        AdEvalConfig: run_ad_eval,
        PbtCommandConfig: run_pbt,
    }
    if type(config) not in handlers:
        raise ValueError(f"no handler for {type(config).__name__}")
    return handlers[type(config)]
