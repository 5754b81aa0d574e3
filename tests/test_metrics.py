"""Repair scores on the real Jasper Ridge scene: known values and properties."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from anyband_xr import datasets, masks, metrics


@pytest.fixture(scope="module")
def truth() -> xr.DataArray:
    return datasets.jasper_ridge()


@pytest.fixture(scope="module")
def noisy(truth) -> xr.DataArray:
    rng = np.random.default_rng(0)
    return truth + rng.normal(0, 0.01, truth.shape).astype(np.float32)


def test_identical(truth):
    assert metrics.psnr(truth, truth) == float("inf")
    assert metrics.ssim(truth, truth) == pytest.approx(1.0)
    assert metrics.sam(truth, truth) == pytest.approx(0.0, abs=1e-3)
    assert metrics.rmse(truth, truth) == 0.0
    assert metrics.ergas(truth, truth) == 0.0


def test_sam_is_scale_invariant(truth, noisy):
    assert metrics.sam(truth * 2.5, truth) == pytest.approx(0.0, abs=1e-3)
    assert metrics.sam(noisy * 2.5, truth) == pytest.approx(metrics.sam(noisy, truth), rel=1e-4)
    assert metrics.sam(noisy, truth) > 0.01


def test_known_values(truth, noisy):
    assert metrics.rmse(noisy, truth) == pytest.approx(0.01, rel=0.01)
    peak = float(truth.max() - truth.min())
    assert metrics.psnr(noisy, truth) == pytest.approx(20 * np.log10(peak / 0.01), abs=0.05)
    assert metrics.psnr(noisy, truth, data_range=1.0) == pytest.approx(40.0, abs=0.05)
    assert 0 < metrics.ssim(noisy, truth) < 1
    assert metrics.ergas(noisy, truth, ratio=0.25) == pytest.approx(metrics.ergas(noisy, truth) / 4)


def test_masked_metrics_count_only_masked_values(truth):
    mask = masks.band_loss(truth, 0.3, seed=0)
    pred = truth.where(~mask, truth + 0.02)
    full = mask.broadcast_like(truth)
    assert metrics.rmse(pred, truth, mask) == pytest.approx(0.02, rel=1e-3)
    assert metrics.rmse(pred, truth, full) == pytest.approx(0.02, rel=1e-3)
    assert metrics.rmse(pred, truth) == pytest.approx(0.02 * np.sqrt(mask.mean().item()), rel=1e-3)
    selected = truth.where(mask)
    peak = float(selected.max() - selected.min())
    assert metrics.psnr(pred, truth, mask) == pytest.approx(20 * np.log10(peak / 0.02), abs=0.01)
    assert metrics.ssim(pred, truth, mask) < metrics.ssim(pred, truth) < 1.0  # observed bands (SSIM 1) left out
    corner = xr.zeros_like(truth, dtype=bool)
    corner[:, :10, :10] = True
    changed = truth.where(~corner, truth * 1.5)
    assert metrics.sam(changed, truth, corner) == pytest.approx(0.0, abs=1e-3)
    assert metrics.ssim(truth + 0.01 * corner, truth, corner) < metrics.ssim(truth + 0.01 * corner, truth)


def test_index_agreement(truth, noisy):
    from anyband_xr.indices import index

    a, b = index(noisy, "NDVI"), index(truth, "NDVI")
    assert metrics.index_cc(b, b) == pytest.approx(1.0)
    assert metrics.index_rmse(b, b) == 0.0
    assert 0.5 < metrics.index_cc(a, b) < 1.0 and metrics.index_rmse(a, b) > 0
    pixels = xr.zeros_like(b, dtype=bool)
    pixels[:20] = True
    assert metrics.index_rmse(a, b, pixels) == pytest.approx(metrics.index_rmse(a[:20], b[:20]))


def test_scores_on_dask(truth, noisy):
    mask = masks.band_loss(truth, 0.3, seed=1)
    eager = metrics.scores(noisy, truth, mask)
    expected = {"psnr", "ssim", "sam", "rmse", "ergas", "ndvi_cc", "ndvi_rmse", "psnr_missing", "rmse_missing"}
    assert expected <= set(eager)
    assert all(isinstance(v, int if k.startswith("n_nonfinite") else float) for k, v in eager.items())
    assert eager["n_nonfinite"] == eager["n_nonfinite_missing"] == 0
    lazy = metrics.scores(noisy.chunk({"y": 50}), truth.chunk({"x": 50}), mask.chunk())
    assert lazy == pytest.approx(eager, rel=1e-4)
    assert "psnr_missing" not in metrics.scores(noisy, truth)


def test_clear_errors(truth):
    with pytest.raises(ValueError, match="same dims"):
        metrics.rmse(truth.isel(x=0), truth)
    with pytest.raises(ValueError, match="shape"):
        metrics.rmse(truth.isel(x=slice(1, None)), truth)
    with pytest.raises(ValueError, match="boolean"):
        metrics.rmse(truth, truth, truth)
    with pytest.raises(TypeError):
        metrics.rmse(truth.values, truth)
    assert metrics.rmse(truth.transpose("x", "y", "wavelength"), truth) == 0.0


def test_nonfinite_predictions_make_scores_nan_not_perfect(truth):
    mask = masks.band_loss(truth, 0.3, seed=2)
    pred = truth.where(~mask)  # the missing values left unfilled
    with pytest.warns(UserWarning, match="NaN or infinite"):
        out = metrics.scores(pred, truth, mask)
    assert out["n_nonfinite"] == out["n_nonfinite_missing"] == int(mask.sum()) * truth.sizes["y"] * truth.sizes["x"]
    for name in ("psnr", "ssim", "sam", "rmse", "ergas"):
        assert np.isnan(out[name]) and np.isnan(out[f"{name}_missing"])
    assert out["ndvi_cc"] == pytest.approx(1.0)  # NDVI's red and NIR bands were observed: a real score
    nodata = truth.where(~mask)  # no reference where the prediction has none: nothing to score there
    assert metrics.rmse(pred, nodata) == 0.0
