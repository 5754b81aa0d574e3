"""How far to trust the prior's estimate over the interpolant, judged on the bands a sample did observe.

Which classical guess is better changes from sensor to sensor and scene to scene: on smooth, finely sampled
spectra (AVIRIS, 10 nm) the interpolant wins by 5-10 dB; on spectra with band-to-band structure the prior has
learnt (the CASI Houston crop) the prior wins by as much. Both can be checked where the answer is known: leave an
observed band out and predict it from the rest. The prior's leave-one-out residuals come in closed form
(``prior.pixel_estimate``: residual over one minus the band's leverage), the interpolant's from the two neighbouring observed
bands. Over a sample (a training patch, a tile) their mean squares and covariance give the weight of the best
linear combination of the two guesses (the minimum-variance combination of two correlated estimators). The
interpolant's error grows with the distance to the nearest observed band faster than the prior's, so the weight is
per wavelength: near observed bands the interpolant, far from them (wide gaps, extrapolation) the prior.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from anyband_xr.conditioning.interpolants import observed_neighbours, strict_neighbours

#: A pixel's leave-one-out residuals count when it observed at least this many bands.
MIN_BANDS = 5
#: Between observed bands the interpolant's error grows faster than the prior's with the distance ``d`` to the
#: nearest observed band: their ratio as ``(d / s) ** GAP_GROWTH`` over its leave-one-out value at distance ``s``.
#: 0 (no growth) costs 1-2 dB in 50-150 nm gaps on the CASI Houston crop; 0.5 (the prior's error not growing at
#: all) over-trusts the prior in AVIRIS gaps and 7-band generation (chosen from 0, 1/4, 1/2 on the hint alone,
#: held-out columns of the three real scenes: 1/4 gains 2.7 dB summed over 45 conditions, 2.4 of it on Houston).
GAP_GROWTH = 0.25
#: Beyond the first or last observed band the interpolant extrapolates flat: its error grows as a random walk
#: (variance in proportion to the distance), the ratio as ``(d / s) ** EXTRAPOLATION_GROWTH``.
EXTRAPOLATION_GROWTH = 0.5


def take_bands(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values`` (P, B) at per-pixel band indices ``index`` (P, J), or at indices (1, J) all pixels share."""
    return torch.gather(values, 1, index.expand(values.shape[0], -1))


