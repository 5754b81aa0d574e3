"""Checks against the project's real data folder; skipped where it is absent (e.g. a clean clone)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anyband_xr import datasets
from anyband_xr.io import read_jasper_ridge, read_labels, read_mat

HSI = Path(__file__).resolve().parents[2] / "shared" / "data" / "hsi"
pytestmark = pytest.mark.skipif(not HSI.is_dir(), reason=f"real data folder {HSI} absent")


def test_bundled_scene_matches_source():
    source = read_jasper_ridge(HSI / "jasper_ridge" / "jasperRidge2_R198.mat")
    np.testing.assert_allclose(datasets.jasper_ridge(), source["reflectance"], atol=1e-6)
    np.testing.assert_allclose(datasets.jasper_ridge_abundances(), source["abundance"])
    np.testing.assert_allclose(datasets.jasper_ridge_endmembers(), source["endmember_spectra"])


def test_real_scenes_and_labels():
    scenes = datasets.training_scenes(HSI)
    assert {k: v.shape for k, v in scenes.items()} == {
        "houston_crop/houston_dataset": (48, 128, 128),
        "indian_pines_simulated/simu_indian": (220, 145, 145),
        "jasper_ridge/jasperRidge2_R198": (198, 100, 100),
    }
    houston = read_mat(HSI / "houston_crop" / "houston_dataset.mat")
    assert 0 < float(houston.min()) and float(houston.max()) < 2
    assert read_labels(HSI / "houston_crop" / "houston_dataset.mat").shape == (512, 512)
    assert read_labels(HSI / "indian_pines_simulated" / "Indian_pines_gt.mat").max() == 16
