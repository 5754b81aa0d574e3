"""anyband_xr.stac against a real local STAC API (rustac serve, in-memory backend) over COGs of real scenes."""

from __future__ import annotations

import json
import socket
import threading
import warnings
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pystac
import pytest
import xarray as xr
from rasterio.warp import transform_bounds
from failing_proxy import FailingProxy
from helpers import count_dask_computes

from anyband_xr import repair as repair_module
from anyband_xr import srf, stac
from anyband_xr.datasets import jasper_ridge
from anyband_xr.srf import observation_responses
from anyband_xr.io.zarr import open_zarr, write_zarr
from anyband_xr.scale import repair_zarr
from anyband_xr.testing.stac_api import (
    HSI_COLLECTION,
    HSI_V11_COLLECTION,
    JASPER_CRS,
    JASPER_NODATA,
    JASPER_OFFSET,
    JASPER_SCALE,
    JASPER_TRANSFORM,
    NO_META_COLLECTION,
    S2_COLLECTION,
    S2_V11_COLLECTION,
    S2A_BANDS,
    RustacServer,
    free_port,
    jasper_dn,
    localize,
    s2_dn,
    write_items,
)

S2_NM = [wl * 1000 for _, wl, _ in S2A_BANDS.values()]


def jasper_expected() -> np.ndarray:
    """The COG's physical values (band, y, x): DN * scale + offset, NaN at nodata."""
    dn, _ = jasper_dn()
    return np.where(dn == JASPER_NODATA, np.nan, dn * JASPER_SCALE + JASPER_OFFSET)


def test_hyperspectral_cog_round_trip(stac_api: str) -> None:
    with count_dask_computes() as counter:
        da = stac.open(stac_api, collections=HSI_COLLECTION)
        ndvi = da.anyband.index("NDVI")
        # Repair needs an observed band in every pixel: leave out the 3x3 nodata corner.
        mask = xr.DataArray(np.arange(198) % 3 == 1, dims="band")
        repaired = da.isel(y=slice(3, None)).anyband.repair(mask, method="linear")
    assert counter.count == 0
    dn, wl_nm = jasper_dn()
    assert da.dims == ("time", "band", "y", "x") and da.shape == (1, 198, 100, 100)
    assert da.dtype == np.float32 and da.chunks[1] == (198,)
    np.testing.assert_allclose(da["wavelength"].values, wl_nm, atol=1e-3)
    assert da["wavelength"].attrs["units"] == "nm"
    values = da.values[0]
    np.testing.assert_allclose(values, jasper_expected(), atol=1e-6)
    assert (values[dn == 1000] == 0.0).all()  # DN 1000 * 1e-4 - 0.1 is zero reflectance, not a rounding residue
    assert np.isnan(values[:, :3, :3]).all() and not np.isnan(values[:, 3:, 3:]).any()
    assert da.rio.crs.to_epsg() == 32610
    assert da.rio.resolution() == (20.0, -20.0)
    assert da.anyband.spectral_dim == "band" and da.attrs["units"] == "reflectance"

    # index and repair work on the loaded DataArray as on the bundled scene it was written from.
    source = jasper_ridge()
    source_ndvi = source.anyband.index("NDVI")
    assert ndvi.dims == ("time", "y", "x") and ndvi.attrs["bands_used"] == source_ndvi.attrs["bands_used"]
    np.testing.assert_allclose(ndvi.values[0, 3:, 3:], source_ndvi.values[3:, 3:], atol=1e-6)
    expected = source.anyband.repair(mask.rename(band="wavelength"), method="linear").values[:, 3:]
    out = repaired.values[0]
    np.testing.assert_allclose(out, expected, atol=1e-6)
    observed = ~mask.values
    np.testing.assert_array_equal(out[observed], values[observed, 3:])


def test_multiband_stac11_bands_subset_and_resampling(stac_api: str) -> None:
    items = stac.search(stac_api, collections=HSI_V11_COLLECTION)
    da = stac.load(items)
    _, wl_nm = jasper_dn()
    np.testing.assert_allclose(da["wavelength"].values, wl_nm, atol=1e-3)
    np.testing.assert_allclose(da.values[0], jasper_expected(), atol=1e-6)
    subset = stac.load(items, bands=["B100", "B010"])
    assert subset["band"].values.tolist() == ["B010", "B100"]
    np.testing.assert_allclose(subset.values[0], jasper_expected()[[9, 99]], atol=1e-6)
    coarse = stac.load(items, resolution=40)
    assert coarse.shape == (1, 198, 50, 50)
    np.testing.assert_allclose(coarse.values[0], jasper_expected()[:, 1::2, 1::2], atol=1e-6)  # nearest: centres


