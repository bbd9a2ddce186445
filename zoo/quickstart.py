"""``zoo quickstart``: each method of the zoo working, in about five minutes on a 2-core CPU, offline.

Three phases run as jobs on a pool of worker processes (``--workers``, one per core by
default), each with its own progress bar:

1. **Kickstarting** where it pays: the multi-task Dark Room suite of BENCHMARKS.md (8 goals, the
   task index in the observation, one bundled PPO expert per goal, see :mod:`zoo.teachers`). A
   PPO student kickstarted from the 8 experts trains beside the same PPO from scratch, 3 seeds.
   Headline: the env steps each kickstarted seed needs to reach, and keep, the same seed's
   from-scratch final return, and the speed-up over the from-scratch run's own steps to it.
2. **Algorithm Distillation**: the bundled pretrained model (:func:`zoo.agents.ad.load_pretrained`)
   improves in context on the 17 held-out goals with frozen weights (10 evaluation seeds) beside
   its source algorithm (:func:`zoo.agents.ad.make_source`) learning the same goals from scratch
   on the same seeds. Headline: in-context episodes to 80 % of the optimal return vs the
   source's. A small AD is also trained here on fresh noisy-expert histories, so the whole
   pipeline (collect, train, evaluate) runs.
3. **ReenGAGE** vs DDPG+HER on ``zoo/ContinuousSeek-d5-v1`` at 2,000 env steps, where
   BENCHMARKS.md's sweep shows the difference (success 0.76 vs 0.42, seed 0).

Then it prints the tables and writes, to a new run folder: ``results.json`` (per method the
curves of every seed, train and evaluation seeds, budgets, headline; wall time per phase),
``quickstart.png`` (a panel per method), ``kickstart.png``, ``algorithm_distillation.png``,
``reengage.png``, ``quickstart.mp4`` (AD's in-context episodes on a held-out goal one after
another, then the kickstarted student on each goal), the kickstarted student and the AD
trained here.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import queue as queue_module
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from zoo.config import QuickstartConfig
from zoo.envs.darkroom import DarkRoomEnv
from zoo.io import atomic_write_text
from zoo.runner import new_numbered_folder

ENV_ID = "zoo/DarkRoom-v0"
GOAL_ENV_ID = "zoo/ContinuousSeek-d5-v1"
#: Dark Room's episode length.
HORIZON = 20
#: The seed of the kickstarting evaluation env (Dark Room starts in the centre and is
#: deterministic, so one greedy episode per goal is the return).
KICKSTART_EVAL_SEED = 12345

#: Evaluation seeds of the pretrained AD and its source are 10000 + --seed + 0, 1, ...
AD_EVAL_SEED_BASE = 10_000

# Labels: the same text in tables, figure legends and results.json.
SCRATCH = "PPO from scratch"
KICKSTARTED = "Kickstarted PPO (8 bundled experts)"
AD_PRETRAINED = "AD, pretrained (bundled)"
AD_LIVE = "AD trained here (tiny budget)"
HER = "DDPG+HER"
REENGAGE = "ReenGAGE-DDPG+HER"

PHASES = {
    "kickstart": "Kickstarting",
    "ad_pretrained": "AD, pretrained",
    "ad_live": "AD trained here",
    "reengage": "ReenGAGE vs HER",
    "video": "Video",
}


@dataclass(frozen=True)
class Budget:
    """How much the quickstart trains and evaluates; ``--fast`` picks :data:`FAST`."""

    kickstart_steps: int
    """Env steps per student (all 8 goals together)."""
    kickstart_eval_every: int
    """Env steps between two greedy evaluations of a student."""
    kickstart_seeds: tuple[int, ...]
    """Training seeds of both students (offset by ``--seed``)."""
    ad_eval_seeds: int
    """Evaluation seeds of the pretrained AD and of its source (10000 + ``--seed`` + 0, 1, ...)."""
    ad_eval_episodes: int
    """In-context episodes per held-out goal."""
    ad_n_tasks: int | None
    """Held-out goals evaluated (``None``: all 17)."""
    ad_source_episodes: int
    """Episodes the source learns each held-out goal for (its histories' length), unless the model
    records ``history_episodes``."""
    live_history_episodes: int
    """Episodes per noisy-expert history for the AD trained here."""
    live_repeats: int
    """Histories per train goal."""
    live_subsample: int
    """Every n-th episode of a history is kept (the distilled learner is n times faster)."""
    live_context: int
    """Context length of the AD trained here."""
    live_train_steps: int
    """Its gradient steps."""
    live_batch_size: int
    """Its batch of context windows."""
    live_eval_seeds: int
    """Its evaluation seeds."""
    live_eval_episodes: int
    """Its in-context episodes per held-out goal."""
    reengage_steps: int
    """Env steps per DDPG agent."""
    reengage_eval_every: int
    """Env steps between two evaluations."""
    reengage_eval_episodes: int
    """Deterministic episodes per evaluation."""
    reengage_seeds: tuple[int, ...]
    """Training seeds (offset by ``--seed``)."""
    reengage_overrides: tuple[tuple[str, Any], ...] = ()
    """Changes to the paper's hyperparameters (zoo/hyperparams), as ``(key, value)`` pairs."""
    video_ad_episodes: int = 8
    """AD's in-context episodes shown in the video."""
    video_student_goals: int = 8
    """Goals the kickstarted student is shown on."""


FULL = Budget(
    kickstart_steps=24_576,
    kickstart_eval_every=1_024,
    kickstart_seeds=(0, 1, 2),
    ad_eval_seeds=10,
    ad_eval_episodes=40,
    ad_n_tasks=None,
    ad_source_episodes=200,
    live_history_episodes=40,
    live_repeats=1,
    live_subsample=2,
    live_context=60,
    live_train_steps=100,
    live_batch_size=16,
    live_eval_seeds=2,
    live_eval_episodes=10,
    reengage_steps=2_000,
    reengage_eval_every=500,
    reengage_eval_episodes=50,
    reengage_seeds=(0, 1, 2),
)
FAST = Budget(
    kickstart_steps=1_024,
    kickstart_eval_every=512,
    kickstart_seeds=(0, 1),
    ad_eval_seeds=2,
    ad_eval_episodes=3,
    ad_n_tasks=3,
    ad_source_episodes=6,
    live_history_episodes=8,
    live_repeats=1,
    live_subsample=2,
    live_context=20,
    live_train_steps=10,
    live_batch_size=4,
    live_eval_seeds=1,
    live_eval_episodes=2,
    reengage_steps=200,
    reengage_eval_every=100,
    reengage_eval_episodes=3,
    reengage_seeds=(0,),
    reengage_overrides=(("learning_starts", 100), ("batch_size", 32), ("policy_kwargs", {"net_arch": [32]})),
    video_ad_episodes=1,
    video_student_goals=1,
)


# -- progress: workers report (phase, amount) to the main process -------------------------------
_report_to: Callable[[str, float], None] | None = None


def _init_worker(progress_queue: Any) -> None:
    """Pool initializer: one torch thread per process, progress messages to the main process."""
    import torch

    global _report_to
    torch.set_num_threads(1)
    _report_to = lambda phase, amount: progress_queue.put((phase, amount))  # noqa: E731


def _report(phase: str, amount: float) -> None:
    if _report_to is not None:
        _report_to(phase, amount)


@dataclass(frozen=True)
class _Clock:
    """When a job began: wall-clock time (comparable across processes) and this process' CPU time."""

    wall: float
    cpu: float


def _start_job() -> _Clock:
    return _Clock(time.time(), time.process_time())


def _job_record(clock: _Clock, **values: Any) -> dict[str, Any]:
    """A job's result with its wall-clock span and the CPU time its process spent on it."""
    return {
        **values,
        "started": round(clock.wall, 3),
        "ended": round(time.time(), 3),
        "cpu_seconds": round(time.process_time() - clock.cpu, 2),
    }


# -- 1. kickstarting -------------------------------------------------------------------------------
def _kickstart_env(tasks: Sequence[Any], seed: int) -> Any:
    from stable_baselines3.common.vec_env import VecMonitor

    from zoo.envs.sb3 import SB3VecEnv
    from zoo.envs.vector import make_multitask_vec_env

    return VecMonitor(SB3VecEnv(make_multitask_vec_env(ENV_ID, list(tasks), task_in_obs=True, seed=seed)))


def _kickstart_job(arm: str, seed: int, budget: Budget, device: str, save_to: str | None) -> dict[str, Any]:
    """Train one student on the 8-goal suite; its greedy return (mean over goals) every few steps."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    from zoo.agents import KickstartedPPO
    from zoo.teachers import SUITE_PPO, load_suite_teachers, suite_greedy_returns

    started = _start_job()
    tasks, experts = load_suite_teachers(ENV_ID, device=device)
    env = _kickstart_env(tasks, seed)
    settings = {**SUITE_PPO, "seed": seed, "device": device}
    if arm == KICKSTARTED:
        model: Any = KickstartedPPO(
            "MlpPolicy", env, teacher=experts, kickstart_coef="lin_1.0_0.0", **settings
        )
    else:
        model = PPO("MlpPolicy", env, **settings)
    steps, returns = [0], [float(suite_greedy_returns(model, ENV_ID, tasks, HORIZON).mean())]

    class Evaluate(BaseCallback):
        reported = 0

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            _report("kickstart", self.num_timesteps - self.reported)
            self.reported = self.num_timesteps
            if self.num_timesteps >= steps[-1] + budget.kickstart_eval_every:
                steps.append(int(self.num_timesteps))
                returns.append(float(suite_greedy_returns(self.model, ENV_ID, tasks, HORIZON).mean()))

    model.learn(budget.kickstart_steps, callback=Evaluate())
    if steps[-1] != model.num_timesteps:
        steps.append(int(model.num_timesteps))
        returns.append(float(suite_greedy_returns(model, ENV_ID, tasks, HORIZON).mean()))
    if save_to is not None:
        from zoo.hub import save_agent

        save_agent(model, save_to, env_id=ENV_ID, extra={"suite_tasks": [list(task) for task in tasks]})
    env.close()
    return _job_record(started, arm=arm, seed=seed, steps=steps, returns=returns)


#: The student's settings as results.json records them (``zoo.teachers.SUITE_PPO``).
SUITE_PPO_REPORT = {"algo": "PPO", "policy": "MlpPolicy [64]", "n_steps": 64, "batch_size": 128,
                    "learning_rate": 1e-3, "ent_coef": 0.01}  # fmt: skip


def steps_to(steps: Sequence[int], returns: Sequence[float], threshold: float) -> int | None:
    """First evaluation step from which the return stays at or above ``threshold`` to the end.

    :param steps: env steps of the evaluations.
    :param returns: the returns there.
    :param threshold: the return to reach.
    :return: the step, or ``None`` if the last evaluation is below ``threshold``.
    """
    reached = None
    for step, value in zip(steps, returns, strict=True):
        if value >= threshold - 1e-9:
            reached = step if reached is None else reached
        else:
            reached = None
    return reached


def _mean_std(values: Sequence[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=float)
    return {"mean": round(float(array.mean()), 3), "std": round(float(array.std()), 3)}


def _kickstart_summary(runs: list[dict[str, Any]], budget: Budget) -> dict[str, Any]:
    from zoo.teachers import load_suite_teachers, suite_greedy_returns

    tasks, experts = load_suite_teachers(ENV_ID, device="cpu")
    teacher_returns = [
        float(suite_greedy_returns(experts[index], ENV_ID, [task] * len(tasks), HORIZON).min())
        for index, task in enumerate(tasks)
    ]
    optima = [DarkRoomEnv.optimal_return(task) for task in tasks]
    by_arm: dict[str, dict[int, dict[str, Any]]] = {SCRATCH: {}, KICKSTARTED: {}}
    for run in runs:
        by_arm[run["arm"]][run["seed"]] = run
    seeds = sorted(by_arm[SCRATCH])
    rows = []
    for seed in seeds:
        scratch, kickstarted = by_arm[SCRATCH][seed], by_arm[KICKSTARTED][seed]
        threshold = scratch["returns"][-1]
        scratch_steps = steps_to(scratch["steps"], scratch["returns"], threshold)
        kickstarted_steps = steps_to(kickstarted["steps"], kickstarted["returns"], threshold)
        speedup = (
            round(scratch_steps / kickstarted_steps, 2)
            if scratch_steps and kickstarted_steps  # a threshold met at step 0 says nothing
            else None
        )
        rows.append(
            {
                "seed": seed,
                "scratch_final_return": round(threshold, 3),
                "scratch_steps": scratch_steps,
                "kickstarted_steps": kickstarted_steps,
                "speedup": speedup,
            }
        )
    speedups = [row["speedup"] for row in rows if row["speedup"] is not None]
    curves = {
        label: [
            {"seed": seed, "steps": run["steps"], "return": [round(value, 3) for value in run["returns"]]}
            for seed, run in sorted(arm.items())
        ]
        for label, arm in by_arm.items()
    }
    finals = {label: _mean_std([run["returns"][-1] for run in arm.values()]) for label, arm in by_arm.items()}
    headline = {
        "rule": "env steps to the first evaluation from which the greedy return (mean over the 8 goals) "
        "stays at or above the same seed's from-scratch final return; speed-up = from-scratch steps / "
        "kickstarted steps under the same rule",
        "per_seed": rows,
        "speedup": _mean_std(speedups) if speedups else None,
        "seeds_with_speedup": len(speedups),
        "final_return": finals,
    }
    return {
        "env_id": ENV_ID,
        "tasks": [list(task) for task in tasks],
        "task_in_obs": True,
        "optimal_return_mean": round(float(np.mean(optima)), 3),
        "teachers": {
            "source": "bundled (zoo.teachers.load_suite_teachers)",
            "greedy_returns": teacher_returns,
        },
        "student": {**SUITE_PPO_REPORT, "kickstart_coef": "lin_1.0_0.0", "n_envs": len(tasks)},
        "train_seeds": seeds,
        "eval_seeds": [KICKSTART_EVAL_SEED],
        "evaluation": "one greedy episode per goal (Dark Room is deterministic from its centre start), "
        f"every {budget.kickstart_eval_every} env steps",
        "budget_steps": budget.kickstart_steps,
        "curves": curves,
        "headline": headline,
    }


# -- 2. Algorithm Distillation --------------------------------------------------------------------
def _source_episodes(model: Any, budget: Budget) -> int:
    """Episodes of the source's from-scratch run: its histories' length when the model records it,
    else the budget's; never fewer than AD's in-context episodes."""
    value = model.metadata.get("history_episodes")
    episodes = value if isinstance(value, int) and value >= 1 else budget.ad_source_episodes
    return max(episodes, budget.ad_eval_episodes)


def _ad_pretrained_job(seed: int, budget: Budget, device: str) -> dict[str, Any]:
    """The bundled AD in context on the held-out goals, and its source from scratch, one seed."""
    import zoo.envs
    from zoo.agents.ad import evaluate_in_context, load_pretrained, make_source, source_learning_curve

    started = _start_job()
    model = load_pretrained(ENV_ID, device=device)
    tasks = zoo.envs.tasks(ENV_ID, "test")[: budget.ad_n_tasks]
    ad = evaluate_in_context(
        model, ENV_ID, tasks=tasks, episodes=budget.ad_eval_episodes, seed=seed, label=AD_PRETRAINED
    )
    _report("ad_pretrained", 0.5)
    source = make_source(model.metadata["source"])
    episodes = _source_episodes(model, budget)
    curve = source_learning_curve(source, ENV_ID, tasks=tasks, episodes=episodes, seed=seed)
    _report("ad_pretrained", 0.5)
    return _job_record(
        started,
        seed=seed,
        tasks=[list(task) for task in tasks],
        ad=ad.returns.tolist(),
        source=curve.returns.tolist(),
        source_name=source.name,
    )


def _ad_live_job(seed: int, budget: Budget, device: str, folder: str) -> dict[str, Any]:
    """Collect noisy-expert histories, train a small AD on them and evaluate it in context."""
    import zoo.envs
    from zoo.agents.ad import AlgorithmDistillation, NoisyExpert, collect_histories, evaluate_in_context

    started = _start_job()
    source = NoisyExpert(decay_fraction=0.25)
    dataset = collect_histories(
        ENV_ID,
        source,
        Path(folder) / "ad_histories",
        episodes=budget.live_history_episodes,
        tasks=zoo.envs.tasks(ENV_ID, "train") * budget.live_repeats,
        seed=seed,
    )
    collected = time.time()
    # CPU-sized: 2 layers, no dropout (with attention dropout PyTorch leaves the fused kernel).
    model = AlgorithmDistillation(
        dataset,
        context_length=budget.live_context,
        subsample=budget.live_subsample,
        n_layers=2,
        n_heads=4,
        embed_dim=64,
        dropout=0.0,
        attention_dropout=0.0,
        batch_size=budget.live_batch_size,
        learning_rate=1e-3,
        warmup_steps=min(50, budget.live_train_steps // 4),
        seed=seed,
        device=device,
    )
    # AD's learn has a progress bar but no callback: count its batches for the main process' bar.
    sample_batch = model.sample_batch

    def counted_batch() -> dict[str, Any]:
        _report("ad_live", 1)
        return sample_batch()

    model.sample_batch = counted_batch  # type: ignore[method-assign]
    model.learn(budget.live_train_steps)
    model.sample_batch = sample_batch  # type: ignore[method-assign]
    trained = time.time()
    model.save(Path(folder) / "ad_model")
    tasks = zoo.envs.tasks(ENV_ID, "test")[: budget.ad_n_tasks]
    curves = [
        evaluate_in_context(
            model, ENV_ID, tasks=tasks, episodes=budget.live_eval_episodes, seed=seed + index, label=AD_LIVE
        ).returns.tolist()
        for index in range(budget.live_eval_seeds)
    ]
    return _job_record(
        started,
        seed=seed,
        returns=curves,
        tasks=[list(task) for task in tasks],
        collect_seconds=round(collected - started.wall, 1),
        train_seconds=round(trained - collected, 1),
    )


def episodes_to(curve: Sequence[float], threshold: float) -> int | None:
    """First episode (1-based) from which ``curve`` stays at or above ``threshold`` to its end."""
    reached = steps_to(list(range(1, len(curve) + 1)), list(curve), threshold)
    return reached


def _ad_summary(
    pretrained_runs: list[dict[str, Any]], live: dict[str, Any], budget: Budget
) -> dict[str, Any]:
    from zoo.agents.ad import load_pretrained, pretrained_path

    model = load_pretrained(ENV_ID, device="cpu")
    runs = sorted(pretrained_runs, key=lambda run: run["seed"])
    tasks = [tuple(task) for task in runs[0]["tasks"]]
    optimum = float(np.mean([DarkRoomEnv.optimal_return(task) for task in tasks]))
    threshold = 0.8 * optimum
    source_label = f"{runs[0]['source_name']} (AD's source), from scratch"
    # Per seed: the return per episode averaged over the held-out goals.
    ad_curves = [np.asarray(run["ad"]).mean(axis=0) for run in runs]
    source_curves = [np.asarray(run["source"]).mean(axis=0) for run in runs]
    live_curves = [np.asarray(returns).mean(axis=0) for returns in live["returns"]]

    def method(label: str, curves: list[np.ndarray], seeds: list[int]) -> dict[str, Any]:
        matrix = np.stack(curves)
        mean = matrix.mean(axis=0)
        per_seed = [episodes_to(curve.tolist(), threshold) for curve in curves]
        return {
            "label": label,
            "episodes": int(matrix.shape[1]),
            "curves": [
                {"seed": seed, "return": [round(float(v), 3) for v in curve]}
                for seed, curve in zip(seeds, curves, strict=True)
            ],
            "mean": [round(float(v), 3) for v in mean],
            "std": [round(float(v), 3) for v in matrix.std(axis=0)],
            "episodes_to_80_percent": episodes_to(mean.tolist(), threshold),
            "episodes_to_80_percent_per_seed": per_seed,
        }

    eval_seeds = [run["seed"] for run in runs]
    ad = method(AD_PRETRAINED, ad_curves, eval_seeds)
    source = method(source_label, source_curves, eval_seeds)
    live_seeds = [live["seed"] + index for index in range(len(live_curves))]
    trained_here = method(AD_LIVE, live_curves, live_seeds)
    hyper = model.metadata.get("source", {})
    headline = {
        "threshold": round(threshold, 3),
        "rule": "first in-context episode from which the return (mean over the held-out goals, then "
        "over evaluation seeds) stays at or above 80 % of the optimal return (mean over the goals)",
        "ad_episodes_to_80_percent": ad["episodes_to_80_percent"],
        "source_episodes_to_80_percent": source["episodes_to_80_percent"],
        "ad_within": ad["episodes"],
        "source_within": source["episodes"],
        "ad_return_last_episode": {"mean": ad["mean"][-1], "std": ad["std"][-1]},
        "source_return_same_episode": {
            "mean": source["mean"][ad["episodes"] - 1],
            "std": source["std"][ad["episodes"] - 1],
        },
    }
    return {
        "env_id": ENV_ID,
        "split": "test",
        "n_tasks": len(tasks),
        "tasks": [list(task) for task in tasks],
        "optimal_return_mean": round(optimum, 3),
        "pretrained": {
            "model": str(pretrained_path(ENV_ID).name),
            "source": hyper,
            "train_seeds": _model_train_seeds(model),
            "eval_seeds": eval_seeds,
            "budget_steps": {
                "gradient_steps": _model_num_steps(model),
                "in_context_episodes": ad["episodes"],
                "source_episodes": source["episodes"],
            },
            "methods": {AD_PRETRAINED: ad, source_label: source},
        },
        "trained_here": {
            "source": {"name": "noisy_expert", "hyperparameters": {"decay_fraction": 0.25}},
            "train_seeds": [live["seed"]],
            "eval_seeds": live_seeds,
            "budget_steps": {
                "history_episodes": budget.live_history_episodes,
                "histories": f"{budget.live_repeats} per train goal",
                "subsample": budget.live_subsample,
                "context_length": budget.live_context,
                "batch_size": budget.live_batch_size,
                "gradient_steps": budget.live_train_steps,
            },
            "collect_seconds": live["collect_seconds"],
            "train_seconds": live["train_seconds"],
            "methods": {AD_LIVE: trained_here},
            "note": "a tiny budget so that the pipeline runs; it is not expected to learn in context",
        },
        "source_label": source_label,
        "headline": headline,
    }


def _model_num_steps(model: Any) -> int:
    return int(getattr(model, "num_steps", 0))


def _model_train_seeds(model: Any) -> list[int]:
    seed = getattr(model, "seed", None)
    seeds = model.metadata.get("train_seeds")
    if isinstance(seeds, list):
        return [int(value) for value in seeds]
    return [int(seed)] if isinstance(seed, int) else []


# -- 3. ReenGAGE ----------------------------------------------------------------------------------
def _reengage_kwargs(algo: str, budget: Budget, env: gym.Env) -> dict[str, Any]:
    """The paper's settings from zoo/hyperparams, as SB3 arguments (as ``benchmarks/reengage.py``)."""
    from stable_baselines3 import HerReplayBuffer
    from stable_baselines3.common.noise import NormalActionNoise

    from zoo.params import RUNNER_KEYS, check_hyperparams, load_hyperparams

    kwargs = check_hyperparams({**load_hyperparams(algo, GOAL_ENV_ID), **dict(budget.reengage_overrides)})
    for key in (*RUNNER_KEYS, "policy"):
        kwargs.pop(key, None)
    noise_std = kwargs.pop("noise_std", None)
    if kwargs.pop("noise_type", None) == "normal":
        dim = int(np.prod(env.action_space.shape))
        kwargs["action_noise"] = NormalActionNoise(np.zeros(dim), float(noise_std) * np.ones(dim))
    if kwargs.get("replay_buffer_class") == "HerReplayBuffer":
        kwargs["replay_buffer_class"] = HerReplayBuffer
    kwargs["buffer_size"] = min(int(kwargs.get("buffer_size", 1_000_000)), max(budget.reengage_steps, 10_000))
    return kwargs


def _success_rate(model: Any, episodes: int, seed: int) -> float:
    env = gym.make(GOAL_ENV_ID)
    successes = []
    for episode in range(episodes):
        observation, _ = env.reset(seed=10_000 * (seed + 1) + episode)
        done, info = False, {}
        while not done:
            action, _ = model.predict(observation, deterministic=True)
            observation, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        successes.append(float(info.get("is_success", False)))
    env.close()
    return float(np.mean(successes))


def _reengage_job(algo: str, seed: int, budget: Budget, device: str) -> dict[str, Any]:
    """DDPG+HER or ReenGAGE-DDPG+HER with the paper's settings; success rate every few steps."""
    from stable_baselines3.common.callbacks import BaseCallback

    from zoo.algos import algo_class

    started = _start_job()
    env = gym.make(GOAL_ENV_ID)
    kwargs = _reengage_kwargs(algo, budget, env)
    model = algo_class(algo)("MultiInputPolicy", env, seed=seed, device=device, verbose=0, **kwargs)

    class Report(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % 50 == 0:
                _report("reengage", 50)
            return True

    steps, success = [0], [_success_rate(model, budget.reengage_eval_episodes, seed)]
    while model.num_timesteps < budget.reengage_steps:
        chunk = min(budget.reengage_eval_every, budget.reengage_steps - model.num_timesteps)
        model.learn(chunk, reset_num_timesteps=False, callback=Report())
        steps.append(int(model.num_timesteps))
        success.append(_success_rate(model, budget.reengage_eval_episodes, seed))
    env.close()
    label = REENGAGE if algo == "reengage_ddpg" else HER
    hyperparams = {key: value for key, value in kwargs.items() if isinstance(value, int | float | str | bool)}
    return _job_record(started, label=label, seed=seed, steps=steps, success=success, hyperparams=hyperparams)


def _reengage_summary(runs: list[dict[str, Any]], budget: Budget) -> dict[str, Any]:
    curves: dict[str, list[dict[str, Any]]] = {HER: [], REENGAGE: []}
    hyperparams: dict[str, Any] = {}
    for run in sorted(runs, key=lambda run: run["seed"]):
        curves[run["label"]].append({"seed": run["seed"], "steps": run["steps"], "success": run["success"]})
        hyperparams[run["label"]] = run["hyperparams"]
    final = {label: _mean_std([curve["success"][-1] for curve in runs_]) for label, runs_ in curves.items()}
    seeds = len(budget.reengage_seeds)
    run_seconds = float(np.mean([run["ended"] - run["started"] for run in runs]))
    missing = max(3 - seeds, 0)
    why = (
        f"{seeds} seed{'s' if seeds > 1 else ''}, not 3: at the paper's settings ([256, 256] networks, "
        f"batch 512, one gradient step per env step after 1,000) one {budget.reengage_steps:,}-step run "
        f"took {run_seconds:.0f} s here, so {missing} more seed{'s' if missing > 1 else ''} of both agents "
        f"would add about {missing * run_seconds:.0f} s of the two workers' time and break the five "
        "minutes; benchmarks/reengage.py runs the 3-seed sweep (BENCHMARKS.md)"
        if missing
        else f"{seeds} seeds"
    )
    return {
        "env_id": GOAL_ENV_ID,
        "metric": "success rate (goal reached in the episode), deterministic policy",
        "train_seeds": sorted({run["seed"] for run in runs}),
        "eval_seeds": "episode e of a run with seed s resets with seed 10000 * (s + 1) + e",
        "eval_episodes": budget.reengage_eval_episodes,
        "budget_steps": budget.reengage_steps,
        "hyperparams": hyperparams,
        "overrides_of_the_paper_settings": {key: value for key, value in budget.reengage_overrides},
        "curves": curves,
        "headline": {
            "reengage_success": final[REENGAGE],
            "her_success": final[HER],
            "at_steps": budget.reengage_steps,
            "seeds": why,
        },
    }


# -- figures ---------------------------------------------------------------------------------------
def _band(matrix: np.ndarray) -> tuple[list[float], list[float], list[float]]:
    mean, std = matrix.mean(axis=0), matrix.std(axis=0)
    return mean.tolist(), (mean - std).tolist(), (mean + std).tolist()


def _kickstart_panel(summary: dict[str, Any]) -> Any:
    from zoo.plots import Curve, Panel, ReferenceLine

    curves = []
    for label, runs in summary["curves"].items():
        length = min(len(run["steps"]) for run in runs)
        matrix = np.array([run["return"][:length] for run in runs])
        mean, low, high = _band(matrix)
        curves.append(Curve(label, runs[0]["steps"][:length], mean, low, high))
    seeds = len(summary["train_seeds"])
    optimum = summary["optimal_return_mean"]
    scratch_final = summary["headline"]["final_return"][SCRATCH]["mean"]
    return Panel(
        title=f"Kickstarting on {summary['env_id']}\n{len(summary['tasks'])} goals (train and evaluate on all, "
        f"task index in obs), {seeds} training seeds",
        xlabel="environment steps (all goals together)",
        ylabel="greedy return, mean over the goals",
        curves=curves,
        band=f"mean ± std over {seeds} seeds",
        y_range=(0.0, optimum),
        references=(
            ReferenceLine(optimum, f"optimum, mean over the goals = the experts' ({optimum:g})"),
            ReferenceLine(scratch_final, f"from-scratch final return, mean ({scratch_final:.2f})", ":"),
        ),
    )


def _ad_panel(summary: dict[str, Any]) -> Any:
    from zoo.plots import Curve, Panel, ReferenceLine

    curves = []
    methods = {**summary["pretrained"]["methods"], **summary["trained_here"]["methods"]}
    for label, method in methods.items():
        matrix = np.array([curve["return"] for curve in method["curves"]])
        mean, low, high = _band(matrix)
        style = ":" if label == AD_LIVE else "-"
        curves.append(Curve(label, list(range(1, matrix.shape[1] + 1)), mean, low, high, style=style))
    optimum = summary["optimal_return_mean"]
    pretrained = summary["pretrained"]
    return Panel(
        title=f"Algorithm Distillation on {summary['env_id']}\n{summary['n_tasks']} held-out goals "
        f"(split '{summary['split']}'), {len(pretrained['eval_seeds'])} evaluation seeds",
        xlabel="episode (log scale; in context for AD, of learning for the source)",
        ylabel="return, mean over the held-out goals",
        curves=curves,
        band=f"mean ± std over evaluation seeds ({len(pretrained['eval_seeds'])}; "
        f"{len(summary['trained_here']['eval_seeds'])} for the AD trained here)",
        y_range=(0.0, optimum),
        references=(
            ReferenceLine(optimum, f"optimum, mean over the goals ({optimum:.1f})"),
            ReferenceLine(summary["headline"]["threshold"], f"80 % of optimum ({0.8 * optimum:.1f})", ":"),
        ),
        integer_x=True,
        log_x=True,
    )


def _reengage_panel(summary: dict[str, Any]) -> Any:
    from zoo.plots import Curve, Panel

    curves = []
    for label, runs in summary["curves"].items():
        matrix = np.array([run["success"] for run in runs])
        mean, low, high = _band(matrix)
        curves.append(Curve(label, runs[0]["steps"], mean, low, high))
    seeds = len(summary["train_seeds"])
    starts = summary["hyperparams"].get(HER, {}).get("learning_starts")
    return Panel(
        title=f"ReenGAGE vs HER on {summary['env_id']}\nrandom goals, {seeds} training seed"
        f"{'s' if seeds > 1 else ''}, {summary['eval_episodes']} evaluation episodes per point",
        xlabel=f"environment steps (gradient steps start at {starts:,})" if starts else "environment steps",
        ylabel="success rate",
        curves=curves,
        band=f"mean ± std over {seeds} seed{'s' if seeds > 1 else ''}"
        + (" (one seed: no spread)" if seeds == 1 else ""),
        y_range=(0.0, 1.0),
    )


def _write_figures(folder: Path, results: dict[str, Any]) -> list[Path]:
    from zoo.plots import plot_panels

    panels = {
        "kickstart": _kickstart_panel(results["kickstart"]),
        "algorithm_distillation": _ad_panel(results["algorithm_distillation"]),
        "reengage": _reengage_panel(results["reengage"]),
    }
    written = [
        plot_panels(
            list(panels.values()),
            folder / "quickstart.png",
            title="distill-zoo quickstart: knowledge distilled into a learner, three ways",
        )
    ]
    for name, panel in panels.items():
        written.append(plot_panels([panel], folder / f"{name}.png"))
    return written


# -- video -----------------------------------------------------------------------------------------
class TaskIndexObservation(gym.ObservationWrapper):
    """A single Dark Room env with the suite's observation: ``concat(one-hot cell, one-hot task index)``,
    as ``make_multitask_vec_env(..., task_in_obs=True)`` gives it, so the multi-task student can act in
    a rendering env.

    :param env: a Dark Room env (Discrete cell observation).
    :param task_index: the goal's index in the suite.
    :param n_tasks: the suite's size.
    """

    def __init__(self, env: gym.Env, task_index: int, n_tasks: int) -> None:
        super().__init__(env)
        if not isinstance(env.observation_space, gym.spaces.Discrete):
            raise ValueError(f"env has observation space {env.observation_space}; expected Discrete cells")
        if not 0 <= task_index < n_tasks:
            raise ValueError(f"task_index={task_index} must be in [0, {n_tasks})")
        self.cells = int(env.observation_space.n)
        self.task_index = task_index
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.cells + n_tasks,), np.float32)

    def observation(self, observation: Any) -> np.ndarray:
        vector = np.zeros(self.observation_space.shape, dtype=np.float32)
        vector[int(observation)] = 1.0
        vector[self.cells + self.task_index] = 1.0
        return vector


