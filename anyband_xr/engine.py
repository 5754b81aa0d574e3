"""The block engine of ``repair`` and ``generate``: one (B, H, W) block at a time, eagerly or as a dask graph.

A block is filled by the diffusion model tile by tile (torch is imported only then) or by a classical method over
its pixels. Pixels without any observed value are left missing (NaN); a non-finite result of the model is replaced
by the PCHIP interpolant of its pixel and reported. On dask arrays every chunk is read with a halo of the full tile
overlap (chunks are rechunked to at least that size when needed), so the result does not depend on the chunking.
"""

from __future__ import annotations

import warnings

import dask.array as dsa
import numpy as np
import xarray as xr
from dask.array.overlap import ensure_minimum_chunksize
from scipy.ndimage import distance_transform_edt
from tqdm.auto import tqdm

from anyband_xr import spectral, tiling
from anyband_xr.settings import RepairSettings


def _diffuse_block(filled, missing, wavelength_nm, settings, y0, x0, target_nm, responses, progress):
    from anyband_xr.sampling.conditional import diffuse

    b, h, w = filled.shape
    n_out = b if target_nm is None else len(target_nm)
    n_tiles = sum(1 for _ in tiling.tiles(h, w, settings.tile, settings.overlap))
    with tqdm(total=n_tiles * settings.samples * settings.steps, disable=not progress, desc="AnyBand-Diff") as bar:

        def run(ys: slice, xs: slice) -> np.ndarray:
            return diffuse(filled[:, ys, xs], missing[:, ys, xs], wavelength_nm, settings, y0 + ys.start,
                           x0 + xs.start, target_nm=target_nm, responses=responses, progress=bar.update)

        stacked = tiling.blend_tiles(h, w, settings.tile, settings.overlap, run, (2, n_out))
    return stacked[0], stacked[1]


def _classical(values: np.ndarray, missing: np.ndarray, wavelength_nm: np.ndarray, method: str) -> np.ndarray:
    """A classical method's fill of (B, P) values (P pixels, each with at least one observed value)."""
    from anyband_xr import baselines

    if method == "gaussian":
        return baselines.gaussian_conditional_mean(values, wavelength_nm, missing)
    return baselines.interpolate(values, wavelength_nm, missing, method)


