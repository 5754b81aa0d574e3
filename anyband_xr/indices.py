"""Spectral indices of the Awesome Spectral Indices catalogue (spyndex) on wavelength-labelled DataArrays, lazily.

Each band letter of an index (``"N"``, ``"R"``, ``"S1"``, ...) is mapped to the data's spectral axis, in order:

1. a band whose ``common_name`` coordinate equals spyndex's (STAC-style multispectral data: ``"nir"``, ``"red"``);
2. the SRF-weighted mean of the data's bands, when a sensor of the SRF library is known (``sensor=`` or
   ``da.attrs["sensor"]``) and at least two data bands lie inside the matching SRF band's FWHM (hyperspectral data);
3. the band nearest the centre of spyndex's [min_wavelength, max_wavelength] range (nm).

Example:
    >>> da = anyband_xr.datasets.jasper_ridge().chunk({"y": 50})
    >>> ndvi = index(da, "NDVI")                 # lazy; ndvi.attrs["bands_used"] == {"N": "832.0 nm", ...}
    >>> both = index(da, ["NDVI", "NDWI"], sensor="sentinel-2a")  # (index, y, x)
"""

from __future__ import annotations

import numpy as np
import spyndex
import xarray as xr

from anyband_xr import spectral

#: A band counts for a letter when its centre lies within spyndex's range widened by this much on each side (nm).
TOLERANCE_NM = 10.0
#: Dimension of the result when several indices are asked for.
INDEX_DIM = "index"
#: An SRF band is used when at least this many data bands lie inside its FWHM (response >= 0.5 of the peak).
MIN_BANDS_IN_SRF = 2
_VALUE_ATTRS = ("units", "scale_factor", "add_offset", "valid_range", "scale_note")


def index(
    da: xr.DataArray,
    names: str | list[str],
    sensor: str | xr.DataArray | None = None,
    params: dict | None = None,
    tolerance_nm: float = TOLERANCE_NM,
) -> xr.DataArray:
    """Compute one or more spyndex indices of the spectra in ``da`` (lazy on dask).

    Args:
        da: spectral DataArray (``wavelength`` dim, or ``band`` with a ``wavelength`` coordinate; nm or µm).
        names: an index name (``"NDVI"``) or a list of names.
        sensor: SRF library name (``anyband_xr.srf.list_sensors()``) or an SRF DataArray (band, wavelength[nm])
            whose bands the letters are averaged over; default ``da.attrs["sensor"]`` when the library has it.
        params: values for constants (``{"L": 0.5}``; spyndex defaults otherwise) or for bands themselves.
        tolerance_nm: widening of spyndex's band ranges when looking for the nearest band (nm).

    Returns:
        For one name, a DataArray named after the index; for a list, a DataArray with an ``index`` dimension.
        Index values are unitless. Spatial coords, CRS and attrs kept; ``attrs["bands_used"]`` says which bands
        stood for each letter.

    Example:
        >>> ndvi = index(da.chunk({"y": 50}), "NDVI")            # lazy; nothing computed yet
        >>> savi = index(da, "SAVI", params={"L": 0.5})
        >>> both = index(da, ["NDVI", "NDWI"])                    # dims (index: 2, y, x)
    """
    data = spectral.standardize(da)
    dim = spectral.spectral_dim(data)
    wanted = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in wanted if n not in spyndex.indices]
    if unknown or not wanted:
        raise KeyError(f"unknown spectral indices {unknown} (see spyndex.indices, e.g. 'NDVI', 'NDWI', 'EVI').")
    given = dict(params or {})
    responses = _responses(data, sensor)
    bands, used, centres = {}, {}, {}
    for name in wanted:
        for key in spyndex.indices[name].bands:
            letter = key.removeprefix("lambda")
            if letter in given or letter in bands or letter not in spyndex.bands:
                continue
            bands[letter], used[letter], centres[letter] = _band(data, dim, letter, name, responses, tolerance_nm)
    values = {**bands, **_constants(wanted, given, centres), **given}
    result = spyndex.computeIndex(wanted if len(wanted) > 1 else wanted[0], params=values, coordinate=INDEX_DIM)
    kept = {k: v for k, v in data.coords.items() if dim not in v.dims and k not in result.coords}
    result = result.assign_coords(kept)
    attrs = {k: v for k, v in data.attrs.items() if k not in _VALUE_ATTRS}
    attrs["bands_used"] = used
    if len(wanted) == 1:
        attrs["long_name"] = spyndex.indices[wanted[0]].long_name
        out = result.rename(wanted[0])
    else:
        long_names = [spyndex.indices[n].long_name for n in wanted]
        out = result.assign_coords(long_name=(INDEX_DIM, long_names)).rename("spectral_index")
    out.attrs = attrs
    return out


