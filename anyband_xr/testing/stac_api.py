"""A real STAC API on 127.0.0.1 over COGs of real scenes, for the tests, the STAC notebook and offline demos.

``write_catalog(folder)`` writes COGs made from real scenes (the bundled AVIRIS Jasper Ridge cube and spyndex's
Sentinel-2 10 m sample) plus STAC collections/items that reference them as ``file://`` URIs;
``RustacServer(hrefs)`` serves those files with rustac's in-memory backend (``pip install rustac``) on a free
port. Nothing is downloaded.

Example:
    >>> hrefs = write_catalog(tmp_path)
    >>> with RustacServer(hrefs) as server:
    ...     da = anyband_xr.stac.open(server.url, collections="jasper-ridge-hsi")
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.transform import from_origin

# AVIRIS Jasper Ridge (California, UTM 10N, 20 m): a plausible grid, the scene ships without one.
JASPER_CRS, JASPER_TRANSFORM = "EPSG:32610", from_origin(567_000.0, 4_142_000.0, 20.0, 20.0)
JASPER_SCALE, JASPER_OFFSET, JASPER_NODATA = 1e-4, -0.1, -9999
# spyndex's Sentinel-2 sample has no georeference either: a plausible UTM 33N 10 m grid.
S2_CRS, S2_TRANSFORM = "EPSG:32633", from_origin(399_960.0, 5_000_040.0, 10.0, 10.0)
S2_SCALE, S2_NODATA = 1e-4, 0
# Sentinel-2A MSI centre wavelength / FWHM in µm (ESA S2-SRF v3.0), keyed by band name.
S2A_BANDS = {
    "B02": ("blue", 0.4924, 0.066),
    "B03": ("green", 0.5598, 0.036),
    "B04": ("red", 0.6646, 0.031),
    "B08": ("nir", 0.8328, 0.106),
}
HSI_COLLECTION, HSI_V11_COLLECTION, S2_COLLECTION, S2_V11_COLLECTION, NO_META_COLLECTION = (
    "jasper-ridge-hsi",
    "jasper-ridge-hsi-stac11",
    "sentinel-2-stac10",
    "sentinel-2-stac11",
    "no-band-metadata",
)
STAC11_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v2.0.0/schema.json",
    "https://stac-extensions.github.io/raster/v2.0.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
]
HSI_DATE, HSI_PROPS = "2024-06-01T18:00:00Z", {"platform": "aviris", "instruments": ["aviris"]}
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
S2_DATES = ("2024-06-01T10:00:00Z", "2024-06-11T10:00:00Z")
_STARTUP_S = 20.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def jasper_dn() -> tuple[np.ndarray, np.ndarray]:
    """Jasper Ridge as stored in the COG: int16 DN (band, y, x) with a 3x3 nodata corner, and wavelengths (nm)."""
    from anyband_xr.datasets import jasper_ridge

    da = jasper_ridge()
    dn = np.round((da.values.astype(np.float64) - JASPER_OFFSET) / JASPER_SCALE).astype(np.int16)
    dn[:, :3, :3] = JASPER_NODATA
    return dn, da["wavelength"].values


def s2_dn() -> dict[str, np.ndarray]:
    """spyndex's real Sentinel-2 10 m sample as uint16 DN (y, x) per band name (B02, B03, B04, B08)."""
    import spyndex

    da = spyndex.datasets.open("sentinel").transpose("band", "y", "x")
    return {str(name): da.sel(band=name).values.astype(np.uint16) for name in da["band"].values}


def _write_cog(path: Path, data: np.ndarray, crs: str, transform, nodata: float | None, blocksize: int = 128) -> None:
    """Write ``data`` (band, y, x) as a Cloud-Optimised GeoTIFF (GDAL's default pixel interleave; 128 px blocks by
    default, as the 512 px default would make every read of a 100 px scene decompress 26 times its pixels)."""
    profile = dict(driver="COG", count=data.shape[0], height=data.shape[1], width=data.shape[2], blocksize=blocksize)
    profile.update(dtype=data.dtype.name, crs=crs, transform=transform, compress="deflate")
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def _bbox(crs: str, transform, shape: tuple[int, int]) -> list[float]:
    from rasterio.warp import transform_bounds

    left, top = transform.c, transform.f
    right, bottom = left + transform.a * shape[1], top + transform.e * shape[0]
    return list(transform_bounds(crs, "EPSG:4326", left, bottom, right, top))


