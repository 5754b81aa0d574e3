"""One tile of AnyBand-Diff: observation -> canonical condition -> guided DDIM samples -> spectra on a target grid.

``TileSampler`` holds what one tile needs (model, condition, PGS operators, denoiser); ``diffuse`` averages its
samples for the block engine.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr

from anyband_xr import simulate, tiling
from anyband_xr.conditioning import bridge
from anyband_xr.grid import interpolation_matrix
from anyband_xr.grid import CANONICAL_NM
from anyband_xr.model.weights import load_model, spectral_prior
from anyband_xr.physics import operators as ops
from anyband_xr.sampling.ddim import DDIM, Guidance, sample
from anyband_xr.settings import RepairSettings

if TYPE_CHECKING:
    from anyband_xr.lowrank import LowRankGaussian


def resolve_device(device: str | None) -> torch.device:
    """The requested torch device, or CUDA when available, else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _pad(x: torch.Tensor, factor: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % factor, 0, -h % factor), mode="replicate")


@dataclass
class TileSampler:
    """AnyBand-Diff prepared for one tile: the model, the tile's condition, its PGS operators and the denoiser.

    Built once per tile (``TileSampler.build``), then ``sample`` draws one guided DDIM sample of the diffused
    residual and ``spectra`` maps it to the output wavelengths. ``repair``/``generate`` (through ``diffuse``) and
    the speed benchmark use the same object, so what is timed is what runs.
    """

    model: torch.nn.Module
    cond: bridge.Condition
    operators: list[torch.nn.Module]
    settings: RepairSettings
    device: torch.device
    size: tuple[int, int]
    gain: float = 1.0

    @classmethod
    def build(
        cls,
        values: np.ndarray | torch.Tensor,
        missing: np.ndarray | torch.Tensor,
        wavelength_nm: np.ndarray,
        settings: RepairSettings,
        target_nm: np.ndarray | None = None,
        responses: xr.DataArray | None = None,
        model: torch.nn.Module | None = None,
        scene_prior: LowRankGaussian | None = None,
    ) -> TileSampler:
        """The sampler of one (B, h, w) tile (numpy or (1, B, h, w) tensors) in data units, True where missing.

        ``target_nm``: output wavelengths (default ``wavelength_nm``); ``responses``: SRFs (band, wavelength) of
        the observed bands when they are band integrals (multispectral input to ``generate``); ``model``: default
        the weights named in ``settings``; ``scene_prior``: the scene's in-scene low-rank prior, whose completion of
        the tile becomes the base the model corrects (a repair on the own grid only; see ``bridge.make_condition``),
        and the output adds ``settings.correction_gain`` times the model's correction of it (:meth:`spectra`).
        """
        device = resolve_device(settings.device)
        model = load_model(settings.weights, device=device) if model is None else model
        factor = 2 ** (model.config.levels - 1)
        values = torch.as_tensor(values, dtype=torch.float32)
        missing = torch.as_tensor(missing)
        values, missing = (values, missing) if values.ndim == 4 else (values[None], missing[None])
        size = tuple(values.shape[-2:])
        v = _pad(values, factor).to(device)
        m = _pad(missing.float(), factor).bool().to(device)
        completion = None
        if scene_prior is not None and target_nm is None:
            if values.shape[0] != 1:
                raise ValueError(f"a scene prior completes one tile at a time, got {values.shape[0]}.")
            completed = scene_prior.complete(values[0].cpu().numpy(), missing[0].cpu().numpy())
            completion = _pad(torch.from_numpy(completed)[None], factor).to(device)
        target = wavelength_nm if target_nm is None else np.asarray(target_nm, dtype=np.float64)
        band_integrals = None if responses is None else simulate.band_weights(CANONICAL_NM, responses)
        cond = bridge.make_condition(v, wavelength_nm, m, band_integrals, target, spectral_prior(settings.weights),
                                     completion)
        operators = build_operators(settings, v, m, wavelength_nm, cond, band_integrals, device)
        gain = 1.0 if completion is None else settings.correction_gain
        return cls(model, cond, operators, settings, device, size, gain)

    def __post_init__(self) -> None:
        self.context = self.cond.tensor()
        self.shape = (1, CANONICAL_NM.size, *self.cond.interp.shape[-2:])
        cuda = self.device.type == "cuda"
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()

    def denoise(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The network's clean estimate ``x0`` of ``x_t`` on this tile's condition (a ``ddim.Denoiser``)."""
        with self.autocast:
            return self.model(x_t, t, self.context).float()

    def to_physical(self, r: torch.Tensor) -> torch.Tensor:
        """Spectra on the canonical grid (data units) of a diffused residual ``r``."""
        return bridge.from_model(r, self.cond)

    def sample(
        self,
        noise: torch.Tensor,
        generator: torch.Generator | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> torch.Tensor:
        """One DDIM sample of the residual from the initial ``noise`` (1, K, H, W), physics-guided by the
        operators; ``steps`` and ``guidance`` default to the settings'."""
        steps = self.settings.steps if steps is None else steps
        guidance = self.settings.guidance if guidance is None else guidance
        ddim = DDIM(self.model.schedule.alphas_cumprod.to(self.device), steps, self.settings.eta)
        pgs = Guidance(guidance, self.operators if guidance > 0 else (), self.to_physical, self.settings.grad)
        return sample(self.denoise, noise, ddim, pgs, generator=generator, progress=progress)

    def spectra(self, r: torch.Tensor) -> np.ndarray:
        """The output spectra (T, h, w) of a sampled residual, on the target wavelengths, cropped to the tile: the
        base plus ``gain`` times the model's correction (the whole correction unless the base is a completion)."""
        with torch.no_grad():
            return bridge.to_grid(self.gain * r, self.cond)[0, :, : self.size[0], : self.size[1]].cpu().numpy()


def diffuse(
    values: np.ndarray,
    missing: np.ndarray,
    wavelength_nm: np.ndarray,
    settings: RepairSettings,
    y0: int,
    x0: int,
    target_nm: np.ndarray | None = None,
    responses: xr.DataArray | None = None,
    progress: Callable[[int], None] | None = None,
    scene_prior: LowRankGaussian | None = None,
) -> np.ndarray:
    """Posterior mean and std (2, T, h, w) over ``settings.samples`` guided DDIM samples for one tile.

    Args:
        values: (B, h, w) observation in data units (any finite value where missing).
        missing: (B, h, w) bool, True where missing. ``wavelength_nm``: (B,) ascending band positions (nm).
        settings: the repair's ``RepairSettings``.
        y0: global row of the tile's top-left pixel (the noise depends on it, not on the tiling).
        x0: global column of the tile's top-left pixel.
        target_nm: output wavelengths (default: ``wavelength_nm``, i.e. repair on the own grid).
        responses: SRFs (band, wavelength) of the observed bands when they are band integrals (multispectral
            input to ``generate``); None for samples of the spectrum itself.
        progress: called with 1 after every DDIM step.
        scene_prior: the scene's in-scene low-rank prior (``anyband_xr.lowrank``): the model corrects its completion
            of the tile (see ``TileSampler.build``); None: the PCHIP interpolant through the observed values.
    """
    sampler = TileSampler.build(values, missing, wavelength_nm, settings, target_nm, responses,
                                scene_prior=scene_prior)
    outputs = []
    for k in range(settings.samples):
        noise = tiling.position_noise(settings.seed, k, CANONICAL_NM.size, y0, x0, *sampler.shape[-2:])
        generator = torch.Generator(device=sampler.device).manual_seed(hash((settings.seed, k, y0, x0)) & 0x7FFFFFFF)
        r = sampler.sample(torch.from_numpy(noise)[None], generator, progress=progress)
        outputs.append(sampler.spectra(r))
    stacked = np.stack(outputs)
    return np.stack([stacked.mean(axis=0), stacked.std(axis=0)])


def reflectance_ceiling(values: torch.Tensor, observed: torch.Tensor) -> float:
    """Upper end of the valid reflectance range for a tile: 1, or its brightest observed value where bright
    surfaces (specular roofs, snow, sun glint) exceed 1, as they do in real scenes (the Houston crop reaches 1.6).
    A fixed ceiling of 1 pulls their missing bands down by the whole excess."""
    seen = values[observed]
    return max(1.0, float(seen.max())) if seen.numel() else 1.0


def build_operators(
    settings: RepairSettings,
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
        band_operator = torch.as_tensor(interpolation_matrix(CANONICAL_NM, wavelength_nm), dtype=values.dtype, device=device)
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
