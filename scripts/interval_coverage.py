"""Empirical coverage of ``repair(..., interval=0.9)`` on the truly missing values of real scenes.

For every scene (the bundled Jasper Ridge and the scenes of ``--scenes``), on the top-left ``--crop`` of its held-out
columns (``anyband_xr.evaluation.quality.evaluation_region``), or with ``--leave-one-out DIR`` of the whole scene
repaired by the weights trained without it (``DIR/<scene>/weights/mcd``, as ``anyband benchmark quality`` uses
them), with the quality benchmark's masks (whole-band loss 10/30/50%, per-value dropout 50%, random 50 and 150 nm
gaps; seeds ``--seeds``), each method repairs the scene with a 90% split-conformal interval (``auto``, which runs
the model, on ``--auto-seeds`` only). Reported per case: the share of the truly missing values inside [lower,
upper] (mean over seeds, and the lowest seed), the mean interval width and RMSE on them. A method that cannot
repair a case (the in-scene low-rank prior cannot see bands missing in every pixel) is left out of it. Writes
``intervals.md`` and ``intervals.json`` to ``--out``.

    python scripts/interval_coverage.py [--scenes ../shared/data/hsi] [--crop 64 64] [--seeds 0 1 2]
    python scripts/interval_coverage.py --leave-one-out training_runs/loso --crop 0 0 --out docs/benchmarks/unseen
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

from anyband_xr.evaluation import quality, unseen
from anyband_xr.repair import repair

LEVEL = 0.9
METHODS = ("pchip", "lowrank", "auto")
SETTINGS = quality.QualitySettings(band_loss=(0.1, 0.3, 0.5), dropout=(0.5,), gaps=("50 nm", "150 nm"),
                                   generation=())


def measure(case: quality.Case, method: str, steps: int | None, weights: str | None) -> dict[str, float | str] | None:
    """Coverage, mean width and RMSE of ``method``'s interval on the missing values of ``case`` (None: no repair)."""
    try:
        out = repair(case.truth.where(~case.mask), case.mask, method=method, interval=LEVEL, steps=steps,
                     weights=weights)
    except ValueError as err:
        if "no candidate could be scored" in str(err):
            return None
        raise
    name = next(iter(out.data_vars))
    missing, truth = case.mask.values, case.truth.values[case.mask.values]
    lower, upper, pred = (out[v].transpose(*case.truth.dims).values[missing] for v in ("lower", "upper", name))
    return {"coverage": float(np.mean((lower <= truth) & (truth <= upper))), "width": float(np.mean(upper - lower)),
            "rmse": float(np.sqrt(np.mean((pred - truth) ** 2))), "chosen": out.attrs["anyband_method"]}


def run(scenes: dict[str, xr.DataArray], crop: tuple[int, int] | None, seeds: tuple[int, ...],
        auto_seeds: tuple[int, ...], steps: int | None, leave_one_out: str | None = None) -> list[dict]:
    """One row per (scene, protocol, condition, method, seed); ``auto`` only for ``auto_seeds`` (it runs the model).
    With ``leave_one_out`` (a folder of held-out runs) each whole scene (its ``crop``) is repaired by the weights
    trained without it; else the held-out columns by the shipped weights."""
    rows = []
    settings = SETTINGS.__class__(**{**SETTINGS.__dict__, "seeds": seeds})
    stems = unseen.held_out_weights(leave_one_out, scenes) if leave_one_out else {}
    absent = [str(path) for path in unseen.missing_weights(stems).values()]
    if absent:
        raise FileNotFoundError(f"no held-out weights at {', '.join(absent)} (train them with `anyband train "
                                f"{leave_one_out}/<scene>/config.json`).")
    for scene_name, scene in scenes.items():
        weights = str(stems[scene_name]) if stems else None
        region = quality.evaluation_region(scene, crop, whole_scene=bool(stems))
        for case in quality.cases(region, settings):
            for method in (m for m in METHODS if m != "auto" or case.seed in auto_seeds):
                result = measure(case, method, steps, weights)
                if result is not None:
                    rows.append({"scene": scene_name, "protocol": case.protocol, "condition": case.condition,
                                 "method": method, "seed": case.seed, **result})
                    print(rows[-1], flush=True)
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """Rows averaged over seeds per (scene, protocol, condition, method); ``lowest`` is the worst seed's coverage."""
    keys = list(dict.fromkeys((r["scene"], r["protocol"], r["condition"], r["method"]) for r in rows))
    out = []
    for key in keys:
        group = [r for r in rows if (r["scene"], r["protocol"], r["condition"], r["method"]) == key]
        chosen = sorted({r["chosen"] for r in group})
        out.append({"scene": key[0], "protocol": key[1], "condition": key[2], "method": key[3],
                    "coverage": float(np.mean([r["coverage"] for r in group])),
                    "lowest": float(min(r["coverage"] for r in group)),
                    "width": float(np.mean([r["width"] for r in group])),
                    "rmse": float(np.mean([r["rmse"] for r in group])), "chosen": ", ".join(chosen)})
    return out


