"""The block engine of ``repair`` and ``generate``: one (B, H, W) block at a time, eagerly or as a dask graph.

A block is filled by the diffusion model tile by tile (torch is imported only then) or by a classical method over
its pixels. Pixels without any observed value are left missing (NaN); a non-finite result of the model is replaced
by the PCHIP interpolant of its pixel and reported. On dask arrays every chunk is read with a halo of the full tile
overlap, and chunk boundaries are moved onto region boundaries (``tiling.regions``) when needed: a pixel is always
predicted from the same window, so the result does not depend on the chunking.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import dask
import dask.array as dsa
import numpy as np
import xarray as xr
from scipy.ndimage import distance_transform_edt
from tqdm.auto import tqdm

from anyband_xr import spectral, tiling
from anyband_xr.model.weights import gaussian_prior
from anyband_xr.settings import RepairSettings

if TYPE_CHECKING:
    from dask.delayed import Delayed

    from anyband_xr.lowrank import LowRankGaussian


def _diffuse_block(filled, missing, wavelength_nm, settings, origin, extent, core, target_nm, responses, progress,
                   needed=None, prior=None):
    """Model mean and std (n_out, h, w) over the block's core, region by region (``tiling.regions``): each region
    is predicted from its window (the region grown by the overlap) and keeps its centre. With ``needed`` (the
    block's (H, W) pixels with a value to fill), a region without any is skipped: 0 there (its values are observed,
    or stay missing), and the other regions are unchanged (their noise depends on their position only). ``prior``:
    the scene's in-scene low-rank prior, whose completion the model corrects (``diffuse``)."""
    from anyband_xr.sampling.conditional import diffuse

    (y0, x0), (ny, nx), (core_y, core_x) = origin, extent, core
    n_out = filled.shape[0] if target_nm is None else len(target_nm)
    rows = list(tiling.regions(ny, settings.tile, settings.overlap, y0 + core_y.start, y0 + core_y.stop))
    cols = list(tiling.regions(nx, settings.tile, settings.overlap, x0 + core_x.start, x0 + core_x.stop))
    shape = (n_out, core_y.stop - core_y.start, core_x.stop - core_x.start)
    mean, std = np.zeros(shape), np.zeros(shape)
    todo = [(r, c) for r in rows for c in cols if needed is None
            or needed[r[0].start - y0:r[0].stop - y0, c[0].start - x0:c[0].stop - x0].any()]
    with tqdm(total=len(todo) * settings.samples * settings.steps, disable=not progress, desc="AnyBand-Diff") as bar:
        for (ry, wy), (rx, wx) in todo:
            window = (slice(None), slice(wy.start - y0, wy.stop - y0), slice(wx.start - x0, wx.stop - x0))
            out = diffuse(filled[window], missing[window], wavelength_nm, settings, wy.start, wx.start,
                          target_nm=target_nm, responses=responses, progress=bar.update, scene_prior=prior)
            keep = (slice(None), slice(ry.start - wy.start, ry.stop - wy.start), slice(rx.start - wx.start, rx.stop - wx.start))
            place = (slice(None), slice(ry.start - y0 - core_y.start, ry.stop - y0 - core_y.start),
                     slice(rx.start - x0 - core_x.start, rx.stop - x0 - core_x.start))
            mean[place], std[place] = out[0][keep], out[1][keep]
    return mean, std


def _classical(
    values: np.ndarray, missing: np.ndarray, wavelength_nm: np.ndarray, method: str,
    prior: LowRankGaussian | None = None, weights: str | None = None,
) -> np.ndarray:
    """A classical method's fill of (B, P) values (P pixels, each with at least one observed value); ``prior`` is
    the scene's fitted ``lowrank.LowRankGaussian`` for ``"lowrank"``; ``"gaussian"`` conditions the Gaussian spectral
    prior of the ``weights`` (``model.weights.gaussian_prior``: their run's own, else the shipped one)."""
    if method == "lowrank":
        return prior.complete(values, missing)
    from anyband_xr import baselines

    if method == "gaussian":
        return baselines.gaussian_conditional_mean(values, wavelength_nm, missing, gaussian_prior(weights))
    return baselines.interpolate(values, wavelength_nm, missing, method)


