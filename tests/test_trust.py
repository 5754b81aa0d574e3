"""Trust in the prior over the interpolant, from leave-one-out residuals on the observed bands."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anyband_xr import datasets
from anyband_xr.demo import held_out
from anyband_xr.conditioning import bridge
from anyband_xr.conditioning.gaussian import RANK, load_pca_prior
from anyband_xr.grid import interpolation_matrix
from anyband_xr.conditioning.prior import pixel_estimate
from anyband_xr.conditioning.trust import MIN_BANDS, interpolation_loo, prior_weight

WL = np.arange(400.0, 1000.0, 10.0)


def test_prior_leave_one_out_residuals_match_refitting_without_the_band():
    da = datasets.jasper_ridge()
    x = torch.as_tensor(da.isel(y=10, x=10).values.astype(np.float64))[None]
    wl = da["wavelength"].values.astype(np.float64)
    observed = torch.zeros_like(x, dtype=torch.bool)
    observed[:, ::3] = True
    closed_form = pixel_estimate(x, wl, observed).loo_residual[0]
    for band in (30, 60, 120, 150):
        without = observed.clone()
        without[:, band] = False
        refit = pixel_estimate(x, wl, without).mean
        predicted = float(refit[0] @ torch.as_tensor(interpolation_matrix(bridge.CANONICAL_NM, wl[band : band + 1]))[0])
        # Exact for a fixed brightness; refitting also re-estimates the pixel's brightness without the band.
        assert float(closed_form[band]) == pytest.approx(float(x[0, band]) - predicted, rel=0.05, abs=2e-3)
    assert (closed_form[~observed[0]] == 0).all()


def test_interpolation_residuals_vanish_on_straight_lines_and_need_neighbours_on_both_sides():
    values = torch.as_tensor(0.1 + 0.001 * (WL - 400.0))[None]
    observed = torch.ones_like(values, dtype=torch.bool)
    residual, distance, usable = interpolation_loo(values, torch.as_tensor(WL), observed)
    torch.testing.assert_close(residual, torch.zeros_like(residual))
    assert not usable[0, 0] and not usable[0, -1] and usable[0, 1:-1].all()
    assert (distance[0, 1:-1] == 10.0).all()
    curved = values + torch.as_tensor(((WL - 700.0) / 300.0) ** 2)[None]
    residual, _, _ = interpolation_loo(curved, torch.as_tensor(WL), observed)
    # A parabola's linear interpolation over +-10 nm misses it by h^2 f''/2 = (10/300)^2.
    torch.testing.assert_close(residual[0, 1:-1], torch.full((WL.size - 2,), -(10.0 / 300.0) ** 2, dtype=torch.float64))
    few = torch.zeros_like(observed)
    few[0, : MIN_BANDS - 1] = True
    assert not interpolation_loo(values, torch.as_tensor(WL), few)[2].any()


def _weight(prior_loo: torch.Tensor, values: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    _, distance = bridge.interpolate_observed(values[:, :, None, None], WL, ~observed[:, :, None, None], WL)
    return prior_weight(prior_loo, values, WL, observed, distance, WL)[0, :, 0, 0]


def test_weight_follows_whichever_guess_predicts_the_observed_bands():
    rng = np.random.default_rng(0)
    values = torch.as_tensor(0.3 + 0.02 * rng.standard_normal(WL.size))[None]
    observed = torch.ones_like(values, dtype=torch.bool)
    observed[0, 20:30] = False
    observed[0, 45:] = False
    perfect_prior = _weight(torch.zeros_like(values), values, observed)
    assert (perfect_prior[observed[0]] == 0).all() and (perfect_prior[~observed[0]] == 1).all()
    straight = torch.as_tensor(0.1 + 0.001 * (WL - 400.0))[None]
    noisy_prior = torch.as_tensor(0.05 * rng.standard_normal(WL.size))[None] * observed
    assert (_weight(noisy_prior, straight, observed)[:45] == 0).all()
    # Comparable errors: the prior's weight grows with the distance to the nearest observed band, towards the
    # middle of a gap, and faster beyond the last band, where the interpolant extrapolates flat.
    weight = _weight(0.02 * torch.as_tensor(rng.choice([-1.0, 1.0], WL.size))[None] * observed, values, observed)
    inside, beyond = weight[20:30], weight[45:]
    assert 0 < inside[0] < inside[4] < 1 and torch.allclose(inside, inside.flip(0))
    assert (inside[1:5] > inside[:4]).all() and (beyond[1:] > beyond[:-1]).all()
    assert beyond[4] > inside[4]
    nothing = torch.zeros_like(observed)
    nothing[0, [0, 30, 59]] = True
    assert (_weight(torch.zeros_like(values), values, nothing)[~nothing[0]] == 1).all()


def _rmse_of_guesses(truth: np.ndarray, wl: np.ndarray, missing: np.ndarray) -> tuple[float, float, float]:
    """RMSE over the missing values of the interpolant, the prior and their weighted combination (the hint)."""
    values = torch.as_tensor(np.where(missing, 0.0, truth))[None].float()
    m = torch.as_tensor(missing)[None]
    cond = bridge.make_condition(values, wl, m, target_nm=wl)
    combined = bridge.to_grid(bridge.GAIN * cond.tensor()[:, 3 * bridge.CANONICAL_NM.size :], cond)
    interp, _ = bridge.interpolate_observed(values, wl, m, wl, method="pchip")
    prior_only = bridge.to_grid(bridge.GAIN * (cond.prior - cond.interp) / cond.scale, cond)
    return tuple(float(((e[0].numpy() - truth)[missing] ** 2).mean() ** 0.5) for e in (interp, prior_only, combined))


def test_the_combination_takes_the_prior_on_spectra_the_prior_describes():
    prior = load_pca_prior()
    rng = np.random.default_rng(1)
    wl = bridge.CANONICAL_NM[bridge.CANONICAL_NM <= 1300]
    spectra = prior.mean[:, None] + prior.basis @ rng.standard_normal((RANK, 64))
    truth = np.clip(0.3 * spectra[: wl.size].reshape(wl.size, 8, 8), 0.01, None)
    missing = np.broadcast_to(rng.random((wl.size, 1, 1)) < 0.4, truth.shape).copy()
    interp, prior_only, combined = _rmse_of_guesses(truth, wl, missing)
    assert prior_only < 0.7 * interp and combined < 1.1 * prior_only


def test_the_combination_stays_with_the_interpolant_on_the_bundled_scene():
    truth = held_out(datasets.jasper_ridge()).astype("float32")
    wl = truth["wavelength"].values
    for seed in range(4):
        rng = np.random.default_rng(seed)
        missing = np.broadcast_to(rng.random((wl.size, 1, 1)) < 0.5, truth.shape).copy()
        interp, prior_only, combined = _rmse_of_guesses(truth.values, wl, missing)
        assert interp < 0.7 * prior_only
        assert combined - interp < 0.35 * (prior_only - interp)  # far nearer the better guess
