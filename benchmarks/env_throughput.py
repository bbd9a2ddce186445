"""Environment throughput: steps per second of every zoo environment, single and vectorised.

Single environments go through ``gym.make`` (with its wrappers: time limit, order
enforcing, passive checker), as a user would run them; native vector versions through
``gym.make_vec`` at batch sizes 1, 64 and 4096. toymeta's ``Dark-Room-9x9-v0`` (the peer
implementation) is measured in the same process the same way. Actions are drawn before
timing so that only the environment is measured; resets on episode end are included.

Usage::

    python benchmarks/env_throughput.py            # full run
    python benchmarks/env_throughput.py --quick    # short run (fewer steps and repeats)
"""

from __future__ import annotations

import argparse
import platform
import time

import gymnasium as gym
import numpy as np

import zoo.envs  # noqa: F401  (registers the zoo environments)

BATCH_SIZES = (1, 64, 4096)
PEER_ID = "Dark-Room-9x9-v0"


def single_steps_per_second(env_id: str, steps: int, seed: int) -> float:
    """Steps per second of one ``gym.make`` environment under random actions."""
    env = gym.make(env_id)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps)]
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed


def vector_steps_per_second(
    env_id: str, num_envs: int, transitions: int, max_iterations: int, seed: int
) -> float:
    """Transitions per second (sub-env steps) of the native vector environment."""
    env = gym.make_vec(env_id, num_envs=num_envs)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    iterations = min(max(20, transitions // num_envs), max_iterations)
    actions = [env.action_space.sample() for _ in range(min(iterations, 64))]
    start = time.perf_counter()
    for index in range(iterations):
        env.step(actions[index % len(actions)])
    elapsed = time.perf_counter() - start
    env.close()
    return iterations * num_envs / elapsed


def summarise(values: list[float]) -> str:
    array = np.asarray(values)
    return f"{array.mean():,.0f} ± {array.std():,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run: fewer steps and repeats")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per measurement (seeds 0..n-1)")
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 5)
    single_steps = 2_000 if args.quick else 20_000
    vector_transitions = 400_000 if args.quick else 4_000_000
    max_iterations = 2_000 if args.quick else 20_000

    try:
        import toymeta  # noqa: F401  (registers Dark-Room-9x9-v0)

        peer_available = True
    except ImportError:
        peer_available = False

    env_ids = sorted(env_id for env_id in gym.registry if env_id.startswith("zoo/"))
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"repeats: {repeats} (seeds 0..{repeats - 1}), mean ± std over repeats, steps/s")
    header = (
        "| environment | single (gym.make) | " + " | ".join(f"vector batch {b}" for b in BATCH_SIZES) + " |"
    )
    print(header)
    print("|" + "---|" * (2 + len(BATCH_SIZES)))
    rows = [(env_id, env_id) for env_id in env_ids]
    if peer_available:
        rows.append((f"toymeta {PEER_ID} (peer)", PEER_ID))
    for label, env_id in rows:
        single = summarise([single_steps_per_second(env_id, single_steps, seed) for seed in range(repeats)])
        cells = []
        has_vector = gym.spec(env_id).vector_entry_point is not None
        for batch in BATCH_SIZES:
            if has_vector:
                values = [
                    vector_steps_per_second(env_id, batch, vector_transitions, max_iterations, s)
                    for s in range(repeats)
                ]
                cells.append(summarise(values))
            else:
                cells.append("-")
        print(f"| {label} | {single} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
