"""Probe, not part of the grid: BitFlip n = 20 DQN+HER with the HER paper's documented values.

The ReenGAGE Appendix says its BitFlip runs used Andrychowicz et al. (2017)'s hyperparameters
without listing them. This runs the ``bitflip20-dqn-her`` cell of ``reengage.py`` with three of
them changed (gamma 0.98, one hidden layer of 256, a 1e6 buffer; everything else from
``zoo/hyperparams/dqn.yml``) over 100k steps and prints the success curve, so the two settings
can be compared with the paper's n = 20 panel (Figure 7)::

    python benchmarks/bitflip_settings_probe.py --seeds 0 1 2

Results go to ``runs/bitflip_settings_probe/seed<k>.json`` (not committed).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import reengage  # a sibling script: python puts benchmarks/ on the path

HER_PAPER = (("gamma", 0.98), ("buffer_size", 1_000_000), ("policy_kwargs", {"net_arch": [256]}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/bitflip_settings_probe"))
    args = parser.parse_args()
    cell = reengage.Cell("bitflip20-dqn-her-herpaper", "dqn", "zoo/BitFlip-v0", 100_000, 2_000, 50, HER_PAPER)
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        result = reengage.run_cell(cell, seed)
        (args.out / f"seed{seed}.json").write_text(json.dumps(result) + "\n")
        print(seed, [(point["steps"], point["success"]) for point in result["curve"]][::5], flush=True)


if __name__ == "__main__":
    main()
