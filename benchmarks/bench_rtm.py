"""Benchmark: cost of the RTM manifold operator in physics-guided sampling, as a ratio to PGS without it.

    python benchmarks/bench_rtm.py [--size 64] [--steps 10] [--repeats 3]

Repairs a size x size crop of the bundled Jasper Ridge scene (30% of the bands missing) with the default weights,
with PGS operators ``["sensor"]`` (the reference) and ``["sensor", "rtm"]``, alternating, on one CPU thread; the
fastest of ``repeats`` runs of each counts. Times are ratios against the reference measured in the same run,
because these machines are shared and noisy. Writes benchmarks/results/rtm.md and .json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = {"sensor": ["sensor"], "sensor+rtm": ["sensor", "rtm"]}


def main() -> None:
    from anyband_xr import datasets, masks
    from anyband_xr.repair import repair

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS / "rtm"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    scene = datasets.jasper_ridge().isel(y=slice(0, args.size), x=slice(0, args.size))
    mask = masks.band_loss(scene, 0.3, seed=0)

    def seconds(operators: list[str]) -> float:
        start = time.perf_counter()
        repair(scene, mask, method="diffusion", operators=operators, steps=args.steps, seed=0, device="cpu",
               tile=args.size, overlap=0)
        return time.perf_counter() - start

    seconds(CONFIGS["sensor+rtm"])  # warm-up: loads the model and the emulator
    runs: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for _ in range(args.repeats):
        for name, operators in CONFIGS.items():
            runs[name].append(seconds(operators))
    best = {name: min(times) for name, times in runs.items()}
    ratio = best["sensor+rtm"] / best["sensor"]
    meta = {"scene": f"Jasper Ridge crop {args.size}x{args.size}, 30% of the bands missing, {args.steps} DDIM steps",
            "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread",
            "command": f"python benchmarks/bench_rtm.py --size {args.size} --steps {args.steps}"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps({**meta, "seconds": runs, "ratio_rtm_to_sensor": ratio}, indent=2))
    lines = [f"# RTM operator cost in PGS: {meta['scene']}", "", f"Machine: {meta['machine']}. Command: "
             f"`{meta['command']}`.", "", "| PGS operators | best of runs (s) | ratio to sensor only |", "|---|---|---|"]
    lines += [f"| {name} | {best[name]:.2f} | {best[name] / best['sensor']:.3f} |" for name in CONFIGS]
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
