"""How close AD's CPU training comes to the core's peak: achieved FLOP/s against a matmul's (a script, not a test).

Issue #13 asks for AD's training tokens/s and for the achieved FLOP/s measured against the
core's peak, since the model is tiny. For each configuration the script builds an
:class:`~zoo.agents.ad.AlgorithmDistillation` on a small Dark Room dataset, counts the FLOPs of
one training step with ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and
attention, forward and backward: the conventional model FLOPs; elementwise work is not
counted), and then alternates, ``--repeats`` times, a block of ``--block`` training steps
(``learn``) with a block of single-precision ``torch.mm`` of ``--peak-size`` square matrices,
the practical peak of one core. Both are timed in process CPU time with one torch thread, side
by side, so a shared machine's load hits both alike; each repeat gives one ratio. It also times
``sample_batch`` alone (the numpy gather of the training windows), as a share of a step.

Example (the figures in BENCHMARKS.md)::

    python benchmarks/ad_flops.py --repeats 5 --block 10 --compile --output benchmarks/results/ad/flops.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

import zoo.envs
from zoo.agents.ad import AlgorithmDistillation, NoisyExpert, collect_histories
from zoo.hub.files import atomic_write_text

#: (label, AD keyword arguments): the bundled Dark Room recipe's model, the same with a larger
#: batch, and the paper's model size (4 layers) at the recipe's context.
CONFIGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("recipe: 2 layers, width 64, context 200, batch 32", {"n_layers": 2, "batch_size": 32}),
    ("batch 128", {"n_layers": 2, "batch_size": 128}),
    ("4 layers (the paper's depth), batch 32", {"n_layers": 4, "batch_size": 32}),
)
COMMON = {
    "context_length": 200,
    "n_heads": 4,
    "embed_dim": 64,
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "learning_rate": 1e-3,
    "warmup_steps": 10,
    "device": "cpu",
}


def step_flops(agent: AlgorithmDistillation) -> int:
    """FLOPs of one forward + backward pass on one sampled batch (FlopCounterMode's count)."""
    batch = agent.sample_batch()
    with FlopCounterMode(display=False) as counter:
        logits = agent.policy(batch["observations"], batch["previous_actions"], batch["previous_rewards"])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1))
        loss.backward()
    agent.policy.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def peak_block(size: int, repeats: int) -> tuple[float, float]:
    """CPU seconds and FLOPs of ``repeats`` fp32 ``size x size`` matrix products."""
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    torch.mm(a, b)
    started = time.process_time()
    for _ in range(repeats):
        torch.mm(a, b)
    return time.process_time() - started, 2.0 * size**3 * repeats


def measure(
    agent: AlgorithmDistillation, args: argparse.Namespace, compile_policy: bool = False
) -> dict[str, Any]:
    flops = step_flops(agent)
    if compile_policy:  # counted eagerly above: the same model and batch
        agent.policy = torch.compile(agent.policy)  # type: ignore[assignment]
    tokens = agent.batch_size * agent.context_length
    agent.learn(agent.num_steps + 2)  # warm up the allocator and the optimizer state
    ratios, achieved, peaks, per_step, sampling = [], [], [], [], []
    for _ in range(args.repeats):
        target = agent.num_steps + args.block
        started = time.process_time()
        agent.learn(target)
        train_seconds = (time.process_time() - started) / args.block
        started = time.process_time()
        for _ in range(args.block):
            agent.sample_batch()
        sampling.append((time.process_time() - started) / args.block / train_seconds)
        peak_seconds, peak_flops = peak_block(args.peak_size, args.peak_repeats)
        achieved.append(flops / train_seconds)
        peaks.append(peak_flops / peak_seconds)
        ratios.append(achieved[-1] / peaks[-1])
        per_step.append(train_seconds)
    return {
        "gflop_per_step": flops / 1e9,
        "tokens_per_step": tokens,
        "seconds_per_step_mean": float(np.mean(per_step)),
        "tokens_per_cpu_second_mean": float(tokens / np.mean(per_step)),
        "achieved_gflops_mean": float(np.mean(achieved) / 1e9),
        "peak_gflops_mean": float(np.mean(peaks) / 1e9),
        "fraction_of_peak_mean": float(np.mean(ratios)),
        "fraction_of_peak_std": float(np.std(ratios)),
        "sample_batch_share_mean": float(np.mean(sampling)),
        "repeats": args.repeats,
    }


