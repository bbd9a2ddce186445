"""Train, evaluate and bundle the pretrained Algorithm Distillation models (a script, not a test).

One recipe per environment (:data:`RECIPES`: source algorithm, histories, model, budget). For
every (environment, training seed) cell the script collects the source's learning histories
on the train tasks, trains AD on them, and evaluates the frozen model in context on the
held-out tasks over ``--eval-seeds`` evaluation seeds: with ``predict``'s default sampling and
with argmax, with the banded KV cache and (sampling) with the exact recompute. The source
learns the same held-out tasks from scratch over the same evaluation seeds.

Each cell writes one JSON file, atomically, when it finishes:
``benchmarks/results/ad/<EnvName>__seed<k>.json``. A cell whose file exists is skipped, so an
interrupted grid resumes where it stopped, and the grid can be completed over several runs::

    python benchmarks/ad_pretrained.py --env zoo/DarkRoom-v0 --seeds 0 1 2 --jobs 2
    python benchmarks/ad_pretrained.py --env zoo/DarkRoom-v0 --summary       # markdown table
    python benchmarks/ad_pretrained.py --env zoo/DarkRoom-v0 --bundle        # seed 0 -> package

``--bundle`` copies the model of training seed 0 (not the best seed) into
``agents/ad/bundled/<EnvName>/`` and writes its model card (``README.md``) with the recipe and
the summary over every finished seed. What is bundled is the recipe, or for an env of
:data:`BUNDLED_VARIANTS` that ``--set`` variant of it (Dark Room's is the best cell of the
ablation, ``benchmarks/ad_ablation.py``, with 8x its histories and steps)::

    python benchmarks/ad_pretrained.py --env zoo/DarkRoom-v0 --seeds 0 1 2 --jobs 2 \
        --set model.n_layers=1 model.n_heads=2 model.embed_dim=32 subsample=16 task_repeats=32 train_steps=16000
    python benchmarks/ad_pretrained.py --env zoo/DarkRoom-v0 --bundle   # seed 0 of that variant
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import hashlib
import json
import multiprocessing
import re
import shlex
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import zoo.envs
from zoo.agents.ad import (
    AlgorithmDistillation,
    collect_histories,
    evaluate_in_context,
    make_source,
    source_learning_curve,
)
from zoo.agents.ad.pretrained import BUNDLE_ROOT
from zoo.envs.base import check_integer
from zoo.envs.darkroom import DarkRoomEnv
from zoo.hub.files import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results" / "ad"
#: The evaluations of every cell: (name, deterministic, kv_cache).
EVALUATIONS = (
    ("sample", False, "banded"),
    ("argmax", True, "banded"),
    ("sample_recompute", False, "recompute"),
)


#: ``(split, start, stop)`` or ``(split, start, stop, step)``: a slice of ``zoo.envs.tasks(env_id, split)``.
TaskSpec = tuple[str, int, int | None] | tuple[str, int, int | None, int]


@dataclass(frozen=True)
class Recipe:
    """Everything that makes one model of the grid (recorded in the bundled model's card)."""

    #: ``{"name": ..., "hyperparameters": {...}}`` (see ``zoo.agents.ad.make_source``).
    source: dict[str, Any]
    #: Episodes of each learning history.
    history_episodes: int
    #: Learning histories per train task (different seeds).
    task_repeats: int
    #: Keep every ``subsample``-th episode of each history.
    subsample: int
    #: AD constructor arguments (architecture and optimisation).
    model: dict[str, Any]
    #: Gradient steps.
    train_steps: int
    #: In-context episodes per held-out task at evaluation.
    eval_episodes: int
    #: Episodes the source learns each held-out task for (to find where it reaches 80 %).
    source_episodes: int
    #: Use only the first ``train_tasks`` train tasks (``None``: all), after ``train_stride``.
    train_tasks: int | None = None
    #: Take every ``train_stride``-th train task (1: all). The task lists are ordered (Key-to-Door
    #: by key cell), so a prefix of them is not a sample of the task distribution; a stride is.
    train_stride: int = 1
    #: The held-out tasks: ``(split, start, stop)`` or ``(split, start, stop, step)`` of
    #: ``zoo.envs.tasks`` (``stop`` None: to the end; ``step`` default 1).
    held_out: TaskSpec = ("test", 0, None)
    #: A second, shifted task set evaluated the same way (``None``: none), e.g. the bandit's even arms.
    shift: TaskSpec | None = None
    #: Other algorithms learning the same tasks from scratch, drawn next to the source.
    baselines: tuple[dict[str, Any], ...] = ()
    #: What the table shows: ``"return"`` per episode, or the bandit's cumulative ``"regret"``.
    metric: str = "return"
    #: Evaluation seeds of the (O(c²) per step) recompute evaluation (``None``: all of them; 0: skipped).
    recompute_eval_seeds: int | None = None
    #: Evaluation seeds of the source and baselines learning from scratch (``None``: all of them);
    #: fewer for a slow source such as SB3's PPO.
    source_eval_seeds: int | None = None
    #: Episode marks of the summary table.
    marks: tuple[int, ...] = (1, 2, 5, 10, 20, 30)
    notes: str = ""


_CPU_MODEL = {
    "n_layers": 2,
    "n_heads": 4,
    "embed_dim": 64,
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "batch_size": 32,
    "learning_rate": 1e-3,
    "warmup_steps": 100,
}


def _optimistic_q_learning(gamma: float, initial_value: float, **extra: Any) -> dict[str, Any]:
    """The source description of greedy tabular Q-learning (learning rate 1) with optimistic values."""
    hyperparameters = {
        "learning_rate": 1.0,
        "gamma": gamma,
        "epsilon_start": 0.0,
        "epsilon_end": 0.0,
        "epsilon_fraction": 0.5,
        "initial_value": initial_value,
        **extra,
    }
    return {"name": "q_learning", "hyperparameters": hyperparameters}


RECIPES: dict[str, Recipe] = {
    "zoo/DarkRoom-v0": Recipe(
        source=_optimistic_q_learning(gamma=0.9, initial_value=10.0),
        history_episodes=200,
        task_repeats=4,
        subsample=8,
        recompute_eval_seeds=2,
        model={**_CPU_MODEL, "context_length": 200},
        train_steps=2000,
        eval_episodes=50,
        source_episodes=200,
        marks=(1, 2, 5, 10, 20, 30, 40, 50),
        notes=(
            "Greedy tabular Q-learning with optimistic initial values Q0 = 1 / (1 - gamma) = 10 "
            "(learning rate 1): it explores every (cell, action) it has not tried before it settles, "
            "so its histories show systematic exploration, and it converges to the optimal return."
        ),
    ),
    "zoo/DarkRoomHard-v0": Recipe(
        source=_optimistic_q_learning(gamma=0.9, initial_value=1.0),
        history_episodes=300,
        task_repeats=1,
        subsample=5,
        recompute_eval_seeds=1,
        # An episode ends at the goal, so a learned history is short: 60 kept episodes of a goal
        # next to the start are 60 steps, and the window must fit the shortest history.
        model={**_CPU_MODEL, "context_length": 50},
        train_steps=1500,
        eval_episodes=30,
        source_episodes=300,
        notes=(
            "Greedy optimistic tabular Q-learning (Q0 = 1, the largest return of this "
            "one-reward task); a 17 x 17 room has 1,445 (cell, action) pairs to try, so it learns slowly."
        ),
    ),
    "zoo/DarkKeyToDoor-v0": Recipe(
        source=_optimistic_q_learning(gamma=0.95, initial_value=5.0, return_levels=2),
        history_episodes=200,
        task_repeats=1,
        subsample=8,
        # Every 10th train pair (519 of 5,184) and every 13th held-out pair (100 of 1,296): the
        # lists are ordered by key cell, so their first 512 / 100 pairs (the recipe until
        # 2026-12-03) all had the key in the top row, and the held-out figures measured only
        # those (the model trained on them: 0.68 of 2 there, 0.30 with keys in every row).
        train_stride=10,
        held_out=("test", 0, None, 13),
        recompute_eval_seeds=0,
        model={**_CPU_MODEL, "context_length": 200},
        train_steps=1500,
        eval_episodes=30,
        source_episodes=200,
        notes=(
            "Greedy optimistic tabular Q-learning over (cell, key held), the key being "
            "inferred from the episode's reward so far (`return_levels=2`); the start cell is random."
        ),
    ),
    "zoo/AdversarialBandit-v0": Recipe(
        source={"name": "thompson", "hyperparameters": {}},
        history_episodes=100,
        task_repeats=1,
        subsample=1,
        train_tasks=800,
        held_out=("train", 800, 1000),
        shift=("test", 0, 200),
        recompute_eval_seeds=2,
        baselines=({"name": "ucb", "hyperparameters": {"exploration": 1.0}},),
        model={**_CPU_MODEL, "context_length": 100},
        train_steps=1500,
        eval_episodes=100,
        source_episodes=100,
        metric="regret",
        marks=(10, 25, 50, 100),
        notes=(
            "Beta-Bernoulli Thompson sampling, 100 pulls per task on the first 800 train "
            "tasks (best arm odd with probability 0.95); held out: train tasks 800-999 (same "
            "distribution), and the even-arm test split as the shift."
        ),
    ),
    "zoo/Watermaze-v0": Recipe(
        source={"name": "noisy_expert", "hyperparameters": {"decay_fraction": 0.8}},
        history_episodes=40,
        task_repeats=1,
        subsample=2,
        # No exact recompute: it re-encodes c frames with the CNN at every step.
        recompute_eval_seeds=0,
        model={**_CPU_MODEL, "context_length": 150, "batch_size": 8, "warmup_steps": 50},
        train_steps=800,
        eval_episodes=20,
        source_episodes=40,
        marks=(1, 2, 5, 10, 15, 20),
        notes=(
            "A CPU-scale pixel run, not a bundled model: noise distillation (a scripted expert "
            "that swims straight for the platform, epsilon-greedy from 1 to 0 over the first 80 % "
            "of each 40-episode history) on the 47 train platforms; every 2nd episode kept, "
            "context 150 tokens = 3 kept 50-step episodes of 72 x 96 frames; 800 steps of batch 8. "
            "The optimum is the noiseless expert's mean return (20 episodes per held-out platform)."
        ),
    ),
}

#: The ``--set`` variant of an env's recipe whose training seed 0 is bundled (absent: the recipe
#: itself). Dark Room: the ablation's best cell (context 200, every 16th episode, 1 layer x width
#: 32) with 32 instead of 4 histories per goal and 8x the gradient steps (BENCHMARKS.md, the
#: ablation's data-scale rows); the recipe stays the ablation's reference cell c200-s8-2x64.
#: Bandit: 4 Thompson histories per task and 4x the steps (the same passes over the data), which
#: cut the KL to Thompson's policy five-fold (``benchmarks/ad_bandit_fidelity.py``).
#: Key-to-Door: the Q0 = 2 source (it solves the task within 400 episodes), 4 histories of 400
#: episodes per pair, every 16th kept, 4 layers x width 32, episode-start marks, 16,000 steps
#: (BENCHMARKS.md: the marks took the 1-layer model from 0.43 to 1.02 of 2 in episode 30; the 4
#: histories per pair and the 4 layers are what retrieves the door seen in context; the recipe is
#: at 0.32).
BUNDLED_VARIANTS: dict[str, tuple[str, ...]] = {
    "zoo/AdversarialBandit-v0": ("task_repeats=4", "train_steps=6000"),
    "zoo/DarkKeyToDoor-v0": (
        'source={"name":"q_learning","hyperparameters":{"learning_rate":1.0,"gamma":0.95,"epsilon_start":0.0,'
        '"epsilon_end":0.0,"epsilon_fraction":0.5,"initial_value":2.0,"return_levels":2}}',
        "history_episodes=400",
        "subsample=16",
        "source_episodes=400",
        "task_repeats=4",
        "model.n_layers=4",
        "model.n_heads=2",
        "model.embed_dim=32",
        "model.episode_starts=true",
        "train_steps=16000",
    ),
    "zoo/DarkRoom-v0": (
        "model.n_layers=1",
        "model.n_heads=2",
        "model.embed_dim=32",
        "subsample=16",
        "task_repeats=32",
        "train_steps=16000",
    ),
}
#: Recipes run for the benchmark only, never bundled into the package.
BENCHMARK_ONLY = ("zoo/Watermaze-v0",)

#: Noiseless-expert episodes that estimate Watermaze's optimum per task set.
_EXPERT_EPISODES = 20


def _optimal_mean(env_id: str, tasks: list[Any]) -> float:
    """Mean optimal return over ``tasks``; on Watermaze the noiseless scripted expert's mean return."""
    if env_id == "zoo/Watermaze-v0":
        curve = source_learning_curve(
            make_source({"name": "noisy_expert", "hyperparameters": {"decay_fraction": 0.0}}),
            env_id,
            tasks=tasks,
            episodes=_EXPERT_EPISODES,
            seed=0,
        )
        return float(np.mean(curve.mean))
    return float(np.mean([_optimum(env_id, task) for task in tasks]))


def _optimum(env_id: str, task: Any) -> float:
    if env_id == "zoo/DarkRoom-v0":
        return DarkRoomEnv.optimal_return(tuple(task))
    if env_id == "zoo/DarkRoomHard-v0":
        return 1.0
    if env_id == "zoo/DarkKeyToDoor-v0":
        return 2.0
    if env_id == "zoo/AdversarialBandit-v0":
        return float(max(task))
    raise ValueError(f"env_id={env_id!r} has no optimum here")


def _tasks(env_id: str, split: str, limit: int | None, stride: int = 1) -> list[Any]:
    tasks = _task_set(env_id, (split, 0, None, stride))
    return tasks if limit is None else tasks[:limit]


def _check_task_spec(name: str, spec: Any) -> TaskSpec:
    """``spec`` as a task-set tuple, or a ValueError that names it and what is allowed."""
    allowed = (
        "(split, start, stop) or (split, start, stop, step) with start >= 0, stop None or > start, step >= 1"
    )
    if not isinstance(spec, (list, tuple)) or len(spec) not in (3, 4):
        raise ValueError(f"{name}={spec!r} is not {allowed}")
    split, start, stop, *rest = spec
    step = rest[0] if rest else 1
    integers = all(isinstance(v, int) and not isinstance(v, bool) for v in (start, step))
    if (
        not isinstance(split, str)
        or not integers
        or start < 0
        or step < 1
        or not (stop is None or (isinstance(stop, int) and not isinstance(stop, bool) and stop > start))
    ):
        raise ValueError(f"{name}={spec!r} is not {allowed}")
    return (split, start, stop, step) if rest else (split, start, stop)


def _task_set(env_id: str, spec: TaskSpec) -> list[Any]:
    split, start, stop, *rest = spec
    return list(zoo.envs.tasks(env_id, split))[start : stop : (rest[0] if rest else 1)]


def _describe_task_set(spec: TaskSpec) -> str:
    """``test split [0:100]``, ``test split [0::13]``: the slice of the task list."""
    split, start, stop, *rest = spec
    step = f":{rest[0]}" if rest and rest[0] != 1 else ""
    return f"{split} split [{start}:{'' if stop is None else stop}{step}]"


def _scratch_key(
    description: dict[str, Any], env_id: str, tasks: list[Any], episodes: int, seed: int, cache: Path | None
) -> tuple[str, Path | None]:
    """The cache key of a from-scratch curve and its file under ``cache`` (None without a cache)."""
    key = json.dumps(
        [description, env_id, [np.asarray(t).tolist() for t in tasks], episodes, seed], sort_keys=True
    )
    return key, None if cache is None else cache / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"


def _cached_scratch_curve(
    description: dict[str, Any], env_id: str, tasks: list[Any], episodes: int, seed: int, cache: Path | None
) -> list[float] | None:
    """The cached curve of :func:`_scratch_curve`, or None when it was never computed."""
    _, path = _scratch_key(description, env_id, tasks, episodes, seed, cache)
    if path is None or not path.exists():
        return None
    try:
        return json.loads(path.read_text())["mean"]
    except (ValueError, KeyError) as error:
        raise SystemExit(
            f"cached curve {path} cannot be read ({error}); delete it to recompute it"
        ) from error


def _scratch_curve(
    description: dict[str, Any], env_id: str, tasks: list[Any], episodes: int, seed: int, cache: Path | None
) -> list[float]:
    """A learner's mean return per episode learning ``tasks`` from scratch, written to ``cache``.

    The curve depends only on the learner, the tasks, the episodes and the seed (not on AD's
    training seed), so the training seeds of a grid share it: callers look it up first with
    :func:`_cached_scratch_curve` and compute only the missing ones.
    """
    key, path = _scratch_key(description, env_id, tasks, episodes, seed, cache)
    torch.set_num_threads(1)
    curve = source_learning_curve(make_source(description), env_id, tasks=tasks, episodes=episodes, seed=seed)
    mean = _rounded(curve.mean)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"key": json.loads(key), "mean": mean}) + "\n")
    return mean