def test_bbox_crops_the_load(stac_api: str) -> None:
    west, north = JASPER_TRANSFORM * (30, 20)  # pixel corner (col 30, row 20); a 40 x 40 px window from there
    bbox = transform_bounds(JASPER_CRS, "EPSG:4326", west, north - 800.0, west + 800.0, north)
    da = stac.open(stac_api, collections=HSI_COLLECTION, bbox=bbox)
    cols, rows = ~JASPER_TRANSFORM * np.meshgrid(da["x"].values, da["y"].values)  # pixel centres -> (i + 0.5)
    cols, rows = np.floor(cols).astype(int), np.floor(rows).astype(int)
    assert 40 <= da.sizes["x"] < 50 and 40 <= da.sizes["y"] < 50
    assert cols.min() <= 30 and rows.min() <= 20 and cols.max() >= 69 and rows.max() >= 59
    np.testing.assert_allclose(da.values[0], jasper_expected()[:, rows, cols], atol=1e-6)


def test_open_rejects_an_unknown_keyword_before_any_request() -> None:
    """open takes every keyword of search and of load; any other is named with a close match and the valid ones."""
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: the error must come before the search
    with pytest.raises(TypeError, match=r"'resolutoin'.*did you mean 'resolution'.*every keyword of search") as err:
        stac.open(url, collections=S2_COLLECTION, resolutoin=20)
    for valid in ("collections", "query", "page_size", "headers", "crs", "resolution", "groupby", "wavelengths", "nodata"):
        assert valid in str(err.value)


def test_sentinel2_stac10_eo_bands(stac_api: str) -> None:
    da = stac.open(stac_api, collections=S2_COLLECTION, max_items=10)
    assert da.sizes["time"] == 2
    assert da["band"].values.tolist() == list(S2A_BANDS)
    assert da["common_name"].values.tolist() == ["blue", "green", "red", "nir"]
    np.testing.assert_allclose(da["wavelength"].values, S2_NM)
    np.testing.assert_allclose(da["fwhm"].values, [w * 1000 for *_, w in S2A_BANDS.values()])
    source = np.stack(list(s2_dn().values())) * 1e-4
    np.testing.assert_allclose(da.isel(time=1).values, source, rtol=1e-6)
    assert da.rio.crs.to_epsg() == 32633


def test_sentinel2_stac11_bands_and_selection(stac_api: str) -> None:
    items = stac.search(stac_api, collections=[S2_V11_COLLECTION], ids=["s2-v11-1"])
    assert [item.id for item in items] == ["s2-v11-1"]
    da = stac.load(items, bands=["nir", "red"])
    assert da["band"].values.tolist() == ["red", "nir"]
    np.testing.assert_allclose(da["wavelength"].values, [S2_NM[2], S2_NM[3]])
    source = s2_dn()
    np.testing.assert_allclose(da.isel(time=0).values, np.stack([source["B04"], source["B08"]]) * 1e-4, rtol=1e-6)


def test_sensor_srf_attached_for_known_platform(stac_api: str) -> None:
    da = stac.open(stac_api, collections=S2_V11_COLLECTION)  # Earth Search style: bands named "blue" ... "nir"
    library = srf.get("sentinel-2a")
    assert da.attrs["sensor"] == "sentinel-2a"
    assert da["srf_band"].values.tolist() == ["B02", "B03", "B04", "B08"]
    np.testing.assert_allclose(da["fwhm"].values, library["fwhm"].sel(band=["B02", "B03", "B04", "B08"]).values)
    responses = observation_responses(da)  # what generate (and its SRF-consistency guidance) uses
    xr.testing.assert_equal(responses, library.sel(band=["B02", "B03", "B04", "B08"]))
    ndvi = da.anyband.index("NDVI")
    assert ndvi.attrs["bands_used"] == {"N": "nir (832.8 nm)", "R": "red (664.6 nm)"}


