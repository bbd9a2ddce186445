"""Cost of one ReenGAGE-DDPG gradient step relative to DDPG's, side by side in one process.

Not a test. Both agents get the same ContinuousSeek-v1 env, networks (``--net-arch``, default
[256, 256]) and batch size (default 256), and a HER buffer filled with the same random
episodes; then blocks of ``--block`` gradient steps (``model.train``) alternate between the two,
so that a shared machine's load hits both alike. Each repeat's ratio is CPU time of the
ReenGAGE block over the DDPG block (``time.process_time``, one torch thread); printed as
mean ± std over ``--repeats`` repeats.

With ``--learn-steps N`` it also times whole runs: for each goal dimension a fresh ReenGAGE-DDPG+HER
and a fresh SB3 DDPG+HER (the paper's settings: Gaussian action noise 0.03, learning starts at
``--learn-starts`` env steps, one gradient step per env step) each run ``learn(N)``, cut into chunks of
``--learn-chunk`` env steps (``learn(chunk, reset_num_timesteps=False)``) that alternate between the
two; printed as env steps per CPU second of each, their ratio over the whole run, and the mean ± std
of the per-chunk ratio over the chunks after learning starts.

With ``--multi ENV_ID ...`` it times Multi-ReenGAGE the same way on multi-goal envs
(zoo/DriveSeek-v1, zoo/NoisySeek-v1): ``MultiReenGAGE`` with the hyperparameter file's entry for
the env (Table 4: DeepSets networks, batch 256, gradient_reg 10) against the same agent with
``gradient_reg=0``, which is DDPG's update on the same networks (the paper's DDPG baseline there);
plain replay buffer filled with ``--fill`` random-policy steps.

Example (the figures in BENCHMARKS.md)::

    python benchmarks/reengage_step_cost.py --dims 5 10 20 --repeats 10 --block 25
    python benchmarks/reengage_step_cost.py --dims 5 10 20 --repeats 0 --learn-steps 5000
    python benchmarks/reengage_step_cost.py --dims --multi zoo/DriveSeek-v1 zoo/NoisySeek-v1
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import DDPG, HerReplayBuffer
from stable_baselines3.common.logger import configure
from stable_baselines3.common.noise import NormalActionNoise

import zoo  # noqa: F401  (registers the environments)
from zoo.agents import ReenGAGEDDPG


def make(
    cls: type, env_id: str, net_arch: list[int], batch_size: int, buffer_size: int, **kwargs: Any
) -> Any:
    env = gym.make(env_id)
    model = cls(
        "MultiInputPolicy",
        env,
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"},
        buffer_size=max(buffer_size, 10_000),
        batch_size=batch_size,
        gamma=0.95,
        policy_kwargs={"net_arch": net_arch},
        seed=0,
        device="cpu",
        **kwargs,
    )
    model.set_logger(configure(None, []))
    return model


def build(cls: type, env_id: str, net_arch: list[int], batch_size: int, fill: int) -> Any:
    # learning_starts=fill: only collect here, training is timed by the caller.
    model = make(cls, env_id, net_arch, batch_size, fill, learning_starts=fill)
    model.learn(fill)
    return model


def build_multi(env_id: str, gradient_reg: float, fill: int) -> Any:
    """MultiReenGAGE with the file's entry for ``env_id`` (its batch size and networks)."""
    from zoo.agents import MultiReenGAGE
    from zoo.params import RUNNER_KEYS, check_hyperparams, load_hyperparams

    kwargs = check_hyperparams(load_hyperparams("multi_reengage", env_id))
    for key in (*RUNNER_KEYS, "noise_type", "noise_std"):
        kwargs.pop(key, None)
    kwargs.update(gradient_reg=gradient_reg, buffer_size=max(fill, 10_000), learning_starts=fill)
    model = MultiReenGAGE(env=gym.make(env_id), seed=0, device="cpu", **kwargs)
    model.set_logger(configure(None, []))
    model.learn(fill)
    return model


