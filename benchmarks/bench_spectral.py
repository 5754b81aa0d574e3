"""Benchmark: sensor simulation and a spectral index on a large Zarr v3 scene vs plainly reading it.

    python benchmarks/bench_spectral.py [--size 2048] [--bands 200] [--repeats 3] [--store /tmp/anyband_bench.zarr]

The scene is the bundled Jasper Ridge cube tiled out to size x size pixels and resampled to ``bands`` wavelengths
(:mod:`anyband_xr.evaluation.throughput`, also used by ``anyband benchmark speed``). Each job runs in a fresh
process (peak memory = that process's max RSS), ``--repeats`` times in alternating order; the median time counts.
Times are ratios against the plain read in the same run, because these machines are shared and noisy. Writes spectral.md, .csv and .json into --out (benchmarks/results).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from anyband_xr.evaluation.markdown import machine, provenance, table
from anyband_xr.evaluation.outputs import write_results
from anyband_xr.evaluation.throughput import build_scene, spectral_throughput

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--bands", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=512)
    parser.add_argument("--store", default="/tmp/anyband_bench.zarr")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each job, in alternating order; medians count")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    store = Path(args.store)
    build_scene(store, args.size, args.bands, args.chunk)
    results = spectral_throughput(store, args.repeats)
    scene_mib = args.size * args.size * args.bands * 4 / 2**20
    meta = {"scene": f"{args.size}x{args.size}x{args.bands} float32 ({scene_mib:.0f} MiB), chunks {args.chunk}^2",
            "machine": machine(), "provenance": provenance(),
            "command": f"python benchmarks/bench_spectral.py --size {args.size} --bands {args.bands} --chunk {args.chunk} "
                       f"--repeats {args.repeats}"}
    rows = [[r["job"], f"{r['seconds']:.1f}", f"{r['ratio_to_read']:.2f}", f"{r['peak_rss_mib']:.0f}"] for r in results]
    lines = [f"# Spectral throughput: {meta['scene']}", "",
             f"Machine: {meta['machine']}. Run: {meta['provenance']}. Command: `{meta['command']}`.", "",
             *table(["job", "median seconds", "ratio to plain read", "peak RSS (MiB)"], rows)]
    write_results(Path(args.out), "spectral", lines, results, meta)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