def test_repair_guides_with_the_sensor_srf(stac_api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    da = stac.open(stac_api, collections=S2_V11_COLLECTION, ids=["s2-v11-0"]).isel(y=slice(0, 32), x=slice(0, 32))
    seen = []
    run_blocks = repair_module.run_blocks
    monkeypatch.setattr(repair_module, "run_blocks", lambda *a, **k: seen.append(k["responses"]) or run_blocks(*a, **k))
    red = da["band"] == "red"
    out = da.anyband.repair(red, method="diffusion", steps=2, tile=32, overlap=0)
    xr.testing.assert_equal(seen[0], srf.get("sentinel-2a").sel(band=["B02", "B03", "B04", "B08"]))
    values = out.values
    assert np.isfinite(values).all()
    np.testing.assert_array_equal(values[:, ~red.values], da.values[:, ~red.values])


def test_search_filters_and_paging(stac_api: str) -> None:
    paged = stac.search(stac_api, collections=S2_COLLECTION, page_size=1)
    assert sorted(item.id for item in paged) == ["s2-0", "s2-1"]
    dated = stac.search(stac_api, collections=S2_COLLECTION, datetime="2024-06-10/2024-06-12")
    assert [item.id for item in dated] == ["s2-1"]
    near = stac.search(stac_api, bbox=[-122.3, 37.3, -122.1, 37.5])
    assert sorted(item.id for item in near) == ["jasper-ridge", "jasper-ridge-v11"]
    assert len(stac.search(stac_api, collections=S2_COLLECTION, max_items=1)) == 1


def test_wavelengths_by_hand_for_bare_asset(stac_api: str) -> None:
    items = stac.search(stac_api, collections=NO_META_COLLECTION)
    with pytest.raises(stac.BandMetadataError, match=r"'no-meta'.*\['data'\].*wavelengths="):
        stac.load(items)
    da = stac.load(items, bands=["data"], wavelengths=[664.6], fwhm=[31.0])
    np.testing.assert_allclose(da["wavelength"].values, [664.6])
    assert float(da.isel(time=0, band=0, y=0, x=0)) == float(s2_dn()["B04"][0, 0])


def test_no_items_says_what_was_searched(stac_api: str) -> None:
    with pytest.raises(stac.NoItemsError, match=r"collections=\['sentinel-2-stac10'\].*datetime='1999-01-01'"):
        stac.search(stac_api, collections=S2_COLLECTION, datetime="1999-01-01")


def test_server_down() -> None:
    with pytest.raises(stac.StacError, match="cannot reach STAC API.*retries=0"):
        stac.search(f"http://127.0.0.1:{free_port()}", collections=S2_COLLECTION, retries=0, timeout=2)


def test_http_500_on_second_page(stac_api: str) -> None:
    with FailingProxy(stac_api, fail_on=2) as proxy:
        with pytest.raises(stac.StacError, match=r"HTTP 500 while fetching page 2 .*after 1 items"):
            stac.search(proxy.url, collections=S2_COLLECTION, page_size=1)
    assert proxy.search_requests == 2


def test_transient_503_is_retried(stac_api: str) -> None:
    with FailingProxy(stac_api, fail_on=1, status=503) as proxy:
        items = stac.search(proxy.url, collections=S2_COLLECTION)
    assert sorted(item.id for item in items) == ["s2-0", "s2-1"] and proxy.search_requests == 2
    with FailingProxy(stac_api, fail_on=1, status=503) as proxy:
        with pytest.raises(stac.StacError, match=r"HTTP 503 while fetching page 1"):
            stac.search(proxy.url, collections=S2_COLLECTION, retries=0)


def test_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(stac.StacError, match=r"within timeout=0.3 s"):
            stac.search(url, retries=0, timeout=0.3)


@pytest.mark.parametrize(
    ("platform", "instruments", "sensor"),
    [
        ("sentinel-2a", ["msi"], "sentinel-2a"),
        ("sentinel-2b", ["msi"], "sentinel-2b"),
        ("sentinel-2c", ["msi"], "sentinel-2c"),
        ("landsat-8", ["tirs", "oli"], "landsat-8-oli"),
        ("LANDSAT_9", ["OLI", "TIRS"], "landsat-9-oli2"),
        ("aviris", ["aviris"], None),
    ],
)
def test_platform_to_library_sensor(platform: str, instruments: list[str], sensor: str | None) -> None:
    item = pystac.Item("x", None, None, datetime(2024, 6, 1), {"platform": platform, "instruments": instruments})
    assert stac.loading._platform_sensor(item) == sensor


# --- Real item layouts (tests/data/stac_items, see its README) over local COGs with known DN --------------------

ITEMS = Path(__file__).parent / "data" / "stac_items"
JP2_DN = 60000  # what a wrongly chosen JPEG2000 twin, preview or duplicate resolution holds
LE07_SR = ["blue", "green", "red", "nir08", "swir16", "swir22"]


def pattern(count: int, n: int, base: int, dtype=np.uint16) -> np.ndarray:
    """Known DN (band, y, x): ``base + 10 * band + y + x``."""
    b, y, x = np.mgrid[:count, :n, :n]
    return (base + 10 * b + y + x).astype(dtype)


def finite(values: np.ndarray) -> np.ndarray:
    """``values`` (..., y, x) cropped to the rows and columns with a finite value (a grid that odc-stac snapped to
    its resolution can have a NaN edge around the item)."""
    valid = np.isfinite(values).reshape(-1, *values.shape[-2:]).any(axis=0)
    return values[..., valid.any(axis=1), :][..., valid.any(axis=0)]


def real(name: str) -> dict:
    return json.loads((ITEMS / name).read_text())


def with_border(dn: np.ndarray) -> np.ndarray:
    """``dn`` with a nodata (0) border: the first 3 rows and the last 2 columns, in every band (a swath edge)."""
    out = dn.copy()
    out[:, :3, :] = 0
    out[:, :, -2:] = 0
    return out


def enmap_layout(folder: Path) -> dict:
    """A 6-band EnMAP L2A-style item: one int16 COG whose ``eo:bands`` carry DLR's ``enmap:gain_of_band`` and
    ``enmap:offset_of_band`` (no raster:bands scale). Built here: no public EnMAP item JSON was found to copy."""
    bands = [
        {"name": str(i + 1), "center_wavelength": wl, "full_width_half_max": 0.0065,
         "enmap:gain_of_band": 2e-5 * (1 + i % 2), "enmap:offset_of_band": -0.01 * i}
        for i, wl in enumerate([0.4639, 0.5502, 0.6571, 0.8656, 1.6539, 2.2075])
    ]
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": "ENMAP01-____L2A-DT0000001867_20220724T104526Z_008",
        "stac_extensions": [
            f"https://stac-extensions.github.io/{e}/v1.1.0/schema.json" for e in ("eo", "raster", "projection")
        ],
        "bbox": [13.0, 52.3, 13.1, 52.4], "geometry": None,
        "properties": {"datetime": "2022-07-24T10:45:26Z", "platform": "EnMAP", "instruments": ["HSI"],
                       "proj:epsg": 32633},
        "assets": {"image": {
            "href": "x", "type": "image/tiff; application=geotiff", "roles": ["data"], "eo:bands": bands,
            "raster:bands": [{"nodata": -32768, "data_type": "int16"}] * len(bands),
            "proj:shape": [1200, 1000], "proj:transform": [30.0, 0.0, 365000.0, 0.0, -30.0, 5808000.0],
        }},
        "links": [],
    }
    return localize(item, folder, {"image": pattern(6, 16, 5000, np.int16)}, "enmap-layout")


