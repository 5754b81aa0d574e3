"""Band metadata of one STAC item, and which of its assets to load.

Every band of every asset gets its wavelength and FWHM (µm, as STAC stores them), scale, offset, nodata and unit,
from the first source that has each field: the band object (STAC 1.1 ``bands``, STAC 1.0 ``eo:bands``), the
matching ``raster:bands`` entry, then the asset itself (STAC 1.1 single-band assets and shared raster fields).
Vendor fields are honoured where no ``raster:bands`` scale is given:

- EnMAP (DLR): ``enmap:gain_of_band`` / ``enmap:offset_of_band`` in each band object, ``value = DN * gain + offset``.
- Sentinel-2 L1C/L2A: ``s2:processing_baseline`` (or the ``_Nxxyy_`` baseline in the product id): scale 1e-4, and
  from baseline 04.00 on the offset of -1000 DN (-0.1), as in ESA's ``BOA_ADD_OFFSET``/``RADIO_ADD_OFFSET``;
  DN 0 is nodata unless the item says otherwise.
- Earth Search: ``earthsearch:boa_offset_applied: true`` says the -1000 DN offset is already in the pixel values;
  the -0.1 that its ``raster:bands`` still declare is then not applied a second time.

Asset choice: by default every band with a wavelength, skipping thumbnails, overviews, visual (true-colour)
previews, metadata, quality/cloud masks, error or uncertainty layers and thermal bands (``temperature`` role, a
``kelvin``/``celsius`` unit or a centre beyond 3 µm); when some assets have the ``reflectance`` role only those are
taken; one band per wavelength, preferring single-band assets, assets whose key or title does not name an error,
uncertainty, quality or mask layer, COGs over JPEG2000 copies, the ``sampling:original`` resolution, then the
finest ``gsd``. Bands named in ``bands=`` are loaded whatever their role.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import pystac

from anyband_xr.stac.errors import BandMetadataError

SKIP_ROLES = frozenset(
    {
        "thumbnail", "overview", "visual", "metadata", "temperature", "emissivity", "cloud", "cloud-shadow",
        "snow-ice", "water-mask", "land-water", "data-mask", "saturation", "error", "uncertainty", "quality", "qa",
        "mask", "graphic", "tiles",
    }
)
THERMAL_UNITS = frozenset({"kelvin", "k", "celsius", "degc", "°c"})
THERMAL_MIN_UM = 3.0
REFLECTIVE_UM = (0.35, 2.6)
S2_QUANTIFICATION = 1e-4
S2_OFFSET_DN, S2_OFFSET_FROM = -1000, 4.0
_SHARED_FIELDS = ("nodata", "data_type", "raster:scale", "raster:offset", "unit")
_BASELINE_IN_ID = re.compile(r"_N(\d{2})(\d{2})_")
_AUXILIARY = re.compile(r"(?<![a-z])(err|uncert|quality|qa|mask|snr|noise)", re.IGNORECASE)


@dataclass(frozen=True)
class Band:
    """One band of one asset of one item, as its metadata describe it (wavelengths in µm, as STAC stores them).

    ``scale`` is None when no source declares one (the values are then digital numbers); ``source`` says where the
    scale and offset came from.
    """

    asset: str
    index: int
    name: str
    common_name: str
    wavelength_um: float | None
    fwhm_um: float | None
    scale: float | None
    offset: float
    nodata: float | None
    data_type: str | None
    unit: str | None
    count: int
    roles: tuple[str, ...]
    media_type: str
    gsd: float | None
    position: int
    source: str
    title: str = ""

    @property
    def key(self) -> str:
        """odc-stac's name for the band: ``<asset>.<1-based index>``."""
        return f"{self.asset}.{self.index}"

    @property
    def reflective(self) -> bool:
        """True when the centre wavelength lies in the solar-reflective range (0.35-2.6 µm)."""
        return self.wavelength_um is not None and REFLECTIVE_UM[0] <= self.wavelength_um <= REFLECTIVE_UM[1]

    @property
    def skip_reason(self) -> str | None:
        """Why the default selection leaves this band out (role, thermal unit or wavelength), or None."""
        roles = sorted(SKIP_ROLES.intersection(self.roles))
        if roles:
            return f"role {roles[0]!r}"
        if self.unit is not None and self.unit.lower() in THERMAL_UNITS:
            return f"thermal (unit {self.unit!r})"
        if self.wavelength_um is not None and self.wavelength_um > THERMAL_MIN_UM:
            return f"thermal ({self.wavelength_um * 1000:.0f} nm)"
        return None

    @property
    def digital_numbers(self) -> bool:
        """True when nothing declares a scale for integer (or untyped) data: the values are raw DN."""
        return self.scale is None and (self.data_type is None or "int" in self.data_type)

    @property
    def units(self) -> str | None:
        """Physical units of the decoded values: the declared unit, ``DN``, ``reflectance`` or None (unknown)."""
        if self.unit:
            return self.unit
        if self.digital_numbers:
            return "DN"
        if "reflectance" in self.roles or self.source in ("s2:processing_baseline", "enmap:gain_of_band"):
            return "reflectance"
        return None


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _asset_bands(key: str, asset: pystac.Asset, position: int) -> list[Band]:
    """Bands of ``asset`` from ``bands`` (STAC 1.1) or ``eo:bands`` + ``raster:bands`` (STAC 1.0).

    A single-band asset may carry its band's fields itself; STAC 1.1 raster fields on a multi-band asset
    (``nodata``, ``data_type``, ``raster:scale``, ``raster:offset``, ``unit``) apply to each of its bands.
    """
    fields = asset.to_dict()
    described = fields.get("bands") or fields.get("eo:bands") or []
    raster = fields.get("raster:bands") or []
    count = max(len(described), len(raster), 1)
    shared = fields if count == 1 else {k: fields[k] for k in _SHARED_FIELDS if k in fields}
    bands = []
    for i in range(count):
        band = described[i] if i < len(described) else {}
        rb = raster[i] if i < len(raster) else {}

        def pick(*names: str, _band=band, _rb=rb) -> Any:
            for source in (_band, _rb, shared):
                for name in names:
                    if source.get(name) is not None:
                        return source[name]
            return None

        scale, offset, source = _float(pick("raster:scale", "scale")), _float(pick("raster:offset", "offset")), "raster"
        gain = _float(pick("enmap:gain_of_band"))
        if scale is None and gain is not None:
            scale, offset, source = gain, _float(pick("enmap:offset_of_band")), "enmap:gain_of_band"
        bands.append(
            Band(
                asset=key,
                index=i + 1,
                name=str(band.get("name") or (key if count == 1 else f"{key}.{i + 1}")),
                common_name=str(pick("eo:common_name", "common_name") or ""),
                wavelength_um=_float(pick("eo:center_wavelength", "center_wavelength")),
                fwhm_um=_float(pick("eo:full_width_half_max", "full_width_half_max")),
                scale=scale,
                offset=offset or 0.0,
                nodata=_float(pick("nodata")),
                data_type=pick("data_type"),
                unit=pick("unit"),
                count=count,
                roles=tuple(asset.roles or ()),
                media_type=str(asset.media_type or ""),
                gsd=_float(fields.get("gsd")),
                position=position,
                source=source if scale is not None else "",
                title=str(asset.title or ""),
            )
        )
    return bands