def _evaluate(
    agent: AlgorithmDistillation,
    recipe: Recipe,
    env_id: str,
    tasks: list[Any],
    eval_seeds: int,
    cache: Path | None = None,
    jobs: int = 1,
) -> dict[str, Any]:
    """AD in context (every evaluation mode), the source and the baselines from scratch, per evaluation seed."""
    curves: dict[str, list[list[float]]] = {}
    for name, deterministic, kv_cache in EVALUATIONS:
        seeds = eval_seeds
        if kv_cache == "recompute" and recipe.recompute_eval_seeds is not None:
            seeds = min(eval_seeds, recipe.recompute_eval_seeds)
        curves[name] = [
            _rounded(
                evaluate_in_context(
                    agent,
                    env_id,
                    tasks=tasks,
                    episodes=recipe.eval_episodes,
                    deterministic=deterministic,
                    kv_cache=kv_cache,
                    seed=10_000 + eval_seed,
                ).mean
            )
            for eval_seed in range(seeds)
        ]
    learners = {"source": recipe.source, **{baseline["name"]: baseline for baseline in recipe.baselines}}
    scratch_seeds = (
        eval_seeds if recipe.source_eval_seeds is None else min(eval_seeds, recipe.source_eval_seeds)
    )
    scratch: dict[str, list[list[float] | None]] = {}
    todo: list[tuple[str, int, tuple[Any, ...]]] = []  # the curves not in the cache
    for label, description in learners.items():
        arguments = [
            (description, env_id, tasks, recipe.source_episodes, 10_000 + eval_seed, cache)
            for eval_seed in range(scratch_seeds)
        ]
        scratch[label] = [_cached_scratch_curve(*item) for item in arguments]
        todo += [
            (label, index, item) for index, item in enumerate(arguments) if scratch[label][index] is None
        ]
    if jobs > 1 and len(todo) > 1:  # a slow source (SB3's PPO) learns the evaluation seeds in parallel
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=context) as pool:
            computed = list(pool.map(_scratch_curve, *zip(*(item for _, _, item in todo))))
    else:
        computed = [_scratch_curve(*item) for _, _, item in todo]
    for (label, index, _), curve in zip(todo, computed, strict=True):
        scratch[label][index] = curve
    return {
        "ad": curves,
        "source": scratch.pop("source"),
        "baselines": scratch,
        "optimal_mean": round(_optimal_mean(env_id, tasks), 6),
        "tasks": len(tasks),
    }


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(value), 6) for value in values]


