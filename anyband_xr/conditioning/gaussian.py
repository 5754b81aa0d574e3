"""The Gaussian spectral prior of real spectra and the Gaussian conditional mean, in NumPy (no torch).

The prior (``anyband_xr/data/gaussian_prior.safetensors``, written by ``scripts/fit_gaussian_prior.py`` from the
training columns only) is the mean and covariance of brightness-normalised spectra (each divided by its mean) on
the canonical grid. The classical Gaussian baseline uses it whole; the model's prior hint
(``anyband_xr.conditioning.prior``) uses a probabilistic-PCA form of it (leading ``RANK`` eigenvectors plus
isotropic noise). Both condition it with :func:`conditional_gain`; the classical baseline's pixels, each given its
own observed values, by :func:`conditional_mean_per_pixel` (one factorisation per missing pattern, each pixel's
result independent of the other pixels of the call).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
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


def save_gaussian_prior(prior: GaussianPrior, path: str | Path) -> None:
    """Write the prior as safetensors (``wavelength_nm``, ``mean``, ``cov``), as :func:`read_gaussian_prior` reads it."""
    save_file({"wavelength_nm": prior.wavelength_nm, "mean": prior.mean, "cov": prior.cov}, str(path))


def read_gaussian_prior(path: str | Path) -> GaussianPrior:
    """A prior written by :func:`save_gaussian_prior`."""
    tensors = load_file(str(path))
    return GaussianPrior(tensors["wavelength_nm"], tensors["mean"], tensors["cov"])


def shipped_prior_file() -> Traversable:
    """The shipped prior's file inside the package (``anyband_xr/data/gaussian_prior.safetensors``)."""
    return resources.files("anyband_xr") / "data" / PRIOR_FILE


@lru_cache(maxsize=1)
def load_gaussian_prior() -> GaussianPrior:
    """The shipped prior fitted on the real training scenes (``scripts/fit_gaussian_prior.py``)."""
    with resources.as_file(shipped_prior_file()) as path:
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


#: Bytes of matrices and work arrays one batch of :func:`conditional_mean_per_pixel` holds, about (a pattern whose
#: own matrices exceed it is one batch): bounds its memory whatever the number of pixels and patterns.
BATCH_BYTES = 32 * 2**20
#: Pixels from which a missing pattern's pixels are filled against its one copy of its matrices (broadcast) rather
#: than a copy per pixel, gathered with other patterns' pixels: speed only, the arithmetic (every bit) is the same.
SHARED_PIXELS = 32


