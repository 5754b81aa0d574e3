"""Seeded mask generators: boolean DataArrays, True where a value is missing, broadcastable to the data.

Example:
    >>> da = anyband_xr.datasets.jasper_ridge()
    >>> mask = combine(band_loss(da, 0.3, seed=0), spectral_gap(da, 1340, 1450))  # dims (wavelength,)
    >>> observed = da.where(~mask)
"""

from __future__ import annotations

import functools
import operator

import dask.array
import numpy as np
import xarray as xr

from anyband_xr import spectral

#: A wavelength counts as seen by a sensor band where its response is at least this fraction of the peak (FWHM).
HALF_MAXIMUM = 0.5


def _spectral_mask(da: xr.DataArray, values: np.ndarray, name: str) -> xr.DataArray:
    """A mask over the spectral dimension of ``da`` carrying its spectral coordinates."""
    dim = spectral.spectral_dim(da)
    coords = {k: v for k, v in da.coords.items() if v.dims == (dim,)}
    return xr.DataArray(np.asarray(values, dtype=bool), dims=(dim,), coords=coords, name=name)


def band_loss(da: xr.DataArray, fraction: float, seed: int | None = None) -> xr.DataArray:
    """Whole missing bands: ``round(fraction * n_bands)`` bands drawn without replacement; dims (spectral,).

    Example:
        >>> band_loss(da, 0.3, seed=0).sum()  # 59 of Jasper Ridge's 198 bands
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}.")
    n = da.sizes[spectral.spectral_dim(da)]
    values = np.zeros(n, dtype=bool)
    values[np.random.default_rng(seed).choice(n, size=round(fraction * n), replace=False)] = True
    return _spectral_mask(da, values, "band_loss")


def dropout(da: xr.DataArray, p: float, seed: int | None = None) -> xr.DataArray:
    """Each value missing with probability ``p``; the full shape of ``da``.

    On dask data the mask is a dask array with the data's chunks, each chunk drawn from its own seed derived from
    ``seed`` and the chunk's position (deterministic for a seed, independent of the data's values).

    Example:
        >>> dropout(da.chunk({"y": 50}), 0.2, seed=0)   # lazy, about 20% of the values True
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must lie in [0, 1], got {p}.")
    entropy = np.random.SeedSequence(seed).entropy
    if da.chunks is None:
        values = np.random.default_rng(entropy).random(da.shape) < p
    else:

        def block(block_id: tuple[int, ...], block_info: dict) -> np.ndarray:
            rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=block_id))
            return rng.random(block_info[None]["chunk-shape"]) < p

        values = dask.array.map_blocks(block, chunks=da.chunks, dtype=bool, meta=np.empty((0,) * da.ndim, bool))
    return xr.DataArray(values, dims=da.dims, coords=da.coords, name="dropout")


def spectral_gap(da: xr.DataArray, start_nm: float, stop_nm: float) -> xr.DataArray:
    """Bands with centre wavelength in [start_nm, stop_nm] (nm) missing; dims (spectral,).

    Example:
        >>> spectral_gap(da, 1340, 1450)   # a water-vapour-like gap
    """
    if stop_nm < start_nm:
        raise ValueError(f"stop_nm ({stop_nm}) must not be below start_nm ({start_nm}).")
    nm = spectral.wavelengths(da)
    return _spectral_mask(da, (nm >= start_nm) & (nm <= stop_nm), "spectral_gap")


def random_gap(da: xr.DataArray, width_nm: float, seed: int | None = None) -> xr.DataArray:
    """A gap ``width_nm`` wide (nm) at a uniformly drawn position inside the data's coverage; dims (spectral,).

    Example:
        >>> random_gap(da, 100.0, seed=1)
    """
    nm = spectral.wavelengths(da)
    low, high = float(nm.min()), float(nm.max())
    if not 0 < width_nm <= high - low:
        raise ValueError(f"width_nm must lie in (0, {high - low:g}] (the data covers {low:g}-{high:g} nm).")
    start = np.random.default_rng(seed).uniform(low, high - width_nm)
    return spectral_gap(da, start, start + width_nm).rename("random_gap")


def sensor_coverage(da: xr.DataArray, sensor: str | xr.DataArray) -> xr.DataArray:
    """Wavelengths a sensor does not see: outside the FWHM (response >= 0.5 of the peak) of every band of its SRF
    (``anyband_xr.srf`` library name, or an SRF DataArray (band, wavelength[nm])); dims (spectral,).

    Example:
        >>> hidden = sensor_coverage(da, "sentinel-2a")  # True between Sentinel-2's bands
    """
    if isinstance(sensor, str):
        from anyband_xr import srf

        sensor = srf.get(sensor)
    nm = spectral.wavelengths(da)
    srf_nm = sensor["wavelength"].values.astype(np.float64)
    responses = sensor.transpose("band", "wavelength").values.astype(np.float64)
    peaks = responses.max(axis=1, keepdims=True)
    seen = np.zeros(nm.size, dtype=bool)
    for response in responses / np.where(peaks > 0, peaks, 1.0):
        seen |= np.interp(nm, srf_nm, response, left=0.0, right=0.0) >= HALF_MAXIMUM
    return _spectral_mask(da, ~seen, "sensor_coverage")


def combine(*masks: xr.DataArray) -> xr.DataArray:
    """Union of masks (missing where any is), broadcast by dimension name.

    Example:
        >>> combine(band_loss(da, 0.3, seed=0), dropout(da, 0.05, seed=0))   # full shape of da
    """
    if not masks:
        raise ValueError("combine() needs at least one mask.")
    return functools.reduce(operator.or_, masks).rename("mask")