def _footprint(crs: str, transform, shape: tuple[int, int]) -> dict:
    """GeoJSON polygon (EPSG:4326) of the grid's four corners."""
    from rasterio.warp import transform as reproject_points

    cols, rows = [0, shape[1], shape[1], 0, 0], [0, 0, shape[0], shape[0], 0]
    xs, ys = zip(*(transform * (c, r) for c, r in zip(cols, rows)))
    lons, lats = reproject_points(crs, "EPSG:4326", list(xs), list(ys))
    return {"type": "Polygon", "coordinates": [[list(p) for p in zip(lons, lats)]]}


def _item(item_id: str, collection: str, when: str, crs: str, transform, shape, assets, props=None) -> dict:
    bbox = _bbox(crs, transform, shape)
    west, south, east, north = bbox
    polygon = [[[west, south], [east, south], [east, north], [west, north], [west, south]]]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
        ],
        "id": item_id,
        "collection": collection,
        "geometry": {"type": "Polygon", "coordinates": polygon},
        "bbox": bbox,
        "properties": {
            "datetime": when,
            "proj:epsg": int(crs.split(":")[1]),
            "proj:shape": list(shape),
            "proj:transform": list(transform)[:6],
            **(props or {}),
        },
        "links": [],
        "assets": assets,
    }


def _collection(collection_id: str, description: str, bbox: list[float]) -> dict:
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": collection_id,
        "description": description,
        "license": "other",
        "links": [],
        "extent": {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [["2024-01-01T00:00:00Z", None]]}},
    }


def hyperspectral_item(path: Path, dn: np.ndarray, wl_nm: np.ndarray, blocksize: int = 128) -> dict:
    """Write ``dn`` (band, y, x; int16 DN on the Jasper Ridge grid) as one COG at ``path``; return its STAC 1.0
    item (``jasper-ridge`` in ``jasper-ridge-hsi``): ``eo:bands`` in µm and ``raster:bands`` scale/offset/nodata."""
    _write_cog(path, dn, JASPER_CRS, JASPER_TRANSFORM, JASPER_NODATA, blocksize)
    raster = {"data_type": "int16", "nodata": JASPER_NODATA, "scale": JASPER_SCALE, "offset": JASPER_OFFSET}
    asset = {
        "href": path.as_uri(),
        "type": COG_TYPE,
        "roles": ["data", "reflectance"],
        "eo:bands": [{"name": f"B{i + 1:03d}", "center_wavelength": round(w / 1000, 6)} for i, w in enumerate(wl_nm)],
        "raster:bands": [raster] * len(wl_nm),
    }
    args = (HSI_DATE, JASPER_CRS, JASPER_TRANSFORM, dn.shape[1:])
    return _item("jasper-ridge", HSI_COLLECTION, *args, {"reflectance": asset}, HSI_PROPS)


def _hyperspectral_v11_item(hsi_item: dict, shape: tuple[int, int]) -> dict:
    """The STAC 1.1 (``bands``) description of the same hyperspectral COG as ``hsi_item``."""
    hsi_fields = {k: v for k, v in hsi_item["assets"]["reflectance"].items() if k in ("href", "type", "roles")}
    names_um = [(b["name"], b["center_wavelength"]) for b in hsi_item["assets"]["reflectance"]["eo:bands"]]
    hsi_v11 = {
        **hsi_fields,
        "data_type": "int16",
        "nodata": JASPER_NODATA,
        "bands": [
            {"name": name, "eo:center_wavelength": um, "raster:scale": JASPER_SCALE, "raster:offset": JASPER_OFFSET}
            for name, um in names_um
        ],
    }
    hsi_args = (HSI_DATE, JASPER_CRS, JASPER_TRANSFORM, shape)
    return _stac11(_item("jasper-ridge-v11", HSI_V11_COLLECTION, *hsi_args, {"reflectance": hsi_v11}, HSI_PROPS))


