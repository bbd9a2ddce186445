"""ReenGAGE benchmark: the paper's learning curves as a resumable sweep of (config, seed) cells.

Not a test. Every cell trains one agent with the hyperparameters of ``zoo/hyperparams/<algo>.yml``
for its env id (the ReenGAGE appendix's values, see those files), evaluates it every
``eval_every`` steps and writes one JSON file, atomically, when it finishes:
``benchmarks/results/reengage/<config>__seed<k>.json``. A cell whose file exists is skipped, so
the grid completes over several sessions; commit the files as they appear.

The grid (issue #12; ``--list`` prints it with what is done and what is missing):

* ``seek-d{5,10,20}-her`` vs ``seek-d{d}-reengage{alpha*d}``: zoo/ContinuousSeek-d{d}-v1,
  DDPG+HER vs ReenGAGE-DDPG+HER (alpha = 0.2 / d at every d, also 0.1 and 0.3 / d at d = 10);
  budgets 12k (d = 5), 50k (d = 10), 250k (d = 20) steps; success (goal ever reached) over 50
  deterministic episodes every 2k steps.
* ``drive-ddpg`` vs ``drive-multi10``: zoo/DriveSeek-v1, DDPG (MultiReenGAGE with
  ``gradient_reg=0``: DDPG's update on the same DeepSets networks) vs Multi-ReenGAGE, 40k steps
  (the paper's figure runs 160k, the hyperparameter file's budget; issue #12 compares at 40k);
  ``noisy-ddpg`` vs ``noisy-multi10`` on zoo/NoisySeek-v1, 160k steps (the reference greedy agent
  scores 11.80 ± 0.29, Appendix). Return over 100 episodes every 4k steps (Table 4).
* ``bitflip{20,40}-dqn-her`` vs ``bitflip{n}-reengage0.5``: zoo/BitFlip-v0 (n = 20, 200k steps)
  and zoo/BitFlip-n40-v0 (n = 40, 1.6M steps), the budgets of the Appendix's Figure 7, DQN+HER vs
  ReenGAGE-DQN (tau 0.5, the soft target in the gradient term only), success over 50 episodes
  every 2k steps. At n = 40 the paper's curves leave zero only after about 400k steps.

Cells run as Ray Tune trials, one CPU (and one torch thread) each, so seeds and configs run in
parallel processes: locally by default (``--workers`` processes), on a cluster with
``--address``; the driver writes the result files, so workers need no shared disk.
``--backend serial`` runs the cells one after the other in this process. An unfinished cell keeps
its model and replay buffer every ``--checkpoint-every`` evaluations (default 10) under
``--checkpoints`` (default ``runs/reengage_checkpoints/``, a worker's local disk on a cluster) and
the next run continues it from there, so a 250k-step cell survives an interrupted session (its file lists ``resumed_at``). ``--budget-scale``
shrinks every budget (steps and evaluation period) for a smoke run; its files go to
``<results>/scale<x>/`` and never count as cells of the grid.

Wall time per env step of each cell is in its file; the summary (``--summary``) gives the ratio
to the parent cell of the same seed. Cells that ran at the same time on a shared machine are
the fairest comparison; ``benchmarks/reengage_step_cost.py`` times gradient steps side by side.

Examples::

    python benchmarks/reengage.py --list
    python benchmarks/reengage.py --cells seek-d5-her seek-d5-reengage0.2 --seeds 0 1 2 --workers 3
    python benchmarks/reengage.py --budget-scale 0.05 --workers 2          # smoke run, whole grid
    python benchmarks/reengage.py --address auto                          # everything, on a cluster
    python benchmarks/reengage.py --summary
    python benchmarks/reengage.py --plot benchmarks/results/reengage/curves.png
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "reengage"


@dataclasses.dataclass(frozen=True)
class Cell:
    """One configuration of the grid (run once per seed)."""

    name: str
    """Config name, the result file's prefix."""
    algo: str
    """``zoo train --algo`` name; its hyperparameter file gives the settings."""
    env_id: str
    """Environment id (its entry in the hyperparameter file)."""
    steps: int
    """Environment steps at the paper's budget."""
    eval_every: int
    """Environment steps between evaluations."""
    eval_episodes: int
    """Deterministic evaluation episodes per evaluation."""
    params: tuple[tuple[str, Any], ...] = ()
    """Overrides of the file's entry (as ``--params`` would give them)."""
    parent: str | None = None
    """The baseline config this one is compared with (None for a baseline)."""
    metric: str = "success"
    """``success`` (goal ever reached in the episode) or ``return``."""

    def budget(self, budget_scale: float = 1.0) -> int:
        """Environment steps of a run at ``budget_scale`` (a smoke run's budget is below 1)."""
        return max(round(self.steps * budget_scale), 1)


