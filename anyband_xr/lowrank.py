"""The in-scene low-rank Gaussian: probabilistic PCA fitted by EM on the observed entries of a scene.

The model (Tipping & Bishop, 1999) says every pixel's spectrum is ``x = mean + W z + e`` with ``z ~ N(0, I_q)``
and isotropic noise ``e ~ N(0, noise I)``: a Gaussian with mean ``mean`` (B,) and covariance ``W W^T + noise I``.
It is fitted by EM on the observed entries alone (Ilin & Raiko, 2010, "Practical approaches to principal component
analysis in the presence of missing values"), the rank ``q`` and the number of EM iterations (early stopping) chosen
by the error on a seeded sample of observed entries hidden from the fit (the rank on a pixel subsample, for speed).
A missing value is filled with its conditional mean given the pixel's observed values.

Arrays are (B, ...): B bands first, then any spatial shape (flattened to P pixels inside); ``missing`` is True
where a value is missing, and NaN in ``values`` counts as missing. Values are in the data's own units (e.g.
reflectance); ``noise`` is a variance in those units squared. Numpy arrays come back as numpy; dask arrays are
sampled per block for the fit and completed block by block, lazily.

Example:
    >>> model = fit(values, missing)               # rank chosen on held-out observed entries
    >>> filled = model.complete(values, missing)   # observed values unchanged
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import dask
import dask.array as dsa
import numpy as np
from threadpoolctl import threadpool_limits

#: Candidate ranks, tried in order until the held-out error stops improving.
RANKS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
#: Fraction of the observed entries hidden from the fit to choose the rank and the EM iterations (never refitted).
HOLDOUT_FRACTION = 0.05
#: Consecutive candidate ranks without a better held-out error before the search stops; a higher rank is better
#: only when it lowers the best held-out RMSE so far by more than RANK_GAIN (relative).
PATIENCE = 3
RANK_GAIN = 0.005
#: Pixels the fit uses at most (a seeded sample beyond that); the completion applies to every pixel.
MAX_PIXELS = 20_000
#: Pixels the rank is chosen on at most (a seeded subsample of the fit's pixels; the chosen rank is then fitted on all).
RANK_PIXELS = 4_096
#: A band observed in fewer pixels than this (or than ``MIN_OBSERVED_FRACTION`` of them) cannot be learnt.
MIN_OBSERVED_PIXELS = 5
MIN_OBSERVED_FRACTION = 0.001
#: A rank's EM stops ITER_PATIENCE iterations after the last one that lowered its best held-out RMSE by more than
#: ITER_GAIN (relative), or after MAX_ITER.
ITER_PATIENCE = 5
ITER_GAIN = 1e-3
MAX_ITER = 500
#: Pixels completed per batch (bounds the (pixels, q, q) posterior arrays).
BATCH_PIXELS = 8_192


class UnseenBandsError(ValueError):
    """Bands observed in (almost) no pixel: the in-scene prior cannot learn them; fall back to another method.

    Attributes:
        bands: indices (along the first axis) of the bands that cannot be learnt.
        observed: number of pixels in which each of those bands is observed.
        needed: pixels a band must be observed in.
    """

    def __init__(self, bands: np.ndarray, observed: np.ndarray, needed: int) -> None:
        self.bands, self.observed, self.needed = bands, observed, needed
        shown = ", ".join(f"{b} ({n} px)" for b, n in zip(bands[:10].tolist(), observed[:10].tolist()))
        more = f" and {bands.size - 10} more" if bands.size > 10 else ""
        super().__init__(
            f"the in-scene low-rank prior cannot see band(s) {shown}{more}: each must be observed in at least "
            f"{needed} pixels of the fit. Whole bands missing everywhere are not learnable from the scene; fill them "
            "with another method (e.g. method='pchip' or the diffusion model), or fit on the other bands only."
        )


def unseen_bands(missing: np.ndarray) -> np.ndarray:
    """Indices of the bands of a (B, ...) ``missing`` mask observed in too few pixels to be learnt.

    A band needs :data:`MIN_OBSERVED_PIXELS` observed pixels and :data:`MIN_OBSERVED_FRACTION` of all pixels.
    """
    counts = (~np.asarray(missing, bool)).reshape(missing.shape[0], -1).sum(axis=1)
    return np.flatnonzero(counts < _needed(missing[0].size))


def _needed(pixels: int) -> int:
    return max(MIN_OBSERVED_PIXELS, int(np.ceil(MIN_OBSERVED_FRACTION * pixels)))


@dataclass(frozen=True)
class LowRankGaussian:
    """A fitted probabilistic PCA: spectra ~ N(mean, components components^T + noise I).

    Attributes:
        mean: per-band mean (B,), in the data's units.
        components: the loadings W (B, q), in the data's units.
        noise: isotropic noise variance, in the data's units squared.
        rank_scores: held-out RMSE (data units) of every rank tried, on the subsample the rank is chosen on
            (:data:`RANK_PIXELS`); when the rank was given, only its own, on the fit's pixels.
        iterations: EM iterations of the fit, chosen by the held-out error (early stopping).
    """

    mean: np.ndarray
    components: np.ndarray
    noise: float
    rank_scores: dict[int, float] = field(default_factory=dict)
    iterations: int = 0

    @property
    def rank(self) -> int:
        """The number of components q."""
        return self.components.shape[1]

    @property
    def covariance(self) -> np.ndarray:
        """The (B, B) band covariance ``W W^T + noise I``, in the data's units squared."""
        return self.components @ self.components.T + self.noise * np.eye(self.mean.size)

    def complete(self, values: np.ndarray, missing: np.ndarray) -> np.ndarray:
        """Fill the missing entries of (B, ...) ``values`` with their conditional mean given each pixel's observed
        entries; observed values come back bit for bit, in ``values``' dtype.

        A pixel with no observed value gets the model mean. A dask ``values`` gives a lazy dask array completed block
        by block (the band axis is merged into one chunk).

        Args:
            values: spectra (B, ...), bands first, in the fit's units; NaN counts as missing.
            missing: boolean mask broadcastable to ``values``, True where a value is missing.
        """
        if values.shape[0] != self.mean.size:
            raise ValueError(f"values have {values.shape[0]} bands, the model {self.mean.size}; pass the bands it was "
                             "fitted on, in the same order.")
        if isinstance(values, dsa.Array) or isinstance(missing, dsa.Array):
            values = dsa.asarray(values).rechunk({0: -1})
            missing = dsa.broadcast_to(dsa.asarray(missing), values.shape).rechunk(values.chunks)
            return dsa.map_blocks(self._complete_numpy, values, missing, dtype=values.dtype)
        return self._complete_numpy(np.asarray(values), np.broadcast_to(missing, values.shape))

    def _complete_numpy(self, values: np.ndarray, missing: np.ndarray) -> np.ndarray:
        x, miss = _flat(values, missing)
        filled = np.empty(x.shape, np.float64)
        with threadpool_limits(1):  # the same bits in a one-thread dask worker as in a many-thread client
            for start in range(0, x.shape[1], BATCH_PIXELS):
                part = slice(start, start + BATCH_PIXELS)
                filled[:, part] = self._conditional_mean(x[:, part], miss[:, part])
        return np.where(miss, filled, x).astype(values.dtype, copy=False).reshape(values.shape)

    def _conditional_mean(self, x: np.ndarray, missing: np.ndarray) -> np.ndarray:
        """``mean + W E[z | observed]`` for every entry of (B, P) ``x`` (missing entries may hold anything)."""
        centred = np.where(missing, 0.0, x - self.mean[:, None])
        z, _ = _posterior(self.components, self.noise, centred, _patterns(missing))
        return self.mean[:, None] + self.components @ z.T