def _sentinel2_items(folder: Path) -> tuple[dict[str, Path], tuple[int, int], list[dict], list[dict]]:
    """Per-band Sentinel-2 COGs under ``folder`` and their STAC 1.0 and 1.1 items, one of each per date:
    (COG paths by band, raster shape, STAC 1.0 items, STAC 1.1 items)."""
    bands = s2_dn()
    s2_shape = next(iter(bands.values())).shape
    s2_paths = {}
    for name, values in bands.items():
        s2_paths[name] = folder / f"s2_{name}.tif"
        _write_cog(s2_paths[name], values[None], S2_CRS, S2_TRANSFORM, S2_NODATA)
    s2_items, s2_v11_items = [], []
    for day, when in enumerate(S2_DATES):
        v10, v11 = {}, {}
        for name, (common, wl, width) in S2A_BANDS.items():
            common_fields = {"href": s2_paths[name].as_uri(), "type": COG_TYPE, "roles": ["data", "reflectance"]}
            v10[common] = {
                **common_fields,
                "eo:bands": [
                    {"name": name, "common_name": common, "center_wavelength": wl, "full_width_half_max": width}
                ],
                "raster:bands": [{"data_type": "uint16", "nodata": S2_NODATA, "scale": S2_SCALE, "offset": 0.0}],
            }
            v11[common] = {
                **common_fields,
                "bands": [{
                    "name": common, "eo:common_name": common, "eo:center_wavelength": wl, "nodata": S2_NODATA,
                    "data_type": "uint16", "raster:scale": S2_SCALE, "raster:offset": 0.0,
                }],
            }
        props = {"platform": "sentinel-2a", "instruments": ["msi"], "constellation": "sentinel-2"}
        s2_items.append(_item(f"s2-{day}", S2_COLLECTION, when, S2_CRS, S2_TRANSFORM, s2_shape, v10, props))
        s2_v11_items.append(
            _stac11(_item(f"s2-v11-{day}", S2_V11_COLLECTION, when, S2_CRS, S2_TRANSFORM, s2_shape, v11, props))
        )
    return s2_paths, s2_shape, s2_items, s2_v11_items


