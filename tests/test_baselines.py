"""The classical repairs (linear, PCHIP, Gaussian) run on NumPy and SciPy alone."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from scipy.interpolate import PchipInterpolator

import anyband_xr
from anyband_xr import baselines
from anyband_xr.conditioning import gaussian

SCRIPT = """
import sys
import anyband_xr
da = anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 10), x=slice(0, 12))
lost = anyband_xr.masks.band_loss(da, 0.3, seed=0)
dropped = anyband_xr.masks.dropout(da, 0.3, seed=0)
for mask in (lost, dropped):
    out = da.where(~mask).anyband.repair(mask, method={method!r})
    assert bool(out.notnull().all())
assert "torch" not in sys.modules, "torch was imported"
"""


@pytest.mark.parametrize("method", ["linear", "pchip", "gaussian"])
def test_classical_repairs_never_import_torch(method):
    # The test session has torch loaded already: a fresh interpreter tells whether the repair imports it.
    subprocess.run([sys.executable, "-c", SCRIPT.format(method=method)], check=True, timeout=600)


@pytest.mark.parametrize("patterns_per_pixel", [0.0, 1.0], ids=["all-pixels-at-once", "per-pattern"])
def test_interpolation_is_scipys_per_pixel(monkeypatch, patterns_per_pixel):
    monkeypatch.setattr(baselines, "PATTERNS_PER_PIXEL", patterns_per_pixel)
    rng = np.random.default_rng(0)
    wl = np.sort(rng.choice(np.arange(400.0, 2500.0), 30, replace=False))
    values = np.cumsum(rng.random((30, 40)), axis=0)
    missing = rng.random((30, 40)) < 0.5
    missing[:, :10] = missing[:, :1]  # ten pixels share one pattern
    missing[:, 10] = True
    missing[7, 10] = False  # a pixel with one observed band: flat
    target = np.sort(rng.uniform(300.0, 2600.0, 25))
    pchip = baselines.interpolate(values, wl, missing, "pchip", target)
    linear = baselines.interpolate(values, wl, missing, "linear", target)
    for p in range(values.shape[1]):
        x, y = wl[~missing[:, p]], values[~missing[:, p], p]
        inside = np.clip(target, x[0], x[-1])
        expected = np.full(target.size, y[0]) if x.size == 1 else PchipInterpolator(x, y)(inside)
        np.testing.assert_allclose(pchip[:, p], expected, rtol=1e-12)
        np.testing.assert_allclose(linear[:, p], np.interp(target, x, y), rtol=1e-12)


def _scipy_per_pixel(values: np.ndarray, wl: np.ndarray, missing: np.ndarray, method: str) -> np.ndarray:
    """(B, P) interpolants of every pixel through its observed values, one SciPy/NumPy call per pixel."""
    out = np.empty(values.shape)
    for p in range(values.shape[1]):
        x, y = wl[~missing[:, p]], values[~missing[:, p], p]
        out[:, p] = np.interp(wl, x, y) if method == "linear" else PchipInterpolator(x, y)(np.clip(wl, x[0], x[-1]))
    return out


@pytest.mark.parametrize("method", ["linear", "pchip"])
def test_dropout_repair_is_scipys_per_pixel(method):
    da = anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 6), x=slice(0, 8)).load()
    dropped = anyband_xr.masks.dropout(da, 0.5, seed=0)
    out = da.where(~dropped).anyband.repair(dropped, method=method)
    values, missing = da.values.reshape(da.shape[0], -1).astype(np.float64), dropped.values.reshape(da.shape[0], -1)
    expected = _scipy_per_pixel(values, da.wavelength.values.astype(np.float64), missing, method)
    np.testing.assert_allclose(out.values.reshape(da.shape[0], -1), expected.astype(out.dtype), rtol=1e-6)


def _per_pattern(values, wl, missing, prior=None, ridge=1e-3):
    """The Gaussian conditional mean by one ``gaussian.conditional_mean`` per missing pattern over its pixels."""
    mu, cov = (prior or gaussian.load_gaussian_prior()).on_grid(wl)
    ridged = cov + ridge * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
    out = values.astype(np.float64)
    patterns, inverse = gaussian.missing_patterns(missing)
    for k in np.flatnonzero(patterns.any(axis=1)):
        pixels, obs, mis = np.flatnonzero(inverse == k), ~patterns[k], patterns[k]
        out[np.ix_(mis, pixels)] = gaussian.conditional_mean(
            values[obs][:, pixels], mu[mis], mu[obs], ridged[np.ix_(mis, obs)], ridged[np.ix_(obs, obs)]
        )
    return out


def test_gaussian_equals_one_solve_per_pattern():
    rng = np.random.default_rng(0)
    wl = np.sort(rng.choice(np.arange(400.0, 2500.0), 40, replace=False))
    values = np.cumsum(rng.random((40, 300)), axis=0) * rng.uniform(0.1, 5.0, 300)
    missing = rng.random((40, 300)) < rng.uniform(0.05, 0.95, 300)  # both solve forms, many system sizes
    missing[rng.integers(0, 40, 300), np.arange(300)] = False
    missing[:, :40] = missing[:, :1]  # a pattern shared by forty pixels: factorised once for them
    missing[:, 40] = True
    missing[5, 40] = False  # one observed value
    missing[:, 41] = False  # nothing missing
    missing[:, 42] = True
    missing[[0, -1], 42] = False  # only the ends observed
    prior = baselines.fit_gaussian_prior([(np.cumsum(rng.random((40, 500)), axis=0), wl)])
    expected = _per_pattern(values, wl, missing, prior=prior)
    out = baselines.gaussian_conditional_mean(values, wl, missing, prior=prior)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max())
    np.testing.assert_array_equal(out[~missing], values[~missing])


def test_gaussian_on_dropout_of_a_real_crop_equals_one_solve_per_pattern():
    da = anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 10), x=slice(0, 20)).load()
    values, wl = da.values.reshape(da.shape[0], -1), da.wavelength.values.astype(np.float64)
    for fraction in (0.1, 0.5, 0.8):
        missing = np.random.default_rng(0).random(values.shape) < fraction
        expected = _per_pattern(values, wl, missing)
        out = baselines.gaussian_conditional_mean(values, wl, missing)
        np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max())
        assert np.array_equal(out[~missing].view(np.uint64), values[~missing].astype(np.float64).view(np.uint64))


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


def test_a_gaussian_pixel_never_depends_on_the_pixels_beside_it(monkeypatch):
    # Every pixel's result is its own, bit for bit: whether its pattern is shared by 1, 20, 40 or 10,000 pixels,
    # whatever else the call holds, however it is batched (BATCH_BYTES, SHARED_PIXELS: speed only).
    da = anyband_xr.datasets.jasper_ridge().load()
    values, wl = da.values.reshape(da.shape[0], -1).astype(np.float64), da.wavelength.values.astype(np.float64)
    rng = np.random.default_rng(0)
    lost = np.broadcast_to(rng.random((values.shape[0], 1)) < 0.4, values.shape)  # band loss over all 10,000
    scene = baselines.gaussian_conditional_mean(values, wl, lost)
    dropped = rng.random((values.shape[0], 60)) < rng.uniform(0.05, 0.95, 60)  # both solve forms
    dropped[rng.integers(0, values.shape[0], 60), np.arange(60)] = False
    dropped[:, 40:] = dropped[:, 40:41]  # twenty pixels share one pattern
    # the band-loss pattern on 40 pixels beside 40 dropout pixels and the twenty
    mixed = np.concatenate([lost[:, :40], dropped], axis=1)
    columns = np.r_[:40, 100:160]
    whole = baselines.gaussian_conditional_mean(values[:, columns], wl, mixed)
    np.testing.assert_array_equal(_bits(whole[:, :40]), _bits(scene[:, :40]))
    for n in (1, 20, 40):
        alone = baselines.gaussian_conditional_mean(values[:, :n], wl, lost[:, :n])
        np.testing.assert_array_equal(_bits(alone), _bits(scene[:, :n]))
    for subset in (np.r_[0, 45, 99], np.r_[40:100], np.r_[75, 3, 60:70], np.r_[10:30, 80:100]):
        part = baselines.gaussian_conditional_mean(values[:, columns[subset]], wl, mixed[:, subset])
        np.testing.assert_array_equal(_bits(part), _bits(whole[:, subset]))
    for batch_bytes, shared_pixels in ((2**14, 1), (2**20, 3), (2**34, 10**9)):
        monkeypatch.setattr(gaussian, "BATCH_BYTES", batch_bytes)
        monkeypatch.setattr(gaussian, "SHARED_PIXELS", shared_pixels)
        out = baselines.gaussian_conditional_mean(values[:, columns], wl, mixed)
        np.testing.assert_array_equal(_bits(out), _bits(whole))


@pytest.mark.parametrize("chunks", [{"y": 10}, {"y": 7, "x": 3}, {"y": 20, "x": 6}, {"y": 4, "x": 4}])
def test_gaussian_chunking_never_changes_the_result(chunks):
    # A 40-pixel pattern split 20/20 by {"y": 10}, a 30-pixel one, and per-value dropout elsewhere; float64 keeps
    # every bit of the result.
    da = anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 20), x=slice(0, 20)).astype("float64").load()
    rng = np.random.default_rng(1)
    mask = xr.zeros_like(da, dtype=bool)
    mask.values[:] = rng.random(da.shape) < 0.3
    mask.values[:, 5:15, 0:4] = (rng.random(da.shape[0]) < 0.4)[:, None, None]
    mask.values[:, 0:3, 10:20] = (rng.random(da.shape[0]) < 0.7)[:, None, None]
    expected = da.where(~mask).anyband.repair(mask, method="gaussian")
    lazy = da.where(~mask).chunk(chunks).anyband.repair(mask, method="gaussian")
    assert lazy.chunks is not None
    np.testing.assert_array_equal(_bits(lazy.values), _bits(expected.values))
