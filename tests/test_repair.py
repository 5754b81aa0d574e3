"""The user-facing repair on the bundled real scene: contract, laziness, determinism, errors, baselines."""

import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr

import anyband_xr
from anyband_xr import datasets
from tests.helpers import count_dask_computes

FAST = {"steps": 4, "tile": 64, "overlap": 16}


@pytest.fixture(scope="module")
def scene():
    return datasets.jasper_ridge().isel(y=slice(0, 40), x=slice(60, 100))


@pytest.fixture(scope="module")
def band_mask(scene):
    mask = np.zeros(scene.sizes["wavelength"], dtype=bool)
    mask[np.random.default_rng(0).choice(mask.size, mask.size // 3, replace=False)] = True
    return xr.DataArray(mask, dims="wavelength", coords={"wavelength": scene.wavelength})


def observed_equal(out, da, mask):
    keep = ~np.broadcast_to(mask.values[:, None, None], da.shape) & np.isfinite(da.values)
    return np.array_equal(out.values[keep].view(np.uint32), da.values[keep].view(np.uint32))


@pytest.mark.parametrize("method", ["linear", "pchip", "gaussian", "diffusion"])
def test_observed_values_bit_exact_and_gaps_filled(scene, band_mask, method):
    observed = scene.where(~band_mask)
    out = observed.anyband.repair(band_mask, method=method, seed=0, **FAST)
    assert observed_equal(out, scene, band_mask)
    assert np.isfinite(out.values).all()
    assert out.attrs["anyband_method"] == method


def test_coords_attrs_and_crs_preserved(scene, band_mask):
    georef = scene.rio.write_crs("EPSG:32610").assign_attrs(title="Jasper Ridge")
    out = georef.anyband.repair(band_mask, method="diffusion", seed=1, **FAST)
    assert out.dims == georef.dims and out.rio.crs == georef.rio.crs
    for name in ("wavelength", "y", "x"):
        np.testing.assert_array_equal(out[name].values, georef[name].values)
    assert out.attrs["title"] == "Jasper Ridge" and len(out.attrs["anyband_weights_sha256"]) == 64


def test_dask_input_stays_lazy_and_matches_numpy(scene, band_mask):
    lazy = scene.where(~band_mask).chunk({"y": 20, "x": 20})
    with count_dask_computes() as counter:
        out = lazy.anyband.repair(band_mask, method="diffusion", seed=2, **FAST)
    assert counter.count == 0 and out.chunks is not None
    eager = scene.where(~band_mask).anyband.repair(band_mask, method="diffusion", seed=2, **FAST)
    # dask blocks and eager tiles cut different windows (each window has its own brightness unit and context),
    # so a few values differ slightly; the bulk must agree
    diff = np.abs(out.compute().values - eager.values)
    assert np.quantile(diff, 0.995) < 2e-3 and diff.max() < 1e-2


def test_same_seed_same_result_other_seed_differs(scene, band_mask):
    runs = [scene.anyband.repair(band_mask, method="diffusion", seed=s, **FAST).values for s in (5, 5, 6)]
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_samples_give_mean_and_std(scene, band_mask):
    ds = scene.anyband.repair(band_mask, method="diffusion", samples=2, seed=0, return_std=True, **FAST)
    assert isinstance(ds, xr.Dataset) and set(ds.data_vars) == {"reflectance", "std"}
    std = ds["std"].values
    assert (std[~np.broadcast_to(band_mask.values[:, None, None], std.shape)] == 0).all()
    assert (std >= 0).all() and std.max() > 0


def test_nan_counts_as_missing(scene):
    holed = scene.copy()
    holed[10:20, 5, 5] = np.nan
    out = holed.anyband.repair(method="pchip")
    assert np.isfinite(out.values).all()


@pytest.mark.parametrize(
    "mask, error, message",
    [
        (lambda s: xr.DataArray(np.zeros(5, bool), dims="wavelength"), ValueError, "5 entries"),
        (lambda s: xr.DataArray(np.zeros(s.sizes["wavelength"]), dims="wavelength"), TypeError, "must be boolean"),
        (lambda s: np.zeros((3, 3), bool), ValueError, "does not match"),
        (lambda s: xr.DataArray(np.ones(s.sizes["wavelength"], bool), dims="wavelength"), ValueError, "every band missing"),
        (lambda s: xr.DataArray(np.zeros(2, bool), dims="time"), ValueError, "lacks"),
    ],
)
def test_bad_masks_raise_clear_errors(scene, mask, error, message):
    with pytest.raises(error, match=message):
        scene.anyband.repair(mask(scene), method="linear")


def test_no_spectral_axis_is_a_clear_error():
    da = xr.DataArray(np.ones((3, 4, 4)), dims=("channel", "y", "x"))
    with pytest.raises(anyband_xr.SpectralAxisError, match="no spectral axis"):
        da.anyband.repair(method="linear")


def test_classical_methods_rank_sensibly_on_a_gap(scene):
    gap = xr.DataArray((scene.wavelength.values > 1000) & (scene.wavelength.values < 1150), dims="wavelength")
    errors = {}
    for method in ("linear", "gaussian"):
        out = scene.where(~gap).anyband.repair(gap, method=method)
        errors[method] = float(np.sqrt(((out - scene) ** 2).where(gap).mean()))
    assert errors["gaussian"] < errors["linear"]


def test_lowrank_fills_dropout_better_than_pchip_and_lazily_the_same():
    da = anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 30), x=slice(0, 30)).load()
    mask = anyband_xr.masks.dropout(da, 0.5, seed=0)
    observed = da.where(~mask)
    lowrank = observed.anyband.repair(mask, method="lowrank")
    pchip = observed.anyband.repair(mask, method="pchip")
    rmse = {name: float(np.sqrt(((out - da) ** 2).where(mask).mean())) for name, out in (("lowrank", lowrank), ("pchip", pchip))}
    assert rmse["lowrank"] < 0.8 * rmse["pchip"]
    assert lowrank.attrs["anyband_method"] == "lowrank"
    lazy = observed.chunk({"y": 10}).anyband.repair(mask, method="lowrank")
    np.testing.assert_array_equal(lazy.values, lowrank.values)