def write_catalog(folder: str | Path) -> list[str]:
    """Write the COGs, collections and items under ``folder``; return the files for ``RustacServer``.

    Collections: ``jasper-ridge-hsi`` (one 198-band int16 COG, EnMAP/EMIT-style, STAC 1.0 ``eo:bands`` +
    ``raster:bands`` with scale 1e-4, offset -0.1, nodata -9999), ``jasper-ridge-hsi-stac11`` (the same COG described
    with STAC 1.1 ``bands``), ``sentinel-2-stac10`` (two dates of per-band uint16 COGs, band names ``B02``...,
    STAC 1.0 ``eo:bands``), ``sentinel-2-stac11`` (the same COGs in STAC 1.1 ``bands``, named by common name as
    Earth Search does, no FWHM) and ``no-band-metadata`` (a COG with neither).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dn, wl_nm = jasper_dn()
    hsi_item = hyperspectral_item(folder / "jasper_ridge.tif", dn, wl_nm)
    hsi_v11_item = _hyperspectral_v11_item(hsi_item, dn.shape[1:])
    s2_paths, s2_shape, s2_items, s2_v11_items = _sentinel2_items(folder)
    bare = {"href": s2_paths["B04"].as_uri(), "type": COG_TYPE, "roles": ["data"]}
    bare_item = _item("no-meta", NO_META_COLLECTION, S2_DATES[0], S2_CRS, S2_TRANSFORM, s2_shape, {"data": bare})

    hsi_bbox, s2_bbox = hsi_item["bbox"], s2_items[0]["bbox"]
    collections = [
        _collection(HSI_COLLECTION, "AVIRIS Jasper Ridge, 198 bands in one COG, STAC 1.0 eo:bands", hsi_bbox),
        _collection(HSI_V11_COLLECTION, "AVIRIS Jasper Ridge, 198 bands in one COG, STAC 1.1 bands", hsi_bbox),
        _collection(S2_COLLECTION, "Sentinel-2 sample, STAC 1.0 eo:bands", s2_bbox),
        _collection(S2_V11_COLLECTION, "Sentinel-2 sample, STAC 1.1 bands", s2_bbox),
        _collection(NO_META_COLLECTION, "a COG without band metadata", s2_bbox),
    ]
    hrefs = []
    for collection in collections:
        path = folder / f"collection-{collection['id']}.json"
        path.write_text(json.dumps(collection))
        hrefs.append(str(path))
    items_path = folder / "items.json"
    features = [hsi_item, hsi_v11_item, *s2_items, *s2_v11_items, bare_item]
    items_path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return [*hrefs, str(items_path)]


def _item_crs(item: dict, asset: dict) -> str:
    """The CRS an item or asset declares (``proj:code``/``proj:epsg``), else EPSG:4326."""
    for fields in (asset, item["properties"]):
        if fields.get("proj:code"):
            return str(fields["proj:code"])
        if fields.get("proj:epsg"):
            return f"EPSG:{fields['proj:epsg']}"
    return "EPSG:4326"


def localize(
    item: dict,
    folder: str | Path,
    dn: dict[str, np.ndarray],
    collection: str,
    extent: float = 480.0,
    shift: tuple[float, float] = (0.0, 0.0),
) -> dict:
    """``item`` (a real STAC item's JSON) with the assets in ``dn`` written as small local COGs and pointed at them.

    Every vendor field stays as published; only what must follow the local files changes: each written asset's
    ``href``, ``proj:shape`` and (when the item declares one) ``proj:transform``, the item's ``geometry``, ``bbox``,
    ``proj:shape``/``proj:transform``, ``collection`` and ``links``. The COGs keep the asset's CRS, pixel size and
    upper-left corner (moved by ``shift``, metres or degrees east and north), cover ``extent`` (same units) square
    and hold ``dn[asset]`` (band, y, x), whose shape must be ``extent / pixel size`` on each side.

    Example:
        >>> local = localize(json.loads(path.read_text()), tmp, {"red": np.full((1, 48, 48), 1200, np.uint16)}, "s2")
    """
    folder = Path(folder) / item["id"]
    folder.mkdir(parents=True, exist_ok=True)
    item = json.loads(json.dumps(item))
    footprint = None
    for key, values in dn.items():
        asset = item["assets"][key]
        crs = _item_crs(item, asset)
        declared = asset.get("proj:transform") or item["properties"].get("proj:transform")
        size = extent / values.shape[-1]
        if declared:
            west, north = declared[2] + shift[0], declared[5] + shift[1]
        else:
            from rasterio.warp import transform as reproject_points

            xs, ys = reproject_points("EPSG:4326", crs, [item["bbox"][0]], [item["bbox"][3]])
            west, north = xs[0] // size * size + shift[0], -(-ys[0] // size) * size + shift[1]
        transform = from_origin(west, north, size, size)
        described = [*asset.get("raster:bands", []), *asset.get("bands", []), asset]
        nodata = next((b["nodata"] for b in described if b.get("nodata") is not None), None)
        path = folder / f"{key}.tif"
        _write_cog(path, values, crs, transform, nodata, blocksize=16)
        asset["href"] = path.as_uri()
        asset["proj:shape"] = list(values.shape[1:])
        if "proj:transform" in asset:
            asset["proj:transform"] = list(transform)[:6]
        footprint = footprint or (crs, transform, values.shape[1:])
    crs, transform, shape = footprint
    if "proj:transform" in item["properties"]:
        item["properties"]["proj:transform"] = list(transform)[:6]
        item["properties"]["proj:shape"] = list(shape)
    item["bbox"] = _bbox(crs, transform, shape)
    item["geometry"] = _footprint(crs, transform, shape)
    item["collection"] = collection
    item["links"] = []
    return item


def write_items(folder: str | Path, items: list[dict]) -> list[str]:
    """Write ``items`` (item JSON dicts) and one collection per ``collection`` id under ``folder``; return the files
    for ``RustacServer``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    hrefs = []
    for name in sorted({item["collection"] for item in items}):
        bbox = [min(i["bbox"][0] for i in items), min(i["bbox"][1] for i in items),
                max(i["bbox"][2] for i in items), max(i["bbox"][3] for i in items)]
        path = folder / f"collection-{name}.json"
        path.write_text(json.dumps(_collection(name, f"real item layouts: {name}", bbox)))
        hrefs.append(str(path))
    items_path = folder / "items.json"
    items_path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    return [*hrefs, str(items_path)]


def _stac11(item: dict) -> dict:
    """``item`` declared as STAC 1.1 (eo v2, raster v2)."""
    return {**item, "stac_version": "1.1.0", "stac_extensions": STAC11_EXTENSIONS}


def _rustac_command() -> list[str]:
    """The ``rustac`` console script next to this interpreter (rustac's CLI reads the real process argv)."""
    local = Path(sys.executable).with_name("rustac")
    found = str(local) if local.exists() else shutil.which("rustac")
    if found is None:
        raise RuntimeError("the rustac CLI is not installed: pip install rustac")
    return [found]


def wait_ready(url: str, deadline_s: float, process: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers 200 or ``deadline_s`` seconds pass (then raise, with the process's output)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode}: {process.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {deadline_s} s")


class RustacServer:
    """``rustac serve`` (in-memory backend) on a free 127.0.0.1 port, serving ``hrefs``; stopped by PID on exit."""

    def __init__(self, hrefs: list[str], port: int | None = None) -> None:
        self.hrefs, self.port = hrefs, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> RustacServer:
        """Start the process and wait until the landing page answers."""
        command = [*_rustac_command(), "serve", "--addr", f"127.0.0.1:{self.port}", *self.hrefs]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_ready(self.url + "/", _STARTUP_S, self.process)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate the process by PID (kill if it does not exit within 5 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process.stdout.close()

    def __enter__(self) -> RustacServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
