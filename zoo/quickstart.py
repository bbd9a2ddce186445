"""``zoo quickstart``: the main job, on a laptop CPU in minutes and with no network.

1. Loads the zoo's pretrained Dark Room teacher (bundled, through ``zoo.hub.load_teacher``).
2. Trains a PPO student kickstarted from it beside the same student from scratch (two seeds),
   and reports the environment steps each needs to reach 90 % of the optimal return.
3. Collects noise-distillation histories (a scripted expert whose ε-greedy noise decays from 1
   to 0) on the Dark Room train goals, trains a small Algorithm Distillation transformer on
   every 4th episode of them, and evaluates it in context on the held-out
   goals with frozen weights (return per in-context episode), beside an untrained model.
4. Prints a results table and writes learning-curve PNGs, ``results.json`` and a replay MP4
   of the kickstarted student to a new run folder, saying where.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import zoo.envs
from zoo.config import QuickstartConfig
from zoo.envs.darkroom import DarkRoomEnv
from zoo.io import atomic_write_text
from zoo.runner import new_numbered_folder

ENV_ID = "zoo/DarkRoom-v0"
TEACHER_TASK = (0, 8)


@dataclass(frozen=True)
class Budget:
    """How much the quickstart trains; ``--fast`` picks the small one."""

    kickstart_steps: int
    eval_every: int
    seeds: tuple[int, ...]
    ad_history_episodes: int
    ad_subsample: int
    ad_train_steps: int
    ad_context: int
    ad_eval_episodes: int
    ad_eval_tasks: int | None


FULL = Budget(
    kickstart_steps=24_000,
    eval_every=1_024,
    seeds=(0, 1, 2),
    ad_history_episodes=80,
    ad_subsample=4,
    ad_train_steps=1500,
    ad_context=200,
    ad_eval_episodes=20,
    ad_eval_tasks=None,
)
FAST = Budget(
    kickstart_steps=4_096,
    eval_every=1_024,
    seeds=(0,),
    ad_history_episodes=40,
    ad_subsample=2,
    ad_train_steps=60,
    ad_context=80,
    ad_eval_episodes=3,
    ad_eval_tasks=4,
)


def _greedy_return(model: Any, task: tuple[int, int]) -> float:
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    # Dark Room from its fixed centre start is deterministic: one greedy episode is the return.
    mean_return, _ = evaluate_policy(model, Monitor(gym.make(ENV_ID, task=task)), n_eval_episodes=1)
    return float(mean_return)


def _train_student(
    teacher: Any | None, seed: int, budget: Budget, device: str
) -> tuple[Any, list[int], list[float]]:
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecMonitor

    from zoo.agents import KickstartedPPO
    from zoo.envs.sb3 import SB3VecEnv

    env = VecMonitor(SB3VecEnv(gym.make_vec(ENV_ID, num_envs=8, tasks=[TEACHER_TASK] * 8)))
    env.seed(seed)
    hyperparams: dict[str, Any] = {
        "n_steps": 128,
        "batch_size": 256,
        "n_epochs": 4,
        "learning_rate": 1e-3,
        "ent_coef": 0.02,
        "policy_kwargs": {"net_arch": [64, 64]},
        "seed": seed,
        "device": device,
    }
    if teacher is None:
        model: Any = PPO("MlpPolicy", env, **hyperparams)
    else:
        model = KickstartedPPO("MlpPolicy", env, teacher=teacher, kickstart_coef="lin_2.0_0.0", **hyperparams)
    steps: list[int] = []
    returns: list[float] = []

    class Evaluate(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps // budget.eval_every > len(steps) - 1:
                steps.append(self.num_timesteps)
                returns.append(_greedy_return(self.model, TEACHER_TASK))
            return True

    steps.append(0)
    returns.append(_greedy_return(model, TEACHER_TASK))
    model.learn(budget.kickstart_steps, callback=Evaluate())
    steps.append(int(model.num_timesteps))
    returns.append(_greedy_return(model, TEACHER_TASK))
    env.close()
    return model, steps, returns


def _steps_to(threshold: float, steps: list[int], returns: list[float]) -> int | None:
    return next((s for s, r in zip(steps, returns) if r >= threshold), None)


def _algorithm_distillation(folder: Path, budget: Budget, seed: int, device: str) -> dict[str, Any]:
    from zoo.agents.ad import AlgorithmDistillation, NoisyExpert, collect_histories, evaluate_in_context
    from zoo.agents.ad.baselines import source_learning_curve
    from zoo.agents.ad.plots import plot_in_context

    started = time.perf_counter()
    # Noise distillation: the scripted expert with ε going from 1 to 0 over the first quarter of
    # each history, four histories per train goal; keeping every 4th episode makes the distilled
    # learner four times faster than its source.
    source = NoisyExpert(decay_fraction=0.25)
    train_goals = zoo.envs.tasks(ENV_ID, "train")
    dataset = collect_histories(
        ENV_ID,
        source,
        folder / "ad_histories",
        episodes=budget.ad_history_episodes,
        tasks=train_goals * 4,
        seed=seed,
    )
    collect_seconds = time.perf_counter() - started
    # A CPU-sized model: 2 layers instead of the paper's 4, and no attention dropout (with it,
    # PyTorch falls back to the unfused attention kernel, about 4x slower on a CPU).
    architecture = {"n_layers": 2, "n_heads": 4, "embed_dim": 64, "attention_dropout": 0.0, "batch_size": 32}
    model = AlgorithmDistillation(
        dataset,
        context_length=budget.ad_context,
        subsample=budget.ad_subsample,
        learning_rate=1e-3,
        warmup_steps=min(100, budget.ad_train_steps // 4),
        seed=seed,
        device=device,
        tensorboard_log=str(folder / "tensorboard"),
        **architecture,
    )
    untrained = AlgorithmDistillation(
        dataset,
        context_length=budget.ad_context,
        subsample=budget.ad_subsample,
        seed=seed + 1,
        device=device,
        **architecture,
    )
    started = time.perf_counter()
    model.learn(budget.ad_train_steps, progress_bar=True)
    train_seconds = time.perf_counter() - started
    model.save(folder / "ad_model")
    evaluation = {
        "episodes": budget.ad_eval_episodes,
        "n_tasks": budget.ad_eval_tasks,
        "seed": seed,
    }
    trained_result = evaluate_in_context(model, ENV_ID, split="test", label="AD (trained)", **evaluation)
    untrained_result = evaluate_in_context(
        untrained, ENV_ID, split="test", label="AD (untrained)", **evaluation
    )
    test_goals = [tuple(task) for task in trained_result.tasks]
    # The source on the same goals with the ε schedule of its histories, first episodes only.
    source_result = source_learning_curve(
        source, ENV_ID, split="test", episodes=budget.ad_history_episodes, tasks=test_goals, seed=seed
    )
    source_result.returns = source_result.returns[:, : budget.ad_eval_episodes]
    optimal = float(np.mean([DarkRoomEnv.optimal_return(goal) for goal in test_goals]))
    plot_in_context(
        [trained_result, untrained_result, source_result], folder / "ad_in_context.png", optimal=optimal
    )
    return {
        "trained": trained_result.to_dict(),
        "untrained": untrained_result.to_dict(),
        "source": source_result.to_dict(),
        "optimal_mean_return": optimal,
        "source_algorithm": "noisy_expert (decay_fraction 0.25)",
        "history_episodes": budget.ad_history_episodes,
        "subsample": budget.ad_subsample,
        "train_steps": budget.ad_train_steps,
        "context_length": budget.ad_context,
        "collect_seconds": round(collect_seconds, 1),
        "train_seconds": round(train_seconds, 1),
    }


def quickstart(config: QuickstartConfig) -> Path:
    """Run the main job and return the run folder."""
    import torch

    from zoo.hub import load_teacher, record_video
    from zoo.plots import plot_curves

    # The models are tiny: one thread is as fast as two and does not thrash on a busy machine.
    torch.set_num_threads(1)
    budget = FAST if config.fast else FULL
    folder = new_numbered_folder(config.output, "run")
    print(f"distill-zoo quickstart ({'fast' if config.fast else 'full'} budget) -> {folder}")

    teacher, info = load_teacher(ENV_ID, task=TEACHER_TASK, return_info=True, device=config.device)
    optimal = DarkRoomEnv.optimal_return(TEACHER_TASK)
    teacher_return = _greedy_return(teacher, TEACHER_TASK)
    print(
        f"[1/3] teacher for {ENV_ID} goal {TEACHER_TASK}: {info.source} ({info.revision}), return {teacher_return:g}"
    )

    print(
        f"[2/3] kickstarting: PPO from scratch vs kickstarted PPO, {budget.kickstart_steps} steps x {len(budget.seeds)} seeds"
    )
    curves: dict[str, list[tuple[list[int], list[float]]]] = {"PPO from scratch": [], "Kickstarted PPO": []}
    student = None
    for seed in budget.seeds:
        for name, chosen_teacher in (("PPO from scratch", None), ("Kickstarted PPO", teacher)):
            model, steps, returns = _train_student(chosen_teacher, config.seed + seed, budget, config.device)
            curves[name].append((steps, returns))
            if chosen_teacher is not None and student is None:
                student = model
    threshold = 0.9 * optimal
    kickstart_rows = {}
    plotted = {}
    for name, runs in curves.items():
        length = min(len(steps) for steps, _ in runs)
        matrix = np.array([returns[:length] for _, returns in runs])
        plotted[name] = (runs[0][0][:length], matrix.mean(axis=0), matrix.std(axis=0))
        reached = [_steps_to(threshold, steps, returns) for steps, returns in runs]
        kickstart_rows[name] = {
            "final_return_mean": float(matrix[:, -1].mean()),
            "final_return_std": float(matrix[:, -1].std()),
            "steps_to_threshold": reached,
        }
    plot_curves(
        plotted,
        folder / "kickstart_curves.png",
        xlabel="environment steps",
        ylabel="greedy episode return",
        title=f"Kickstarting on {ENV_ID}, goal {TEACHER_TASK} (optimal {optimal:g})",
    )
    assert student is not None
    video = record_video(
        student, ENV_ID, folder / "replay.mp4", episodes=1, env_kwargs={"task": TEACHER_TASK}
    )

    print(
        f"[3/3] Algorithm Distillation: noisy-expert histories of {budget.ad_history_episodes} episodes "
        f"(every {budget.ad_subsample}th kept), "
        f"{budget.ad_train_steps} training steps, in-context evaluation on held-out goals"
    )
    ad = _algorithm_distillation(folder, budget, config.seed, config.device)

    results = {
        "env_id": ENV_ID,
        "teacher": {
            "task": list(TEACHER_TASK),
            "source": info.source,
            "revision": info.revision,
            "return": teacher_return,
        },
        "optimal_return": optimal,
        "threshold": threshold,
        "kickstart": kickstart_rows,
        "algorithm_distillation": ad,
        "budget": "fast" if config.fast else "full",
    }
    atomic_write_text(folder / "results.json", json.dumps(results, indent=2) + "\n")
    _print_table(results)
    print(
        f"\nWrote {folder}/: results.json, kickstart_curves.png, ad_in_context.png, replay.mp4 ({video.name}), ad_model/"
    )
    return folder


def _print_table(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(
        title=f"Kickstarting on {results['env_id']} (threshold {results['threshold']:.1f} of optimal {results['optimal_return']:g})"
    )
    table.add_column("student")
    table.add_column("final greedy return", justify="right")
    table.add_column("steps to threshold (per seed)", justify="right")
    for name, row in results["kickstart"].items():
        reached = ", ".join("not reached" if s is None else str(s) for s in row["steps_to_threshold"])
        table.add_row(name, f"{row['final_return_mean']:.1f} ± {row['final_return_std']:.1f}", reached)
    console.print(table)
    ad = results["algorithm_distillation"]
    table = Table(
        title=f"Algorithm Distillation, held-out goals (mean optimal return {ad['optimal_mean_return']:.1f})"
    )
    table.add_column("in-context episode", justify="right")
    table.add_column("AD trained", justify="right")
    table.add_column("AD untrained", justify="right")
    table.add_column("noisy expert (the source)", justify="right")
    columns = [ad["trained"], ad["untrained"], ad["source"]]
    for episode in range(len(columns[0]["mean"])):
        cells = [f"{column['mean'][episode]:.1f} ± {column['std'][episode]:.1f}" for column in columns]
        table.add_row(str(episode + 1), *cells)
    console.print(table)
