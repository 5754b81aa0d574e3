"""Choose the DDIM step count of a set of weights on held-out real data and record it in their metadata.

The cases are the quality benchmark's (``anyband_xr.evaluation.quality``: random band loss, per-value dropout,
contiguous gaps up to the whole SWIR, multiband generation) on the held-out columns of every scene, with the masks
of seed ``--seed`` (3 by default, a seed the published benchmark, 0-2, does not use). The model repairs every case
with each candidate step count at guidance 1.0 and is scored against the case's best classical baseline by the
two measures it is judged by: the PSNR gain over the missing values (the whole spectrum for generation) and the SAM
gain ``20 log10(SAM_baseline / SAM_model)``, both in dB. The count with the best mean of the two mean gains wins
(fewer steps on a tie within 0.05 dB); it goes into ``sampling.steps`` of ``<weights>.json`` with the per-candidate
gains, and ``repair``/``generate`` use it when called with ``steps=None``.

    python scripts/choose_steps.py [--weights STEM] [--scenes ../shared/data/hsi] [--steps 1 2 3 5 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from anyband_xr.evaluation import quality
from anyband_xr.model.weights import metadata_path

TIE_DB = 0.05


def _psnr_sam(pred: xr.DataArray, case: quality.Case) -> np.ndarray:
    """(PSNR in dB, SAM in radians) over the case's missing values (all values for generation)."""
    scores = quality.score(pred, case)
    return np.array([scores["psnr_missing"], scores["sam_missing"]])


def gains(
    scenes: dict[str, xr.DataArray], candidates: list[int], settings: quality.QualitySettings
) -> dict[int, np.ndarray]:
    """(PSNR gain, SAM gain) in dB over each case's best classical baseline: (cases, 2) per candidate step count."""
    out: dict[int, list[np.ndarray]] = {s: [] for s in candidates}
    for name, scene in scenes.items():
        truth = quality.evaluation_region(scene, settings.crop)
        for case in quality.cases(truth, settings):
            methods = quality.methods(case.protocol)
            model = methods.pop(quality.MODEL)
            methods.pop(quality.MODEL_NO_PGS)
            base = np.array([_psnr_sam(run(case, settings), case) for run in methods.values()])
            best_psnr, best_sam = base[:, 0].max(), base[:, 1].min()
            for steps in candidates:
                psnr, sam = _psnr_sam(model(case, dataclasses.replace(settings, steps=steps)), case)
                out[steps].append(np.array([psnr - best_psnr, 20.0 * np.log10(best_sam / sam)]))
            print(name, case.protocol, case.condition, {s: v[-1].round(2).tolist() for s, v in out.items()}, flush=True)
    return {s: np.array(v) for s, v in out.items()}


def choose(mean_gain: dict[int, float]) -> int:
    """The candidate with the best mean gain; the fewest steps among those within ``TIE_DB`` of it."""
    best = max(mean_gain.values())
    return min(s for s, g in mean_gain.items() if g >= best - TIE_DB)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="weights stem (default: the shipped weights)")
    parser.add_argument("--scenes", default="../shared/data/hsi", help="folder of real scenes (else: the bundled one)")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 3, 5, 10])
    parser.add_argument("--seed", type=int, default=3, help="mask seed of the cases (the benchmark uses 0-2)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    scenes = quality.load_scenes([args.scenes if Path(args.scenes).is_dir() else quality.BUNDLED])
    settings = quality.QualitySettings(seeds=(args.seed,), weights=args.weights)
    per_case = gains(scenes, args.steps, settings)
    psnr_gain = {s: float(v[:, 0].mean()) for s, v in per_case.items()}
    sam_gain = {s: float(v[:, 1].mean()) for s, v in per_case.items()}
    chosen = choose({s: (psnr_gain[s] + sam_gain[s]) / 2.0 for s in per_case})
    path = metadata_path(args.weights)
    record = json.loads(path.read_text())
    record["sampling"] = {
        "steps": chosen,
        "mean_psnr_gain_over_best_baseline_db": {str(s): round(g, 3) for s, g in psnr_gain.items()},
        "mean_sam_gain_over_best_baseline_db": {str(s): round(g, 3) for s, g in sam_gain.items()},
        "cases": len(per_case[chosen]),
        "scenes": sorted(scenes),
        "command": shlex.join(["python", "scripts/choose_steps.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    path.write_text(json.dumps(record, indent=2, default=str))
    print(f"steps {chosen}: mean gain over the best baseline {psnr_gain[chosen]:+.2f} dB in PSNR, "
          f"{sam_gain[chosen]:+.2f} dB in SAM ({record['sampling']['cases']} cases); written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
