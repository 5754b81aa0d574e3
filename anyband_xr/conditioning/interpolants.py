"""Per-pixel linear and PCHIP interpolation, vectorised over pixels that each observe their own bands (NumPy only).

SciPy's interpolators share one set of knots across everything they interpolate, so pixels with different observed
bands would cost one call each. Here, for every target wavelength, each pixel's previous and next observed band are
found by cumulative max/min scans along the bands, and the piecewise linear and PCHIP interpolants (Fritsch-Carlson
with SciPy's end rule: ``scipy.interpolate.PchipInterpolator`` per pixel) are evaluated with gathers, batched over
pixels, in float64. Both are flat beyond a pixel's first/last observed band. No torch: the classical repairs
(``anyband_xr.baselines``) and the model's conditioning (``anyband_xr.conditioning.bridge``) share this code.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: Distance (nm) reported where a pixel has no observation at all.
NO_OBSERVATION_NM = 1.0e6


class Interpolants(NamedTuple):
    """Per-pixel interpolants onto the target wavelengths, float64.

    Attributes:
        linear: (P, K) piecewise linear interpolant, data units (0 where a pixel has no observation).
        pchip: (P, K) PCHIP interpolant, data units, or None when not asked for.
        distance_nm: (P, K), or (1, K) when all pixels share one observed row, from each target wavelength to the
            pixel's nearest observed band, nm (``NO_OBSERVATION_NM`` where it has none).
    """

    linear: np.ndarray
    pchip: np.ndarray | None
    distance_nm: np.ndarray


def observed_neighbours(observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the last observed band at or before, and of the first at or after, each band.

    Args:
        observed: (P, B) bool, True where a band is observed.

    Returns:
        Two (P, B) int64 arrays: -1 and B where there is none.
    """
    b = observed.shape[1]
    index = np.arange(b)
    prev_obs = np.maximum.accumulate(np.where(observed, index, -1), axis=1)
    next_obs = np.minimum.accumulate(np.where(observed, index, b)[:, ::-1], axis=1)[:, ::-1]
    return prev_obs, next_obs


