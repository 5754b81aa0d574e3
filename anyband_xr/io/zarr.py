"""Zarr format 3 storage of spectral DataArrays: wavelength/fwhm coords, attrs and CRS survive the round trip."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import rioxarray  # noqa: F401  (registers the .rio accessor used for the CRS)
import xarray as xr

from anyband_xr.spectral import spectral_dim

DEFAULT_NAME = "reflectance"


def write_zarr(
    da: xr.DataArray,
    store: str | Path | Any,
    name: str | None = None,
    mode: str = "w-",
    chunks: Mapping[str, int] | None = None,
) -> None:
    """Write ``da`` to a Zarr format 3 store (path or zarr store) as variable ``name`` (default ``da.name``).

    The spectral axis is stored as one chunk; ``chunks`` sets the other dims (e.g. ``{"y": 256, "x": 256}``).
    ``mode`` is xarray's (``"w-"`` refuses to overwrite). A CRS (``da.rio.crs``) is kept as the ``spatial_ref``
    grid-mapping variable. Dask-backed data is computed while writing, chunk by chunk.

    Example:
        >>> write_zarr(anyband_xr.datasets.jasper_ridge(), "jasper.zarr", chunks={"y": 50, "x": 50})
    """
    dim = spectral_dim(da)
    name = name or (str(da.name) if da.name is not None else DEFAULT_NAME)
    if da.rio.crs is not None:
        da = da.rio.write_crs(da.rio.crs)
    da = da.chunk({**(dict(chunks) if chunks else {}), dim: -1})
    ds = da.to_dataset(name=name)
    ds.to_zarr(store, mode=mode, zarr_format=3, consolidated=False)


def open_zarr(
    store: str | Path | Any, variable: str | None = None, chunks: str | Mapping | None = "auto"
) -> xr.DataArray:
    """Open a spectral variable of a Zarr store lazily (dask), with one chunk along the spectral axis.

    ``variable`` may be omitted when the store holds one data variable. ``chunks`` is xarray's (``"auto"``: dask
    picks the spatial chunk sizes). The CRS, if stored, is back on ``da.rio.crs``. Nothing is computed.

    Example:
        >>> da = open_zarr("jasper.zarr")   # dask-backed (wavelength: 198, y: 100, x: 100), wavelengths in nm
    """
    ds = xr.open_zarr(store, chunks=chunks, consolidated=False, decode_coords="all")
    if variable is None:
        if len(ds.data_vars) != 1:
            names = sorted(map(str, ds.data_vars))
            raise ValueError(f"the store holds {len(names)} variables {names}; pass variable='<name>'.")
        variable = str(next(iter(ds.data_vars)))
    if variable not in ds.data_vars:
        raise KeyError(f"no variable {variable!r} in the store; variables: {sorted(map(str, ds.data_vars))}")
    da = ds[variable]
    dim = spectral_dim(da)
    if da.chunks is not None and len(da.chunks[da.get_axis_num(dim)]) > 1:
        da = da.chunk({dim: -1})
    return da
