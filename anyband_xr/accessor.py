"""The ``.anyband`` accessor on DataArray and Dataset: a thin layer over the package's plain functions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from anyband_xr import generate as _generate
from anyband_xr import indices as _indices
from anyband_xr import repair as _repair
from anyband_xr import simulate as _simulate
from anyband_xr import spectral

if TYPE_CHECKING:
    from anyband_xr.plot import PlotAccessor


@xr.register_dataarray_accessor("anyband")
class AnyBandDataArrayAccessor:
    """Spectral tools on a wavelength-labelled DataArray: ``da.anyband``.

    The spectral axis is a ``wavelength`` dimension, or a ``band`` dimension with a ``wavelength`` coordinate, in
    nm (µm is converted); an ``fwhm`` coordinate (nm) is used when present. Masks are boolean, True where a value
    is missing, and NaN counts as missing. On dask arrays every method builds a graph and computes nothing.

    - ``simulate(sensor)``: what a sensor of the SRF library observes of these spectra (``band`` dimension).
    - ``index(names)``: any spectral index of the Awesome Spectral Indices catalogue (spyndex), lazily.
    - ``repair(mask, ...)``: fill missing values with the best of AnyBand-Diff and the classical baselines on the
      scene's own observed values (``method="auto"``, the default), or with one of them by name.
    - ``generate(target)``: full spectra on a hyperspectral grid from multispectral bands.
    - ``plot.spectra / error_map / rgb / indices / srf``: pictures (matplotlib).
    - ``wavelength``, ``fwhm`` (nm), ``spectral_dim``, ``standardize()``: the wavelength contract.

    Example:
        >>> import anyband_xr.datasets
        >>> da = anyband_xr.datasets.jasper_ridge()     # (wavelength: 198, y: 100, x: 100), reflectance
        >>> da.anyband.wavelength[:3]                    # nm: 399.4, 409.2, 419.1
        >>> s2 = da.anyband.simulate("sentinel-2a")     # (band: 13, y, x)
    """

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    @property
    def spectral_dim(self) -> str:
        """Name of the spectral dimension: ``"wavelength"``, or ``"band"`` when a band dim carries wavelengths.

        Example: ``da.anyband.simulate("sentinel-2a").anyband.spectral_dim`` is ``"band"``.
        """
        return spectral.spectral_dim(self._obj)

    @property
    def wavelength(self) -> np.ndarray:
        """Centre wavelengths in nm (float64, the object's own order), validated; µm coordinates are converted.

        Example: ``da.anyband.wavelength.min()`` is 399.4 (nm) for the bundled Jasper Ridge scene.
        """
        return spectral.wavelengths(self._obj)

    @property
    def fwhm(self) -> np.ndarray | None:
        """Full width at half maximum of each band in nm, or None when the object has no ``fwhm`` coordinate.

        Example: ``da.anyband.simulate("sentinel-2a").anyband.fwhm[:3]`` gives the first three bands' widths (nm).
        """
        return spectral.fwhm(self._obj)

    def standardize(self) -> xr.DataArray:
        """The DataArray with wavelengths (and fwhm) in nm sorted ascending and one dask chunk along the spectral axis.

        Sorting and rechunking warn (``AnyBandWarning``); nothing is computed. See ``anyband_xr.spectral.standardize``.

        Example: ``da.chunk({"wavelength": 50}).anyband.standardize()`` has a single spectral chunk again.
        """
        return spectral.standardize(self._obj)

    @property
    def plot(self) -> PlotAccessor:
        """Pictures of this DataArray (matplotlib): ``da.anyband.plot.spectra/error_map/rgb/indices/srf``.

        Example: ``da.anyband.plot.rgb("false")`` draws a colour-infrared quicklook; see ``anyband_xr.plot``.
        """
        from anyband_xr.plot import PlotAccessor

        return PlotAccessor(self._obj)

    def simulate(self, sensor: str | xr.DataArray, strict: bool = False) -> xr.DataArray:
        """What ``sensor`` observes of these spectra: SRF-weighted band values in the data's units.

        ``sensor`` is a name from ``anyband_xr.srf.list_sensors()`` or an SRF DataArray (band, wavelength in nm).
        Bands outside the data's wavelength range are dropped with a warning (``strict=True`` raises instead).
        Returns a DataArray with a ``band`` dimension carrying ``wavelength`` (centroid, nm), ``fwhm`` (nm) and
        ``common_name``; lazy on dask. See ``anyband_xr.simulate.simulate``.

        Example: ``da.anyband.simulate("sentinel-2a")`` gives (band: 13, y, x), e.g. ``B04`` at 664.6 nm.
        """
        return _simulate.simulate(self._obj, sensor, strict=strict)

    def index(self, names: str | list[str], sensor: str | None = None, params: dict | None = None) -> xr.DataArray:
        """Spectral indices of the Awesome Spectral Indices catalogue (spyndex), unitless, lazily.

        Each band letter is matched to the data's wavelengths (common name, SRF of ``sensor`` or the nearest band);
        ``attrs["bands_used"]`` says which. ``params`` sets constants (e.g. ``{"L": 0.5}``). One name gives a
        DataArray named after the index, a list an ``index`` dimension. See ``anyband_xr.indices.index``.

        Example: ``da.chunk({"y": 50}).anyband.index(["NDVI", "NDWI"])`` is lazy, dims (index: 2, y, x).
        """
        return _indices.index(self._obj, names, sensor=sensor, params=params)

    def repair(self, mask: xr.DataArray | None = None, **kwargs) -> xr.DataArray | xr.Dataset:
        """Fill missing values (``mask`` True, or NaN) with the method that does best on the scene's own observed
        values (``method="auto"``, the default), or with AnyBand-Diff or a classical baseline by name.

        Keywords: ``method`` (``"auto"``: every candidate fills observed values hidden like the mask hides values,
        the best fills the scene and the attrs ``anyband_selfcheck_*`` record the choice and the scores; or
        ``"diffusion"``, ``"linear"``, ``"pchip"``, ``"gaussian"``, ``"lowrank"``), ``guidance`` (PGS scale, 0 =
        off), ``steps`` (DDIM steps; default: those validated for the weights), ``samples`` and ``return_std``
        (posterior mean and per-value std), ``seed``, ``interval`` (e.g. 0.9: conformal ``lower``/``upper``),
        ``operators``, ``device``, ``tile``/``overlap`` (pixels). Observed values come back bit for bit; dims,
        coords, CRS and attrs are kept and provenance added. See ``anyband_xr.repair.repair``.

        Example: ``da.where(~mask).anyband.repair(mask)`` (auto), ``...repair(mask, method="diffusion", steps=10)``
        or ``...repair(mask, method="pchip")``.
        """
        return _repair.repair(self._obj, mask, **kwargs)

    def generate(self, target=None, **kwargs) -> xr.DataArray | xr.Dataset:
        """Full spectra on ``target`` from multispectral bands, with SRF consistency guidance.

        ``target``: None (400-2500 nm every 10 nm), wavelengths (nm or µm), a DataArray whose grid to use, or a
        sensor name (the generated spectra are then simulated through its SRFs). Other keywords as in ``repair``.
        Values in the data's units. See ``anyband_xr.generate.generate``.

        Example: ``da.anyband.simulate("sentinel-2a").anyband.generate(steps=10)`` gives (wavelength: 211, y, x).
        """
        return _generate.generate(self._obj, target, **kwargs)


@xr.register_dataset_accessor("anyband")
class AnyBandDatasetAccessor:
    """Spectral tools on every spectral variable of a Dataset: ``ds.anyband``.

    Each method maps the DataArray method of the same name over the data variables that have a spectral axis and
    keeps the others unchanged.

    Example:
        >>> ds = xr.Dataset({"reflectance": da, "label": da.isel(wavelength=0, drop=True) > 0.1})
        >>> ds.anyband.simulate("landsat-8-oli")         # reflectance simulated, label kept
    """

    def __init__(self, obj: xr.Dataset) -> None:
        self._obj = obj

    def _spectral_vars(self) -> list[str]:
        names = []
        for name, var in self._obj.data_vars.items():
            try:
                spectral.spectral_dim(var)
            except spectral.SpectralAxisError:
                continue
            names.append(str(name))
        if not names:
            raise spectral.SpectralAxisError(
                "no data variable of this Dataset has a spectral axis ('wavelength' dim, or 'band' with a "
                "'wavelength' coordinate). Select one variable: ds['<name>'].anyband..."
            )
        return names

    def simulate(self, sensor: str | xr.DataArray, strict: bool = False) -> xr.Dataset:
        """Simulate ``sensor`` for every spectral variable (see ``DataArray.anyband.simulate``).

        Example: ``ds.anyband.simulate("sentinel-2a")``.
        """
        return self._map(lambda da: da.anyband.simulate(sensor, strict=strict))

    def index(self, names: str | list[str], **kwargs) -> xr.Dataset:
        """Spectral indices of every spectral variable, unitless (see ``DataArray.anyband.index``).

        Example: ``ds.anyband.index("NDVI")``.
        """
        return self._map(lambda da: da.anyband.index(names, **kwargs))

    def repair(self, mask: xr.DataArray | None = None, **kwargs) -> xr.Dataset:
        """Repair every spectral variable with the same mask and settings (see ``DataArray.anyband.repair``).

        Example: ``ds.anyband.repair(method="pchip")`` fills the NaN of every spectral variable.
        """
        return self._map(lambda da: da.anyband.repair(mask, **kwargs))

    def standardize(self) -> xr.Dataset:
        """Standardise every spectral variable: nm, sorted, one spectral chunk (see ``DataArray.anyband.standardize``).

        Example: ``ds.anyband.standardize()``.
        """
        return self._map(lambda da: da.anyband.standardize())

    def _map(self, func) -> xr.Dataset:
        """Apply ``func`` to every spectral variable, keep the others; a new Dataset (no re-alignment on the old
        spectral index)."""
        names = self._spectral_vars()
        variables = {n: func(v) if n in names else v for n, v in self._obj.data_vars.items()}
        return xr.Dataset(variables, attrs=self._obj.attrs)
