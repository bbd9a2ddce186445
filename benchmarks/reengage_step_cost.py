"""Cost of one ReenGAGE-DDPG gradient step relative to DDPG's, side by side in one process.

Not a test. Both agents get the same ContinuousSeek-v1 env, networks (``--net-arch``, default
[256, 256]) and batch size (default 256), and a HER buffer filled with the same random
episodes; then blocks of ``--block`` gradient steps (``model.train``) alternate between the two,
so that a shared machine's load hits both alike. Each repeat's ratio is CPU time of the
ReenGAGE block over the DDPG block (``time.process_time``, one torch thread); printed as
mean ± std over ``--repeats`` repeats.

Example (the figure in BENCHMARKS.md)::

    python benchmarks/reengage_step_cost.py --dims 5 10 20 --repeats 10 --block 25
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import DDPG, HerReplayBuffer
from stable_baselines3.common.logger import configure

import zoo  # noqa: F401  (registers the environments)
from zoo.agents import ReenGAGEDDPG


def build(cls: type, env_id: str, net_arch: list[int], batch_size: int, fill: int) -> object:
    kwargs = dict(
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"},
        buffer_size=max(fill, 10_000),
        learning_starts=fill,  # only collect here: training is timed below
        batch_size=batch_size,
        gamma=0.95,
        policy_kwargs={"net_arch": net_arch},
        seed=0,
        device="cpu",
    )
    model = cls("MultiInputPolicy", gym.make(env_id), **kwargs)
    model.learn(fill)
    model.set_logger(configure(None, []))
    return model


def measure(dim: int, args: argparse.Namespace) -> dict[str, float]:
    env_id = f"zoo/ContinuousSeek-d{dim}-v1"
    models = {
        "ddpg": build(DDPG, env_id, args.net_arch, args.batch_size, args.fill),
        "reengage": build(ReenGAGEDDPG, env_id, args.net_arch, args.batch_size, args.fill),
    }
    for model in models.values():  # warm-up: allocator, first-call overheads
        model.train(gradient_steps=5, batch_size=args.batch_size)
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for repeat in range(args.repeats):
        order = list(models) if repeat % 2 == 0 else list(models)[::-1]
        for name in order:
            start = time.process_time()
            models[name].train(gradient_steps=args.block, batch_size=args.batch_size)
            seconds[name].append((time.process_time() - start) / args.block)
    ratios = np.array(seconds["reengage"]) / np.array(seconds["ddpg"])
    row = {
        "env_id": env_id,
        "ddpg_ms": 1000 * float(np.mean(seconds["ddpg"])),
        "reengage_ms": 1000 * float(np.mean(seconds["reengage"])),
        "ratio_mean": float(ratios.mean()),
        "ratio_std": float(ratios.std()),
        "repeats": args.repeats,
    }
    print(
        f"{env_id}: DDPG {row['ddpg_ms']:.2f} ms, ReenGAGE {row['reengage_ms']:.2f} ms per gradient step, "
        f"ratio {row['ratio_mean']:.3f} ± {row['ratio_std']:.3f} ({args.repeats} repeats of {args.block})",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dims", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--net-arch", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--fill", type=int, default=2_000, help="env steps collected before timing")
    parser.add_argument("--block", type=int, default=25, help="gradient steps per timed block")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--output", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    th.set_num_threads(args.threads)
    rows = [measure(dim, args) for dim in args.dims]
    if args.output:
        from zoo.hub.files import atomic_write_text

        atomic_write_text(args.output, json.dumps({"args": vars(args), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