def _nearest_observed(values: np.ndarray, missing: np.ndarray, empty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Copies of (values, missing) whose empty pixels take those of the nearest pixel with an observation, so the
    model sees a continuous scene; their outputs are discarded afterwards."""
    _, (iy, ix) = distance_transform_edt(empty, return_indices=True)
    return values[:, iy, ix], missing[:, iy, ix]


def _replace_nonfinite(mean, std, filled, missing, wavelength_nm, empty, prior=None) -> None:
    """Replace, in place, non-finite model outputs at missing values by the base the model corrects (the scene's
    low-rank completion with a ``prior``, else the PCHIP interpolant), with a warning."""
    bad = missing & ~np.isfinite(mean) & ~empty[None]
    if not bad.any():
        return
    pixels = bad.any(axis=0)
    base = "pchip" if prior is None else "lowrank"
    fallback = _classical(filled[:, pixels], missing[:, pixels], wavelength_nm, base, prior)
    mean[:, pixels] = np.where(bad[:, pixels], fallback, mean[:, pixels])
    std[bad] = np.nan
    warnings.warn(
        f"the model gave {int(bad.sum())} non-finite value(s) in {int(pixels.sum())} pixel(s); they were filled "
        f"with {'the PCHIP interpolant' if prior is None else 'the scene low-rank completion'} (their std is NaN). "
        "Check those pixels' observed values.",
        spectral.AnyBandWarning,
        stacklevel=2,
    )


def fill_block(
    values: np.ndarray,
    missing: np.ndarray,
    wavelength_nm: np.ndarray,
    settings: RepairSettings,
    origin: tuple[int, int] = (0, 0),
    extent: tuple[int, int] | None = None,
    core: tuple[slice, slice] | None = None,
    target_nm: np.ndarray | None = None,
    responses: xr.DataArray | None = None,
    prior: LowRankGaussian | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Repair the core of one (B, H, W) block: (mean, std), each (B or len(target_nm), h, w) over the core.

    Args:
        values: (B, H, W) block in data units; ``missing``: (B, H, W) bool, True where missing.
        wavelength_nm: (B,) ascending band centres (nm).
        settings: the repair's ``RepairSettings``.
        origin: global (row, column) of the block's top-left pixel (noise and regions follow global positions).
        extent: global (rows, columns) of the whole scene; default: the block is the whole scene.
        core: (y, x) slices of the block to repair (the rest is context, e.g. a dask halo); default: all of it.
            Its start must be a region boundary (``tiling.regions``).
        target_nm: output wavelengths (nm) of a generation from band values whose SRFs are ``responses``
            (diffusion only); default: repair on the own grid, observed values restored exactly.
        prior: the scene's in-scene prior (``lowrank.LowRankGaussian``): the fill of ``method="lowrank"``, the base
            the model corrects for ``method="diffusion"`` (None: the PCHIP interpolant; see ``scene_prior``), which
            adds ``settings.correction_gain`` times its correction (with a gain of 0 the model does not run: the
            result is the completion).
        progress: show a progress bar.

    Pixels with no observed value come back NaN (mean and std). ``method="auto"`` is not a block method: the
    self-check resolves it first (``repair``, ``repair_zarr``), and a ``ValueError`` says so here.
    """
    if settings.method == "auto":
        raise ValueError("method='auto' is chosen by the self-check before any block runs (anyband_xr.selfcheck, as "
                         "repair and repair_zarr do); pass fill_block the chosen method, e.g. replace(settings, "
                         "method='diffusion').")
    b, h, w = values.shape
    core = core or (slice(0, h), slice(0, w))
    extent = extent or (h, w)
    n_out = b if target_nm is None else len(target_nm)
    empty = missing.all(axis=0)
    if empty[core].all():
        nan = np.full((n_out, core[0].stop - core[0].start, core[1].stop - core[1].start), np.nan, dtype=values.dtype)
        return nan, nan.copy()
    inside = (slice(None), *core)
    if target_nm is None and not (missing[inside] & ~empty[core]).any():  # nothing to fill: what any method gives
        return (np.where(missing[inside], np.nan, values[inside]).astype(values.dtype),
                np.where(missing[inside], np.nan, 0.0).astype(values.dtype))
    filled = np.where(missing, 0.0, values)
    method = settings.method
    if method == "diffusion" and prior is not None and target_nm is None and settings.correction_gain == 0:
        method = "lowrank"  # the scene backs none of the model's correction of its completion: the completion
    if method == "diffusion":
        model_values, model_missing = _nearest_observed(filled, missing, empty) if empty.any() else (filled, missing)
        needed = None if target_nm is not None else (missing & ~empty).any(axis=0)
        mean, std = _diffuse_block(model_values, model_missing, wavelength_nm, settings, origin, extent, core,
                                   target_nm, responses, progress, needed, prior)
    else:
        mean, std = _classical_block(filled[(slice(None), *core)], missing[(slice(None), *core)], wavelength_nm,
                                     method, prior, settings.weights)
    filled, missing, values, empty = filled[(slice(None), *core)], missing[(slice(None), *core)], values[(slice(None), *core)], empty[core]
    if target_nm is None and method == "diffusion":
        _replace_nonfinite(mean, std, filled, missing, wavelength_nm, empty, prior)
    mean[:, empty], std[:, empty] = np.nan, np.nan
    if target_nm is not None:
        return mean.astype(values.dtype), std.astype(values.dtype)
    mean = np.where(missing, mean, values).astype(values.dtype)
    std = np.where(missing, std, 0.0).astype(values.dtype)
    return mean, std


def _classical_block(
    filled: np.ndarray, missing: np.ndarray, wavelength_nm: np.ndarray, method: str,
    prior: LowRankGaussian | None = None, weights: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, zero std) of a classical method over a (B, h, w) block; pixels with no observed value stay NaN."""
    b, h, w = filled.shape
    seen = ~missing.all(axis=0).reshape(-1)
    flat = np.full((b, h * w), np.nan)
    flat[:, seen] = _classical(filled.reshape(b, -1)[:, seen], missing.reshape(b, -1)[:, seen], wavelength_nm, method,
                               prior, weights)
    return flat.reshape(b, h, w), np.zeros((b, h, w))


def _block(values, missing, y_index, x_index, wavelength_nm, settings, extent, depth_px, target_nm, responses, prior):
    """One dask block: ``values``/``missing`` carry a halo of ``depth_px`` (rows, columns) pixels where a neighbour
    exists; the index planes (no halo) give the global position of the core."""
    (_, core_h, core_w), (cy0, cx0) = y_index.shape, (int(y_index.ravel()[0]), int(x_index.ravel()[0]))
    top, left = (depth_px[0] if cy0 > 0 else 0), (depth_px[1] if cx0 > 0 else 0)
    core = (slice(top, top + core_h), slice(left, left + core_w))
    mean, std = fill_block(values, missing, wavelength_nm, settings, (cy0 - top, cx0 - left), extent, core,
                           target_nm, responses, prior)
    return np.concatenate([mean, std], axis=0)


def _repair_dask(data, missing, wavelength_nm, settings, target_nm=None, responses=None, prior=None, chosen=None):
    b = data.shape[0] if target_nm is None else len(target_nm)
    ny, nx = data.shape[1], data.shape[2]
    original = ((b,), *data.chunks[1:])
    if settings.method in ("diffusion", "auto"):
        chunks = (data.chunks[0], *(tiling.aligned_chunks(n, c, settings.tile, settings.overlap)
                                    for n, c in zip((ny, nx), data.chunks[1:])))
        depth = tuple(settings.overlap if len(c) > 1 else 0 for c in chunks[1:])
    else:
        depth, chunks = (0, 0), data.chunks
    plane = ((1,), chunks[1], chunks[2])
    y_index = dsa.broadcast_to(dsa.arange(ny).reshape(1, ny, 1), (1, ny, nx)).rechunk(plane)
    x_index = dsa.broadcast_to(dsa.arange(nx).reshape(1, 1, nx), (1, ny, nx)).rechunk(plane)
    halo = {0: 0, 1: depth[0], 2: depth[1]}
    out = dsa.map_overlap(
        _block,
        data.rechunk(chunks),
        missing.rechunk(chunks),
        y_index,
        x_index,
        depth=[halo, halo, 0, 0],
        boundary="none",
        trim=False,
        align_arrays=False,
        chunks=((2 * b,), chunks[1], chunks[2]),
        dtype=data.dtype,
        meta=np.array((), dtype=data.dtype),
        wavelength_nm=wavelength_nm,
        settings=settings if chosen is None else chosen,
        extent=(ny, nx),
        depth_px=depth,
        target_nm=target_nm,
        responses=responses,
        prior=prior,
    )
    return out[:b].rechunk(original), out[b:].rechunk(original)


def _repair_numpy(data, missing, wavelength_nm, settings, target_nm=None, responses=None, prior=None):
    return fill_block(data, missing, wavelength_nm, settings, target_nm=target_nm, responses=responses, prior=prior,
                      progress=True)


def run_blocks(
    values: xr.DataArray,
    missing: xr.DataArray,
    settings: RepairSettings,
    target_nm: np.ndarray | None = None,
    responses: xr.DataArray | None = None,
    chosen: Delayed | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std arrays for ``values`` ordered (*loop, spectral, y, x): lazy on dask, eager on numpy.

    For ``method="lowrank"`` and a ``"diffusion"`` repair the in-scene prior is fitted once on the whole scene
    (``inscene_prior``; on dask as a task of the graph), so every block uses the same one. On dask ``chosen`` is the
    delayed settings of the blocks: the method the self-check picks for ``method="auto"``, the measured share of its
    correction for ``"diffusion"`` (``RepairSettings.correction_gain``); every block waits for that one task (and
    for the one prior fit of its method)."""
    loop = list(values.dims[:-3])
    lazy = values.chunks is not None
    wavelength_nm = values["wavelength"].values
    prior = inscene_prior(values, missing, settings.method) if target_nm is None else None
    if chosen is not None:
        prior = dask.delayed(_chosen_prior)(chosen, *_inscene_sample(values, missing))
    means, stds = [], []
    for index in np.ndindex(*(values.sizes[d] for d in loop)):
        select = dict(zip(loop, index))
        block_missing = missing.isel(select).data
        block_missing = dsa.asarray(block_missing) if lazy else np.asarray(block_missing)
        if lazy:
            mean, std = _repair_dask(values.isel(select).data, block_missing, wavelength_nm, settings, target_nm,
                                     responses, prior, chosen)
        else:
            mean, std = _repair_numpy(values.isel(select).data, block_missing, wavelength_nm, settings, target_nm,
                                      responses, prior)
        means.append(mean)
        stds.append(std)
    stack = dsa.stack if lazy else np.stack
    n_out = values.shape[-3] if target_nm is None else len(target_nm)
    shape = (*values.shape[:-3], n_out, *values.shape[-2:])
    return stack(means).reshape(shape), stack(stds).reshape(shape)


#: ``long_name`` of the ``std`` over diffusion samples (``fill_block``'s second output; not calibrated).
SAMPLE_STD = "posterior standard deviation over samples"
#: Pixels the in-scene prior is fitted on at most (a regular subsample of the scene beyond that).
INSCENE_PIXELS = 20_000


def inscene_prior(
    values: xr.DataArray, missing: xr.DataArray, method: str = "lowrank"
) -> LowRankGaussian | Delayed | None:
    """The in-scene low-rank Gaussian (``anyband_xr.lowrank``) the block method ``method`` uses (``scene_prior``) of a
    scene ordered (*loop, spectral, y, x), fitted on a regular subsample of at most ``INSCENE_PIXELS`` pixels (the
    same pixels whatever the chunking); on dask a ``dask.delayed`` fit that runs with the graph; None for a method
    that uses none."""
    if method not in SCENE_PRIOR_METHODS:
        return None
    x, m = _inscene_sample(values, missing)
    if values.chunks is None:
        return scene_prior(method, x, m)
    return dask.delayed(scene_prior)(method, x, m)


#: Block methods that use the in-scene prior (``scene_prior``).
SCENE_PRIOR_METHODS = ("lowrank", "diffusion")


def scene_prior(method: str, values: np.ndarray, missing: np.ndarray) -> LowRankGaussian | None:
    """The in-scene prior of ``method`` fitted on every pixel of (B, ...) ``values``: the fill of ``"lowrank"``
    (raises ``lowrank.UnseenBandsError`` when bands are missing in (almost) every pixel: the scene cannot teach
    those); for ``"diffusion"`` the base the model corrects, where the scene teaches every band
    (``lowrank.fit_or_none``; else None: the model corrects the PCHIP interpolant); None for the other methods
    (nothing is fitted)."""
    from anyband_xr import lowrank

    if method == "lowrank":
        return lowrank.fit(values, missing, max_pixels=None)
    return lowrank.fit_or_none(values, missing) if method == "diffusion" else None


def _inscene_sample(values: xr.DataArray, missing: xr.DataArray) -> tuple:
    """(values, missing) (B, ...) of the regular subsample of at most ``INSCENE_PIXELS`` pixels the in-scene prior
    is fitted on (lazy on dask)."""
    spectral_axis = values.ndim - 3
    pixels = int(np.prod(values.shape)) // values.shape[spectral_axis]
    stride = max(1, int(np.ceil(np.sqrt(pixels / INSCENE_PIXELS))))
    sample = (..., slice(None, None, stride), slice(None, None, stride))
    return tuple(np.moveaxis(a.data[sample], spectral_axis, 0) for a in (values, missing))


def _chosen_prior(chosen: RepairSettings, values: np.ndarray, missing: np.ndarray) -> LowRankGaussian | None:
    """The in-scene prior of the method the self-check chose (``scene_prior``)."""
    return scene_prior(chosen.method, values, missing)
