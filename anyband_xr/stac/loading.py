"""Load STAC items with odc-stac into one lazy, wavelength-labelled DataArray ``(time, band, y, x)``.

Items are decoded with their own band metadata (scale, offset, nodata) before they are mosaicked: odc-stac fuses
the items of one ``groupby`` group that decode alike (first valid value wins, in its time order); a group that
mixes decodings (e.g. Sentinel-2 baselines before and after 04.00 on one day) is read as one sub-mosaic per
decoding, each decoded, then layered earliest first. Items must describe the same bands (same sensor) unless
``wavelengths=`` labels them; otherwise ``MixedSensorsError`` says how to split them (``by_sensor``).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from functools import reduce
from typing import Any

import numpy as np
import odc.stac
import pystac
import rioxarray  # noqa: F401  (registers the .rio accessor used to set the CRS)
import xarray as xr

from anyband_xr import spectral, srf
from anyband_xr.stac.errors import (
    BandMetadataError,
    DigitalNumberWarning,
    MixedSensorsError,
    NoItemsError,
    StacLoadError,
)
from anyband_xr.stac.metadata import Band, select, sensor_label, signature

_CHUNK_BYTES = 128 * 2**20
_DN_LIMIT = 2.0
_NOT_PASSED = ("stac_cfg", "fuse_func")


def _per_item(items: list[pystac.Item], bands: Sequence[str] | None, labelled: bool) -> list[list[Band]]:
    """The bands to load of every item; raise ``MixedSensorsError`` when the items do not describe the same bands
    (with ``wavelengths=`` given, the same band keys suffice)."""
    selected, failed = [], []
    for item in items:
        try:
            selected.append(select(item, bands, labelled))
        except BandMetadataError as err:
            failed.append(err)
    if len(failed) == len(items):
        raise failed[0]
    same = {tuple(sorted(b.key for b in s)) if labelled else signature(s) for s in selected}
    if not failed and len(same) == 1:
        return selected
    described = "; ".join(
        f"{name}: {len(group)} item(s) e.g. {group[0].id!r}, {_describe(group[0], bands)}"
        for name, group in by_sensor(items, bands).items()
    )
    raise MixedSensorsError(
        f"the {len(items)} items describe different bands (different sensors or products): {described}. Load each "
        "sensor on its own: for sensor, group in anyband_xr.stac.by_sensor(items).items(): "
        "da = anyband_xr.stac.load(group, ...); or name bands every item has with the same wavelengths, or pass "
        "wavelengths= (nm, one per band) to label the bands yourself."
    )


def _describe(item: pystac.Item, bands: Sequence[str] | None) -> str:
    try:
        chosen = sorted(select(item, bands), key=lambda b: b.wavelength_um or 0.0)
    except BandMetadataError as err:
        return f"cannot load it ({str(err).split(';')[0]})"
    named = [f"{b.name} {b.wavelength_um * 1000:.0f} nm" if b.wavelength_um else b.name for b in chosen]
    return f"bands {', '.join(named[:8])}{' ...' if len(named) > 8 else ''}"


def by_sensor(items: Iterable[pystac.Item], bands: Sequence[str] | None = None) -> dict[str, list[pystac.Item]]:
    """Split ``items`` into groups that describe the same bands (one sensor each), keyed ``platform (instruments)``.

    Items that cannot load ``bands`` form their own group. Each group can be passed to ``load`` on its own.

    Example:
        >>> for sensor, group in anyband_xr.stac.by_sensor(items).items():
        ...     cubes[sensor] = anyband_xr.stac.load(group)
    """
    groups: dict[tuple, list[pystac.Item]] = {}
    for item in items:
        try:
            key = signature(select(item, bands))
        except BandMetadataError:
            key = ("cannot load the bands", sensor_label(item))
        groups.setdefault(key, []).append(item)
    named: dict[str, list[pystac.Item]] = {}
    for group in groups.values():
        label = sensor_label(group[0])
        named[label if label not in named else f"{label} #{len(named) + 1}"] = group
    return named


def _group_key(groupby: str | Callable | None, decoding: list[int], seen: dict[int, tuple]) -> Callable:
    """An odc-stac ``groupby`` callable: ``(group of groupby, decoding)``, so that odc-stac fuses only items of one
    group that decode alike (``decoding[idx]`` numbers the distinct scale/offset/nodata rows); records each item's
    key in ``seen``."""

    def group(item: pystac.Item, parsed: odc.stac.ParsedItem, idx: int) -> Any:
        if groupby is None or groupby == "id":
            return idx
        if groupby == "time":
            return parsed.nominal_datetime
        if groupby == "solar_day":
            return parsed.solar_date.date()
        if callable(groupby):
            return groupby(item, parsed, idx)
        return item.properties.get(groupby)

    def key(item: pystac.Item, parsed: odc.stac.ParsedItem, idx: int) -> tuple:
        return seen.setdefault(idx, (group(item, parsed, idx), decoding[idx]))

    return key


def _extra_dim(asset: str) -> str:
    """odc-stac's name for the band axis of a multi-band asset loaded as one 3-D variable."""
    return f"{asset}.band"