def grid() -> list[Cell]:
    """The issue's grid, baselines first."""
    cells: list[Cell] = []
    for dim, steps, alphas in ((5, 12_000, (0.2,)), (10, 50_000, (0.1, 0.2, 0.3)), (20, 250_000, (0.2,))):
        env_id = f"zoo/ContinuousSeek-d{dim}-v1"
        her = f"seek-d{dim}-her"
        cells.append(Cell(her, "ddpg", env_id, steps, 2_000, 50))
        for reg in alphas:
            name = f"seek-d{dim}-reengage{reg:g}"
            cells.append(Cell(name, "reengage_ddpg", env_id, steps, 2_000, 50, (("gradient_reg", reg),), her))
    for short, env_id, steps in (
        ("drive", "zoo/DriveSeek-v1", 40_000),
        ("noisy", "zoo/NoisySeek-v1", 160_000),
    ):
        base = f"{short}-ddpg"
        for name, reg, parent in ((base, 0.0, None), (f"{short}-multi10", 10.0, base)):
            cells.append(
                Cell(
                    name,
                    "multi_reengage",
                    env_id,
                    steps,
                    4_000,
                    100,
                    (("gradient_reg", reg),),
                    parent,
                    "return",
                )
            )
    reengage_dqn = (("gradient_reg", 0.5),)
    # The Appendix's Figure 7: n = 20 over 200k steps, n = 40 over 1.6M (success rises after 400k).
    for bits, env_id, steps in ((20, "zoo/BitFlip-v0", 200_000), (40, "zoo/BitFlip-n40-v0", 1_600_000)):
        base = f"bitflip{bits}-dqn-her"
        cells.append(Cell(base, "dqn", env_id, steps, 2_000, 50))
        cells.append(
            Cell(f"bitflip{bits}-reengage0.5", "reengage_dqn", env_id, steps, 2_000, 50, reengage_dqn, base)
        )
    return cells


def result_path(results: Path, name: str, seed: int, budget_scale: float = 1.0) -> Path:
    folder = results if budget_scale == 1.0 else results / f"scale{budget_scale:g}"
    return folder / f"{name}__seed{seed}.json"


def agent_kwargs(cell: Cell, steps: int, env: Any) -> dict[str, Any]:
    """The file's entry for the cell with its overrides, as SB3 constructor arguments.

    ``noise_type`` / ``noise_std`` (rl_zoo3's spelling of Gaussian action noise) become a
    ``NormalActionNoise``; ``HerReplayBuffer`` the class; the buffer is cut to the run's length
    (a 1e6-slot buffer holds a whole run here, so the cut changes nothing but memory).
    """
    from stable_baselines3 import HerReplayBuffer
    from stable_baselines3.common.noise import NormalActionNoise

    from zoo.params import RUNNER_KEYS, check_hyperparams, load_hyperparams

    kwargs = check_hyperparams({**load_hyperparams(cell.algo, cell.env_id), **dict(cell.params)})
    for key in RUNNER_KEYS:
        kwargs.pop(key, None)
    noise_type = kwargs.pop("noise_type", None)
    noise_std = kwargs.pop("noise_std", None)
    if noise_type is not None:
        if noise_type != "normal":
            raise ValueError(f"{cell.name}: noise_type {noise_type!r} is not handled here; use normal")
        dim = int(np.prod(env.action_space.shape))
        kwargs["action_noise"] = NormalActionNoise(np.zeros(dim), float(noise_std) * np.ones(dim))
    if kwargs.get("replay_buffer_class") == "HerReplayBuffer":
        kwargs["replay_buffer_class"] = HerReplayBuffer
    if steps < cell.steps:  # a smoke run (--budget-scale): the warm-up shrinks with the budget,
        # but never below one whole episode (HER samples only from finished episodes)
        episode = (env.spec.max_episode_steps if env.spec is not None else None) or 1
        scaled = round(int(kwargs.get("learning_starts", 100)) * steps / cell.steps)
        kwargs["learning_starts"] = max(scaled, episode)
    kwargs["buffer_size"] = min(int(kwargs.get("buffer_size", 1_000_000)), max(steps, 10_000))
    return kwargs


