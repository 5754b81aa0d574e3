"""The errors and the warning of ``anyband_xr.stac``; every message says what is wrong and what to do."""

from __future__ import annotations

from anyband_xr import spectral


class StacError(RuntimeError):
    """The STAC API could not be reached or answered with an error; the message says what and what to change."""


class NoItemsError(LookupError):
    """A search matched no items; the message repeats what was searched."""


class BandMetadataError(spectral.SpectralAxisError):
    """An asset lacks the band metadata needed for wavelengths; the message names it and how to pass them."""


class MixedSensorsError(BandMetadataError):
    """The items describe different bands (different sensors); the message lists them and how to split the load."""


class StacLoadError(ValueError):
    """odc-stac could not load the items; the message adds what to pass (``crs``, ``resolution`` ...)."""


class DigitalNumberWarning(spectral.AnyBandWarning):
    """Loaded values look like raw digital numbers, not physical units (no scale declared, or values far above 1)."""
