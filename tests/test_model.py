"""Canonical bridge, MCD U-Net, diffusion schedule and weight files."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scipy.interpolate import PchipInterpolator

from anyband_xr import spectral
from anyband_xr.conditioning import bridge
from anyband_xr.conditioning.gaussian import GaussianPrior, load_gaussian_prior, save_gaussian_prior, shipped_prior_file
from anyband_xr.conditioning.planes import CONTEXT_PLANES, plane_channels
from anyband_xr.datasets import jasper_ridge
from anyband_xr.grid import CANONICAL_NM
from anyband_xr.model.diffusion import LinearSchedule
from anyband_xr.model.unet import MCDUNet, ModelConfig, count_parameters
from anyband_xr.model.weights import (
    PAPER_STEPS, default_weights, load_model, sampling_steps, save_checkpoint, spectral_prior_hash,
    spectral_prior_path, weights_hash,
)
from anyband_xr.settings import RepairSettings


def _linear_scene(n=2, b=30, h=5, w=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    wl = torch.sort(torch.rand(b, generator=g, dtype=torch.float64) * 2000 + 450).values
    slope = torch.rand(n, 1, h, w, generator=g) * 1e-3
    offset = torch.rand(n, 1, h, w, generator=g)
    values = (offset + slope * wl.float().view(1, b, 1, 1)).float()
    missing = torch.rand(n, b, h, w, generator=g) < 0.6
    missing[:, [3, 20]] = False
    return values, wl, missing, slope, offset


def test_interpolation_is_exact_on_linear_spectra():
    values, wl, missing, slope, offset = _linear_scene()
    interp, distance = bridge.interpolate_observed(values, wl, missing, CANONICAL_NM)
    assert interp.shape == (2, CANONICAL_NM.size, 5, 4) and distance.shape == interp.shape
    observed_wl = [wl[~missing[0, :, 0, 0]]]
    lo, hi = observed_wl[0].min().item(), observed_wl[0].max().item()
    inside = (CANONICAL_NM >= lo) & (CANONICAL_NM <= hi)
    expected = offset[0, 0, 0, 0] + slope[0, 0, 0, 0] * torch.as_tensor(CANONICAL_NM[inside]).float()
    torch.testing.assert_close(interp[0, inside, 0, 0], expected, rtol=1e-5, atol=1e-5)
    below = CANONICAL_NM < lo
    first = values[0, ~missing[0, :, 0, 0], 0, 0][0]
    torch.testing.assert_close(interp[0, below, 0, 0], first.expand(int(below.sum())))
    nearest = np.abs(CANONICAL_NM[:, None] - observed_wl[0].numpy()[None]).min(axis=1)
    np.testing.assert_allclose(distance[0, :, 0, 0].numpy(), nearest, rtol=1e-5)


def test_interpolation_of_an_empty_pixel_is_flagged():
    values, wl, missing, *_ = _linear_scene()
    missing[1, :, 2, 3] = True
    interp, distance = bridge.interpolate_observed(values, wl, missing, CANONICAL_NM)
    assert (interp[1, :, 2, 3] == 0).all() and (distance[1, :, 2, 3] >= bridge.NO_OBSERVATION_NM).all()


def test_condition_round_trip_and_to_grid():
    values, wl, missing, *_ = _linear_scene()
    cond = bridge.make_condition(values, wl, missing, target_nm=wl)
    x = cond.interp + 0.01 * torch.randn_like(cond.interp)
    torch.testing.assert_close(bridge.from_model(bridge.to_model(x, cond), cond), x, rtol=1e-5, atol=1e-6)
    c, m, d, g = cond.tensor().split(CANONICAL_NM.size, dim=1)
    assert c.shape == m.shape == d.shape == g.shape == cond.interp.shape and cond.scale.shape == (2, 1, 1, 1)
    assert ((m >= 0) & (m <= 1)).all()
    own = bridge.to_grid(torch.zeros_like(x), cond)
    torch.testing.assert_close(own[~missing], values[~missing])
    interp, _ = bridge.interpolate_observed(values, wl, missing, wl, method="pchip")
    assert torch.equal(own, interp)  # the output grid's interpolant comes with the condition, bit for bit
    assert torch.equal(bridge.to_grid(torch.zeros_like(x), cond.to("cpu")), own)
    untargeted = bridge.make_condition(values, wl, missing)
    assert torch.equal(untargeted.interp, cond.interp) and torch.equal(untargeted.trust, cond.trust)
    with pytest.raises(ValueError, match="target_nm"):
        bridge.to_grid(torch.zeros_like(x), untargeted)


def test_a_scene_completion_becomes_the_base_and_the_output_path_the_coverage_stays_observed():
    values, wl, missing, *_ = _linear_scene()
    completion = torch.where(missing, values + 0.5, values)  # a stand-in completion, far from PCHIP
    plain = bridge.make_condition(values, wl, missing, target_nm=wl)
    cond = bridge.make_condition(values, wl, missing, target_nm=wl, completion=completion)
    every = bridge.make_condition(completion, wl, torch.zeros_like(missing), target_nm=wl)
    assert torch.equal(cond.interp, every.interp) and torch.equal(cond.linear, every.linear)
    torch.testing.assert_close(bridge.to_grid(torch.zeros_like(cond.interp), cond), completion)
    for name in ("confidence", "prior", "trust", "scale"):
        assert torch.equal(getattr(cond, name), getattr(plain, name)), name


def test_paper_config_has_about_278m_parameters():
    assert abs(count_parameters(ModelConfig.paper()) / 278e6 - 1.0) < 0.10


def test_default_forward_shape_and_zero_initial_residual():
    model = MCDUNet(ModelConfig.default()).eval()
    x = torch.randn(2, 211, 16, 24)
    t = torch.tensor([10, 900])
    context = torch.rand(2, len(CONTEXT_PLANES) * 211, 16, 24)
    with torch.no_grad():
        x0 = model(x, t, context)
    assert x0.shape == x.shape
    assert torch.count_nonzero(x0) == 0


def test_context_planes_are_stacked_and_read_by_name():
    scene = spectral.standardize(jasper_ridge())
    values = torch.as_tensor(scene.values[:, :8, :8].astype(np.float32))[None]
    missing = torch.zeros_like(values, dtype=torch.bool)
    missing[:, ::3] = True
    cond = bridge.make_condition(values, scene.wavelength.values, missing)
    context, planes = cond.tensor(), cond.planes()
    assert tuple(planes) == CONTEXT_PLANES
    for name, plane in planes.items():
        torch.testing.assert_close(context[:, plane_channels(name, 211)], plane, rtol=0, atol=0)
    model = MCDUNet(ModelConfig.default()).eval()
    with torch.no_grad():
        model.head.out.bias[211:] = 1.0  # correction 0, gate 1: the head returns GAIN times the prior hint
        x0 = model(torch.randn(1, 211, 8, 8), torch.tensor([500]), context)
    torch.testing.assert_close(x0, bridge.GAIN * planes["prior_hint"])


def test_spatial_size_must_fit_the_levels():
    model = MCDUNet(ModelConfig.default())
    x = torch.zeros(1, 211, 18, 16)
    with pytest.raises(ValueError, match="divisible by 4"):
        model(x, torch.zeros(1, dtype=torch.int64), torch.zeros(1, len(CONTEXT_PLANES) * 211, 18, 16))


def test_schedule_noises_with_its_cumulative_alphas():
    s = LinearSchedule()
    assert s.alphas_cumprod.dtype == torch.float32 and s.alphas_cumprod.shape == (1000,)
    x0, noise = torch.randn(3, 4, 2, 2), torch.randn(3, 4, 2, 2)
    t = torch.tensor([0, 500, 999])
    x_t = s.q_sample(x0, t, noise)
    abar = s.alphas_cumprod[t].view(-1, 1, 1, 1)
    torch.testing.assert_close(x_t, abar.sqrt() * x0 + (1 - abar).sqrt() * noise)


def test_checkpoint_round_trip(tmp_path):
    model = MCDUNet(ModelConfig(base_channels=8, cam_channels=8, time_embed=16, channel_mults=(1, 2)))
    stem = save_checkpoint(model, tmp_path / "m", config={"lr": 1.0}, extra={"step": 3})
    assert json.loads(stem.with_suffix(".json").read_text())["step"] == 3
    loaded = load_model(tmp_path / "m.safetensors")
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    assert len(weights_hash(stem)) == 64
    assert sampling_steps(stem) == PAPER_STEPS


def test_the_prior_hash_names_the_weights_own_prior_else_the_shipped_one(tmp_path):
    """Provenance records which Gaussian spectral prior a repair conditioned on: the run's own file beside its
    weights when there is one, else the shipped prior (as ``spectral_prior`` loads them)."""
    model = MCDUNet(ModelConfig(base_channels=8, cam_channels=8, time_embed=16, channel_mults=(1, 2)))
    stem = save_checkpoint(model, tmp_path / "m")
    shipped = hashlib.sha256(shipped_prior_file().read_bytes()).hexdigest()
    assert spectral_prior_hash(stem) == spectral_prior_hash() == shipped
    prior = load_gaussian_prior()
    save_gaussian_prior(GaussianPrior(prior.wavelength_nm, prior.mean * 0.5, prior.cov), spectral_prior_path(stem))
    assert spectral_prior_hash(stem) == hashlib.sha256(spectral_prior_path(stem).read_bytes()).hexdigest() != shipped
    record = RepairSettings.build(method="gaussian", weights=stem).provenance()
    assert record["anyband_prior_sha256"] == spectral_prior_hash(stem)
    assert "anyband_prior_sha256" not in RepairSettings.build(method="pchip").provenance()


def test_sampling_steps_come_from_the_weights_metadata(tmp_path):
    model = MCDUNet(ModelConfig(base_channels=8, cam_channels=8, time_embed=16, channel_mults=(1, 2)))
    stem = save_checkpoint(model, tmp_path / "m", extra={"sampling": {"steps": 3}})
    assert sampling_steps(stem) == 3
    assert sampling_steps() == json.loads(default_weights().with_suffix(".json").read_text())["sampling"]["steps"]


def test_shipped_weights_load_and_give_finite_output():
    tensors = load_file(str(default_weights().with_suffix(".safetensors")))
    assert tensors
    model = load_model()
    x = torch.randn(1, 211, 8, 8)
    with torch.no_grad():
        x0 = model(x, torch.tensor([500]), torch.rand(1, len(CONTEXT_PLANES) * 211, 8, 8))
    assert torch.isfinite(x0).all()


def test_pchip_matches_scipy_for_every_pixel():
    rng = np.random.default_rng(0)
    for trial in range(12):
        b = int(rng.integers(2, 40))
        wl = np.sort(rng.choice(np.arange(400, 2500), b, replace=False)).astype(float)
        values = rng.random((1, b, 3, 4))
        if trial % 3 == 0:
            values = np.cumsum(values, axis=1)
        if trial % 2:  # every pixel has its own band set
            missing = rng.random((1, b, 3, 4)) < 0.5
            missing[0, :, 0, 0] = False
        else:  # whole bands lost: one band set shared by all pixels
            missing = np.broadcast_to(rng.random((1, b, 1, 1)) < 0.5, (1, b, 3, 4)).copy()
            missing[0, rng.integers(b)] = False
            missing[0, :, 2, trial % 4] = True  # and an empty pixel (a nodata border)
        target = np.sort(rng.uniform(300, 2600, 50))
        out, _ = bridge.interpolate_observed(torch.from_numpy(values), wl, torch.from_numpy(missing), target, "pchip")
        for y, x in np.ndindex(3, 4):
            observed = ~missing[0, :, y, x]
            xs, ys = wl[observed], values[0, observed, y, x]
            if xs.size == 0:
                assert (out[0, :, y, x] == 0).all()
                continue
            expected = np.full(target.size, ys[0]) if xs.size == 1 else PchipInterpolator(xs, ys)(np.clip(target, xs[0], xs[-1]))
            np.testing.assert_allclose(out[0, :, y, x].numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kept", [1, 2, 3, 140])
def test_a_shared_band_set_gets_the_per_pixel_condition(kept):
    # Whole-band loss takes the band-set path (one set of weights per tile); a batch where one pixel differs takes
    # the per-pixel path. Both must give the same condition.
    scene = spectral.standardize(jasper_ridge())
    values = torch.as_tensor(scene.values[:, :8, :12].astype(np.float32))[None]
    b = values.shape[1]
    lost = torch.ones(b, dtype=torch.bool)
    lost[np.sort(np.random.default_rng(kept).choice(b, kept, replace=False))] = False
    missing = lost.view(1, b, 1, 1).expand_as(values).clone()
    wl = scene.wavelength.values
    shared = bridge.make_condition(values, wl, missing, target_nm=wl)
    odd = missing.clone()
    odd[0, int(torch.nonzero(~lost)[0]), 0, 0] = kept == 1  # one pixel observes one band fewer (or one more)
    odd[0, int(torch.nonzero(lost)[0]), 0, 0] = kept > 1
    batch = bridge.make_condition(torch.cat([values, values]), wl, torch.cat([missing, odd]), target_nm=wl)
    for name in ("interp", "linear", "confidence", "prior", "trust", "target_interp"):
        torch.testing.assert_close(getattr(batch, name)[:1], getattr(shared, name), rtol=2e-5, atol=1e-6, msg=name)
    torch.testing.assert_close(batch.scale[:1], shared.scale)
