"""Readers (MATLAB ``.mat``, ENVI) and Zarr v3 storage; every reader returns float32 ``(wavelength, y, x)`` in nm."""

from anyband_xr.io.envi import read_envi
from anyband_xr.io.mat import LAYOUTS, read_jasper_ridge, read_labels, read_mat
from anyband_xr.io.zarr import open_zarr, write_zarr

__all__ = ["LAYOUTS", "open_zarr", "read_envi", "read_jasper_ridge", "read_labels", "read_mat", "write_zarr"]
