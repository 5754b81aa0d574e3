"""Differentiable spectral indices in torch on a wavelength grid (paper A.1 Eq. 10).

Spectra are tensors shaped (N, K, H, W) on a grid of K wavelengths (nm). A band is a spyndex letter (``"R"``,
``"G"``, ``"N"``, ``"S1"``, ``"S2"``, ...) standing for its [min_wavelength, max_wavelength] range, or an
explicit ``(low_nm, high_nm)`` range. Only grid points inside the range take part, so NaN outside a band's
range does not reach its index.

Example:
    >>> wl = torch.arange(400.0, 2501.0, 10.0)
    >>> x = torch.rand(2, wl.numel(), 8, 8, requires_grad=True)
    >>> ndvi(x, wl).mean().backward()
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import spyndex
import torch

#: Regulariser of the normalised differences (A.1 Eq. 10).
EPS = 1e-6

Band = str | tuple[float, float]


def band_range(band: Band) -> tuple[float, float]:
    """(low, high) in nm of a spyndex band letter, or the given range itself: ``band_range("N") == (760, 900)``."""
    if isinstance(band, str):
        if band not in spyndex.bands:
            raise KeyError(f"{band!r} is not a spyndex band letter; e.g. 'R', 'G', 'N', 'S1', 'S2'.")
        definition = spyndex.bands[band]
        return float(definition.min_wavelength), float(definition.max_wavelength)
    low, high = (float(v) for v in band)
    if not low < high:
        raise ValueError(f"a band range needs low < high (nm); got ({low}, {high}).")
    return low, high


def band_weights(
    wavelength_nm: torch.Tensor | np.ndarray,
    band: Band,
    shape: Literal["boxcar", "triangular"] = "boxcar",
    normalise: bool = True,
) -> torch.Tensor:
    """Weights (K,) of the grid ``wavelength_nm`` over a band's range: boxcar (1 inside) or triangular (peak at the
    range centre, 0 at its edges); summing to 1 when ``normalise``.

    Example:
        >>> band_weights(torch.tensor([650.0, 660.0, 850.0]), "R")  # tensor([0.5, 0.5, 0.0])
    """
    wl = torch.as_tensor(wavelength_nm)
    if not wl.is_floating_point():
        wl = wl.to(torch.get_default_dtype())
    low, high = band_range(band)
    if shape == "boxcar":
        weights = ((wl >= low) & (wl <= high)).to(wl.dtype)
    elif shape == "triangular":
        half = (high - low) / 2
        weights = torch.clamp(1 - (wl - (low + half)).abs() / half, min=0.0)
    else:
        raise ValueError(f"shape must be 'boxcar' or 'triangular', got {shape!r}.")
    if not normalise:
        return weights
    total = weights.sum()
    if total <= 0:
        raise ValueError(
            f"no grid wavelength inside band {band!r} ({low:g}-{high:g} nm); the grid covers "
            f"{float(wl.min()):g}-{float(wl.max()):g} nm."
        )
    return weights / total


def band_mean(x: torch.Tensor, wavelength_nm: torch.Tensor | np.ndarray, band: Band) -> torch.Tensor:
    """Boxcar mean (N, H, W) of spectra ``x`` (N, K, H, W) over a band's range."""
    if x.ndim != 4 or x.shape[1] != len(wavelength_nm):
        raise ValueError(f"expected spectra (N, K={len(wavelength_nm)}, H, W); got shape {tuple(x.shape)}.")
    weights = band_weights(torch.as_tensor(wavelength_nm, device=x.device), band).to(x.dtype)
    inside = torch.nonzero(weights, as_tuple=True)[0]
    return torch.einsum("k,nkhw->nhw", weights[inside], x[:, inside])


def normalized_difference(
    x: torch.Tensor, wavelength_nm: torch.Tensor | np.ndarray, a: Band, b: Band, eps: float = EPS
) -> torch.Tensor:
    """(A − B + ε) / (A + B + ε) per pixel (N, H, W), A and B the band means of ``x`` (N, K, H, W)."""
    first = band_mean(x, wavelength_nm, a)
    second = band_mean(x, wavelength_nm, b)
    return (first - second + eps) / (first + second + eps)


def ndvi(x: torch.Tensor, wavelength_nm: torch.Tensor | np.ndarray) -> torch.Tensor:
    """NDVI = (NIR − Red + ε) / (NIR + Red + ε) (N, H, W) of spectra (N, K, H, W) on ``wavelength_nm`` (nm)."""
    return normalized_difference(x, wavelength_nm, "N", "R")


def ndwi(x: torch.Tensor, wavelength_nm: torch.Tensor | np.ndarray) -> torch.Tensor:
    """NDWI = (Green − NIR + ε) / (Green + NIR + ε) (N, H, W) of spectra (N, K, H, W) on ``wavelength_nm`` (nm)."""
    return normalized_difference(x, wavelength_nm, "G", "N")