def evaluate(model: Any, env_id: str, episodes: int, seed: int) -> tuple[float, float]:
    """Mean success (``is_success`` at the last step: cumulative in the -v1 envs) and mean return."""
    import gymnasium as gym

    env = gym.make(env_id)
    successes, returns = [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=10_000 * (seed + 1) + episode)
        done, total, info = False, 0.0, {}
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            done = terminated or truncated
        successes.append(float(info.get("is_success", False)))
        returns.append(total)
    env.close()
    return float(np.mean(successes)), float(np.mean(returns))


CHECKPOINTS = Path("runs/reengage_checkpoints")
"""Where unfinished cells keep their state between evaluations (the user's own run output)."""
CHECKPOINT_EVERY = 10
"""Evaluations between checkpoints: BitFlip n = 40's replay buffer is a 100 MB pickle, so a
checkpoint after each of its 800 evaluations wrote about 80 GB per cell; every 10th writes 8 GB
and an interruption loses at most 10 evaluation periods (20k steps, about a minute there)."""


def checkpoint_path(checkpoints: Path, name: str, seed: int, budget_scale: float = 1.0) -> Path:
    return result_path(checkpoints, name, seed, budget_scale).with_suffix("")


def save_checkpoint(folder: Path, model: Any, state: dict[str, Any]) -> None:
    """The model, its replay buffer and the curve so far, replaced as a whole.

    They are written to ``<folder>.tmp`` and swapped in by renames; ``load_checkpoint`` takes
    ``<folder>.old`` when a crash fell between the two renames.
    """
    import shutil

    fresh, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    model.save(fresh / "model.zip")
    model.save_replay_buffer(fresh / "replay_buffer.pkl")
    (fresh / "state.json").write_text(json.dumps(state) + "\n")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    fresh.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(
    folder: Path, cls: Any, env: Any, settings: dict[str, Any], device: str = "cpu"
) -> tuple[Any, dict[str, Any]] | None:
    """``(model, state)`` of the checkpoint in ``folder`` (or its ``.old`` twin), None without one
    or when it was made with other ``settings`` (hyperparameters and budget) than the cell's now.

    The files are this script's own output, so the SB3 zip and the pickled buffer are loaded as
    such; never point ``--checkpoints`` at downloaded files.
    """
    for candidate in (folder, folder.with_name(folder.name + ".old")):
        if not (candidate / "state.json").is_file():
            continue
        name = "state.json"
        try:
            state = json.loads((candidate / name).read_text())
            if state.get("settings") != settings:
                print(f"{candidate}: its settings differ from this cell's now; starting afresh", flush=True)
                return None
            name = "model.zip"
            model = cls.load(candidate / name, env=env, device=device)
            name = "replay_buffer.pkl"
            model.load_replay_buffer(candidate / name)
        except Exception as error:
            raise RuntimeError(
                f"checkpoint file {candidate / name} cannot be read ({type(error).__name__}: {error}); "
                f"delete {candidate} to run the cell from the start"
            ) from error
        return model, state
    return None