@pytest.fixture(scope="module")
def real_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """rustac serving the real item layouts, their data assets replaced by local COGs of ``pattern`` DN."""
    folder = tmp_path_factory.mktemp("real_items")
    s2 = {"B02": pattern(1, 48, 1000), "B03": with_border(pattern(1, 48, 1100)), "B04": pattern(1, 48, 1200),
          "B08": pattern(1, 48, 3000), "B8A": pattern(1, 24, 3100), "visual": np.full((3, 48, 48), 255, np.uint8)}
    pc_old = localize(real("planetary-computer-sentinel-2-l2a.json"), folder, s2, "pc-s2")
    pc_new = real("planetary-computer-sentinel-2-l2a.json")
    pc_new["id"] += "-N0509"
    pc_new["properties"].update({"s2:processing_baseline": "05.09", "datetime": "2019-06-29T21:26:29.024000Z"})
    newer = {k: v + 500 if k != "visual" else v for k, v in s2.items()}
    pc_new = localize(pc_new, folder, newer, "pc-s2", shift=(240.0, 0))
    earth = {k: pattern(1, 48, 1000 + 100 * i) for i, k in enumerate(["blue", "green", "red", "nir"])}
    earth.update({k: np.full((1, 48, 48), JP2_DN, np.uint16) for k in ["blue-jp2", "green-jp2", "nir-jp2"]})
    earth["visual"] = np.full((3, 48, 48), 255, np.uint8)
    cdse = {"B02_10m": pattern(1, 48, 1000), "B03_10m": pattern(1, 48, 1100), "B04_10m": pattern(1, 48, 1200),
            "B05_20m": pattern(1, 24, 1300), "B02_20m": np.full((1, 24, 24), JP2_DN, np.uint16),
            "B04_20m": np.full((1, 24, 24), JP2_DN, np.uint16), "B04_60m": np.full((1, 8, 8), JP2_DN, np.uint16),
            "TCI_10m": np.full((3, 48, 48), 255, np.uint8)}
    lc09 = {k: with_border(pattern(1, 32, 9000 + 1000 * i)) for i, k in
            enumerate(["coastal", "blue", "green", "red", "nir08", "swir16", "swir22"])}
    lc09.update(lwir11=with_border(pattern(1, 32, 40000)), qa_pixel=np.full((1, 32, 32), 21824, np.uint16))
    le07 = {k: pattern(1, 32, 9000 + 1000 * i) for i, k in enumerate(LE07_SR)}
    le07.update(lwir=pattern(1, 32, 40000))
    raster_s2 = {"B02": pattern(1, 48, 1000), "B03": pattern(1, 48, 1100), "B04": pattern(1, 48, 1200),
                 "overview": np.full((3, 48, 48), 255, np.uint16), "visual": np.full((3, 48, 48), 255, np.uint16)}
    items = [
        pc_old, pc_new,
        localize(real("earth-search-sentinel-2-l2a.json"), folder, earth, "earth-search"),
        localize(real("cdse-sentinel-2-l2a-stac11.json"), folder, cdse, "cdse"),
        localize(real("planetary-computer-landsat-c2-l2-lc09.json"), folder, lc09, "landsat", extent=960.0),
        localize(real("planetary-computer-landsat-c2-l2-le07.json"), folder, le07, "landsat", extent=960.0),
        localize(real("stac11-raster-sentinel-2.json"), folder, raster_s2, "raster-s2"),
        localize(real("stac11-raster-planetscope.json"), folder, {"data": pattern(4, 32, 5000)}, "planet", extent=96.0),
        localize(real("stac11-eo-example.json"), folder, {"analytic": pattern(4, 24, 500)}, "eo-example", extent=0.024),
        enmap_layout(folder),
    ]
    with RustacServer(write_items(folder / "api", items)) as server:
        yield server.url


