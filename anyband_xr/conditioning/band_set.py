"""The condition's parts for a tile whose pixels all observe the same bands (whole-band loss, multispectral input).

Then every map from the observed values is one set of weights for the whole tile, built once in float64 from the
band set alone: the linear interpolant and the cubic Hermite form of PCHIP (two neighbouring bands per target; the
PCHIP slopes, which depend on the values, come from SciPy's rule along the observed bands), the prior's conditional
mean and leave-one-out residuals (``prior.band_set_estimator``). They apply to the values (N, M, H*W), bands by
pixel as the image stores them, in the values' dtype on their device: no per-pixel indexing.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from anyband_xr.grid import interpolation_matrix
from anyband_xr.conditioning.gaussian import PCAPrior
from anyband_xr.conditioning.prior import band_set_estimator
from anyband_xr.conditioning.trust import band_set_weight


class Parts(NamedTuple):
    """The per-observation parts of a ``bridge.Condition``, each (N, K, H, W) (``target_interp`` (N, T, H, W) or
    None): linear and PCHIP interpolants, distance to the nearest observed band (nm), the prior's conditional mean
    and its trust weight."""

    linear: torch.Tensor
    interp: torch.Tensor
    distance: torch.Tensor
    prior: torch.Tensor
    trust: torch.Tensor
    target_interp: torch.Tensor | None


def shared_band_set(missing: torch.Tensor) -> torch.Tensor | None:
    """(B,) bool: the bands every pixel of ``missing`` (N, B, H, W) observes, when all observe exactly these and at
    least one; None otherwise."""
    observed = ~missing.to(torch.bool)
    band_set = observed[0, :, 0, 0]
    if not bool(band_set.any()) or not bool((observed == band_set.view(1, -1, 1, 1)).all()):
        return None
    return band_set


class Piecewise(NamedTuple):
    """A map from values at M ascending wavelengths to T ascending targets that uses two neighbouring rows per
    target: target ``i`` is ``weights[i] @ (rows left[i] and left[i] + 1 of each source)``."""

    left: np.ndarray
    weights: np.ndarray

    def __call__(self, *sources: torch.Tensor) -> torch.Tensor:
        """(N, T, P) from sources (N, M, P) (values, then slopes for a Hermite map), one small product per run of
        targets between the same two wavelengths."""
        n, _, p = sources[0].shape
        weights = torch.as_tensor(self.weights, dtype=sources[0].dtype, device=sources[0].device)
        out = sources[0].new_empty((n, self.left.size, p))
        starts = np.flatnonzero(np.diff(self.left, prepend=-1))
        for start, stop in zip(starts, [*starts[1:], self.left.size]):
            j = int(self.left[start])
            rows = torch.cat([source[:, j : j + 2] for source in sources], dim=1)
            out[:, start:stop] = weights[start:stop] @ rows
        return out


def _intervals(x_nm: np.ndarray, target_nm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left neighbour index, width (nm) and position in [0, 1] of each target in the intervals of ``x_nm`` (M >= 2),
    clipped to the ends (flat beyond them)."""
    left = np.clip(np.searchsorted(x_nm, target_nm, side="right") - 1, 0, x_nm.size - 2)
    width = x_nm[left + 1] - x_nm[left]
    return left, width, np.clip((target_nm - x_nm[left]) / width, 0.0, 1.0)


def linear_map(x_nm: np.ndarray, target_nm: np.ndarray) -> Piecewise:
    """Linear interpolation from values at ``x_nm`` (M >= 2, ascending, nm) to ``target_nm``, flat beyond the
    ends: the two non-zero entries per row of ``anyband_xr.grid.interpolation_matrix``."""
    left, rows = _intervals(x_nm, target_nm)[0], np.arange(target_nm.size)
    matrix = interpolation_matrix(x_nm, target_nm)
    return Piecewise(left, np.stack([matrix[rows, left], matrix[rows, left + 1]], axis=1))


def hermite_map(x_nm: np.ndarray, target_nm: np.ndarray) -> Piecewise:
    """The piecewise cubic Hermite interpolant at ``target_nm`` of values and slopes at ``x_nm`` (M >= 2, ascending,
    nm), flat beyond the ends: apply it to ``(values, slopes)``."""
    left, width, t = _intervals(x_nm, target_nm)
    t2, t3 = t * t, t * t * t
    weights = [2 * t3 - 3 * t2 + 1, 3 * t2 - 2 * t3, width * (t3 - 2 * t2 + t), width * (t3 - t2)]
    return Piecewise(left, np.stack(weights, axis=1))


