"""spyndex indices on DataArrays (real Jasper Ridge scene) and their differentiable torch versions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from anyband_xr import datasets, spectral
from anyband_xr.indices import index
from anyband_xr.physics.indices import band_weights, ndvi, ndwi, normalized_difference
from tests.helpers import count_dask_computes


@pytest.fixture(scope="module")
def scene() -> xr.DataArray:
    return datasets.jasper_ridge()


@pytest.fixture(scope="module")
def abundance() -> xr.DataArray:
    return datasets.jasper_ridge_abundances()


def _pure(abundance: xr.DataArray, endmember: str) -> xr.DataArray:
    return abundance.sel(endmember=endmember, drop=True) > 0.8


def _gaussian_srf(centres: dict[str, float], fwhm: float = 30.0) -> xr.DataArray:
    """A small SRF DataArray in the library's layout (band, wavelength[nm, 1 nm])."""
    nm = np.arange(350.0, 2600.0)
    sigma = fwhm / (2 * np.sqrt(2 * np.log(2)))
    values = np.exp(-0.5 * ((nm[None, :] - np.array(list(centres.values()))[:, None]) / sigma) ** 2)
    return xr.DataArray(
        values,
        dims=("band", "wavelength"),
        coords={
            "band": [f"B{i}" for i in range(len(centres))],
            "wavelength": nm,
            "common_name": ("band", list(centres)),
            "centroid": ("band", list(centres.values())),
            "fwhm": ("band", [fwhm] * len(centres)),
        },
        attrs={"sensor": "test-sensor"},
    )


def test_ndvi_high_on_vegetation_low_on_water(scene, abundance):
    result = index(scene, "NDVI")
    assert result.name == "NDVI" and result.dims == ("y", "x")
    assert float(result.where(_pure(abundance, "tree")).mean()) > 0.6
    assert float(result.where(_pure(abundance, "water")).mean()) < 0.1
    assert set(result.attrs["bands_used"]) == {"N", "R"}
    assert result.attrs["bands_used"]["N"].endswith("nm") and result.attrs["sensor"] == "AVIRIS"
    assert "units" not in result.attrs


def test_ndwi_high_on_water(scene, abundance):
    result = index(scene, "NDWI")
    assert float(result.where(_pure(abundance, "water")).mean()) > float(result.where(_pure(abundance, "tree")).mean())


def test_several_indices_lazy_on_dask(scene):
    lazy = scene.chunk({"y": 50, "x": 50}).assign_coords(spatial_ref=0)
    with count_dask_computes() as counter:
        result = index(lazy, ["NDVI", "NDWI", "EVI", "SAVI"], params={"L": 0.5})
    assert counter.count == 0
    assert result.chunks is not None and result.dims == ("index", "y", "x")
    assert list(result["index"].values) == ["NDVI", "NDWI", "EVI", "SAVI"]
    assert "spatial_ref" in result.coords
    np.testing.assert_array_equal(result.x, scene.x)
    eager = index(scene, "NDVI")
    np.testing.assert_allclose(result.sel(index="NDVI").values, eager.values, rtol=1e-6)


def test_nearest_band_to_range_centre(scene):
    result = index(scene, "NDVI")
    nm = spectral.wavelengths(scene)
    red = nm[np.argmin(np.abs(nm - 655.0))]
    expected = (scene.sel(wavelength=830, method="nearest") - scene.sel(wavelength=red)) / (
        scene.sel(wavelength=830, method="nearest") + scene.sel(wavelength=red)
    )
    np.testing.assert_allclose(result.values, expected.values, rtol=1e-6)


def test_common_name_bands_of_multispectral_data(scene):
    ms = scene.sel(wavelength=[490.0, 560.0, 665.0, 842.0], method="nearest")
    ms = ms.rename(wavelength="band").assign_coords(
        band=["B2", "B3", "B4", "B8"],
        wavelength=("band", [490.0, 560.0, 665.0, 842.0]),
        common_name=("band", ["blue", "green", "red", "nir"]),
    )
    result = index(ms, "NDVI")
    expected = (ms.sel(band="B8") - ms.sel(band="B4")) / (ms.sel(band="B8") + ms.sel(band="B4"))
    np.testing.assert_allclose(result.values, expected.values, rtol=1e-6)
    assert result.attrs["bands_used"]["N"].startswith("nir")


