"""Where AD's bandit regret comes from: distillation error or its own off-source histories (a script, not a test).

AD distilled from Beta-Bernoulli Thompson sampling can at best *be* Thompson sampling: the
source's action distribution given a history is the probability that each arm's posterior draw
is the largest, and AD's cross-entropy is minimised by exactly that distribution. So AD's extra
regret (BENCHMARKS.md: the recipe's model, 18.0 vs Thompson's 13.8 after 100 pulls) splits into two parts:

* **distillation error**: on Thompson's own histories (teacher forcing), AD's action
  probabilities differ from Thompson's; measured as KL(Thompson || AD) per pull and as the
  expected regret per pull of either distribution on the same history;
* **compounding**: in context AD conditions on its own pulls, which Thompson would not have made.

The script samples Thompson histories on held-out tasks, estimates Thompson's exact action
probabilities at every pull by Monte Carlo over the posterior (``--posterior-samples`` draws),
runs AD over the same histories in one forward pass, and reports both per pull range. The
expected regret summed over the pulls is AD's regret had it been evaluated on Thompson's
histories; the gap between that and AD's in-context regret is the compounding.

Example (the figures in BENCHMARKS.md)::

    python benchmarks/ad_bandit_fidelity.py                       # the bundled model
    python benchmarks/ad_bandit_fidelity.py --model runs/ad_pretrained/.../model --output fidelity.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

import zoo.envs
from zoo.agents.ad import AlgorithmDistillation, load_pretrained
from zoo.hub.files import atomic_write_text

ENV_ID = "zoo/AdversarialBandit-v0"
#: Pull ranges of the report (1-based, inclusive), those of the in-context regret table.
RANGES = ((1, 10), (11, 25), (26, 50), (51, 100))


def thompson_probabilities(
    successes: np.ndarray, counts: np.ndarray, samples: int, rng: np.random.Generator
) -> np.ndarray:
    """Monte Carlo estimate of Beta(1 + s, 1 + f) Thompson sampling's action distribution.

    :param successes: ``(n, arms)`` rewards summed per arm.
    :param counts: ``(n, arms)`` pulls per arm.
    :param samples: posterior draws per history.
    :return: ``(n, arms)``, the share of draws in which each arm's sample is the largest.
    """
    if samples < 1:
        raise ValueError(f"samples={samples}: must be >= 1")
    failures = counts - successes
    draws = rng.beta(
        1.0 + successes[:, None, :], 1.0 + failures[:, None, :], size=(len(counts), samples, counts.shape[1])
    )
    best = draws.argmax(axis=-1)
    return np.stack([(best == arm).mean(axis=1) for arm in range(counts.shape[1])], axis=-1)


def thompson_histories(
    means: np.ndarray, pulls: int, samples: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thompson sampling's pulls on every task: ``(actions, rewards, probabilities)``.

    :param means: ``(n, arms)`` Bernoulli means of the tasks.
    :return: actions ``(n, pulls)``, rewards ``(n, pulls)`` and the action distribution each pull
        was drawn from, ``(n, pulls, arms)``.
    """
    n, arms = means.shape
    successes, counts = np.zeros((n, arms)), np.zeros((n, arms))
    actions, rewards = np.zeros((n, pulls), dtype=np.int64), np.zeros((n, pulls))
    probabilities = np.zeros((n, pulls, arms))
    rows = np.arange(n)
    for t in range(pulls):
        probabilities[:, t] = thompson_probabilities(successes, counts, samples, rng)
        cumulative = probabilities[:, t].cumsum(axis=1)
        chosen = np.minimum((cumulative < rng.random((n, 1)) * cumulative[:, -1:]).sum(axis=1), arms - 1)
        reward = (rng.random(n) < means[rows, chosen]).astype(np.float64)
        actions[:, t], rewards[:, t] = chosen, reward
        successes[rows, chosen] += reward
        counts[rows, chosen] += 1
    return actions, rewards, probabilities


def model_probabilities(model: AlgorithmDistillation, actions: np.ndarray, rewards: np.ndarray) -> np.ndarray:
    """AD's action distribution at every pull of the given histories (one causal forward pass)."""
    n, pulls = actions.shape
    if pulls > model.context_length:
        raise ValueError(f"{pulls} pulls do not fit the model's context of {model.context_length} tokens")
    none = model.config.n_actions
    previous_actions = np.concatenate([np.full((n, 1), none), actions[:, :-1]], axis=1)
    previous_rewards = np.concatenate([np.zeros((n, 1)), rewards[:, :-1]], axis=1)
    device = model.device
    with torch.no_grad():
        logits = model.policy(
            torch.zeros((n, pulls, 1), device=device),
            torch.from_numpy(previous_actions).to(device),
            torch.from_numpy(previous_rewards).float().to(device),
        )
    return torch.softmax(logits.double(), dim=-1).cpu().numpy()


