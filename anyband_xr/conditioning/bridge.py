"""The canonical bridge: any observed band set <-> a residual on the canonical grid (what the model diffuses).

An observation (values on its own wavelengths, some missing) is interpolated per pixel onto the canonical grid
(``anyband_xr.grid.CANONICAL_NM``, 400..2500 nm every 10 nm) with PCHIP, the best classical interpolant on the
real scenes. The model diffuses the residual ``r = (x - interp) / scale * GAIN`` of the true canonical spectrum
``x`` over that interpolant, so an untrained (zero) residual reproduces it, and the observation's brightness
unit ``scale`` cancels out. Two hints enter beside it: the linear interpolant (where the two disagree the spectrum
bends) and the conditional mean of the Gaussian prior of real spectra (``anyband_xr.conditioning.prior``), which knows how
bands co-vary across materials where an interpolant only knows the neighbouring bands. Where values are missing per
pixel and the scene observes every band, the interpolants run through the spectrum completed by the scene's own
low-rank prior instead (``make_condition(completion=...)``): the model corrects the scene's best classical estimate.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from anyband_xr.grid import CANONICAL_NM
from anyband_xr.conditioning import prior as gaussian_prior
from anyband_xr.conditioning.band_set import Parts, band_set_interpolants, band_set_parts, shared_band_set
from anyband_xr.conditioning.gaussian import PCAPrior
from anyband_xr.grid import interpolation_matrix
from anyband_xr.conditioning.interpolants import NO_OBSERVATION_NM, interpolate_pixels
from anyband_xr.conditioning.planes import CONTEXT_PLANES
from anyband_xr.conditioning.trust import prior_weight

#: Residual gain: ``r = (x - interp) / scale * GAIN`` has a standard deviation of about 0.5-1 on training data
#: (measured over dual-stochastic-masked training patches of the real scenes; see docs/model.md).
GAIN = 6.0
#: Length scale (nm) of the confidence ``exp(-distance / CONFIDENCE_NM)`` to the nearest observed wavelength.
CONFIDENCE_NM = 20.0
#: Smallest brightness unit (data units): guards against dark or empty patches.
MIN_SCALE = 1.0e-3
#: The interpolant the residual is taken over (``interpolate_observed`` method; ``make_condition`` uses PCHIP).
BASE = "pchip"


@dataclass
class Condition:
    """The model's view of an observation on the canonical grid.

    Attributes:
        interp: (N, K, H, W) per-pixel PCHIP interpolant through the observed values (through the completed
            spectrum when ``make_condition`` is given the scene's completion), data units.
        linear: (N, K, H, W) per-pixel linear interpolant through the same values, data units.
        confidence: (N, K, H, W) ``exp(-distance_nm / 20 nm)`` to the nearest observed wavelength, in [0, 1].
        scale: (N, 1, 1, 1) mean observed value of each sample, data units (the brightness unit).
        prior: (N, K, H, W) per-pixel conditional mean of the Gaussian spectral prior given the observed values,
            data units (``anyband_xr.conditioning.prior``).
        trust: (N, K, H, W) weight in [0, 1] of the prior over the interpolant, per sample and wavelength, from
            leave-one-out residuals of both on the observed bands (``anyband_xr.conditioning.trust.prior_weight``).
        target_matrix: (T, K) linear interpolation from the canonical grid to the wavelengths ``to_grid`` returns
            (``anyband_xr.grid.interpolation_matrix`` from the canonical grid), or None (training needs no output grid).
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


INTERPOLATIONS = ("linear", "pchip")


def check_wavelengths(wavelength_nm: torch.Tensor | np.ndarray, bands: int) -> None:
    """Raise unless ``wavelength_nm`` holds ``bands`` strictly ascending wavelengths."""
    wl = np.asarray(wavelength_nm.detach().cpu() if isinstance(wavelength_nm, torch.Tensor) else wavelength_nm)
    if wl.shape != (bands,):
        raise ValueError(f"wavelength_nm has shape {wl.shape}, expected ({bands},) to match the values' {bands} bands.")
    if bands > 1 and bool((wl[1:] <= wl[:-1]).any()):
        raise ValueError("wavelength_nm must be strictly ascending; sort the bands first (anyband_xr.spectral.standardize).")


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
    every pixel with an observation shares one band set. The interpolants are computed by
    ``interpolants.interpolate_pixels`` (NumPy, float64) and returned in the values' dtype, on their device."""
    n, b, h, w = values.shape
    check_wavelengths(wavelength_nm, b)
    observed = _pixels_by_band(~missing.to(torch.bool).expand_as(values))
    values = torch.where(observed, _pixels_by_band(values), torch.zeros((), dtype=values.dtype, device=values.device))
    empty = ~observed.any(dim=1, keepdim=True)
    first = int(torch.argmax((~empty).to(torch.uint8)))  # first pixel with an observation (0 if none has one)
    band_set = observed[first : first + 1]
    if bool(((observed == band_set) | empty).all()):
        # One band set for every pixel that has any (whole-band loss, multispectral input; empty pixels, e.g. nodata
        # borders, hold zeros and interpolate to zero through it): the index arithmetic runs on one row.
        observed = band_set
    result = interpolate_pixels(_numpy(values), _numpy(wavelength_nm), _numpy(observed), _numpy(target_nm), pchip)

    def image(spectra: np.ndarray) -> torch.Tensor:
        out = torch.from_numpy(spectra).to(device=values.device, dtype=values.dtype)
        return out.expand(n * h * w, -1).reshape(n, h, w, -1).permute(0, 3, 1, 2).contiguous()

    distance = np.where(_numpy(empty), NO_OBSERVATION_NM, result.distance_nm)
    cubic = None if result.pchip is None else image(result.pchip)
    return image(result.linear), cubic, image(distance), values, observed


def _numpy(array: torch.Tensor | np.ndarray) -> np.ndarray:
    return array.numpy(force=True) if isinstance(array, torch.Tensor) else np.asarray(array)


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
    prior: PCAPrior | None = None,
    completion: torch.Tensor | None = None,
) -> Condition:
    """Condition of an observation (N, B, H, W) on the canonical grid (see ``Condition``).

    ``band_integrals`` (B, K): the SRF-weighted means that map a canonical spectrum to the observed bands
    (``anyband_xr.simulate.band_weights(CANONICAL_NM, responses)``) when the bands are integrals over broad
    responses (multispectral input); the prior is then conditioned on what the bands measure instead of on point
    samples at their centroids. None: the bands sample the spectrum at ``wavelength_nm``.
    ``target_nm`` (T,): the wavelengths ``to_grid`` will return (the data's own for a repair); their PCHIP
    interpolant is evaluated here, with the canonical one, from the same per-pixel slopes.
    ``prior``: the Gaussian spectral prior behind the prior hint, the one the weights were trained with
    (``anyband_xr.model.weights.spectral_prior``); default the shipped one.
    ``completion`` (N, B, H, W): the observation with its missing values filled by the scene's own low-rank prior
    (``anyband_xr.lowrank``; per-value loss, where the scene teaches every band). The interpolants (the base the
    model corrects and the output path at ``target_nm``) then run through the completed spectrum; the coverage, the
    prior hint and its trust still come from the observed values alone.
    """
    check_wavelengths(wavelength_nm, values.shape[1])
    target_nm = None if target_nm is None else _numpy(target_nm).astype(np.float64)
    base = None
    if completion is not None:
        if completion.shape != values.shape:
            raise ValueError(f"completion has shape {tuple(completion.shape)}, the values {tuple(values.shape)}.")
        every_band = torch.ones(values.shape[1], dtype=torch.bool, device=values.device)
        base = band_set_interpolants(completion.to(values), wavelength_nm, every_band, CANONICAL_NM, target_nm)
    band_set = shared_band_set(missing)
    if band_set is None:
        parts = _pixel_parts(values, wavelength_nm, missing, band_integrals, target_nm, prior, base)
    else:
        parts = band_set_parts(values, wavelength_nm, band_set, CANONICAL_NM, band_integrals, target_nm, prior)
        if base is not None:
            parts = parts._replace(linear=base[0], interp=base[1], target_interp=base[2])
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
    prior: PCAPrior | None,
    base: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None,
) -> Parts:
    """``make_condition``'s parts when the pixels observe different bands: per-pixel interpolants, one
    ``RANK x RANK`` prior solve per pixel. With ``base`` (the completion's linear, PCHIP and target interpolants,
    ``band_set_interpolants``) those are the parts' interpolants, and the per-pixel PCHIP (most of the cost) is not
    computed."""
    k = CANONICAL_NM.size
    own = base is None and target_nm is not None
    targets = np.concatenate([CANONICAL_NM, np.asarray(target_nm, np.float64)]) if own else CANONICAL_NM
    linear, interp, distance, spectra, band_sets = _interpolants(values, wavelength_nm, missing, targets,
                                                                 pchip=base is None)
    distance = distance[:, :k]
    if base is None:
        target_interp = interp[:, k:] if own else None
        linear, interp = linear[:, :k], interp[:, :k].contiguous()
    else:
        linear, interp, target_interp = base
    n, _, h, w = values.shape
    estimate = gaussian_prior.pixel_estimate(spectra, wavelength_nm, band_sets, prior, band_integrals)
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

    value(λ) = PCHIP interpolant through the observed points (or the completed spectrum) at λ + the canonical
    correction ``r * scale / GAIN`` linearly interpolated to λ, so the observation's own fine spectral detail
    survives. The caller restores the observed values exactly. The condition must have been made with ``target_nm``.
    """
    if cond.target_interp is None:
        raise ValueError("this condition has no output grid: make it with make_condition(..., target_nm=...).")
    correction = r * cond.scale / GAIN
    return cond.target_interp + torch.einsum("tk,nkhw->nthw", cond.target_matrix, correction)
