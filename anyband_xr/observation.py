"""The observation contract of a repair: which values are missing, which are usable, where the pixels are.

No torch here: the classical repairs, the block engine and the Zarr job read an observation through these functions.
A mask is boolean, True where a value is missing; NaN, +-inf and the data's declared fill value count as missing
too. A DataArray mask is aligned to the data **by label** (wavelength and spatial coordinates, in any order, µm or
nm); a numpy mask is taken in the data's own order. Nothing is computed on dask arrays.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr

from anyband_xr import spectral

#: Fill values conventional in remote-sensing products; an observed value equal to one is missing, with a warning.
CONVENTIONAL_FILL_VALUES = (-9999.0, -32768.0)
#: Reflectance values outside this range are not physical (bright specular surfaces reach ~1.6; margin for noise).
PLAUSIBLE_REFLECTANCE = (-0.5, 5.0)
_FILL_ATTRS = ("nodata", "_FillValue", "missing_value", "fill_value")


def looks_like_reflectance(da: xr.DataArray) -> bool:
    """True when ``attrs['units']`` says reflectance (the ``range`` operator then keeps results within [0, 1])."""
    return "reflectance" in str(da.attrs.get("units", "")).lower()


def fill_value(da: xr.DataArray) -> float | None:
    """The fill value the data declares (``nodata``, ``_FillValue``, ``missing_value`` in attrs or encoding;
    rioxarray's ``rio.nodata``), or None."""
    for source in (da.attrs, da.encoding):
        for key in _FILL_ATTRS:
            value = source.get(key)
            if value is not None and np.size(value) == 1 and np.isfinite(float(np.asarray(value).ravel()[0])):
                return float(np.asarray(value).ravel()[0])
    return None


def _float_labels(index: np.ndarray) -> bool:
    return np.issubdtype(np.asarray(index).dtype, np.number)


def _label_order(mine: np.ndarray, theirs: np.ndarray, dim: str) -> np.ndarray | None:
    """Positions in ``theirs`` of every label of ``mine`` (None when they are equal), or a ValueError naming the
    labels that do not match. Numeric labels match within 1e-6 relative (µm converted to nm gives float noise)."""
    if len(mine) == len(theirs) and np.array_equal(mine, theirs):
        return None
    if len(mine) != len(theirs):
        raise ValueError(f"the mask has {len(theirs)} entries along {dim!r}, the data has {len(mine)}.")
    if _float_labels(mine) and _float_labels(theirs):
        mine_f, theirs_f = np.asarray(mine, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
        order = np.empty(len(mine_f), dtype=np.intp)
        order[np.argsort(mine_f, kind="stable")] = np.argsort(theirs_f, kind="stable")  # k-th smallest to k-th
        close = np.isclose(theirs_f[order], mine_f, rtol=1e-6, atol=1e-9)
    else:
        lookup = {label: i for i, label in enumerate(theirs.tolist())}
        order = np.array([lookup.get(label, -1) for label in mine.tolist()])
        close = order >= 0
    if not close.all() or len(np.unique(order)) != len(order):
        unmatched = np.asarray(mine)[~close][:5].tolist()
        raise ValueError(
            f"the mask's {dim!r} labels do not match the data's (e.g. data labels {unmatched} have no partner); "
            "build the mask from the same array (anyband_xr.masks.*(da)), or pass a numpy array in the data's order."
        )
    return order


def _labels(da: xr.DataArray, mask: xr.DataArray, dim: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(data labels, mask labels) to align ``dim`` by, or None when the mask carries none: wavelengths (in nm)
    when the mask has a wavelength coordinate on ``dim``, else the index of ``dim`` when both have one."""
    has_wavelength = spectral.WAVELENGTH in mask.coords and mask.coords[spectral.WAVELENGTH].dims == (dim,)
    if has_wavelength and dim == spectral.spectral_dim(da):
        return spectral.wavelengths(da), spectral.wavelengths(mask)
    if dim in mask.indexes and dim in da.indexes:
        return np.asarray(da.indexes[dim]), np.asarray(mask.indexes[dim])
    return None


def align_mask(da: xr.DataArray, mask: xr.DataArray | np.ndarray) -> xr.DataArray:
    """``mask`` as a boolean DataArray on ``da``'s dims and coordinates, aligned by label where both carry labels.

    A DataArray mask may cover a subset of ``da``'s dims (e.g. ``("wavelength",)`` for whole-band loss) and list
    them in any order; a numpy array must have ``da``'s shape, in ``da``'s order. Raises ``TypeError``/``ValueError``
    naming the problem.
    """
    if isinstance(mask, np.ndarray):
        if mask.shape != da.shape:
            raise ValueError(
                f"mask shape {mask.shape} does not match the data's {da.shape} {tuple(da.dims)}; pass a DataArray "
                "with named dims to broadcast (e.g. dims ('wavelength',) to drop whole bands)."
            )
        mask = xr.DataArray(mask, dims=da.dims)
    if not isinstance(mask, xr.DataArray):
        raise TypeError(f"mask must be a boolean DataArray or numpy array (True = missing), got {type(mask).__name__}.")
    if mask.dtype != bool:
        raise TypeError(
            f"mask must be boolean, True where a value is missing; got dtype {mask.dtype}. "
            "Convert explicitly, e.g. mask.astype(bool) or (mask == 0) if 0 marks missing values."
        )
    extra = set(mask.dims) - set(da.dims)
    if extra:
        raise ValueError(f"mask has dims {sorted(map(str, extra))} that the data {tuple(da.dims)} lacks.")
    for dim in mask.dims:
        if mask.sizes[dim] != da.sizes[dim]:
            raise ValueError(f"mask has {mask.sizes[dim]} entries along {dim!r}, the data has {da.sizes[dim]}.")
        labels = _labels(da, mask, str(dim))
        if labels is not None:
            order = _label_order(*labels, str(dim))
            if order is not None:
                mask = mask.isel({dim: order})
    bare = xr.DataArray(mask.data, dims=mask.dims)
    return bare.assign_coords({d: da[d] for d in bare.dims if d in da.coords})


def unusable(da: xr.DataArray) -> xr.DataArray:
    """True where a value cannot be used as an observation: NaN, +-inf, or the declared fill value (lazy on dask)."""
    bad = ~np.isfinite(da)
    fill = fill_value(da)
    return bad if fill is None else bad | (da == fill)


def missing_mask(da: xr.DataArray, mask: xr.DataArray | np.ndarray | None) -> xr.DataArray:
    """Boolean DataArray like ``da``, True where a value is missing: the mask's True values, NaN, +-inf and the
    declared fill value.

    ``mask`` (boolean, True = missing) is aligned by label (``align_mask``) and broadcast by dimension name.

    Example:
        >>> missing_mask(da.where(da > 0.01), anyband_xr.masks.band_loss(da, 0.3, seed=0))  # dims like da
    """
    bad = unusable(da)
    if mask is None:
        return bad
    return (bad | align_mask(da, mask)).transpose(*da.dims)


@dataclass(frozen=True)
class Screening:
    """What ``screen`` found in the observed values of an in-memory scene (counts of values or pixels)."""

    nonfinite: int = 0
    fill: int = 0
    implausible: int = 0
    empty_pixels: int = 0

    def attrs(self) -> dict[str, int]:
        """Provenance attributes (only the non-zero counts)."""
        names = {"nonfinite": "anyband_nonfinite_values", "fill": "anyband_fill_values",
                 "implausible": "anyband_implausible_values", "empty_pixels": "anyband_empty_pixels"}
        return {names[k]: v for k, v in vars(self).items() if v}


def screen(da: xr.DataArray, missing: xr.DataArray, dim: str) -> tuple[xr.DataArray, Screening]:
    """Screen the observed values of ``da`` before a repair: (missing, what was found).

    Non-finite values and declared fill values are already missing (``missing_mask``) and are counted here;
    observed values equal to a conventional fill value (-9999, -32768) and, for reflectance, values outside
    ``PLAUSIBLE_REFLECTANCE`` are made missing with an ``AnyBandWarning`` naming the count. Pixels without any
    observed value are counted (the repair leaves them missing). On dask arrays nothing is computed: only the
    conventional fill values are made missing, lazily, and the counts are zero.
    """
    implausible = xr.zeros_like(missing)
    for value in CONVENTIONAL_FILL_VALUES:
        implausible = implausible | (da == value)
    if looks_like_reflectance(da):
        low, high = PLAUSIBLE_REFLECTANCE
        implausible = implausible | (da < low) | (da > high)
    implausible = implausible & ~missing
    screened = missing | implausible
    if da.chunks is not None:
        return screened, Screening()
    fill = fill_value(da)
    empty = screened.all(dim)
    found = Screening(
        nonfinite=int((~np.isfinite(da)).sum()),
        fill=0 if fill is None else int((da == fill).sum()),
        implausible=int(implausible.sum()),
        empty_pixels=int(empty.sum()),
    )
    if found.empty_pixels == empty.size:
        raise ValueError(
            "every pixel has every band missing: nothing is observed, so nothing can be inferred. Check the mask "
            "(True = missing; pass ~mask if yours marks observed values) and the data's NaN/fill values."
        )
    if found.implausible:
        warnings.warn(
            f"{found.implausible} observed value(s) are fill values (-9999, -32768) or implausible for "
            f"{da.attrs.get('units', 'the data')!r}; they are treated as missing. Declare the fill value "
            "(da.attrs['nodata'] = ...) or mask them to silence this.",
            spectral.AnyBandWarning,
            stacklevel=3,
        )
    return screened, found


def spatial_layout(data: xr.DataArray, dim: str) -> tuple[list[str], str, str]:
    """(loop dims, y dim, x dim) of a spectral DataArray: ``y``/``x`` or its last two non-spectral dims.

    Example:
        >>> spatial_layout(stack.transpose("time", "wavelength", "y", "x"), "wavelength")  # (["time"], "y", "x")
    """
    others = [d for d in data.dims if d != dim]
    if len(others) < 2:
        raise spectral.SpectralAxisError(
            f"repair needs two spatial dims besides {dim!r}; got dims {tuple(map(str, data.dims))}. "
            "For a single spectrum use da.expand_dims(y=1, x=1)."
        )
    y, x = ("y", "x") if {"y", "x"} <= set(others) else tuple(others[-2:])
    return [d for d in others if d not in (y, x)], y, x
