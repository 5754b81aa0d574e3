"""Spectral throughput on a large Zarr v3 scene: sensor simulation and an index against plainly reading the data.

The scene is the bundled Jasper Ridge cube tiled out to ``size`` x ``size`` pixels and resampled to ``bands``
wavelengths. Each job runs in a fresh process, so its peak memory is that process's max RSS; times are reported as
ratios against the plain read of the same run, medians of alternating repeats (shared machines are noisy).

Example:
    >>> build_scene(Path("/tmp/scene.zarr"), size=512, bands=200)
    >>> rows = spectral_throughput(Path("/tmp/scene.zarr"))   # [{"job": "read", "seconds": ..., ...}, ...]
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

JOBS = ("read", "simulate", "index")


def build_scene(store: Path, size: int, bands: int, chunk: int = 512) -> None:
    """Write the tiled real scene (float32 reflectance, dims (wavelength, y, x)) to a Zarr v3 store, once.

    The store is written beside ``store`` and renamed when complete, so an existing ``store`` is always whole.
    """
    import dask.array as dsa
    import xarray as xr

    from anyband_xr import datasets
    from anyband_xr.io.zarr import write_zarr

    store = Path(store)
    if store.exists():
        return
    scene = datasets.jasper_ridge()
    wl = np.linspace(float(scene.wavelength[0]), float(scene.wavelength[-1]), bands)
    base = dsa.from_array(scene.interp(wavelength=wl).values.astype("float32"))
    reps = -(-size // base.shape[1])
    chunk = min(chunk, size)
    tiled = dsa.tile(base, (1, reps, reps))[:, :size, :size].rechunk((bands, chunk, chunk))
    da = xr.DataArray(tiled, dims=("wavelength", "y", "x"), coords={"wavelength": wl, "y": np.arange(size),
                      "x": np.arange(size)}, name="reflectance", attrs={"units": "reflectance"})
    partial = store.with_name(store.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    write_zarr(da, partial)
    partial.rename(store)


def peak_rss_mib() -> float:
    """Peak resident memory (MiB) of this process since it started its program.

    Linux's ``VmHWM``; ``ru_maxrss`` elsewhere. (On Linux ``ru_maxrss`` survives ``exec``, so a process spawned
    from a big parent would report the parent's size.)
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _job(kind: str, store: str, queue: mp.Queue) -> None:
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
    queue.put({"job": kind, "seconds": seconds, "peak_rss_mib": peak_rss_mib()})


def run_job(kind: str, store: Path) -> dict:
    """Seconds and peak RSS (MiB) of one job (``read``, ``simulate`` or ``index``) run in a fresh process."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_job, args=(kind, str(store), queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def spectral_throughput(store: Path, repeats: int = 3) -> list[dict]:
    """Every job of :data:`JOBS` on ``store``, each run ``repeats`` times, in alternating order (read, simulate, index,
    then the reverse ...) so that drift and page-cache warm-up do not favour one job: per job the median seconds,
    the largest peak RSS (MiB), ``runs`` and ``ratio_to_read`` (its median / the plain read's)."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}.")
    runs: dict[str, list[dict]] = {kind: [] for kind in JOBS}
    for repeat in range(repeats):
        for kind in JOBS if repeat % 2 == 0 else JOBS[::-1]:
            runs[kind].append(run_job(kind, store))
    results = [{"job": kind, "seconds": statistics.median(r["seconds"] for r in runs[kind]),
                "peak_rss_mib": max(r["peak_rss_mib"] for r in runs[kind]), "runs": repeats} for kind in JOBS]
    read = results[0]["seconds"]
    return [{**r, "ratio_to_read": r["seconds"] / read} for r in results]