def markdown(table: list[dict], command: str, seconds: float, leave_one_out: str | None = None) -> str:
    """The page: how it was made, then one table row per case."""
    region = (f"whole scenes, each repaired by the weights trained without it (`{leave_one_out}`): unseen scenes"
              if leave_one_out else "held-out columns, shipped weights (trained on the other columns of these scenes)")
    inside = [r for r in table if 0.85 <= r["coverage"] <= 0.95]
    lines = [
        "# Interval coverage",
        "",
        "Written by the command below; no number on this page is typed by hand. Raw values: `intervals.json`.",
        "",
        f"- Command: `{command}`",
        f"- Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; wall time {seconds / 60:.1f} min",
        f"- Region and weights: {region}.",
        f"- Nominal level {LEVEL:g}; coverage is the share of the truly missing values inside [lower, upper] of "
        "`repair(..., interval=0.9)`, the mean over seeds (lowest seed in brackets); width is upper - lower in "
        "reflectance. `auto` says what the self-check chose.",
        f"- Cases with a mean coverage within 0.85-0.95: {len(inside)} of {len(table)}.",
        "",
        "| scene | protocol | condition | method | coverage (lowest) | mean width | RMSE | chosen |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['scene']} | {r['protocol']} | {r['condition']} | {r['method']} | {r['coverage']:.3f} "
              f"({r['lowest']:.3f}) | {r['width']:.4f} | {r['rmse']:.4f} | {r['chosen']} |" for r in table]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", nargs="*", default=["../shared/data/hsi"],
                        help="folders or .mat files of scenes besides the bundled Jasper Ridge (skipped if absent)")
    parser.add_argument("--crop", type=int, nargs=2, default=(64, 64),
                        help="rows, columns of the region (0 0: all of it)")
    parser.add_argument("--leave-one-out", metavar="DIR",
                        help="repair each whole scene with the weights trained without it (DIR/<scene>/weights/mcd)")
    parser.add_argument("--seeds", type=int, nargs="+", default=(0, 1, 2))
    parser.add_argument("--auto-seeds", type=int, nargs="*", default=(0,), help="seeds auto runs on (default: 0)")
    parser.add_argument("--steps", type=int, help="DDIM steps of the diffusion candidate (default: the weights')")
    parser.add_argument("--out", default="docs/benchmarks")
    args = parser.parse_args(argv)
    found = [s for s in args.scenes if Path(s).exists()]
    scenes = quality.load_scenes([quality.BUNDLED, *found])
    scenes = {k: v for k, v in scenes.items() if not k.startswith("jasper_ridge/")}  # the bundled copy is enough
    start = time.perf_counter()
    crop = None if tuple(args.crop) == (0, 0) else tuple(args.crop)
    rows = run(scenes, crop, tuple(args.seeds), tuple(args.auto_seeds), args.steps, args.leave_one_out)
    table = summary(rows)
    command = shlex.join(["python", "scripts/interval_coverage.py", *(sys.argv[1:] if argv is None else argv)])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "intervals.md").write_text(markdown(table, command, time.perf_counter() - start, args.leave_one_out))
    (out / "intervals.json").write_text(json.dumps({"command": command, "summary": table, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
