"""DDIM sampling with Physics-Guided Sampling (paper Section 3.2, Eq. 3-4), sign corrected.

**The network predicts x0**, the clean residual: ``x0 = denoise(x_t, t)``. This is the one place the prediction type
is stated; the DDIM update (``DDIM.step``) derives the noise ``eps`` from it where the equation needs it.

The paper's Eq. 4, ``eps~ = eps - s * sqrt(1 - abar_t) * g_t`` with ``g_t = grad_{x_t} L_phy``, moves the Tweedie
estimate ``x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar)`` *up* the physical loss. We use the correction that lowers
it, ``eps~ = eps + s * sqrt(1 - abar_t) * g_t`` (as in classifier guidance, where ``grad log p = -grad L``), with
``g_t = sqrt(abar_t) * delta`` and ``delta`` the per-pixel Gauss-Newton step of the loss at the estimate
(``2 L / |g|^2 * g``, ``g`` its gradient). In x0 form the guided estimate is ``x0~ = x0 - s * (1 - abar_t) * delta``:
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
"""``x0 = denoise(x_t, t)``: the network's clean estimate (N, K, H, W) of ``x_t`` at int64 timesteps ``t`` (N,)."""
ToPhysical = Callable[[torch.Tensor], torch.Tensor]

GRAD_MODES = ("x0", "full")
_TINY = 1e-12


@dataclass
class Trajectory:
    """Per-step record of a guided run: timestep and the physical loss of the Tweedie estimate (summed)."""

    timesteps: list[int] = field(default_factory=list)
    physical_loss: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Guidance:
    """Physics-Guided Sampling: how strongly, by which operators, and through what the loss is differentiated.

    Attributes:
        scale: PGS scale ``s`` (0 = plain DDIM).
        operators: differentiable physical operators; each maps a physical spectrum (N, K, H, W) to a loss map
            (N, H, W).
        to_physical: maps the diffused variable to that spectrum (needed when guided or recording a trajectory).
        grad: ``"x0"`` differentiates the loss at the Tweedie estimate only (the network's output held fixed,
            cheap); ``"full"`` back-propagates through the network as well.
    """

    scale: float = 0.0
    operators: Sequence[nn.Module] = ()
    to_physical: ToPhysical | None = None
    grad: str = "x0"

    def __post_init__(self) -> None:
        if self.grad not in GRAD_MODES:
            raise ValueError(f"grad must be one of {GRAD_MODES}, got {self.grad!r}.")
        if self.active and self.to_physical is None:
            raise ValueError("physics guidance needs to_physical, the map from the diffused variable to spectra.")

    @property
    def active(self) -> bool:
        """True when the sampler is guided (positive scale and at least one operator)."""
        return self.scale > 0 and len(self.operators) > 0


@dataclass(frozen=True)
class Known:
    """Values of the diffused variable restored at every step (RePaint-style): ``x0 <- w * values + (1 - w) * x0``.

    Attributes:
        values: (N, K, H, W) known values in the diffused variable's space.
        weight: (N, K, H, W) in [0, 1]: 1 where ``values`` replace the estimate.
    """

    values: torch.Tensor
    weight: torch.Tensor

    def restore(self, x0: torch.Tensor) -> torch.Tensor:
        """``x0`` with the known values blended in."""
        return self.weight * self.values + (1 - self.weight) * x0


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


