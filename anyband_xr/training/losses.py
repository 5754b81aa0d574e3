"""Training losses: masked x0 MSE and the Multi-Scale Physical Loss (MSPL, paper 3.3, Eq. 5-8).

MSPL is computed on the predicted clean spectrum on the canonical grid in brightness units
(``base + r / GAIN`` = data units / ``scale``), per sample, and faded with the noise level (weight ``abar_t``).
- pixel (Eq. 6): squared Frobenius distance between the Pearson band-correlation matrix over the patch's pixels
  and a prior ``S`` estimated once from the training scenes (mean over the valid band pairs);
- region (Eq. 7): KL divergence between Gaussian-KDE densities of NDVI and NDWI of the true and predicted patch,
  both KDEs evaluated on a fixed grid over [-1, 1] (differentiable); needs ``anyband_xr.physics.indices``;
- image (Eq. 8): squared difference of the RTM emulator's manifold distance of the predicted and true spectra
  (``use_rtm``, on by default; the emulator of ``anyband_xr.physics.rtm``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from anyband_xr.grid import CANONICAL_NM
from anyband_xr.conditioning.bridge import GAIN
from anyband_xr.physics.indices import ndvi, ndwi
from anyband_xr.physics.rtm import load_emulator

_EPS = 1e-8


@dataclass
class MSPLConfig:
    """Weights of MSPL (paper: 1.0 / 0.5 / 0.2) and of MSPL in the total loss; KDE settings."""

    weight: float = 0.05
    lambda_pixel: float = 1.0
    lambda_region: float = 0.5
    lambda_image: float = 0.2
    use_region: bool = True
    use_rtm: bool = True
    kde_bandwidth: float = 0.05
    kde_points: int = 81
    rtm_pixels: int = 128


def masked_mse(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean squared error over valid canonical wavelengths; ``valid`` (N, K) bool, tensors (N, K, H, W)."""
    weight = valid[:, :, None, None].to(pred.dtype).expand_as(pred)
    return ((pred - target) ** 2 * weight).sum() / weight.sum().clamp_min(1.0)


def relative_mse(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, floor: float) -> torch.Tensor:
    """Mean over samples of each sample's masked MSE divided by its target energy plus ``floor``.

    Residual energies span four orders of magnitude across training samples (a band dropped between two observed
    neighbours vs. a full spectrum from three bands); a plain MSE would learn almost only from the hard ones.
    Relative errors weigh every sample by how much of its residual is recovered, as PSNR does.
    """
    weight = valid[:, :, None, None].to(pred.dtype).expand_as(pred)
    count = weight.sum(dim=(1, 2, 3)).clamp_min(1.0)
    error = ((pred - target) ** 2 * weight).sum(dim=(1, 2, 3)) / count
    energy = (target**2 * weight).sum(dim=(1, 2, 3)) / count
    return (error / (energy + floor)).mean()


def correlation(x: torch.Tensor) -> torch.Tensor:
    """Pearson correlation matrix (N, K, K) of the bands of ``x`` (N, K, H, W) over its spatial pixels."""
    flat = x.flatten(2)
    centred = flat - flat.mean(dim=2, keepdim=True)
    cov = centred @ centred.transpose(1, 2)
    std = cov.diagonal(dim1=1, dim2=2).clamp_min(_EPS).sqrt()
    return cov / (std[:, :, None] * std[:, None, :])


