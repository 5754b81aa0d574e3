"""The canonical bridge: any observed band set <-> a residual on the canonical grid (what the model diffuses).

An observation (values on its own wavelengths, some missing) is interpolated per pixel onto the canonical grid
(``anyband_xr.grid.CANONICAL_NM``, 400..2500 nm every 10 nm) with PCHIP, the best classical interpolant on the
real scenes. The model diffuses the residual ``r = (x - interp) / scale * GAIN`` of the true canonical spectrum
``x`` over that interpolant, so an untrained (zero) residual reproduces PCHIP, and the observation's brightness
unit ``scale`` cancels out. Two hints enter beside it: the linear interpolant (where the two disagree the spectrum
bends) and the conditional mean of the Gaussian prior of real spectra (``anyband_xr.conditioning.prior``), which knows how
bands co-vary across materials where an interpolant only knows the neighbouring bands.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from anyband_xr.grid import CANONICAL_NM
from anyband_xr.conditioning import prior as gaussian_prior
from anyband_xr.conditioning.band_set import Parts, band_set_parts, shared_band_set
from anyband_xr.conditioning.gaussian import interpolation_matrix
from anyband_xr.conditioning.planes import CONTEXT_PLANES
from anyband_xr.conditioning.trust import observed_neighbours, prior_weight, strict_neighbours, take_bands

#: Residual gain: ``r = (x - interp) / scale * GAIN`` has a standard deviation of about 0.5-1 on training data
#: (measured over dual-stochastic-masked training patches of the real scenes; see docs/model.md).
GAIN = 6.0
#: Length scale (nm) of the confidence ``exp(-distance / CONFIDENCE_NM)`` to the nearest observed wavelength.
CONFIDENCE_NM = 20.0
#: Distance (nm) reported where a pixel has no observation at all.
NO_OBSERVATION_NM = 1.0e6
#: Smallest brightness unit (data units): guards against dark or empty patches.
MIN_SCALE = 1.0e-3
#: The interpolant the residual is taken over (``interpolate_observed`` method; ``make_condition`` uses PCHIP).
BASE = "pchip"


@dataclass
class Condition:
    """The model's view of an observation on the canonical grid.

    Attributes:
        interp: (N, K, H, W) per-pixel PCHIP interpolant through the observed values, data units.
        linear: (N, K, H, W) per-pixel linear interpolant, data units.
        confidence: (N, K, H, W) ``exp(-distance_nm / 20 nm)`` to the nearest observed wavelength, in [0, 1].
        scale: (N, 1, 1, 1) mean observed value of each sample, data units (the brightness unit).
        prior: (N, K, H, W) per-pixel conditional mean of the Gaussian spectral prior given the observed values,
            data units (``anyband_xr.conditioning.prior``).
        trust: (N, K, H, W) weight in [0, 1] of the prior over the interpolant, per sample and wavelength, from
            leave-one-out residuals of both on the observed bands (``anyband_xr.conditioning.trust.prior_weight``).
        target_matrix: (T, K) linear interpolation from the canonical grid to the wavelengths ``to_grid`` returns
            (``gaussian.interpolation_matrix`` from the canonical grid), or None (training needs no output grid).
        target_interp: (N, T, H, W) the PCHIP interpolant at those wavelengths, data units, or None.
    """

    interp: torch.Tensor
    linear: torch.Tensor
    confidence: torch.Tensor
    scale: torch.Tensor
    prior: torch.Tensor
    trust: torch.Tensor
    target_matrix: torch.Tensor | None = None
    target_interp: torch.Tensor | None = None

    def planes(self) -> dict[str, torch.Tensor]:
        """The context's planes by name (``planes.CONTEXT_PLANES``), each (N, K, H, W): the soft sparse condition
        ``condition = interp / scale * confidence``, the ``coverage = confidence`` (the paper's ``(C, M)``), the
        ``bend = (linear - interp) / scale`` and the ``prior_hint = trust * (prior - interp) / scale`` (bounded by
        ``prior.HINT_LIMIT``): the offset of the best classical combination of the two guesses from the
        interpolant."""
        limit = gaussian_prior.HINT_LIMIT
        return {
            "condition": self.interp / self.scale * self.confidence,
            "coverage": self.confidence,
            "bend": (self.linear - self.interp) / self.scale,
            "prior_hint": (self.trust * (self.prior - self.interp) / self.scale).clamp(-limit, limit),
        }

    def tensor(self) -> torch.Tensor:
        """The model's context (N, 4K, H, W): the ``planes`` stacked in the order of ``planes.CONTEXT_PLANES``."""
        planes = self.planes()
        return torch.cat([planes[name] for name in CONTEXT_PLANES], dim=1)

    def to(self, device: torch.device | str) -> Condition:
        """The same condition on ``device``."""
        tensors = (getattr(self, field.name) for field in dataclasses.fields(self))
        return Condition(*(None if t is None else t.to(device) for t in tensors))


def _as_tensor(values: np.ndarray | torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
    if isinstance(values, np.ndarray) and not values.flags.writeable:
        values = values.copy()
    out = torch.as_tensor(values)
    if like is not None:
        out = out.to(device=like.device)
    return out


INTERPOLATIONS = ("linear", "pchip")


def check_wavelengths(wavelength_nm: torch.Tensor | np.ndarray, bands: int) -> None:
    """Raise unless ``wavelength_nm`` holds ``bands`` strictly ascending wavelengths."""
    wl = np.asarray(wavelength_nm.detach().cpu() if isinstance(wavelength_nm, torch.Tensor) else wavelength_nm)
    if wl.shape != (bands,):
        raise ValueError(f"wavelength_nm has shape {wl.shape}, expected ({bands},) to match the values' {bands} bands.")
    if bands > 1 and bool((wl[1:] <= wl[:-1]).any()):
        raise ValueError("wavelength_nm must be strictly ascending; sort the bands first (anyband_xr.spectral.standardize).")


def _pchip_edge(h0: torch.Tensor, h1: torch.Tensor, m0: torch.Tensor, m1: torch.Tensor) -> torch.Tensor:
    """One-sided three-point derivative at an end point, shape-preserving (as SciPy's ``PchipInterpolator``)."""
    d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    d = torch.where(torch.sign(d) != torch.sign(m0), torch.zeros_like(d), d)
    overshoot = (torch.sign(m0) != torch.sign(m1)) & (d.abs() > 3 * m0.abs())
    return torch.where(overshoot, 3 * m0, d)


def _pchip_derivatives(
    values: torch.Tensor, wl: torch.Tensor, observed: torch.Tensor, prev_obs: torch.Tensor, next_obs: torch.Tensor
) -> torch.Tensor:
    """PCHIP derivatives (P, B) at every observed band of every pixel (Fritsch-Carlson, SciPy's end rule).

    Each pixel has its own set of observed bands: the neighbours of band ``i`` are the previous and next observed
    bands (``prev_obs``/``next_obs`` shifted by one), and for the end points the one after (before) those.
    ``observed``, ``prev_obs`` and ``next_obs`` have one row per pixel, or a single row all pixels share.
    """
    b = values.shape[1]
    before, after = strict_neighbours(prev_obs, next_obs)
    has_before, has_after = before >= 0, after < b
    p, n = before.clamp(0, b - 1), after.clamp(0, b - 1)
    pp = torch.gather(before, 1, p).clamp(0, b - 1)
    nn = torch.gather(after, 1, n).clamp(0, b - 1)
    has_pp = has_before & (torch.gather(before, 1, p) >= 0)
    has_nn = has_after & (torch.gather(after, 1, n) < b)
    x = wl.to(values.dtype).view(1, b)

    def at(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[0, index], take_bands(values, index)

    (x_p, y_p), (x_n, y_n), (x_pp, y_pp), (x_nn, y_nn) = at(p), at(n), at(pp), at(nn)
    tiny = torch.finfo(values.dtype).tiny
    h_prev, h_next = (x - x_p).clamp_min(tiny), (x_n - x).clamp_min(tiny)
    m_prev, m_next = (values - y_p) / h_prev, (y_n - values) / h_next
    h_pp, h_nn = (x_p - x_pp).clamp_min(tiny), (x_nn - x_n).clamp_min(tiny)
    m_pp, m_nn = (y_p - y_pp) / h_pp, (y_nn - y_n) / h_nn
    w1, w2 = 2 * h_next + h_prev, h_next + 2 * h_prev
    same_sign = (torch.sign(m_prev) == torch.sign(m_next)) & (m_prev != 0) & (m_next != 0)
    harmonic = (w1 + w2) / (w1 / torch.where(same_sign, m_prev, 1.0) + w2 / torch.where(same_sign, m_next, 1.0))
    interior = torch.where(same_sign, harmonic, torch.zeros_like(values))
    first = torch.where(has_nn, _pchip_edge(h_next, h_nn, m_next, m_nn), m_next)
    last = torch.where(has_pp, _pchip_edge(h_prev, h_pp, m_prev, m_pp), m_prev)
    d = torch.where(has_before & has_after, interior, torch.where(has_after, first, torch.where(has_before, last, 0.0)))
    return torch.where(observed, d, torch.zeros_like(d))


def _pixels_by_band(images: torch.Tensor) -> torch.Tensor:
    """(N, B, H, W) -> (N*H*W, B), each pixel's spectrum contiguous: gathers and scans along the spectral axis run
    several times faster on this layout than across image planes."""
    return images.permute(0, 2, 3, 1).reshape(-1, images.shape[1])


def _interpolants(
    values: torch.Tensor,
    wavelength_nm: torch.Tensor | np.ndarray,
    missing: torch.Tensor,
    target_nm: torch.Tensor | np.ndarray,
    pchip: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Linear interpolant, PCHIP interpolant (None unless ``pchip``) and distance (see ``interpolate_observed``),
    then the pixels-by-band values (P, B) (zeros where missing) and their observed bands (P, B), or (1, B) when
    every pixel with an observation shares one band set."""
    n, b, h, w = values.shape
    check_wavelengths(wavelength_nm, b)
    wl = _as_tensor(wavelength_nm, values).to(torch.float64)
    target = _as_tensor(target_nm, values).to(torch.float64)
    k = target.numel()
    observed = _pixels_by_band(~missing.to(torch.bool).expand_as(values))
    values = torch.where(observed, _pixels_by_band(values), torch.zeros((), dtype=values.dtype, device=values.device))
    empty = ~observed.any(dim=1, keepdim=True)
    first = int(torch.argmax((~empty).to(torch.uint8)))  # first pixel with an observation (0 if none has one)
    band_set = observed[first : first + 1]
    if bool(((observed == band_set) | empty).all()):
        # One band set for every pixel that has any (whole-band loss, multispectral input; empty pixels, e.g. nodata
        # borders, hold zeros and interpolate to zero through it): the index arithmetic below runs on one row.
        observed = band_set
    prev_obs, next_obs = observed_neighbours(observed)
    at_or_left = torch.searchsorted(wl, target, right=True) - 1
    at_or_right = torch.searchsorted(wl, target, right=False)
    shape = (observed.shape[0], k)
    left = torch.gather(prev_obs, 1, at_or_left.clamp(0, b - 1).view(1, k).expand(shape))
    left = torch.where((at_or_left >= 0).view(1, k), left, -1)
    right = torch.gather(next_obs, 1, at_or_right.clamp(0, b - 1).view(1, k).expand(shape))
    right = torch.where((at_or_right < b).view(1, k), right, b)
    has_left, has_right = left >= 0, right < b
    left_c, right_c = left.clamp(0, b - 1), right.clamp(0, b - 1)
    v_left, v_right = take_bands(values, left_c), take_bands(values, right_c)
    wl_left, wl_right = wl[left_c], wl[right_c]
    t = target.view(1, k)
    span = (wl_right - wl_left).clamp_min(1e-12)
    frac = ((t - wl_left) / span).clamp(0.0, 1.0).to(values.dtype)
    both = has_left & has_right
    zero = torch.zeros((), dtype=values.dtype, device=values.device)

    def finish(between: torch.Tensor) -> torch.Tensor:
        interp = torch.where(both, between, torch.where(has_left, v_left, v_right))
        return torch.where(has_left | has_right, interp, zero)

    linear = finish(v_left + frac * (v_right - v_left))
    cubic = None
    if pchip:
        slopes = _pchip_derivatives(values, wl, observed, prev_obs, next_obs)
        d_left, d_right = take_bands(slopes, left_c), take_bands(slopes, right_c)
        width = span.to(values.dtype)
        s2, s3 = frac * frac, frac * frac * frac
        cubic = finish(
            v_left * (2 * s3 - 3 * s2 + 1)
            + width * d_left * (s3 - 2 * s2 + frac)
            + v_right * (3 * s2 - 2 * s3)
            + width * d_right * (s3 - s2)
        )
    far = torch.full((), float("inf"), dtype=torch.float64, device=values.device)
    d_left = torch.where(has_left, t - wl_left, far)
    d_right = torch.where(has_right, wl_right - t, far)
    distance = torch.minimum(d_left, d_right).clamp_max(NO_OBSERVATION_NM).to(values.dtype)
    distance = torch.where(empty, NO_OBSERVATION_NM, distance)

    def image(spectra: torch.Tensor) -> torch.Tensor:
        return spectra.expand(n * h * w, k).reshape(n, h, w, k).permute(0, 3, 1, 2).contiguous()

    return image(linear), None if cubic is None else image(cubic), image(distance), values, observed


def interpolate_observed(
    values: torch.Tensor,
    wavelength_nm: torch.Tensor | np.ndarray,
    missing: torch.Tensor,
    target_nm: torch.Tensor | np.ndarray,
    method: str = "linear",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel interpolation through the observed values onto ``target_nm``: piecewise linear or PCHIP.

    Every pixel has its own observed bands, so no library spline applies (SciPy's interpolators share one set of
    knots); ``method="pchip"`` reproduces ``scipy.interpolate.PchipInterpolator`` per pixel (tested against it).

    Args:
        values: (N, B, H, W) observed values (any finite number where missing).
        wavelength_nm: (B,) ascending band wavelengths, nm.
        missing: (N, B, H, W) bool, True where a value is missing.
        target_nm: (K,) target wavelengths, nm.
        method: ``"linear"`` or ``"pchip"`` (shape-preserving piecewise cubic, Fritsch-Carlson).

    Returns:
        ``interp`` (N, K, H, W) in the data's units, flat beyond the first/last observed band (0 where a pixel has
        no observation), and ``distance_nm`` (N, K, H, W) from each target to the nearest observed wavelength
        (``NO_OBSERVATION_NM`` where the pixel has none).
    """
    if method not in INTERPOLATIONS:
        raise ValueError(f"method must be one of {INTERPOLATIONS}, got {method!r}.")
    linear, cubic, distance, _, _ = _interpolants(values, wavelength_nm, missing, target_nm, pchip=method == "pchip")
    return (linear if cubic is None else cubic), distance


def make_condition(
    values: torch.Tensor,
    wavelength_nm: torch.Tensor | np.ndarray,
    missing: torch.Tensor,
    band_integrals: np.ndarray | None = None,
    target_nm: np.ndarray | None = None,
) -> Condition:
    """Condition of an observation (N, B, H, W) on the canonical grid (see ``Condition``).

    ``band_integrals`` (B, K): the SRF-weighted means that map a canonical spectrum to the observed bands
    (``anyband_xr.simulate.band_weights(CANONICAL_NM, responses)``) when the bands are integrals over broad
    responses (multispectral input); the prior is then conditioned on what the bands measure instead of on point
    samples at their centroids. None: the bands sample the spectrum at ``wavelength_nm``.
    ``target_nm`` (T,): the wavelengths ``to_grid`` will return (the data's own for a repair); their PCHIP
    interpolant is evaluated here, with the canonical one, from the same per-pixel slopes.
    """
    check_wavelengths(wavelength_nm, values.shape[1])
    band_set = shared_band_set(missing)
    if band_set is None:
        parts = _pixel_parts(values, wavelength_nm, missing, band_integrals, target_nm)
    else:
        parts = band_set_parts(values, wavelength_nm, band_set, CANONICAL_NM, band_integrals, target_nm)
    observed = ~missing.to(torch.bool)
    total = torch.where(observed, values, 0.0).sum(dim=(1, 2, 3), keepdim=True)
    count = observed.sum(dim=(1, 2, 3), keepdim=True).to(values.dtype)
    scale = (total / count.clamp_min(1.0)).clamp_min(MIN_SCALE)
    return Condition(
        interp=parts.interp, linear=parts.linear, confidence=torch.exp(-parts.distance / CONFIDENCE_NM), scale=scale,
        prior=parts.prior, trust=parts.trust,
        target_matrix=None if target_nm is None else _matrix(interpolation_matrix(CANONICAL_NM, target_nm), values),
        target_interp=parts.target_interp,
    )


def _pixel_parts(
    values: torch.Tensor,
    wavelength_nm: torch.Tensor | np.ndarray,
    missing: torch.Tensor,
    band_integrals: np.ndarray | None,
    target_nm: np.ndarray | None,
) -> Parts:
    """``make_condition``'s parts when the pixels observe different bands: per-pixel interpolants, one
    ``RANK x RANK`` prior solve per pixel."""
    k = CANONICAL_NM.size
    targets = CANONICAL_NM if target_nm is None else np.concatenate([CANONICAL_NM, np.asarray(target_nm, np.float64)])
    linear, interp, distance, spectra, band_sets = _interpolants(values, wavelength_nm, missing, targets, pchip=True)
    target_interp = None if target_nm is None else interp[:, k:]
    linear, interp, distance = linear[:, :k], interp[:, :k].contiguous(), distance[:, :k]
    n, _, h, w = values.shape
    estimate = gaussian_prior.pixel_estimate(spectra, wavelength_nm, band_sets, operator=band_integrals)
    prior = estimate.mean.to(values.dtype).reshape(n, h, w, -1).permute(0, 3, 1, 2).contiguous()
    trust = prior_weight(estimate.loo_residual, spectra, wavelength_nm, band_sets, distance, CANONICAL_NM)
    return Parts(linear, interp, distance, prior, trust, target_interp)


def to_model(x_canonical: torch.Tensor, cond: Condition) -> torch.Tensor:
    """Residual the model diffuses: ``(x - interp) / scale * GAIN`` (N, K, H, W), dimensionless."""
    return (x_canonical - cond.interp) / cond.scale * GAIN


def from_model(r: torch.Tensor, cond: Condition) -> torch.Tensor:
    """Canonical spectrum in data units from a residual: ``interp + r * scale / GAIN`` (N, K, H, W)."""
    return torch.addcmul(cond.interp, r, cond.scale / GAIN)


def _matrix(matrix: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(matrix, dtype=like.dtype, device=like.device)


def to_grid(r: torch.Tensor, cond: Condition) -> torch.Tensor:
    """Spectrum on the condition's output grid (N, T, H, W), data units, from a canonical residual ``r``.

    value(λ) = PCHIP interpolant through the observed points at λ + the canonical correction ``r * scale / GAIN``
    linearly interpolated to λ, so the observation's own fine spectral detail survives. The caller restores the
    observed values exactly. The condition must have been made with ``target_nm``.
    """
    if cond.target_interp is None:
        raise ValueError("this condition has no output grid: make it with make_condition(..., target_nm=...).")
    correction = r * cond.scale / GAIN
    return cond.target_interp + torch.einsum("tk,nkhw->nthw", cond.target_matrix, correction)
