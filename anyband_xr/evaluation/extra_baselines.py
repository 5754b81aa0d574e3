"""Baselines only the benchmark needs: a Gaussian conditional mean from band integrals.

The in-scene low-rank baseline of per-value dropout is :mod:`anyband_xr.lowrank` (users can run it too).

Arrays are (B, P): B wavelengths by P pixels, as in :mod:`anyband_xr.baselines`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from anyband_xr.conditioning.gaussian import GaussianPrior, load_gaussian_prior
from anyband_xr.simulate import band_weights


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