#: Smallest side of the video's scene (Dark Room renders 144 px: three times that).
VIDEO_SIZE = 432


def _video_job(folder: str, budget: Budget, device: str, student_seed: int) -> dict[str, Any]:
    """``quickstart.mp4``: AD's in-context episodes on a held-out goal one after another, then the
    kickstarted student on each goal, with an overlay (agent, episode, step, return so far)."""
    import zoo.envs
    from zoo.agents.ad import load_pretrained
    from zoo.hub import load_agent
    from zoo.hub.video import episode_frames, write_video
    from zoo.teachers import suite_tasks

    started = _start_job()
    frames: list[np.ndarray] = []
    shown: dict[str, Any] = {}
    ad = load_pretrained(ENV_ID, device=device)
    episodes = min(budget.video_ad_episodes, budget.ad_eval_episodes)
    goals = zoo.envs.tasks(ENV_ID, "test")[: budget.ad_n_tasks]
    actions, returns = in_context_rollouts(ad, goals, episodes, seed=VIDEO_SEED)
    chosen = typical_goal(returns)
    goal = tuple(goals[chosen])
    recorded = iter(actions[chosen])
    env = gym.make(ENV_ID, task=goal, render_mode="rgb_array")
    optimum = DarkRoomEnv.optimal_return(goal)
    # Dark Room is deterministic: replaying AD's actions renders exactly the run it made.
    ad_frames, ad_returns = episode_frames(
        None,
        env,
        episodes=episodes,
        label=f"{AD_PRETRAINED}: learns in context, weights frozen",
        detail=lambda _: f"held-out goal {goal} (green), optimum {optimum:g}",
        act_fn=lambda observation, start, reward: next(recorded),
        seed=0,
        min_size=VIDEO_SIZE,
    )
    env.close()
    if not np.allclose(ad_returns, returns[chosen]):
        raise RuntimeError(
            f"replaying AD's actions on {goal} gave {ad_returns}, not {returns[chosen].tolist()}"
        )
    frames += ad_frames
    shown["ad"] = {
        "goal": list(goal),
        "episode_returns": [round(value, 3) for value in ad_returns],
        "choice": f"all {len(goals)} held-out goals ran {episodes} episodes in context side by side "
        f"(sampling, torch seed {VIDEO_SEED}); shown: the goal whose first success came at the median "
        "episode (a typical goal, not the best)",
        "first_success_episode_per_goal": [_first_success(row) for row in returns.tolist()],
    }
    student = load_agent(Path(folder) / "kickstart_student", device=device)
    tasks = suite_tasks(ENV_ID)
    student_returns = []
    for index, task in enumerate(tasks[: budget.video_student_goals]):
        env = TaskIndexObservation(
            gym.make(ENV_ID, task=task, render_mode="rgb_array"), task_index=index, n_tasks=len(tasks)
        )
        goal_frames, goal_returns = episode_frames(
            student,
            env,
            episodes=1,
            label=f"{KICKSTARTED}, seed {student_seed}",
            detail=lambda _, task=task: (
                f"goal {task} (green; its index is in the observation), "
                f"optimum {DarkRoomEnv.optimal_return(task):g}"
            ),
            seed=0,
            min_size=VIDEO_SIZE,
            first_episode=index + 1,
            total_episodes=min(budget.video_student_goals, len(tasks)),
        )
        env.close()
        frames += goal_frames
        student_returns.append(round(goal_returns[0], 3))
    shown["kickstarted_student"] = {"tasks": [list(task) for task in tasks], "returns": student_returns}
    path = write_video(frames, Path(folder) / "quickstart.mp4", fps=10)
    _report("video", 1)
    shown["frames"] = len(frames)
    shown["size"] = [int(frames[0].shape[1]), int(frames[0].shape[0])]
    shown["fps"] = 10
    shown["file"] = path.name
    return _job_record(started, **shown)