@dataclass(frozen=True)
class DDIM:
    """The DDIM scheduler of a training schedule (Song et al. 2021), modelled on diffusers' ``DDIMScheduler``.

    Attributes:
        alphas_cumprod: the training schedule's cumulative alphas ``abar`` (T,).
        steps: number of DDIM steps (50 in the paper), spaced by ``ddim_timesteps``.
        eta: 0 deterministic DDIM, 1 DDPM-like.
    """

    alphas_cumprod: torch.Tensor
    steps: int = 50
    eta: float = 0.0

    @property
    def timesteps(self) -> list[tuple[int, int]]:
        """The (t, t_prev) pairs of the run, descending; the last ``t_prev`` is -1, the clean end (``abar`` = 1)."""
        ts = ddim_timesteps(len(self.alphas_cumprod), self.steps).tolist()
        return list(zip(ts, ts[1:] + [-1]))

    def abar(self, t: int) -> float:
        """``abar_t`` in float64; 1 at ``t = -1``."""
        return 1.0 if t < 0 else float(self.alphas_cumprod[t].double())

    def step(
        self,
        x0: torch.Tensor,
        x_t: torch.Tensor,
        t: int,
        t_prev: int,
        guide: torch.Tensor | None = None,
        known: Known | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``x_{t_prev}`` from ``x_t`` and the network's estimate ``x0`` (N, K, H, W): the DDIM update
        ``x_{t_prev} = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z``, with the guidance and the
        known values applied to ``x0`` first and ``eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t)``.

        Args:
            x0: the network's clean estimate at ``x_t``.
            x_t: the current sample.
            t: the current timestep.
            t_prev: the next (smaller) timestep of ``timesteps``, -1 at the clean end.
            guide: ``s * delta``, the PGS scale times the Gauss-Newton step of the physical loss at ``x0``
                (``_guidance_step``); None when unguided.
            known: values restored at every step.
            generator: source of the ``eta > 0`` noise.
        """
        a_t, a_prev = self.abar(t), self.abar(t_prev)
        if guide is not None:
            x0 = x0 - (1 - a_t) * guide  # PGS, Eq. 4 in x0 form: eps~ = eps + s sqrt(1 - abar_t) sqrt(abar_t) delta
        if known is not None:
            x0 = known.restore(x0)
        eps = (x_t - a_t**0.5 * x0) / (1 - a_t) ** 0.5
        sigma = self.eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)) ** 0.5
        x_prev = a_prev**0.5 * x0 + max(1 - a_prev - sigma**2, 0.0) ** 0.5 * eps
        if sigma > 0:
            x_prev = x_prev + sigma * torch.randn(x_t.shape, generator=generator, device=x_t.device)
        return x_prev


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


def _estimate(
    denoise: Denoiser, x_t: torch.Tensor, t: int, guidance: Guidance, trajectory: Trajectory | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The network's x0 at ``(x_t, t)`` and the PGS term ``s * delta`` (None when unguided); the physical loss of
    the estimate goes to ``trajectory`` when given."""
    full = guidance.active and guidance.grad == "full"
    t_batch = torch.full((x_t.shape[0],), t, dtype=torch.int64, device=x_t.device)
    with torch.set_grad_enabled(full):
        x_in = x_t.detach().requires_grad_(full)
        x0 = denoise(x_in, t_batch)
    if not guidance.active and trajectory is None:
        return x0, None
    with torch.enable_grad():
        x0 = x0 if full else x0.detach().requires_grad_(True)
        loss_map = physical_loss(x0, guidance.operators, guidance.to_physical)
        if trajectory is not None:
            trajectory.timesteps.append(t)
            trajectory.physical_loss.append(float(loss_map.detach().sum()))
        if not guidance.active:
            return x0.detach(), None
        grads = torch.autograd.grad(loss_map.sum(), (x0, x_in) if full else (x0,))
    return x0.detach(), guidance.scale * _guidance_step(loss_map.detach(), grads[0], grads[-1])


def sample(
    denoise: Denoiser,
    x_T: torch.Tensor,
    ddim: DDIM,
    guidance: Guidance | None = None,
    known: Known | None = None,
    generator: torch.Generator | None = None,
    trajectory: Trajectory | None = None,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Run DDIM from the initial noise ``x_T`` (N, K, H, W) down to the clean end, optionally physics-guided.

    Args:
        denoise: the network, ``x0 = denoise(x_t, t)`` (see ``Denoiser``).
        x_T: the initial noise (e.g. position-derived noise, see ``anyband_xr.tiling``, or ``torch.randn``).
        ddim: the scheduler (schedule, step count, eta).
        guidance: PGS scale, operators, map to spectra and gradient mode (default: unguided).
        known: values restored at every step (RePaint-style), or None.
        generator: torch generator of the ``eta > 0`` noise (seeded for determinism).
        trajectory: filled with the physical loss per step when given.
        progress: called with 1 after each step (e.g. a tqdm ``update``).
    """
    guidance = Guidance() if guidance is None else guidance
    if trajectory is not None and guidance.to_physical is None:
        raise ValueError("a trajectory needs to_physical, the map from the diffused variable to spectra.")
    x_t = x_T.to(ddim.alphas_cumprod.device)
    for t, t_prev in ddim.timesteps:
        x0, guide = _estimate(denoise, x_t, t, guidance, trajectory)
        x_t = ddim.step(x0, x_t, t, t_prev, guide, known, generator)
        if progress is not None:
            progress(1)
    return x_t
