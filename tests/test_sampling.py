"""DDIM and Physics-Guided Sampling on an analytic denoiser (data ~ N(0, I), so E[x0 | x_t] = sqrt(abar) x_t)."""

import numpy as np
import pytest
import torch
from torch import nn

from anyband_xr.sampling import DDIM, Guidance, Known, Trajectory, ddim_timesteps, sample

BETAS = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
ABAR = torch.cumprod(1 - BETAS, 0).float()


def denoise(x, t):
    return ABAR[t].view(-1, 1, 1, 1).sqrt() * x


class PullToOne(nn.Module):
    """A physical loss: the first three channels should equal 1."""

    name = "pull"

    def forward(self, spectrum):
        return ((spectrum[:, :3] - 1.0) ** 2).sum(dim=1)


def run(guidance, grad="x0", seed=0, eta=0.0, **kwargs):
    generator = torch.Generator().manual_seed(seed)
    x_T = torch.randn((2, 8, 4, 4), generator=generator)
    pgs = Guidance(guidance, [PullToOne()], lambda r: r, grad)
    return sample(denoise, x_T, DDIM(ABAR, 25, eta), pgs, generator=generator, **kwargs)


def test_timesteps_start_from_pure_noise_and_stop_one_stride_above_zero():
    ts = ddim_timesteps(1000, 50)
    assert len(ts) == 50 and ts[0] == 999 and ts[-1] == 19 and (np.diff(ts) == -20).all()
    assert ddim_timesteps(1000, 1).tolist() == [999]
    assert ddim_timesteps(1000, 3).tolist() == [999, 666, 332]
    assert all(len(ddim_timesteps(1000, s)) == s for s in range(1, 1001))
    with pytest.raises(ValueError):
        ddim_timesteps(1000, 0)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_same_seed_same_sample_and_other_seed_differs(eta):
    assert torch.equal(run(0.0, seed=3, eta=eta), run(0.0, seed=3, eta=eta))
    assert not torch.equal(run(0.0, seed=3, eta=eta), run(0.0, seed=4, eta=eta))


def test_eta_noise_comes_from_the_generator():
    x_T = torch.randn((2, 8, 4, 4), generator=torch.Generator().manual_seed(0))
    ddim = DDIM(ABAR, 5, eta=1.0)
    draws = [sample(denoise, x_T, ddim, generator=torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])


def test_one_step_returns_the_networks_estimate():
    x_T = torch.randn((2, 8, 4, 4), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(sample(denoise, x_T, DDIM(ABAR, 1)), denoise(x_T, torch.tensor([999])))


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
    out = run(0.0, known=Known(values, weight))
    torch.testing.assert_close(out[:, 5], values[:, 5])


def test_guidance_needs_to_physical_and_valid_mode():
    with pytest.raises(ValueError, match="to_physical"):
        Guidance(1.0, [PullToOne()])
    with pytest.raises(ValueError, match="to_physical"):
        sample(denoise, torch.zeros(1, 2, 2, 2), DDIM(ABAR, 2), trajectory=Trajectory())
    with pytest.raises(ValueError, match="grad must be"):
        run(1.0, grad="through")
