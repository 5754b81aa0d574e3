"""Baselines only the benchmark needs: low-rank matrix completion and a Gaussian conditional mean from band integrals.

Arrays are (B, P): B wavelengths by P pixels, as in :mod:`anyband_xr.baselines`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from anyband_xr.model.prior import GaussianPrior, load_gaussian_prior
from anyband_xr.simulate import band_weights


def soft_impute(
    values: np.ndarray,
    missing: np.ndarray,
    shrink: float = 0.01,
    max_iter: int = 200,
    tol: float = 1e-5,
) -> np.ndarray:
    """Low-rank completion of the (bands x pixels) matrix by SoftImpute (Mazumder, Hastie & Tibshirani, 2010).

    Iterates ``Z <- S_lambda(observed + Z on the missing entries)``, ``S_lambda`` soft-thresholding the singular
    values by ``lambda = shrink * sigma_max`` of the band-mean-filled matrix. Observed values come back unchanged.
    """
    x = values.astype(np.float64)
    observed = ~missing
    counts = np.maximum(observed.sum(axis=1, keepdims=True), 1)
    band_mean = np.where(observed, x, 0.0).sum(axis=1, keepdims=True) / counts
    z = np.where(observed, x, band_mean)
    threshold = shrink * np.linalg.norm(z, 2)
    for _ in range(max_iter):
        u, s, vt = np.linalg.svd(np.where(observed, x, z), full_matrices=False)
        updated = (u * np.maximum(s - threshold, 0.0)) @ vt
        change = np.linalg.norm(updated - z) / max(np.linalg.norm(z), 1e-12)
        z = updated
        if change < tol:
            break
    return np.where(observed, x, z)


def gaussian_from_bands(
    values: np.ndarray,
    responses: xr.DataArray,
    target_nm: np.ndarray,
    prior: GaussianPrior | None = None,
    ridge: float = 1e-3,
) -> np.ndarray:
    """Conditional mean (T, P) of spectra on ``target_nm`` given band integrals ``values`` (n_bands, P).

    The observation is ``y = W x`` with ``W`` the SRF-weighted means of ``responses`` (band, wavelength) on
    ``target_nm``; with the ridge-regularised prior ``(mu, C)`` the estimate is
    ``mu + C W^T (W C W^T)^-1 (y - W mu)``, applied to brightness-normalised spectra as in
    :func:`anyband_xr.baselines.gaussian_conditional_mean`.
    """
    prior = prior or load_gaussian_prior()
    mu, cov = prior.on_grid(target_nm)
    weights = band_weights(target_nm, responses)
    obs_cov = weights @ cov @ weights.T
    obs_cov += ridge * np.trace(obs_cov) / obs_cov.shape[0] * np.eye(obs_cov.shape[0])
    gain = np.linalg.solve(obs_cov, weights @ cov).T
    observed_mu = weights @ mu
    y = values.astype(np.float64)
    scale = np.maximum(y.mean(axis=0), 1e-12) / max(observed_mu.mean(), 1e-12)
    return (mu[:, None] + gain @ (y / scale - observed_mu[:, None])) * scale