def missing_patterns(missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique missing patterns (n, B) of ``missing`` (B, P) and the pattern index of every pixel (P,).

    Each pixel's pattern is packed into bytes and compared as one opaque value: ``np.unique`` over whole rows
    (``axis=0``) is some fifty times slower."""
    packed = np.ascontiguousarray(np.packbits(missing, axis=0).T)
    _, first, inverse = np.unique(packed.view(np.dtype((np.void, packed.shape[1]))).ravel(), return_index=True,
                                  return_inverse=True)
    return missing[:, first].T, inverse.reshape(-1)


def conditional_mean_per_pixel(y: np.ndarray, missing: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """:func:`conditional_mean` of every pixel of ``y`` (B, P) given its own observed values: (B, P) float64, the
    missing values filled, the observed ones as given.

    ``missing`` (B, P) is True where a value is missing (every pixel observes at least one); ``mean`` (B,) and
    ``cov`` (B, B) (its ridge included, positive definite) are the prior on the bands of ``y``. Per pixel this is
    ``conditional_mean`` of its own pattern (``cross = cov[mis, obs]``, ``observed_cov = cov[obs, obs]``, the same
    brightness scale ``s``) rewritten as ``s * mean[mis] + cov[mis, obs] @ inv(cov[obs, obs]) @ (y[obs] - s *
    mean[obs])``, or, where a pixel misses fewer values than it observes, in the precision form ``s * mean[mis] -
    inv(Q[mis, mis]) @ Q[mis, obs] @ (y[obs] - s * mean[obs])`` with ``Q = inv(cov)``: one system of the smaller
    size. Each distinct missing pattern's system is factorised once (Cholesky, ``np.linalg.cholesky`` on stacks of
    the patterns with the same system size); every pixel is then solved with its pattern's factor and multiplied by
    its cross-covariance in elementwise NumPy arithmetic (multiplies and adds in a fixed order, no reductions, no
    BLAS), so a pixel's result depends on its own values and pattern alone, never on the other pixels of the call
    (chunking, tiles) nor on how they are batched (the factorisations are LAPACK's: like the prior's resampling,
    their last bits may follow the BLAS thread count). Memory beyond the result is bounded by :data:`BATCH_BYTES`.
    Equal to one ``conditional_mean`` per pattern to rounding (on Jasper Ridge within 7e-13 of the largest value,
    1.2e-10 relative on values above a thousandth of it).
    """
    out = np.array(y, dtype=np.float64)  # observed values are read from here and never written
    bands = out.shape[0]
    patterns, inverse = missing_patterns(missing)
    observed_of = bands - patterns.sum(axis=1)  # per pattern
    total, prior_total = np.zeros(out.shape[1]), np.zeros(out.shape[1])
    for band in range(bands):  # band by band, in order: each pixel's sums are the same whatever the other pixels
        seen = ~missing[band]
        total += np.where(seen, out[band], 0.0)
        prior_total += np.where(seen, mean[band], 0.0)
    count = observed_of[inverse]
    scale = brightness(total / count, prior_total / count)
    order = np.argsort(inverse, kind="stable")  # pixels pattern by pattern
    sizes = np.bincount(inverse, minlength=patterns.shape[0])
    starts = np.concatenate(([0], np.cumsum(sizes)))
    precision = np.linalg.inv(cov) if (2 * observed_of > bands).any() else None
    for m in np.unique(observed_of[observed_of < bands]):
        m, t = int(m), bands - int(m)
        precise = t < m  # the smaller system: the missing values' precision, or the observed values' covariance
        matrix = precision if precise else cov
        k = t if precise else m
        group = np.flatnonzero(observed_of == m)
        per_pattern = 8 * (3 * k * k + m * t)
        for chunk in np.array_split(group, _batches(group.size, per_pattern)):
            # the chunk's patterns, pixel axis last: indices (m|t, c), factor (k, k, c), cross[mis, obs] (m, t, c)
            mis = np.nonzero(patterns[chunk])[1].reshape(chunk.size, t).T
            obs = np.nonzero(~patterns[chunk])[1].reshape(chunk.size, m).T
            system = (mis if precise else obs).T
            factor = np.linalg.cholesky(matrix[system[:, :, None], system[:, None, :]])
            mats = (obs, mis, np.ascontiguousarray(factor.transpose(1, 2, 0)),
                    np.ascontiguousarray(np.diagonal(factor, axis1=1, axis2=2).T), matrix[mis[None], obs[:, None]])
            del factor
            shared = sizes[chunk] >= SHARED_PIXELS
            for i in np.flatnonzero(shared):  # the pattern's matrices once for all its pixels
                pixels = order[starts[chunk[i]]:starts[chunk[i] + 1]]
                for part in np.array_split(pixels, _batches(pixels.size, 32 * bands)):
                    _fill(out, mean, scale, part, [a[..., i:i + 1] for a in mats], precise)
            rare = np.flatnonzero(~shared)
            if rare.size:  # a copy of its pattern's matrices per pixel
                counts = sizes[chunk[rare]]
                local = np.repeat(rare, counts)
                pixels = order[np.repeat(starts[chunk[rare]] - np.cumsum(counts) + counts, counts)
                               + np.arange(local.size)]
                for part in np.array_split(np.arange(pixels.size), _batches(pixels.size, per_pattern)):
                    which = local[part]
                    if np.array_equal(which, np.arange(which[0], which[0] + which.size)):  # one pixel per pattern
                        own = [a[..., which[0]:which[0] + which.size] for a in mats]
                    else:
                        own = [a[..., which] for a in mats]
                    _fill(out, mean, scale, pixels[part], own, precise)
    return out


def _batches(count: int, nbytes: int) -> int:
    """Batches of about :data:`BATCH_BYTES` for ``count`` items of ``nbytes`` each, none empty."""
    return max(1, min(count, -(-count * nbytes // BATCH_BYTES)))


def _fill(out, mean, scale, pixels, mats, precise) -> None:
    """Write the conditional mean of ``pixels`` (n,) into ``out``, from their observed values there. ``mats``, pixel
    axis last, of length n (a pattern per pixel) or 1 (one pattern for all): the observed and missing band indices
    (m, .) and (t, .), the Cholesky factor (k, k, .) of the system and its diagonal (k, .), and the cross matrix
    ``matrix[mis, obs]`` transposed (m, t, .)."""
    obs, mis, factor, diagonal, cross = mats
    s = scale[pixels]
    residual = out[obs, pixels] - s * mean[obs]
    if precise:
        estimate = s * mean[mis] - _solve(factor, diagonal, _product(cross, residual))
    else:
        estimate = s * mean[mis] + _product(cross, _solve(factor, diagonal, residual))
    out[mis, pixels] = estimate


def _product(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``matrix[..., i].T @ vector[:, i]`` for every pixel i ((m, t, n|1) and (m, n) -> (t, n)), term by term in
    order."""
    total = matrix[0] * vector[0]
    for j in range(1, matrix.shape[0]):
        total += matrix[j] * vector[j]
    return total


def _solve(factor: np.ndarray, diagonal: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``inv(L @ L.T) @ b[:, i]`` for every pixel i by forward then back substitution, term by term in order:
    ``L = factor[..., i]`` lower triangular ((k, k, n|1)) with its diagonal (k, n|1); ``b`` (k, n)."""
    x = np.array(b, dtype=np.float64)
    for j in range(x.shape[0]):
        x[j] /= diagonal[j]
        x[j + 1:] -= factor[j + 1:, j] * x[j]
    for j in range(x.shape[0] - 1, -1, -1):
        x[j] /= diagonal[j]
        x[:j] -= factor[j, :j] * x[j]
    return x
