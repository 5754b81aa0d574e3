"""Sensor simulation on the wavelength coordinate, checked against an independent numpy computation."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from helpers import count_dask_computes
from scipy.interpolate import CubicSpline

from anyband_xr import datasets, spectral, srf
from anyband_xr.simulate import simulate


@pytest.fixture(scope="module")
def scene() -> xr.DataArray:
    return datasets.jasper_ridge()


def _independent(spectrum: np.ndarray, wl: np.ndarray, responses: xr.DataArray) -> np.ndarray:
    grid = responses["wavelength"].values
    resampled = CubicSpline(wl, spectrum)(grid)
    return np.array([np.trapezoid(r * resampled, grid) / np.trapezoid(r, grid) for r in responses.values])


def test_sentinel2_from_the_real_scene_matches_numpy(scene):
    s2 = simulate(scene, "sentinel-2a")
    responses = srf.get("sentinel-2a")
    covered = responses.sel(band=s2["band"].values)
    wl = scene["wavelength"].values
    for y, x in [(0, 0), (40, 70), (99, 12)]:
        expected = _independent(scene.isel(y=y, x=x).values.astype(np.float64), wl, covered)
        np.testing.assert_allclose(s2.isel(y=y, x=x).values, expected, rtol=2e-3, atol=2e-5)


def test_output_coords_attrs_and_crs(scene):
    da = scene.rio.write_crs("EPSG:32610").assign_attrs(title="jasper")
    s2 = simulate(da, "sentinel-2a")
    assert s2.dims == ("band", "y", "x") and s2.attrs["sensor"] == "sentinel-2a" and s2.attrs["title"] == "jasper"
    assert s2.rio.crs.to_epsg() == 32610
    np.testing.assert_allclose(s2["wavelength"].values, srf.get("sentinel-2a").sel(band=s2["band"].values)["centroid"].values)
    assert "red" in s2["common_name"].values and (s2["fwhm"].values > 0).all()
    assert spectral.spectral_dim(s2) == "band"


def test_a_flat_spectrum_stays_flat(scene):
    flat = xr.full_like(scene, 0.25)
    np.testing.assert_allclose(simulate(flat, "landsat-8-oli").values, 0.25, rtol=1e-4)


def test_lazy_on_dask(scene):
    lazy = scene.chunk({"y": 50, "x": 50})
    with count_dask_computes() as counter:
        s2 = simulate(lazy, "sentinel-2a")
        assert s2.chunks is not None
    assert counter.count == 0
    np.testing.assert_allclose(s2.values, simulate(scene, "sentinel-2a").values, rtol=1e-5)


def test_uncovered_bands_warn_or_raise(scene):
    vnir = scene.sel(wavelength=slice(None, 1000))
    with pytest.warns(spectral.AnyBandWarning, match="not covered"):
        s2 = simulate(vnir, "sentinel-2a")
    assert "B11" not in s2["band"].values and "B04" in s2["band"].values
    with pytest.raises(spectral.SpectralAxisError, match="not covered"):
        simulate(vnir, "sentinel-2a", strict=True)


def test_bands_inside_a_gap_of_the_data_are_not_simulated(scene):
    # Jasper Ridge lacks the water-vapour bands around 1380 nm: Sentinel-2's cirrus band B10 sits in that gap.
    with pytest.warns(spectral.AnyBandWarning, match=r"\['B10'\]"):
        s2 = simulate(scene, "sentinel-2a")
    assert "B10" not in s2["band"].values and "B11" in s2["band"].values


def test_custom_srfs_pass_and_broken_ones_are_refused(scene):
    crop = scene.isel(y=slice(0, 4), x=slice(0, 4))
    s2 = srf.get("sentinel-2a")
    custom = simulate(crop, srf.gaussian([550.0, 850.0], 30.0))
    assert custom.sizes["band"] == 2 and np.isfinite(custom).all()
    with pytest.raises(ValueError, match="lacks the per-band coordinate"):
        simulate(crop, s2.drop_vars("fwhm"))
    with pytest.raises(ValueError, match="must ascend in nm"):
        simulate(crop, s2.isel(wavelength=slice(None, None, -1)))
    with pytest.raises(ValueError, match=r"\['B04'\] have NaN"):
        simulate(crop, s2.where(s2["band"] != "B04"))
