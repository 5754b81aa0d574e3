"""The shipped SRF library (built from agency files) and Gaussian SRFs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from anyband_xr import srf

CROSSCHECK = Path(__file__).parent / "data" / "srf_crosscheck.csv"
REQUIRED = [
    "sentinel-2a", "sentinel-2b", "sentinel-2c", "landsat-5-tm", "landsat-7-etm", "landsat-8-oli", "landsat-9-oli2",
    "modis-terra", "aster", "eo-1-ali", "planetscope-dove-r", "planetscope-superdove", "rapideye", "skysat-14-19",
    "pleiades-1a",
]


def test_library_holds_the_required_real_sensors():
    sensors = srf.list_sensors()
    assert len(sensors) >= 15 and set(REQUIRED) <= set(sensors)


@pytest.mark.parametrize("name", srf.list_sensors())
def test_every_sensor_is_clean(name):
    da = srf.get(name)
    assert da.dims == ("band", "wavelength") and da["wavelength"].attrs["units"] == "nm"
    assert (da.values >= 0).all(), "negative responses must be clipped"
    np.testing.assert_allclose(da.values.max(axis=1), 1.0)
    assert (np.diff(da["wavelength"].values) == 1.0).all()
    assert (da["fwhm"].values > 0).all()
    for response, centroid in zip(da.values, da["centroid"].values):
        support = da["wavelength"].values[response >= 0.5]
        assert support.min() - 50 <= centroid <= support.max() + 50
        zeros = np.flatnonzero(response == 0)
        gaps = [i for i in zeros if response[max(i - 3, 0) : i].max(initial=0) > 0.1 and response[i + 1 : i + 4].max(initial=0) > 0.1]
        assert not gaps, f"zero-filled gap inside a band of {name} at {da['wavelength'].values[gaps]} nm"


def test_centroids_match_the_independent_source_within_1nm():
    table = pd.read_csv(CROSSCHECK)
    checked = table[table["excluded"].isna() & table["centroid_reference"].notna()]
    assert len(checked) > 150 and checked["sensor"].nunique() >= 20
    for sensor, rows in checked.groupby("sensor"):
        ours = srf.get(sensor)["centroid"].to_series()
        for band, reference in zip(rows["band"].astype(str), rows["centroid_reference"]):
            assert abs(ours[band] - reference) < 1.0, (sensor, band, ours[band], reference)


def test_sentinel2_bands_and_common_names():
    s2 = srf.get("S2A")
    assert s2.attrs["sensor"] == "sentinel-2a"
    assert s2["band"].values.tolist()[:4] == ["B01", "B02", "B03", "B04"]
    assert {"blue", "green", "red", "nir", "swir16", "swir22"} <= set(s2["common_name"].values)
    red = s2.sel(band="B04")
    assert 660 < float(red["centroid"]) < 670 and 25 < float(red["fwhm"]) < 40


def test_unknown_sensor_lists_the_library():
    with pytest.raises(srf.UnknownSensorError, match="sentinel-2a"):
        srf.get("not-a-sensor")


def test_gaussian_srf_centroid_and_fwhm_and_micrometres():
    g = srf.gaussian([0.55, 0.86], [0.03, 0.04])
    np.testing.assert_allclose(g["centroid"].values, [550.0, 860.0], atol=0.05)
    np.testing.assert_allclose(g["fwhm"].values, [30.0, 40.0], atol=0.05)
    with pytest.raises(ValueError, match="positive"):
        srf.gaussian([500.0], [0.0])


def test_gaussian_srfs_from_a_dataarray_fwhm_or_spacing():
    da = xr.DataArray(np.zeros(3), dims="wavelength", coords={"wavelength": [500.0, 510.0, 530.0], "fwhm": ("wavelength", [8.0, 9.0, 10.0])})
    np.testing.assert_allclose(srf.from_dataarray(da)["fwhm"].values, [8.0, 9.0, 10.0], atol=0.1)
    bare = da.drop_vars("fwhm")
    out = srf.from_dataarray(bare)
    np.testing.assert_allclose(out["fwhm"].values, [10.0, 15.0, 20.0], atol=0.1)
    assert "spacing" in out.attrs["fwhm_source"]


def test_platform_lookup():
    assert srf.for_platform("sentinel-2b") == "sentinel-2b"
    assert srf.for_platform("LANDSAT_8") == "landsat-8-oli"
    assert srf.for_platform("terra", "modis") == "modis-terra"
    assert srf.for_platform("unknown-sat") is None
