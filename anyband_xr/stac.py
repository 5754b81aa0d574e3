"""STAC search and load: from a STAC API to a lazy, wavelength-labelled DataArray ``(time, band, y, x)``.

``search`` runs an item search over pystac-client, ``load`` reads the items with odc-stac and adds what odc-stac
leaves out: ``wavelength``/``fwhm`` coordinates in nm from ``eo:bands`` (STAC 1.0) or ``bands`` with
``eo:center_wavelength`` (STAC 1.1), band and common names, ``raster:bands`` scale/offset, nodata as NaN, the CRS
for rioxarray and, for a known platform, the library SRF. ``open`` does both.

Example:
    >>> import anyband_xr.stac
    >>> da = anyband_xr.stac.open(
    ...     "https://earth-search.aws.element84.com/v1", collections="sentinel-2-l2a",
    ...     bbox=[11.0, 46.0, 11.1, 46.1], datetime="2024-06", max_items=2, resolution=20,
    ... )
    >>> da.anyband.index("NDVI")
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timezone
from typing import Any

import numpy as np
import odc.stac
import pystac
import rioxarray  # noqa: F401  (registers the .rio accessor used to set the CRS)
import xarray as xr
from pystac_client import Client
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO
from urllib3 import Retry

from anyband_xr import spectral, srf

_CHUNK_BYTES = 128 * 2**20
_TRANSIENT_STATUS = (429, 502, 503, 504)
_SHARED_FIELDS = ("nodata", "data_type", "raster:scale", "raster:offset")


class StacError(RuntimeError):
    """The STAC API could not be reached or answered with an error; the message says what and what to change."""


class NoItemsError(LookupError):
    """A search matched no items; the message repeats what was searched."""


class BandMetadataError(spectral.SpectralAxisError):
    """An asset lacks the band metadata needed for wavelengths; the message names it and how to pass them."""


@dataclass(frozen=True)
class _Band:
    """One band of one asset, as described by an item (wavelengths in µm, as STAC stores them)."""

    asset: str
    index: int
    name: str
    common_name: str
    wavelength_um: float | None
    fwhm_um: float | None
    scale: float
    offset: float
    nodata: float | None
    data_type: str | None
    count: int

    @property
    def key(self) -> str:
        """odc-stac's name for the band: ``<asset>.<1-based index>``."""
        return f"{self.asset}.{self.index}"


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _asset_bands(key: str, asset: pystac.Asset) -> list[_Band]:
    """Bands of ``asset`` from ``eo:bands`` + ``raster:bands`` (STAC 1.0) or ``bands`` (STAC 1.1).

    A single-band asset may carry its band's fields itself; STAC 1.1 raster fields on a multi-band asset
    (``nodata``, ``data_type``, ``raster:scale``, ``raster:offset``) apply to each of its bands.
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

        bands.append(
            _Band(
                asset=key,
                index=i + 1,
                name=str(band.get("name") or (key if count == 1 else f"{key}.{i + 1}")),
                common_name=str(pick("eo:common_name", "common_name") or ""),
                wavelength_um=_float(pick("eo:center_wavelength", "center_wavelength")),
                fwhm_um=_float(pick("eo:full_width_half_max", "full_width_half_max")),
                scale=float(pick("raster:scale", "scale") or 1.0),
                offset=float(pick("raster:offset", "offset") or 0.0),
                nodata=_float(pick("nodata")),
                data_type=pick("data_type"),
                count=count,
            )
        )
    return bands


def _item_bands(item: pystac.Item) -> dict[str, _Band]:
    """Every band of every asset of ``item``, keyed by odc-stac band key."""
    return {b.key: b for key, asset in item.assets.items() for b in _asset_bands(key, asset)}


def _select(item: pystac.Item, bands: Sequence[str] | None, wavelengths_given: bool) -> list[_Band]:
    """The bands to load: those named in ``bands`` (asset key, band name or common name), or all with a wavelength."""
    available = _item_bands(item)
    if bands is None:
        chosen, seen = [], set()
        # Single-band assets first: a 3-band ``visual`` preview repeats wavelengths of the real bands.
        for band in sorted(available.values(), key=lambda b: b.count):
            if band.wavelength_um is not None and band.wavelength_um not in seen:
                chosen.append(band)
                seen.add(band.wavelength_um)
        if not chosen:
            raise BandMetadataError(
                f"item {item.id!r}: no asset carries band wavelengths (assets {sorted(item.assets)}; looked for "
                "eo:bands/center_wavelength and bands/eo:center_wavelength). Pass them by hand, e.g. "
                f"anyband_xr.stac.load(items, bands=[{next(iter(item.assets), 'asset')!r}], wavelengths=[665.0])."
            )
        return chosen
    chosen = []
    for wanted in bands:
        match = [b for b in available.values() if b.asset == wanted]
        match = match or [b for b in available.values() if wanted in (b.name, b.key)]
        match = match or [b for b in available.values() if b.common_name == wanted]
        if not match:
            names = sorted({b.asset for b in available.values()} | {b.name for b in available.values()})
            raise KeyError(f"band {wanted!r} not in item {item.id!r}; available assets and bands: {names[:40]}")
        chosen.extend(match)
    missing = sorted({b.asset for b in chosen if b.wavelength_um is None})
    if missing and not wavelengths_given:
        raise BandMetadataError(
            f"item {item.id!r}: asset(s) {missing} have no band wavelengths (no eo:bands center_wavelength, no "
            "bands eo:center_wavelength). Pass them by hand in nm, one per loaded band: "
            f"anyband_xr.stac.load(items, bands={list(bands)!r}, wavelengths=[...], fwhm=[...])."
        )
    return chosen


def _timestamp(item: pystac.Item) -> np.datetime64:
    when = item.datetime or pystac.utils.str_to_datetime(item.properties["start_datetime"])
    return np.datetime64(when.astimezone(timezone.utc).replace(tzinfo=None), "us")


def _decoding(items: list[pystac.Item], keys: list[str], times: np.ndarray) -> tuple[xr.DataArray, ...]:
    """(scale, offset / scale, nodata), each float32 ``(time, band)``, from the raster fields of each time's items."""
    per_item = {item.id: _item_bands(item) for item in items}
    params: dict[np.datetime64, set[tuple]] = {}
    for item in items:
        row = tuple((b.scale, b.offset / b.scale, b.nodata) for b in (per_item[item.id][k] for k in keys))
        params.setdefault(_timestamp(item), set()).add(row)
    every = set().union(*params.values())
    rows = []
    for t in times:
        found = params.get(np.datetime64(t, "us"), every)
        if len(found) > 1:
            raise ValueError(
                f"items at {t} (or, with groupby, merged into one time) differ in raster:bands scale/offset/nodata; "
                "load them separately (e.g. per processing baseline) or with groupby='time'."
            )
        rows.append(next(iter(found)))
    table = np.array([[[np.nan if v is None else v for v in band] for band in row] for row in rows], dtype=np.float32)
    return tuple(xr.DataArray(table[..., j], dims=("time", "band"), coords={"time": times}) for j in range(3))