#: Torch seed of the video's in-context run.
VIDEO_SEED = 0


def in_context_rollouts(
    model: Any, goals: Sequence[Any], episodes: int, seed: int
) -> tuple[list[list[int]], np.ndarray]:
    """Run ``model`` in context on every goal at once (one batch), ``episodes`` episodes each.

    :param model: an :class:`~zoo.agents.ad.AlgorithmDistillation` model (sampling its actions).
    :param goals: Dark Room goals.
    :param episodes: episodes per goal; the context is kept across them.
    :param seed: torch seed of the action sampling.
    :return: ``(actions per goal, returns[goal, episode])``.
    """
    import torch

    torch.manual_seed(seed)
    envs = [gym.make(ENV_ID, task=tuple(goal)) for goal in goals]
    actions: list[list[int]] = [[] for _ in goals]
    returns = np.zeros((len(goals), episodes))
    state, rewards = None, None
    for episode in range(episodes):
        observations = np.array([env.reset(seed=seed + index)[0] for index, env in enumerate(envs)])
        done = np.zeros(len(envs), dtype=bool)
        starts = np.ones(len(envs), dtype=bool)
        while not done.all():
            chosen, state = model.predict(
                observations, state=state, episode_start=starts, reward=rewards, deterministic=False
            )
            starts = np.zeros(len(envs), dtype=bool)
            step_rewards = np.zeros(len(envs), dtype=np.float32)
            for index, (env, action) in enumerate(zip(envs, chosen, strict=True)):
                observation, reward, terminated, truncated, _ = env.step(int(action))
                observations[index] = observation
                step_rewards[index] = reward
                actions[index].append(int(action))
                done[index] = terminated or truncated
            returns[:, episode] += step_rewards
            rewards = step_rewards
    for env in envs:
        env.close()
    return actions, returns


