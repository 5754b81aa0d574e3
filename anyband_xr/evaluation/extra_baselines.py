"""Baselines only the benchmark needs: a Gaussian conditional mean from band integrals.

The in-scene low-rank baseline of per-value dropout is :mod:`anyband_xr.lowrank` (users can run it too).

Arrays are (B, P): B wavelengths by P pixels, as in :mod:`anyband_xr.baselines`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from anyband_xr.conditioning.gaussian import GaussianPrior, conditional_mean, load_gaussian_prior
from anyband_xr.simulate import band_weights


def gaussian_from_bands(
    values: np.ndarray, responses: xr.DataArray, target_nm: np.ndarray, ridge: float = 1e-3,
    prior: GaussianPrior | None = None,
) -> np.ndarray:
    """Conditional mean (T, P) of spectra on ``target_nm`` given band integrals ``values`` (n_bands, P).

    The observation is ``y = W x`` with ``W`` the SRF-weighted means of ``responses`` (band, wavelength) on
    ``target_nm``: :func:`anyband_xr.conditioning.gaussian.conditional_mean` of ``prior`` (default: the shipped
    one) resampled onto ``target_nm``, with a ridge variance of ``ridge`` times the mean variance of ``W x``.
    """
    mu, cov = (prior or load_gaussian_prior()).on_grid(target_nm)
    weights = band_weights(target_nm, responses)
    cross = weights @ cov
    observed_cov = cross @ weights.T
    observed_cov += ridge * np.trace(observed_cov) / observed_cov.shape[0] * np.eye(observed_cov.shape[0])
    return conditional_mean(values, mu, weights @ mu, cross.T, observed_cov)
