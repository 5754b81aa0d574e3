"""One task of a tiled Zarr job, run on a dask worker: read a window, repair it, crop the halo, write, mark done."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from anyband_xr import selfcheck
from anyband_xr.engine import SAMPLE_STD, fill_block
from anyband_xr.io.zarr import open_zarr
from anyband_xr.observation import missing_mask, screen
from anyband_xr.scale import store
from anyband_xr.scale.layout import TileGrid
from anyband_xr.settings import RepairSettings

if TYPE_CHECKING:
    from anyband_xr.lowrank import LowRankGaussian


def open_variable(path: str, variable: str | None, chunks: dict | None = None) -> xr.DataArray:
    """A variable of a Zarr store, lazily indexed (no dask; ``chunks={}``: dask, one task per stored chunk): only
    what is sliced out is read."""
    ds = xr.open_zarr(path, chunks=chunks, consolidated=False)
    if variable is None:
        if len(ds.data_vars) != 1:
            raise ValueError(f"{path} holds variables {sorted(map(str, ds.data_vars))}; name the mask variable.")
        variable = str(next(iter(ds.data_vars)))
    if variable not in ds.data_vars:
        raise KeyError(f"{path} has no variable {variable!r}; its variables: {sorted(map(str, ds.data_vars))}.")
    return ds[variable]


@dataclass(frozen=True)
class MaskSource:
    """Where a tile finds its mask (True = missing): an in-memory DataArray, or a variable of a Zarr store."""

    array: xr.DataArray | None = None
    store: str | None = None
    variable: str | None = None

    def window(self, ys: slice, xs: slice, y: str, x: str) -> xr.DataArray | None:
        """The mask over a (ys, xs) window; None when only NaN marks missing values."""
        mask = self.array if self.store is None else open_variable(self.store, self.variable)
        if mask is None:
            return None
        return mask.isel({k: v for k, v in ((y, ys), (x, xs)) if k in mask.dims}).load()

    def lazy(self) -> xr.DataArray | None:
        """The whole mask, dask-backed when it is in a store (nothing read); None when only NaN marks missing values."""
        return self.array if self.store is None else open_variable(self.store, self.variable, chunks={})


@dataclass(frozen=True)
class TileJob:
    """Everything a worker needs to repair any tile of one job: paths, names, settings, the scene's fitted in-scene
    prior (``engine.scene_prior``: the fill of ``method="lowrank"``, the model's base for ``"diffusion"``), and when
    the tiles write a calibrated ``std`` (``method="auto"`` or a classical method) the self-check whose held-out
    errors calibrate it (megabytes: ``repair_zarr`` sends the job to each worker once)."""

    source: str
    variable: str
    target: str
    name: str
    dims: tuple[str, str, str]
    wavelength_nm: np.ndarray
    grid: TileGrid
    settings: RepairSettings
    mask: MaskSource
    with_std: bool
    prior: LowRankGaussian | None = None
    check: selfcheck.SelfCheck | selfcheck.Unchecked | None = None

    @property
    def std_name(self) -> str | None:
        """``long_name`` of the ``std`` the tiles write: calibrated after a self-check, else the spread over the
        diffusion samples; None without ``std``."""
        if not self.with_std:
            return None
        return SAMPLE_STD if self.check is None else selfcheck.CALIBRATED_STD


@dataclass(frozen=True)
class TileReport:
    """What a finished tile sends back: its index, pixels, seconds spent, and False if it was already written."""

    tile: tuple[int, int]
    pixels: int
    seconds: float
    written: bool


def read_window(job: TileJob, ys: slice, xs: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, missing, screened) of a window, each (B, h, w): float values from the source; True where missing
    (the job's mask, NaN, inf, the declared fill value, and what ``screen`` rejects); True where only ``screen``
    rejects an observed value (a conventional fill value such as -9999, or reflectance out of range)."""
    dim, y, x = job.dims
    da = open_zarr(job.source, job.variable, chunks=None).transpose(*job.dims).isel({y: ys, x: xs}).load()
    if not np.issubdtype(da.dtype, np.floating):
        da = da.astype(np.float32)
    missing = missing_mask(da, job.mask.window(ys, xs, y, x))
    # screen's dask path: the same rejections as repair() on dask, without its whole-scene counts and checks
    screened, _ = screen(da.chunk(), missing.chunk(), dim)
    screened = screened.values
    return da.values, screened, screened & ~missing.values


def run_tile(job: TileJob, iy: int, ix: int) -> TileReport:
    """Repair tile (iy, ix) of ``job`` and write it, unless it is already written (a re-run task does nothing).

    The noise depends on global pixel positions only, so the result does not depend on which worker runs it when.
    Pixels without any observed band are left NaN (by ``fill_block``) and counted, as are the observed values
    ``screen`` treats as missing.
    """
    start = time.perf_counter()
    ry, rx = job.grid.region(iy, ix)
    pixels = (ry.stop - ry.start) * (rx.stop - rx.start)
    if store.tile_writes(job.target, iy, ix) > 0:
        return TileReport((iy, ix), pixels, time.perf_counter() - start, written=False)
    ys, xs = job.grid.window(iy, ix)
    values, missing, screened = read_window(job, ys, xs)
    core = (slice(ry.start - ys.start, ry.stop - ys.start), slice(rx.start - xs.start, rx.stop - xs.start))
    try:
        mean, std = fill_block(values, missing, np.array(job.wavelength_nm), job.settings, (ys.start, xs.start),
                               (job.grid.height, job.grid.width), core, prior=job.prior)
    except ValueError as err:
        raise ValueError(f"tile ({iy}, {ix}), window y={ys.start}:{ys.stop}, x={xs.start}:{xs.stop}: {err}") from err
    inside = (slice(None), *core)
    if job.with_std and job.check is not None:
        std = selfcheck.halfwidths(missing[inside], job.check, job.settings.method, np.array(job.wavelength_nm),
                                   selfcheck.ONE_SIGMA)
    store.write_region(job.target, job.name, job.dims, ry, rx, mean, std if job.with_std else None)
    store.mark_written(job.target, iy, ix, int(missing[inside].all(axis=0).sum()), int(screened[inside].sum()))
    return TileReport((iy, ix), pixels, time.perf_counter() - start, written=True)
