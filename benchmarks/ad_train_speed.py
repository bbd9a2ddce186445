"""AD training speed on a CPU with and without attention dropout, interleaved in one process.

With attention dropout > 0, ``scaled_dot_product_attention`` cannot use PyTorch's fused CPU
kernel and falls back to the unfused one; this measures what that costs per training step.

It also reports the achieved FLOP/s of a training step (forward + backward + optimiser, FLOPs
counted exactly by ``torch.utils.flop_counter.FlopCounterMode``) against the core's peak,
taken as the best FLOP/s of a large float32 matrix product on the same number of threads.

    python benchmarks/ad_train_speed.py --repeats 3
    python benchmarks/ad_train_speed.py --repeats 3 --layers 2 --context 200   # the bundled recipe
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


def flops_per_step(model: AlgorithmDistillation) -> int:
    """FLOPs of one training step's forward and backward pass (matrix products and attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    batch = model.sample_batch()
    counter = FlopCounterMode(display=False)
    model.policy.train()
    with counter:
        logits = model.policy(batch["observations"], batch["previous_actions"], batch["previous_rewards"])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch["targets"].flatten())
        loss.backward()
    model.policy.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def matmul_peak(size: int = 1024, repeats: int = 20) -> float:
    """Best float32 FLOP/s of a ``size`` x ``size`` matrix product on the current threads."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * size**3 / (time.perf_counter() - started))
    return best


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--context", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--embed-dim", type=int, default=64)
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
                n_layers=arguments.layers,
                embed_dim=arguments.embed_dim,
                dropout=0.0,
                seed=0,
                device="cpu",
            )
            for rate in (0.5, 0.0)
        }
        for model in models.values():
            model.learn(2)  # warm-up
        flops = flops_per_step(models[0.0])
        timings: dict[float, list[float]] = {rate: [] for rate in models}
        for _ in range(arguments.repeats):
            for rate, model in models.items():
                timings[rate].append(seconds_per_step(model, arguments.steps))
    peak = matmul_peak()
    tokens = arguments.batch_size * arguments.context
    print(
        f"{cpu_name()}, {arguments.threads} thread(s); model: {arguments.layers} layers, width "
        f"{arguments.embed_dim}, context {arguments.context}, batch {arguments.batch_size}"
    )
    print(
        f"forward + backward: {flops / 1e9:.2f} GFLOP per step; float32 matmul peak {peak / 1e9:.1f} GFLOP/s"
    )
    for rate, values in timings.items():
        achieved = flops / np.mean(values)
        print(
            f"attention_dropout={rate}: {np.mean(values):.3f} ± {np.std(values):.3f} s/step, "
            f"{tokens / np.mean(values):,.0f} tokens/s, {achieved / 1e9:.1f} GFLOP/s "
            f"({100 * achieved / peak:.0f} % of the matmul peak)"
        )
    ratios = np.array(timings[0.5]) / np.array(timings[0.0])
    print(
        f"slowdown from attention dropout: {ratios.mean():.2f} ± {ratios.std():.2f}x (per repeat, interleaved)"
    )


if __name__ == "__main__":
    main()
