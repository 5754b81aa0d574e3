"""User-facing spectral repair on DataArrays: by default the best of the diffusion model (AnyBand-Diff with PGS) and
the classical baselines on the scene's own observed values (``method="auto"``, ``anyband_xr.selfcheck``), or one of
them by name.

Masks are boolean, True where a value is missing; NaN in the data counts as missing. Observed values come back
unchanged bit for bit. On dask arrays a lazy graph of overlapping spatial blocks is built (one chunk along the
spectral axis); on numpy arrays the repair runs eagerly, tile by tile, with a progress bar.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import dask
import dask.array as dsa
import numpy as np
import xarray as xr
from dask.delayed import Delayed

from dataclasses import replace

from anyband_xr import observation, selfcheck, spectral, srf
from anyband_xr.engine import SAMPLE_STD, run_blocks
from anyband_xr.settings import METHODS, RepairSettings

__all__ = ["METHODS", "RepairSettings", "prepare", "repair"]


def prepare(da: xr.DataArray, mask: xr.DataArray | np.ndarray | None) -> tuple[xr.DataArray, xr.DataArray, tuple, dict]:
    """(values, missing, dim order, screening attrs) of a repair: ``da`` standardised (nm, sorted) and ordered
    (*loop, spectral, y, x), with its missing values aligned by label and screened (``anyband_xr.observation``).

    A numpy ``mask`` is in ``da``'s own order, before any sorting.
    """
    if mask is not None:
        mask = observation.align_mask(da, mask)
    data = spectral.standardize(da)
    dim = spectral.spectral_dim(data)
    missing = observation.missing_mask(data, mask)
    missing, found = observation.screen(data, missing, dim)
    loop, y, x = observation.spatial_layout(data, dim)
    order = (*loop, dim, y, x)
    return data.transpose(*order), missing.transpose(*order), tuple(data.dims), found.attrs()


def _repaired_wavelengths(values: xr.DataArray, missing: xr.DataArray) -> np.ndarray:
    """Wavelengths (nm) where the model fills something: those with a missing value (all of them on dask)."""
    nm = values["wavelength"].values
    if missing.chunks is not None:
        return nm
    dim = values.dims[-3]
    return nm[missing.any([d for d in missing.dims if d != dim]).values]


def repair(
    da: xr.DataArray,
    mask: xr.DataArray | np.ndarray | None = None,
    guidance: float = 1.0,
    steps: int | None = None,
    samples: int = 1,
    seed: int | None = None,
    method: str = "auto",
    operators: list | tuple | None = None,
    device: str | None = None,
    tile: int = 256,
    overlap: int = 32,
    grad: str = "x0",
    eta: float = 0.0,
    return_std: bool = False,
    weights: str | None = None,
    interval: float | None = None,
) -> xr.DataArray | xr.Dataset:
    """Fill missing spectral values of ``da``.

    Args:
        da: spectral DataArray (``wavelength`` dim, or ``band`` with a ``wavelength`` coordinate; nm) with two
            spatial dims (``y``, ``x`` or the last two non-spectral dims); other dims (e.g. ``time``) are looped
            over. Values in any units; when ``attrs["units"]`` says reflectance, the ``range`` operator keeps the
            result within [0, 1] (otherwise only non-negative).
        mask: boolean, True where a value is missing, broadcastable to ``da`` (e.g. dims ``("wavelength",)`` for
            whole-band loss). NaN in ``da`` counts as missing too.
        guidance: PGS scale ``s`` (0 disables physics guidance; 1 is one full consistency step at the noisiest
            level, see ``docs/method.md``).
        steps: number of DDIM steps; None: the number validated for the weights (``sampling_steps``).
        samples: number of posterior samples; the result is their mean (and std with ``return_std``).
        seed: random seed (default 0); the result is deterministic for a seed, whatever the chunking.
        method: ``"auto"`` (the default): every candidate below fills observed values hidden like the mask
            hides values, on a window of at most 64 x 64 pixels where the mask misses values (the central crop of
            the first scene along the loop dims, unless the mask misses values mostly elsewhere: a corner patch, a
            later time step; ``anyband_xr.selfcheck.choose_window``), and the one with the lowest held-out RMSE
            fills the scene, under whole-band loss only when it beats the model in most hidden bands
            (``SelfCheck.best``; a fixed cost: a 256 x 256 scene takes 1.05x the time of a plain diffusion repair
            under band loss);
            what it chose, where, and every score are in the attrs (``anyband_method`` is ``"auto:<chosen>"``,
            ``anyband_selfcheck_*``) of an in-memory result. When nothing needs repair (no value is missing in a
            pixel with an observed band) no check runs and the scene comes back as it is (``"auto:none"``); when
            the mask leaves no observed value to hide like it, the diffusion model repairs the scene, with a
            warning (``"auto:diffusion"``; ``anyband_selfcheck_status`` says why). On dask the check is one task
            of the graph (the choice is made when it computes, once for all blocks; ``anyband_method`` stays
            ``"auto"``); a Zarr job (``anyband_xr.scale.repair_zarr``) runs it once before its tiles. Or one
            method by name, which skips the check: ``"diffusion"`` (AnyBand-Diff; the sampling and guidance
            keywords below apply to it; where values are missing per pixel and the scene observes every band, the
            model corrects the scene's own low-rank completion, fitted once like ``"lowrank"``'s, instead of the
            PCHIP interpolant: ``anyband_xr.engine.scene_prior``, and adds only the share of its correction that
            the scene's observed values back, measured once on the self-check's window with values hidden like
            the mask: ``anyband_xr.selfcheck.measure_correction_gain``, ``anyband_correction_gain`` in the attrs
            of an in-memory result; with a share of 0 the result is the completion and the model does not run;
            on dask every block waits for that one measurement), the baselines ``"linear"``, ``"pchip"``,
            ``"gaussian"`` (ridge conditional mean fitted on real scenes), ``"lowrank"`` (the scene's own low-rank
            Gaussian: best where values are missing per pixel).
        operators: physical operators for PGS: names among ``"sensor"`` (band consistency; through the sensor's
            library SRFs when ``sensor_responses`` finds them, e.g. after ``anyband_xr.stac.load``), ``"ndvi"``,
            ``"ndwi"``, ``"range"``, ``"rtm"``, and/or ``nn.Module`` instances mapping a canonical spectrum
            (N, 211, H, W) to a loss map.
        device: torch device (default: CUDA when available, else CPU).
        tile: side of the spatial tiles the model sees (pixels).
        overlap: overlap of neighbouring tiles (pixels); tiles are blended with a raised-cosine window.
        grad: ``"x0"`` (cheap guidance through the Tweedie estimate) or ``"full"`` (through the network).
        eta: DDIM noise (0: deterministic DDIM, 1: DDPM-like).
        return_std: return a Dataset with the repaired values and a per-value ``std`` (data units): calibrated, the
            split-conformal half-width of a 68.27% interval (``selfcheck.ONE_SIGMA``, see ``interval``), when a
            self-check runs (``method="auto"``, the default, ``interval=``, or a classical method); with
            ``method="diffusion"`` alone, the spread over the diffusion samples (0 with one sample; not calibrated),
            times the share of its correction kept where it corrects the scene's completion (0 where none is).
        weights: stem or ``.safetensors`` path of MCD weights (e.g. fine-tuned with ``anyband train``); default:
            the shipped model. ``"gaussian"`` conditions the Gaussian spectral prior their training run fitted
            (``<stem>.gaussian_prior.safetensors``, as the model's prior hint does), else the shipped prior.
        interval: nominal coverage in (0, 1) of an interval around every filled value, e.g. 0.9: the result is a
            Dataset with ``lower`` and ``upper`` too, from split-conformal quantiles of the self-check's held-out
            errors per class of gap width and distance to the nearest observed band, scaled per band
            (``anyband_xr.selfcheck.SelfCheck.halfwidth``). On dask the check is one task of the graph and the
            bounds are computed block by block: nothing computes until asked, as for the repair. Where the mask
            leaves nothing to hide like it, the half-widths of filled values are inf (with a warning); values that
            stay missing (pixels without any observed band) get NaN bounds.

    Returns:
        A DataArray like ``da`` (dims, coords, CRS, attrs plus provenance), or a Dataset with ``std`` too.

    Example:
        >>> import anyband_xr.datasets, anyband_xr.masks
        >>> da = anyband_xr.datasets.jasper_ridge()
        >>> mask = anyband_xr.masks.band_loss(da, 0.3, seed=0)          # dims (wavelength,)
        >>> repaired = da.where(~mask).anyband.repair(mask)     # method="auto": the self-check picks the method
        >>> repaired.attrs["anyband_method"]                    # e.g. "auto:diffusion"
        >>> model = da.where(~mask).anyband.repair(mask, method="diffusion", guidance=1.0)
        >>> result = da.where(~mask).anyband.repair(mask, method="diffusion", samples=4, return_std=True)  # + std
    """
    settings = RepairSettings.build(
        method=method, guidance=guidance, steps=steps, samples=samples, seed=seed, eta=eta, operators=operators,
        grad=grad, tile=tile, overlap=overlap, device=device, weights=weights,
        reflectance=observation.looks_like_reflectance(da),
    )
    if interval is not None:
        _check_level(interval)
    values, missing, dims, found = prepare(da, mask)
    lazy = values.chunks is not None
    if settings.method in ("diffusion", "auto"):
        spectral.check_model_range(_repaired_wavelengths(values, missing))
    check, chosen = None, None
    if method == "auto" or interval is not None or (return_std and method != "diffusion"):
        check = _lazy_check(values, missing, settings) if lazy else _self_check(values, missing, settings)
    if method in ("auto", "diffusion"):
        # auto: the check's choice; diffusion: the share of its correction of a completion the scene's values back
        measured = check if check is not None else (_lazy_check if lazy else _self_check)(values, missing, settings,
                                                                                             _run_calibration)
        if lazy:
            chosen = dask.delayed(selfcheck.settings_for)(measured, settings)
        else:
            settings = selfcheck.settings_for(measured, settings)
    mean, std = run_blocks(values, missing, settings, responses=srf.sensor_responses(values), chosen=chosen)
    provenance = {**settings.provenance(), **({} if check is None or lazy else check.to_attrs())}
    if lazy:  # measured when the graph computes
        provenance.pop("anyband_correction_gain", None)
    if method == "auto" and not lazy:
        provenance["anyband_method"] = f"auto:{check.best}"
    attrs = {**values.attrs, **provenance, **found}
    repaired = values.copy(data=mean).transpose(*dims).assign_attrs(attrs)
    if not return_std and interval is None:
        return repaired
    variables = {values.name or "repaired": repaired}
    units = {"units": values.attrs.get("units", "")}
    if return_std and check is not None:
        std = _halfwidth(check, settings.method, values, missing, selfcheck.ONE_SIGMA)
        variables["std"] = values.copy(data=std).transpose(*dims).assign_attrs(
            {"long_name": selfcheck.CALIBRATED_STD, **units})
    elif return_std:
        variables["std"] = values.copy(data=std).transpose(*dims).assign_attrs(
            {"long_name": SAMPLE_STD, **units})
    if interval is not None:
        half = values.copy(data=_halfwidth(check, settings.method, values, missing, interval))
        for key, sign in (("lower", -1.0), ("upper", 1.0)):
            variables[key] = (repaired + sign * half.transpose(*dims)).assign_attrs(
                {"long_name": f"{interval:g} split-conformal interval, {key} bound", **units})
    return xr.Dataset(variables, attrs=provenance)


def _check_level(level: float) -> None:
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise ValueError(f"interval must lie in (0, 1), e.g. 0.9; got {level!r}.")


def _checked_methods(settings: RepairSettings) -> tuple[str, ...]:
    """What the self-check scores: every candidate for ``method="auto"``, else the settings' method alone (for
    ``interval`` and a calibrated ``std``)."""
    return selfcheck.CANDIDATES if settings.method == "auto" else (settings.method,)


def _window_crop(array: dsa.Array, window: Delayed) -> Delayed:
    """The delayed (B, h, w) crop of a (*loop, B, H, W) dask ``array`` at the delayed ``window`` (loop index, y
    slice, x slice; None: no crop): each block hands over its part of the window, so only the window's values
    travel to the check."""
    starts = [np.cumsum((0, *chunks[:-1])) for chunks in array.chunks]
    blocks = array.to_delayed(optimize_graph=False)
    parts = [dask.delayed(_window_part)(blocks[index], tuple(int(s[i]) for s, i in zip(starts, index)), window)
             for index in np.ndindex(blocks.shape)]
    return dask.delayed(_assemble)(parts, window, array.shape[-3], array.dtype)


def _window_part(block: np.ndarray, start: tuple[int, ...], window: tuple | None) -> tuple | None:
    """(band start, row, column within the window, values) of the part of ``window`` a block starting at
    ``start`` holds; None when it holds none."""
    if window is None:
        return None
    index, ys, xs = window
    for axis, i in enumerate(index):
        if not start[axis] <= i < start[axis] + block.shape[axis]:
            return None
    y0, x0 = max(ys.start, start[-2]), max(xs.start, start[-1])
    y1, x1 = min(ys.stop, start[-2] + block.shape[-2]), min(xs.stop, start[-1] + block.shape[-1])
    if y0 >= y1 or x0 >= x1:
        return None
    local = tuple(i - s for i, s in zip(index, start))
    part = np.asarray(block[(*local, slice(None), slice(y0 - start[-2], y1 - start[-2]),
                             slice(x0 - start[-1], x1 - start[-1]))])
    return start[-3], y0 - ys.start, x0 - xs.start, part


def _assemble(parts: list, window: tuple | None, bands: int, dtype: np.dtype) -> np.ndarray | None:
    """The (B, h, w) crop at ``window`` from the parts of the blocks (:func:`_window_part`)."""
    if window is None:
        return None
    _, ys, xs = window
    crop = np.empty((bands, ys.stop - ys.start, xs.stop - xs.start), dtype)
    for band, row, column, part in (p for p in parts if p is not None):
        crop[band:band + part.shape[0], row:row + part.shape[1], column:column + part.shape[2]] = part
    return crop


def _run_check(values: np.ndarray | None, missing: np.ndarray | None, window: tuple | None, dims: tuple[str, ...],
               wavelength_nm: np.ndarray, settings: RepairSettings) -> selfcheck.SelfCheck | selfcheck.Unchecked:
    """``selfcheck.check_or_skip`` of the crop at ``window`` with the settings' candidates, warning when values are
    repaired without a check (on dask: when the graph computes)."""
    result = selfcheck.check_or_skip(values, missing, window, wavelength_nm, settings,
                                     methods=_checked_methods(settings), seed=settings.seed, dims=dims)
    if isinstance(result, selfcheck.Unchecked):
        result.warn(settings.method, stacklevel=4)
    return result


def _run_calibration(values: np.ndarray | None, missing: np.ndarray | None, window: tuple | None,
                     dims: tuple[str, ...], wavelength_nm: np.ndarray, settings: RepairSettings) -> float:
    """The ``correction_gain`` of a ``"diffusion"`` repair, measured on the crop at ``window``
    (``selfcheck.measure_correction_gain``); 1 when nothing needs repair (no window)."""
    if window is None:
        return 1.0
    return selfcheck.measure_correction_gain(values, missing, wavelength_nm, settings, seed=settings.seed)


def _self_check(values: xr.DataArray, missing: xr.DataArray, settings: RepairSettings,
                run: Callable = _run_check) -> selfcheck.SelfCheck | selfcheck.Unchecked | float:
    """The self-check of an in-memory scene ordered (*loop, spectral, y, x), on the window
    ``selfcheck.choose_window`` places from its mask (along the loop dims too), or why none ran; with ``run``
    :func:`_run_calibration`, the model's correction gain measured there instead."""
    flags = np.asarray(missing.values, bool)
    window = selfcheck.choose_window(selfcheck.repairable_counts(flags), selfcheck.MAX_PIXELS)
    crop = None if window is None else (*window[0], slice(None), *window[1:])
    return run(None if crop is None else values.values[crop], None if crop is None else flags[crop], window,
               tuple(map(str, values.dims[:-3] + values.dims[-2:])), values["wavelength"].values, settings)


