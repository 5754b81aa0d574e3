"""anyband_xr: repair missing spectral bands and simulate sensors on wavelength-labelled xarray objects.

``import anyband_xr`` registers the ``.anyband`` accessor on ``xarray.DataArray`` and ``xarray.Dataset`` and makes
the submodules reachable as attributes (``anyband_xr.datasets``, ``anyband_xr.masks``, ``anyband_xr.stac`` ...);
the heavier ones (STAC, dask-distributed scaling, plotting, training) are imported on first use.

Example:
    >>> import anyband_xr
    >>> da = anyband_xr.datasets.jasper_ridge()
    >>> mask = anyband_xr.masks.band_loss(da, 0.3, seed=0)
    >>> repaired = da.where(~mask).anyband.repair(mask)
"""

import importlib

__version__ = "0.3.0"

from anyband_xr import accessor as _accessor  # noqa: E402,F401  (registers the .anyband accessor)
from anyband_xr import datasets, generate, indices, io, masks, metrics, repair, simulate, srf  # noqa: E402
from anyband_xr.spectral import (  # noqa: E402
    AnyBandWarning,
    SpectralAxisError,
    SpectralDataError,
    assign_wavelengths,
    spectral_dim,
    standardize,
    wavelengths,
)

_LAZY_SUBMODULES = ("evaluation", "model", "physics", "plot", "sampling", "scale", "stac", "training")

__all__ = [
    "AnyBandWarning",
    "SpectralAxisError",
    "SpectralDataError",
    "assign_wavelengths",
    "datasets",
    "generate",
    "indices",
    "io",
    "masks",
    "metrics",
    "repair",
    "simulate",
    "spectral_dim",
    "srf",
    "standardize",
    "wavelengths",
    *_LAZY_SUBMODULES,
]


def __getattr__(name: str):
    """Import the heavier submodules on first access (``anyband_xr.stac``, ``anyband_xr.scale`` ...)."""
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"anyband_xr.{name}")
    raise AttributeError(f"module 'anyband_xr' has no attribute {name!r}")
