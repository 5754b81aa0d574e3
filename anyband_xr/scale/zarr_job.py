"""``repair_zarr``: repair a Zarr scene too large for memory, tile by tile on dask-distributed, resumably."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from dask.base import tokenize
from distributed import Client, as_completed
from tqdm.auto import tqdm

from anyband_xr import spectral
from anyband_xr.io.zarr import open_zarr
from anyband_xr.observation import looks_like_reflectance, spatial_layout
from anyband_xr.scale import store
from anyband_xr.scale.cluster import session
from anyband_xr.scale.layout import TileGrid
from anyband_xr.scale.tile import MaskSource, TileJob, run_tile
from anyband_xr.settings import RepairSettings


@dataclass(frozen=True)
class JobSummary:
    """What a run did: tiles repaired now / already done before / in all, repaired pixels, wall time (s), and the
    dask dashboard link (None when unknown). ``str(summary)`` is a one-line report."""

    tiles_done: int
    tiles_skipped: int
    tiles_total: int
    pixels: int
    seconds: float
    dashboard: str | None

    @property
    def pixels_per_second(self) -> float:
        """Spatial pixels (all bands) repaired per second of wall time in this run."""
        return self.pixels / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (
            f"{self.tiles_done} tiles repaired, {self.tiles_skipped} already done, {self.tiles_total} in all; "
            f"{self.pixels} pixels in {self.seconds:.1f} s ({self.pixels_per_second:,.0f} pixels/s)"
        )


def _source(path: str, variable: str | None) -> tuple[xr.DataArray, str, str]:
    """The source variable standardised and ordered (spectral, y, x), its store variable name and spectral dim."""
    raw = open_zarr(path, variable, chunks=None)
    dim = spectral.spectral_dim(raw)
    if (np.diff(spectral.wavelengths(raw)) <= 0).any():
        raise ValueError(f"the wavelengths along {dim!r} of {path} are not strictly ascending; sort the store first.")
    loop, y, x = spatial_layout(raw, dim)
    if loop:
        raise ValueError(f"repair_zarr repairs one (spectral, y, x) scene; {path} has extra dims {loop}. Split them.")
    return spectral.standardize(raw).transpose(dim, y, x), str(raw.name), dim


#: Largest in-memory mask (bytes) a job accepts: it travels with every tile task; larger masks go in a Zarr store.
MAX_MASK_BYTES = 64 * 2**20


def _mask_source(source: str, mask: xr.DataArray | str | Path | None, mask_variable: str | None) -> MaskSource:
    if isinstance(mask, xr.DataArray):
        if mask_variable is not None:
            raise ValueError("pass either a mask DataArray or mask_variable, not both.")
        if mask.nbytes > MAX_MASK_BYTES:
            raise ValueError(
                f"the mask DataArray holds {mask.nbytes / 2**20:.0f} MiB, and an in-memory mask is sent with every "
                "tile task. Write it to a Zarr store (mask.to_dataset(name='missing').to_zarr('mask.zarr')) and pass "
                "mask='mask.zarr', or pass a mask over the spectral dim only."
            )
        return MaskSource(array=mask.load())
    if mask is not None:
        return MaskSource(store=str(mask), variable=mask_variable)
    if mask_variable is not None:
        return MaskSource(store=source, variable=mask_variable)
    return MaskSource()


def _prepare_store(target: str, like: xr.DataArray, job: TileJob, record: dict, resume: bool) -> np.ndarray:
    """Completion counts of the tiles, after writing the template (new job) or checking it (resumed job)."""
    stored = store.stored_record(target)
    if stored is not None and not resume:
        raise FileExistsError(f"{target} already holds a repair job; pass resume=True (--resume) or remove it.")
    if stored is None:
        if Path(target).exists() and not (resume and (Path(target) / "zarr.json").exists()):
            raise FileExistsError(f"{target} exists and is not a repair job store; choose another output path.")
        store.write_template(target, like, job.name, job.grid, job.with_std, record)
    else:
        store.check_record(stored, record)
    return store.tile_writes(target)


def repair_zarr(
    source: str | Path,
    target: str | Path,
    variable: str | None = None,
    mask: xr.DataArray | str | Path | None = None,
    mask_variable: str | None = None,
    guidance: float = 1.0,
    steps: int | None = None,
    samples: int = 1,
    seed: int | None = None,
    method: str = "diffusion",
    device: str | None = None,
    tile: int = 256,
    overlap: int = 32,
    operators: list | tuple | None = None,
    grad: str = "x0",
    eta: float = 0.0,
    weights: str | None = None,
    region: int | None = None,
    scheduler: str | Client | None = None,
    workers: int | None = None,
    resume: bool = False,
    progress: bool = True,
) -> JobSummary:
    """Repair the missing values of a Zarr scene into a new Zarr v3 store, one output chunk per dask task.

    Args:
        source: input Zarr store; ``variable`` names its spectral variable (dims (spectral, y, x)) when it holds
            several. NaN counts as missing.
        target: output Zarr v3 store: the repaired variable (same name, coords, CRS and attrs plus provenance),
            ``std`` when ``samples > 1``, and the per-tile completion counts ``anyband_tile_writes``.
        mask: boolean, True where missing: a DataArray (e.g. dims ``("wavelength",)``), or a Zarr store path whose
            variable ``mask_variable`` (or only variable) it is; ``mask_variable`` alone names a variable of
            ``source``.
        guidance: PGS scale, as in ``anyband_xr.repair.repair`` (as are ``steps``, ``samples``, ``seed``,
            ``method``, ``device``, ``tile`` and ``overlap`` in pixels, ``operators`` (names only: they travel to
            the workers), ``grad``, ``eta`` and ``weights``); the result does not depend on scheduling or worker
            count.
        region: side (pixels) of the write regions, which are the output chunks; default ``tile - 2 * overlap``,
            so that a region with its ``overlap`` halo on each side is one diffusion tile. Equals
            ``repair(da.chunk({"y": region, "x": region}), ...)`` where every chunk is at least ``overlap`` wide.
        scheduler: address of a running dask scheduler, or a ``distributed.Client``; default: a LocalCluster of
            ``workers`` processes (default one per core) with one thread each.
        resume: continue a job stopped part-way: only tiles without a completion count are repaired, and the
            result is bit for bit that of an uninterrupted run. Without it an existing job store is an error.
        progress: show a progress bar and the dashboard link.

    Returns:
        A ``JobSummary`` (tiles, wall time, pixels per second).

    Example:
        >>> summary = repair_zarr("scene.zarr", "repaired.zarr", mask="mask.zarr", steps=20, workers=2)
        >>> print(summary)   # "12 tiles repaired, 0 already done, 12 in all; ... pixels/s"
        >>> repair_zarr("scene.zarr", "repaired.zarr", mask="mask.zarr", steps=20, resume=True)  # after a crash
    """
    if operators is not None and not all(isinstance(op, str) for op in operators):
        raise TypeError("repair_zarr takes PGS operators by name only (they travel to the dask workers).")
    source, target = str(source), str(target)
    like, name, dim = _source(source, variable)
    settings = RepairSettings.build(
        method=method, guidance=guidance, steps=steps, samples=samples, seed=seed, eta=eta, operators=operators,
        grad=grad, tile=tile, overlap=overlap, device=device, weights=weights,
        reflectance=looks_like_reflectance(like),
    )
    if region is None and settings.tile <= 2 * settings.overlap:
        raise ValueError(
            f"tile ({settings.tile}) must be larger than twice the overlap ({settings.overlap}): the write region is "
            "the tile less the overlap on both sides. Pass a larger tile, a smaller overlap, or region=."
        )
    size = int(region) if region is not None else settings.tile - 2 * settings.overlap
    halo = settings.overlap if method == "diffusion" else 0
    grid = TileGrid(like.shape[1], like.shape[2], size, halo)
    job = TileJob(
        source=source, variable=name, target=target, name=name, dims=(dim, *like.dims[1:]),
        wavelength_nm=like[spectral.WAVELENGTH].values, grid=grid, settings=settings,
        mask=_mask_source(source, mask, mask_variable), with_std=settings.samples > 1,
    )
    record = {**settings.provenance(), "anyband_region": grid.size, "anyband_halo": grid.halo}
    writes = _prepare_store(target, like, job, record, resume)
    pending = [(iy, ix) for iy, ix in grid if writes[iy, ix] == 0]
    start = time.perf_counter()
    with session(scheduler, workers, method, device) as client:
        dashboard = client.dashboard_link
        if progress:
            print(f"anyband: {len(pending)} of {len(grid)} tiles to repair; dashboard {dashboard}", flush=True)
        token = tokenize(job)
        futures = [
            client.submit(run_tile, job, iy, ix, key=f"anyband-tile-{iy}-{ix}-{token}", pure=False)
            for iy, ix in pending
        ]
        pixels, failures = 0, []
        with tqdm(total=len(futures), unit="tile", disable=not progress, desc="anyband repair") as bar:
            for future in as_completed(futures):
                if future.status == "finished":
                    pixels += future.result().pixels
                else:
                    failures.append(future.exception())
                bar.update()
                future.release()
    seconds = time.perf_counter() - start
    if failures:
        raise RuntimeError(
            f"{len(failures)} of {len(pending)} tiles failed (the others are written; fix the cause and run again "
            f"with resume=True / --resume). First error: {failures[0]!r}"
        ) from failures[0]
    return JobSummary(len(pending), len(grid) - len(pending), len(grid), pixels, seconds, dashboard)
