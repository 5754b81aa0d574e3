"""Seeded mask generators on the real Jasper Ridge scene."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from anyband_xr import datasets, masks
from tests.helpers import count_dask_computes


@pytest.fixture(scope="module")
def scene() -> xr.DataArray:
    return datasets.jasper_ridge()


def _srf(edges: list[tuple[float, float]]) -> xr.DataArray:
    """Boxcar SRFs (band, wavelength[nm, 1 nm]) with response 1 over each (low, high) range."""
    nm = np.arange(350.0, 2600.0)
    values = np.array([(nm >= low) & (nm <= high) for low, high in edges], dtype=float)
    return xr.DataArray(values, dims=("band", "wavelength"), coords={"wavelength": nm})


def test_band_loss_fraction_and_seed(scene):
    mask = masks.band_loss(scene, 0.3, seed=0)
    assert mask.dims == ("wavelength",) and mask.dtype == bool
    assert int(mask.sum()) == round(0.3 * 198)
    assert mask.equals(masks.band_loss(scene, 0.3, seed=0))
    assert not mask.equals(masks.band_loss(scene, 0.3, seed=1))
    np.testing.assert_array_equal(mask.wavelength, scene.wavelength)
    assert bool((scene.where(~mask).isnull().sum("wavelength") == int(mask.sum())).all())
    assert int(masks.band_loss(scene, 0.0).sum()) == 0 and bool(masks.band_loss(scene, 1.0).all())
    with pytest.raises(ValueError, match="fraction"):
        masks.band_loss(scene, 1.5)


def test_dropout_numpy(scene):
    mask = masks.dropout(scene, 0.2, seed=3)
    assert mask.shape == scene.shape and mask.dtype == bool
    assert abs(float(mask.mean()) - 0.2) < 0.01
    assert mask.equals(masks.dropout(scene, 0.2, seed=3))


def test_dropout_dask_lazy_and_deterministic(scene):
    lazy = scene.chunk({"y": 50, "x": 50})
    with count_dask_computes() as counter:
        first = masks.dropout(lazy, 0.1, seed=7)
        second = masks.dropout(lazy, 0.1, seed=7)
    assert counter.count == 0
    assert first.chunks == lazy.chunks
    a, b = first.values, second.values
    np.testing.assert_array_equal(a, b)
    assert abs(a.mean() - 0.1) < 0.01
    assert not np.array_equal(a[:, :50, :50], a[:, :50, 50:])
    assert not np.array_equal(a, masks.dropout(lazy, 0.1, seed=8).values)


def test_spectral_gaps(scene):
    gap = masks.spectral_gap(scene, 1340, 1450)
    inside = (scene.wavelength >= 1340) & (scene.wavelength <= 1450)
    np.testing.assert_array_equal(gap.values, inside.values)
    random = masks.random_gap(scene, 200, seed=2)
    assert random.equals(masks.random_gap(scene, 200, seed=2))
    covered = scene.wavelength.where(random, drop=True)
    assert covered.size > 0 and float(covered.max() - covered.min()) <= 200
    with pytest.raises(ValueError, match="width_nm"):
        masks.random_gap(scene, 5000)


def test_sensor_coverage(scene):
    hidden = masks.sensor_coverage(scene, _srf([(640, 680), (820, 860)]))
    seen = ((scene.wavelength >= 640) & (scene.wavelength <= 680)) | (
        (scene.wavelength >= 820) & (scene.wavelength <= 860)
    )
    np.testing.assert_array_equal(hidden.values, ~seen.values)


def test_sensor_coverage_of_a_library_sensor(scene):
    srf = pytest.importorskip("anyband_xr.srf")
    sentinel2 = next(name for name in srf.list_sensors() if "sentinel-2" in name)
    hidden = masks.sensor_coverage(scene, sentinel2)
    assert not bool(hidden.sel(wavelength=665, method="nearest"))
    assert bool(hidden.sel(wavelength=1400, method="nearest"))
    assert 0.5 < float(hidden.mean()) < 1.0


def test_combine_broadcasts(scene):
    bands = masks.band_loss(scene, 0.2, seed=0)
    pixels = masks.dropout(scene, 0.05, seed=0)
    both = masks.combine(bands, pixels)
    assert both.dims == scene.dims
    np.testing.assert_array_equal(both.values, bands.values[:, None, None] | pixels.values)
    with pytest.raises(ValueError):
        masks.combine()