def run_cell(
    cell: Cell,
    seed: int,
    budget_scale: float = 1.0,
    report: Any = None,
    checkpoints: Path | None = None,
    device: str = "cpu",
    checkpoint_every: int = CHECKPOINT_EVERY,
) -> dict[str, Any]:
    """Train and evaluate one (cell, seed) on ``device``; ``report(point)`` is called after each evaluation.

    With ``checkpoints``, the state after every ``checkpoint_every``-th evaluation is kept there
    and an interrupted cell continues from its last checkpoint: the curve is the same run's, but the random streams
    restart at the resume (``resumed_at`` in the result lists those steps), so it is not
    bit-identical to an uninterrupted run. The checkpoint is deleted once the result is written.
    """
    import gymnasium as gym
    import torch as th

    import zoo  # noqa: F401  (registers the environments)
    from zoo.algos import algo_class

    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 1:
        raise ValueError(f"checkpoint_every={checkpoint_every!r}: must be an int >= 1 (evaluations)")
    th.set_num_threads(1)
    steps = cell.budget(budget_scale)
    eval_every = max(round(cell.eval_every * budget_scale), 1)
    env = gym.make(cell.env_id)
    kwargs = agent_kwargs(cell, steps, env)
    cls = algo_class(cell.algo)
    shown = {key: repr(value) if not isinstance(value, int | float | str | list | dict) else value
             for key, value in kwargs.items()}  # fmt: skip
    settings = json.loads(json.dumps({"hyperparams": shown, "steps": steps, "eval_every": eval_every}))
    folder = None if checkpoints is None else checkpoint_path(checkpoints, cell.name, seed, budget_scale)
    restored = None if folder is None else load_checkpoint(folder, cls, env, settings, device)
    curve: list[dict[str, float]] = []
    train_seconds, done_steps, resumed_at = 0.0, 0, []
    cpu_seconds: float | None = 0.0  # this process's CPU time: immune to pauses and other jobs
    if restored is None:
        model = cls(env=env, seed=seed, device=device, verbose=0, **kwargs)
    else:
        model, state = restored
        curve, train_seconds, done_steps = state["curve"], state["train_seconds"], state["steps"]
        cpu_seconds = state.get("train_cpu_seconds")
        resumed_at = [*state["resumed_at"], done_steps]
        model.set_random_seed(seed + 1_000 * len(resumed_at))
        print(f"{cell.name} seed={seed}: resumed at step {done_steps} from {folder}", flush=True)
    while done_steps < steps:
        chunk = min(eval_every, steps - done_steps)
        started, started_cpu = time.perf_counter(), time.process_time()
        model.learn(chunk, reset_num_timesteps=done_steps == 0)
        train_seconds += time.perf_counter() - started
        if cpu_seconds is not None:
            cpu_seconds += time.process_time() - started_cpu
        done_steps += chunk
        success, mean_return = evaluate(model, cell.env_id, cell.eval_episodes, seed)
        point = {"steps": done_steps, "success": success, "return": round(mean_return, 4)}
        curve.append(point)
        if report is not None:
            report(point)
        if folder is not None and done_steps < steps and len(curve) % checkpoint_every == 0:
            state = {
                "steps": done_steps,
                "curve": curve,
                "train_seconds": train_seconds,
                "train_cpu_seconds": cpu_seconds,
                "resumed_at": resumed_at,
                "settings": settings,
            }
            save_checkpoint(folder, model, state)
    env.close()
    return {
        "config": cell.name,
        "seed": seed,
        "algo": cell.algo,
        "env_id": cell.env_id,
        "metric": cell.metric,
        "parent": cell.parent,
        "budget_scale": budget_scale,
        "steps": steps,
        "eval_every": eval_every,
        "eval_episodes": cell.eval_episodes,
        "hyperparams": shown,
        "curve": curve,
        "train_seconds": round(train_seconds, 3),
        "seconds_per_step": train_seconds / steps,
        "train_cpu_seconds": None if cpu_seconds is None else round(cpu_seconds, 3),
        "cpu_seconds_per_step": None if cpu_seconds is None else cpu_seconds / steps,
        "machine": {
            "device": str(model.device),
            "gpu": th.cuda.get_device_name(model.device) if model.device.type == "cuda" else None,
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": 1,
            "python": platform.python_version(),
        },
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "resumed_at": resumed_at,
    }