def _multiband_cfg(selected: list[Band]) -> dict[str, Any]:
    """odc-stac ``stac_cfg`` loading every multi-band asset of ``selected`` as one ``(band, y, x)`` variable.

    odc-stac otherwise opens the file once per band and chunk; with a pixel-interleaved COG each of those reads
    decompresses every band, so an N-band asset costs N times the whole file.
    """
    assets = {b.asset: b for b in selected if b.count > 1}
    if not assets:
        return {}
    return {
        "assets": {
            key: {
                **({"data_type": b.data_type} if b.data_type else {}),
                "nodata": b.nodata,
                "dims": [_extra_dim(key), "y", "x"],
            }
            for key, b in assets.items()
        },
        "dims": {_extra_dim(key): b.count for key, b in assets.items()},
    }


def _stack(ds: xr.Dataset, selected: list[Band], dtype: np.dtype) -> xr.DataArray:
    """The raw ``selected`` bands of ``ds`` as one float ``(time, band, y, x)`` array, in ``selected`` order."""
    pieces = []
    for _, run in itertools.groupby(selected, key=lambda b: b.asset if b.count > 1 else b.key):
        run = list(run)
        if run[0].count > 1:
            dim = _extra_dim(run[0].asset)
            index = [b.index - 1 for b in run]
            if index == list(range(index[0], index[-1] + 1)):
                index = slice(index[0], index[-1] + 1)
            piece = ds[run[0].asset].isel({dim: index}).rename({dim: "band"})
        else:
            piece = ds[run[0].key].expand_dims("band", axis=1)
        pieces.append(piece.astype(dtype).drop_attrs(deep=False))
    return xr.concat(pieces, dim="band", coords="minimal", compat="override", join="override")


def _decoding(rows: list[list[Band]], times: np.ndarray, dtype: np.dtype) -> tuple[xr.DataArray, ...]:
    """(scale, offset / scale, nodata), each ``(time, band)``, from the bands of each slice (DN: 1, 0)."""
    table = np.array(
        [[(b.scale or 1.0, b.offset / (b.scale or 1.0), math.nan if b.nodata is None else b.nodata) for b in row]
         for row in rows],
        dtype=dtype,
    )
    return tuple(xr.DataArray(table[..., j], dims=("time", "band"), coords={"time": times}) for j in range(3))


def _decode(raw: xr.DataArray, scale: xr.DataArray, shift: xr.DataArray, nodata: xr.DataArray) -> xr.DataArray:
    """Physical values: nodata to NaN, then ``DN * scale + offset``, computed as ``(DN + offset / scale) * scale``
    so that integer DN are rounded once (DN 1000, scale 1e-4, offset -0.1: 0.0)."""
    return (raw.where(raw != nodata) + shift) * scale


def _mosaic(da: xr.DataArray, groups: list) -> xr.DataArray:
    """Fuse the time slices of each group (first valid value wins, earliest slice first); a group keeps the time of
    its earliest slice. Slices of one group are sub-mosaics of items that decode alike."""
    if len(set(groups)) == len(groups):
        return da
    pieces = []
    for group in dict.fromkeys(groups):
        run = sorted((i for i, g in enumerate(groups) if g == group), key=lambda i: da["time"].values[i])
        pieces.append(reduce(lambda a, b: a.fillna(b.drop_vars("time")), (da.isel(time=i) for i in run)))
    return xr.concat(pieces, dim="time")


