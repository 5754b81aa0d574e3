"""The Gaussian spectral prior of the real training scenes and its conditional mean (the model's prior hint).

The prior (``anyband_xr/data/gaussian_prior.safetensors``, written by ``scripts/fit_gaussian_prior.py`` from the
training columns only) is the mean and covariance of brightness-normalised spectra (each divided by its mean) on
the canonical grid. The classical Gaussian (ridge) baseline uses it whole; the model's condition carries its
conditional mean under a probabilistic-PCA form of it (leading ``RANK`` eigenvectors plus isotropic noise), which
costs one small ``RANK x RANK`` solve per pixel instead of one of the size of the observed band set.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

import numpy as np
import torch
from safetensors.numpy import load_file
from scipy.interpolate import interp1d
from threadpoolctl import threadpool_limits

PRIOR_FILE = "gaussian_prior.safetensors"
#: Eigenvectors kept by the model's probabilistic-PCA prior (20-40 score alike on the real scenes' held-out
#: columns, within 3% of the full-covariance ridge baseline's RMSE; the per-pixel cost grows with its square).
RANK = 24
#: Smallest noise variance of that prior, relative to its largest eigenvalue (keeps the per-pixel solve stable).
NOISE_FLOOR = 1.0e-4
#: Bytes of float64 workspace per batched solve: (pixels, RANK, RANK + bands) of normal matrices and leverages.
WORKSPACE_BYTES = 128 * 2**20
#: Smallest ``1 - leverage`` in the leave-one-out residual (a band the fit follows almost exactly).
LEVERAGE_FLOOR = 0.05
#: Bound on the normalised prior hint ``(prior - interp) / scale`` fed to the network.
HINT_LIMIT = 10.0


def linear_operator(source_nm: np.ndarray, target_nm: np.ndarray) -> np.ndarray:
    """Matrix (len(target_nm), len(source_nm)) of linear interpolation with flat extrapolation."""
    eye = np.eye(source_nm.size)
    return interp1d(source_nm, eye, axis=0, bounds_error=False, fill_value=(eye[0], eye[-1]))(target_nm)


@dataclass(frozen=True)
class GaussianPrior:
    """Mean and covariance of brightness-normalised spectra (each divided by its mean) on the canonical grid."""

    wavelength_nm: np.ndarray
    mean: np.ndarray
    cov: np.ndarray

    def on_grid(self, wavelength_nm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean (B,) and covariance (B, B) linearly resampled onto ``wavelength_nm``."""
        op = linear_operator(self.wavelength_nm, wavelength_nm)
        return op @ self.mean, op @ self.cov @ op.T


@lru_cache(maxsize=1)
def load_gaussian_prior() -> GaussianPrior:
    """The shipped prior fitted on the real training scenes (``scripts/fit_gaussian_prior.py``)."""
    with resources.as_file(resources.files("anyband_xr") / "data" / PRIOR_FILE) as path:
        tensors = load_file(str(path))
    return GaussianPrior(tensors["wavelength_nm"], tensors["mean"], tensors["cov"])


@dataclass(frozen=True)
class PCAPrior:
    """Probabilistic-PCA form of a ``GaussianPrior``: ``x = mean + basis @ w + noise``, ``w ~ N(0, I)``.

    ``basis`` (K, RANK) holds the leading eigenvectors scaled by ``sqrt(eigenvalue - noise)``; ``noise`` is the
    mean of the remaining eigenvalues (the maximum-likelihood estimate), floored at ``NOISE_FLOOR`` times the
    largest.
    """

    wavelength_nm: np.ndarray
    mean: np.ndarray
    basis: np.ndarray
    noise: float

    @classmethod
    def from_gaussian(cls, prior: GaussianPrior, rank: int = RANK) -> PCAPrior:
        """Keep the ``rank`` leading eigenvectors of ``prior.cov``.

        The eigendecomposition runs on one BLAS thread: with more, LAPACK's result differs in the last bits with the
        thread count, and a dask worker and the client would condition on priors a few ulps apart (the tiled Zarr job
        promises the in-memory repair's bits).
        """
        with threadpool_limits(1):
            eigval, eigvec = np.linalg.eigh(prior.cov)
        eigval, eigvec = eigval[::-1], eigvec[:, ::-1]
        noise = max(float(eigval[rank:].mean()), NOISE_FLOOR * float(eigval[0]))
        basis = eigvec[:, :rank] * np.sqrt(np.clip(eigval[:rank] - noise, 0.0, None))
        return cls(prior.wavelength_nm, prior.mean, basis, noise)


