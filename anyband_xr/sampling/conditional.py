"""One tile of AnyBand-Diff: observation -> canonical condition -> guided DDIM samples -> spectra on a target grid."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr

from anyband_xr import simulate, tiling
from anyband_xr.grid import CANONICAL_NM
from anyband_xr.model import bridge
from anyband_xr.model.weights import load_model
from anyband_xr.physics import operators as ops
from anyband_xr.sampling.ddim import sample


def resolve_device(device: str | None) -> torch.device:
    """The requested torch device, or CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _pad(x: torch.Tensor, factor: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % factor, 0, -h % factor), mode="replicate")


def diffuse(
    values: np.ndarray,
    missing: np.ndarray,
    wavelength_nm: np.ndarray,
    settings,
    y0: int,
    x0: int,
    target_nm: np.ndarray | None = None,
    responses: xr.DataArray | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Posterior mean and std (2, T, h, w) over ``settings.samples`` guided DDIM samples for one tile.

    Args:
        values: (B, h, w) observation in data units (any finite value where missing).
        missing: (B, h, w) bool, True where missing. ``wavelength_nm``: (B,) ascending band positions (nm).
        settings: a ``RepairSettings`` (guidance, steps, samples, seed, eta, operators, grad, device ...).
        y0: global row of the tile's top-left pixel (the noise depends on it, not on the tiling).
        x0: global column of the tile's top-left pixel.
        target_nm: output wavelengths (default: ``wavelength_nm``, i.e. repair on the own grid).
        responses: SRFs (band, wavelength) of the observed bands when they are band integrals (multispectral
            input to ``generate``); None for samples of the spectrum itself.
    """
    device = resolve_device(settings.device)
    model = load_model(settings.weights, device=device)
    factor = 2 ** (model.config.levels - 1)
    h, w = values.shape[1:]
    target = wavelength_nm if target_nm is None else np.asarray(target_nm, dtype=np.float64)
    v = _pad(torch.as_tensor(values, dtype=torch.float32)[None], factor).to(device)
    m = _pad(torch.as_tensor(missing)[None].float(), factor).bool().to(device)
    band_integrals = None if responses is None else simulate.band_weights(CANONICAL_NM, responses)
    cond = bridge.make_condition(v, wavelength_nm, m, band_integrals, target_nm=target)
    context = cond.tensor()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()

    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with autocast:
            return model(x_t, t, context).float()

    physical = build_operators(settings, v, m, wavelength_nm, cond, band_integrals, device)
    shape = (1, CANONICAL_NM.size, *v.shape[-2:])
    outputs = []
    for k in range(settings.samples):
        noise = tiling.position_noise(settings.seed, k, CANONICAL_NM.size, y0, x0, *v.shape[-2:])
        generator = torch.Generator(device=device).manual_seed(hash((settings.seed, k, y0, x0)) & 0x7FFFFFFF)
        r = sample(
            denoise, shape, model.schedule.alphas_cumprod.to(device), steps=settings.steps, eta=settings.eta,
            generator=generator, noise=torch.from_numpy(noise)[None], guidance=settings.guidance,
            operators=physical, to_physical=lambda r: bridge.from_model(r, cond), grad=settings.grad, progress=progress,
        )
        with torch.no_grad():
            outputs.append(bridge.to_grid(r, cond)[0, :, :h, :w].cpu().numpy())
    stacked = np.stack(outputs)
    return np.stack([stacked.mean(axis=0), stacked.std(axis=0)])


def reflectance_ceiling(values: torch.Tensor, observed: torch.Tensor) -> float:
    """Upper end of the valid reflectance range for a tile: 1, or its brightest observed value where bright
    surfaces (specular roofs, snow, sun glint) exceed 1, as they do in real scenes (the Houston crop reaches 1.6).
    A fixed ceiling of 1 pulls their missing bands down by the whole excess."""
    seen = values[observed]
    return max(1.0, float(seen.max())) if seen.numel() else 1.0


def build_operators(
    settings,
    values: torch.Tensor,
    missing: torch.Tensor,
    wavelength_nm: np.ndarray,
    cond: bridge.Condition,
    band_integrals: np.ndarray | None,
    device: torch.device,
) -> list[torch.nn.Module]:
    """The PGS operators named in ``settings.operators`` plus the user's own modules, built for this observation.

    The sensor operator compares the observed bands with the SRF forward model of the spectrum
    (``band_integrals`` (B, K): SRF-weighted means from the canonical grid, ``simulate.band_weights``); for
    samples of the spectrum itself (None) it asks the correction to vanish at observed wavelengths, because the
    output there is the observed value plus that correction.
    """
    if settings.guidance <= 0:
        return []
    canonical = torch.as_tensor(CANONICAL_NM, dtype=torch.float32, device=device)
    band_nm = torch.as_tensor(np.array(wavelength_nm, dtype=np.float32), device=device)
    observed = ~missing
    if band_integrals is None:
        band_operator = bridge.canonical_to_grid(wavelength_nm, like=values)
        band_target = torch.einsum("bk,nkhw->nbhw", band_operator, cond.interp)
    else:
        band_operator = torch.as_tensor(band_integrals, dtype=values.dtype, device=device)
        band_target = values
    factories = {
        "sensor": lambda: ops.SensorConsistency(band_operator, band_target, observed, cond.scale),
        "ndvi": lambda: ops.NormalizedDifferenceTarget("ndvi", "N", "R", canonical, band_nm, values, observed),
        "ndwi": lambda: ops.NormalizedDifferenceTarget("ndwi", "G", "N", canonical, band_nm, values, observed),
        "range": lambda: ops.ValidReflectance(cond.scale, high=reflectance_ceiling(values, observed) if settings.reflectance else None),
        "rtm": lambda: ops.RTMManifold(canonical, (canonical >= band_nm[0]) & (canonical <= band_nm[-1])),
    }
    unknown = [name for name in settings.operators if name not in factories]
    if unknown:
        raise ValueError(f"unknown PGS operators {unknown}; choose from {sorted(factories)} or pass nn.Module instances.")
    built = [factories[name]().to(device) for name in settings.operators]
    return built + [op.to(device) for op in settings.user_operators]
