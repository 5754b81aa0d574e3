"""Sampling speed of AnyBand-Diff on one tile: latency per tile, physics-guidance (PGS) overhead and its profile.

Every time is measured in the same process as a reference workload (:func:`reference_seconds`), so figures can be
compared across machines as ratios. The tile is the bundled Jasper Ridge scene tiled out to ``tile`` x ``tile``
pixels with 30% of its bands dropped (a real band-loss repair).

Example:
    >>> inputs = tile_inputs(64)
    >>> latency = sampler_latency(load_model(), inputs, steps=2, guidance=1.0)   # seconds per tile
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace

import numpy as np
import torch
import xarray as xr

from anyband_xr import datasets, masks, spectral
from anyband_xr.conditioning import bridge
from anyband_xr.grid import CANONICAL_NM
from anyband_xr.model import MCDUNet
from anyband_xr.settings import RepairSettings
from anyband_xr.sampling.conditional import TileSampler
from anyband_xr.sampling.ddim import physical_loss

#: The reference workload: one float32 (1024 x 1024) @ (1024 x 1024) matrix product in torch.
REFERENCE = "one float32 1024x1024 @ 1024x1024 torch matmul"
BAND_LOSS = 0.3


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(run: Callable[[], object], device: torch.device = torch.device("cpu")) -> float:
    """Wall seconds of ``run()``, synchronising the device before and after."""
    _sync(device)
    start = time.perf_counter()
    run()
    _sync(device)
    return time.perf_counter() - start


def reference_seconds(repeats: int = 5) -> float:
    """Fastest of ``repeats`` timings of :data:`REFERENCE` on the CPU, in seconds."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(1024, 1024, generator=generator)
    b = torch.randn(1024, 1024, generator=generator)
    return min(timed(lambda: a @ b) for _ in range(repeats))


class LoadGauge:
    """Times :data:`REFERENCE` every ``interval`` seconds in a background thread while a job runs (a gauge of how
    fast the shared machine is meanwhile); ``median`` is the median timing, seconds.

    Example:
        >>> with LoadGauge() as gauge:
        ...     run_job()
        >>> gauge.median
    """

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(reference_seconds(repeats=1))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> LoadGauge:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


@dataclass(frozen=True)
class TileInputs:
    """One observed tile, ready for the model: values and mask (1, B, H, W), wavelengths (B,) ascending (nm)."""

    values: torch.Tensor
    missing: torch.Tensor
    wavelength_nm: np.ndarray

    def to(self, device: torch.device) -> TileInputs:
        """The same tile on ``device``."""
        return replace(self, values=self.values.to(device), missing=self.missing.to(device))