def write_result(path: Path, result: dict[str, Any]) -> None:
    from zoo.hub.files import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result, indent=1) + "\n")


def finished_steps(path: Path) -> int | None:
    """The budget a result file was run with (None when there is no file)."""
    if not path.is_file():
        return None
    try:
        return int(json.loads(path.read_text())["steps"])
    except (ValueError, KeyError, TypeError) as error:
        raise SystemExit(f"result file {path} cannot be read ({type(error).__name__}: {error})") from error


def pending(
    cells: list[Cell], seeds: list[int], results: Path, budget_scale: float
) -> list[tuple[Cell, int]]:
    """The (cell, seed) pairs without a result file; a file of another budget stops the sweep.

    A cell whose budget changed (BitFlip n = 40 went from 400k to the Appendix's 1.6M steps) would
    otherwise count as done with a short curve, or be overwritten: such a file must be moved aside.
    """
    todo = []
    # Seed-major: a partial sweep has every config at its first seeds, not all seeds of the first config.
    for seed in seeds:
        for cell in cells:
            path = result_path(results, cell.name, seed, budget_scale)
            steps = finished_steps(path)
            expected = cell.budget(budget_scale)
            if steps is None:
                todo.append((cell, seed))
            elif steps != expected:
                raise SystemExit(
                    f"result file {path} ran {steps} steps but {cell.name} is now a {expected}-step "
                    "cell; move the file out of the results folder to run the cell at its new budget"
                )
    return todo


def finish(results: Path, checkpoints: Path | None, result: dict[str, Any], command: str) -> None:
    """Write a finished cell's file, then drop its checkpoint (if it is on this machine)."""
    import shutil

    name, seed, scale = result["config"], result["seed"], result["budget_scale"]
    write_result(result_path(results, name, seed, scale), {**result, "command": command})
    if checkpoints is not None:
        shutil.rmtree(checkpoint_path(checkpoints, name, seed, scale), ignore_errors=True)
    print(f"done {name} seed={seed}", flush=True)


def run_serial(todo: list[tuple[Cell, int]], results: Path, budget_scale: float, command: str,
               checkpoints: Path | None = None, device: str = "cpu",
               checkpoint_every: int = CHECKPOINT_EVERY) -> None:  # fmt: skip
    for cell, seed in todo:

        def show(point: dict[str, float], cell: Cell = cell, seed: int = seed) -> None:
            print(f"{cell.name} seed={seed} {point}", flush=True)

        result = run_cell(cell, seed, budget_scale, show, checkpoints, device, checkpoint_every)
        finish(results, checkpoints, result, command)


def run_ray(todo: list[tuple[Cell, int]], results: Path, budget_scale: float, command: str,
            address: str | None, workers: int, checkpoints: Path | None = None, device: str = "cpu",
            gpus_per_trial: float = 0.0, checkpoint_every: int = CHECKPOINT_EVERY) -> None:  # fmt: skip
    """One Ray Tune trial per (cell, seed), one CPU (and ``gpus_per_trial``) each; the driver writes
    each finished cell."""
    from ray import tune

    cells = {cell.name: cell for cell, _ in todo}

    def trainable(config: dict[str, Any]) -> None:
        os.environ["OMP_NUM_THREADS"] = "1"
        cell = Cell(**{**config["cell"], "params": tuple(map(tuple, config["cell"]["params"]))})

        def report(point: dict[str, float]) -> None:
            tune.report({**point, "done": False})

        result = run_cell(
            cell, config["seed"], config["budget_scale"], report, checkpoints, device, checkpoint_every
        )
        tune.report({"steps": result["steps"], "done": True, "result_json": json.dumps(result)})

    class WriteResults(tune.Callback):
        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            last = trial.last_result or {}
            if not last.get("result_json"):
                return
            finish(results, checkpoints, json.loads(last["result_json"]), command)

    from zoo.agents.common.parallel import init_ray

    if address:
        init_ray(address)
    else:  # workers at the caller's priority, not Ray's niceness 15 (see init_ray)
        init_ray(num_cpus=workers, include_dashboard=False)
    space = {
        "trial": tune.grid_search([
            {"cell": dataclasses.asdict(cells[cell.name]), "seed": seed} for cell, seed in todo
        ]),
        "budget_scale": budget_scale,
    }  # fmt: skip

    def unpack(config: dict[str, Any]) -> None:
        trainable({**config["trial"], "budget_scale": config["budget_scale"]})

    tuner = tune.Tuner(
        tune.with_resources(unpack, {"cpu": 1, "gpu": gpus_per_trial}),
        param_space=space,
        tune_config=tune.TuneConfig(max_concurrent_trials=None if address else workers),
        run_config=tune.RunConfig(
            name="reengage",
            callbacks=[WriteResults()],
            verbose=1,
            storage_path=str(Path("runs/ray").resolve()),
        ),
    )
    tuner.fit()