def strict_neighbours(prev_obs: np.ndarray, next_obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The last observed band strictly before and the first strictly after each band.

    Args:
        prev_obs: (P, B) from ``observed_neighbours``: the last observed band at or before each band.
        next_obs: (P, B) from ``observed_neighbours``: the first observed band at or after each band.

    Returns:
        Two (P, B) int64 arrays: -1 and B where there is none.
    """
    b = prev_obs.shape[1]
    before = np.concatenate([np.full_like(prev_obs[:, :1], -1), prev_obs[:, :-1]], axis=1)
    after = np.concatenate([next_obs[:, 1:], np.full_like(next_obs[:, :1], b)], axis=1)
    return before, after


def _take(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``values`` (P, B) at per-pixel band indices ``index`` (P, J), or at indices (1, J) all pixels share."""
    if index.shape[0] == 1:
        return values[:, index[0]]
    return np.take_along_axis(values, index, axis=1)


def _pchip_edge(h0: np.ndarray, h1: np.ndarray, m0: np.ndarray, m1: np.ndarray) -> np.ndarray:
    """One-sided three-point derivative at an end point, shape-preserving (as SciPy's ``PchipInterpolator``)."""
    d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    d = np.where(np.sign(d) != np.sign(m0), 0.0, d)
    overshoot = (np.sign(m0) != np.sign(m1)) & (np.abs(d) > 3 * np.abs(m0))
    return np.where(overshoot, 3 * m0, d)


def _pchip_slopes(
    values: np.ndarray, wl: np.ndarray, observed: np.ndarray, prev_obs: np.ndarray, next_obs: np.ndarray
) -> np.ndarray:
    """PCHIP derivatives (P, B) at every observed band of every pixel, 0 elsewhere.

    The neighbours of band ``i`` are the previous and next observed bands strictly before and after it, and for
    the end points the one after (before) those. ``observed``, ``prev_obs`` and ``next_obs`` (from
    ``observed_neighbours``) have one row per pixel, or a single row all pixels share."""
    b = values.shape[1]
    before, after = strict_neighbours(prev_obs, next_obs)
    has_before, has_after = before >= 0, after < b
    p, n = before.clip(0, b - 1), after.clip(0, b - 1)
    before_p, after_n = np.take_along_axis(before, p, axis=1), np.take_along_axis(after, n, axis=1)
    pp, nn = before_p.clip(0, b - 1), after_n.clip(0, b - 1)
    has_pp, has_nn = has_before & (before_p >= 0), has_after & (after_n < b)
    tiny = np.finfo(np.float64).tiny
    y_p, y_n, y_pp, y_nn = _take(values, p), _take(values, n), _take(values, pp), _take(values, nn)
    h_prev, h_next = np.maximum(wl - wl[p], tiny), np.maximum(wl[n] - wl, tiny)
    h_pp, h_nn = np.maximum(wl[p] - wl[pp], tiny), np.maximum(wl[nn] - wl[n], tiny)
    m_prev, m_next = (values - y_p) / h_prev, (y_n - values) / h_next
    m_pp, m_nn = (y_p - y_pp) / h_pp, (y_nn - y_n) / h_nn
    w1, w2 = 2 * h_next + h_prev, h_next + 2 * h_prev
    same_sign = (np.sign(m_prev) == np.sign(m_next)) & (m_prev != 0) & (m_next != 0)
    harmonic = (w1 + w2) / (w1 / np.where(same_sign, m_prev, 1.0) + w2 / np.where(same_sign, m_next, 1.0))
    interior = np.where(same_sign, harmonic, 0.0)
    first = np.where(has_nn, _pchip_edge(h_next, h_nn, m_next, m_nn), m_next)
    last = np.where(has_pp, _pchip_edge(h_prev, h_pp, m_prev, m_pp), m_prev)
    d = np.where(has_before & has_after, interior, np.where(has_after, first, np.where(has_before, last, 0.0)))
    return np.where(observed, d, 0.0)


def _hermite(v_left: np.ndarray, v_right: np.ndarray, d_left: np.ndarray, d_right: np.ndarray, width: np.ndarray,
             frac: np.ndarray) -> np.ndarray:
    """Cubic Hermite segment through ``v_left``/``v_right`` with slopes ``d_left``/``d_right`` (per nm) over
    ``width`` nm, at the fraction ``frac`` of the way."""
    s2, s3 = frac * frac, frac * frac * frac
    return (v_left * (2 * s3 - 3 * s2 + 1) + width * d_left * (s3 - 2 * s2 + frac) + v_right * (3 * s2 - 2 * s3)
            + width * d_right * (s3 - s2))


def interpolate_pixels(
    values: np.ndarray,
    wavelength_nm: np.ndarray,
    observed: np.ndarray,
    target_nm: np.ndarray,
    pchip: bool = True,
) -> Interpolants:
    """Linear and PCHIP interpolants of every pixel through its own observed bands, and the distance to them.

    Args:
        values: (P, B) pixels by band, data units (anything where not observed).
        wavelength_nm: (B,) strictly ascending band wavelengths, nm.
        observed: (P, B) bool, True where observed, or (1, B) shared by every pixel.
        target_nm: (K,) target wavelengths, nm.
        pchip: whether to evaluate the PCHIP interpolant too.

    Returns:
        The ``Interpolants``, float64.
    """
    b = values.shape[1]
    wl, target = np.asarray(wavelength_nm, np.float64), np.asarray(target_nm, np.float64)
    observed = np.asarray(observed, bool)
    y = np.where(observed, values, 0.0).astype(np.float64)
    prev_obs, next_obs = observed_neighbours(observed)
    at_or_left = np.searchsorted(wl, target, side="right") - 1
    at_or_right = np.searchsorted(wl, target, side="left")
    left = np.where(at_or_left >= 0, prev_obs[:, at_or_left.clip(0, b - 1)], -1)
    right = np.where(at_or_right < b, next_obs[:, at_or_right.clip(0, b - 1)], b)
    has_left, has_right = left >= 0, right < b
    left_c, right_c = left.clip(0, b - 1), right.clip(0, b - 1)
    v_left, v_right = _take(y, left_c), _take(y, right_c)
    wl_left, wl_right = wl[left_c], wl[right_c]
    span = np.maximum(wl_right - wl_left, 1e-12)
    frac = ((target - wl_left) / span).clip(0.0, 1.0)
    both, edge = has_left & has_right, np.where(has_left, v_left, v_right)

    def finish(between: np.ndarray) -> np.ndarray:
        return np.where(has_left | has_right, np.where(both, between, edge), 0.0)

    cubic = None
    if pchip:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            slopes = _pchip_slopes(y, wl, observed, prev_obs, next_obs)
        cubic = finish(_hermite(v_left, v_right, _take(slopes, left_c), _take(slopes, right_c), span, frac))
    distance = np.minimum(np.where(has_left, target - wl_left, np.inf), np.where(has_right, wl_right - target, np.inf))
    return Interpolants(finish(v_left + frac * (v_right - v_left)), cubic, np.minimum(distance, NO_OBSERVATION_NM))