def attention_backends(batch: int, heads: int, tokens: int, width: int, repeats: int) -> dict[str, float]:
    """CPU seconds of one causal attention forward + backward per backend: PyTorch's fused kernel
    (the model's), its math backend and an explicit masked softmax, on the model's shapes."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = (torch.randn(batch, heads, tokens, width, requires_grad=True) for _ in range(3))
    allowed = torch.ones(tokens, tokens, dtype=torch.bool).tril()

    def explicit() -> torch.Tensor:
        scores = (q @ k.transpose(-1, -2)) * width**-0.5
        return scores.masked_fill(~allowed, float("-inf")).softmax(-1) @ v

    def fused(backend: SDPBackend) -> Any:
        def run() -> torch.Tensor:
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(q, k, v, is_causal=True)

        return run

    runs = {"fused": fused(SDPBackend.FLASH_ATTENTION), "math": fused(SDPBackend.MATH), "explicit": explicit}
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):  # interleaved, so that load hits every backend alike
        for name, run in runs.items():
            started = time.process_time()
            for _ in range(5):
                run().sum().backward()
            seconds[name].append((time.process_time() - started) / 5)
    return {name: float(np.mean(values)) for name, values in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--block", type=int, default=10, help="training steps per timed block")
    parser.add_argument("--peak-size", type=int, default=1024, help="side of the peak matmul's matrices")
    parser.add_argument("--peak-repeats", type=int, default=20, help="matmuls per peak block")
    parser.add_argument("--compile", action="store_true",
                        help="also time the recipe's model under torch.compile (inductor; minutes to compile)")  # fmt: skip
    parser.add_argument("--output", type=Path, default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    for name in ("repeats", "block", "peak_size", "peak_repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: must be >= 1")
    torch.set_num_threads(1)
    tasks = zoo.envs.tasks("zoo/DarkRoom-v0", "train")[:16]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        dataset = collect_histories(
            "zoo/DarkRoom-v0", NoisyExpert(), Path(folder) / "data", episodes=40, tasks=tasks
        )
        configs = [(label, kwargs, False) for label, kwargs in CONFIGS]
        if args.compile:
            configs.append(("recipe under torch.compile", CONFIGS[0][1], True))
        for label, kwargs, compile_policy in configs:
            agent = AlgorithmDistillation(dataset, seed=0, **COMMON, **kwargs)
            row = {"config": label, **kwargs, **measure(agent, args, compile_policy)}
            rows.append(row)
            print(
                f"{label}: {row['gflop_per_step']:.2f} GFLOP per step, {row['seconds_per_step_mean'] * 1000:.0f} ms, "
                f"{row['tokens_per_cpu_second_mean']:,.0f} tokens per CPU s, {row['achieved_gflops_mean']:.1f} GFLOP/s "
                f"of a {row['peak_gflops_mean']:.1f} GFLOP/s matmul = {100 * row['fraction_of_peak_mean']:.1f} ± "
                f"{100 * row['fraction_of_peak_std']:.1f} %; sample_batch {100 * row['sample_batch_share_mean']:.0f} % "
                f"of a step",
                flush=True,
            )
    attention = attention_backends(
        32, COMMON["n_heads"], COMMON["context_length"], 64 // COMMON["n_heads"], args.repeats
    )
    print(
        "causal attention forward + backward (batch 32, 4 heads, 200 tokens, head width 16): "
        + ", ".join(f"{name} {1000 * value:.0f} ms" for name, value in attention.items()),
        flush=True,
    )
    if args.output is not None:
        payload = {"attention_seconds": attention, "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                   "torch": torch.__version__, "common": COMMON, "rows": rows}  # fmt: skip
        atomic_write_text(args.output, json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
