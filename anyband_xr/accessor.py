"""The ``.anyband`` accessor on DataArray and Dataset: a thin layer over the package's plain functions."""

from __future__ import annotations

import numpy as np
import xarray as xr

from anyband_xr import generate as _generate
from anyband_xr import indices as _indices
from anyband_xr import repair as _repair
from anyband_xr import simulate as _simulate
from anyband_xr import spectral


@xr.register_dataarray_accessor("anyband")
class AnyBandDataArrayAccessor:
    """Spectral tools on a wavelength-labelled DataArray (``da.anyband``).

    Example:
        >>> import anyband_xr
        >>> da = anyband_xr.datasets.jasper_ridge()
        >>> da.anyband.wavelength[:3]
    """

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    @property
    def spectral_dim(self) -> str:
        """Name of the spectral dimension (``wavelength`` or ``band``)."""
        return spectral.spectral_dim(self._obj)

    @property
    def wavelength(self) -> np.ndarray:
        """Centre wavelengths in nm, validated."""
        return spectral.wavelengths(self._obj)

    @property
    def fwhm(self) -> np.ndarray | None:
        """Band FWHM in nm, or None when unknown."""
        return spectral.fwhm(self._obj)

    def standardize(self) -> xr.DataArray:
        """Wavelengths in nm sorted ascending, one dask chunk along the spectral axis (lazy)."""
        return spectral.standardize(self._obj)

    def simulate(self, sensor: str | xr.DataArray, strict: bool = False) -> xr.DataArray:
        """What ``sensor`` (SRF library name or SRF DataArray) observes of these spectra; see ``simulate.simulate``.

        Example: ``da.anyband.simulate("sentinel-2a")`` gives a (band, y, x) DataArray with band centroids (nm).
        """
        return _simulate.simulate(self._obj, sensor, strict=strict)

    def index(self, names: str | list[str], sensor: str | None = None, params: dict | None = None) -> xr.DataArray:
        """Spectral indices of the Awesome Spectral Indices catalogue (spyndex), lazily; see ``indices.index``.

        Example: ``da.anyband.index(["NDVI", "NDWI"])`` gives an ``index`` dimension; attrs say which bands.
        """
        return _indices.index(self._obj, names, sensor=sensor, params=params)

    def repair(self, mask: xr.DataArray | None = None, **kwargs) -> xr.DataArray | xr.Dataset:
        """Fill missing values (mask True, or NaN) with AnyBand-Diff or a baseline; see ``repair.repair``.

        Example: ``da.anyband.repair(mask, guidance=1.0)`` or ``da.anyband.repair(method="pchip")``.
        """
        return _repair.repair(self._obj, mask, **kwargs)

    def generate(self, target=None, **kwargs) -> xr.DataArray | xr.Dataset:
        """Full spectra on ``target`` (None: 400-2500 nm every 10 nm; wavelengths; a DataArray; a sensor name)
        from multispectral bands, with SRF consistency guidance; see ``generate.generate``.

        Example: ``da.anyband.simulate("sentinel-2a").anyband.generate()``.
        """
        return _generate.generate(self._obj, target, **kwargs)


@xr.register_dataset_accessor("anyband")
class AnyBandDatasetAccessor:
    """Spectral tools on every spectral variable of a Dataset (``ds.anyband``)."""

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
        """Simulate ``sensor`` for every spectral variable (see ``DataArray.anyband.simulate``)."""
        return self._map(lambda da: da.anyband.simulate(sensor, strict=strict))

    def index(self, names: str | list[str], **kwargs) -> xr.Dataset:
        """Spectral indices of every spectral variable (see ``DataArray.anyband.index``)."""
        return self._map(lambda da: da.anyband.index(names, **kwargs))

    def repair(self, mask: xr.DataArray | None = None, **kwargs) -> xr.Dataset:
        """Repair every spectral variable (see ``DataArray.anyband.repair``)."""
        return self._map(lambda da: da.anyband.repair(mask, **kwargs))

    def standardize(self) -> xr.Dataset:
        """Standardise every spectral variable (see ``DataArray.anyband.standardize``)."""
        return self._map(lambda da: da.anyband.standardize())

    def _map(self, func) -> xr.Dataset:
        """Apply ``func`` to every spectral variable, keep the others; a new Dataset (no re-alignment on the old
        spectral index)."""
        names = self._spectral_vars()
        variables = {n: func(v) if n in names else v for n, v in self._obj.data_vars.items()}
        return xr.Dataset(variables, attrs=self._obj.attrs)