def _nearest_observed(values: np.ndarray, missing: np.ndarray, empty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Copies of (values, missing) whose empty pixels take those of the nearest pixel with an observation, so the
    model sees a continuous scene; their outputs are discarded afterwards."""
    _, (iy, ix) = distance_transform_edt(empty, return_indices=True)
    return values[:, iy, ix], missing[:, iy, ix]


def _replace_nonfinite(mean, std, filled, missing, wavelength_nm, empty) -> None:
    """Replace, in place, non-finite model outputs at missing values by the PCHIP interpolant, with a warning."""
    bad = missing & ~np.isfinite(mean) & ~empty[None]
    if not bad.any():
        return
    pixels = bad.any(axis=0)
    fallback = _classical(filled[:, pixels], missing[:, pixels], wavelength_nm, "pchip")
    mean[:, pixels] = np.where(bad[:, pixels], fallback, mean[:, pixels])
    std[bad] = np.nan
    warnings.warn(
        f"the model gave {int(bad.sum())} non-finite value(s) in {int(pixels.sum())} pixel(s); they were filled "
        "with the PCHIP interpolant (their std is NaN). Check those pixels' observed values.",
        spectral.AnyBandWarning,
        stacklevel=2,
    )


def fill_block(
    values: np.ndarray,
    missing: np.ndarray,
    wavelength_nm: np.ndarray,
    settings: RepairSettings,
    y0: int,
    x0: int,
    target_nm: np.ndarray | None = None,
    responses: xr.DataArray | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Repair one (B, H, W) block whose top-left pixel sits at global (y0, x0): (mean, std).

    On the own grid (``target_nm`` None) observed values are restored exactly; otherwise the block is a generation
    onto ``target_nm`` from band values whose SRFs are ``responses`` (diffusion only). Pixels with no observed value
    come back NaN (mean and std).
    """
    b, h, w = values.shape
    n_out = b if target_nm is None else len(target_nm)
    empty = missing.all(axis=0)
    if empty.all():
        nan = np.full((n_out, h, w), np.nan, dtype=values.dtype)
        return nan, nan.copy()
    filled = np.where(missing, 0.0, values)
    if settings.method == "diffusion":
        model_values, model_missing = _nearest_observed(filled, missing, empty) if empty.any() else (filled, missing)
        mean, std = _diffuse_block(model_values, model_missing, wavelength_nm, settings, y0, x0, target_nm,
                                   responses, progress)
        if target_nm is None:
            _replace_nonfinite(mean, std, filled, missing, wavelength_nm, empty)
    else:
        seen = ~empty.reshape(-1)
        flat = np.full((b, h * w), np.nan)
        flat[:, seen] = _classical(filled.reshape(b, -1)[:, seen], missing.reshape(b, -1)[:, seen], wavelength_nm,
                                   settings.method)
        mean, std = flat.reshape(b, h, w), np.zeros((b, h, w))
    mean[:, empty], std[:, empty] = np.nan, np.nan
    if target_nm is not None:
        return mean.astype(values.dtype), std.astype(values.dtype)
    mean = np.where(missing, mean, values).astype(values.dtype)
    std = np.where(missing, std, 0.0).astype(values.dtype)
    return mean, std


def _block(values, missing, y_index, x_index, wavelength_nm, settings, target_nm, responses):
    y0, x0 = int(y_index.ravel()[0]), int(x_index.ravel()[0])
    mean, std = fill_block(values, missing, wavelength_nm, settings, y0, x0, target_nm, responses)
    return np.concatenate([mean, std], axis=0)


def _with_halo(chunks: tuple[int, ...], depth: int) -> tuple[int, ...]:
    """Chunk sizes after ``map_overlap`` adds ``depth`` on every side that has a neighbour (boundary 'none')."""
    last = len(chunks) - 1
    return tuple(c + depth * ((i > 0) + (i < last)) for i, c in enumerate(chunks))


def _repair_dask(data, missing, wavelength_nm, settings, target_nm=None, responses=None):
    b = data.shape[0] if target_nm is None else len(target_nm)
    ny, nx = data.shape[1], data.shape[2]
    depth = settings.overlap if settings.method == "diffusion" else 0
    original = ((b,), *data.chunks[1:])
    chunks = (data.chunks[0], *(ensure_minimum_chunksize(depth, c) if depth else c for c in data.chunks[1:]))
    data = data.rechunk(chunks)
    plane = ((1,), chunks[1], chunks[2])
    y_index = dsa.broadcast_to(dsa.arange(ny).reshape(1, ny, 1), (1, ny, nx)).rechunk(plane)
    x_index = dsa.broadcast_to(dsa.arange(nx).reshape(1, 1, nx), (1, ny, nx)).rechunk(plane)
    out = dsa.map_overlap(
        _block,
        data,
        missing.rechunk(chunks),
        y_index,
        x_index,
        depth={0: 0, 1: depth, 2: depth},
        boundary="none",
        align_arrays=False,
        chunks=((2 * b,), _with_halo(chunks[1], depth), _with_halo(chunks[2], depth)),
        dtype=data.dtype,
        meta=np.array((), dtype=data.dtype),
        wavelength_nm=wavelength_nm,
        settings=settings,
        target_nm=target_nm,
        responses=responses,
    )
    return out[:b].rechunk(original), out[b:].rechunk(original)


def _repair_numpy(data, missing, wavelength_nm, settings, target_nm=None, responses=None):
    return fill_block(data, missing, wavelength_nm, settings, 0, 0, target_nm, responses, progress=True)


def run_blocks(
    values: xr.DataArray,
    missing: xr.DataArray,
    settings: RepairSettings,
    target_nm: np.ndarray | None = None,
    responses: xr.DataArray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std arrays for ``values`` ordered (*loop, spectral, y, x): lazy on dask, eager on numpy."""
    loop = list(values.dims[:-3])
    lazy = values.chunks is not None
    engine = _repair_dask if lazy else _repair_numpy
    wavelength_nm = values["wavelength"].values
    means, stds = [], []
    for index in np.ndindex(*(values.sizes[d] for d in loop)):
        select = dict(zip(loop, index))
        block_missing = missing.isel(select).data
        block_missing = dsa.asarray(block_missing) if lazy else np.asarray(block_missing)
        mean, std = engine(values.isel(select).data, block_missing, wavelength_nm, settings, target_nm, responses)
        means.append(mean)
        stds.append(std)
    stack = dsa.stack if lazy else np.stack
    n_out = values.shape[-3] if target_nm is None else len(target_nm)
    shape = (*values.shape[:-3], n_out, *values.shape[-2:])
    return stack(means).reshape(shape), stack(stds).reshape(shape)
