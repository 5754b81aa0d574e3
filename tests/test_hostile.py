"""Hostile but realistic input (issue 25): every case gives the correct result or one clear error.

Each section covers one area; cases are small crops of the bundled real scene so the file runs in seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import anyband_xr


@pytest.fixture(scope="module")
def scene() -> xr.DataArray:
    """A 12x12 crop of the bundled real AVIRIS scene (wavelength, y, x), float32 reflectance."""
    return anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 12), x=slice(0, 12)).load()