def _name(env_id: str) -> str:
    return env_id.replace("/", "-")


#: Recipe fields that ``--set`` may change, besides ``model.<AD argument>``.
OVERRIDABLE = (
    "source", "history_episodes", "task_repeats", "subsample", "train_steps", "train_tasks",
    "train_stride", "held_out", "eval_episodes", "source_episodes", "source_eval_seeds",
    "recompute_eval_seeds",
)  # fmt: skip
#: The fields that change the collected histories (a variant changing none reuses the recipe's).
DATA_FIELDS = ("source", "history_episodes", "task_repeats", "train_tasks", "train_stride")


def resolve(env_id: str, overrides: list[str] | tuple[str, ...] = ()) -> tuple[Recipe, str]:
    """The recipe of ``env_id`` with ``--set key=value`` overrides, and the variant's name ("" for none).

    ``key`` is a recipe field of :data:`OVERRIDABLE` or ``model.<name>`` for an argument of
    :class:`~zoo.agents.ad.AlgorithmDistillation`; ``value`` is JSON (``0.1``, ``true``,
    ``{"name": ...}``) or else a string.
    """
    import inspect

    recipe = RECIPES[env_id]
    allowed_model = set(inspect.signature(AlgorithmDistillation.__init__).parameters) - {
        "self", "dataset", "seed", "device", "checkpoint_dir", "checkpoint_every", "_metadata", "subsample",
    }  # fmt: skip
    model = dict(recipe.model)
    changes: dict[str, Any] = {}
    names = []
    for item in overrides:
        key, separator, text = item.partition("=")
        if not separator or not key or not text:
            raise ValueError(f"--set {item!r} is malformed; write key=value, e.g. model.dropout=0.1")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        if key.startswith("model."):
            if key[6:] not in allowed_model:
                raise ValueError(
                    f"--set {item!r}: {key[6:]!r} is not an AD argument; use one of {sorted(allowed_model)}"
                )
            model[key[6:]] = value
        elif key in OVERRIDABLE:
            changes[key] = value
        else:
            raise ValueError(
                f"--set {item!r}: {key!r} cannot be set; use model.<AD argument> or one of {OVERRIDABLE}"
            )
        text = json.dumps(value, sort_keys=True)
        # A long value (a source's hyper-parameters) is named by its digest; the result file records it whole.
        names.append(f"{key}={text if len(text) <= 40 else hashlib.sha1(text.encode()).hexdigest()[:10]}")
    if "held_out" in changes:
        changes["held_out"] = _check_task_spec("held_out", changes["held_out"])
    if "train_stride" in changes:
        check_integer("train_stride", changes["train_stride"], 1)
    variant = re.sub(r"[^A-Za-z0-9._=+-]+", "_", ",".join(sorted(names)))
    return dataclasses.replace(recipe, model=model, **changes), variant