def correlation_prior(spectra: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Prior ``S`` (K, K) and its support count from canonical spectra: a list of (values (K, P), valid (K,)).

    Each scene's correlation over its pixels is averaged per band pair over the scenes that cover both bands.
    """
    k = CANONICAL_NM.size
    total, count = np.zeros((k, k)), np.zeros((k, k))
    for values, valid in spectra:
        idx = np.flatnonzero(valid)
        corr = np.corrcoef(values[idx])
        total[np.ix_(idx, idx)] += np.nan_to_num(corr)
        count[np.ix_(idx, idx)] += 1.0
    prior = np.where(count > 0, total / np.maximum(count, 1.0), 0.0)
    return torch.as_tensor(prior, dtype=torch.float32), torch.as_tensor(count, dtype=torch.float32)


def pixel_loss(x: torch.Tensor, valid: torch.Tensor, prior: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """Eq. 6 per sample (N,): mean squared deviation of the band correlations from the prior over valid pairs."""
    pairs = (valid[:, :, None] & valid[:, None, :] & (support > 0)[None]).to(x.dtype)
    diff = (correlation(x) - prior[None]) ** 2 * pairs
    return diff.sum(dim=(1, 2)) / pairs.sum(dim=(1, 2)).clamp_min(1.0)


def kde(values: torch.Tensor, grid: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """Gaussian-KDE density (N, G) of per-sample values (N, P) on ``grid`` (G,), normalised to sum 1."""
    dens = torch.exp(-0.5 * ((grid[None, :, None] - values[:, None, :]) / bandwidth) ** 2).mean(dim=2)
    return dens / dens.sum(dim=1, keepdim=True).clamp_min(_EPS)


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per row (N,) of discrete densities on the same grid."""
    return (p * (torch.log(p + _EPS) - torch.log(q + _EPS))).sum(dim=1)


IndexFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def region_loss(
    true: torch.Tensor, pred: torch.Tensor, valid: torch.Tensor, config: MSPLConfig, functions: list[IndexFunction]
) -> torch.Tensor:
    """Eq. 7 per sample (N,): summed KL between KDEs of each index on the true and predicted patch.

    An index counts for a sample only where its bands are valid there (probed with NaN outside ``valid``).
    """
    wl = torch.as_tensor(CANONICAL_NM, dtype=true.dtype, device=true.device)
    grid = torch.linspace(-1.0, 1.0, config.kde_points, device=true.device, dtype=true.dtype)
    probe = torch.where(valid[:, :, None, None], true, torch.full_like(true, float("nan")))
    total = torch.zeros(true.shape[0], dtype=true.dtype, device=true.device)
    for fn in functions:
        with torch.no_grad():
            usable = torch.isfinite(fn(probe, wl).flatten(1)).all(dim=1)
        p = kde(fn(true, wl).flatten(1).clamp(-1, 1).detach(), grid, config.kde_bandwidth)
        q = kde(fn(pred, wl).flatten(1).clamp(-1, 1), grid, config.kde_bandwidth)
        total = total + torch.where(usable, kl_divergence(p, q), torch.zeros_like(total))
    return total


def image_loss(
    true: torch.Tensor, pred: torch.Tensor, valid: torch.Tensor, emulator: torch.nn.Module, pixels: int
) -> torch.Tensor:
    """Eq. 8 per sample (N,): squared difference of the RTM manifold distances of predicted and true spectra.

    The image-level mean is estimated on ``pixels`` random pixels per sample (the emulator is the costly part).
    """
    n, k = true.shape[:2]
    flat_true, flat_pred = true.flatten(2), pred.flatten(2)
    if flat_true.shape[2] > pixels:
        pick = torch.randperm(flat_true.shape[2], device=true.device)[:pixels]
        flat_true, flat_pred = flat_true[:, :, pick], flat_pred[:, :, pick]
    mask = valid[:, None, :].expand(-1, flat_true.shape[2], -1)
    d_pred = emulator.manifold_distance(flat_pred.transpose(1, 2), valid=mask)
    with torch.no_grad():
        d_true = emulator.manifold_distance(flat_true.transpose(1, 2), valid=mask)
    return ((d_pred - d_true) ** 2).mean(dim=1)


class MSPL(torch.nn.Module):
    """Multi-Scale Physical Loss on brightness-unit canonical spectra; ``forward`` returns per-sample terms."""

    def __init__(self, config: MSPLConfig, prior: torch.Tensor, support: torch.Tensor):
        super().__init__()
        self.config = config
        self.register_buffer("prior", prior)
        self.register_buffer("support", support)
        self.functions: list[IndexFunction] = [ndvi, ndwi] if config.use_region else []
        self.emulator = load_emulator() if config.use_rtm else None

    def forward(
        self, x0_pred: torch.Tensor, x0_true: torch.Tensor, base: torch.Tensor, scale: torch.Tensor, valid: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Per-sample (N,) ``pixel``, ``region``, ``image`` and weighted ``total`` from residuals (N, K, H, W)."""
        pred, true = base + x0_pred / GAIN, base + x0_true / GAIN
        zero = torch.zeros(pred.shape[0], dtype=pred.dtype, device=pred.device)
        terms = {"pixel": pixel_loss(pred, valid, self.prior, self.support), "region": zero, "image": zero}
        if self.functions:
            terms["region"] = region_loss(true, pred, valid, self.config, self.functions)
        if self.emulator is not None:
            unit = scale.view(-1, 1, 1, 1)
            terms["image"] = image_loss(true * unit, pred * unit, valid, self.emulator, self.config.rtm_pixels)
        c = self.config
        terms["total"] = c.lambda_pixel * terms["pixel"] + c.lambda_region * terms["region"] + c.lambda_image * terms["image"]
        return terms
