"""anyband_xr.stac against a real local STAC API (rustac serve, in-memory backend) over COGs of real scenes."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from helpers import count_dask_computes
from stac_server import (
    HSI_COLLECTION,
    JASPER_NODATA,
    JASPER_OFFSET,
    JASPER_SCALE,
    NO_META_COLLECTION,
    S2_COLLECTION,
    S2_V11_COLLECTION,
    S2A_BANDS,
    FailingProxy,
    free_port,
    jasper_dn,
    s2_dn,
)

from anyband_xr import stac

S2_NM = [wl * 1000 for _, wl, _ in S2A_BANDS.values()]


def test_hyperspectral_cog_round_trip(stac_api: str) -> None:
    with count_dask_computes() as counter:
        da = stac.open(stac_api, collections=HSI_COLLECTION)
    assert counter.count == 0
    dn, wl_nm = jasper_dn()
    assert da.dims == ("time", "band", "y", "x") and da.shape == (1, 198, 100, 100)
    assert da.dtype == np.float32 and da.chunks[1] == (198,)
    np.testing.assert_allclose(da["wavelength"].values, wl_nm, atol=1e-3)
    assert da["wavelength"].attrs["units"] == "nm"
    expected = np.where(dn == JASPER_NODATA, np.nan, dn * JASPER_SCALE + JASPER_OFFSET)
    np.testing.assert_allclose(da.isel(time=0).values, expected, atol=1e-6)
    assert np.isnan(da.values[0, :, :3, :3]).all() and not np.isnan(da.values[0, :, 3:, 3:]).any()
    assert da.rio.crs.to_epsg() == 32610
    assert da.rio.resolution() == (20.0, -20.0)
    assert da.anyband.spectral_dim == "band"


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
    da = stac.load(items, bands=["nir", "B04"])
    assert da["band"].values.tolist() == ["B04", "B08"]
    np.testing.assert_allclose(da["wavelength"].values, [S2_NM[2], S2_NM[3]])
    source = s2_dn()
    np.testing.assert_allclose(da.isel(time=0).values, np.stack([source["B04"], source["B08"]]) * 1e-4, rtol=1e-6)


def test_sensor_srf_attached_for_known_platform(stac_api: str) -> None:
    da = stac.open(stac_api, collections=S2_V11_COLLECTION)
    assert da.attrs["sensor"]
    assert np.isfinite(da["fwhm"].values).all()
    assert all(da["srf_band"].values)


def test_search_filters_and_paging(stac_api: str) -> None:
    paged = stac.search(stac_api, collections=S2_COLLECTION, page_size=1)
    assert sorted(item.id for item in paged) == ["s2-0", "s2-1"]
    dated = stac.search(stac_api, collections=S2_COLLECTION, datetime="2024-06-10/2024-06-12")
    assert [item.id for item in dated] == ["s2-1"]
    near = stac.search(stac_api, bbox=[-122.3, 37.3, -122.1, 37.5])
    assert [item.id for item in near] == ["jasper-ridge"]
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


def test_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(stac.StacError, match=r"within timeout=0.3 s"):
            stac.search(url, retries=0, timeout=0.3)