def fit(
    values: np.ndarray,
    missing: np.ndarray,
    rank: int | None = None,
    seed: int = 0,
    max_pixels: int | None = MAX_PIXELS,
) -> LowRankGaussian:
    """Fit the in-scene low-rank Gaussian on the observed entries of (B, ...) ``values``.

    A seeded :data:`HOLDOUT_FRACTION` of the observed entries is hidden from the fit; their RMSE chooses the rank
    among :data:`RANKS` (below the number of bands; only ``rank`` when given), on a seeded subsample of at most
    :data:`RANK_PIXELS` pixels, and then the number of EM iterations of the chosen rank, fitted on every pixel (early
    stopping). The model returned is that fit: the held-out entries are not refitted. Deterministic for a seed, and
    on one BLAS thread, so its bits are the same in a one-thread dask worker and a many-thread client (on 2 cores it
    was no slower: its time goes to batched small inversions). A dask ``values`` is sampled per block (one compute
    of the sample only).

    Args:
        values: spectra (B, ...), bands first, in any units (e.g. reflectance); NaN counts as missing.
        missing: boolean mask broadcastable to ``values``, True where a value is missing.
        rank: number of components q, or None to choose it on held-out observed entries.
        seed: seed of the pixel sample and of the held-out entries.
        max_pixels: fit on a seeded sample of at most this many pixels (None: every pixel).

    Raises:
        UnseenBandsError: a band is observed in too few pixels (e.g. whole-band loss); fall back for it.
    """
    x, miss = sample_pixels(values, missing, max_pixels, seed)
    if x.shape[0] < 2:
        raise ValueError(f"the in-scene low-rank prior needs at least 2 bands, got {x.shape[0]}.")
    bad = unseen_bands(miss)
    if bad.size:
        raise UnseenBandsError(bad, (~miss[bad]).sum(axis=1), _needed(miss.shape[1]))
    if rank is not None and not 1 <= rank < x.shape[0]:
        raise ValueError(f"rank must be between 1 and the number of bands - 1 ({x.shape[0] - 1}), got {rank}.")
    with threadpool_limits(1):
        if rank is not None:
            model, score = _held_out_fit(x, miss, rank, _hidden(miss, seed))
            return replace(model, rank_scores={rank: score})
        sample = _rank_sample(x, miss, seed)
        fits = _rank_fits(*sample, seed)
        scores = {r: score for r, (_, score) in fits.items()}
        best = _best_rank(scores)
        # the rank was chosen on every pixel: its fit of the chosen rank is the one to return
        model = fits[best][0] if sample[0] is x else _held_out_fit(x, miss, best, _hidden(miss, seed))[0]
    return replace(model, rank_scores=scores)