def _first_success(row: Sequence[float]) -> int | None:
    return next((episode + 1 for episode, value in enumerate(row) if value > 0), None)


def typical_goal(returns: np.ndarray) -> int:
    """Index of the goal whose first rewarded episode is the median one among the goals (the goals
    never rewarded count as later than all others).

    :param returns: ``returns[goal, episode]``.
    """
    if returns.ndim != 2 or returns.shape[0] == 0:
        raise ValueError(f"returns of shape {returns.shape} must be (goals >= 1, episodes)")
    late = returns.shape[1] + 1
    firsts = [_first_success(row) or late for row in returns.tolist()]
    order = sorted(range(len(firsts)), key=lambda index: (firsts[index], index))
    return order[(len(order) - 1) // 2]


# -- printing --------------------------------------------------------------------------------------
def _format_mean_std(entry: dict[str, float] | None, digits: int = 2) -> str:
    if entry is None:
        return "–"
    return f"{entry['mean']:.{digits}f} ± {entry['std']:.{digits}f}"


def _steps_text(value: int | None) -> str:
    return "not reached" if value is None else f"{value:,}"


def _print_tables(console: Any, results: dict[str, Any]) -> None:
    from rich.table import Table

    kickstart = results["kickstart"]
    seeds = len(kickstart["train_seeds"])
    table = Table(
        title=f"Kickstarting on {kickstart['env_id']}, {len(kickstart['tasks'])} goals, {seeds} seeds, "
        f"{kickstart['budget_steps']:,} env steps each (optimum {kickstart['optimal_return_mean']:g})"
    )
    table.add_column("student")
    table.add_column(f"final return (mean ± std, {seeds} seeds)", justify="right")
    table.add_column("env steps to from-scratch final return (per seed)", justify="right")
    table.add_column("speed-up", justify="right")
    headline = kickstart["headline"]
    for label in (SCRATCH, KICKSTARTED):
        key = "scratch_steps" if label == SCRATCH else "kickstarted_steps"
        reached = " / ".join(_steps_text(row[key]) for row in headline["per_seed"])
        speedup = "1×" if label == SCRATCH else f"{_format_mean_std(headline['speedup'], 1)}×"
        table.add_row(label, _format_mean_std(headline["final_return"][label]), reached, speedup)
    console.print(table)

    ad = results["algorithm_distillation"]
    methods = {**ad["pretrained"]["methods"], **ad["trained_here"]["methods"]}
    table = Table(
        title=f"Algorithm Distillation on {ad['env_id']}, {ad['n_tasks']} held-out goals: return per "
        f"episode, mean ± std over evaluation seeds (optimum {ad['optimal_return_mean']:.1f})"
    )
    table.add_column("episode", justify="right")
    for label, method in methods.items():
        table.add_column(f"{label} ({len(method['curves'])} seeds)", justify="right")
    episodes = ad["pretrained"]["methods"][AD_PRETRAINED]["episodes"]
    marks = sorted({1, 2, 3, 5, 10, 15, 20, 30, episodes} & set(range(1, episodes + 1)))
    for episode in marks:
        cells = [
            f"{method['mean'][episode - 1]:.1f} ± {method['std'][episode - 1]:.1f}"
            if episode <= method["episodes"]
            else "–"
            for method in methods.values()
        ]
        table.add_row(str(episode), *cells)
    table.add_row(
        "episodes to 80 %",
        *[
            f"{method['episodes_to_80_percent']}"
            if method["episodes_to_80_percent"] is not None
            else f"not within {method['episodes']}"
            for method in methods.values()
        ],
    )
    console.print(table)

    reengage = results["reengage"]
    table = Table(
        title=f"ReenGAGE vs HER on {reengage['env_id']}: success rate, {reengage['eval_episodes']} "
        f"deterministic episodes, {len(reengage['train_seeds'])} seed(s)"
    )
    table.add_column("agent")
    steps = reengage["curves"][HER][0]["steps"]
    for step in steps:
        table.add_column(f"{step:,} steps", justify="right")
    for label, runs in reengage["curves"].items():
        matrix = np.array([run["success"] for run in runs])
        table.add_row(
            label,
            *[f"{mean:.2f} ± {std:.2f}" for mean, std in zip(matrix.mean(0), matrix.std(0), strict=True)],
        )
    console.print(table)


def _headline_lines(results: dict[str, Any]) -> list[str]:
    kickstart = results["kickstart"]["headline"]
    ad = results["algorithm_distillation"]["headline"]
    reengage = results["reengage"]["headline"]
    ad_text = (
        f"episode {ad['ad_episodes_to_80_percent']}"
        if ad["ad_episodes_to_80_percent"] is not None
        else f"not within {ad['ad_within']} episodes"
    )
    source_text = (
        f"episode {ad['source_episodes_to_80_percent']}"
        if ad["source_episodes_to_80_percent"] is not None
        else f"not within {ad['source_within']} episodes"
    )
    return [
        f"Kickstarting: {_format_mean_std(kickstart['speedup'], 1)}× fewer env steps to the from-scratch "
        f"final return ({kickstart['seeds_with_speedup']} of {len(kickstart['per_seed'])} seeds measurable)",
        f"Algorithm Distillation: 80 % of optimal at {ad_text} in context, its source at {source_text}",
        f"ReenGAGE: success {_format_mean_std(reengage['reengage_success'])} vs DDPG+HER "
        f"{_format_mean_std(reengage['her_success'])} at {reengage['at_steps']:,} steps ({reengage['seeds']})",
    ]


# -- the job runner --------------------------------------------------------------------------------
@dataclass
class _Job:
    phase: str
    """Key of :data:`PHASES` (its progress bar)."""
    name: str
    """What the job is, for the "done" line."""
    function: Callable[..., dict[str, Any]]
    """A module-level function (workers import it), returning a :func:`_job_record`."""
    args: tuple[Any, ...]
    """Its arguments (picklable)."""
    after: int | None = None
    """Index of a job that must finish first."""


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _run_jobs(jobs: list[_Job], totals: dict[str, float], workers: int, console: Any) -> list[dict[str, Any]]:
    """Run ``jobs`` on ``workers`` processes (1: in this process) with one progress bar per phase.

    At most ``workers`` jobs are in flight; a free worker takes the first job in list order whose
    ``after`` job has finished (so list the longest first).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    global _report_to
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    results: list[dict[str, Any] | None] = [None for _ in jobs]
    with Progress(*columns, console=console, transient=False) as progress:
        bars = {
            phase: progress.add_task(f"{PHASES[phase]:<16}", total=total) for phase, total in totals.items()
        }

        def finished(index: int, record: dict[str, Any]) -> None:
            results[index] = record
            job = jobs[index]
            progress.console.print(
                f"  done: {PHASES[job.phase]}, {job.name} ({record['ended'] - record['started']:.0f} s)"
            )

        def next_ready(waiting: list[int]) -> int | None:
            for index in waiting:
                after = jobs[index].after
                if after is None or results[after] is not None:
                    return index
            return None

        waiting = list(range(len(jobs)))
        if workers == 1:
            _report_to = lambda phase, amount: progress.advance(bars[phase], amount)  # noqa: E731
            try:
                while waiting:
                    index = next_ready(waiting)
                    if index is None:
                        raise ValueError("the quickstart's jobs wait on each other in a cycle")
                    waiting.remove(index)
                    finished(index, jobs[index].function(*jobs[index].args))
            finally:
                _report_to = None
            return [record for record in results if record is not None]
        context = multiprocessing.get_context("spawn")
        messages = context.Queue()
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_worker, initargs=(messages,)
        ) as pool:
            running: dict[Future[dict[str, Any]], int] = {}
            try:
                while waiting or running:
                    while len(running) < workers and (index := next_ready(waiting)) is not None:
                        waiting.remove(index)
                        running[pool.submit(jobs[index].function, *jobs[index].args)] = index
                    if not running:
                        raise ValueError("the quickstart's jobs wait on each other in a cycle")
                    done, _ = wait(running, timeout=0.25, return_when=FIRST_COMPLETED)
                    _drain(messages, progress, bars)
                    for future in done:
                        finished(running.pop(future), future.result())
            except BaseException:
                for future in running:
                    future.cancel()
                raise
            _drain(messages, progress, bars)
    return [record for record in results if record is not None]


def _drain(messages: Any, progress: Any, bars: dict[str, Any]) -> None:
    while True:
        try:
            phase, amount = messages.get_nowait()
        except queue_module.Empty:
            return
        progress.advance(bars[phase], amount)


def _plan(budget: Budget, seed: int, device: str, folder: Path) -> tuple[list[_Job], dict[str, float]]:
    """The jobs, longest first so that the workers finish together, and each phase's progress total."""
    jobs: list[_Job] = []
    student = str(folder / "kickstart_student")
    # The video waits for the first kickstarted student; listed first, it runs as soon as it can.
    jobs.append(_Job("video", "quickstart.mp4", _video_job, (str(folder), budget, device, seed), after=None))
    for offset in budget.reengage_seeds:
        for algo, label in (("reengage_ddpg", REENGAGE), ("ddpg", HER)):
            name = f"{label} seed {seed + offset}"
            jobs.append(_Job("reengage", name, _reengage_job, (algo, seed + offset, budget, device)))
    jobs.append(_Job("ad_live", f"seed {seed}", _ad_live_job, (seed, budget, device, str(folder))))
    for offset in budget.kickstart_seeds:
        for arm in (KICKSTARTED, SCRATCH):
            first = arm == KICKSTARTED and offset == budget.kickstart_seeds[0]
            if first:
                jobs[0].after = len(jobs)
                jobs[0].args = (str(folder), budget, device, seed + offset)
            arguments = (arm, seed + offset, budget, device, student if first else None)
            jobs.append(_Job("kickstart", f"{arm} seed {seed + offset}", _kickstart_job, arguments))
    for index in range(budget.ad_eval_seeds):
        # The evaluation seeds of the model card (benchmarks/ad_pretrained.py) at --seed 0.
        eval_seed = AD_EVAL_SEED_BASE + seed + index
        name = f"evaluation seed {eval_seed}"
        jobs.append(_Job("ad_pretrained", name, _ad_pretrained_job, (eval_seed, budget, device)))
    totals = {
        "kickstart": float(2 * len(budget.kickstart_seeds) * budget.kickstart_steps),
        "ad_pretrained": float(budget.ad_eval_seeds),
        "ad_live": float(budget.live_train_steps),
        "reengage": float(2 * len(budget.reengage_seeds) * budget.reengage_steps),
        "video": 1.0,
    }
    return jobs, totals


def rounded(value: Any, digits: int = 4) -> Any:
    """``value`` with every float rounded to ``digits`` decimals, through dicts, lists and tuples, and
    numpy scalars and arrays turned into plain numbers and lists (no float32 noise such as
    ``0.20000000298023224`` in results.json)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(item, digits) for item in value]
    return value


def _command(config: QuickstartConfig) -> str:
    flags = ["--fast"] if config.fast else []
    defaults = QuickstartConfig()
    for name in ("output", "seed", "device", "workers"):
        if getattr(config, name) != getattr(defaults, name):
            flags.append(f"--{name} {getattr(config, name)}")
    return " ".join(["zoo quickstart", *flags])


def _load_average() -> list[float] | None:
    return [round(value, 2) for value in os.getloadavg()] if hasattr(os, "getloadavg") else None


def _machine(load_at_start: list[float] | None) -> dict[str, Any]:
    import torch

    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads_per_process": 1,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": _load_average(),
        "load_note": "load averages (1, 5, 15 min) count every process on the machine, not only these",
    }


def _check_bundles() -> None:
    """Fail before anything trains when a bundled model the quickstart needs is missing."""
    from zoo.agents.ad import available_pretrained
    from zoo.teachers import suite_tasks

    suite_tasks(ENV_ID)
    if ENV_ID not in available_pretrained():
        raise FileNotFoundError(
            f"no bundled pretrained Algorithm Distillation model for {ENV_ID} "
            f"(zoo.agents.ad.available_pretrained() = {available_pretrained()}); reinstall distill-zoo"
        )


def quickstart(config: QuickstartConfig) -> Path:
    """Run the main job and return the run folder."""
    import torch
    from rich.console import Console

    started = time.perf_counter()
    load_at_start = _load_average()
    config.validate()
    torch.set_num_threads(1)  # tiny models: one thread is as fast as two and does not thrash
    _check_bundles()
    budget = FAST if config.fast else FULL
    device = _resolve_device(config.device)
    workers = config.workers
    folder = new_numbered_folder(config.output, "run")
    console = Console(width=max(Console().width, 100), highlight=False)
    console.print(
        f"distill-zoo quickstart ({'fast' if config.fast else 'full'} budget, device {device}, "
        f"{workers} worker process{'es' if workers > 1 else ''}) -> {folder}"
    )
    jobs, totals = _plan(budget, config.seed, device, folder)
    ks_seeds, re_seeds = budget.kickstart_seeds, budget.reengage_seeds
    console.print(
        f"Kickstarting: {len(ks_seeds)} seeds x 2 students x {budget.kickstart_steps:,} env steps on 8 Dark Room goals; "
        f"AD: bundled model on the held-out goals, {budget.ad_eval_seeds} evaluation seeds x "
        f"{budget.ad_eval_episodes} episodes, and one trained here ({budget.live_train_steps} steps); "
        f"ReenGAGE vs DDPG+HER: {len(re_seeds)} seed(s) x {budget.reengage_steps:,} env steps on {GOAL_ENV_ID}"
    )
    records = _run_jobs(jobs, totals, workers, console)
    by_phase: dict[str, list[dict[str, Any]]] = {phase: [] for phase in PHASES}
    for job, record in zip(jobs, records, strict=True):
        by_phase[job.phase].append(record)

    results: dict[str, Any] = {
        "command": _command(config),
        "config": asdict(config),
        "budget": "fast" if config.fast else "full",
        "device": device,
        "machine": _machine(load_at_start),
        "kickstart": _kickstart_summary(by_phase["kickstart"], budget),
        "algorithm_distillation": _ad_summary(by_phase["ad_pretrained"], by_phase["ad_live"][0], budget),
        "reengage": _reengage_summary(by_phase["reengage"], budget),
    }
    phase_started = time.perf_counter()
    console.print("Figures ...")
    figures = _write_figures(folder, results)
    results["video"] = {
        key: value for key, value in by_phase["video"][0].items() if key not in ("started", "ended")
    }
    wall: dict[str, Any] = {}
    for phase, records_ in by_phase.items():
        wall[phase] = {
            "wall_seconds": round(max(r["ended"] for r in records_) - min(r["started"] for r in records_), 1),
            "job_seconds": round(sum(r["ended"] - r["started"] for r in records_), 1),
            "cpu_seconds": round(sum(r["cpu_seconds"] for r in records_), 1),
        }
    wall["figures"] = {"wall_seconds": round(time.perf_counter() - phase_started, 1)}
    wall["total_seconds"] = round(time.perf_counter() - started, 1)
    results["wall_time"] = wall
    results["note"] = (
        "phases run at the same time on the worker processes: wall_seconds is each phase's span, "
        "job_seconds the sum of its jobs' durations"
    )
    results = rounded(results)
    atomic_write_text(folder / "results.json", json.dumps(results, indent=2) + "\n")
    _print_tables(console, results)
    for line in _headline_lines(results):
        console.print(line)
    names = ", ".join(path.name for path in figures)
    console.print(
        f"\nWrote {folder}/: results.json, {names}, quickstart.mp4, kickstart_student/, ad_model/ "
        f"({wall['total_seconds']:.0f} s)"
    )
    return folder
