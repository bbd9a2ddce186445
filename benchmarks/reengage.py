"""ReenGAGE benchmark: success rate / return against env steps, ReenGAGE vs its parent algorithm.

Not a test. Three experiments (``--experiment``):

* ``seek``: zoo/ContinuousSeek-d{d}-v0, DDPG+HER (``gradient_reg=0``, exactly DDPG's update) vs
  ReenGAGE-DDPG+HER with ``gradient_reg`` = alpha * d for alpha in {0.1, 0.2, 0.3}/d; success
  rate over ``--eval-episodes`` deterministic episodes every ``--eval-every`` steps.
* ``drive``: zoo/DriveSeek-v0, DDPG (MultiReenGAGE with ``gradient_reg=0``, same DeepSets
  networks) vs Multi-ReenGAGE; mean evaluation return.
* ``bitflip``: zoo/BitFlip-n40-v0, DQN+HER vs ReenGAGE-DQN+HER; success rate.
* ``timing``: CPU time per gradient step of ReenGAGE-DDPG relative to DDPG on ContinuousSeek
  (``--dims``), the two interleaved in one process on the same filled HER buffer, so that the
  ratio is not skewed by the load of a shared machine (``time.process_time``).

Wall time per environment step is reported relative to the parent algorithm in the same run.
Results are written (atomically) as JSON to ``--output`` and summarised as a Markdown table.

Example (the slice in BENCHMARKS.md)::

    python benchmarks/reengage.py --experiment seek --dims 5 10 --gradient-regs 0 0.2 \
        --seeds 0 1 2 --steps 10000 --eval-every 2500
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import DQN, HerReplayBuffer
from stable_baselines3.common.noise import NormalActionNoise

import zoo  # noqa: F401  (registers the environments)
from zoo.agents import MultiReenGAGE, ReenGAGEDDPG, ReenGAGEDQN
from zoo.hub.files import atomic_write_text


def evaluate(model: Any, env_id: str, episodes: int, seed: int) -> tuple[float, float]:
    """Mean success (any step with is_success) and mean return over ``episodes`` deterministic episodes."""
    env = gym.make(env_id)
    successes, returns = [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=10_000 * (seed + 1) + episode)
        done, total, success = False, 0.0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            success = success or bool(info.get("is_success", False))
            done = terminated or truncated
        successes.append(float(success))
        returns.append(total)
    env.close()
    return float(np.mean(successes)), float(np.mean(returns))


def build(experiment: str, env_id: str, gradient_reg: float, seed: int, args: argparse.Namespace) -> Any:
    env = gym.make(env_id)
    # The whole run fits: HerReplayBuffer spends seconds allocating 1e6 slots it would not use.
    buffer_size = max(args.steps, 10_000)
    if experiment == "seek":
        dim = int(env.action_space.shape[0])
        return ReenGAGEDDPG(
            "MultiInputPolicy",
            env,
            gradient_reg=gradient_reg,
            replay_buffer_class=HerReplayBuffer,
            buffer_size=buffer_size,
            replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"},
            learning_rate=1e-3,
            learning_starts=500,
            batch_size=args.batch_size,
            gamma=0.9,
            action_noise=NormalActionNoise(np.zeros(dim), 0.2 * np.ones(dim)),
            policy_kwargs={"net_arch": [args.hidden, args.hidden]},
            seed=seed,
            device=args.device,
        )
    if experiment == "drive":
        return MultiReenGAGE(
            "MultiGoalPolicy",
            env,
            gradient_reg=gradient_reg,
            buffer_size=buffer_size,
            learning_rate=1e-3,
            learning_starts=1000,
            batch_size=args.batch_size,
            gamma=0.95,
            action_noise=NormalActionNoise(np.zeros(1), 0.3 * np.ones(1)),
            policy_kwargs={"net_arch": [args.hidden, args.hidden], "encoder_arch": [64], "features_dim": 64},
            seed=seed,
            device=args.device,
        )
    cls = DQN if gradient_reg == 0 else ReenGAGEDQN
    kwargs = {} if gradient_reg == 0 else {"gradient_reg": gradient_reg}
    return cls(
        "MultiInputPolicy",
        env,
        replay_buffer_class=HerReplayBuffer,
        buffer_size=buffer_size,
        replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"},
        learning_rate=1e-3,
        learning_starts=1000,
        batch_size=args.batch_size,
        gamma=0.98,
        train_freq=1,
        target_update_interval=500,
        exploration_fraction=0.2,
        policy_kwargs={"net_arch": [args.hidden, args.hidden]},
        seed=seed,
        device=args.device,
        **kwargs,
    )


def run_one(experiment: str, env_id: str, gradient_reg: float, seed: int, args: argparse.Namespace) -> dict:
    model = build(experiment, env_id, gradient_reg, seed, args)
    curve: list[dict[str, float]] = []
    train_seconds = 0.0
    done_steps = 0
    while done_steps < args.steps:
        chunk = min(args.eval_every, args.steps - done_steps)
        start = time.perf_counter()
        model.learn(chunk, reset_num_timesteps=done_steps == 0)
        train_seconds += time.perf_counter() - start
        done_steps += chunk
        success, mean_return = evaluate(model, env_id, args.eval_episodes, seed)
        curve.append({"steps": done_steps, "success": success, "return": mean_return})
        print(
            f"{env_id} reg={gradient_reg} seed={seed} steps={done_steps} success={success:.2f} return={mean_return:.2f}",
            flush=True,
        )
    return {
        "env_id": env_id,
        "gradient_reg": gradient_reg,
        "seed": seed,
        "curve": curve,
        "seconds_per_step": train_seconds / args.steps,
    }


def timing(args: argparse.Namespace) -> list[dict]:
    """CPU seconds per gradient step, parent (gradient_reg=0) vs ReenGAGE, interleaved."""
    from stable_baselines3.common.logger import configure

    rows = []
    for dim in args.dims:
        env_id = f"zoo/ContinuousSeek-d{dim}-v0"
        models = {}
        for reg in args.gradient_regs:
            model = build("seek", env_id, reg, 0, argparse.Namespace(**{**vars(args), "steps": 2_000}))
            model.learning_starts = 2_000  # only collect: training is timed below
            model.learn(2_000)
            model.set_logger(configure(None, []))
            models[reg] = model
        seconds = {reg: 0.0 for reg in models}
        for _ in range(args.timing_repeats):
            for reg, model in models.items():
                start = time.process_time()
                model.train(gradient_steps=50, batch_size=args.batch_size)
                seconds[reg] += time.process_time() - start
        steps = 50 * args.timing_repeats
        for reg in models:
            rows.append(
                {
                    "env_id": env_id,
                    "gradient_reg": reg,
                    "cpu_seconds_per_gradient_step": seconds[reg] / steps,
                    "relative_to_parent": seconds[reg] / seconds[min(models)],
                }
            )
            print(
                f"{env_id} reg={reg} cpu_ms_per_gradient_step={1000 * seconds[reg] / steps:.2f} "
                f"ratio={seconds[reg] / seconds[min(models)]:.2f}",
                flush=True,
            )
    return rows


def write_json(path: str, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=1))


def summarise(results: list[dict], metric: str) -> str:
    lines = [
        f"| env | gradient_reg | steps | {metric} (mean ± std over seeds) | seeds | s/step vs parent |",
        "|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, float], list[dict]] = {}
    for result in results:
        groups.setdefault((result["env_id"], result["gradient_reg"]), []).append(result)
    for (env_id, reg), runs in sorted(groups.items()):
        parent = groups.get((env_id, 0.0))
        parent_time = np.mean([r["seconds_per_step"] for r in parent]) if parent else float("nan")
        ratio = np.mean([r["seconds_per_step"] for r in runs]) / parent_time
        for index, point in enumerate(runs[0]["curve"]):
            values = [r["curve"][index][metric] for r in runs]
            lines.append(
                f"| {env_id} | {reg:g} | {point['steps']} | {np.mean(values):.2f} ± {np.std(values):.2f} | "
                f"{len(runs)} | {ratio:.2f}× |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--experiment", choices=["seek", "drive", "bitflip", "timing"], default="seek")
    parser.add_argument("--dims", type=int, nargs="+", default=[5, 10, 20], help="ContinuousSeek dimensions")
    parser.add_argument(
        "--gradient-regs",
        type=float,
        nargs="+",
        default=[0.0, 0.1, 0.2, 0.3],
        help="gradient_reg values (= alpha * d); 0 is the parent algorithm",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=50_000, help="environment steps per run")
    parser.add_argument("--eval-every", type=int, default=5_000)
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--timing-repeats", type=int, default=10, help="timing: blocks of 50 gradient steps")
    parser.add_argument("--output", default="runs/reengage_benchmark.json")
    args = parser.parse_args()
    th.set_num_threads(args.threads)

    if args.experiment == "timing":
        write_json(args.output, {"args": vars(args), "timing": timing(args)})
        return
    if args.experiment == "seek":
        env_ids = [f"zoo/ContinuousSeek-d{dim}-v0" for dim in args.dims]
    elif args.experiment == "drive":
        env_ids = ["zoo/DriveSeek-v0"]
    else:
        env_ids = ["zoo/BitFlip-n40-v0"]
    results = []
    for env_id in env_ids:
        for seed in args.seeds:
            for reg in args.gradient_regs:
                results.append(run_one(args.experiment, env_id, reg, seed, args))
                write_json(args.output, {"args": vars(args), "results": results})
    metric = "return" if args.experiment == "drive" else "success"
    print(summarise(results, metric))


if __name__ == "__main__":
    main()