def one(url: str, collection: str, **kwargs) -> pystac.ItemCollection:
    return stac.search(url, collections=collection, **kwargs)


def test_planetary_computer_sentinel2_baseline_and_mosaic_of_two_offsets(real_api: str) -> None:
    items = one(real_api, "pc-s2")
    old = [i for i in items if not i.id.endswith("N0509")]
    da = stac.load(old)  # no scale in the item: s2:processing_baseline 02.12 -> DN * 1e-4, no offset
    assert da["band"].values.tolist() == ["B02", "B03", "B04", "B08", "B8A"]  # not visual, SCL or the preview
    assert da.attrs["units"] == "reflectance"
    np.testing.assert_allclose(da.values[0, 0], pattern(1, 48, 1000)[0] * 1e-4, rtol=1e-6)
    np.testing.assert_allclose(da.values[0, 4, 5, 5], (3100 + 2 + 2) * 1e-4, rtol=1e-6)  # 20 m band on the 10 m grid
    green = da.sel(band="B03").values[0]  # no nodata declared: ESA's DN 0 is nodata
    assert np.isnan(green[:3]).all() and np.isnan(green[:, -2:]).all() and np.isfinite(green[3:, :-2]).all()
    mosaic = stac.load(items, bands=["red"], groupby="solar_day")  # 02.12 west, 05.09 (-1000 DN) 240 m further east
    assert mosaic.sizes["time"] == 1 and mosaic.sizes["x"] == 72
    red = mosaic.values[0, 0]
    np.testing.assert_allclose(red[:, :48], pattern(1, 48, 1200)[0] * 1e-4, rtol=1e-6)  # the first item wins
    np.testing.assert_allclose(red[:, 48:], pattern(1, 48, 1700)[0, :, 24:] * 1e-4 - 0.1, rtol=1e-5, atol=1e-7)
    assert stac.load(items, bands=["red"]).sizes["time"] == 2


