"""Sensor simulation: integrate spectra against a sensor's SRFs on the data's own wavelength coordinate (paper A.2)."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from scipy.interpolate import CubicSpline

from anyband_xr import spectral, srf

#: SRF responses below this fraction of the peak do not count as a band's support (nm extent checks).
SUPPORT_THRESHOLD = 0.01
#: A spacing between neighbouring data wavelengths wider than this many median spacings is a gap (removed bands).
GAP_FACTOR = 3.0
#: A band whose response lies inside such gaps by more than this fraction of its integral is not covered.
MAX_GAP_FRACTION = 0.1


def resampling_matrix(data_nm: np.ndarray, srf_nm: np.ndarray) -> np.ndarray:
    """Matrix ``S`` (len(srf_nm), len(data_nm)) such that ``S @ x`` is the cubic spline of ``x`` at ``srf_nm``.

    The spline is linear in the data values, so applying it to the identity gives the operator; points outside
    the data's range get zero rows (callers only use bands inside the coverage). Wavelengths in nm.

    Example:
        >>> resampling_matrix(np.array([400.0, 500.0, 600.0]), np.array([450.0])).shape   # (1, 3)
    """
    data_nm = np.asarray(data_nm, dtype=np.float64)
    srf_nm = np.asarray(srf_nm, dtype=np.float64)
    if data_nm.size < 2:
        raise spectral.SpectralAxisError("sensor simulation needs at least two wavelengths in the data.")
    matrix = CubicSpline(data_nm, np.eye(data_nm.size), axis=0)(srf_nm)
    matrix[(srf_nm < data_nm[0]) | (srf_nm > data_nm[-1])] = 0.0
    return matrix


def band_weights(data_nm: np.ndarray, responses: xr.DataArray) -> np.ndarray:
    """Weights (band, data wavelength) so that ``weights @ spectrum`` is each band's SRF-weighted mean.

    ``responses`` is an SRF DataArray (band, wavelength in nm). The spectrum is cubic-spline resampled onto the
    SRF's wavelengths and integrated (trapezoid rule) against the response, normalised by the response integral,
    so every row sums to 1 and a band value keeps the data's units.

    Example:
        >>> band_weights(da["wavelength"].values, anyband_xr.srf.get("sentinel-2a")).shape   # (13, 198)
    """
    srf_nm = responses["wavelength"].values.astype(np.float64)
    step = np.gradient(srf_nm)
    weighted = responses.values * step
    integral = weighted.sum(axis=1, keepdims=True)
    return (weighted / integral) @ resampling_matrix(data_nm, srf_nm)


def covered_bands(data_nm: np.ndarray, responses: xr.DataArray) -> np.ndarray:
    """Boolean (band,) mask of SRF bands the data can simulate.

    A band is covered when its support lies inside the data's wavelength range and at most ``MAX_GAP_FRACTION``
    of its response falls into gaps of the data (e.g. removed water-vapour bands), where the spline would only
    bridge the gap.
    """
    data_nm = np.asarray(data_nm)
    srf_nm = responses["wavelength"].values
    spacing = np.diff(data_nm)
    tolerance = float(np.median(spacing)) / 2 if data_nm.size > 1 else 0.0
    wide = np.flatnonzero(spacing > GAP_FACTOR * 2 * tolerance) if data_nm.size > 2 else np.array([], dtype=int)
    in_gap = np.zeros(srf_nm.size, dtype=bool)
    for i in wide:
        in_gap |= (srf_nm > data_nm[i]) & (srf_nm < data_nm[i + 1])
    covered = []
    for response in responses.values:
        support = srf_nm[response >= SUPPORT_THRESHOLD * response.max()]
        inside = support.min() >= data_nm[0] - tolerance and support.max() <= data_nm[-1] + tolerance
        covered.append(inside and response[in_gap].sum() <= MAX_GAP_FRACTION * response.sum())
    return np.asarray(covered, dtype=bool)


def _responses(sensor: str | xr.DataArray) -> xr.DataArray:
    """The SRFs (band, wavelength[nm]) of ``sensor``: a library name, or an SRF DataArray checked for use."""
    if isinstance(sensor, str):
        return srf.get(sensor)
    if not isinstance(sensor, xr.DataArray):
        raise TypeError(
            f"sensor must be a sensor name (str, one of anyband_xr.srf.list_sensors(), e.g. 'sentinel-2a') or an SRF "
            f"DataArray (band, wavelength[nm]) such as anyband_xr.srf.get(...) or anyband_xr.srf.gaussian(...); got "
            f"{type(sensor).__name__}."
        )
    if sensor.dims != ("band", "wavelength"):
        raise ValueError(f"an SRF DataArray must have dims ('band', 'wavelength'), got {sensor.dims}.")
    absent = [name for name in ("centroid", "fwhm") if name not in sensor.coords]
    if absent:
        raise ValueError(
            f"the SRF DataArray lacks the per-band coordinate(s) {absent} (nm); build it with "
            "anyband_xr.srf.gaussian(centres_nm, fwhm_nm) or copy them from anyband_xr.srf.band_centroid/band_fwhm."
        )
    nm = sensor["wavelength"].values
    if nm.size < 2 or not (np.diff(nm) > 0).all() or nm[0] < 30.0:
        raise ValueError(
            f"the SRF DataArray's wavelengths must ascend in nm; got {nm.size} value(s)"
            f"{f' from {nm[0]:g} to {nm[-1]:g}' if nm.size else ''}. Sort them (srf.sortby('wavelength')) and give nm "
            "(µm × 1000)."
        )
    response = sensor.values
    bad = ~np.isfinite(response).all(axis=1) | (response < 0).any(axis=1) | ~(response > 0).any(axis=1)
    if bad.any():
        raise ValueError(
            f"SRF band(s) {[str(b) for b in sensor['band'].values[bad]]} have NaN, negative or no positive "
            "responses; each band needs finite responses >= 0 with a positive peak."
        )
    return sensor


def simulate(da: xr.DataArray, sensor: str | xr.DataArray, strict: bool = False) -> xr.DataArray:
    """Simulate what ``sensor`` would observe of the spectra in ``da``.

    Args:
        da: spectral DataArray (``wavelength`` dim, or ``band`` with a ``wavelength`` coordinate, nm or µm).
        sensor: a name from ``anyband_xr.srf.list_sensors()`` or an SRF DataArray (band, wavelength[nm],
            ascending; ``centroid`` and ``fwhm`` coordinates in nm per band) as ``anyband_xr.srf`` makes them.
        strict: raise instead of warning when some bands are not covered by the data's wavelengths.

    Returns:
        DataArray with a ``band`` dimension in place of the spectral one, carrying band names, ``common_name``,
        ``wavelength`` (band centroid, nm) and ``fwhm`` (nm); spatial coords, CRS and attrs kept. Lazy on dask.

    Example:
        >>> s2 = anyband_xr.datasets.jasper_ridge().anyband.simulate("sentinel-2a")   # (band: 13, y, x)
        >>> s2.sel(band="B04").wavelength.item()                                      # 664.6 nm (centroid)
    """
    responses = _responses(sensor)
    data = spectral.standardize(da)
    dim = spectral.spectral_dim(data)
    data_nm = data["wavelength"].values
    covered = covered_bands(data_nm, responses)
    name = responses.attrs.get("sensor", sensor if isinstance(sensor, str) else "custom")
    if not covered.all():
        missing = [str(b) for b in responses["band"].values[~covered]]
        message = (
            f"{name}: bands {missing} are not covered by the data's wavelengths "
            f"({data_nm[0]:.1f}-{data_nm[-1]:.1f} nm, without the gaps between bands)"
        )
        if strict or not covered.any():
            raise spectral.SpectralAxisError(message + "; simulate a sensor inside the data's range.")
        warnings.warn(message + "; dropped them.", spectral.AnyBandWarning, stacklevel=2)
    responses = responses.isel(band=np.flatnonzero(covered))
    band_coords = {
        "band": responses["band"].values,
        "wavelength": ("band", responses["centroid"].values, {"units": "nm", "long_name": "band centroid"}),
        "fwhm": ("band", responses["fwhm"].values, {"units": "nm"}),
    }
    if "common_name" in responses.coords:
        band_coords["common_name"] = ("band", responses["common_name"].values)
    weights = xr.DataArray(
        band_weights(data_nm, responses).astype(data.dtype if data.dtype.kind == "f" else np.float64),
        dims=("band", dim),
    )
    spectral_coords = [n for n, c in data.coords.items() if dim in c.dims]
    out = xr.dot(data.drop_vars(spectral_coords), weights, dim=dim)
    order = [d if d != dim else "band" for d in data.dims]
    out = out.transpose(*order).assign_coords(band_coords)
    out.attrs = {**data.attrs, "sensor": str(name)}
    out.name = data.name
    return out