def _lazy_check(values: xr.DataArray, missing: xr.DataArray, settings: RepairSettings,
                run: Callable = _run_check) -> Delayed:
    """The self-check of a dask-backed scene ordered (*loop, spectral, y, x) as one delayed task, on the window
    :func:`selfcheck.choose_window` places from the mask (the window the in-memory check uses, :func:`_self_check`):
    nothing is computed now. When the graph computes, the repairable missing values per pixel are counted block by
    block (a reduction of the mask), one task places the window, each block hands over its part of the window, and
    the check runs once; every block and every interval uses that one check. ``run``: as for :func:`_self_check`."""
    flags = dsa.asarray(missing.data)
    window = dask.delayed(selfcheck.choose_window)(selfcheck.repairable_counts(flags), selfcheck.MAX_PIXELS)
    return dask.delayed(run)(_window_crop(values.data, window), _window_crop(flags, window), window,
                             tuple(map(str, values.dims[:-3] + values.dims[-2:])), values["wavelength"].values,
                             settings)


def _halfwidth(check: selfcheck.SelfCheck | selfcheck.Unchecked | Delayed, method: str, values: xr.DataArray,
               missing: xr.DataArray, level: float) -> np.ndarray | dsa.Array:
    """Interval half-widths (data units, float32) like ``missing`` ordered (*loop, spectral, y, x), 0 where
    observed, of ``method`` (``"auto"``: the one the check chose); lazily, block by block along the chunks of
    ``values`` (one spectral chunk), when ``check`` is the delayed check of a dask-backed scene."""
    nm = missing["wavelength"].values
    if not isinstance(check, Delayed):
        return selfcheck.halfwidths(np.asarray(missing.values), check, method, nm, level)
    flags = dsa.asarray(missing.data).rechunk(values.data.chunks)
    return dsa.map_blocks(selfcheck.halfwidths, flags, check=check, method=method, wavelength_nm=nm, level=level,
                          dtype=np.float32, meta=np.array((), dtype=np.float32))