def test_lowrank_refuses_bands_missing_everywhere():
    da = anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 20), x=slice(0, 20)).load()
    mask = anyband_xr.masks.band_loss(da, 0.3, seed=0)
    with pytest.raises(ValueError, match="cannot see band"):
        da.where(~mask).anyband.repair(mask, method="lowrank")


def test_auto_checks_the_candidates_on_the_scene_and_gives_conformal_intervals():
    da = anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 30), x=slice(0, 30)).load()
    mask = anyband_xr.masks.dropout(da, 0.5, seed=0)
    out = da.where(~mask).anyband.repair(mask, method="auto", interval=0.9)
    assert out.attrs["anyband_method"] == "auto:lowrank" and out.attrs["anyband_selfcheck_method"] == "lowrank"
    assert {"anyband_selfcheck_rmse_pchip", "anyband_selfcheck_rmse_diffusion"} <= set(out.attrs)
    repaired = out[da.name or "repaired"]
    observed = ~mask.values
    np.testing.assert_array_equal(repaired.values[observed], da.values[observed])
    np.testing.assert_array_equal(out["lower"].values[observed], da.values[observed])
    inside = (da >= out["lower"]) & (da <= out["upper"])
    assert 0.8 <= float(inside.values[mask.values].mean()) <= 0.99


def test_auto_on_dask_is_lazy_and_equals_the_in_memory_choice():
    da = anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 30), x=slice(0, 30)).load()
    mask = anyband_xr.masks.dropout(da, 0.4, seed=0)
    observed = da.where(~mask)
    eager = observed.anyband.repair(mask, method="auto")
    with count_dask_computes() as counter:
        lazy = observed.chunk({"y": 10}).anyband.repair(mask, method="auto")
    assert counter.count == 0 and lazy.attrs["anyband_method"] == "auto"
    assert eager.attrs["anyband_method"] == "auto:lowrank"
    np.testing.assert_array_equal(lazy.values, eager.values)


def test_std_of_a_classical_repair_is_the_calibrated_one_sigma_halfwidth():
    da = anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 30), x=slice(0, 30)).load()
    mask = anyband_xr.masks.band_loss(da, 0.3, seed=1)
    out = da.where(~mask).anyband.repair(mask, method="pchip", return_std=True, interval=0.9)
    full = np.broadcast_to(mask.values[:, None, None], da.shape)
    std, half = out["std"].values, (out["upper"] - out["lower"]).values / 2
    assert (std[~full] == 0).all() and (std[full] > 0).all() and (std[full] < half[full]).all()
    assert "calibrated" in out["std"].attrs["long_name"]
    alone = da.where(~mask).anyband.repair(mask, method="pchip", return_std=True)
    np.testing.assert_array_equal(alone["std"].values, std)


