"""anyband_xr.stac against a real local STAC API (rustac serve, in-memory backend) over COGs of real scenes."""

from __future__ import annotations

import socket
from datetime import datetime

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
from anyband_xr.generate import observation_responses
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
    free_port,
    jasper_dn,
    s2_dn,
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
    red = xr.DataArray(da["band"].values == "red", dims="band", coords={"band": da["band"]})
    out = da.anyband.repair(red, steps=2, tile=32, overlap=0)
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
    assert stac._platform_sensor(item) == sensor