def test_srf_weighted_bands(scene):
    responses = _gaussian_srf({"red": 665.0, "nir": 842.0, "green": 560.0})
    with count_dask_computes() as counter:
        result = index(scene.chunk({"y": 50}), "NDVI", sensor=responses)
    assert counter.count == 0
    assert "SRF" in result.attrs["bands_used"]["N"]
    nm = spectral.wavelengths(scene)

    def srf_mean(band: str) -> xr.DataArray:
        weights = np.interp(nm, responses.wavelength, responses.sel(band=band)) * np.gradient(nm)
        return xr.dot(scene, xr.DataArray(weights / weights.sum(), dims="wavelength", coords={"wavelength": nm}))

    nir, red = srf_mean("B1"), srf_mean("B0")
    np.testing.assert_allclose(result.values, ((nir - red) / (nir + red)).values, rtol=1e-4)


def test_srf_band_ignores_nan_outside_its_support(scene):
    responses = _gaussian_srf({"red": 665.0, "nir": 842.0})
    holed = scene.where(np.abs(scene.wavelength - 1400) > 50)
    np.testing.assert_allclose(index(holed, "NDVI", sensor=responses), index(scene, "NDVI", sensor=responses))


def test_sensor_from_the_srf_library(scene):
    srf = pytest.importorskip("anyband_xr.srf")
    sentinel2 = next(name for name in srf.list_sensors() if "sentinel-2" in name)
    result = index(scene, "NDVI", sensor=sentinel2)
    assert "SRF" in result.attrs["bands_used"]["N"] and "SRF" in result.attrs["bands_used"]["R"]
    nearest = index(scene, "NDVI")
    assert float(np.abs(result - nearest).mean()) < 0.05
    with pytest.raises(KeyError):
        index(scene, "NDVI", sensor="no-such-sensor")


def test_band_outside_coverage_names_everything(scene):
    vnir = scene.sel(wavelength=slice(None, 1000))
    with pytest.raises(spectral.SpectralAxisError, match=r"NBR.*'S2'.*2080-2350 nm.*399\.\d-99\d\.\d nm"):
        index(vnir, "NBR")


def test_unknown_index_and_missing_constant(scene):
    with pytest.raises(KeyError, match="NOPE"):
        index(scene, "NOPE")
    with pytest.raises(ValueError, match="PAR"):
        index(scene, "NIRvP")


def test_lambda_constants_are_the_wavelengths_of_the_bands_used(scene):
    result = index(scene, "NIRvH2", params={"k": 0.001})
    nir, red = scene.sel(wavelength=830, method="nearest"), scene.sel(wavelength=655, method="nearest")
    expected = nir - red - 0.001 * (float(nir.wavelength) - float(red.wavelength))
    np.testing.assert_allclose(result.values, expected.values, rtol=1e-5, atol=1e-7)
    assert np.isfinite(index(scene, "FDI").values).all()


def test_torch_indices_match_and_differentiate(scene):
    wl = torch.from_numpy(spectral.wavelengths(scene).copy())
    x = torch.from_numpy(scene.values[None].astype(np.float64)).requires_grad_(True)
    value = ndvi(x, wl)
    assert value.shape == (1, 100, 100)
    value.mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    nir = scene.sel(wavelength=slice(760, 900)).mean("wavelength")
    red = scene.sel(wavelength=slice(620, 690)).mean("wavelength")
    expected = (nir - red + 1e-6) / (nir + red + 1e-6)
    np.testing.assert_allclose(value.detach()[0].numpy(), expected.values, rtol=1e-4)
    assert torch.allclose(ndwi(x, wl), normalized_difference(x, wl, "G", "N"))


def test_band_weights():
    wl = torch.arange(400.0, 2501.0, 10.0)
    for letter in ("R", "G", "N", "S1", "S2"):
        for shape in ("boxcar", "triangular"):
            w = band_weights(wl, letter, shape=shape)
            assert w.shape == wl.shape and torch.isclose(w.sum(), torch.tensor(1.0)) and (w >= 0).all()
    assert torch.equal(band_weights(torch.tensor([650.0, 660.0, 850.0]), "R"), torch.tensor([0.5, 0.5, 0.0]))
    assert band_weights(wl, (700.0, 720.0), normalise=False).sum() == 3
    with pytest.raises(ValueError, match="no grid wavelength"):
        band_weights(torch.tensor([400.0, 500.0]), "N")


def test_torch_index_ignores_nan_outside_its_bands():
    wl = torch.arange(400.0, 2501.0, 10.0)
    x = torch.rand(1, wl.numel(), 2, 2)
    x[:, wl > 1000] = float("nan")
    assert torch.isfinite(ndvi(x, wl)).all()