@pytest.mark.parametrize("method, make_mask", [
    ("pchip", lambda da: anyband_xr.masks.band_loss(da, 0.3, seed=1)),
    ("auto", lambda da: anyband_xr.masks.dropout(da, 0.4, seed=0)),
])
def test_interval_and_calibrated_std_on_dask_are_lazy_and_equal_the_in_memory_ones(method, make_mask):
    """interval= and the calibrated std on dask: the self-check is one task of the graph and the bounds are computed
    block by block; nothing computes until asked, and the values are those of the in-memory repair, bit for bit."""
    da = anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 30), x=slice(0, 30)).load()
    mask = make_mask(da)
    observed = da.where(~mask)
    eager = observed.anyband.repair(mask, method=method, interval=0.9, return_std=True)
    with count_dask_computes() as counter:
        lazy = observed.chunk({"y": 10, "x": 15}).anyband.repair(mask, method=method, interval=0.9, return_std=True)
    assert counter.count == 0
    assert set(lazy.data_vars) == set(eager.data_vars) == {"reflectance", "std", "lower", "upper"}
    assert all(lazy[name].chunks is not None for name in lazy.data_vars)
    computed = lazy.compute()
    for name in eager.data_vars:
        assert computed[name].dtype == eager[name].dtype
        np.testing.assert_array_equal(computed[name].values.view(np.uint32), eager[name].values.view(np.uint32))
    assert "calibrated" in lazy["std"].attrs["long_name"]
    full = mask.broadcast_like(da).transpose(*da.dims).values
    assert (computed["std"].values[~full] == 0).all() and (computed["std"].values[full] > 0).all()


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, True, "0.9"])
def test_a_bad_interval_fails_before_any_work(level, monkeypatch):
    import anyband_xr.repair as repair_module

    monkeypatch.setattr(repair_module, "prepare", lambda *a: pytest.fail("the repair started"))
    da = anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 10), x=slice(0, 10))
    with pytest.raises(ValueError, match="interval must lie in"):
        da.chunk({"y": 5}).anyband.repair(method="pchip", interval=level)


def test_the_default_method_is_auto_and_records_the_self_check():
    """Without method=, repair runs the self-check (every candidate, the model too) and the best method fills the
    scene; in memory the attrs record the choice and the scores, on dask the graph is built and nothing computes."""
    from anyband_xr.selfcheck import CANDIDATES
    from anyband_xr.settings import RepairSettings

    assert RepairSettings().method == RepairSettings.build().method == "auto"
    da = anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 30), x=slice(0, 30)).load()
    mask = anyband_xr.masks.dropout(da, 0.5, seed=0)
    observed = da.where(~mask)
    out = observed.anyband.repair(mask)
    assert out.attrs["anyband_method"] == "auto:lowrank" and out.attrs["anyband_selfcheck_method"] == "lowrank"
    assert {f"anyband_selfcheck_rmse_{m}" for m in CANDIDATES} <= set(out.attrs)
    assert np.array_equal(out.values[~mask.values].view(np.uint32), da.values[~mask.values].view(np.uint32))
    assert np.isfinite(out.values).all()
    with count_dask_computes() as counter:
        lazy = observed.chunk({"y": 10}).anyband.repair(mask)
    assert counter.count == 0 and lazy.chunks is not None and lazy.attrs["anyband_method"] == "auto"


def test_generate_stays_on_the_diffusion_model_and_blocks_need_a_chosen_method():
    from anyband_xr.engine import fill_block
    from anyband_xr.settings import RepairSettings

    s2 = anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 8), x=slice(0, 8)).anyband.simulate("sentinel-2a")
    assert s2.anyband.generate(steps=1, tile=8, overlap=0).attrs["anyband_method"] == "diffusion"
    values = np.ones((3, 4, 4), np.float32)
    missing = np.zeros_like(values, bool)
    missing[1] = True
    with pytest.raises(ValueError, match="chosen by the self-check"):
        fill_block(values, missing, np.array([500.0, 600.0, 700.0]), RepairSettings())