def test_unsigned_planetary_computer_hrefs_warn_before_any_read() -> None:
    item = pystac.Item.from_dict(real("planetary-computer-sentinel-2-l2a.json"))  # hrefs as published, unsigned
    with pytest.warns(UserWarning, match=r"without a signature.*planetary_computer.sign_inplace"):
        da = stac.load([item], bands=["red"])
    assert da.shape == (1, 1, 10980, 10980)  # lazy: nothing was read
    signed = pystac.Item.from_dict(real("planetary-computer-sentinel-2-l2a.json"))
    signed.assets["B04"].href += "?st=2024-01-01&sig=x"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        stac.load([signed], bands=["red"])


def test_earth_search_prefers_cogs_and_honours_boa_offset_applied(real_api: str) -> None:
    items = one(real_api, "earth-search")
    da = stac.load(items)
    assert da["asset"].values.tolist() == ["blue", "green", "red", "nir"]  # no -jp2 twin, no visual
    expected = np.stack([pattern(1, 48, 1000 + 100 * i)[0] for i in range(4)]) * 1e-4  # offset already in the DN
    np.testing.assert_allclose(da.values[0], expected, rtol=1e-6)
    assert stac.load(items, bands=["nir"])["asset"].values.tolist() == ["nir"]
    flagged_off = pystac.Item.from_dict({**items[0].to_dict(), "properties": {
        **items[0].properties, "earthsearch:boa_offset_applied": False}})
    np.testing.assert_allclose(stac.load([flagged_off]).values[0], expected - 0.1, atol=1e-6)


def test_cdse_stac11_one_resolution_per_band(real_api: str) -> None:
    with pytest.warns(UserWarning, match=r"implausible FWHM for bands \['B02', 'B03', 'B04', 'B05'\]"):
        da = stac.load(one(real_api, "cdse"))  # CDSE gives 0.267-0.357 µm: the library's Sentinel-2C widths instead
    assert da["asset"].values.tolist() == ["B02_10m", "B03_10m", "B04_10m", "B05_20m"]  # sampling:original, no TCI
    np.testing.assert_allclose(da["fwhm"].values, srf.get("sentinel-2c")["fwhm"].sel(band=["B02", "B03", "B04", "B05"]))
    np.testing.assert_allclose(da.values[0, 2], pattern(1, 48, 1200)[0] * 1e-4 - 0.1, atol=1e-6)
    assert da.rio.crs.to_epsg() == 32633 and da.rio.resolution() == (10.0, -10.0)


def test_landsat_skips_thermal_and_qa_unless_asked(real_api: str) -> None:
    items = one(real_api, "landsat", ids=["LC09_L2SP_010065_20220129_02_T1"])
    da = stac.load(items)
    assert da["band"].values.tolist() == ["OLI_B1", "OLI_B2", "OLI_B3", "OLI_B4", "OLI_B5", "OLI_B6", "OLI_B7"]
    assert da.attrs["units"] == "reflectance" and da.attrs["sensor"] == "landsat-9-oli2"
    dn = with_border(pattern(1, 32, 12000))[0]
    red = da.sel(band="OLI_B4").values[0]
    np.testing.assert_allclose(red[3:, :-2], dn[3:, :-2] * 2.75e-5 - 0.2, atol=1e-6)
    assert np.isnan(red[:3]).all() and np.isnan(red[:, -2:]).all()  # nodata 0 -> NaN
    thermal = stac.load(items, bands=["lwir11"])
    assert thermal.attrs["units"] == "kelvin"
    np.testing.assert_allclose(thermal.values[0, 0, 5, 5], (40000 + 10) * 0.00341802 + 149.0, rtol=1e-6)
    with pytest.warns(stac.DigitalNumberWarning, match="different units"):
        mixed = stac.load(items, bands=["red", "lwir11"])
    assert "units" not in mixed.attrs


