"""DDIM and Physics-Guided Sampling on an analytic denoiser (data ~ N(0, I), so E[eps | x_t] = sqrt(1 - abar) x_t)."""

import numpy as np
import pytest
import torch
from torch import nn

from anyband_xr.sampling import Trajectory, ddim_timesteps, sample

BETAS = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
ABAR = torch.cumprod(1 - BETAS, 0).float()


def denoise(x, t):
    return (1 - ABAR[t].view(-1, 1, 1, 1)).sqrt() * x


class PullToOne(nn.Module):
    """A physical loss: the first three channels should equal 1."""

    name = "pull"

    def forward(self, spectrum):
        return ((spectrum[:, :3] - 1.0) ** 2).sum(dim=1)


def run(guidance, grad="x0", seed=0, **kwargs):
    generator = torch.Generator().manual_seed(seed)
    return sample(
        denoise, (2, 8, 4, 4), ABAR, steps=25, generator=generator, guidance=guidance,
        operators=[PullToOne()], to_physical=lambda r: r, grad=grad, **kwargs,
    )


def test_timesteps_start_from_pure_noise_and_stop_one_stride_above_zero():
    ts = ddim_timesteps(1000, 50)
    assert len(ts) == 50 and ts[0] == 999 and ts[-1] == 19 and (np.diff(ts) == -20).all()
    assert ddim_timesteps(1000, 1).tolist() == [999]
    assert ddim_timesteps(1000, 3).tolist() == [999, 666, 332]
    assert all(len(ddim_timesteps(1000, s)) == s for s in range(1, 1001))
    with pytest.raises(ValueError):
        ddim_timesteps(1000, 0)


def test_same_seed_same_sample_and_other_seed_differs():
    assert torch.equal(run(0.0, seed=3), run(0.0, seed=3))
    assert not torch.equal(run(0.0, seed=3), run(0.0, seed=4))


@pytest.mark.parametrize("grad", ["x0", "full"])
def test_physical_loss_falls_as_guidance_grows(grad):
    losses = [float(PullToOne()(run(s, grad=grad)).sum()) for s in (0.0, 0.5, 1.0, 2.0)]
    assert all(a > b for a, b in zip(losses, losses[1:])), losses


def test_trajectory_records_loss_per_step():
    trajectory = Trajectory()
    run(1.0, trajectory=trajectory)
    assert len(trajectory.physical_loss) == 25 and trajectory.timesteps[0] == 999
    assert trajectory.physical_loss[-1] < trajectory.physical_loss[0]


def test_known_values_restored_every_step():
    values = torch.full((2, 8, 4, 4), 0.5)
    weight = torch.zeros(2, 8, 4, 4)
    weight[:, 5] = 1.0
    out = run(0.0, known=(values, weight))
    torch.testing.assert_close(out[:, 5], values[:, 5])


def test_guidance_needs_to_physical_and_valid_mode():
    with pytest.raises(ValueError, match="to_physical"):
        sample(denoise, (1, 2, 2, 2), ABAR, steps=2, guidance=1.0, operators=[PullToOne()])
    with pytest.raises(ValueError, match="grad must be"):
        run(1.0, grad="through")
