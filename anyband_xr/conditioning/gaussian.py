"""The Gaussian spectral prior of real spectra and the Gaussian conditional mean, in NumPy (no torch).

The prior (``anyband_xr/data/gaussian_prior.safetensors``, written by ``scripts/fit_gaussian_prior.py`` from the
training columns only) is the mean and covariance of brightness-normalised spectra (each divided by its mean) on
the canonical grid. The classical Gaussian baseline uses it whole; the model's prior hint
(``anyband_xr.conditioning.prior``) uses a probabilistic-PCA form of it (leading ``RANK`` eigenvectors plus
isotropic noise). Both condition it with :func:`conditional_gain`; pixels that each miss their own values are
conditioned by :func:`conditional_mean_per_pixel` (one small system per pixel, stacked).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from threadpoolctl import threadpool_limits

from anyband_xr.grid import interpolation_matrix

PRIOR_FILE = "gaussian_prior.safetensors"
#: Eigenvectors kept by the model's probabilistic-PCA prior (20-40 score alike on the real scenes' held-out
#: columns, within 3% of the full-covariance ridge baseline's RMSE; the per-pixel cost grows with its square).
RANK = 24
#: Smallest noise variance of that prior, relative to its largest eigenvalue (keeps the per-pixel solve stable).
NOISE_FLOOR = 1.0e-4


@dataclass(frozen=True)
class GaussianPrior:
    """Mean and covariance of brightness-normalised spectra (each divided by its mean) on the canonical grid."""

    wavelength_nm: np.ndarray
    mean: np.ndarray
    cov: np.ndarray

    def on_grid(self, wavelength_nm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean (B,) and covariance (B, B) linearly resampled onto ``wavelength_nm``."""
        op = interpolation_matrix(self.wavelength_nm, wavelength_nm)
        return op @ self.mean, op @ self.cov @ op.T


def read_gaussian_prior(path: str | Path) -> GaussianPrior:
    """A prior written by ``baselines.save_gaussian_prior`` (safetensors: ``wavelength_nm``, ``mean``, ``cov``)."""
    tensors = load_file(str(path))
    return GaussianPrior(tensors["wavelength_nm"], tensors["mean"], tensors["cov"])


@lru_cache(maxsize=1)
def load_gaussian_prior() -> GaussianPrior:
    """The shipped prior fitted on the real training scenes (``scripts/fit_gaussian_prior.py``)."""
    with resources.as_file(resources.files("anyband_xr") / "data" / PRIOR_FILE) as path:
        return read_gaussian_prior(path)


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

    @property
    def cov(self) -> np.ndarray:
        """(K, K) covariance of the spectrum without the noise: ``basis @ basis.T``."""
        return self.basis @ self.basis.T

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


def conditional_gain(cross: np.ndarray, observed_cov: np.ndarray) -> np.ndarray:
    """Gain (T, M) of the Gaussian conditional mean ``mean + gain @ (y - observed_mean)`` of ``x`` given ``y``:
    ``cross @ inv(observed_cov)``, with ``cross`` (T, M) the covariance of ``x`` and ``y`` and ``observed_cov``
    (M, M) that of ``y`` (its ridge included), float64."""
    return np.linalg.solve(observed_cov, cross.T).T


def conditional_mean(
    y: np.ndarray, mean: np.ndarray, observed_mean: np.ndarray, cross: np.ndarray, observed_cov: np.ndarray
) -> np.ndarray:
    """Brightness-equivariant Gaussian conditional mean (T, P) of brightness-normalised spectra ``x`` given
    observations ``y`` (M, P): the one Gaussian conditional mean of the package.

    ``mean`` (T,) and ``observed_mean`` (M,) are the means of ``x`` and ``y``, ``cross`` (T, M) and ``observed_cov``
    (M, M) as in :func:`conditional_gain`. Each pixel's scale ``s`` is its observed mean over ``observed_mean``'s;
    the prior conditions ``y / s`` and the estimate is scaled back by ``s``.
    """
    y = y.astype(np.float64)
    scale = brightness(y.mean(axis=0), observed_mean.mean())
    gain = conditional_gain(cross, observed_cov)
    return (mean[:, None] + gain @ (y / scale - observed_mean[:, None])) * scale


def brightness(observed: np.ndarray | float, prior: np.ndarray | float) -> np.ndarray:
    """Each pixel's scale in :func:`conditional_mean`: the mean of its observed values ``observed`` over the prior's
    mean ``prior`` of the same bands (both floored at 1e-12)."""
    return np.maximum(observed, 1e-12) / np.maximum(prior, 1e-12)


#: Bytes of the stacked matrices one batched solve of :func:`conditional_mean_per_pixel` holds at most.
BATCH_BYTES = 32 * 2**20


def conditional_mean_per_pixel(y: np.ndarray, missing: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """:func:`conditional_mean` of every pixel of ``y`` (B, P) given its own observed values, for pixels that each
    miss their own values (per-value dropout): (B, P) float64, the missing values filled, the observed ones as given.

    ``missing`` (B, P) is True where a value is missing (every pixel observes at least one); ``mean`` (B,) and
    ``cov`` (B, B) (its ridge included) are the prior on the bands of ``y``. Per pixel this is ``conditional_mean``
    of its own pattern (``cross = cov[mis, obs]``, ``observed_cov = cov[obs, obs]``, the same brightness scale ``s``)
    rewritten as ``s * mean[mis] + cov[mis, obs] @ inv(cov[obs, obs]) @ (y[obs] - s * mean[obs])``, or, where a pixel
    misses fewer values than it observes, in the precision form ``s * mean[mis] - inv(Q[mis, mis]) @ Q[mis, obs] @
    (y[obs] - s * mean[obs])`` with ``Q = inv(cov)``: one system of the smaller size per pixel. Pixels with the same
    system size are solved together (``np.linalg.solve`` on stacks of at most :data:`BATCH_BYTES`); equal to one
    ``conditional_mean`` per pattern to rounding (within 2e-13 of the largest value on Jasper Ridge).
    """
    y = np.asarray(y, dtype=np.float64)
    out = y.copy()
    observed = ~missing
    count = observed.sum(axis=0)
    scale = brightness(np.where(observed, y, 0.0).sum(axis=0) / count, (mean @ observed) / count)
    residual = np.where(observed, y - scale * mean[:, None], 0.0)
    n_missing = missing.shape[0] - count
    precise = n_missing < count
    size = np.where(precise, n_missing, count)
    precision = np.linalg.inv(cov) if precise.any() else None
    for form, matrix in ((False, cov), (True, precision)):
        chosen = (precise == form) & (n_missing > 0)
        for k in np.unique(size[chosen]):
            group = np.flatnonzero(chosen & (size == k))
            for pixels in np.array_split(group, -(-group.size * int(k) ** 2 * 8 // BATCH_BYTES)):
                solved = (missing if form else observed)[:, pixels].T
                index = np.nonzero(solved)[1].reshape(pixels.size, k)
                rows = np.arange(pixels.size)[:, None]
                stack = matrix[index[:, :, None], index[:, None, :]]
                rhs = (matrix @ residual[:, pixels] if form else residual[:, pixels]).T[rows, index]
                z = np.linalg.solve(stack, rhs[..., None])[..., 0]
                if form:
                    out[index, pixels[:, None]] = scale[pixels, None] * mean[index] - z
                else:
                    full = np.zeros((pixels.size, y.shape[0]))
                    full[rows, index] = z
                    fill = scale[pixels] * mean[:, None] + cov @ full.T
                    out[:, pixels] = np.where(missing[:, pixels], fill, out[:, pixels])
    return out