def _responses(data: xr.DataArray, sensor: str | xr.DataArray | None) -> xr.DataArray | None:
    """The sensor's SRFs: the given DataArray, the library's ``sensor``, or the library's ``attrs["sensor"]``."""
    if isinstance(sensor, xr.DataArray):
        return sensor
    name = sensor if sensor is not None else data.attrs.get("sensor")
    if name is None:
        return None
    try:
        from anyband_xr import srf

        return srf.get(str(name))
    except (ImportError, KeyError):
        if sensor is not None:
            raise
        return None


def _band(
    data: xr.DataArray, dim: str, letter: str, name: str, responses: xr.DataArray | None, tolerance_nm: float
) -> tuple[xr.DataArray, str, float]:
    """The DataArray standing for ``letter``, a description of the bands used, and its centre (nm)."""
    nm = data["wavelength"].values
    definition = spyndex.bands[letter]
    if "common_name" in data.coords and data.coords["common_name"].dims == (dim,):
        hits = np.flatnonzero(data.coords["common_name"].values == definition.common_name)
        if hits.size:
            i = int(hits[0])
            return _select(data, dim, i), f"{definition.common_name} ({nm[i]:.1f} nm)", float(nm[i])
    if responses is not None:
        found = _srf_weights(nm, letter, responses)
        if found is not None:
            weights, label, centre = found
            inside = np.flatnonzero(weights)
            sub = data.isel({dim: inside}).drop_vars([k for k, v in data.coords.items() if dim in v.dims])
            w = xr.DataArray(weights[inside].astype(data.dtype if data.dtype.kind == "f" else np.float64), dims=dim)
            return xr.dot(sub, w, dim=dim), label, centre
    low, high = float(definition.min_wavelength), float(definition.max_wavelength)
    centre = (low + high) / 2
    i = int(np.argmin(np.abs(nm - centre)))
    if not low - tolerance_nm <= nm[i] <= high + tolerance_nm:
        raise spectral.SpectralAxisError(
            f"{name}: band {letter!r} ({definition.long_name}, {low:g}-{high:g} nm) has no band of the data within "
            f"±{tolerance_nm:g} nm; the data covers {nm.min():.1f}-{nm.max():.1f} nm ({nm.size} bands). "
            f"Pass it yourself: params={{{letter!r}: ...}}."
        )
    return _select(data, dim, i), f"{nm[i]:.1f} nm", float(nm[i])


def _select(data: xr.DataArray, dim: str, i: int) -> xr.DataArray:
    """Band ``i`` without its spectral coordinates."""
    return data.isel({dim: i}).drop_vars([k for k, v in data.coords.items() if dim in v.dims])


def _srf_weights(nm: np.ndarray, letter: str, responses: xr.DataArray) -> tuple[np.ndarray, str, float] | None:
    """Weights (K,) of the data bands for the SRF band standing for ``letter`` (its response resampled onto the
    data's wavelengths, times band spacing, summing to 1), a label and the band centroid; None when no SRF band
    fits or the data does not resolve it."""
    definition = spyndex.bands[letter]
    srf_nm = responses["wavelength"].values.astype(np.float64)
    centroids = responses["centroid"].values.astype(np.float64)
    candidates = np.arange(responses.sizes["band"])
    if "common_name" in responses.coords:
        by_name = np.flatnonzero(responses["common_name"].values == definition.common_name)
        if by_name.size:
            candidates = by_name
    inside = (centroids[candidates] >= definition.min_wavelength) & (centroids[candidates] <= definition.max_wavelength)
    if not inside.any():
        return None
    candidates = candidates[inside]
    centre = (definition.min_wavelength + definition.max_wavelength) / 2
    j = int(candidates[np.argmin(np.abs(centroids[candidates] - centre))])
    response = responses.isel(band=j).values.astype(np.float64)
    resampled = np.interp(nm, srf_nm, response / response.max(), left=0.0, right=0.0)
    if (resampled >= 0.5).sum() < MIN_BANDS_IN_SRF:
        return None
    weights = resampled * (np.gradient(nm) if nm.size > 1 else 1.0)
    sensor = responses.attrs.get("sensor", "SRF")
    band = responses["band"].values[j]
    label = f"{sensor} {band} (SRF over {np.count_nonzero(weights)} bands, {centroids[j]:.1f} nm)"
    return weights / weights.sum(), label, float(centroids[j])


def _constants(names: list[str], given: dict, centres: dict[str, float]) -> dict:
    """spyndex defaults of the indices' constants; ``lambdaX`` is the centre (nm) of the band used for ``X``."""
    values = {}
    for name in names:
        for key in spyndex.indices[name].bands:
            if key in given or key in spyndex.bands:
                continue
            if key.startswith("lambda") and key[len("lambda"):] in centres:
                values[key] = centres[key[len("lambda"):]]
            elif key in spyndex.constants and spyndex.constants[key].default is not None:
                values[key] = spyndex.constants[key].default
            else:
                raise ValueError(f"{name} needs {key!r}, which has no default: pass params={{{key!r}: ...}}.")
    return values