def fit_or_none(values: np.ndarray, missing: np.ndarray, seed: int = 0) -> LowRankGaussian | None:
    """:func:`fit` on every pixel of (B, ...) ``values``, or None where the scene cannot teach its bands: fewer than
    2 bands, a band observed in too few pixels (:class:`UnseenBandsError`, e.g. whole-band loss), or no finite
    held-out error. What the diffusion model's base needs: the completion where there is one, else its fallback."""
    try:
        return fit(values, missing, seed=seed, max_pixels=None)
    except ValueError:
        return None


def sample_pixels(
    values: np.ndarray, missing: np.ndarray, max_pixels: int | None = MAX_PIXELS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded sample of at most ``max_pixels`` pixels of (B, ...) ``values`` and ``missing``, as (B, k) float64
    values and a boolean mask (NaN folded into it); pixels with no observed value are left out.

    Dask arrays are gathered per block (``vindex``) and computed once, together.

    Args:
        values: spectra (B, ...), bands first.
        missing: boolean mask broadcastable to ``values``, True where a value is missing.
        max_pixels: most pixels kept (None: all).
        seed: seed of the sample.
    """
    spatial = values.shape[1:]
    pixels = int(np.prod(spatial))
    chosen = (slice(None),)
    if max_pixels is not None and pixels > max_pixels:
        flat = np.sort(_rng(seed, "pixels").choice(pixels, size=max_pixels, replace=False))
        chosen += np.unravel_index(flat, spatial)
    if isinstance(values, dsa.Array) or isinstance(missing, dsa.Array):
        values = dsa.asarray(values)
        missing = dsa.broadcast_to(dsa.asarray(missing), values.shape)
        if len(chosen) > 1:
            values, missing = values.vindex[chosen].T, missing.vindex[chosen].T
        values, missing = dask.compute(values, missing)
    else:
        values, missing = np.asarray(values)[chosen], np.broadcast_to(missing, values.shape)[chosen]
    x, miss = _flat(values, missing)
    keep = ~miss.all(axis=0)
    return x[:, keep].astype(np.float64), miss[:, keep]


def _flat(values: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, P) values and mask, NaN counted as missing."""
    x = values.reshape(values.shape[0], -1)
    miss = np.asarray(missing, bool).reshape(x.shape) | np.isnan(x)
    return x, miss


def _posterior(
    components: np.ndarray, noise: float, centred: np.ndarray, patterns: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior of the latent z per pixel given the centred observed entries (zero where missing): its mean (P, q)
    and ``M^-1`` (P, q, q) with ``M = W_o^T W_o + noise I`` (the posterior covariance is ``noise M^-1``).

    ``patterns``: the unique observed patterns (n, B) as floats and each pixel's pattern (P,) (:func:`_patterns`);
    pixels sharing one share one ``M``, inverted once (whole-band loss costs one inversion).
    """
    bands, q = components.shape
    unique, inverse = patterns
    outer = (components[:, :, None] * components[:, None, :]).reshape(bands, q * q)
    m = (unique @ outer).reshape(-1, q, q) + noise * np.eye(q)
    m_inv = np.linalg.inv(m)[inverse]
    return np.einsum("pij,pj->pi", m_inv, centred.T @ components), m_inv


def _patterns(missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique observed patterns (n, B) as 0/1 floats and the pattern index of every pixel (P,)."""
    unique, inverse = np.unique(~missing.T, axis=0, return_inverse=True)
    return unique.astype(np.float64), inverse.reshape(-1)


def _em(x: np.ndarray, missing: np.ndarray, rank: int) -> Iterator[tuple[LowRankGaussian, np.ndarray]]:
    """EM for probabilistic PCA on the observed entries of (B, P) ``x``, mean and W updated jointly: yields every
    iterate (the closed-form start first, then up to :data:`MAX_ITER` updates) with the posterior mean of z (P, q)
    under it; the caller decides when to stop."""
    observed = (~missing).astype(np.float64)
    x0 = np.where(missing, 0.0, x)
    n_observed = observed.sum()
    total_sq = float((x0**2).sum())
    floor = 1e-10 * max(total_sq / n_observed, 1e-30)
    model = _initial(x0, observed, rank)
    patterns = _patterns(missing)
    for iteration in range(MAX_ITER):
        centred = np.where(missing, 0.0, x - model.mean[:, None])
        z, m_inv = _posterior(model.components, model.noise, centred, patterns)
        yield model, z
        # M-step on the augmented latent [z, 1]: per band, solve sum E[zz^T] [w_b, mean_b] = sum x_b E[z].
        za = np.hstack([z, np.ones((z.shape[0], 1))])
        second = za[:, :, None] * za[:, None, :]
        second[:, :rank, :rank] += model.noise * m_inv
        gram = (observed @ second.reshape(z.shape[0], -1)).reshape(-1, rank + 1, rank + 1)
        cross = x0 @ za
        wa = np.linalg.solve(gram, cross[:, :, None])[:, :, 0]
        noise = max((total_sq - float((wa * cross).sum())) / n_observed, floor)
        model = LowRankGaussian(wa[:, rank], wa[:, :rank], noise, iterations=iteration + 1)


def _initial(x0: np.ndarray, observed: np.ndarray, rank: int) -> LowRankGaussian:
    """Closed-form probabilistic PCA of the band-mean-filled data: a deterministic start for EM."""
    mean = x0.sum(axis=1) / observed.sum(axis=1)
    centred = np.where(observed > 0, x0 - mean[:, None], 0.0)
    eigval, eigvec = np.linalg.eigh(centred @ centred.T / centred.shape[1])
    eigval, eigvec = eigval[::-1], eigvec[:, ::-1]
    noise = max(float(eigval[rank:].mean()), 1e-12 * max(float(eigval[0]), 1e-30))
    return LowRankGaussian(mean, eigvec[:, :rank] * np.sqrt(np.maximum(eigval[:rank] - noise, 0.0)), noise)


def _rank_sample(x: np.ndarray, missing: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded subsample of at most :data:`RANK_PIXELS` pixels of (B, P) ``x`` and ``missing`` to choose the rank
    on; all pixels when the subsample would leave a band too few observed pixels to be learnt."""
    if x.shape[1] <= RANK_PIXELS:
        return x, missing
    keep = np.sort(_rng(seed, "rank pixels").choice(x.shape[1], size=RANK_PIXELS, replace=False))
    if unseen_bands(missing[:, keep]).size:
        return x, missing
    return x[:, keep], missing[:, keep]


def _hidden(missing: np.ndarray, seed: int) -> np.ndarray:
    """Flat indices of a seeded :data:`HOLDOUT_FRACTION` of the observed entries of ``missing``, hidden from a fit."""
    candidates = np.flatnonzero(~missing)
    size = max(1, round(HOLDOUT_FRACTION * candidates.size))
    return _rng(seed, "held out").choice(candidates, size=size, replace=False)


#: The independent random streams of a fit, each drawn from ``(seed, its index)`` (``numpy.random.SeedSequence``).
STREAMS = ("pixels", "rank pixels", "held out")


def _rng(seed: int, stream: str) -> np.random.Generator:
    """The generator of one of a fit's :data:`STREAMS` for ``seed``: the pixel sample, the rank subsample and the
    held-out entries never share their draws."""
    return np.random.default_rng(np.random.SeedSequence((seed, STREAMS.index(stream))))


def _held_out_fit(x: np.ndarray, missing: np.ndarray, rank: int, hidden: np.ndarray) -> tuple[LowRankGaussian, float]:
    """EM of one rank on (B, P) ``x`` without the ``hidden`` flat entries, stopped at its best held-out RMSE: the
    model :data:`ITER_PATIENCE` iterations before the stop (early stopping: ML fits of high ranks overfit the observed
    entries) and that RMSE, in data units."""
    train = missing.copy()
    train.flat[hidden] = True
    band, pixel = np.unravel_index(hidden, x.shape)
    truth = x[band, pixel]
    best, best_model, best_iteration = np.inf, None, 0
    for iteration, (model, z) in enumerate(_em(x, train, rank)):
        predicted = model.mean[band] + np.einsum("hq,hq->h", model.components[band], z[pixel])
        error = float(np.sqrt(np.mean((predicted - truth) ** 2)))
        if error < (1 - ITER_GAIN) * best:
            best, best_model, best_iteration = error, model, iteration
        elif iteration - best_iteration >= ITER_PATIENCE:
            break
    if best_model is None:
        raise ValueError("the in-scene low-rank fit found no finite held-out error (non-finite values among the "
                         "observed ones?); fill this scene with another method, e.g. method='pchip'.")
    return best_model, best


def _rank_fits(x: np.ndarray, missing: np.ndarray, seed: int) -> dict[int, tuple[LowRankGaussian, float]]:
    """The early-stopped fit and its held-out RMSE per candidate rank of :data:`RANKS` (below the number of bands),
    each fitted without the same seeded held-out entries; the search stops :data:`PATIENCE` ranks after the best."""
    hidden = _hidden(missing, seed)
    fits: dict[int, tuple[LowRankGaussian, float]] = {}
    for rank in (r for r in RANKS if r < x.shape[0]):
        fits[rank] = _held_out_fit(x, missing, rank, hidden)
        best = _best_rank({r: score for r, (_, score) in fits.items()})
        if sum(r > best for r in fits) >= PATIENCE:
            break
    return fits


def _best_rank(scores: dict[int, float]) -> int:
    """The lowest rank after which no higher one lowers the held-out RMSE by more than :data:`RANK_GAIN`."""
    best = min(scores)
    for rank in sorted(scores):
        if scores[rank] < (1 - RANK_GAIN) * scores[best]:
            best = rank
    return best
