"""The Gaussian spectral prior: the ridge baseline and the probabilistic-PCA conditional mean of the model's context."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from anyband_xr import baselines, datasets, simulate, srf
from anyband_xr.conditioning import bridge, gaussian
from anyband_xr.conditioning.gaussian import RANK, PCAPrior, load_gaussian_prior, load_pca_prior
from anyband_xr.grid import CANONICAL_NM, interpolation_matrix
from anyband_xr.conditioning.prior import HINT_LIMIT, band_set_estimator, pixel_estimate


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, np.ndarray]:
    """Bundled Jasper Ridge as (bands, pixels) reflectance and its wavelengths (nm)."""
    da = datasets.jasper_ridge().astype("float64")
    return da.transpose("wavelength", ...).values.reshape(da.sizes["wavelength"], -1), da["wavelength"].values


def _rmse(estimate: np.ndarray, truth: np.ndarray, missing: np.ndarray) -> float:
    return float(np.sqrt(((estimate - truth)[missing] ** 2).mean()))


def test_pca_prior_keeps_the_leading_eigenvectors():
    prior = load_pca_prior()
    assert prior.basis.shape == (CANONICAL_NM.size, RANK) and prior.noise > 0
    explained = (prior.basis**2).sum() + prior.noise * CANONICAL_NM.size
    total = np.trace(baselines.load_gaussian_prior().cov)
    assert explained == pytest.approx(total, rel=0.02)


def test_pca_prior_has_the_same_bits_whatever_the_blas_threads():
    # A dask worker (one thread) and the client (all cores) must condition on the same prior, bit for bit.
    gaussian = load_gaussian_prior()
    with threadpool_limits(1):
        single = PCAPrior.from_gaussian(gaussian)
    with threadpool_limits(max(2, os.cpu_count() or 1)):
        threaded = PCAPrior.from_gaussian(gaussian)
    assert single.noise == threaded.noise
    np.testing.assert_array_equal(single.basis, threaded.basis)


def test_conditional_mean_recovers_a_spectrum_of_the_prior_from_a_few_bands():
    prior = load_pca_prior()
    rng = np.random.default_rng(0)
    spectrum = 0.3 * (prior.mean + prior.basis @ rng.standard_normal(RANK))
    observed = np.zeros(CANONICAL_NM.size, dtype=bool)
    observed[::3] = True
    values = torch.as_tensor(spectrum)[None]
    estimate = pixel_estimate(values, CANONICAL_NM, torch.as_tensor(observed)[None]).mean[0].numpy()
    error = np.abs(estimate - spectrum)[~observed].max() / np.abs(spectrum).max()
    assert error < 0.05


def test_conditional_mean_on_band_integrals_conditions_on_what_the_bands_measure(scene):
    values, wl = scene
    responses = srf.get("sentinel-2a")
    order = np.argsort(responses["centroid"].values)
    weights = simulate.band_weights(CANONICAL_NM, responses)[order]
    centroids = responses["centroid"].values[order]
    bands = torch.as_tensor(values.T[:50] @ simulate.band_weights(wl, responses)[order].T)
    observed = torch.ones(1, centroids.size, dtype=torch.bool)
    points = pixel_estimate(bands, centroids, observed)
    explicit = pixel_estimate(bands, centroids, observed, operator=interpolation_matrix(CANONICAL_NM, centroids))
    for a, b in zip(points, explicit):
        torch.testing.assert_close(a, b)
    integrals = pixel_estimate(bands, centroids, observed, operator=weights)
    assert not torch.allclose(integrals.mean, points.mean)
    on_bands = [np.abs(e.mean.numpy() @ weights.T - bands.numpy()).mean() for e in (integrals, points)]
    assert on_bands[0] < 0.01 and on_bands[1] < 0.01  # both stay near what the bands measured
    with pytest.raises(ValueError, match="operator has shape"):
        pixel_estimate(bands, centroids, observed, operator=weights[:, :-1])


def test_conditional_mean_is_brightness_equivariant_and_shared_band_sets_match_per_pixel(scene):
    values, wl = scene
    rng = np.random.default_rng(1)
    missing = np.repeat(rng.random(wl.size)[:, None] < 0.3, values.shape[1], axis=1)
    x = torch.as_tensor(values.T[:500])
    observed = torch.as_tensor(~missing.T[:500])
    shared = pixel_estimate(x, wl, observed[:1])
    per_pixel = pixel_estimate(x, wl, observed)
    for a, b in zip(shared, per_pixel):
        torch.testing.assert_close(a, b)
    scaled = pixel_estimate(3.0 * x, wl, observed)
    for a, b in zip(scaled, per_pixel):
        torch.testing.assert_close(a, 3.0 * b)
    empty = pixel_estimate(x[:2], wl, torch.zeros(2, wl.size, dtype=torch.bool))
    assert all((t == 0).all() for t in empty)


def test_the_hint_per_pixel_and_per_band_set_is_the_one_gaussian_conditional_mean(scene):
    values, wl = scene
    observed = np.random.default_rng(3).random(wl.size) < 0.7
    x = values[:, :300]
    prior = load_pca_prior()
    operator = interpolation_matrix(CANONICAL_NM, wl[observed])
    cross = prior.cov @ operator.T
    noisy = operator @ cross + prior.noise * np.eye(operator.shape[0])
    expected = gaussian.conditional_mean(x[observed], prior.mean, operator @ prior.mean, cross, noisy)
    mask = torch.as_tensor(np.repeat(observed[None], x.shape[1], axis=0))
    per_pixel = pixel_estimate(torch.as_tensor(x.T), wl, mask)
    np.testing.assert_allclose(per_pixel.mean.numpy().T, expected, rtol=1e-9, atol=1e-12)
    per_band_set = band_set_estimator(wl[observed]).estimate(torch.as_tensor(x[observed])[None])
    np.testing.assert_allclose(per_band_set.mean[0].numpy(), expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(per_band_set.loo_residual[0].numpy(), per_pixel.loo_residual.numpy().T[observed],
                               rtol=1e-7, atol=1e-12)


def test_conditional_mean_scores_like_the_full_covariance_ridge_baseline(scene):
    values, wl = scene
    rng = np.random.default_rng(2)
    missing = rng.random(values.shape) < 0.5
    ridge = baselines.gaussian_conditional_mean(values, wl, missing)
    pca = pixel_estimate(torch.as_tensor(values.T), wl, torch.as_tensor(~missing.T)).mean.numpy()
    on_grid = pca @ interpolation_matrix(CANONICAL_NM, wl).T
    assert _rmse(on_grid.T, values, missing) < 1.1 * _rmse(ridge, values, missing)
    np.testing.assert_array_equal(ridge[~missing], values[~missing])


def test_condition_carries_the_bounded_prior_hint(scene):
    values, wl = scene
    cube = torch.as_tensor(values.reshape(wl.size, 100, 100)[None, :, :8, :8].astype(np.float32))
    missing = torch.zeros_like(cube, dtype=torch.bool)
    missing[:, 40:80] = True
    cond = bridge.make_condition(cube, wl, missing)
    hint = cond.tensor()[:, 3 * CANONICAL_NM.size :]
    expected = (cond.trust * (cond.prior - cond.interp) / cond.scale).clamp(-HINT_LIMIT, HINT_LIMIT)
    torch.testing.assert_close(hint, expected)
    assert ((cond.trust >= 0) & (cond.trust <= 1)).all() and (cond.trust[cond.confidence == 1] == 0).all()
    assert cond.prior.shape == cond.interp.shape and torch.isfinite(cond.prior).all()
