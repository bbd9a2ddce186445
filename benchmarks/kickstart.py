"""Kickstarting benchmark: 8 Dark Room goals, one multi-task student (task index in the observation).

Arms, each over several seeds and the same env-step budget:

* ``scratch``: plain PPO;
* ``generalist``: KickstartedPPO from one teacher trained (PPO, longer budget) on all 8 tasks;
* ``experts``: KickstartedPPO from one expert per task (``teacher={i: expert_i}``);
* ``pbt``: ``experts`` with λ per teacher, learning rate and entropy coefficient tuned by
  population-based training (:func:`zoo.agents.kickstart.pbt.run_pbt`).

Measured: the deterministic return averaged over the 8 tasks during training, the env steps
each arm needs to reach the from-scratch arm's final return, the final return relative to the
teacher(s), and the training wall time per env step relative to plain PPO (evaluation excluded),
all in the same process. Teachers are trained here: each expert is PPO on its own goal, trained
until it is optimal (or a step cap).

Run: ``python benchmarks/kickstart.py --seeds 0 1 2`` (see ``--help``); results go to stdout
and, with ``--output``, a JSON file.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch as th
import tyro
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecMonitor

from zoo.agents import KickstartedPPO
from zoo.envs.sb3 import SB3VecEnv
from zoo.envs.vector import make_multitask_vec_env
from zoo.hub.files import atomic_write_text
from zoo.teachers import suite_greedy_returns

ENV_ID = "zoo/DarkRoom-v0"
#: 4 corners (distance 8 from the start: best return 13) and 4 cells at distance 6 (best 15).
GOALS: list[tuple[int, int]] = [(0, 0), (0, 8), (8, 0), (8, 8), (0, 2), (2, 8), (8, 6), (6, 0)]
HORIZON = 20


@dataclass
class BenchConfig:
    """Budget and settings of the kickstarting benchmark."""

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """Student seeds."""
    budget: int = 32768
    """Env steps per student (all 8 tasks together)."""
    eval_every: int = 2048
    """Env steps between two evaluations of the student."""
    expert_cap: int = 65536
    """Most env steps spent training one expert."""
    generalist_budget: int = 131072
    """Env steps for the generalist teacher (plain PPO on the 8 tasks)."""
    kickstart_coef: str = "lin_1.0_0.0"
    """λ schedule of the kickstarted arms (PBT tunes its own)."""
    pbt_population: int = 4
    """PBT members per seed (0 skips the PBT arm)."""
    pbt_perturbations: int = 3
    """PBT exploit/explore rounds (each member trains budget / (perturbations + 1) per interval)."""
    overhead_repeats: int = 0
    """Extra timing-only runs: alternate scratch / generalist / experts this many times."""
    overhead_budget: int = 16384
    """Env steps of each timing-only run (no evaluation during it)."""
    output: Path | None = None
    """Where to write the JSON results."""
    teacher_dir: Path = Path("runs/kickstart_bench_teachers")
    """Where the trained teachers are saved (PBT workers reload them from here)."""
    reuse_teachers: bool = False
    """Load the teachers from ``teacher_dir`` when they are there instead of training them."""
    arms: list[str] = field(default_factory=lambda: ["scratch", "generalist", "experts"])
    """Which non-PBT arms to run (scratch is needed for the summary)."""


def make_env(tasks: list[tuple[int, int]], seed: int) -> VecMonitor:
    """The multi-task vector env: sub-env i runs ``tasks[i]``; obs = one-hot cell + one-hot task index."""
    return VecMonitor(SB3VecEnv(make_multitask_vec_env(ENV_ID, tasks, task_in_obs=True, seed=seed)))


def ppo_kwargs(seed: int) -> dict:
    return {
        "n_steps": 64,
        "batch_size": 128,
        "learning_rate": 1e-3,
        "ent_coef": 0.01,
        "policy_kwargs": {"net_arch": [64]},
        "seed": seed,
        "device": "cpu",
    }


def evaluate(model, tasks: list[tuple[int, int]]) -> np.ndarray:
    """Deterministic return of one episode per task (the env is deterministic)."""
    return suite_greedy_returns(model, ENV_ID, tasks, horizon=HORIZON)


class Curve(BaseCallback):
    """Evaluate every ``every`` steps; keep the training wall time without the evaluation time."""

    def __init__(self, every: int) -> None:
        super().__init__()
        self.every = every
        self.points: list[tuple[int, float]] = []
        self.eval_seconds = 0.0
        self.eval_cpu_seconds = 0.0
        self._next = every

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.num_timesteps >= self._next:
            start, start_cpu = time.perf_counter(), time.process_time()
            self.points.append((self.num_timesteps, float(evaluate(self.model, GOALS).mean())))
            self._next += self.every
            self.eval_seconds += time.perf_counter() - start
            self.eval_cpu_seconds += time.process_time() - start_cpu


def train_expert(index: int, cap: int, directory: Path, reuse: bool) -> tuple[str, float]:
    """PPO on goal ``index`` only (all sub-envs run it; the obs keeps the 8-task layout)."""
    goal = GOALS[index]
    best = HORIZON + 1 - (abs(goal[0] - 4) + abs(goal[1] - 4))
    tasks = [goal] * len(GOALS)
    path = directory / f"expert_{index}.zip"
    if reuse and path.exists():
        return str(path), float(evaluate(PPO.load(path, device="cpu"), tasks).mean())
    model = PPO("MlpPolicy", make_env(tasks, seed=100 + index), **ppo_kwargs(100 + index))
    score = 0.0
    while model.num_timesteps < cap:
        model.learn(4096, reset_num_timesteps=False)
        score = float(evaluate(model, tasks).mean())
        if score >= best:
            break
    path = directory / f"expert_{index}.zip"
    model.save(path)
    return str(path), score


def run_student(
    arm: str, seed: int, config: BenchConfig, teacher, budget: int | None = None, every: int | None = None
) -> dict:
    env = make_env(GOALS, seed=seed)
    if teacher is None:
        model = PPO("MlpPolicy", env, **ppo_kwargs(seed))
    else:
        model = KickstartedPPO(
            "MlpPolicy", env, teacher=teacher, kickstart_coef=config.kickstart_coef, **ppo_kwargs(seed)
        )
    curve = Curve(every or config.eval_every)
    start, start_cpu = time.perf_counter(), time.process_time()
    model.learn(budget or config.budget, callback=curve)
    seconds = time.perf_counter() - start - curve.eval_seconds
    cpu_seconds = time.process_time() - start_cpu - curve.eval_cpu_seconds
    final = float(evaluate(model, GOALS).mean())
    return {
        "arm": arm,
        "seed": seed,
        "curve": curve.points,
        "final": final,
        "train_seconds": seconds,
        "train_cpu_seconds": cpu_seconds,
        "steps": model.num_timesteps,
    }


def steps_to(curve: list[tuple[int, float]], threshold: float) -> int | None:
    """First evaluation step from which the return stays >= ``threshold`` until the end."""
    reached = None
    for steps, value in curve:
        if value >= threshold:
            reached = steps if reached is None else reached
        else:
            reached = None
    return reached


def main(config: BenchConfig) -> None:
    th.set_num_threads(1)
    config.teacher_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    experts, expert_scores = {}, []
    for index in range(len(GOALS)):
        path, score = train_expert(index, config.expert_cap, config.teacher_dir, config.reuse_teachers)
        experts[index] = path
        expert_scores.append(score)
        print(f"expert {index} goal {GOALS[index]}: return {score}", flush=True)
    generalist_path = config.teacher_dir / "generalist.zip"
    if config.reuse_teachers and generalist_path.exists():
        generalist = PPO.load(generalist_path, device="cpu")
    else:
        generalist = PPO("MlpPolicy", make_env(GOALS, seed=999), **ppo_kwargs(999))
        generalist.learn(config.generalist_budget)
        generalist.save(generalist_path)
    generalist_score = float(evaluate(generalist, GOALS).mean())
    print(
        f"generalist: return {generalist_score}; teachers took {time.perf_counter() - started:.0f}s",
        flush=True,
    )

    runs = []
    for seed in config.seeds:
        # Arms interleaved per seed so that machine load affects them alike.
        arms = (("scratch", None), ("generalist", str(generalist_path)), ("experts", experts))
        for arm, teacher in (item for item in arms if item[0] in config.arms):
            result = run_student(arm, seed, config, teacher)
            runs.append(result)
            print(
                f"{arm:10s} seed {seed}: final {result['final']:.2f}  "
                f"{result['train_seconds'] / result['steps'] * 1e6:.0f} us/step",
                flush=True,
            )
        if config.pbt_population:
            runs.append(run_pbt_arm(seed, config, experts))
            print(f"pbt        seed {seed}: final {runs[-1]['final']:.2f}", flush=True)

    summary = summarise(runs, float(np.mean(expert_scores)), generalist_score) if runs else {}
    if config.overhead_repeats:
        summary["overhead"] = measure_overhead(config, experts, str(generalist_path))
    print(json.dumps(summary, indent=2))
    if config.output is not None:
        payload = {
            "config": {k: str(v) for k, v in asdict(config).items()},
            "runs": runs,
            "summary": summary,
            "expert_scores": expert_scores,
            "generalist_score": generalist_score,
        }
        atomic_write_text(config.output, json.dumps(payload, indent=2))


def run_pbt_arm(seed: int, config: BenchConfig, experts: dict[int, str]) -> dict:
    from zoo.agents.kickstart.pbt import PBTConfig, run_pbt

    intervals = config.pbt_perturbations + 1
    kwargs = ppo_kwargs(seed)
    kwargs.pop("seed")
    kwargs.pop("device")
    kwargs.pop("learning_rate")
    kwargs.pop("ent_coef")
    start = time.perf_counter()
    result = run_pbt(
        PBTConfig(
            env_id=ENV_ID,
            tasks=GOALS,
            task_in_obs=True,
            teacher=experts,
            agent_kwargs=kwargs,
            population_size=config.pbt_population,
            perturbations=config.pbt_perturbations,
            steps_per_interval=config.budget // intervals,
            eval_episodes=len(GOALS),
            kickstart_coef_range=(0.0, 2.0),
            learning_rate_range=(3e-4, 3e-3),
            ent_coef_range=(0.0, 0.02),
            seed=seed,
            num_cpus=2,
            device="cpu",
            storage_path=str(Path("runs/kickstart_bench_pbt").resolve() / f"seed_{seed}"),
        )
    )
    # The best member's lineage: its return per interval (steps are per member).
    best_trial = max(result.histories, key=lambda t: result.histories[t][-1]["episode_return"])
    curve = [(int(r["num_timesteps"]), float(r["episode_return"])) for r in result.histories[best_trial]]
    return {
        "arm": "pbt",
        "seed": seed,
        "curve": curve,
        "final": result.best_return,
        "train_seconds": time.perf_counter() - start,
        "steps": config.budget,
        "population_steps": config.budget * config.pbt_population,
        "lambda_schedule": result.lambda_schedules[best_trial],
    }


def measure_overhead(config: BenchConfig, experts: dict[int, str], generalist_path: str) -> dict:
    """Alternate the arms on the same seed; median ratio of time per env step to plain PPO."""
    ratios: dict[str, dict[str, list[float]]] = {}
    for repeat in range(config.overhead_repeats):
        timings = {}
        for arm, teacher in (("scratch", None), ("generalist", generalist_path), ("experts", experts)):
            run = run_student(arm, 0, config, teacher, budget=config.overhead_budget, every=10**9)
            timings[arm] = (run["train_seconds"] / run["steps"], run["train_cpu_seconds"] / run["steps"])
        for arm in ("generalist", "experts"):
            entry = ratios.setdefault(arm, {"wall": [], "cpu": []})
            entry["wall"].append(timings[arm][0] / timings["scratch"][0])
            entry["cpu"].append(timings[arm][1] / timings["scratch"][1])
        print(f"overhead repeat {repeat}: {timings}", flush=True)
    return {
        arm: {
            kind: {"median": float(np.median(v)), "min": float(np.min(v)), "max": float(np.max(v))}
            for kind, v in entry.items()
        }
        for arm, entry in ratios.items()
    }


def summarise(runs: list[dict], expert_score: float, generalist_score: float) -> dict:
    by_arm: dict[str, list[dict]] = {}
    for run in runs:
        by_arm.setdefault(run["arm"], []).append(run)
    scratch_final = {run["seed"]: run["final"] for run in by_arm["scratch"]}
    scratch_speed = {run["seed"]: run["train_seconds"] / run["steps"] for run in by_arm["scratch"]}
    scratch_cpu = {run["seed"]: run["train_cpu_seconds"] / run["steps"] for run in by_arm["scratch"]}
    summary = {"expert_mean_return": expert_score, "generalist_return": generalist_score}
    for arm, arm_runs in by_arm.items():
        finals = [run["final"] for run in arm_runs]
        reach = [steps_to(run["curve"], scratch_final[run["seed"]]) for run in arm_runs]
        speedups = [run["steps"] / s if s else None for run, s in zip(arm_runs, reach)]
        overhead = [(run["train_seconds"] / run["steps"]) / scratch_speed[run["seed"]] for run in arm_runs]
        cpu_overhead = [
            (run["train_cpu_seconds"] / run["steps"]) / scratch_cpu[run["seed"]]
            for run in arm_runs
            if "train_cpu_seconds" in run
        ]
        teacher_score = generalist_score if arm == "generalist" else expert_score
        summary[arm] = {
            "final_mean": float(np.mean(finals)),
            "final_std": float(np.std(finals)),
            "steps_to_scratch_final": reach,
            "scratch_steps_over_arm_steps": speedups,
            "final_over_teacher": float(np.mean(finals) / teacher_score) if arm != "scratch" else None,
            "wall_per_step_over_scratch_mean": float(np.mean(overhead)),
            "wall_per_step_over_scratch_std": float(np.std(overhead)),
            "cpu_per_step_over_scratch_mean": float(np.mean(cpu_overhead)) if cpu_overhead else None,
        }
    return summary


if __name__ == "__main__":
    main(tyro.cli(BenchConfig))