def s2_baseline(properties: dict[str, Any]) -> float | None:
    """Sentinel-2 processing baseline (e.g. 5.09) from ``s2:processing_baseline`` or the product id, else None."""
    declared = properties.get("s2:processing_baseline")
    if declared is not None:
        return float(declared)
    for field in ("s2:product_uri", "sentinel:product_id", "s2:granule_id"):
        found = _BASELINE_IN_ID.search(str(properties.get(field) or ""))
        if found:
            return int(found[1]) + int(found[2]) / 100
    return None


def _vendor_rules(band: Band, properties: dict[str, Any]) -> Band:
    """``band`` with the Sentinel-2 baseline scale/offset and Earth Search's applied-offset flag taken into account."""
    if not band.reflective:
        return band
    if band.scale is not None:
        if properties.get("earthsearch:boa_offset_applied") is True and math.isclose(band.offset, -0.1):
            return replace(band, offset=0.0, source="raster (earthsearch:boa_offset_applied: offset already in DN)")
        return band
    baseline = s2_baseline(properties)
    if baseline is None:
        return band
    offset = S2_OFFSET_DN * S2_QUANTIFICATION if baseline >= S2_OFFSET_FROM else 0.0
    nodata = 0.0 if band.nodata is None else band.nodata  # ESA: DN 0 is NO_DATA in every baseline
    return replace(band, scale=S2_QUANTIFICATION, offset=offset, nodata=nodata, source="s2:processing_baseline")


def item_bands(item: pystac.Item) -> list[Band]:
    """Every band of every asset of ``item``, in asset order, with the vendor rules applied."""
    return [
        _vendor_rules(band, item.properties)
        for position, (key, asset) in enumerate(item.assets.items())
        for band in _asset_bands(key, asset, position)
    ]