def interpolation_loo(
    values: torch.Tensor, wavelength_nm: torch.Tensor, observed: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Leave-one-out residuals of linear interpolation at the observed bands.

    Args:
        values: (P, B) pixels by band, data units. ``wavelength_nm``: (B,) ascending, nm.
        observed: (P, B) bool, or (1, B) shared by every pixel.

    Returns:
        ``residual`` (P, B) value minus its interpolation from the neighbouring observed bands, data units, zero
        where not usable; ``distance`` (P, B) or (1, B) nm from the band to the nearer of them; ``usable`` (P, B) or
        (1, B) bool, observed bands with an observed neighbour on both sides in pixels that observed at least
        ``MIN_BANDS`` bands.
    """
    b = values.shape[1]
    scans = strict_neighbours(*observed_neighbours(observed.numpy(force=True)))
    before, after = (torch.from_numpy(index).to(observed.device) for index in scans)
    usable = observed & (before >= 0) & (after < b) & (observed.sum(dim=1, keepdim=True) >= MIN_BANDS)
    p, n = before.clamp(0, b - 1), after.clamp(0, b - 1)
    wl = wavelength_nm.to(values.dtype).view(1, b)
    left, right = wl - wl[0, p], wl[0, n] - wl
    frac = left / (left + right).clamp_min(1e-9)
    predicted = torch.lerp(take_bands(values, p), take_bands(values, n), frac)
    residual = (values - predicted) * usable
    return residual, torch.minimum(left, right), usable


def _nanometres(wavelength_nm: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    if isinstance(wavelength_nm, torch.Tensor):
        return wavelength_nm.to(device=device, dtype=torch.float64)
    return torch.tensor(np.asarray(wavelength_nm, dtype=np.float64), device=device)


def prior_weight(
    prior_loo: torch.Tensor,
    values: torch.Tensor,
    wavelength_nm: np.ndarray | torch.Tensor,
    observed: torch.Tensor,
    distance_nm: torch.Tensor,
    target_nm: np.ndarray | torch.Tensor,
) -> torch.Tensor:
    """Per-sample, per-wavelength weight in [0, 1] of the prior in ``interp + weight * (prior - interp)``.

    Args:
        prior_loo: (P, B) the prior's leave-one-out residuals (``PriorEstimate.loo_residual``), data units.
        values: (P, B) pixels by band (P = N * H * W, sample-major), data units.
        wavelength_nm: (B,) ascending band wavelengths, nm.
        observed: (P, B) bool, or (1, B) shared by every pixel.
        distance_nm: (N, K, H, W) distance from each target wavelength to the pixel's nearest observed band, nm.
        target_nm: (K,) the target wavelengths, nm.

    Returns:
        (N, K, H, W), ``distance_nm``'s dtype. With ``e_i`` and ``e_p`` the leave-one-out residuals of the
        interpolant and the prior over the sample: the minimum-variance weight ``E[k e_i (k e_i - e_p)] /
        E[(k e_i - e_p)^2]`` clipped to [0, 1], 0 at observed wavelengths. ``k >= 1`` is how much faster the
        interpolant's error has grown than the prior's at this distance: ``(distance / mean leave-one-out
        distance)`` to the power ``GAP_GROWTH`` between observed bands, ``EXTRAPOLATION_GROWTH`` beyond the
        first or last. A sample without a usable residual (too few bands) gets 1 wherever nothing was observed.
    """
    n, k_size, h, w = distance_nm.shape
    wl = _nanometres(wavelength_nm, values.device)
    residual, gap, usable = interpolation_loo(values, wl, observed)
    e_p = prior_loo.to(values.dtype) * usable

    def per_sample(t: torch.Tensor) -> torch.Tensor:
        return t.expand_as(values).reshape(n, -1).sum(dim=1, dtype=torch.float64).view(n, 1, 1, 1)

    count = per_sample(usable)
    sums = LooSums(count, per_sample(residual * residual), per_sample(e_p * e_p), per_sample(residual * e_p),
                   per_sample(gap * usable) / count.clamp_min(1.0))
    target = _nanometres(target_nm, values.device).view(1, -1)
    first = torch.where(observed, wl.view(1, -1), np.inf).amin(dim=1, keepdim=True)
    last = torch.where(observed, wl.view(1, -1), -np.inf).amax(dim=1, keepdim=True)
    outside = ((target < first) | (target > last)).expand(n * h * w, k_size).reshape(n, h, w, k_size).permute(0, 3, 1, 2)
    return _weight(sums, distance_nm, outside)


class LooSums(NamedTuple):
    """Per-sample (N, 1, 1, 1) float64 sums over the usable leave-one-out residuals (see ``interpolation_loo``):
    their ``count``, the interpolant's and the prior's mean squares' numerators ``s_ii``, ``s_pp``, their cross
    ``s_ip``, and the mean distance ``spacing`` (nm) from a usable band to its nearer observed neighbour."""

    count: torch.Tensor
    s_ii: torch.Tensor
    s_pp: torch.Tensor
    s_ip: torch.Tensor
    spacing: torch.Tensor


def _weight(sums: LooSums, distance_nm: torch.Tensor, outside: torch.Tensor) -> torch.Tensor:
    """The minimum-variance weight of ``prior_weight`` from the sums, at distances ``distance_nm`` (nm), growing as
    beyond the observed range where ``outside``; broadcast to the shape of both."""
    reach = distance_nm / sums.spacing.clamp_min(1e-9).to(distance_nm.dtype)
    k = reach.pow(torch.where(outside, EXTRAPOLATION_GROWTH, GAP_GROWTH)).clamp_min(1.0)
    s_ii, s_pp, s_ip = (t.to(distance_nm.dtype) for t in (sums.s_ii, sums.s_pp, sums.s_ip))
    numerator = k * (k * s_ii - s_ip)
    denominator = (numerator + s_pp - k * s_ip).clamp_min(torch.finfo(distance_nm.dtype).tiny)
    weight = (numerator / denominator).clamp_(0.0, 1.0)
    weight = torch.where(sums.count > 0, weight, 1.0)
    return torch.where(distance_nm > 0, weight, 0.0)


def band_set_weight(
    values: torch.Tensor,
    wavelength_nm: np.ndarray,
    prior_loo: torch.Tensor,
    distance_nm: torch.Tensor,
    target_nm: np.ndarray,
) -> torch.Tensor:
    """``prior_weight`` of samples whose pixels all observe the same M bands, without per-pixel indexing.

    Args:
        values: (N, M, P) the observed values, bands by pixel, data units.
        wavelength_nm: (M,) ascending wavelengths of the observed bands, nm.
        prior_loo: (N, M, P) the prior's leave-one-out residuals, data units.
        distance_nm: (K,) distance from each target wavelength to the nearest observed band, nm.
        target_nm: (K,) the target wavelengths, nm.

    Returns:
        (N, K, 1, 1), ``values``' dtype: the weight is the same at every pixel of a sample.
    """
    n, m, p = values.shape
    wl = torch.as_tensor(wavelength_nm, dtype=values.dtype, device=values.device)
    left, right = wl[1:-1] - wl[:-2], wl[2:] - wl[1:-1]
    if m >= max(MIN_BANDS, 3):
        predicted = torch.lerp(values[:, :-2], values[:, 2:], (left / (left + right).clamp_min(1e-9))[:, None])
        e_i, e_p = values[:, 1:-1] - predicted, prior_loo[:, 1:-1].to(values.dtype)
    else:
        e_i = e_p = values[:, :0]

    def per_sample(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(n, -1).sum(dim=1, dtype=torch.float64).view(n, 1, 1, 1)

    count = torch.full((n, 1, 1, 1), float(e_i.shape[1] * p), dtype=torch.float64, device=values.device)
    gap = torch.minimum(left, right)[: e_i.shape[1]].sum(dtype=torch.float64) * p
    sums = LooSums(count, per_sample(e_i * e_i), per_sample(e_p * e_p), per_sample(e_i * e_p), gap / count.clamp_min(1.0))
    distance = distance_nm.to(values.dtype).view(1, -1, 1, 1)
    target = np.asarray(target_nm, dtype=np.float64)
    outside = torch.as_tensor((target < wavelength_nm[0]) | (target > wavelength_nm[-1]), device=values.device)
    return _weight(sums, distance, outside.view(1, -1, 1, 1))
