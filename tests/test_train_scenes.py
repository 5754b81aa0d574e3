"""Choosing the training scenes: ``scenes`` / ``exclude_scenes`` in a training config (leave-one-scene-out runs)."""

from __future__ import annotations

import json

import pytest

from anyband_xr.datasets import jasper_ridge, select_scenes
from anyband_xr.grid import holdout_start


@pytest.fixture(scope="module")
def two_scenes():
    scene = jasper_ridge()
    return {"left/a": scene.isel(y=slice(0, 20), x=slice(0, 40)), "right/b": scene.isel(y=slice(20, 40), x=slice(0, 40))}


def test_select_scenes_matches_keys_and_folders_and_rejects_unknown_names(two_scenes):
    assert list(select_scenes(two_scenes, exclude=["left"])) == ["right/b"]
    assert list(select_scenes(two_scenes, include=["left/a"])) == ["left/a"]
    assert list(select_scenes(two_scenes)) == ["left/a", "right/b"]
    with pytest.raises(ValueError, match="match none of the scenes"):
        select_scenes(two_scenes, exclude=["lefty"])


def test_a_left_out_scene_reaches_neither_patches_nor_the_synthetic_pool(two_scenes, tmp_path):
    from anyband_xr.training.train import train

    config = {
        "cache_dir": str(tmp_path / "cache"), "state_dir": str(tmp_path / "state"),
        "output": str(tmp_path / "weights" / "mcd"), "patch_size": 16, "patch_stride": 16, "batch_size": 2,
        "steps": 2, "warmup_steps": 1, "num_workers": 0, "use_sensor_library": False, "exclude_scenes": ["right"],
        "model": {"base_channels": 8, "cam_channels": 8, "time_embed": 16, "channel_mults": [1, 2]},
        "mspl": {"use_region": False}, "synthetic": {"p_synthetic": 0.5, "pixels_per_scene": 100000},
    }
    record = json.loads(train(config, scenes=two_scenes).with_suffix(".json").read_text())
    assert record["scenes"] == ["left/a"] and record["exclude_scenes"] == ["right"]
    assert record["synthetic"]["real_spectra"] == 20 * holdout_start(40)  # the training columns of `left/a` alone
    assert not (tmp_path / "cache" / "right__b.zarr").exists()
    # The prior hint's Gaussian prior is the run's own, fitted on `left/a`'s training columns, and repairs with
    # these weights condition on it rather than on the shipped prior (fitted on every scene).
    import numpy as np

    from anyband_xr.baselines import fit_scene_prior
    from anyband_xr.conditioning.gaussian import load_pca_prior
    from anyband_xr.model.weights import spectral_prior

    own = spectral_prior(tmp_path / "weights" / "mcd")
    left = two_scenes["left/a"].isel(x=slice(0, holdout_start(40)))
    np.testing.assert_allclose(own.mean, fit_scene_prior([left]).mean, rtol=1e-6)
    assert record["gaussian_prior"] == "fit" and not np.allclose(own.mean, load_pca_prior().mean)
