"""DDIM sampling with Physics-Guided Sampling (paper Section 3.2, Eq. 3-4), sign corrected.

The paper's Eq. 4, ``eps~ = eps - s * sqrt(1 - abar_t) * g_t`` with ``g_t = grad_{x_t} L_phy``, moves the Tweedie
estimate ``x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar)`` *up* the physical loss. We use the correction that lowers
it, ``eps~ = eps + s * sqrt(1 - abar_t) * g_t`` (as in classifier guidance, where ``grad log p = -grad L``), with
``g_t`` rescaled per pixel to a Gauss-Newton step (for the x0 mode, ``g_t = sqrt(abar) * 2 L / |g|^2 * g`` with
``g`` the gradient at the Tweedie estimate). The estimate then moves by ``-s * (1 - abar_t)`` Gauss-Newton steps:
``s = 1`` is one full consistency step at the noisiest level, fading with the noise, independent of the tile size
and of the loss's units.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ToPhysical = Callable[[torch.Tensor], torch.Tensor]

GRAD_MODES = ("x0", "full")
_TINY = 1e-12


@dataclass
class Trajectory:
    """Per-step record of a guided run: timestep and the physical loss of the Tweedie estimate (summed)."""

    timesteps: list[int] = field(default_factory=list)
    physical_loss: list[float] = field(default_factory=list)


def ddim_timesteps(num_train_steps: int, steps: int) -> np.ndarray:
    """Descending timesteps, ``steps`` of them every ``num_train_steps / steps``, from ``num_train_steps - 1`` down.

    The "trailing" spacing (Lin et al. 2024, "Common diffusion noise schedules and sample steps are flawed"): the
    first step always starts from pure noise and the last one ends ``num_train_steps / steps`` above 0, so one step
    is the network's estimate of x0 from the condition alone (its posterior mean) and no step is spent at t = 0,
    where the input is already clean.
    """
    if not 1 <= steps <= num_train_steps:
        raise ValueError(f"steps must be in [1, {num_train_steps}], got {steps}.")
    return (num_train_steps - np.round(np.arange(steps) * (num_train_steps / steps))).astype(np.int64) - 1


def physical_loss(x0: torch.Tensor, operators: Sequence[nn.Module], to_physical: ToPhysical) -> torch.Tensor:
    """Per-pixel physical loss map (N, H, W): the sum of every operator's loss on the physical spectrum of ``x0``."""
    spectrum = to_physical(x0)
    return sum(op(spectrum) for op in operators)


def _guidance_step(loss_map: torch.Tensor, grad_x0: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Per-pixel step along ``direction`` (N, K, H, W) sized as a Gauss-Newton step of the loss map (N, H, W).

    For ``direction == grad_x0`` this is ``2 L / |g|^2 * g``, the step that zeroes a quadratic loss of a projection;
    for another direction (the gradient through the network) the size uses its projection on ``grad_x0`` and is
    never negative, so a step never climbs the loss to first order.
    """
    grad_norm2 = torch.linalg.vecdot(grad_x0, grad_x0, dim=1)
    if direction is grad_x0:
        along, direction_norm2 = grad_norm2, grad_norm2
    else:
        along, direction_norm2 = torch.linalg.vecdot(grad_x0, direction, dim=1), torch.linalg.vecdot(direction, direction, dim=1)
    size = 2.0 * loss_map * along / (grad_norm2 * direction_norm2 + _TINY)
    return direction * size.clamp_min(0.0).unsqueeze(1)


def sample(
    denoise: Denoiser,
    shape: tuple[int, ...],
    alphas_cumprod: torch.Tensor,
    steps: int = 50,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    guidance: float = 0.0,
    operators: Sequence[nn.Module] = (),
    to_physical: ToPhysical | None = None,
    grad: str = "x0",
    known: tuple[torch.Tensor, torch.Tensor] | None = None,
    trajectory: Trajectory | None = None,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Draw one DDIM sample of shape ``shape``, optionally physics-guided.

    Args:
        denoise: ``eps = denoise(x_t, t)`` with ``t`` an int64 tensor (N,).
        shape: (N, K, H, W) of the diffused variable.
        alphas_cumprod: the training schedule's cumulative alphas (T,).
        steps: number of DDIM steps (50 in the paper). ``eta``: 0 deterministic DDIM, 1 DDPM-like.
        generator: torch generator for the initial noise and eta > 0 noise (seeded for determinism).
        noise: the initial x_T (e.g. position-derived noise, see ``anyband_xr.tiling``); drawn when None.
        guidance: PGS scale ``s`` (0 = plain DDIM).
        operators: differentiable physical operators; each maps a physical spectrum (N, K, H, W) to a loss map
            (N, H, W). ``to_physical`` maps the diffused variable to that spectrum.
        grad: ``"x0"`` differentiates the loss through the Tweedie estimate only (the network's eps held fixed,
            cheap); ``"full"`` back-propagates through the network as well.
        known: optional (values, weight) in the diffused variable's space restored at every step (RePaint-style):
            ``x0 <- weight * values + (1 - weight) * x0``.
        trajectory: filled with the physical loss per step when given.
        progress: called with 1 after each step (e.g. a tqdm ``update``).
    """
    if grad not in GRAD_MODES:
        raise ValueError(f"grad must be one of {GRAD_MODES}, got {grad!r}.")
    guided = guidance > 0 and len(operators) > 0
    if (guided or trajectory is not None) and to_physical is None:
        raise ValueError("physics guidance needs to_physical, the map from the diffused variable to spectra.")
    abar = alphas_cumprod.to(dtype=torch.float64)
    device = alphas_cumprod.device
    ts = ddim_timesteps(len(abar), steps)
    x = torch.randn(shape, generator=generator, device=device) if noise is None else noise.to(device)
    for i, t in enumerate(ts):
        a_t = float(abar[t])
        a_prev = float(abar[ts[i + 1]]) if i + 1 < len(ts) else 1.0
        t_batch = torch.full((shape[0],), int(t), dtype=torch.int64, device=device)
        track_full = guided and grad == "full"
        with torch.set_grad_enabled(track_full):
            x_in = x.detach().requires_grad_(track_full)
            eps = denoise(x_in, t_batch)
            x0 = (x_in - (1 - a_t) ** 0.5 * eps) / a_t**0.5
            if guided or trajectory is not None:
                with torch.enable_grad():
                    if not track_full:
                        x0 = x0.detach().requires_grad_(True)
                    loss_map = physical_loss(x0, operators, to_physical)
                    if guided:
                        wrt = (x0, x_in) if track_full else (x0,)
                        grads = torch.autograd.grad(loss_map.sum(), wrt)
                        step = _guidance_step(loss_map.detach(), grads[0], grads[-1])
                        eps = eps.detach() + guidance * (1 - a_t) ** 0.5 * a_t**0.5 * step
                        x0 = (x_in.detach() - (1 - a_t) ** 0.5 * eps) / a_t**0.5
                if trajectory is not None:
                    trajectory.timesteps.append(int(t))
                    trajectory.physical_loss.append(float(loss_map.detach().sum()))
        x0 = x0.detach()
        eps = eps.detach()
        if known is not None:
            values, weight = known
            x0 = weight * values + (1 - weight) * x0
            eps = (x.detach() - a_t**0.5 * x0) / (1 - a_t) ** 0.5
        sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)) ** 0.5
        direction_coef = max(1 - a_prev - sigma**2, 0.0) ** 0.5
        x = a_prev**0.5 * x0 + direction_coef * eps
        if sigma > 0:
            x = x + sigma * torch.randn(shape, generator=generator, device=device)
        if progress is not None:
            progress(1)
    return x
