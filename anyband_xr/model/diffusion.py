"""The linear-beta diffusion schedule (paper A.4: beta 1e-4..0.02, T = 1000) and its forward (noising) process."""

from __future__ import annotations

import torch


class LinearSchedule:
    """DDPM schedule with linearly spaced betas; ``alphas_cumprod`` computed in float64, stored float32."""

    def __init__(self, num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02):
        self.num_steps = int(num_steps)
        self.beta_start = float(beta_start)
        self.beta_end = float(beta_end)
        betas = torch.linspace(self.beta_start, self.beta_end, self.num_steps, dtype=torch.float64)
        self.betas = betas.to(torch.float32)
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0).to(torch.float32)

    def _coefficients(self, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        abar = self.alphas_cumprod.to(like.device)[t.to(like.device)].to(like.dtype)
        shape = (-1,) + (1,) * (like.ndim - 1)
        return abar.sqrt().view(shape), (1.0 - abar).sqrt().view(shape)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Noisy ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise`` for integer timesteps ``t`` (N,)."""
        a, s = self._coefficients(t, x0)
        return a * x0 + s * noise

    def signal_fraction(self, t: torch.Tensor) -> torch.Tensor:
        """``abar_t`` (N,): 1 at no noise, ~0 at pure noise (used to fade the physical loss at high noise)."""
        return self.alphas_cumprod.to(t.device)[t]