def _edge(h0: torch.Tensor, h1: torch.Tensor, m0: torch.Tensor, m1: torch.Tensor) -> torch.Tensor:
    """One-sided three-point slope at an end point, shape-preserving (SciPy's ``PchipInterpolator`` end rule)."""
    d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    d = torch.where(torch.sign(d) != torch.sign(m0), 0.0, d)
    return torch.where((torch.sign(m0) != torch.sign(m1)) & (d.abs() > 3 * m0.abs()), 3 * m0, d)


def pchip_slopes(y: torch.Tensor, x_nm: np.ndarray) -> torch.Tensor:
    """PCHIP slopes (N, M, P) of values ``y`` (N, M, P) at ``x_nm`` (M >= 2,) along dim 1 (Fritsch-Carlson
    interior, SciPy's end rule; the secant when M == 2)."""
    h = torch.as_tensor(np.diff(x_nm), dtype=y.dtype, device=y.device).view(1, -1, 1)
    m = torch.diff(y, dim=1).div_(h)
    if x_nm.size == 2:
        return torch.cat([m, m], dim=1)
    w1, w2 = 2 * h[:, 1:] + h[:, :-1], h[:, 1:] + 2 * h[:, :-1]
    prev, nxt = m[:, :-1], m[:, 1:]
    product = prev * nxt
    interior = ((w1 + w2) * product).div_(w1 * nxt + w2 * prev).masked_fill_(product <= 0, 0.0)
    first = _edge(h[:, :1], h[:, 1:2], m[:, :1], m[:, 1:2])
    return torch.cat([first, interior, _edge(h[:, -1:], h[:, -2:-1], m[:, -1:], m[:, -2:-1])], dim=1)


def band_set_parts(
    values: torch.Tensor,
    wavelength_nm: np.ndarray,
    band_set: torch.Tensor,
    canonical_nm: np.ndarray,
    band_integrals: np.ndarray | None = None,
    target_nm: np.ndarray | None = None,
    prior: PCAPrior | None = None,
) -> Parts:
    """The parts of the observation ``values`` (N, B, H, W) whose pixels all observe ``band_set`` (B,) bool, on
    ``canonical_nm`` (K,) and, if given, ``target_nm`` (T,) (see ``bridge.make_condition`` for the arguments)."""
    n, _, h, w = values.shape
    keep = band_set.cpu().numpy()
    x_nm = np.asarray(wavelength_nm, dtype=np.float64)[keep]
    x = values[:, band_set].reshape(n, x_nm.size, h * w)
    linear, interp, target = band_set_interpolants(values, wavelength_nm, band_set, canonical_nm, target_nm)
    distance = torch.as_tensor(np.abs(canonical_nm[:, None] - x_nm[None]).min(axis=1))
    operator = None if band_integrals is None else band_integrals[keep]
    estimate = band_set_estimator(x_nm, prior, operator).estimate(x)
    trust = band_set_weight(x, x_nm, estimate.loo_residual, distance, canonical_nm)
    distance = distance.to(device=values.device, dtype=values.dtype).view(1, -1, 1, 1).expand(n, -1, h, w)
    return Parts(linear, interp, distance, estimate.mean.reshape(n, -1, h, w), trust.expand(n, -1, h, w), target)


def band_set_interpolants(
    values: torch.Tensor,
    wavelength_nm: np.ndarray,
    band_set: torch.Tensor,
    canonical_nm: np.ndarray,
    target_nm: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Linear and PCHIP interpolants (N, K, H, W) on ``canonical_nm`` through the bands ``band_set`` (B,) bool of
    ``values`` (N, B, H, W), and the PCHIP interpolant (N, T, H, W) at ``target_nm`` (None without targets)."""
    n, _, h, w = values.shape
    x_nm = np.asarray(wavelength_nm, dtype=np.float64)[band_set.cpu().numpy()]
    x = values[:, band_set].reshape(n, x_nm.size, h * w)
    if x_nm.size == 1:
        linear = interp = x.expand(n, canonical_nm.size, h * w)
        target = None if target_nm is None else x.expand(n, target_nm.size, h * w)
    else:
        slopes = pchip_slopes(x, x_nm)
        linear, interp = linear_map(x_nm, canonical_nm)(x), hermite_map(x_nm, canonical_nm)(x, slopes)
        target = None if target_nm is None else hermite_map(x_nm, target_nm)(x, slopes)

    def image(a: torch.Tensor) -> torch.Tensor:
        return a.reshape(n, -1, h, w)

    return image(linear), image(interp), None if target is None else image(target)
