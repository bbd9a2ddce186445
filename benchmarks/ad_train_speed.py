"""AD training speed on a CPU with and without attention dropout, interleaved in one process.

With attention dropout > 0, ``scaled_dot_product_attention`` cannot use PyTorch's fused CPU
kernel and falls back to the unfused one; this measures what that costs per training step.

    python benchmarks/ad_train_speed.py --repeats 3
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from zoo.agents.ad import AlgorithmDistillation, NoisyExpert, collect_histories


def seconds_per_step(model: AlgorithmDistillation, steps: int) -> float:
    start_step = model.num_steps
    started = time.perf_counter()
    model.learn(start_step + steps)
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--context", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    with tempfile.TemporaryDirectory() as folder:
        dataset = collect_histories("zoo/DarkRoom-v0", NoisyExpert(), folder, episodes=30, seed=0)
        models = {
            rate: AlgorithmDistillation(
                dataset,
                context_length=arguments.context,
                batch_size=arguments.batch_size,
                attention_dropout=rate,
                seed=0,
                device="cpu",
            )
            for rate in (0.5, 0.0)
        }
        for model in models.values():
            model.learn(2)  # warm-up
        timings: dict[float, list[float]] = {rate: [] for rate in models}
        for _ in range(arguments.repeats):
            for rate, model in models.items():
                timings[rate].append(seconds_per_step(model, arguments.steps))
    tokens = arguments.batch_size * arguments.context
    for rate, values in timings.items():
        print(
            f"attention_dropout={rate}: {np.mean(values):.3f} ± {np.std(values):.3f} s/step, "
            f"{tokens / np.mean(values):,.0f} tokens/s"
        )
    ratios = np.array(timings[0.5]) / np.array(timings[0.0])
    print(
        f"slowdown from attention dropout: {ratios.mean():.2f} ± {ratios.std():.2f}x (per repeat, interleaved)"
    )


if __name__ == "__main__":
    main()