def listing(cells: list[Cell], seeds: list[int], results: Path, budget_scale: float) -> str:
    lines = ["config | algo | env | steps | seeds done | seeds missing"]
    for cell in cells:
        expected = cell.budget(budget_scale)
        ran = {s: finished_steps(result_path(results, cell.name, s, budget_scale)) for s in seeds}
        done = [s for s in seeds if ran[s] == expected]
        missing = [s if ran[s] is None else f"{s} (file has {ran[s]} steps)" for s in seeds if s not in done]
        lines.append(
            f"{cell.name} | {cell.algo} | {cell.env_id} | {cell.steps} | {done or '-'} | {missing or '-'}"
        )
    return "\n".join(lines)


def summary(results: Path) -> str:
    """Markdown table of the finished files: final and per-evaluation metric, mean ± std over seeds."""
    by_config = _finished(results)
    lines = [
        "| config | env | steps | metric | final (mean ± std) | seeds | wall / env step | CPU / env step "
        "| vs parent (same seeds) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in by_config.items():
        metric = runs[0]["metric"]
        final = [run["curve"][-1][metric] for run in runs]
        per_step = np.mean([run["seconds_per_step"] for run in runs])
        cpu = [run.get("cpu_seconds_per_step") for run in runs]
        cpu_text = f"{1000 * np.mean(cpu):.1f} ms" if all(value is not None for value in cpu) else "-"
        ratio = ""
        parent = by_config.get(runs[0]["parent"] or "")
        if parent:
            seeds = {run["seed"] for run in parent} & {run["seed"] for run in runs}
            for key, unit in (("cpu_seconds_per_step", "CPU"), ("seconds_per_step", "wall")):
                mine = [run.get(key) for run in runs if run["seed"] in seeds]
                theirs = [run.get(key) for run in parent if run["seed"] in seeds]
                if seeds and None not in mine + theirs:
                    ratio = f"{np.mean(mine) / np.mean(theirs):.2f}× ({unit})"
                    break
        lines.append(
            f"| {name} | {runs[0]['env_id']} | {runs[0]['steps']} | {metric} | {np.mean(final):.2f} ± "
            f"{np.std(final):.2f} | {len(runs)} | {1000 * per_step:.1f} ms | {cpu_text} | {ratio} |"
        )
    lines.append("")
    lines.append("Curves (mean ± std over seeds at each evaluation):")
    for name, runs in by_config.items():
        metric = runs[0]["metric"]
        points = []
        for index, point in enumerate(runs[0]["curve"]):
            values = [run["curve"][index][metric] for run in runs if len(run["curve"]) > index]
            points.append(f"{point['steps']}: {np.mean(values):.2f} ± {np.std(values):.2f}")
        lines.append(f"- {name}: " + ", ".join(points))
    return "\n".join(lines)


def milestones(results: Path, marks: list[int] | None = None, threshold: float = 0.8) -> str:
    """Per env, a Markdown table of each config's metric at chosen steps (mean ± std over seeds),
    the steps at which each seed first reaches ``threshold`` (success metrics) and the mean of the
    last five evaluations, which is what BENCHMARKS.md shows."""
    by_env: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name, runs in _finished(results).items():
        by_env.setdefault(runs[0]["env_id"], {})[name] = runs
    blocks = []
    for env_id, configs in _in_grid_order(by_env):
        steps = sorted(
            {point["steps"] for runs in configs.values() for run in runs for point in run["curve"]}
        )
        chosen = marks or steps[:: max(1, -(-len(steps) // 10))]
        chosen = [mark for mark in chosen if mark in steps]
        metric = next(iter(configs.values()))[0]["metric"]
        success = metric == "success"
        header = [
            "config",
            "seeds",
            *(f"{mark // 1000}k" if mark % 1000 == 0 else str(mark) for mark in chosen),
        ]
        if success:
            header.append(f"steps to {threshold:g} (per seed)")
        header.append("last 5 evals")
        lines = [f"{env_id} ({metric}):", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for name, runs in configs.items():
            at = [{point["steps"]: point[metric] for point in run["curve"]} for run in runs]
            row = [name, ",".join(str(run["seed"]) for run in runs)]
            for mark in chosen:
                values = [curve[mark] for curve in at if mark in curve]
                row.append(f"{np.mean(values):.2f} ± {np.std(values):.2f}" if values else "-")
            if success:
                reached = [next((s for s in sorted(curve) if curve[s] >= threshold), None) for curve in at]
                row.append(", ".join("never" if s is None else f"{s // 1000}k" for s in reached))
            last = [np.mean([point[metric] for point in run["curve"][-5:]]) for run in runs]
            row.append(f"{np.mean(last):.2f} ± {np.std(last):.2f}")
            lines.append("| " + " | ".join(row) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


GREEDY_NOISY_SEEK = 11.80
"""The reference greedy agent's return on NoisySeek (ReenGAGE Appendix)."""


def _in_grid_order(by_env: dict[str, Any]) -> list[tuple[str, Any]]:
    """``by_env``'s items ordered as the grid lists the envs (unknown envs last)."""
    order = list(dict.fromkeys(cell.env_id for cell in grid()))
    return sorted(by_env.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order))


def _finished(results: Path) -> dict[str, list[dict[str, Any]]]:
    by_config: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(results.glob("*__seed*.json")):
        result = json.loads(path.read_text())
        by_config.setdefault(result["config"], []).append(result)
    return by_config


def plot(results: Path, path: Path) -> Path:
    """The finished cells' curves as a PNG: one panel per environment, mean ± std over seeds."""
    from zoo.plots import Curve, Panel, ReferenceLine, plot_panels

    by_env: dict[str, list[Curve]] = {}
    metrics: dict[str, str] = {}
    for name, runs in _finished(results).items():
        metric = runs[0]["metric"]
        length = min(len(run["curve"]) for run in runs)
        values = np.array([[point[metric] for point in run["curve"][:length]] for run in runs])
        mean, std = values.mean(axis=0), values.std(axis=0)
        env_id = runs[0]["env_id"]
        metrics[env_id] = metric
        by_env.setdefault(env_id, []).append(
            Curve(
                f"{name} ({len(runs)} seed{'s' * (len(runs) > 1)})",
                [point["steps"] for point in runs[0]["curve"][:length]],
                mean,
                mean - std,
                mean + std,
            )
        )
    if not by_env:
        raise ValueError(f"{results} holds no finished cells to plot")
    panels = []
    for env_id, curves in _in_grid_order(by_env):
        success = metrics[env_id] == "success"
        references = (
            [ReferenceLine(GREEDY_NOISY_SEEK, f"greedy agent (Appendix): {GREEDY_NOISY_SEEK}")]
            if env_id.startswith("zoo/NoisySeek")
            else []
        )
        panels.append(
            Panel(
                f"{env_id}: {'success over 50' if success else 'return over 100'} evaluation episodes",
                "environment steps",
                "success rate (goal reached in the episode)" if success else "episode return",
                curves,
                band="mean ± std over seeds",
                y_range=(0.0, 1.0) if success else None,
                references=references,
            )
        )
    return plot_panels(
        panels, path, title="ReenGAGE with the paper's hyperparameters (benchmarks/reengage.py)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cells", nargs="+", default=None, help="config names to run (default: the whole grid)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--list", action="store_true", help="print the grid: which cells are done and missing"
    )
    parser.add_argument("--summary", action="store_true", help="print the finished cells as a Markdown table")
    parser.add_argument("--milestones", type=int, nargs="*", default=None, metavar="STEPS",
                        help="print per-env tables at these steps (none given: about 10 evaluations)")  # fmt: skip
    parser.add_argument("--plot", type=Path, default=None, help="draw the finished cells' curves to this PNG")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiply every budget (smoke runs)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the result files")
    parser.add_argument("--backend", choices=["ray", "serial"], default="ray")
    parser.add_argument("--device", default="cpu", help="torch device of every cell: cpu, cuda, cuda:1")
    parser.add_argument("--gpus-per-trial", type=float, default=0.25,
                        help="with --device cuda: the GPU share Ray gives each trial (0.25: 4 per GPU)")  # fmt: skip
    parser.add_argument("--checkpoints", type=Path, default=CHECKPOINTS,
                        help="folder of the unfinished cells' state (resumed on the next run)")  # fmt: skip
    parser.add_argument("--checkpoint-every", type=int, default=CHECKPOINT_EVERY, metavar="N",
                        help="evaluations between checkpoints (an interruption loses at most N)")  # fmt: skip
    parser.add_argument("--no-checkpoints", action="store_true", help="keep no state between evaluations")
    parser.add_argument("--address", default=None, help="Ray cluster address (default: a local Ray)")
    parser.add_argument("--workers", type=int, default=max((os.cpu_count() or 2) - 1, 1),
                        help="local Ray: cells at once (one CPU each)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.budget_scale <= 0:
        parser.error(f"--budget-scale {args.budget_scale:g}: must be > 0")
    if args.checkpoint_every < 1:
        parser.error(f"--checkpoint-every {args.checkpoint_every}: must be >= 1 (evaluations)")
    if not 0 < args.gpus_per_trial <= 1:
        parser.error(f"--gpus-per-trial {args.gpus_per_trial:g}: must be in (0, 1]")
    try:
        import torch as th

        device = th.device(args.device)
    except RuntimeError as error:
        parser.error(f"--device {args.device!r}: not a torch device ({error})")
    if device.type == "cuda" and not th.cuda.is_available():
        parser.error(f"--device {args.device!r}: no CUDA device is visible here")
    cells = grid()
    if args.cells:
        known = {cell.name for cell in cells}
        unknown = [name for name in args.cells if name not in known]
        if unknown:
            parser.error(f"--cells {' '.join(unknown)}: unknown; the grid has {', '.join(sorted(known))}")
        cells = [cell for cell in cells if cell.name in args.cells]
    if args.list:
        print(listing(cells, args.seeds, args.results, args.budget_scale))
        return
    finished = args.results if args.budget_scale == 1.0 else args.results / f"scale{args.budget_scale:g}"
    if args.plot is not None:
        print(f"wrote {plot(finished, args.plot)}")
    if args.summary:
        print(summary(finished))
    if args.milestones is not None:
        print(milestones(finished, args.milestones or None))
    if args.summary or args.plot is not None or args.milestones is not None:
        return
    todo = pending(cells, args.seeds, args.results, args.budget_scale)
    print(
        f"{len(todo)} cell(s) to run: {', '.join(f'{c.name}/seed{s}' for c, s in todo) or 'none'}", flush=True
    )
    if not todo:
        return
    command = shlex.join([sys.executable.rsplit("/", 1)[-1], *sys.argv])
    checkpoints = None if args.no_checkpoints else args.checkpoints.resolve()
    if args.backend == "serial":
        run_serial(
            todo, args.results, args.budget_scale, command, checkpoints, args.device, args.checkpoint_every
        )
    else:
        gpus = args.gpus_per_trial if args.device.startswith("cuda") else 0.0
        run_ray(todo, args.results, args.budget_scale, command, args.address, args.workers, checkpoints,
                args.device, gpus, args.checkpoint_every)  # fmt: skip


if __name__ == "__main__":
    main()
