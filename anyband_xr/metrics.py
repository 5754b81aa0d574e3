"""Repair scores on DataArrays (numpy or dask): PSNR, SSIM, SAM, RMSE, ERGAS and index agreement.

``mask`` is boolean, True where a value was missing (and repaired), broadcastable to ``truth``; when given,
PSNR, RMSE, ERGAS and SSIM (its per-value map) use only the masked values, SAM only pixels with a missing value.
Values without a finite reference (NaN in ``truth``) are not scored; a NaN or infinite prediction where the
reference is finite makes the score NaN (never skipped, so a broken repair cannot read as a perfect one).

Example:
    >>> truth = anyband_xr.datasets.jasper_ridge()
    >>> scores(truth * 1.01, truth)  # {"psnr": ..., "ssim": ..., "sam": ..., ...}
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter

from anyband_xr import spectral

#: SSIM constants of Wang et al. (2004).
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
SPATIAL_DIMS = ("y", "x")
NAN = float("nan")


def _pair(
    pred: xr.DataArray, truth: xr.DataArray, mask: xr.DataArray | None
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray | None]:
    """``pred`` on ``truth``'s dims and coords, and ``mask`` broadcast to ``truth`` (checked)."""
    for name, obj in (("pred", pred), ("truth", truth)):
        if not isinstance(obj, xr.DataArray):
            raise TypeError(f"{name} must be an xarray.DataArray, got {type(obj).__name__}.")
    if set(pred.dims) != set(truth.dims):
        raise ValueError(f"pred has dims {pred.dims} but truth has {truth.dims}; they must have the same dims.")
    pred = pred.transpose(*truth.dims)
    if pred.shape != truth.shape:
        raise ValueError(f"pred has shape {dict(pred.sizes)} but truth has {dict(truth.sizes)}.")
    pred = xr.DataArray(pred.data, dims=truth.dims, coords=truth.coords)
    if mask is None:
        return pred, truth, None
    if not isinstance(mask, xr.DataArray):
        raise TypeError(f"mask must be an xarray.DataArray (True = missing), got {type(mask).__name__}.")
    extra = set(mask.dims) - set(truth.dims)
    if extra or mask.dtype != bool:
        raise ValueError(
            f"mask must be boolean with dims among {truth.dims}; got dtype {mask.dtype} and dims {mask.dims}."
        )
    for dim in mask.dims:
        if mask.sizes[dim] != truth.sizes[dim]:
            raise ValueError(f"mask has {mask.sizes[dim]} entries along {dim!r}, truth {truth.sizes[dim]}.")
    mask = xr.DataArray(mask.data, dims=mask.dims).broadcast_like(truth).transpose(*truth.dims)
    return pred, truth, xr.DataArray(mask.data, dims=truth.dims, coords=truth.coords)


def _count_nonfinite(pred: xr.DataArray, truth: xr.DataArray, selection: xr.DataArray | None) -> int:
    """Values to be scored (finite in ``truth``, inside ``selection`` when given) that ``pred`` has NaN or ±inf."""
    bad = ~np.isfinite(pred) & np.isfinite(truth)
    return int((bad if selection is None else bad & selection).sum())


def _spatial_dims(truth: xr.DataArray) -> list[str]:
    dims = [d for d in SPATIAL_DIMS if d in truth.dims]
    if len(dims) != 2:
        raise ValueError(f"SSIM needs spatial dims 'y' and 'x'; truth has dims {truth.dims}.")
    return dims


def _pixel_mask(mask: xr.DataArray | None, dim: str) -> xr.DataArray | None:
    """Pixels with any missing value along the spectral dim."""
    return None if mask is None else mask.any(dim)


def _selected(values: xr.DataArray, mask: xr.DataArray | None) -> xr.DataArray:
    return values if mask is None else values.where(mask)


def _data_range(truth: xr.DataArray, mask: xr.DataArray | None) -> float:
    truth = _selected(truth, mask)
    return float(truth.max() - truth.min())


def rmse(pred: xr.DataArray, truth: xr.DataArray, mask: xr.DataArray | None = None) -> float:
    """Root mean square error over all values (or the masked ones), in the data's units.

    Example:
        >>> rmse(repaired, truth, mask=mask)   # e.g. 0.01 (reflectance)
    """
    pred, truth, mask = _pair(pred, truth, mask)
    if _count_nonfinite(pred, truth, mask):
        return NAN
    return float(np.sqrt(_selected((pred - truth) ** 2, mask).mean()))


