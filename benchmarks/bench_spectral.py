"""Benchmark: sensor simulation and a spectral index on a large Zarr v3 scene vs plainly reading it.

    python benchmarks/bench_spectral.py [--size 2048] [--bands 200] [--store /tmp/anyband_bench.zarr]

The scene is the bundled Jasper Ridge cube tiled out to size x size pixels and resampled to ``bands`` wavelengths.
Each job runs in a fresh process (peak memory = that process's max RSS). Times are ratios against the plain read
in the same run, because these machines are shared and noisy. Writes benchmarks/results/spectral.md and .json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def build_scene(store: Path, size: int, bands: int, chunk: int) -> None:
    """Write the tiled real scene to a Zarr v3 store (once)."""
    import xarray as xr

    from anyband_xr import datasets
    from anyband_xr.io.zarr import write_zarr

    if store.exists():
        return
    scene = datasets.jasper_ridge()
    wl = np.linspace(float(scene.wavelength[0]), float(scene.wavelength[-1]), bands)
    base = scene.interp(wavelength=wl).values.astype("float32")
    reps = -(-size // base.shape[1])
    tiled = np.tile(base, (1, reps, reps))[:, :size, :size]
    da = xr.DataArray(tiled, dims=("wavelength", "y", "x"), coords={"wavelength": wl, "y": np.arange(size),
                      "x": np.arange(size)}, name="reflectance", attrs={"units": "reflectance"})
    write_zarr(da.chunk({"wavelength": -1, "y": chunk, "x": chunk}), store)


def job(kind: str, store: str, queue: mp.Queue) -> None:
    """Run one job in this (fresh) process and report seconds and peak RSS."""
    import dask

    import anyband_xr  # noqa: F401
    from anyband_xr.io.zarr import open_zarr

    dask.config.set(scheduler="threads")
    da = open_zarr(store)
    start = time.perf_counter()
    if kind == "read":
        da.data.sum().compute()
    elif kind == "simulate":
        da.anyband.simulate("sentinel-2a").data.sum().compute()
    elif kind == "index":
        da.anyband.index("NDVI").data.sum().compute()
    seconds = time.perf_counter() - start
    queue.put({"job": kind, "seconds": seconds, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def run_job(kind: str, store: Path) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=job, args=(kind, str(store), queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--bands", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=512)
    parser.add_argument("--store", default="/tmp/anyband_bench.zarr")
    parser.add_argument("--out", default=str(RESULTS / "spectral"))
    args = parser.parse_args()
    store = Path(args.store)
    build_scene(store, args.size, args.bands, args.chunk)
    results = [run_job(kind, store) for kind in ("read", "simulate", "index")]
    read = results[0]["seconds"]
    for r in results:
        r["ratio_to_read"] = r["seconds"] / read
    scene_mib = args.size * args.size * args.bands * 4 / 2**20
    meta = {"scene": f"{args.size}x{args.size}x{args.bands} float32 ({scene_mib:.0f} MiB), chunks {args.chunk}^2",
            "machine": f"{platform.processor() or platform.machine()}, {mp.cpu_count()} cores, {platform.python_version()}",
            "command": f"python benchmarks/bench_spectral.py --size {args.size} --bands {args.bands}"}
    Path(args.out + ".json").write_text(json.dumps({**meta, "results": results}, indent=2))
    lines = [f"# Spectral throughput: {meta['scene']}", "", f"Machine: {meta['machine']}. Command: `{meta['command']}`.", "",
             "| job | seconds | ratio to plain read | peak RSS (MiB) |", "|---|---|---|---|"]
    lines += [f"| {r['job']} | {r['seconds']:.1f} | {r['ratio_to_read']:.2f} | {r['peak_rss_mib']:.0f} |" for r in results]
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