def test_landsat_7_and_9_in_one_search(real_api: str) -> None:
    items = one(real_api, "landsat")
    assert len(items) == 2
    with pytest.raises(stac.MixedSensorsError, match=r"landsat-7.*landsat-9|landsat-9.*landsat-7") as err:
        stac.load(items)
    assert "by_sensor" in str(err.value)
    with pytest.raises(stac.MixedSensorsError, match="by_sensor"):
        stac.load(items, bands=["red", "nir08"])  # same names, different wavelengths (ETM+ 660 nm, OLI 650 nm)
    with pytest.raises(stac.MixedSensorsError, match="coastal"):
        stac.load(items, bands=["coastal", "red"])  # Landsat 7 has no coastal band
    groups = stac.by_sensor(items)
    assert sorted(groups) == ["landsat-7 (etm+)", "landsat-9 (oli, tirs)"]
    cubes = {name: stac.load(group) for name, group in groups.items()}
    assert cubes["landsat-7 (etm+)"].sizes["band"] == 6 and cubes["landsat-9 (oli, tirs)"].sizes["band"] == 7
    np.testing.assert_allclose(cubes["landsat-7 (etm+)"]["wavelength"].values[2], 660.0)
    forced = stac.load(items, bands=["red"], wavelengths=[655.0])
    assert forced.sizes["time"] == 2


def test_stac11_raster_example_baseline_from_product_id(real_api: str) -> None:
    da = stac.load(one(real_api, "raster-s2"))  # no scale, no s2:processing_baseline; sentinel:product_id says N0214
    assert da["asset"].values.tolist() == ["B02", "B03", "B04"]  # overview and visual previews skipped
    np.testing.assert_allclose(da.values[0, 1], pattern(1, 48, 1100)[0] * 1e-4, rtol=1e-6)
    np.testing.assert_allclose(da["wavelength"].values, [496.6, 560.0, 664.5])


def test_planetscope_needs_a_grid_and_its_dn_are_flagged(real_api: str) -> None:
    items = one(real_api, "planet")
    with pytest.raises(stac.StacLoadError, match=r"output grid.*crs='EPSG:32633', resolution=10"):
        stac.load(items)
    da = stac.load(items, crs="EPSG:32750", resolution=3)
    assert da["common_name"].values.tolist() == ["blue", "green", "red", "nir"]
    scales = {"blue": 2.18499248607e-05, "green": 1.96236732904e-05, "red": 0.01, "nir": 2.18499248607e-05}
    with pytest.warns(stac.DigitalNumberWarning, match="exceed 2"):
        values = finite(da.values[0])
    dn = pattern(4, 32, 5000)[[2, 1, 0, 3]]  # the asset holds red, green, blue, nir
    for i, name in enumerate(da["common_name"].values):
        np.testing.assert_allclose(values[i], dn[i] * scales[name], rtol=1e-5)


def test_eo_example_geographic_grid_and_digital_numbers(real_api: str) -> None:
    items = one(real_api, "eo-example")
    with pytest.warns(stac.DigitalNumberWarning, match=r"\['analytic'\].*raw digital"):
        da = stac.load(items, crs="EPSG:4326", resolution=0.001)
    assert da.dims == ("time", "band", "latitude", "longitude") and da.attrs["units"] == "DN"
    np.testing.assert_array_equal(finite(da.values[0]), pattern(4, 24, 500))
    ndvi = da.anyband.index("NDVI")
    assert ndvi.dims == ("time", "latitude", "longitude") and finite(ndvi.values).shape == (1, 24, 24)


def test_enmap_gain_of_band(real_api: str) -> None:
    da = stac.load(one(real_api, "enmap-layout"))
    dn = pattern(6, 16, 5000, np.int16).astype(np.float64)
    gains = np.array([2e-5 * (1 + i % 2) for i in range(6)])[:, None, None]
    np.testing.assert_allclose(da.values[0], dn * gains - 0.01 * np.arange(6)[:, None, None], atol=1e-6)
    assert da.attrs["units"] == "reflectance"


def test_search_keywords_reach_the_api(stac_api: str) -> None:
    sent = []

    def sign(page: dict) -> None:  # what planetary_computer.sign_inplace does to every page
        for feature in page["features"]:
            feature["properties"]["signed"] = True

    items = stac.search(
        stac_api, collections=S2_COLLECTION, sortby="-properties.datetime", fields={"exclude": ["links"]},
        request_modifier=sent.append, modifier=sign, max_items=5,
    )
    body = next(r.json for r in sent if r.url.endswith("/search"))
    assert body["sortby"] == [{"field": "properties.datetime", "direction": "desc"}]
    assert body["fields"] == {"exclude": ["links"]} and list(body["collections"]) == [S2_COLLECTION]
    assert len(items) == 2 and all(item.properties["signed"] for item in items)
    sent.clear()
    with pytest.raises(stac.NoItemsError, match=r"query=.*filter="):  # rustac's memory backend ignores neither
        stac.search(stac_api, collections=S2_COLLECTION, query={"platform": {"eq": "sentinel-2a"}},
                    filter="platform = 'x'", filter_lang="cql2-text", request_modifier=sent.append)
    body = next(r.json for r in sent if r.url.endswith("/search"))
    assert body["query"] == {"platform": {"eq": "sentinel-2a"}} and body["filter-lang"] == "cql2-text"


