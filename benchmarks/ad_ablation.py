"""AD ablation on Dark Room: context length x episode subsampling x model size at a fixed token budget.

Not a test. Issue #13 asks for this table. Every cell is the Dark Room recipe of
``benchmarks/ad_pretrained.py`` with three things changed: the context (in steps; a Dark Room
episode is 20), which episodes of each learning history are kept (every ``subsample``-th), and
the transformer's size. The number of training tokens is the recipe's (2,000 steps x batch 32 x
context 200 = 12.8M) in every cell, so a shorter context trains for more steps. The histories are
the recipe's (the same source, tasks and seeds), so the cells differ only in what AD sees.

A cell is an ``ad_pretrained.py --set`` variant: it writes the same result file, one per
(cell, training seed), atomically, and a cell whose file exists is skipped, so the grid completes
across sessions. The cell equal to the recipe *is* the recipe: its files are the bundled model's
grid. ``--list`` says what is done and what is missing, ``--summary`` prints the table::

    python benchmarks/ad_ablation.py --list
    python benchmarks/ad_ablation.py --seeds 0 1 2 --jobs 2            # every missing cell
    python benchmarks/ad_ablation.py --cells c100-s8-2x64 --seeds 0     # one cell
    python benchmarks/ad_ablation.py --summary
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ad_pretrained import RECIPES, _first_reaching, resolve, result_path, run_cell

ENV_ID = "zoo/DarkRoom-v0"
#: Training tokens of every cell: the recipe's steps x batch x context.
TOKEN_BUDGET = (
    RECIPES[ENV_ID].train_steps
    * RECIPES[ENV_ID].model["batch_size"]
    * RECIPES[ENV_ID].model["context_length"]
)
#: Model sizes: (layers, heads, width).
SIZES = {"1x32": (1, 2, 32), "2x64": (2, 4, 64), "4x128": (4, 4, 128)}
CONTEXTS = (100, 200)
SUBSAMPLES = (4, 8, 16)
#: In-context episodes shown in the table.
MARKS = (5, 10, 20, 30, 50)


@dataclass(frozen=True)
class Cell:
    context: int
    subsample: int
    size: str

    @property
    def name(self) -> str:
        return f"c{self.context}-s{self.subsample}-{self.size}"

    @property
    def train_steps(self) -> int:
        return TOKEN_BUDGET // (RECIPES[ENV_ID].model["batch_size"] * self.context)

    def overrides(self) -> tuple[str, ...]:
        """The ``--set`` items that turn the recipe into this cell (none for the recipe itself)."""
        recipe = RECIPES[ENV_ID]
        layers, heads, width = SIZES[self.size]
        wanted = {
            "model.context_length": self.context,
            "model.n_layers": layers,
            "model.n_heads": heads,
            "model.embed_dim": width,
        }
        items = [f"{key}={value}" for key, value in wanted.items() if recipe.model[key[6:]] != value]
        if self.subsample != recipe.subsample:
            items.append(f"subsample={self.subsample}")
        if self.train_steps != recipe.train_steps:
            items.append(f"train_steps={self.train_steps}")
        return tuple(items)

    def path(self, seed: int) -> Path:
        return result_path(ENV_ID, seed, resolve(ENV_ID, self.overrides())[1])


def grid() -> list[Cell]:
    return [Cell(c, s, size) for size in SIZES for c in CONTEXTS for s in SUBSAMPLES]


def _by_name(names: list[str]) -> list[Cell]:
    cells = {cell.name: cell for cell in grid()}
    unknown = [name for name in names if name not in cells]
    if unknown:
        raise SystemExit(f"--cells {unknown}: not in the grid; choose from {sorted(cells)}")
    return [cells[name] for name in names]


def summary(seeds: list[int]) -> str:
    """The markdown table over the finished (cell, seed) files, and the missing cells."""
    lines = [
        f"Dark Room, 17 held-out goals, {TOKEN_BUDGET / 1e6:.1f}M training tokens per cell; return with "
        "predict's default sampling, mean ± std over training seeds x 10 evaluation seeds.",
        "",
        "| cell | context (episodes) | subsample | layers x width | steps | training seeds | "
        + " | ".join(f"episode {m}" for m in MARKS)
        + " | episodes to 80 % | argmax, episode 20 | tokens/s |",
        "|---|---|---|---|---|---|" + "---|" * (len(MARKS) + 3),
    ]
    missing = []
    for cell in grid():
        paths = {seed: cell.path(seed) for seed in seeds}
        results = [json.loads(path.read_text()) for path in paths.values() if path.exists()]
        absent = [str(seed) for seed, path in paths.items() if not path.exists()]
        if absent:
            missing.append(f"{cell.name} (seed {', '.join(absent)})")
        if not results:
            continue
        optimum = results[0]["optimal_mean"]
        sample = np.array([curve for r in results for curve in r["ad"]["sample"]])
        argmax = np.array([curve for r in results for curve in r["ad"]["argmax"]])
        mean, std = sample.mean(axis=0), sample.std(axis=0)
        timed = [r["tokens_per_second"] for r in results if r["tokens_per_second"] > 0]
        layers, _, width = SIZES[cell.size]
        lines.append(
            f"| {cell.name} | {cell.context} ({cell.context // 20}) | {cell.subsample} | {layers} x {width} | "
            f"{cell.train_steps} | {','.join(str(r['train_seed']) for r in results)} | "
            + " | ".join(f"{mean[m - 1]:.2f} ± {std[m - 1]:.2f}" for m in MARKS)
            + f" | {_first_reaching(mean, 0.8 * optimum) or f'not in {mean.size}'} | {argmax.mean(axis=0)[19]:.2f} | "
            + (f"{np.mean(timed):,.0f}" if timed else "not timed")
            + " |"
        )
    lines += ["", "Missing: " + ("; ".join(missing) if missing else "none") + "."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cells", nargs="+", default=None, help="cell names (default: the whole grid)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--eval-seeds", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=1, help="cells run in parallel processes")
    parser.add_argument("--work", type=Path, default=Path("runs/ad_pretrained"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--list", action="store_true", help="print every cell, its --set items and what is done"
    )
    parser.add_argument("--summary", action="store_true", help="print the table of the finished cells")
    args = parser.parse_args()
    cells = grid() if args.cells is None else _by_name(args.cells)
    if args.list:
        for cell in cells:
            done = [seed for seed in args.seeds if cell.path(seed).exists()]
            print(f"{cell.name}: done seeds {done}; --set {' '.join(cell.overrides()) or '(the recipe)'}")
        return
    if args.summary:
        print(summary(args.seeds))
        return
    todo = [(cell, seed) for cell in cells for seed in args.seeds if not cell.path(seed).exists()]
    print(
        f"{len(todo)} (cell, seed) to run: {[f'{cell.name}/seed{seed}' for cell, seed in todo]}", flush=True
    )
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=context) as pool:
        futures = [
            pool.submit(run_cell, ENV_ID, seed, args.work, args.eval_seeds, args.device, cell.overrides())
            for cell, seed in todo
        ]
        for future in futures:
            print(f"wrote {future.result()}", flush=True)
    print(summary(args.seeds))


if __name__ == "__main__":
    main()
