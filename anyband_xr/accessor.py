"""The ``.anyband`` accessor on DataArray and Dataset: a thin layer over the package's plain functions."""

from __future__ import annotations

import numpy as np
import xarray as xr

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

    def standardize(self) -> xr.Dataset:
        """Standardise every spectral variable (see ``DataArray.anyband.standardize``)."""
        return self._map(lambda da: da.anyband.standardize())

    def _map(self, func) -> xr.Dataset:
        """Apply ``func`` to every spectral variable, keep the others; a new Dataset (no re-alignment on the old
        spectral index)."""
        names = self._spectral_vars()
        variables = {n: func(v) if n in names else v for n, v in self._obj.data_vars.items()}
        return xr.Dataset(variables, attrs=self._obj.attrs)