def result_path(env_id: str, seed: int, variant: str = "") -> Path:
    """The result file of one (environment, training seed) cell (of a ``--set`` variant)."""
    if variant:
        return RESULTS / "variants" / f"{_name(env_id)}__{variant}__seed{seed}.json"
    return RESULTS / f"{_name(env_id)}__seed{seed}.json"


def run_cell(
    env_id: str,
    seed: int,
    work: Path,
    eval_seeds: int,
    device: str,
    overrides: tuple[str, ...] = (),
    collect_jobs: int = 1,
) -> Path:
    """Collect, train and evaluate one training seed; write its result file; return it."""
    torch.set_num_threads(1)
    recipe, variant = resolve(env_id, overrides)
    base = work / _name(env_id) / f"seed{seed}"
    folder = work / _name(env_id) / variant / f"seed{seed}" if variant else base
    same_data = all(getattr(recipe, field) == getattr(RECIPES[env_id], field) for field in DATA_FIELDS)
    histories = (base if same_data else folder) / "histories"
    source = make_source(recipe.source)
    train_tasks = _tasks(env_id, "train", recipe.train_tasks, recipe.train_stride)
    test_tasks = _task_set(env_id, recipe.held_out)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    dataset = collect_histories(
        env_id,
        source,
        histories,
        recipe.history_episodes,
        tasks=train_tasks * recipe.task_repeats,
        seed=1000 * seed,
        n_jobs=collect_jobs,
    )
    timings["collect_s"] = time.perf_counter() - started
    agent = AlgorithmDistillation(
        dataset,
        subsample=recipe.subsample,
        seed=seed,
        device=device,
        checkpoint_dir=folder / "checkpoints",
        checkpoint_every=500,
        **recipe.model,
    )
    started = time.perf_counter()
    agent.learn(recipe.train_steps, resume=True)
    timings["train_s"] = time.perf_counter() - started
    agent.save(folder / "model")
    started = time.perf_counter()
    cache = work / _name(env_id) / "scratch_curves"
    held_out = _evaluate(agent, recipe, env_id, test_tasks, eval_seeds, cache, collect_jobs)
    shift = None
    if recipe.shift is not None:
        shift = _evaluate(
            agent, recipe, env_id, _task_set(env_id, recipe.shift), eval_seeds, cache, collect_jobs
        )
    timings["eval_s"] = time.perf_counter() - started
    result = {
        "env_id": env_id,
        "variant": variant,
        "train_seed": seed,
        "eval_seeds": list(range(10_000, 10_000 + eval_seeds)),
        "recipe": asdict(recipe),
        "train_tasks": len(train_tasks),
        "test_tasks": held_out["tasks"],
        "dataset_steps": int(sum(len(history) for history in agent.dataset.histories)),
        "optimal_mean": held_out["optimal_mean"],
        "ad": held_out["ad"],
        "source": held_out["source"],
        "baselines": held_out["baselines"],
        "shift": shift,
        "tokens_per_second": round(agent.tokens_per_second, 1),
        "timings": {key: round(value, 1) for key, value in timings.items()},
        "device": device,
        "torch": torch.__version__,
    }
    path = result_path(env_id, seed, variant)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result, indent=1) + "\n")
    return path