def psnr(
    pred: xr.DataArray, truth: xr.DataArray, mask: xr.DataArray | None = None, data_range: float | None = None
) -> float:
    """Peak signal-to-noise ratio in dB; ``data_range`` defaults to truth max − min over the evaluated values.

    Example:
        >>> psnr(truth, truth)  # inf
    """
    pred, truth, mask = _pair(pred, truth, mask)
    if _count_nonfinite(pred, truth, mask):
        return NAN
    peak = _data_range(truth, mask) if data_range is None else float(data_range)
    mse = float(_selected((pred - truth) ** 2, mask).mean())
    return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))


def sam(pred: xr.DataArray, truth: xr.DataArray, mask: xr.DataArray | None = None) -> float:
    """Mean spectral angle (radians) over pixels (or pixels with a missing value); scale invariant.

    Example:
        >>> sam(truth * 2.0, truth)   # 0.0: a brightness factor does not change the angle
    """
    pred, truth, mask = _pair(pred, truth, mask)
    dim = spectral.spectral_dim(truth)
    if _count_nonfinite(pred, truth, _pixel_mask(mask, dim)):
        return NAN
    dot = (pred * truth).sum(dim)
    norms = np.sqrt((pred**2).sum(dim) * (truth**2).sum(dim))
    angle = np.arccos((dot / norms).clip(-1.0, 1.0))
    return float(_selected(angle, _pixel_mask(mask, dim)).mean())


def ergas(
    pred: xr.DataArray, truth: xr.DataArray, mask: xr.DataArray | None = None, ratio: float = 1.0
) -> float:
    """ERGAS = 100 · ratio · sqrt(mean over bands of (RMSE_b / mean_b)²); ``ratio`` the resolution ratio h/l.

    With a mask, each band's RMSE and mean use its masked values; bands without any are left out. Unitless
    (lower is better).

    Example:
        >>> ergas(repaired, truth, mask=mask)
    """
    pred, truth, mask = _pair(pred, truth, mask)
    if _count_nonfinite(pred, truth, mask):
        return NAN
    dim = spectral.spectral_dim(truth)
    others = [d for d in truth.dims if d != dim]
    mse = _selected((pred - truth) ** 2, mask).mean(others)
    mean = _selected(truth, mask).mean(others)
    return float(100 * ratio * np.sqrt((mse / mean**2).mean()))


def _gaussian(values: xr.DataArray, dims: list[str]) -> xr.DataArray:
    """Gaussian filter (σ = 1.5 px) over the spatial ``dims`` of each plane; lazy on dask."""

    def smooth(array: np.ndarray) -> np.ndarray:
        sigma = [0.0] * (array.ndim - 2) + [SSIM_SIGMA, SSIM_SIGMA]
        return gaussian_filter(array, sigma=sigma, truncate=SSIM_TRUNCATE)

    if values.chunks is not None:
        values = values.chunk({d: -1 for d in dims})
    return xr.apply_ufunc(smooth, values, input_core_dims=[dims], output_core_dims=[dims], dask="parallelized")


def ssim(
    pred: xr.DataArray, truth: xr.DataArray, mask: xr.DataArray | None = None, data_range: float | None = None
) -> float:
    """Structural similarity (Wang et al. 2004; Gaussian window σ = 1.5, K1 = 0.01, K2 = 0.03) per band over the
    spatial dims y/x; the per-value SSIM map is averaged over all values (with a mask: over the masked values, the
    window still seeing their observed neighbours); ``data_range`` defaults to truth max − min over all values (data units). Unitless, 1 for identical data.

    Example:
        >>> ssim(truth, truth)   # 1.0
    """
    pred, truth, mask = _pair(pred, truth, mask)
    dims = _spatial_dims(truth)
    if _count_nonfinite(pred, truth, mask):
        return NAN
    peak = _data_range(truth, None) if data_range is None else float(data_range)
    c1, c2 = (SSIM_K1 * peak) ** 2, (SSIM_K2 * peak) ** 2
    pred, truth = pred.astype(np.float64), truth.astype(np.float64)
    mu_p, mu_t = _gaussian(pred, dims), _gaussian(truth, dims)
    var_p = _gaussian(pred * pred, dims) - mu_p**2
    var_t = _gaussian(truth * truth, dims) - mu_t**2
    cov = _gaussian(pred * truth, dims) - mu_p * mu_t
    index_map = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return float(_selected(index_map, mask).mean())