def _extra_dim(asset: str) -> str:
    """odc-stac's name for the band axis of a multi-band asset loaded as one 3-D variable."""
    return f"{asset}.band"


def _multiband_cfg(selected: list[_Band]) -> dict[str, Any]:
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


def _stack(ds: xr.Dataset, selected: list[_Band]) -> xr.DataArray:
    """The raw ``selected`` bands of ``ds`` as one float32 ``(time, band, y, x)`` array, in ``selected`` order."""
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
        pieces.append(piece.astype(np.float32).drop_attrs(deep=False))
    return xr.concat(pieces, dim="band", coords="minimal", compat="override", join="override")


def _decode(raw: xr.DataArray, scale: xr.DataArray, shift: xr.DataArray, nodata: xr.DataArray) -> xr.DataArray:
    """Physical float32 values: nodata (and odc-stac's fill) to NaN, then ``DN * scale + offset``, computed as
    ``(DN + offset / scale) * scale`` so that integer DN are rounded once (DN 1000, scale 1e-4, offset -0.1: 0.0)."""
    return (raw.where(raw != nodata) + shift) * scale


def _chunks(n_bands: int, chunks: dict[str, int] | None) -> dict[str, int]:
    """``chunks`` or square spatial chunks (multiple of 256 px, 256..2048) holding all bands in ~128 MiB float32."""
    if chunks is not None:
        return chunks
    side = int(math.sqrt(_CHUNK_BYTES / (4 * n_bands)) // 256 * 256)
    side = min(max(side, 256), 2048)
    return {"x": side, "y": side}


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
    out = da.assign_coords(
        srf_band=("band", labels), fwhm=("band", np.asarray(filled), {"units": "nm", "long_name": "full width at half maximum"})
    )
    return out.assign_attrs(sensor=name)


def load(
    items: Iterable[pystac.Item],
    bands: Sequence[str] | None = None,
    *,
    bbox: Sequence[float] | None = None,
    chunks: dict[str, int] | None = None,
    resolution: float | None = None,
    crs: str | None = None,
    groupby: str = "time",
    wavelengths: Sequence[float] | None = None,
    fwhm: Sequence[float] | None = None,
) -> xr.DataArray:
    """Lazy float32 DataArray ``(time, band, y, x)`` of STAC items, wavelength-labelled in nm.

    ``bands`` names asset keys (all bands of a multi-band asset), band names (``B04``) or common names (``red``);
    by default every band with a wavelength (duplicates, e.g. JPEG2000 copies, once). ``raster:bands`` scale and
    offset are applied and nodata becomes NaN. ``wavelengths``/``fwhm`` (nm, one per loaded band) override or
    supply the band metadata. A multi-band asset (a hyperspectral cube in one COG) is read with one open per
    chunk, not one per band. ``bbox`` (degrees west, south, east, north) crops the load (default: the items'
    whole footprint). ``chunks`` defaults to square x/y chunks of ~128 MiB with every band in one chunk;
    ``resolution`` is in units of ``crs`` (default: the items' own grid). Nothing is computed.

    Example:
        >>> items = anyband_xr.stac.search(url, collections="sentinel-2-l2a", bbox=bbox, datetime="2024-06")
        >>> da = anyband_xr.stac.load(items, bands=["red", "nir"], resolution=20)
    """
    items = list(items)
    if not items:
        raise NoItemsError("no items to load: the item list is empty.")
    selected = _select(items[0], bands, wavelengths is not None)
    if wavelengths is None:
        selected.sort(key=lambda b: b.wavelength_um)  # spectral order, whatever order ``bands`` named them in
    keys = [b.key for b in selected]
    if wavelengths is not None and len(wavelengths) != len(selected):
        raise BandMetadataError(f"{len(wavelengths)} wavelengths given for {len(selected)} bands {keys}.")
    read = list(dict.fromkeys(b.asset if b.count > 1 else b.key for b in selected))
    ds = odc.stac.load(
        items, bands=read, bbox=bbox, chunks=_chunks(len(keys), chunks), resolution=resolution, crs=crs,
        groupby=groupby, stac_cfg=_multiband_cfg(selected),
    )
    da = _decode(_stack(ds, selected), *_decoding(items, keys, ds["time"].values))
    da = da.transpose("time", "band", "y", "x").chunk({"band": -1})
    da = da.assign_coords(
        band=[b.name for b in selected],
        common_name=("band", [b.common_name for b in selected]),
        asset=("band", [b.asset for b in selected]),
    )
    if wavelengths is not None:
        da = spectral.assign_wavelengths(da, wavelengths, fwhm, dim="band")
    else:
        widths = [np.nan if b.fwhm_um is None else b.fwhm_um for b in selected]
        has_widths = any(b.fwhm_um is not None for b in selected)
        da = spectral.assign_wavelengths(
            da, [b.wavelength_um for b in selected], widths if has_widths else None, dim="band"
        )
    da = spectral.standardize(da)
    da = _with_srf(da, items)
    da.name = "reflectance"
    if all("reflectance" in (items[0].assets[b.asset].roles or ()) for b in selected):
        da.attrs["units"] = "reflectance"  # STAC asset role: surface reflectance (lets repair bound values by 1)
    return da.rio.write_crs(ds.odc.crs.to_wkt()).assign_attrs(stac_items=[item.id for item in items])


def _retry(retries: int | Retry) -> Retry:
    """``retries`` as a urllib3 ``Retry``: a count covers connection errors and the transient HTTP 429/502/503/504
    of every request (GET and POST), backing off exponentially (0, 1, 2, 4 ... s)."""
    if isinstance(retries, Retry):
        return retries
    return Retry(
        total=retries, backoff_factor=0.5, status_forcelist=_TRANSIENT_STATUS, allowed_methods=None,
        raise_on_status=False,
    )


def _client(url: str, timeout: float, retries: int | Retry) -> Client:
    try:
        # Client.open passes its own ``timeout`` to the StacApiIO (None would erase ours), so give it there.
        return Client.open(url, stac_io=StacApiIO(max_retries=_retry(retries)), timeout=timeout)
    except APIError as err:
        raise StacError(_explain(err, url, "opening the landing page", timeout, retries)) from err


def _explain(err: APIError, url: str, during: str, timeout: float, retries: int | Retry) -> str:
    status = getattr(err, "status_code", None)
    text = str(err).strip()[:300]
    if status is not None:
        return f"STAC API {url} answered HTTP {status} while {during}: {text}. Retry later or narrow the search."
    if "timed out" in text.lower() or "timeout" in text.lower():
        return f"STAC API {url} did not answer within timeout={timeout} s while {during}; raise timeout= or retries=."
    return (
        f"cannot reach STAC API {url} while {during} ({text}). Check the URL and your network; "
        f"retries={retries}, timeout={timeout} s can be raised."
    )


def search(
    url: str,
    *,
    collections: str | Sequence[str] | None = None,
    bbox: Sequence[float] | None = None,
    datetime: str | None = None,
    ids: Sequence[str] | None = None,
    max_items: int | None = 100,
    page_size: int | None = None,
    timeout: float = 30.0,
    retries: int | Retry = 3,
) -> pystac.ItemCollection:
    """Items of a STAC API item search (``bbox`` in degrees west, south, east, north; ``datetime`` RFC 3339 or range).

    ``retries`` (count or ``urllib3.Retry``) covers connection errors and HTTP 429/502/503/504 of each request,
    ``timeout`` (s) each request's connect and read. Raises ``StacError`` naming the failing request,
    ``NoItemsError`` when nothing matched.

    Example:
        >>> items = anyband_xr.stac.search("http://127.0.0.1:7822", collections="sentinel-2-l2a", max_items=5)
    """
    collections = [collections] if isinstance(collections, str) else collections
    client = _client(url, timeout, retries)
    query = dict(collections=collections, bbox=bbox, datetime=datetime, ids=ids, max_items=max_items, limit=page_size)
    found: list[pystac.Item] = []
    page = 0
    try:
        for page, batch in enumerate(client.search(**query).pages(), start=1):
            found.extend(batch)
    except APIError as err:
        during = f"fetching page {page + 1} of the search results (after {len(found)} items)"
        raise StacError(_explain(err, url, during, timeout, retries)) from err
    if not found:
        searched = ", ".join(f"{k}={v!r}" for k, v in query.items() if v is not None and k != "limit")
        raise NoItemsError(f"no items found at {url} for {searched or 'an unrestricted search'}.")
    return pystac.ItemCollection(found)


def open(  # noqa: A001  (anyband_xr.stac.open reads like xarray.open_dataset)
    url: str,
    *,
    collections: str | Sequence[str] | None = None,
    bbox: Sequence[float] | None = None,
    datetime: str | None = None,
    ids: Sequence[str] | None = None,
    max_items: int | None = 100,
    bands: Sequence[str] | None = None,
    chunks: dict[str, int] | None = None,
    resolution: float | None = None,
    crs: str | None = None,
    timeout: float = 30.0,
    retries: int | Retry = 3,
) -> xr.DataArray:
    """``search`` then ``load``: a lazy wavelength-labelled DataArray ``(time, band, y, x)`` from a STAC API,
    cropped to ``bbox`` (degrees west, south, east, north) when given.

    Example:
        >>> da = anyband_xr.stac.open("http://127.0.0.1:7822", collections="sentinel-2-stac10", bands=["red", "nir"])
    """
    items = search(
        url, collections=collections, bbox=bbox, datetime=datetime, ids=ids, max_items=max_items,
        timeout=timeout, retries=retries,
    )
    return load(items, bands, bbox=bbox, chunks=chunks, resolution=resolution, crs=crs)