def test_load_keywords_pass_through_to_odc_stac(real_api: str, tmp_path: Path) -> None:
    items = one(real_api, "pc-s2", ids=["S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531"])
    opened = []
    averaged = stac.load(
        items, bands=["blue"], resolution=20, resampling="average", patch_url=lambda u: opened.append(u) or u
    )
    assert opened and all(u.startswith("file://") for u in opened)
    dn = pattern(1, 48, 1000)[0].astype(np.float64)
    np.testing.assert_allclose(averaged.values[0, 0], dn.reshape(24, 2, 24, 2).mean(axis=(1, 3)) * 1e-4, rtol=1e-6)
    broken = items[0].to_dict()
    broken["assets"]["B02"]["href"] = (tmp_path / "gone.tif").as_uri()
    broken = pystac.Item.from_dict(broken)
    assert np.isnan(stac.load([broken], bands=["blue"], fail_on_error=False).values).all()
    with pytest.raises(Exception, match="gone.tif"):
        stac.load([broken], bands=["blue"]).values
    with pytest.raises(TypeError, match="fuse_func"):
        stac.load(items, fuse_func="x.y")
    west, south, east, north = items[0].bbox
    cut = {"type": "Polygon", "coordinates": [[[west, south], [(west + east) / 2, south], [(west + east) / 2, north],
                                                [west, north], [west, south]]]}
    half = stac.open(
        real_api, collections="pc-s2", intersects=cut, bands=["red"], groupby="solar_day", crs="EPSG:32606",
        resolution=10,
    )
    assert half.sizes["time"] == 1 and 24 <= half.sizes["x"] < 30  # the western half of the first item only


def test_html_answer_names_the_url() -> None:
    seen = []

    class Html(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            body = b"<!DOCTYPE html><html><body>Sign in</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Html)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/browse"
    try:
        with pytest.raises(stac.StacError, match=rf"{url} answered its landing page with something that is not a STAC"):
            stac.search(url, headers={"X-Api-Key": "secret"}, retries=0, timeout=5)
    finally:
        server.shutdown()
    assert seen[0]["X-Api-Key"] == "secret"


def test_nodata_border_repairs_end_to_end(real_api: str, tmp_path: Path) -> None:
    """A Landsat item whose swath edge is nodata in every band: STAC -> Zarr -> tiled repair, border left NaN."""
    scene = stac.load(one(real_api, "landsat", ids=["LC09_L2SP_010065_20220129_02_T1"])).isel(time=0, drop=True)
    write_zarr(scene, tmp_path / "scene.zarr")
    lost = scene["band"] == "OLI_B4"
    summary = repair_zarr(
        tmp_path / "scene.zarr", tmp_path / "out.zarr", mask=lost, method="linear", tile=32, overlap=8, workers=1,
        progress=False,
    )
    assert summary.tiles_done == summary.tiles_total
    out = open_zarr(tmp_path / "out.zarr", "reflectance").values
    assert np.isnan(out[:, :3]).all() and np.isnan(out[:, :, -2:]).all()  # no band observed there: still missing
    interior = out[:, 3:, :-2]
    assert np.isfinite(interior).all()
    observed = ~lost.values
    np.testing.assert_array_equal(interior[observed], scene.values[observed, 3:, :-2])


def test_error_layer_listed_first_is_not_the_cube() -> None:
    """A PRISMA-style item: an error matrix with the cube's own band list comes first, both with the data role."""
    item = pystac.Item("prisma-like", None, None, datetime(2024, 6, 1), {})
    bands = [{"name": f"B{i}", "center_wavelength": wl / 1000} for i, wl in enumerate([450.0, 550.0, 650.0])]
    for key in ("PRS_L2D_ERR", "PRS_L2D_HCO"):
        item.add_asset(key, pystac.Asset("x.tif", roles=["data"], extra_fields={"eo:bands": bands}))
    chosen = stac.metadata.select(item, None)
    assert [b.asset for b in chosen] == ["PRS_L2D_HCO"] * 3
