"""Classical spectral repair baselines on plain arrays: linear / PCHIP interpolation and a Gaussian conditional mean.

Arrays are (B, P): B wavelengths (ascending nm) by P pixels; ``missing`` is True where a value is missing. Pixels
sharing one missing pattern are interpolated together (one SciPy call per pattern), so whole-band loss costs one
call; the interpolants of pixels that each miss their own values (per-value dropout) are computed for all pixels at
once (``anyband_xr.conditioning.interpolants``). The Gaussian conditional mean factorises each missing pattern's
system once and solves every pixel on its own with it (``anyband_xr.conditioning.gaussian.conditional_mean_per_pixel``):
a pixel's result never depends on which other pixels share its block. NumPy and SciPy only: the classical repairs
never import torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import xarray as xr
from scipy.interpolate import PchipInterpolator, interp1d

from anyband_xr.conditioning.interpolants import interpolate_pixels
from anyband_xr.conditioning.gaussian import (
    GaussianPrior,
    conditional_mean_per_pixel,
    load_gaussian_prior,
    missing_patterns,
)
from anyband_xr.grid import CANONICAL_NM, interpolation_matrix

INTERPOLATION_METHODS = ("linear", "pchip")
#: ``interpolate`` solves per missing pattern while there are at most this many patterns per pixel, and all pixels
#: at once (``interpolants.interpolate_pixels``) beyond: one call per pattern costs about as much as interpolating
#: 100 (linear) to 1000 (PCHIP) pixels at once (measured on Jasper Ridge, 198 bands by 10,000 pixels).
PATTERNS_PER_PIXEL = 0.01


def _check_observed(missing: np.ndarray, minimum: int) -> None:
    observed = (~missing).sum(axis=0)
    bad = np.flatnonzero(observed < minimum)
    if bad.size:
        raise ValueError(
            f"{bad.size} pixel(s) have fewer than {minimum} observed value(s) (first pixel index {int(bad[0])}); "
            "nothing can be inferred there. Mask those pixels out or provide at least one observed band."
        )


def _interpolant(x_nm: np.ndarray, y: np.ndarray, target_nm: np.ndarray, method: str) -> np.ndarray:
    """Interpolant (T, P) through values ``y`` (M, P) at ``x_nm`` (M,), flat beyond the first/last ``x_nm``."""
    if x_nm.size == 1:
        return np.broadcast_to(y, (target_nm.size, y.shape[1]))
    if method == "linear":
        return interpolation_matrix(x_nm, target_nm) @ y
    return PchipInterpolator(x_nm, y, axis=0)(np.clip(target_nm, x_nm[0], x_nm[-1]))


def interpolate(
    values: np.ndarray,
    wavelength_nm: np.ndarray,
    missing: np.ndarray,
    method: str = "linear",
    target_nm: np.ndarray | None = None,
) -> np.ndarray:
    """Interpolate each pixel's observed values along wavelength (flat beyond the first/last observed band).

    Returns (len(target_nm), P) float64, by default on ``wavelength_nm``. ``method`` is ``"linear"`` or
    ``"pchip"`` (``scipy.interpolate.PchipInterpolator``). Few missing patterns over many pixels (band loss): one
    SciPy call per pattern over all its pixels; otherwise (per-value dropout) every pixel at once by
    ``interpolants.interpolate_pixels`` (same values to rounding).
    """
    if method not in INTERPOLATION_METHODS:
        raise ValueError(f"method must be one of {INTERPOLATION_METHODS}, got {method!r}.")
    _check_observed(missing, 1)
    wl = np.asarray(wavelength_nm, dtype=np.float64)
    target = wl if target_nm is None else np.asarray(target_nm, dtype=np.float64)
    patterns, inverse = missing_patterns(missing)
    if patterns.shape[0] > PATTERNS_PER_PIXEL * values.shape[1]:
        result = interpolate_pixels(values.T, wl, ~missing.T, target, pchip=method == "pchip")
        return (result.linear if result.pchip is None else result.pchip).T
    out = np.empty((target.size, values.shape[1]))
    for k, pattern in enumerate(patterns):
        pixels = np.flatnonzero(inverse == k)
        observed = ~pattern
        out[:, pixels] = _interpolant(wl[observed], values[observed][:, pixels].astype(np.float64), target, method)
    return out


def fit_gaussian_prior(spectra: list[tuple[np.ndarray, np.ndarray]], shrinkage: float = 1e-4) -> GaussianPrior:
    """Fit the prior from ``(values (B, P), wavelength_nm (B,))`` pairs of real scenes.

    Each scene is resampled to the canonical grid within its own coverage; moments use every scene covering a pair
    of wavelengths (pairwise-complete), then the covariance is projected onto the positive semi-definite cone.
    """
    k = CANONICAL_NM.size
    total, count = np.zeros(k), np.zeros(k)
    cross, pair = np.zeros((k, k)), np.zeros((k, k))
    resampled = []
    for values, wl in spectra:
        norm = values / np.maximum(values.mean(axis=0, keepdims=True), 1e-6)
        inside = (CANONICAL_NM >= wl[0]) & (CANONICAL_NM <= wl[-1])
        z = np.zeros((k, values.shape[1]))
        z[inside] = interp1d(wl, norm, axis=0, assume_sorted=True)(CANONICAL_NM[inside])
        resampled.append((z, inside))
        total[inside] += z[inside].sum(axis=1)
        count[inside] += values.shape[1]
    mean = np.divide(total, count, out=np.zeros(k), where=count > 0)
    for z, inside in resampled:
        d = np.where(inside[:, None], z - mean[:, None], 0.0)
        cross += d @ d.T
        pair += np.outer(inside, inside) * z.shape[1]
    cov = np.divide(cross, pair, out=np.zeros((k, k)), where=pair > 1)
    uncovered = count == 0
    mean[uncovered] = np.interp(CANONICAL_NM[uncovered], CANONICAL_NM[~uncovered], mean[~uncovered])
    cov[uncovered, uncovered] = np.median(np.diag(cov)[~uncovered])
    eigval, eigvec = np.linalg.eigh((cov + cov.T) / 2)
    cov = (eigvec * np.clip(eigval, shrinkage * eigval.max(), None)) @ eigvec.T
    return GaussianPrior(CANONICAL_NM.copy(), mean, cov)


def fit_scene_prior(scenes: Iterable[xr.DataArray]) -> GaussianPrior:
    """``fit_gaussian_prior`` of (wavelength, y, x) scenes, each pixel with a finite value at every band."""
    spectra = []
    for scene in scenes:
        values = scene.transpose("wavelength", ...).values.reshape(scene.sizes["wavelength"], -1)
        spectra.append((values[:, np.isfinite(values).all(axis=0)], scene["wavelength"].values))
    return fit_gaussian_prior(spectra)


def gaussian_conditional_mean(
    values: np.ndarray,
    wavelength_nm: np.ndarray,
    missing: np.ndarray,
    prior: GaussianPrior | None = None,
    ridge: float = 1e-3,
) -> np.ndarray:
    """Ridge-regularised conditional mean of the missing values given the observed ones, per pixel.

    ``gaussian.conditional_mean`` of the prior (default: the shipped one) resampled onto ``wavelength_nm`` (its
    variances raised by ``ridge`` times their mean), by ``gaussian.conditional_mean_per_pixel``: one factorisation
    per missing pattern (whole-band loss: one for all pixels), each pixel solved with it on its own, so a pixel's
    result is the same bit for bit whatever the other pixels passed with it (dask chunks, Zarr tiles).
    Brightness-equivariant (see there). Returns (B, P) float64 with the observed values as they were.
    """
    _check_observed(missing, 1)
    prior = prior or load_gaussian_prior()
    mu, cov = prior.on_grid(wavelength_nm)
    ridged = cov + ridge * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
    return conditional_mean_per_pixel(values, missing, mu, ridged)