@lru_cache(maxsize=1)
def load_pca_prior() -> PCAPrior:
    """``PCAPrior`` of the shipped Gaussian prior."""
    return PCAPrior.from_gaussian(load_gaussian_prior())


class PriorEstimate(NamedTuple):
    """The prior's estimate of each pixel: ``mean`` (P, K) on the prior's grid and ``loo_residual`` (P, B) the
    leave-one-out residual at each observed band (zero where not observed), both in data units."""

    mean: torch.Tensor
    loo_residual: torch.Tensor


def conditional_mean(
    values: torch.Tensor,
    wavelength_nm: np.ndarray | torch.Tensor,
    observed: torch.Tensor,
    prior: PCAPrior | None = None,
    operator: np.ndarray | None = None,
) -> PriorEstimate:
    """Each pixel's prior conditional mean on the prior's grid given its observed values, and how well the prior
    predicts observed values it did not see (see ``PriorEstimate``).

    Args:
        values: (P, B) spectra, pixels by band, any finite number where not observed.
        wavelength_nm: (B,) band wavelengths, nm.
        observed: (P, B) bool, or (1, B) when every pixel shares one band set (one solve then serves all).
        prior: default :func:`load_pca_prior`.
        operator: (B, K) map from a spectrum on the prior's grid to the observed bands, e.g. SRF-weighted means
            (``anyband_xr.simulate.band_weights``) when the bands are integrals over their responses; default:
            point samples at ``wavelength_nm`` (linear interpolation).

    Returns:
        ``mean`` (P, K) float64 ``s * (mean + basis @ E[w | observed])``, ``s`` each pixel's brightness (observed
        mean over the prior mean's on the same bands), so the estimate is equivariant to scaling; pixels without
        any observation get zeros. ``loo_residual`` (P, B): the in-sample residual divided by ``1 - leverage``
        (the band's diagonal entry of the fit's hat matrix), the leave-one-out residual of this ridge regression in
        closed form; ``1 - leverage`` is floored at ``LEVERAGE_FLOOR``.
    """
    prior = prior or load_pca_prior()
    device = values.device
    wl = (wavelength_nm.detach().cpu().numpy() if isinstance(wavelength_nm, torch.Tensor) else np.asarray(wavelength_nm)).astype(np.float64)
    if operator is None:
        operator = linear_operator(prior.wavelength_nm, wl)
    if operator.shape != (wl.size, prior.wavelength_nm.size):
        raise ValueError(f"operator has shape {operator.shape}, expected ({wl.size}, {prior.wavelength_nm.size}): bands by prior grid.")
    h = torch.as_tensor(operator, dtype=torch.float64, device=device)  # (B, K)
    basis = torch.as_tensor(prior.basis, device=device)
    mean = torch.as_tensor(prior.mean, device=device)
    g, mu = h @ basis, h @ mean  # (B, r), (B,)
    x = values.to(torch.float64)
    obs = observed.to(torch.float64)
    x = torch.where(observed, x, 0.0)
    brightness = (obs * mu).sum(dim=1)
    s = ((obs * x).sum(dim=1) / brightness.clamp_min(1e-12)).clamp_min(1e-12)  # (P,)
    residual = obs * (x / s[:, None] - mu)  # (P, B)
    rank = basis.shape[1]
    eye = prior.noise * torch.eye(rank, dtype=torch.float64, device=device)
    outer = (g[:, :, None] * g[:, None, :]).reshape(g.shape[0], rank * rank)  # (B, r*r)
    rhs = residual @ g  # (P, r)
    w = torch.empty_like(rhs)
    leverage = torch.empty(obs.shape, dtype=torch.float64, device=device)  # g_b normal^-1 g_b' per band set
    step = max(1, WORKSPACE_BYTES // (8 * rank * (rank + g.shape[0]))) if observed.shape[0] > 1 else rhs.shape[0]
    for start in range(0, rhs.shape[0], step):
        stop = start + step
        normal = eye + (obs[start:stop] @ outer).reshape(-1, rank, rank)
        factor = torch.linalg.cholesky(normal)
        w[start:stop] = torch.cholesky_solve(rhs[start:stop, :, None], factor)[..., 0]
        leverage[start:stop] = torch.einsum("bi,pij,bj->pb", g, torch.cholesky_inverse(factor), g)
    count = obs.sum(dim=1)
    loo = obs * (residual - w @ g.T) / (1.0 - leverage).clamp_min(LEVERAGE_FLOOR) * s[:, None]
    out = (mean + w @ basis.T) * s[:, None]
    return PriorEstimate(torch.where(count[:, None] > 0, out, 0.0), torch.where(count[:, None] > 0, loo, 0.0))