def _rank(band: Band) -> tuple:
    """Preference among bands of the same wavelength: single-band, not an error/quality layer by its key or title,
    COG before JPEG2000, original sampling, finest gsd, then item order."""
    jp2 = "jp2" in band.media_type or band.asset.endswith("-jp2")
    auxiliary = bool(_AUXILIARY.search(f"{band.asset} {band.title}"))
    return (band.count > 1, auxiliary, jp2, "sampling:original" not in band.roles, band.gsd or 0.0, band.position,
            band.index)


def _one_per_wavelength(bands: list[Band]) -> list[Band]:
    chosen, seen = [], set()
    for band in sorted(bands, key=_rank):
        wl = None if band.wavelength_um is None else round(band.wavelength_um, 6)
        if wl is None or wl not in seen:
            chosen.append(band)
            seen.add(wl)
    return chosen


def _default(item: pystac.Item, available: list[Band]) -> list[Band]:
    spectral = [b for b in available if b.wavelength_um is not None]
    usable = [b for b in spectral if b.skip_reason is None]
    if any("reflectance" in b.roles for b in usable):
        usable = [b for b in usable if "reflectance" in b.roles]
    if usable:
        return _one_per_wavelength(usable)
    skipped = sorted({f"{b.asset} ({b.skip_reason})" for b in spectral})
    if skipped:
        why = f"every asset with wavelengths is skipped by default: {skipped[:10]}; name them in bands= to load them"
    else:
        why = "no asset carries band wavelengths (looked for eo:bands center_wavelength and bands eo:center_wavelength)"
    raise BandMetadataError(
        f"item {item.id!r}: {why}. Assets: {sorted(item.assets)[:20]}. Pass bands and, without wavelengths in the "
        f"item, their wavelengths in nm: anyband_xr.stac.load(items, bands=[{next(iter(item.assets), 'asset')!r}], "
        "wavelengths=[665.0])."
    )


def _named(item: pystac.Item, available: list[Band], wanted: str) -> list[Band]:
    by_asset = [b for b in available if b.asset == wanted]
    if by_asset:
        return by_asset
    match = [b for b in available if wanted in (b.name, b.key)] or [b for b in available if b.common_name == wanted]
    if not match:
        names = sorted({name for b in available for name in (b.asset, b.name, b.common_name) if name})
        raise BandMetadataError(
            f"band {wanted!r} is not in item {item.id!r} (platform {item.properties.get('platform')!r}); it has "
            f"assets, band names and common names {names[:40]}. If the items come from different sensors, load them "
            "separately: anyband_xr.stac.by_sensor(items)."
        )
    return _one_per_wavelength([b for b in match if b.skip_reason is None] or match)


def select(item: pystac.Item, bands: Sequence[str] | None, wavelengths_given: bool = False) -> list[Band]:
    """The bands of ``item`` to load: those named in ``bands`` (asset key, band name, ``asset.N`` or common name),
    or by default every band with a wavelength (see the module docstring for the roles skipped)."""
    available = item_bands(item)
    if bands is None:
        return _default(item, available)
    chosen = list({b.key: b for wanted in bands for b in _named(item, available, wanted)}.values())
    missing = sorted({b.asset for b in chosen if b.wavelength_um is None})
    if missing and not wavelengths_given:
        raise BandMetadataError(
            f"item {item.id!r}: asset(s) {missing} have no band wavelengths (no eo:bands center_wavelength, no "
            "bands eo:center_wavelength). Pass them by hand in nm, one per loaded band: "
            f"anyband_xr.stac.load(items, bands={list(bands)!r}, wavelengths=[...], fwhm=[...])."
        )
    return chosen


def signature(selected: list[Band]) -> tuple:
    """What must agree between items loaded together: band keys, names, wavelengths and FWHM."""
    return tuple(
        (b.key, b.name, None if b.wavelength_um is None else round(b.wavelength_um, 6),
         None if b.fwhm_um is None else round(b.fwhm_um, 6))
        for b in sorted(selected, key=lambda b: b.key)
    )


def sensor_label(item: pystac.Item) -> str:
    """``platform (instrument, ...)`` of ``item``, e.g. ``landsat-9 (oli, tirs)``; ``unknown platform`` if absent."""
    platform = item.properties.get("platform") or "unknown platform"
    instruments = item.properties.get("instruments") or []
    return f"{platform} ({', '.join(map(str, instruments))})" if instruments else str(platform)
