"""Throughput, peak memory per worker and area scaling of the tiled Zarr repair (:func:`anyband_xr.scale.repair_zarr`).

Each run gets a fresh ``distributed.LocalCluster`` (one process, one thread and one torch thread per worker, as
``repair_zarr`` makes by default), so a worker's peak resident memory belongs to that run alone; the workers import
the tile code before the clock starts (and load the model, for diffusion), so start-up is not timed.
Scaling compares a scene with 1/4 of the area (half the side) against the full scene: time per pixel should stay
constant (linear scaling) and the peak memory per worker flat.

Example:
    >>> rows = scaling(Path("/tmp/bench"), size=1024, bands=200, method="linear", steps=1, workers=2)
"""

from __future__ import annotations

import importlib
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from anyband_xr import masks
from anyband_xr.evaluation.speed import LoadGauge
from anyband_xr.evaluation.throughput import build_scene, peak_rss_mib
from anyband_xr.io.zarr import open_zarr
from anyband_xr.scale import repair_zarr
from anyband_xr.scale import tile as tile_module
from anyband_xr.scale.cluster import session

#: Whole-band loss of the benchmark's mask (a real repair: the same bands missing in every pixel).
BAND_LOSS = 0.3


@dataclass(frozen=True)
class TiledRun:
    """One tiled job: scene side and bands, method and steps, workers, tiles, pixels, wall seconds, peaks (MiB), and
    the median seconds of the reference workload timed during the run (:class:`~anyband_xr.evaluation.speed.LoadGauge`).
    """

    size: int
    bands: int
    method: str
    steps: int
    workers: int
    tiles: int
    pixels: int
    seconds: float
    peak_rss_mib: tuple[float, ...]
    reference_seconds: float

    @property
    def pixels_per_second(self) -> float:
        """Spatial pixels (all bands) repaired per wall second."""
        return self.pixels / self.seconds

    def as_dict(self) -> dict:
        """Plain fields plus ``pixels_per_second`` and ``max_peak_rss_mib``."""
        return {**asdict(self), "pixels_per_second": self.pixels_per_second,
                "max_peak_rss_mib": max(self.peak_rss_mib)}


def tiled_run(
    source: Path, target: Path, method: str, steps: int, workers: int, tile: int = 256, overlap: int = 32,
    device: str | None = None,
) -> TiledRun:
    """Repair ``source`` (30% of its bands missing) into ``target`` on a fresh LocalCluster; ``target`` is removed."""
    like = open_zarr(source, chunks=None)
    mask = masks.band_loss(like, BAND_LOSS, seed=0)
    shutil.rmtree(target, ignore_errors=True)
    with session(None, workers, method, device) as client:
        client.run(importlib.import_module, tile_module.__name__)  # worker start-up is not part of the throughput
        with LoadGauge() as gauge:
            summary = repair_zarr(source, target, mask=mask, method=method, steps=steps, tile=tile, overlap=overlap,
                                  device=device, scheduler=client, progress=False)
        peaks = tuple(client.run(peak_rss_mib).values())
    shutil.rmtree(target, ignore_errors=True)
    return TiledRun(like.sizes["y"], like.sizes["wavelength"], method, steps, workers, summary.tiles_total,
                    summary.pixels, summary.seconds, peaks, gauge.median)


@dataclass(frozen=True)
class Scaling:
    """A quarter-area run and a full-area run of the same job."""

    quarter: TiledRun
    full: TiledRun

    @property
    def time_ratio(self) -> float:
        """Full-area seconds over 4x the quarter-area seconds: 1.0 is linear in area (goal: within 10%)."""
        return self.full.seconds / (4 * self.quarter.seconds)

    @property
    def adjusted_time_ratio(self) -> float:
        """:attr:`time_ratio` with each run's seconds divided by its reference timing (the machine's load then)."""
        return self.time_ratio * self.quarter.reference_seconds / self.full.reference_seconds

    @property
    def memory_ratio(self) -> float:
        """Largest worker peak of the full run over that of the quarter run: 1.0 is flat."""
        return max(self.full.peak_rss_mib) / max(self.quarter.peak_rss_mib)


def scaling(
    workdir: Path, size: int, bands: int, method: str, steps: int, workers: int, tile: int = 256, overlap: int = 32,
    device: str | None = None,
) -> Scaling:
    """Build (once) the ``size // 2`` and ``size`` scenes under ``workdir`` and time the same job on both."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    runs = []
    for side in (size // 2, size):
        source = workdir / f"scene_{side}x{side}x{bands}.zarr"
        build_scene(source, side, bands)
        runs.append(tiled_run(source, workdir / "repaired.zarr", method, steps, workers, tile, overlap, device))
    return Scaling(*runs)
