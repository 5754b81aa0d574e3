"""anyband_xr: repair missing spectral bands and simulate sensors on wavelength-labelled xarray objects.

``import anyband_xr`` registers the ``.anyband`` accessor on ``xarray.DataArray`` and ``xarray.Dataset``.
"""

__version__ = "0.1.0"

from anyband_xr import accessor as _accessor  # noqa: E402,F401  (registers the .anyband accessor)
from anyband_xr.spectral import (  # noqa: E402
    AnyBandWarning,
    SpectralAxisError,
    SpectralDataError,
    assign_wavelengths,
    spectral_dim,
    standardize,
    wavelengths,
)

__all__ = [
    "AnyBandWarning",
    "SpectralAxisError",
    "SpectralDataError",
    "assign_wavelengths",
    "spectral_dim",
    "standardize",
    "wavelengths",
]
