"""Where an AD model's in-context return is lost, task by task (a script, not a test).

A mean return over held-out tasks hides *which* tasks fail and *how*: a goal never found, a goal
found late, or a goal found and then not exploited. For one model (the bundled one of ``--env``,
or ``--model``) on one task set (the recipe's held-out tasks of ``benchmarks/ad_pretrained.py``,
or ``--split/--start/--stop/--step``), over ``--eval-seeds`` evaluation seeds and one or more
sampling ``--temperatures``, it reports

* per task: its optimum, the share of runs (evaluation seeds) with a reward by episode
  ``--found-by``, and the return in episode ``--mark`` as a fraction of the optimum;
* overall: the return in episode ``--mark`` as a fraction of the mean optimum; the share of
  (task, seed) runs rewarded by episode ``--found-by``; the fraction of the optimum in the episodes
  after ``--found-by`` of the runs that were rewarded by then (exploitation) and of those that were
  not; and the share of episodes after ``--found-by`` returning each value (0, 1, 2 on Key-to-Door);
* exploitation of a success: the share of the runs with an optimal episode, the median episode of
  the first one, and how often the episode right after an optimal episode is optimal again
  (``next_optimal_after_optimal``) against the episode after one that is not (Key-to-Door: a model
  that found the door once but does not go back to it).

Examples (the figures in BENCHMARKS.md)::

    python benchmarks/ad_per_task.py --env zoo/DarkRoom-v0 --temperatures 1 0.5
    python benchmarks/ad_per_task.py --env zoo/DarkKeyToDoor-v0 --mark 30 --found-by 10 \\
        --split train --step 97 --output per_task.json          # pairs it was trained on
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ad_pretrained import RECIPES, _check_task_spec, _optimum, _task_set

from zoo.agents.ad import AlgorithmDistillation, evaluate_in_context, load_pretrained
from zoo.hub.files import atomic_write_text


def optimal_repeats(returns: np.ndarray, optimum: np.ndarray) -> dict[str, float | None]:
    """How a success is exploited: ``returns`` ``(seeds, tasks, episodes)``, ``optimum`` ``(tasks,)``.

    :return: ``optimal_share`` (runs with an optimal episode), ``first_optimal_median`` (median
        1-based episode of a run's first optimal episode, over those runs),
        ``next_optimal_after_optimal`` and ``next_optimal_after_other`` (the share of episodes
        ``t + 1`` that are optimal where episode ``t`` was / was not); None where nothing counts.
    """
    optimal = returns >= optimum[None, :, None] - 1e-6
    reached = optimal.any(axis=-1)
    first = optimal.argmax(axis=-1) + 1
    now, following = optimal[:, :, :-1], optimal[:, :, 1:]

    def share(mask: np.ndarray) -> float | None:
        return float(following[mask].mean()) if mask.any() else None

    return {
        "optimal_share": float(reached.mean()),
        "first_optimal_median": float(np.median(first[reached])) if reached.any() else None,
        "next_optimal_after_optimal": share(now),
        "next_optimal_after_other": share(~now),
    }


def per_task(
    model: AlgorithmDistillation,
    tasks: list[Any],
    episodes: int,
    temperature: float,
    eval_seeds: int,
    mark: int,
    found_by: int,
) -> dict[str, Any]:
    """The breakdown of one temperature (see the module docstring); ``returns`` is ``(seeds, tasks, episodes)``."""
    env_id = model.env_id
    returns = np.stack(
        [
            evaluate_in_context(
                model, env_id, tasks=tasks, episodes=episodes, temperature=temperature, seed=10_000 + seed
            ).returns
            for seed in range(eval_seeds)
        ]
    )
    optimum = np.array([_optimum(env_id, task) for task in tasks])
    fraction = returns / optimum[None, :, None]
    found = (returns[:, :, :found_by] > 0).any(axis=-1)  # (seeds, tasks)
    later = fraction[:, :, found_by:].mean(axis=-1)
    values, counts = np.unique(np.round(returns[:, :, found_by:], 6), return_counts=True)
    return {
        "temperature": temperature,
        "fraction_of_optimum_at_mark": float(returns[:, :, mark - 1].mean() / optimum.mean()),
        "found_share": float(found.mean()),
        "later_fraction_found": float(later[found].mean()) if found.any() else None,
        "later_fraction_not_found": float(later[~found].mean()) if (~found).any() else None,
        "later_return_shares": {
            f"{value:g}": round(int(n) / int(counts.sum()), 4) for value, n in zip(values, counts)
        },
        **optimal_repeats(returns, optimum),
        "tasks": [
            {
                "task": np.asarray(task).tolist(),
                "optimum": float(optimum[i]),
                "found_share": float(found[:, i].mean()),
                "fraction_at_mark": float(fraction[:, i, mark - 1].mean()),
            }
            for i, task in enumerate(tasks)
        ],
        "returns": np.round(returns, 6).tolist(),
    }


def report(result: dict[str, Any], mark: int, found_by: int, worst: int) -> str:
    """Markdown lines of one temperature's breakdown, the ``worst`` tasks at the mark last."""

    def share(value: float | None) -> str:
        return "—" if value is None else f"{100 * value:.1f} %"

    def number(value: float | None) -> str:
        return "—" if value is None else f"{value:g}"

    lines = [
        f"temperature {result['temperature']:g}: episode {mark} at {share(result['fraction_of_optimum_at_mark'])} "
        f"of the optimum; rewarded by episode {found_by} in {share(result['found_share'])} of the runs; "
        f"after episode {found_by}: {share(result['later_fraction_found'])} of the optimum where rewarded by "
        f"then, {share(result['later_fraction_not_found'])} where not; episode returns "
        + ", ".join(f"{value}: {share(s)}" for value, s in result["later_return_shares"].items()),
        f"optimal episode in {share(result['optimal_share'])} of the runs (the first in episode "
        f"{number(result['first_optimal_median'])} at the median); the episode after an optimal one is optimal in "
        f"{share(result['next_optimal_after_optimal'])}, after any other in {share(result['next_optimal_after_other'])}",
        "",
        f"| task | optimum | rewarded by episode {found_by} | episode {mark}, fraction of optimum |",
        "|---|---|---|---|",
    ]
    ranked = sorted(result["tasks"], key=lambda row: row["fraction_at_mark"])[:worst]
    for row in ranked:
        lines.append(
            f"| {row['task']} | {row['optimum']:g} | {share(row['found_share'])} | {share(row['fraction_at_mark'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", required=True, choices=sorted(set(RECIPES) - {"zoo/Watermaze-v0"}))
    parser.add_argument(
        "--model", type=Path, default=None, help="a saved AD model (default: the bundled one)"
    )
    parser.add_argument("--split", default=None, help="task split (default: the recipe's held-out tasks)")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--stop", type=int, default=None)
    parser.add_argument("--step", type=int, default=1)
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0])
    parser.add_argument("--eval-seeds", type=int, default=10)
    parser.add_argument("--mark", type=int, default=20, help="the episode reported per task")
    parser.add_argument("--found-by", type=int, default=10, help="the episode a task counts as found by")
    parser.add_argument("--worst", type=int, default=5, help="tasks listed, the worst at the mark first")
    parser.add_argument("--output", type=Path, default=None, help="write every figure and return as JSON")
    args = parser.parse_args(argv)
    for name in ("episodes", "eval_seeds", "mark", "found_by"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: must be >= 1")
    if args.worst < 0:
        parser.error(f"--worst {args.worst}: must be >= 0")
    if args.mark > args.episodes:
        parser.error(f"--mark {args.mark}: the run has --episodes {args.episodes}")
    if args.found_by >= args.episodes:
        parser.error(
            f"--found-by {args.found_by}: must be below --episodes {args.episodes} (the later episodes are reported)"
        )
    if any(not t > 0 for t in args.temperatures):
        parser.error(f"--temperatures {args.temperatures}: every temperature must be > 0")
    spec = RECIPES[args.env].held_out
    if args.split is not None:
        try:  # the recipe's own check of a task set: a negative --start would count from the end
            spec = _check_task_spec(
                "--split/--start/--stop/--step", (args.split, args.start, args.stop, args.step)
            )
        except ValueError as error:
            parser.error(str(error))
    torch.set_num_threads(1)
    model = AlgorithmDistillation.load(args.model) if args.model else load_pretrained(args.env, device="cpu")
    if model.env_id != args.env:
        parser.error(f"--model {args.model}: an AD model of {model.env_id!r}, not of {args.env!r}")
    tasks = _task_set(args.env, spec)
    if not tasks:
        parser.error(
            f"--split {args.split} --start {args.start} --stop {args.stop} --step {args.step}: no tasks"
        )
    results = []
    for temperature in args.temperatures:
        started = time.perf_counter()
        result = per_task(model, tasks, args.episodes, temperature, args.eval_seeds, args.mark, args.found_by)
        result["seconds"] = round(time.perf_counter() - started, 1)
        results.append(result)
        print(report(result, args.mark, args.found_by, args.worst), end="\n\n", flush=True)
    if args.output is not None:
        document = {
            "env_id": args.env,
            "model": str(args.model or "bundled"),
            "task_set": list(spec),
            "episodes": args.episodes,
            "eval_seeds": list(range(10_000, 10_000 + args.eval_seeds)),
            "mark": args.mark,
            "found_by": args.found_by,
            "results": results,
        }
        atomic_write_text(args.output, json.dumps(document) + "\n")


if __name__ == "__main__":
    main()