def _chunks(n_bands: int, chunks: dict[str, int] | None) -> dict[str, int]:
    """``chunks`` or square spatial chunks (multiple of 256 px, 256..2048) holding all bands in ~128 MiB float32."""
    if chunks is not None:
        return chunks
    side = int(math.sqrt(_CHUNK_BYTES / (4 * n_bands)) // 256 * 256)
    side = min(max(side, 256), 2048)
    return {"x": side, "y": side}


def _check_signed(items: list[pystac.Item], bands: list[Band], patch_url: Any) -> None:
    """Warn when Planetary Computer assets (Azure blob storage) come without a SAS token and no ``patch_url``: every
    read would fail with HTTP 403/409 at compute time."""
    unsigned = [
        item.id for item in items for b in bands[:1]
        if ".blob.core.windows.net/" in item.assets[b.asset].href and "?" not in item.assets[b.asset].href
    ]
    if unsigned and patch_url is None:
        warnings.warn(
            f"{len(unsigned)} item(s) (e.g. {unsigned[0]!r}) point at Planetary Computer storage without a signature: "
            "reading them will fail with HTTP 403. Sign them: search(..., modifier=planetary_computer.sign_inplace) "
            "or load(..., patch_url=planetary_computer.sign).",
            spectral.AnyBandWarning,
            stacklevel=3,
        )


def _odc_load(items: list[pystac.Item], **kwargs: Any) -> xr.Dataset:
    """``odc.stac.load`` with a hint added to its errors (a grid it cannot guess, a bad keyword ...)."""
    try:
        return odc.stac.load(items, **kwargs)
    except ValueError as err:
        ids = [item.id for item in items][:5]
        if "auto-guess" in str(err):
            raise StacLoadError(
                f"odc-stac cannot work out the output grid of items {ids}: they declare no proj:code/proj:epsg with "
                "proj:transform and proj:shape, or do not list the projection extension in stac_extensions. Pass the "
                "grid yourself: crs='EPSG:32633', "
                "resolution=10 (in units of crs), or geobox=/like= an existing grid."
            ) from err
        raise StacLoadError(
            f"odc-stac could not load items {ids}: {err}. Check bands=, crs=/resolution= and the keywords passed on "
            "to odc.stac.load."
        ) from err


def _platform_sensor(item: pystac.Item) -> str | None:
    """SRF library name for the item's ``platform`` and any of its ``instruments`` (e.g. landsat-8 + oli)."""
    platform = item.properties.get("platform") or ""
    instruments = item.properties.get("instruments") or [None]
    return next((name for i in instruments if (name := srf.for_platform(platform, i)) is not None), None)


def _with_srf(da: xr.DataArray, items: list[pystac.Item]) -> xr.DataArray:
    """Attach the library SRF of the items' common platform: ``attrs['sensor']``, ``srf_band``, missing FWHM."""
    names = {_platform_sensor(item) for item in items}
    if len(names) != 1 or None in names:
        return da
    name = names.pop()
    response = srf.get(name)
    centroids = np.asarray(response["centroid"].values, dtype=np.float64)
    widths = np.asarray(response["fwhm"].values, dtype=np.float64)
    labels, filled = [], []
    wl = spectral.wavelengths(da)
    fwhm = spectral.fwhm(da)
    for i, w in enumerate(wl):
        j = int(np.argmin(np.abs(centroids - w)))
        hit = abs(centroids[j] - w) <= max(widths[j] / 2, 10.0)
        labels.append(str(response["band"].values[j]) if hit else "")
        own = np.nan if fwhm is None else fwhm[i]
        filled.append(widths[j] if hit and not np.isfinite(own) else own)
    widths_attrs = {"units": "nm", "long_name": "full width at half maximum"}
    out = da.assign_coords(srf_band=("band", labels), fwhm=("band", np.asarray(filled), widths_attrs))
    return out.assign_attrs(sensor=name)


def _units(items: list[pystac.Item], per_item: list[list[Band]]) -> str | None:
    """The one physical unit of every loaded band (warning about DN and mixed units), or None."""
    raw = sorted({f"{b.asset}" for row in per_item for b in row if b.digital_numbers})
    if raw:
        ids = [item.id for item, row in zip(items, per_item) if any(b.digital_numbers for b in row)]
        warnings.warn(
            f"asset(s) {raw[:10]} of {len(ids)} item(s) (e.g. {ids[0]!r}) declare no scale (no raster:bands scale, "
            "no vendor gain such as enmap:gain_of_band or s2:processing_baseline): their values stay raw digital "
            "numbers (units 'DN'). Convert them with the product's quantification, e.g. da * 1e-4 for a 0-10000 "
            "reflectance product, before repair or indices.",
            DigitalNumberWarning,
            stacklevel=3,
        )
    units = {b.units for row in per_item for b in row}
    if len(units) > 1:
        warnings.warn(
            f"the loaded bands have different units {sorted(map(str, units))}: e.g. a thermal band (kelvin) in a "
            "reflectance cube. Load them separately (bands=[...]) unless you mean to mix them.",
            DigitalNumberWarning,
            stacklevel=3,
        )
        return None
    return units.pop()


def _flag_dn(block: np.ndarray) -> np.ndarray:
    """``block`` unchanged; a ``DigitalNumberWarning`` when a value exceeds 2 (one NaN-skipping pass, no copy)."""
    if block.size and np.fmax.reduce(block, axis=None) > _DN_LIMIT:
        warnings.warn(
            "loaded reflectance values exceed 2 (expected about -0.2..1.5): they look like digital numbers "
            "or percent. Check the items' raster:bands scale (or vendor gain) and rescale, e.g. da * 1e-4.",
            DigitalNumberWarning,
            stacklevel=2,
        )
    return block


def _plausible_widths(bands: list[Band]) -> list[float]:
    """FWHM (µm) of ``bands``, NaN where missing or implausible (wider than a third of the centre wavelength, as in
    Copernicus Data Space items that give 0.342 µm for Sentinel-2 B04), with a warning naming those."""
    wide = [b.name for b in bands if b.fwhm_um is not None and b.fwhm_um > b.wavelength_um / 3]
    if wide:
        warnings.warn(
            f"the items give implausible FWHM for bands {wide[:10]} (wider than a third of the centre wavelength); "
            "ignored them: the sensor's library SRF fills them when the platform is known, else pass fwhm= (nm).",
            spectral.AnyBandWarning,
            stacklevel=3,
        )
    return [math.nan if b.fwhm_um is None or b.name in wide else b.fwhm_um for b in bands]


def load(
    items: Iterable[pystac.Item],
    bands: Sequence[str] | None = None,
    *,
    chunks: dict[str, int] | None = None,
    groupby: str | Callable | None = "time",
    wavelengths: Sequence[float] | None = None,
    fwhm: Sequence[float] | None = None,
    dtype: str | np.dtype = "float32",
    **odc_kwargs: Any,
) -> xr.DataArray:
    """Lazy DataArray ``(time, band, y, x)`` of STAC items, wavelength-labelled in nm, in physical values.

    Every item is decoded with its own scale, offset and nodata (``raster:bands``, STAC 1.1 ``bands``, EnMAP
    ``enmap:gain_of_band``, the Sentinel-2 processing baseline) before a ``groupby`` mosaic; nodata becomes NaN.
    Values without a declared scale stay DN with a ``DigitalNumberWarning``, which also fires when computed
    reflectance values exceed 2. Items of different sensors raise ``MixedSensorsError`` (split with ``by_sensor``).

    Args:
        items: STAC items, e.g. from ``search``.
        bands: asset keys (all bands of a multi-band asset), band names (``B04``) or common names (``red``); default
            every band with a wavelength, skipping previews, masks, error layers and thermal bands.
        chunks: dask chunks, e.g. ``{"x": 1024, "y": 1024}``; default square ~128 MiB chunks with every band.
        groupby: odc-stac's grouping into time slices: ``"time"``, ``"solar_day"``, ``"id"``, an item property
            name or a callable ``(item, parsed, idx) -> key``.
        wavelengths: centre wavelengths in nm, one per loaded band, overriding or supplying the items' own.
        fwhm: full widths at half maximum in nm, one per loaded band.
        dtype: the float dtype of the result (and of odc-stac's read, which turns nodata into NaN).
        **odc_kwargs: passed to ``odc.stac.load``: ``bbox``/``geopolygon``/``intersects`` (crop, degrees for
            ``bbox``), ``crs`` and ``resolution`` (in units of ``crs``; geographic grids keep odc-stac's
            ``latitude``/``longitude`` dims), ``resampling``, ``patch_url`` (URL signing), ``fail_on_error``,
            ``progress``, ``pool``, ``anchor``, ``geobox``, ``like`` ...

    Example:
        >>> items = anyband_xr.stac.search(url, collections="sentinel-2-l2a", bbox=bbox, datetime="2024-06")
        >>> da = anyband_xr.stac.load(items, bands=["red", "nir"], resolution=20, groupby="solar_day")
    """
    items = list(items)
    if not items:
        raise NoItemsError("no items to load: the item list is empty.")
    if given := sorted(set(_NOT_PASSED) & set(odc_kwargs)):
        raise TypeError(f"{given} cannot be passed: load builds odc-stac's stac_cfg and fuses the mosaic itself.")
    per_item = _per_item(items, bands, wavelengths is not None)
    reference = per_item[0] if wavelengths is not None else sorted(per_item[0], key=lambda b: b.wavelength_um)
    keys = [b.key for b in reference]
    per_item = [[{b.key: b for b in row}[k] for k in keys] for row in per_item]
    if wavelengths is not None and len(wavelengths) != len(keys):
        raise BandMetadataError(f"{len(wavelengths)} wavelengths given for {len(keys)} bands {keys}.")
    _check_signed(items, reference, odc_kwargs.get("patch_url"))
    rows = list(dict.fromkeys(tuple((b.scale, b.offset, b.nodata) for b in row) for row in per_item))
    decoding = [rows.index(tuple((b.scale, b.offset, b.nodata) for b in row)) for row in per_item]
    seen: dict[int, tuple] = {}
    dtype = np.dtype(dtype)
    ds = _odc_load(
        items,
        bands=list(dict.fromkeys(b.asset if b.count > 1 else b.key for b in reference)),
        chunks=_chunks(len(keys), chunks),
        groupby=_group_key(groupby, decoding, seen),
        stac_cfg=_multiband_cfg(reference),
        dtype=dtype,
        **odc_kwargs,
    )
    slices = sorted(set(seen.values()))  # odc-stac's time slices, in its order
    first = {key: next(i for i in range(len(items)) if seen[i] == key) for key in slices}
    decoded = _decode(
        _stack(ds, reference, dtype), *_decoding([per_item[first[k]] for k in slices], ds["time"].values, dtype)
    )
    da = _mosaic(decoded, [group for group, _ in slices])
    units = _units(items, per_item)
    if units in (None, "reflectance") and all(b.reflective for b in reference):
        da = da.copy(data=da.data.map_blocks(_flag_dn, dtype=da.dtype))
    y, x = ds.odc.spatial_dims
    da = da.transpose("time", "band", y, x).chunk({"band": -1})
    da = da.assign_coords(
        band=[b.name for b in reference],
        common_name=("band", [b.common_name for b in reference]),
        asset=("band", [b.asset for b in reference]),
    )
    if wavelengths is not None:
        da = spectral.assign_wavelengths(da, wavelengths, fwhm, dim="band")
    else:
        has_widths = any(b.fwhm_um is not None for b in reference)
        widths = _plausible_widths(reference)
        da = spectral.assign_wavelengths(
            da, [b.wavelength_um for b in reference], widths if has_widths else None, dim="band"
        )
    da = _with_srf(spectral.standardize(da), items)
    da.name = "reflectance"
    if units is not None:
        da.attrs["units"] = units
    return da.rio.write_crs(ds.odc.crs.to_wkt()).assign_attrs(stac_items=[item.id for item in items])