def _first_reaching(curve: np.ndarray, level: float) -> int | None:
    reached = np.flatnonzero(curve >= level)
    return int(reached[0]) + 1 if reached.size else None


def _table(recipe: Recipe, sets: list[dict[str, Any]], title: str) -> list[str]:
    """Markdown rows for one task set: mean ± std over every (training seed, evaluation seed)."""
    optimum = sets[0]["optimal_mean"]
    marks = [mark for mark in recipe.marks if mark <= recipe.eval_episodes]
    rows = {
        "AD, sampling (predict's default)": [c for r in sets for c in r["ad"]["sample"]],
        "AD, argmax": [c for r in sets for c in r["ad"]["argmax"]],
    }
    recomputed = [c for r in sets for c in r["ad"]["sample_recompute"]]
    if recomputed:  # skipped where the O(c²) evaluation is too costly (recompute_eval_seeds=0)
        seeds = len(sets[0]["ad"]["sample_recompute"])
        rows[f"AD, sampling, kv_cache='recompute' ({seeds} evaluation seed(s) per training seed)"] = (
            recomputed
        )
    # The learners from scratch do not depend on AD's training seed: the same curves in every file.
    fewer = len(sets[0]["source"]) < len(sets[0]["ad"]["sample"])
    scratch_seeds = f" ({len(sets[0]['source'])} evaluation seeds)" if fewer else ""
    rows[f"source ({recipe.source['name']}) from scratch{scratch_seeds}"] = [
        c for r in sets for c in r["source"]
    ]
    for name in sets[0].get("baselines") or {}:
        rows[f"{name} from scratch{scratch_seeds}"] = [c for r in sets for c in r["baselines"][name]]
    regret = recipe.metric == "regret"
    what = "cumulative regret after pull" if regret else "episode"
    lines = [
        title,
        "",
        "| method | "
        + " | ".join(f"{what} {m}" for m in marks)
        + ("" if regret else " | episodes to 80 % | to 90 %")
        + " |",
        "|---|" + "---|" * (len(marks) + (0 if regret else 2)),
    ]
    for label, curves in rows.items():
        matrix = np.array(curves)[:, : recipe.eval_episodes]
        if regret:
            matrix = np.cumsum(optimum - matrix, axis=1)
        mean, std = matrix.mean(axis=0), matrix.std(axis=0)
        cells = [f"{mean[m - 1]:.2f} ± {std[m - 1]:.2f}" for m in marks]
        if not regret:
            full = np.array(curves).mean(axis=0)
            reach = [_first_reaching(full, fraction * optimum) for fraction in (0.8, 0.9)]
            cells += [str(value) if value is not None else f"not in {full.size}" for value in reach]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def summary(env_id: str, overrides: tuple[str, ...] = ()) -> str:
    """Markdown: mean ± std over every (training seed, evaluation seed) at the recipe's marks."""
    recipe, variant = resolve(env_id, overrides)
    folder = result_path(env_id, 0, variant).parent
    prefix = f"{_name(env_id)}__{variant}__seed" if variant else f"{_name(env_id)}__seed"
    results = [json.loads(path.read_text()) for path in sorted(folder.glob(f"{glob.escape(prefix)}*.json"))]
    if not results:
        return f"no results for {env_id}{f' variant {variant}' if variant else ''} in {folder}"
    seeds = (
        f"{len(results)} training seed(s) ({', '.join(str(r['train_seed']) for r in results)}) x "
        f"{len(results[0]['ad']['sample'])} evaluation seeds"
    )
    measured = (
        "cumulative regret (mean best arm minus reward, summed over pulls)"
        if recipe.metric == "regret"
        else "return"
    )
    lines = _table(
        recipe,
        results,
        f"{env_id}, held-out tasks ({_describe_task_set(recipe.held_out)}, "
        f"{results[0]['test_tasks']} tasks), mean optimum {results[0]['optimal_mean']:.2f}; {measured} "
        f"averaged over the tasks, mean ± std over {seeds}.",
    )
    if recipe.shift is not None and all(r.get("shift") for r in results):
        shifted = _table(
            recipe,
            [r["shift"] for r in results],
            f"Shifted tasks ({_describe_task_set(recipe.shift)}, "
            f"{results[0]['shift']['tasks']} tasks), same models and seeds.",
        )
        lines += ["", *shifted]
    # A cell resumed after its training had finished trained nothing in the recorded run.
    timed = [r for r in results if r["tokens_per_second"] > 0]
    if timed:
        speeds = [r["tokens_per_second"] for r in timed]
        train = [r["timings"]["train_s"] for r in timed]
        lines += [
            "",
            f"Training ({len(timed)} seed(s) timed): {np.mean(speeds):,.0f} ± {np.std(speeds):,.0f} tokens/s, "
            f"{np.mean(train) / 60:.1f} ± {np.std(train) / 60:.1f} min per seed "
            f"({recipe.train_steps} steps, {results[0]['device']}, one thread, on a shared 2-core machine).",
        ]
    untimed = [str(r["train_seed"]) for r in results if r["tokens_per_second"] <= 0]
    if untimed:
        lines += [
            "",
            f"Training time not recorded for seed(s) {', '.join(untimed)}: resumed after training had finished.",
        ]
    return "\n".join(lines)