def tile_scene(tile: int, seed: int = 0) -> tuple[xr.DataArray, xr.DataArray]:
    """(scene, mask): the bundled real scene tiled out to ``tile`` x ``tile`` pixels (float32, nm) and its band-loss
    mask (dims ``(wavelength,)``, 30% of the bands, seeded)."""
    scene = spectral.standardize(datasets.jasper_ridge())
    reps = -(-tile // min(scene.sizes["y"], scene.sizes["x"]))
    tiled = xr.DataArray(np.tile(scene.values, (1, reps, reps))[:, :tile, :tile].astype(np.float32),
                         dims=scene.dims, coords={"wavelength": scene["wavelength"]}, attrs=scene.attrs)
    return tiled, masks.band_loss(scene, BAND_LOSS, seed=seed)


def tile_inputs(tile: int, seed: int = 0) -> TileInputs:
    """The bundled real scene tiled out to ``tile`` x ``tile`` pixels, 30% of its bands dropped (seeded)."""
    scene, lost = tile_scene(tile, seed)
    missing = np.broadcast_to(lost.values[:, None, None], scene.shape)
    values = np.where(missing, 0.0, scene.values).astype(np.float32)
    return TileInputs(torch.from_numpy(values)[None], torch.from_numpy(missing.copy())[None],
                      scene["wavelength"].values.astype(np.float64))


def auto_overhead(tile: int, steps: int | None, repeats: int) -> list[dict[str, float | str]]:
    """What ``repair(method="auto")`` costs over a plain diffusion repair of the same tile with the same steps, under
    whole-band loss (:func:`tile_scene`'s mask) and under per-value dropout of as many values (seeded).

    Each mask: both methods repair the tile on the CPU, ``repeats`` times each in ABBA order (after one untimed
    diffusion run); the mask, the median seconds of each, their ratio, and the method the self-check chose.
    """
    scene, lost = tile_scene(tile)
    cases = {f"band loss {BAND_LOSS:.0%}": lost, f"dropout {BAND_LOSS:.0%}": masks.dropout(scene, BAND_LOSS, seed=0)}
    return [{"mask": name, **_auto_overhead(scene, mask, steps, repeats)} for name, mask in cases.items()]


def _auto_overhead(scene: xr.DataArray, mask: xr.DataArray, steps: int | None,
                   repeats: int) -> dict[str, float | str]:
    """:func:`auto_overhead` of one mask."""
    from anyband_xr.repair import repair

    observed = scene.where(~mask)
    methods, chosen = ("diffusion", "auto"), {}

    def one(method: str) -> float:
        start = time.perf_counter()
        chosen[method] = repair(observed, mask, method=method, steps=steps, device="cpu").attrs["anyband_method"]
        return time.perf_counter() - start

    one("diffusion")
    times: dict[str, list[float]] = {m: [] for m in methods}
    for repeat in range(repeats):
        for method in methods if repeat % 2 == 0 else methods[::-1]:
            times[method].append(one(method))
    diffusion, auto = (statistics.median(times[m]) for m in methods)
    return {"diffusion_seconds": diffusion, "auto_seconds": auto, "ratio": auto / diffusion, "chosen": chosen["auto"]}


def sampler_for(model: MCDUNet, inputs: TileInputs, device: torch.device | str = "cpu") -> TileSampler:
    """The repair's :class:`TileSampler` of ``model`` on ``inputs`` with the default PGS operators at guidance 1."""
    device = torch.device(device)
    settings = RepairSettings(guidance=1.0, grad="x0", device=str(device))
    return TileSampler.build(inputs.values, inputs.missing, inputs.wavelength_nm, settings, model=model.to(device))


def run(sampler: TileSampler, steps: int, guidance: float) -> torch.Tensor:
    """One sample of ``steps`` steps at ``guidance`` from seeded noise (what a repair runs per tile and sample)."""
    generator = torch.Generator(device=sampler.device).manual_seed(sampler.settings.seed)
    noise = torch.randn(sampler.shape, generator=generator, device=sampler.device)
    return sampler.sample(noise, generator, steps=steps, guidance=guidance)


def guidance_latencies(sampler: TileSampler, steps: int, repeats: int, warm_up: bool = True) -> dict[str, list[float]]:
    """Seconds per sample of ``steps`` steps without and with PGS, ``repeats`` of each.

    The two modes alternate in ABBA order, which cancels a linear drift of the machine's speed. With ``warm_up``
    an untimed one-step guided run comes first (allocator warm-up, first calls of the model and the operators).
    """
    if warm_up:
        run(sampler, 1, 1.0)
    modes = (("unguided", 0.0), ("guided", 1.0))
    out: dict[str, list[float]] = {"unguided": [], "guided": []}
    for repeat in range(repeats):
        for mode, guidance in modes if repeat % 2 == 0 else modes[::-1]:
            out[mode].append(timed(lambda: run(sampler, steps, guidance), sampler.device))
    return out


def fixed_costs(sampler: TileSampler, inputs: TileInputs) -> list[tuple[str, float]]:
    """Per-tile costs outside the sampling steps: (part, seconds) of the conditioning and of the map back to bands."""
    r = torch.zeros(sampler.shape, device=sampler.device)
    inputs = inputs.to(sampler.device)

    def condition() -> bridge.Condition:
        return bridge.make_condition(inputs.values, inputs.wavelength_nm, inputs.missing, target_nm=inputs.wavelength_nm)

    def to_grid() -> torch.Tensor:
        return bridge.to_grid(r, sampler.cond)

    return [("conditioning (conditioning.bridge.make_condition)", timed(condition, sampler.device)),
            ("back to the band grid (conditioning.bridge.to_grid)", timed(to_grid, sampler.device))]


def overhead_ratio(latencies: dict[str, list[float]]) -> float:
    """Median guided latency over median unguided latency (1.05 = PGS costs 5%)."""
    return statistics.median(latencies["guided"]) / statistics.median(latencies["unguided"])


def guidance_profile(sampler: TileSampler, repeats: int = 3) -> list[tuple[str, float]]:
    """Where one guided step's time goes: (part, median seconds), for the model and each piece of the guidance.

    Parts: the denoiser forward, the guidance as a whole (physical loss of the Tweedie estimate and its gradient),
    the canonical-to-physical map alone, and each operator (forward and backward, map included).
    """
    x_t = torch.randn(sampler.shape, generator=torch.Generator().manual_seed(0)).to(sampler.device)
    t = torch.full((1,), 500, dtype=torch.int64, device=sampler.device)

    def gradient(operators) -> Callable[[], object]:
        def run():
            x0 = x_t.detach().requires_grad_(True)
            return torch.autograd.grad(physical_loss(x0, operators, sampler.to_physical).sum(), x0)

        return run

    def to_physical():
        x0 = x_t.detach().requires_grad_(True)
        return torch.autograd.grad(sampler.to_physical(x0).sum(), x0)

    parts: list[tuple[str, Callable[[], object]]] = [
        ("denoiser forward (the model)", lambda: torch.no_grad()(sampler.denoise)(x_t, t)),
        ("guidance: physical loss + gradient, all operators", gradient(sampler.operators)),
        ("  residual -> spectrum map (forward + backward)", to_physical),
    ]
    named = zip(sampler.settings.operators, sampler.operators)
    parts += [(f"  operator {name!r} (map included)", gradient([op])) for name, op in named]
    return [(name, statistics.median(timed(run, sampler.device) for _ in range(repeats))) for name, run in parts]
