"""Pluggable differentiable physical operators for Physics-Guided Sampling (paper Section 3.2, A.1).

Each operator is a small ``nn.Module`` with a ``name`` that maps a physical spectrum on the canonical grid
(N, K, H, W) to a per-pixel loss map (N, H, W). Targets come from the observation, never from ground truth.
A user operator is any module with that contract.
"""

from __future__ import annotations

import torch
from torch import nn

from anyband_xr.physics.indices import band_weights


class _SquaredDistance(torch.autograd.Function):
    """``sum over dim 1 of (weight * (x - point))**2`` with ``point`` held constant; see ``squared_distance``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, point: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        scaled = (x - point).mul_(weight)
        ctx.save_for_backward(scaled, weight)
        return torch.linalg.vecdot(scaled, scaled, dim=1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        scaled, weight = ctx.saved_tensors
        return scaled * (weight * (2 * grad.unsqueeze(1))), None, None


def squared_distance(x: torch.Tensor, point: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per-pixel ``sum_k (weight * (x - point))**2`` over dim 1 of (N, K, H, W) ``x``, differentiable in ``x``.

    ``point`` and ``weight`` broadcast against ``x`` and are constants: a fixed target, or the projection of ``x``
    onto a convex set (``x.detach().clamp(...)``), whose squared distance has the same gradient ``2 (x - P(x))``.
    The gradient is formed in one pass instead of autograd's chain of elementwise backward passes: the guidance
    evaluates it at every DDIM step over every pixel and wavelength.
    """
    return _SquaredDistance.apply(x, point, weight)


class PhysicalOperator(nn.Module):
    """Base class: ``forward(spectrum (N, K, H, W)) -> loss map (N, H, W)``."""

    name: str = "physical"


class SensorConsistency(PhysicalOperator):
    """SRF forward model of the observed bands against the observation (the primary operator).

    ``operator`` (B, K) maps a canonical spectrum to the B observed bands (SRF integration, or interpolation for
    a hyperspectral grid); the loss is the squared misfit over observed values, in units of ``scale``.
    """

    name = "sensor"

    def __init__(self, operator: torch.Tensor, target: torch.Tensor, observed: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        self.register_buffer("operator", operator)
        self.register_buffer("target", target)
        self.register_buffer("weight", observed.to(target.dtype) / scale)

    def forward(self, spectrum: torch.Tensor) -> torch.Tensor:
        predicted = torch.einsum("bk,nkhw->nbhw", self.operator, spectrum)
        return squared_distance(predicted, self.target, self.weight)


class NormalizedDifferenceTarget(PhysicalOperator):
    """A normalised-difference index (NDVI, NDWI; A.1 Eq. 10) of the spectrum against the observation's own index.

    The target is the index of the observed bands lying in the index's band ranges (spyndex definitions); the
    prediction is the index of the whole canonical spectrum over the same ranges. Pixels without an observed band
    in both ranges carry no target.
    """

    def __init__(
        self,
        name: str,
        first: str,
        second: str,
        canonical_nm: torch.Tensor,
        band_nm: torch.Tensor,
        values: torch.Tensor,
        observed: torch.Tensor,
        eps: float = 1e-6,
    ):
        super().__init__()
        self.name = name
        self.eps = eps
        self.register_buffer("weights", torch.stack([band_weights(canonical_nm, first), band_weights(canonical_nm, second)]))
        target_a, has_a = self._observed_mean(band_nm, first, values, observed)
        target_b, has_b = self._observed_mean(band_nm, second, values, observed)
        self.register_buffer("target", self._index(target_a, target_b))
        self.register_buffer("available", (has_a & has_b).to(values.dtype))

    @staticmethod
    def _observed_mean(band_nm, letter, values, observed):
        inside = (band_weights(band_nm, letter, normalise=False) > 0).to(values.dtype).view(1, -1, 1, 1)
        weight = inside * observed.to(values.dtype)
        count = weight.sum(dim=1)
        return (weight * values).sum(dim=1) / count.clamp_min(1.0), count > 0

    def _index(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b + self.eps) / (a + b + self.eps)

    def forward(self, spectrum: torch.Tensor) -> torch.Tensor:
        a, b = torch.einsum("ck,nkhw->cnhw", self.weights, spectrum)
        return self.available * (self._index(a, b) - self.target) ** 2


class ValidReflectance(PhysicalOperator):
    """Penalty outside the valid range ``[low, high]`` (``high=None``: only non-negativity), in units of ``scale``."""

    name = "range"

    def __init__(self, scale: torch.Tensor, low: float = 0.0, high: float | None = 1.0):
        super().__init__()
        self.low, self.high = low, high
        self.register_buffer("scale", scale)

    def forward(self, spectrum: torch.Tensor) -> torch.Tensor:
        return squared_distance(spectrum, spectrum.detach().clamp(min=self.low, max=self.high), 1.0 / self.scale)


class RTMManifold(PhysicalOperator):
    """Distance of vegetated pixels from the PROSAIL manifold through the RTM emulator (A.1 Eq. 11).

    Applies to reflectance in [0, 1]; gated by a smooth NDVI > ``ndvi_threshold`` so that water and built
    surfaces, which PROSAIL does not describe, are not pulled towards canopies.
    """

    name = "rtm"

    def __init__(self, canonical_nm: torch.Tensor, valid: torch.Tensor, ndvi_threshold: float = 0.3):
        super().__init__()
        from anyband_xr.physics.rtm import load_emulator

        self.emulator = load_emulator()
        self.ndvi_threshold = ndvi_threshold
        self.register_buffer("valid", valid)
        self.register_buffer("w_red", band_weights(canonical_nm, "R"))
        self.register_buffer("w_nir", band_weights(canonical_nm, "N"))

    def forward(self, spectrum: torch.Tensor) -> torch.Tensor:
        red = torch.einsum("k,nkhw->nhw", self.w_red, spectrum)
        nir = torch.einsum("k,nkhw->nhw", self.w_nir, spectrum)
        gate = torch.sigmoid(((nir - red) / (nir + red + 1e-6) - self.ndvi_threshold) / 0.05)
        distance = self.emulator.manifold_distance(spectrum.permute(0, 2, 3, 1), valid=self.valid)
        return gate * distance
