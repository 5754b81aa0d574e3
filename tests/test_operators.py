"""Physical operators for PGS: zero at consistency, differentiable, targets from observed bands only."""

import numpy as np
import torch
from torch import nn

from anyband_xr import datasets
from anyband_xr.conditioning import bridge
from anyband_xr.grid import interpolation_matrix
from anyband_xr.grid import CANONICAL_NM
from anyband_xr.physics import operators as ops
from anyband_xr.settings import RepairSettings
from anyband_xr.sampling.conditional import build_operators

CANONICAL = torch.as_tensor(CANONICAL_NM, dtype=torch.float32)


def jasper_canonical(crop=8):
    da = datasets.jasper_ridge().isel(y=slice(0, crop), x=slice(0, crop))
    values = torch.as_tensor(da.values)[None]
    missing = torch.zeros_like(values, dtype=torch.bool)
    spectrum, _ = bridge.interpolate_observed(values, da.wavelength.values, missing, CANONICAL_NM)
    return da, values, missing, spectrum


def test_squared_distance_gradient_matches_autograd():
    x = torch.rand(2, 5, 3, 4, dtype=torch.float64) * 1.4 - 0.2
    point, weight = torch.rand(2, 5, 3, 4, dtype=torch.float64), torch.rand(2, 5, 3, 4, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda v: ops.squared_distance(v, point, weight), (x.requires_grad_(),))
    scale = torch.full((2, 1, 1, 1), 0.5, dtype=torch.float64)
    fused = x.detach().requires_grad_()
    ops.squared_distance(fused, fused.detach().clamp(0.0, 1.0), 1.0 / scale).sum().backward()
    plain = x.detach().requires_grad_()
    ((plain - plain.clamp(0.0, 1.0)) / scale).pow(2).sum().backward()
    torch.testing.assert_close(fused.grad, plain.grad)


def test_sensor_consistency_zero_when_consistent_and_differentiable():
    da, values, missing, spectrum = jasper_canonical()
    operator = torch.as_tensor(interpolation_matrix(CANONICAL_NM, da.wavelength.values), dtype=torch.float32)
    target = torch.einsum("bk,nkhw->nbhw", operator, spectrum)
    op = ops.SensorConsistency(operator, target, ~missing, torch.ones(1, 1, 1, 1))
    assert float(op(spectrum).abs().max()) < 1e-8
    perturbed = (spectrum + 0.01).requires_grad_(True)
    loss = op(perturbed).sum()
    loss.backward()
    assert float(loss) > 0 and torch.isfinite(perturbed.grad).all() and perturbed.grad.abs().sum() > 0


def test_index_target_comes_from_observed_bands_only():
    da, values, missing, spectrum = jasper_canonical()
    band_nm = torch.as_tensor(da.wavelength.values, dtype=torch.float32)
    nir = (band_nm >= 760) & (band_nm <= 900)
    hidden = missing.clone()
    hidden[:, nir] = True
    op = ops.NormalizedDifferenceTarget("ndvi", "N", "R", CANONICAL, band_nm, values, ~hidden)
    assert float(op.available.sum()) == 0
    op = ops.NormalizedDifferenceTarget("ndvi", "N", "R", CANONICAL, band_nm, values, ~missing)
    assert float(op.available.min()) == 1
    assert float(op(spectrum).max()) < 1e-3


def test_valid_reflectance_penalises_only_outside_range():
    op = ops.ValidReflectance(torch.ones(1, 1, 1, 1), high=1.0)
    inside = torch.full((1, 4, 2, 2), 0.5)
    assert float(op(inside).max()) == 0
    outside = inside.clone()
    outside[0, 0, 0, 0] = -0.2
    outside[0, 1, 1, 1] = 1.3
    loss = op(outside)
    assert float(loss[0, 0, 0]) > 0 and float(loss[0, 1, 1]) > 0 and float(loss[0, 0, 1]) == 0


def test_range_ceiling_follows_bright_observed_reflectance():
    da, values, missing, spectrum = jasper_canonical()
    bright = values * (1.5 / float(values.max()))
    cond = bridge.make_condition(bright, da.wavelength.values, missing)
    settings = RepairSettings(operators=("range",))
    (op,) = build_operators(settings, bright, missing, da.wavelength.values, cond, None, torch.device("cpu"))
    assert op.high == 1.5
    assert float(op(bridge.from_model(torch.zeros_like(cond.interp), cond)).max()) == 0
    (dim,) = build_operators(settings, values, missing, da.wavelength.values, cond, None, torch.device("cpu"))
    assert dim.high == 1.0


def test_rtm_operator_scores_vegetation_low_and_flows_gradients():
    da, values, missing, spectrum = jasper_canonical(crop=100)
    abundance = datasets.jasper_ridge_abundances().values
    valid = (CANONICAL >= 400) & (CANONICAL <= 2450)
    op = ops.RTMManifold(CANONICAL, valid)
    spectrum = spectrum.clone().requires_grad_(True)
    loss = op(spectrum)
    loss.sum().backward()
    assert torch.isfinite(spectrum.grad).all()
    loss = loss[0].detach().numpy()
    tree, water = abundance[0] > 0.8, abundance[1] > 0.8
    assert loss[tree].mean() > loss[water].mean()  # water is gated out: PROSAIL does not describe it


def test_user_operator_runs_inside_repair():
    class Flat(nn.Module):
        name = "flat"

        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, spectrum):
            self.calls += 1
            return spectrum.diff(dim=1).pow(2).sum(dim=1)

    da = datasets.jasper_ridge().isel(y=slice(0, 16), x=slice(0, 16))
    mask = np.zeros(da.sizes["wavelength"], dtype=bool)
    mask[60:80] = True
    import xarray as xr

    flat = Flat()
    out = da.anyband.repair(xr.DataArray(mask, dims="wavelength"), method="diffusion",
                            operators=["sensor", flat], steps=3, tile=16, overlap=4)
    assert flat.calls == 3 and out.attrs["anyband_operators"] == "sensor"