def _index_pair(
    pred: xr.DataArray, truth: xr.DataArray, mask: xr.DataArray | None
) -> tuple[xr.DataArray, xr.DataArray]:
    """Two index maps reduced to the pixels evaluated (a spectral mask counts a pixel with any missing value)."""
    if mask is not None:
        try:
            mask = mask.any(spectral.spectral_dim(mask))
        except spectral.SpectralAxisError:
            pass
    pred, truth, mask = _pair(pred, truth, mask)
    return _selected(pred, mask), _selected(truth, mask)


def index_cc(pred: xr.DataArray, truth: xr.DataArray, mask: xr.DataArray | None = None) -> float:
    """Pearson correlation between two index maps (e.g. NDVI of repaired and reference data); unitless.

    Example:
        >>> index_cc(repaired.anyband.index("NDVI"), truth.anyband.index("NDVI"))
    """
    pred, truth = _index_pair(pred, truth, mask)
    if _count_nonfinite(pred, truth, None):
        return NAN
    return float(xr.corr(pred, truth))


def index_rmse(pred: xr.DataArray, truth: xr.DataArray, mask: xr.DataArray | None = None) -> float:
    """RMSE between two index maps (index units).

    Example:
        >>> index_rmse(repaired.anyband.index("NDWI"), truth.anyband.index("NDWI"), mask=mask)
    """
    pred, truth = _index_pair(pred, truth, mask)
    if _count_nonfinite(pred, truth, None):
        return NAN
    return float(np.sqrt(((pred - truth) ** 2).mean()))


def scores(pred: xr.DataArray, truth: xr.DataArray, mask: xr.DataArray | None = None) -> dict[str, float | int]:
    """All scores over the whole data, plus ``<name>_missing`` over the masked values when ``mask`` is given.

    Keys: ``psnr`` (dB), ``ssim``, ``sam`` (radians), ``rmse`` (data units), ``ergas``; ``ndvi_cc``/``ndvi_rmse``
    compare the NDVI maps (``anyband_xr.indices.index``) when the data covers red and NIR, otherwise they are left
    out; ``n_nonfinite`` (int) counts the values predicted NaN or ±inf where ``truth`` has a finite one
    (``n_nonfinite_missing`` among the masked values): when it is not 0 the scores are NaN, with an
    ``AnyBandWarning``.

    Example:
        >>> scores(repaired, truth, mask=mask.broadcast_like(truth))["psnr_missing"]
    """
    from anyband_xr.indices import index

    pred, truth, mask = _pair(pred, truth, mask)
    try:
        ndvi_pred, ndvi_truth = index(pred, "NDVI"), index(truth, "NDVI")
    except spectral.SpectralAxisError:
        ndvi_pred = ndvi_truth = None
    out: dict[str, float | int] = {}
    for suffix, selection in [("", None)] + ([("_missing", mask)] if mask is not None else []):
        out[f"n_nonfinite{suffix}"] = _count_nonfinite(pred, truth, selection)
        out[f"psnr{suffix}"] = psnr(pred, truth, selection)
        out[f"ssim{suffix}"] = ssim(pred, truth, selection)
        out[f"sam{suffix}"] = sam(pred, truth, selection)
        out[f"rmse{suffix}"] = rmse(pred, truth, selection)
        out[f"ergas{suffix}"] = ergas(pred, truth, selection)
        if ndvi_pred is not None:
            out[f"ndvi_cc{suffix}"] = index_cc(ndvi_pred, ndvi_truth, selection)
            out[f"ndvi_rmse{suffix}"] = index_rmse(ndvi_pred, ndvi_truth, selection)
    if out["n_nonfinite"]:
        warnings.warn(
            f"{out['n_nonfinite']} predicted values are NaN or infinite where the reference has a value: the scores "
            "are NaN. Find them with np.isfinite(pred) and repair or drop them before scoring.",
            spectral.AnyBandWarning,
            stacklevel=2,
        )
    return out