def bundle(env_id: str, work: Path) -> Path:
    """Copy training seed 0's model into the package and write its model card."""
    if env_id in BENCHMARK_ONLY:
        raise SystemExit(
            f"{env_id}: a benchmark recipe, not a bundled model (bundled: the other --env choices)"
        )
    overrides = BUNDLED_VARIANTS.get(env_id, ())
    recipe, variant = resolve(env_id, overrides)
    model = work / _name(env_id) / (variant or ".") / "seed0" / "model"
    result = result_path(env_id, 0, variant)
    if not result.exists() or not (model / "model.safetensors").exists():
        raise SystemExit(f"train seed 0 of {env_id} first (no {result} or {model})")
    target = BUNDLE_ROOT / _name(env_id)
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copyfile(model / name, target / name)
    kept = f"every {recipe.subsample}th episode kept" if recipe.subsample > 1 else "every episode kept"
    # The source as the weights' own config records it (every hyper-parameter, defaults included).
    source = json.loads((target / "config.json").read_text())["metadata"]["source"]
    # Quoted for a POSIX shell: a source's JSON has braces and double quotes.
    set_items = f" --set {' '.join(shlex.quote(item) for item in overrides)}" if overrides else ""
    card = f"""# Algorithm Distillation for `{env_id}` (bundled with distill-zoo)

Load it with `zoo.agents.ad.load_pretrained("{env_id}")`; no network. The weights are training
seed 0 of the grid below (chosen before looking at results, not the best seed).

## Recipe

Trained by `python benchmarks/ad_pretrained.py --env {env_id} --seeds 0 1 2{set_items}` and
bundled with `--bundle`.

- Source: `{source["name"]}` with {json.dumps(source["hyperparameters"])}. {recipe.notes}
- Data: one learning history of {recipe.history_episodes} episodes per train task, {recipe.task_repeats}
  histor{"y" if recipe.task_repeats == 1 else "ies"} per task (train split{"" if recipe.train_stride == 1 else f", every {recipe.train_stride}th task"}{"" if recipe.train_tasks is None else f", first {recipe.train_tasks} tasks"}),
  {kept}.
- Model and optimisation: {json.dumps(recipe.model)}.
- Budget: {recipe.train_steps} gradient steps on a CPU, one thread.
- Evaluation: the held-out tasks, {_describe_task_set(recipe.held_out)} of `zoo.envs.tasks`,
  {recipe.eval_episodes} episodes in context with frozen weights; the source learns the same tasks
  from scratch.

## Results

{summary(env_id, overrides)}
"""
    atomic_write_text(target / "README.md", card)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", required=True, choices=sorted(RECIPES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--eval-seeds", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=1, help="training seeds run in parallel processes")
    parser.add_argument("--collect-jobs", type=int, default=1,
                        help="processes collecting one seed's histories and learning the source from scratch "
                        "(an SB3 source learns one task per process)")  # fmt: skip
    parser.add_argument("--work", type=Path, default=Path("runs/ad_pretrained"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--summary", action="store_true", help="print the summary of the finished cells")
    parser.add_argument("--bundle", action="store_true", help="bundle training seed 0 into the package")
    parser.add_argument("--set", dest="overrides", nargs="+", default=[], metavar="KEY=VALUE",
                        help="a variant of the recipe (ablations): model.<AD argument>=V or "
                        f"{'/'.join(OVERRIDABLE)}=V; results in results/ad/variants/")  # fmt: skip
    args = parser.parse_args()
    try:
        _, variant = resolve(args.env, args.overrides)
    except ValueError as error:
        parser.error(str(error))
    overrides = tuple(args.overrides)
    if args.summary:
        print(summary(args.env, overrides))
        return
    if args.bundle:
        if variant:
            parser.error(
                "--bundle takes no --set: it bundles the recipe, or the env's BUNDLED_VARIANTS entry"
            )
        print(f"wrote {bundle(args.env, args.work)}")
        return
    missing = [seed for seed in args.seeds if not result_path(args.env, seed, variant).exists()]
    label = f"{args.env}{f' [{variant}]' if variant else ''}"
    print(f"{label}: cells to run {missing} (done: {sorted(set(args.seeds) - set(missing))})")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=context) as pool:
        futures = [
            pool.submit(
                run_cell,
                args.env,
                seed,
                args.work,
                args.eval_seeds,
                args.device,
                overrides,
                args.collect_jobs,
            )
            for seed in missing
        ]
        for future in futures:
            print(f"wrote {future.result()}", flush=True)
    print(summary(args.env, overrides))


if __name__ == "__main__":
    main()