def measure(dim: int, args: argparse.Namespace, env_id: str | None = None) -> dict[str, float]:
    if env_id is None:
        env_id = f"zoo/ContinuousSeek-d{dim}-v1"
        models = {
            "ddpg": build(DDPG, env_id, args.net_arch, args.batch_size, args.fill),
            "reengage": build(ReenGAGEDDPG, env_id, args.net_arch, args.batch_size, args.fill),
        }
    else:
        models = {
            "ddpg": build_multi(env_id, 0.0, args.fill),
            "reengage": build_multi(env_id, 10.0, args.fill),
        }
    batch_size = models["ddpg"].batch_size
    for model in models.values():  # warm-up: allocator, first-call overheads
        model.train(gradient_steps=5, batch_size=batch_size)
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for repeat in range(args.repeats):
        order = list(models) if repeat % 2 == 0 else list(models)[::-1]
        for name in order:
            start = time.process_time()
            models[name].train(gradient_steps=args.block, batch_size=batch_size)
            seconds[name].append((time.process_time() - start) / args.block)
    ratios = np.array(seconds["reengage"]) / np.array(seconds["ddpg"])
    row = {
        "env_id": env_id,
        "ddpg_ms": 1000 * float(np.mean(seconds["ddpg"])),
        "reengage_ms": 1000 * float(np.mean(seconds["reengage"])),
        "ratio_mean": float(ratios.mean()),
        "ratio_std": float(ratios.std()),
        "repeats": args.repeats,
        "batch_size": batch_size,
    }
    print(
        f"{env_id}: DDPG {row['ddpg_ms']:.2f} ms, ReenGAGE {row['reengage_ms']:.2f} ms per gradient step, "
        f"ratio {row['ratio_mean']:.3f} ± {row['ratio_std']:.3f} ({args.repeats} repeats of {args.block})",
        flush=True,
    )
    return row


def measure_learn(dim: int, args: argparse.Namespace) -> dict[str, Any]:
    env_id = f"zoo/ContinuousSeek-d{dim}-v1"
    models = {}
    for name, cls in (("ddpg", DDPG), ("reengage", ReenGAGEDDPG)):
        noise = NormalActionNoise(np.zeros(dim), 0.03 * np.ones(dim))
        kwargs = {"learning_starts": args.learn_starts, "action_noise": noise}
        models[name] = make(cls, env_id, args.net_arch, args.batch_size, args.learn_steps, **kwargs)
    seconds: dict[str, list[float]] = {name: [] for name in models}
    starts: list[int] = []
    done = 0
    while done < args.learn_steps:
        chunk = min(args.learn_chunk, args.learn_steps - done)
        order = list(models) if len(starts) % 2 == 0 else list(models)[::-1]
        for name in order:
            start = time.process_time()
            models[name].learn(chunk, reset_num_timesteps=False)
            seconds[name].append(time.process_time() - start)
        starts.append(done)
        done += chunk
    training = np.array([start >= args.learn_starts for start in starts])
    chunk_ratios = np.array(seconds["reengage"])[training] / np.array(seconds["ddpg"])[training]
    row = {
        "env_id": env_id,
        "steps": args.learn_steps,
        "learning_starts": args.learn_starts,
        "ddpg_steps_per_s": args.learn_steps / sum(seconds["ddpg"]),
        "reengage_steps_per_s": args.learn_steps / sum(seconds["reengage"]),
        "ratio_whole": sum(seconds["reengage"]) / sum(seconds["ddpg"]),
        "training_chunk_ratio_mean": float(chunk_ratios.mean()),
        "training_chunk_ratio_std": float(chunk_ratios.std()),
        "training_chunks": int(training.sum()),
    }
    print(
        f"{env_id} learn({args.learn_steps}): DDPG+HER {row['ddpg_steps_per_s']:.1f}, ReenGAGE-DDPG+HER "
        f"{row['reengage_steps_per_s']:.1f} env steps per CPU second; time ratio {row['ratio_whole']:.3f} "
        f"(chunks after learning starts: {row['training_chunk_ratio_mean']:.3f} ± "
        f"{row['training_chunk_ratio_std']:.3f}, {row['training_chunks']} chunks of {args.learn_chunk})",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dims", type=int, nargs="*", default=[5, 10, 20])
    parser.add_argument(
        "--multi", nargs="*", default=[], help="multi-goal env ids: Multi-ReenGAGE vs gradient_reg 0"
    )
    parser.add_argument("--net-arch", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--fill", type=int, default=2_000, help="env steps collected before timing")
    parser.add_argument("--block", type=int, default=25, help="gradient steps per timed block")
    parser.add_argument("--repeats", type=int, default=10, help="timed blocks per agent; 0 skips them")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--learn-steps", type=int, default=0, help="also time whole learn() runs of this length"
    )
    parser.add_argument("--learn-starts", type=int, default=1000, help="learning_starts of those runs")
    parser.add_argument(
        "--learn-chunk", type=int, default=500, help="env steps per alternating learn() chunk"
    )
    parser.add_argument("--output", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    th.set_num_threads(args.threads)
    rows = [measure(dim, args) for dim in args.dims] if args.repeats > 0 else []
    rows += [measure(0, args, env_id) for env_id in args.multi] if args.repeats > 0 else []
    learn_rows = [measure_learn(dim, args) for dim in args.dims] if args.learn_steps > 0 else []
    if args.output:
        from zoo.hub.files import atomic_write_text

        results = {"args": vars(args), "rows": rows, "learn_rows": learn_rows}
        atomic_write_text(args.output, json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
