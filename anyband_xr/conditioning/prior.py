"""The model's prior hint: the conditional mean of the Gaussian spectral prior per pixel, in torch.

The hint conditions the probabilistic-PCA form of the prior (``anyband_xr.conditioning.gaussian.PCAPrior``: leading
``RANK`` eigenvectors plus isotropic noise) on each pixel's observed values: one small ``RANK x RANK`` solve per
pixel (``pixel_estimate``) when the pixels observe different bands, one set of matrices for the whole tile
(``band_set_estimator``) when they all observe the same bands.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from anyband_xr.conditioning.gaussian import PCAPrior, conditional_gain, load_pca_prior
from anyband_xr.grid import interpolation_matrix

#: Bytes of float64 workspace per batched solve: (pixels, RANK, RANK + bands) of normal matrices and leverages.
WORKSPACE_BYTES = 128 * 2**20
#: Smallest ``1 - leverage`` in the leave-one-out residual (a band the fit follows almost exactly).
LEVERAGE_FLOOR = 0.05
#: Bound on the normalised prior hint ``(prior - interp) / scale`` fed to the network.
HINT_LIMIT = 10.0


class PriorEstimate(NamedTuple):
    """The prior's estimate of each pixel: ``mean`` (P, K) on the prior's grid and ``loo_residual`` (P, B) the
    leave-one-out residual at each observed band (zero where not observed), both in data units."""

    mean: torch.Tensor
    loo_residual: torch.Tensor


def pixel_estimate(
    values: torch.Tensor,
    wavelength_nm: np.ndarray | torch.Tensor,
    observed: torch.Tensor,
    prior: PCAPrior | None = None,
    operator: np.ndarray | None = None,
) -> PriorEstimate:
    """Each pixel's prior conditional mean on the prior's grid given its observed values, and how well the prior
    predicts observed values it did not see (see ``PriorEstimate``).

    The estimate is ``gaussian.conditional_mean`` of the PCA prior (covariance ``basis @ basis.T``, ridge
    ``noise``) in its per-pixel form: by the push-through identity one ``RANK x RANK`` solve per pixel, whatever
    bands the pixel observed (tested equal).

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
        operator = interpolation_matrix(prior.wavelength_nm, wl)
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


class BandSetEstimator(NamedTuple):
    """The prior's estimate of pixels that all observe the same M bands, as float64 matrices: the conditional mean
    is ``gain @ x + s * offset`` and the leave-one-out residuals ``loo @ (x - s * observed_mean)``, with ``x`` (M,)
    a pixel's observed values and ``s = sum(x) / sum(observed_mean)`` its brightness (as ``pixel_estimate``)."""

    gain: np.ndarray
    offset: np.ndarray
    observed_mean: np.ndarray
    loo: np.ndarray

    def estimate(self, x: torch.Tensor) -> PriorEstimate:
        """``mean`` (N, K, P) and ``loo_residual`` (N, M, P) of observed values ``x`` (N, M, P), in ``x``'s dtype."""

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(a, dtype=x.dtype, device=x.device)

        mu = tensor(self.observed_mean)
        s = (x.sum(dim=1, keepdim=True) / max(float(self.observed_mean.sum()), 1e-12)).clamp_min(1e-12)
        mean = torch.addcmul(tensor(self.gain) @ x, tensor(self.offset)[:, None], s)
        return PriorEstimate(mean, tensor(self.loo) @ torch.addcmul(x, mu[:, None], s, value=-1.0))


def band_set_estimator(
    wavelength_nm: np.ndarray, prior: PCAPrior | None = None, operator: np.ndarray | None = None
) -> BandSetEstimator:
    """The prior's estimator for pixels observing the bands at ``wavelength_nm`` (M,) nm, all of them.

    ``operator`` (M, K): as in ``pixel_estimate``. The same estimate as ``pixel_estimate`` (the push-through
    identity turns its per-pixel ``RANK x RANK`` solve into one ``M x M`` solve, ``gaussian.conditional_gain``);
    the leverages are the diagonal of the hat matrix ``operator @ gain``.

    The matrices are computed on one BLAS thread: with more, their last bits change with the thread count, and a
    dask worker (one thread) and the client would condition on estimators a few ulps apart (the tiled Zarr job
    promises the in-memory repair's bits). They are small (M x K), so this costs nothing.
    """
    prior = prior or load_pca_prior()
    wl = np.asarray(wavelength_nm, dtype=np.float64)
    operator = interpolation_matrix(prior.wavelength_nm, wl) if operator is None else operator
    with threadpool_limits(1):
        cross = operator @ prior.cov
        gain = conditional_gain(cross.T, cross @ operator.T + prior.noise * np.eye(wl.size))
        observed_mean = operator @ prior.mean
        hat = operator @ gain
        offset = prior.mean - gain @ observed_mean
    loo = (np.eye(wl.size) - hat) / np.maximum(1.0 - np.diag(hat), LEVERAGE_FLOOR)[:, None]
    return BandSetEstimator(gain, offset, observed_mean, loo)
