"""Spectral response functions (SRFs) of multispectral and hyperspectral sensors.

The shipped library (``data/srf_library.csv.gz``, built by ``scripts/build_srf_library.py`` from agency files)
holds each band's response normalised to peak 1 on a 1 nm grid. ``gaussian`` and ``from_dataarray`` make
Gaussian SRFs for sensors known only by band centre and FWHM. All wavelengths are nm.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from anyband_xr import spectral

_LIBRARY = "srf_library.csv.gz"
_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
_GAUSSIAN_HALF_WIDTH = 3.0  # default grid and band support: +-3 FWHM around each centre

_ALIASES = {
    "s2a": "sentinel-2a", "s2b": "sentinel-2b", "s2c": "sentinel-2c",
    "sentinel2amsi": "sentinel-2a", "sentinel2bmsi": "sentinel-2b", "sentinel2cmsi": "sentinel-2c",
    "l5": "landsat-5-tm", "landsat5": "landsat-5-tm", "lt05": "landsat-5-tm", "tm": "landsat-5-tm",
    "l7": "landsat-7-etm", "landsat7": "landsat-7-etm", "le07": "landsat-7-etm", "landsat7etm+": "landsat-7-etm",
    "etm": "landsat-7-etm", "etm+": "landsat-7-etm",
    "l8": "landsat-8-oli", "landsat8": "landsat-8-oli", "lc08": "landsat-8-oli", "oli": "landsat-8-oli",
    "l9": "landsat-9-oli2", "landsat9": "landsat-9-oli2", "lc09": "landsat-9-oli2", "oli2": "landsat-9-oli2",
    "landsat9oli": "landsat-9-oli2",
    "modis": "modis-terra", "terramodis": "modis-terra", "mod": "modis-terra",
    "terraaster": "aster", "ali": "eo-1-ali", "eo1ali": "eo-1-ali", "eo1hyperion": "hyperion",
    "dove": "planetscope-dove-0c-0d", "planetscopedove": "planetscope-dove-0c-0d", "dover": "planetscope-dove-r",
    "superdove": "planetscope-superdove", "planetscope": "planetscope-superdove", "psbsd": "planetscope-superdove",
    "ps2sd": "planetscope-dove-r", "skysat": "skysat-14-19",
    "pleiades1a": "pleiades-1a", "phr1a": "pleiades-1a", "pleiades1b": "pleiades-1b", "phr1b": "pleiades-1b",
    "spot6": "spot-6", "spot7": "spot-7", "wv2": "worldview-2", "wv02": "worldview-2", "wv3": "worldview-3",
    "wv03": "worldview-3", "quickbird": "quickbird-2", "qb2": "quickbird-2", "qb02": "quickbird-2",
    "geoeye": "geoeye-1", "ge1": "geoeye-1", "ge01": "geoeye-1", "ikonos2": "ikonos",
    "avirisclassic": "aviris",
}

# STAC ``platform`` (normalised) -> library name, or {normalised instrument substring: name}, "" = no instrument.
_PLATFORMS: dict[str, str | dict[str, str]] = {
    "sentinel2a": "sentinel-2a", "sentinel2b": "sentinel-2b", "sentinel2c": "sentinel-2c",
    "landsat5": {"": "landsat-5-tm", "tm": "landsat-5-tm"},
    "landsat7": {"": "landsat-7-etm", "etm": "landsat-7-etm"},
    "landsat8": {"": "landsat-8-oli", "oli": "landsat-8-oli"},
    "landsat9": {"": "landsat-9-oli2", "oli": "landsat-9-oli2"},
    "terra": {"modis": "modis-terra", "aster": "aster"},
    "eo1": {"ali": "eo-1-ali", "hyperion": "hyperion"},
    "planetscope": {"psbsd": "planetscope-superdove", "ps2sd": "planetscope-dove-r"},
    "rapideye": "rapideye",
    "pleiades1a": "pleiades-1a", "phr1a": "pleiades-1a", "pleiades1b": "pleiades-1b", "phr1b": "pleiades-1b",
    "spot6": "spot-6", "spot7": "spot-7",
    "worldview2": "worldview-2", "wv02": "worldview-2", "worldview3": "worldview-3", "wv03": "worldview-3",
    "quickbird2": "quickbird-2", "qb02": "quickbird-2", "geoeye1": "geoeye-1", "ge01": "geoeye-1",
    "ikonos": "ikonos", "ikonos2": "ikonos",
}


class UnknownSensorError(KeyError):
    """No sensor of that name in the SRF library; the message lists the available ones (a ``KeyError``)."""

    def __str__(self) -> str:
        return str(self.args[0])


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", name.strip().lower())


@functools.lru_cache(maxsize=1)
def _library() -> pd.DataFrame:
    with importlib.resources.files("anyband_xr.data").joinpath(_LIBRARY).open("rb") as handle:
        return pd.read_csv(handle, compression="gzip", keep_default_na=False, dtype={"band": str})


@functools.lru_cache(maxsize=1)
def _index() -> dict[str, str]:
    names = {_norm(n): n for n in list_sensors()}
    return names | {_norm(alias): target for alias, target in _ALIASES.items() if target in names.values()}


def list_sensors() -> list[str]:
    """Canonical names of the library's sensors, e.g. ``sentinel-2a``, ``landsat-8-oli``.

    Example:
        >>> "sentinel-2a" in anyband_xr.srf.list_sensors()   # True
    """
    return list(dict.fromkeys(_library()["sensor"]))


def resolve(name: str) -> str:
    """Canonical library name for ``name`` (case, ``_``/``-``/spaces and aliases like ``S2A``, ``L8`` forgiven).

    Raises ``UnknownSensorError`` listing the available sensors.

    Example:
        >>> resolve("L8")   # "landsat-8-oli"
    """
    canonical = _index().get(_norm(name))
    if canonical is None:
        raise UnknownSensorError(f"unknown sensor {name!r}; available: {', '.join(list_sensors())}")
    return canonical


def band_centroid(wavelength_nm: np.ndarray, response: np.ndarray) -> np.ndarray:
    """Centroid(s) ∫λR dλ / ∫R dλ in nm of response(s) ``(..., wavelength)`` sampled at ``wavelength_nm``.

    Example:
        >>> band_centroid(np.array([500.0, 510.0, 520.0]), np.array([0.0, 1.0, 0.0]))   # 510.0
    """
    return np.trapezoid(response * wavelength_nm, wavelength_nm, axis=-1) / np.trapezoid(response, wavelength_nm, axis=-1)


def band_fwhm(wavelength_nm: np.ndarray, response: np.ndarray) -> float:
    """Width (nm) between the outermost half-maximum crossings of one response.

    Crossings are interpolated linearly in log(response), which is exact for Gaussian bands.

    Example:
        >>> g = gaussian([550.0], 20.0)
        >>> band_fwhm(g["wavelength"].values, g.values[0])   # 20.0 nm
    """
    half = 0.5 * np.max(response)
    log_r, log_half = np.log(np.maximum(response, np.finfo(float).tiny)), np.log(half)
    above = np.flatnonzero(response >= half)
    lo, hi = above[0], above[-1]
    left = wavelength_nm[0] if lo == 0 else np.interp(log_half, log_r[lo - 1 : lo + 1], wavelength_nm[lo - 1 : lo + 1])
    if hi == response.size - 1:
        right = wavelength_nm[-1]
    else:
        right = np.interp(log_half, log_r[hi : hi + 2][::-1], wavelength_nm[hi : hi + 2][::-1])
    return float(right - left)


def _dataarray(
    wavelength_nm: np.ndarray, response: np.ndarray, names: Sequence[str], common: Sequence[str], attrs: dict
) -> xr.DataArray:
    return xr.DataArray(
        response,
        dims=("band", "wavelength"),
        coords={
            "band": list(names),
            "wavelength": ("wavelength", wavelength_nm, {"units": "nm"}),
            "common_name": ("band", list(common)),
            "centroid": ("band", band_centroid(wavelength_nm, response), {"units": "nm"}),
            "fwhm": ("band", [band_fwhm(wavelength_nm, r) for r in response], {"units": "nm"}),
        },
        name="response",
        attrs={"units": "1", "long_name": "relative spectral response (peak 1)", **attrs},
    )


@functools.lru_cache(maxsize=None)
def _get(canonical: str) -> xr.DataArray:
    table = _library()
    table = table[table["sensor"] == canonical]
    wide = table.pivot(index="band", columns="wavelength", values="response")
    bands = list(dict.fromkeys(table["band"]))
    full = np.arange(wide.columns.min(), wide.columns.max() + 1)
    wide = wide.reindex(index=bands, columns=full).fillna(0.0)
    common = table.groupby("band", sort=False)["common_name"].first().reindex(bands)
    first = table.iloc[0]
    attrs = {"sensor": canonical, "source": first["source"], "licence": first["licence"]}
    return _dataarray(full.astype(np.float64), wide.to_numpy(), bands, common.tolist(), attrs)


def get(name: str) -> xr.DataArray:
    """SRFs of sensor ``name``: dims (band, wavelength in nm), peak 1 on a 1 nm grid.

    Coordinates ``centroid`` and ``fwhm`` (nm) and ``common_name`` (``blue``, ``nir``, ``swir16`` ...) per band;
    attrs ``sensor``, ``source`` and ``licence``. Names are forgiving (see ``resolve``).

    Example:
        >>> s2 = anyband_xr.srf.get("S2A")
        >>> s2.sel(band="B08")["centroid"].item()   # 832.8 nm
    """
    return _get(resolve(name)).copy()


def gaussian(
    center_nm: Sequence[float] | np.ndarray,
    fwhm_nm: Sequence[float] | np.ndarray | float,
    wavelength_nm: Sequence[float] | np.ndarray | None = None,
    names: Sequence[str] | None = None,
) -> xr.DataArray:
    """Gaussian SRFs (peak 1) for band centres and FWHM in nm (or µm); zero beyond ±3 FWHM of each centre.

    The default grid is 1 nm covering every band's ±3 FWHM; ``wavelength_nm`` sets another. Returns an SRF
    DataArray like ``get``'s, bands named ``names`` (default ``B1``, ``B2`` ...).

    Example:
        >>> hyperion = gaussian(np.arange(430.0, 2400.0, 10.0), 10.5)   # 197 Gaussian bands, FWHM 10.5 nm
    """
    raw = np.atleast_1d(np.asarray(center_nm, dtype=np.float64))
    center = spectral._to_nanometres(raw, None, "center_nm")
    scale = center[0] / raw[0] if raw[0] else 1.0
    width = np.broadcast_to(np.asarray(fwhm_nm, dtype=np.float64) * scale, center.shape)
    if (width <= 0).any():
        raise ValueError(f"fwhm_nm must be positive; got {width[width <= 0][:5].tolist()}")
    if wavelength_nm is None:
        lo = np.floor((center - _GAUSSIAN_HALF_WIDTH * width).min())
        grid = np.arange(max(lo, 1.0), np.ceil((center + _GAUSSIAN_HALF_WIDTH * width).max()) + 1.0)
    else:
        grid = spectral._to_nanometres(np.asarray(wavelength_nm, dtype=np.float64), None, "wavelength_nm")
    offset = grid[None, :] - center[:, None]
    response = np.exp(-0.5 * (offset * _FWHM_PER_SIGMA / width[:, None]) ** 2)
    response[np.abs(offset) > _GAUSSIAN_HALF_WIDTH * width[:, None]] = 0.0
    labels = list(names) if names is not None else [f"B{i + 1}" for i in range(center.size)]
    if len(labels) != center.size:
        raise ValueError(f"{len(labels)} names for {center.size} bands")
    attrs = {"sensor": "gaussian", "source": "Gaussian SRFs from band centre and FWHM", "licence": "n/a"}
    return _dataarray(grid, response, labels, [""] * center.size, attrs)


def from_dataarray(da: xr.DataArray) -> xr.DataArray:
    """Gaussian SRFs from the ``wavelength`` (and ``fwhm``) coordinates of a spectral DataArray (nm or µm).

    Without an ``fwhm`` coordinate each band's width is the mean spacing to its neighbouring centres.

    Example:
        >>> from_dataarray(anyband_xr.datasets.jasper_ridge())   # 198 Gaussian SRFs, widths from the spacing
    """
    center = spectral.wavelengths(da)
    width = spectral.fwhm(da)
    dim = spectral.spectral_dim(da)
    names = [str(v) for v in da[dim].values] if dim in da.coords and dim != spectral.WAVELENGTH else None
    note = "fwhm coordinate"
    if width is None:
        if center.size < 2:
            raise spectral.SpectralAxisError("one band without an fwhm coordinate: attach fwhm (nm) to make its SRF.")
        order = np.argsort(center)
        width = np.empty_like(center)
        width[order] = np.gradient(center[order])
        note = "estimated from the spacing between neighbouring band centres (no fwhm coordinate)"
    out = gaussian(center, width, names=names)
    out.attrs.update(source=f"Gaussian SRFs from the DataArray's wavelength; fwhm: {note}", fwhm_source=note)
    return out


def for_platform(platform: str, instrument: str | None = None) -> str | None:
    """Library name for a STAC ``platform`` (and ``instrument``), e.g. ``LANDSAT_8`` -> ``landsat-8-oli``; else None.

    Example:
        >>> for_platform("sentinel-2b")   # "sentinel-2b"
    """
    entry = _PLATFORMS.get(_norm(platform))
    if entry is None or isinstance(entry, str):
        return entry
    if instrument is None:
        return entry.get("")
    wanted = _norm(instrument)
    return next((name for key, name in entry.items() if key and key in wanted), None)


def sensor_responses(da: xr.DataArray) -> xr.DataArray | None:
    """Library SRFs (band, wavelength) of ``da``'s bands when ``attrs['sensor']`` names a library sensor and every
    band maps to one of its bands (by the ``srf_band`` coordinate that ``anyband_xr.stac`` sets, else by ``band``);
    None otherwise (the values are then samples of the spectrum at ``wavelength``)."""
    name = da.attrs.get("sensor")
    if not name or spectral.spectral_dim(da) != spectral.BAND:
        return None
    try:
        library = get(str(name))
    except KeyError:
        return None
    labels = list(map(str, da.coords.get("srf_band", da[spectral.BAND]).values))
    if not set(labels) <= set(map(str, library["band"].values)):
        return None
    return library.sel(band=labels)


def observation_responses(da: xr.DataArray) -> xr.DataArray:
    """SRFs (band, wavelength in nm) of the observed bands: the library's when ``attrs['sensor']`` names a sensor
    whose bands match (``sensor_responses``), Gaussian from ``wavelength``/``fwhm`` otherwise.

    Example:
        >>> observation_responses(da.anyband.simulate("sentinel-2a"))   # the library's Sentinel-2A SRFs
    """
    responses = sensor_responses(da)
    return from_dataarray(da) if responses is None else responses