def fidelity(
    model: AlgorithmDistillation, means: np.ndarray, pulls: int, samples: int, seed: int
) -> dict[str, Any]:
    """The report of one evaluation seed: per pull range and summed over the pulls."""
    rng = np.random.default_rng(seed)
    actions, rewards, source = thompson_histories(means, pulls, samples, rng)
    learned = model_probabilities(model, actions, rewards)
    gaps = (means.max(axis=1, keepdims=True) - means)[:, None, :]
    regret_source, regret_model = (source * gaps).sum(-1), (learned * gaps).sum(-1)
    tiny = 1e-12
    kl = (source * (np.log(source + tiny) - np.log(learned + tiny))).sum(-1)
    best = means.argmax(axis=1)[:, None, None]
    rows = []
    for first, last in RANGES:
        if first > pulls:
            break
        window = slice(first - 1, min(last, pulls))
        rows.append({
            "pulls": [first, min(last, pulls)],
            "kl_source_model": float(kl[:, window].mean()),
            "regret_per_pull_source": float(regret_source[:, window].mean()),
            "regret_per_pull_model": float(regret_model[:, window].mean()),
            "p_best_source": float(np.take_along_axis(source, best, -1)[:, window].mean()),
            "p_best_model": float(np.take_along_axis(learned, best, -1)[:, window].mean()),
        })  # fmt: skip
    return {
        "seed": seed,
        "ranges": rows,
        "regret_source": float(regret_source.sum(1).mean()),
        "regret_model_on_source_histories": float(regret_model.sum(1).mean()),
    }


def summary(runs: list[dict[str, Any]]) -> str:
    """Markdown table: mean ± std over the evaluation seeds."""

    def cell(values: list[float], digits: int) -> str:
        return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"

    lines = [
        "| pulls | KL(Thompson ‖ AD) per pull | expected regret per pull, Thompson | AD on Thompson's histories | P(best arm), Thompson | AD |",
        "|---|---|---|---|---|---|",
    ]
    for index, row in enumerate(runs[0]["ranges"]):
        values = {key: [run["ranges"][index][key] for run in runs] for key in row if key != "pulls"}
        lines.append(
            f"| {row['pulls'][0]}–{row['pulls'][1]} | {cell(values['kl_source_model'], 3)} | "
            f"{cell(values['regret_per_pull_source'], 4)} | {cell(values['regret_per_pull_model'], 4)} | "
            f"{cell(values['p_best_source'], 3)} | {cell(values['p_best_model'], 3)} |"
        )
    lines.append(
        f"| sum over the pulls (expected regret) | | {cell([r['regret_source'] for r in runs], 2)} | "
        f"{cell([r['regret_model_on_source_histories'] for r in runs], 2)} | | |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="a saved AD model (default: the bundled one)"
    )
    parser.add_argument("--split", default="train", help="task split of the held-out tasks")
    parser.add_argument("--start", type=int, default=800, help="first held-out task of the split")
    parser.add_argument("--stop", type=int, default=1000, help="end of the held-out tasks (exclusive)")
    parser.add_argument("--pulls", type=int, default=100)
    parser.add_argument("--posterior-samples", type=int, default=2000)
    parser.add_argument("--eval-seeds", type=int, default=10)
    parser.add_argument("--output", type=Path, default=None, help="write the per-seed figures as JSON")
    args = parser.parse_args(argv)
    for name in ("pulls", "posterior_samples", "eval_seeds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: must be >= 1")
    torch.set_num_threads(1)
    model = AlgorithmDistillation.load(args.model) if args.model else load_pretrained(ENV_ID, device="cpu")
    if model.env_id != ENV_ID:
        parser.error(f"--model {args.model}: an AD model of {model.env_id!r}, not of {ENV_ID!r}")
    means = np.asarray(list(zoo.envs.tasks(ENV_ID, args.split))[args.start : args.stop], dtype=np.float64)
    if len(means) == 0:
        parser.error(f"--split {args.split} --start {args.start} --stop {args.stop}: no tasks")
    if args.pulls > model.context_length:
        parser.error(f"--pulls {args.pulls}: the model's context holds {model.context_length} pulls")
    runs = [
        fidelity(model, means, args.pulls, args.posterior_samples, seed) for seed in range(args.eval_seeds)
    ]
    print(
        f"{args.model or 'bundled model'}: {len(means)} tasks ({args.split} [{args.start}:{args.stop}]), "
        f"{args.pulls} pulls, {args.eval_seeds} evaluation seeds, {args.posterior_samples} posterior draws"
    )
    print(summary(runs))
    if args.output is not None:
        atomic_write_text(
            args.output, json.dumps({"model": str(args.model or "bundled"), "runs": runs}, indent=1) + "\n"
        )


if __name__ == "__main__":
    main()
