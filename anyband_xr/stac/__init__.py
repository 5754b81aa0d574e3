"""STAC search and load: from a STAC API to a lazy, wavelength-labelled DataArray ``(time, band, y, x)``.

``search`` runs an item search over pystac-client, ``load`` reads the items with odc-stac and adds what odc-stac
leaves out: ``wavelength``/``fwhm`` coordinates in nm from ``eo:bands`` (STAC 1.0) or ``bands`` with
``eo:center_wavelength`` (STAC 1.1), band and common names, each item's own scale/offset/nodata (``raster:bands``,
EnMAP gains, the Sentinel-2 processing baseline) applied before any mosaic, asset choice by role, warnings for
values that stay digital numbers, the CRS for rioxarray and, for a known platform, the library SRF. ``open`` does
both; ``by_sensor`` splits a mixed search. Keywords of pystac-client and odc-stac are passed through.

Example:
    >>> import anyband_xr.stac
    >>> da = anyband_xr.stac.open(
    ...     "https://earth-search.aws.element84.com/v1", collections="sentinel-2-l2a",
    ...     bbox=[11.0, 46.0, 11.1, 46.1], datetime="2024-06", max_items=2, resolution=20,
    ... )
    >>> da.anyband.index("NDVI")
"""

from __future__ import annotations

from anyband_xr.stac.client import open, search  # noqa: A004  (anyband_xr.stac.open reads like xarray.open_dataset)
from anyband_xr.stac.errors import (
    BandMetadataError,
    DigitalNumberWarning,
    MixedSensorsError,
    NoItemsError,
    StacError,
    StacLoadError,
)
from anyband_xr.stac.loading import by_sensor, load

__all__ = [
    "BandMetadataError",
    "DigitalNumberWarning",
    "MixedSensorsError",
    "NoItemsError",
    "StacError",
    "StacLoadError",
    "by_sensor",
    "load",
    "open",
    "search",
]
