"""Synthetic training patches: mixtures of real (and PROSAIL-like) spectra on the canonical grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from anyband_xr.datasets import jasper_ridge
from anyband_xr.grid import CANONICAL_NM
from anyband_xr.training.data import PatchDataset
from anyband_xr.training.synthetic import SpectralPool, SyntheticConfig, SyntheticPatches


@pytest.fixture(scope="module")
def scene() -> xr.DataArray:
    return jasper_ridge()


def test_pool_skips_scenes_that_cover_little_of_the_grid(scene):
    vnir = scene.sel(wavelength=slice(None, 1000))
    pool = SpectralPool.from_scenes({"full": scene, "vnir": vnir}, per_scene=500)
    assert len(pool) == 500 and pool.values.shape == (500, CANONICAL_NM.size)
    means = (pool.values * pool.valid).sum(axis=1) / pool.valid.sum(axis=1)
    np.testing.assert_allclose(means, 1.0, rtol=1e-5)
    assert not pool.valid[:, CANONICAL_NM == 1400].any() and pool.valid[:, CANONICAL_NM == 800].all()


def test_patches_mix_endmembers_smoothly(scene):
    real = SpectralPool.from_scenes({"jasper": scene}, per_scene=300)
    flat = SpectralPool(np.linspace(0.5, 1.5, CANONICAL_NM.size, dtype=np.float32)[None].repeat(4, 0),
                        np.ones((4, CANONICAL_NM.size), dtype=bool))
    source = SyntheticPatches(real, flat, SyntheticConfig(noise=(0.0, 0.0), illumination=0.0))
    rng = np.random.default_rng(0)
    for _ in range(5):
        patch, valid = source.patch(16, rng)
        assert patch.shape == (CANONICAL_NM.size, 16, 16) and patch.dtype == np.float32
        assert np.isfinite(patch).all() and (patch > 0).all()
        assert np.array_equal(valid, real.valid[0]) or valid.all()  # real endmembers bring their water-band gaps
        assert 0.01 < float(patch.mean()) < 2.0


def test_dataset_serves_synthetic_items(scene):
    real = SpectralPool.from_scenes({"jasper": scene}, per_scene=200)
    source = SyntheticPatches(real, None, SyntheticConfig(p_synthetic=1.0))
    dataset = PatchDataset({"jasper": scene.isel(x=slice(0, 32))}, 16, 16, seed=1, synthetic=source)
    item = dataset[0]
    assert item["x0"].shape == (CANONICAL_NM.size, 16, 16)
    assert torch.isfinite(item["x0"]).all() and torch.equal(item["valid"], torch.from_numpy(real.valid[0]))
