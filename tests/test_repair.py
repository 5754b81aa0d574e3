"""The user-facing repair on the bundled real scene: contract, laziness, determinism, errors, baselines."""

import warnings

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


def test_diffusion_corrects_the_scenes_low_rank_completion_on_dropout_lazily_the_same():
    da = anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 30), x=slice(0, 30)).load()
    mask = anyband_xr.masks.dropout(da, 0.5, seed=0)
    observed = da.where(~mask)
    outs = {method: observed.anyband.repair(mask, method=method, seed=0, **(FAST if method == "diffusion" else {}))
            for method in ("diffusion", "lowrank", "pchip")}
    rmse = {name: float(np.sqrt(((out - da) ** 2).where(mask).mean())) for name, out in outs.items()}
    # Measured: 0.0040 against 0.0033 for the completion it corrects and 0.0058 for PCHIP (0.0044 before, when the
    # model corrected the PCHIP interpolant); with the share of its correction the scene backs, the completion's.
    from anyband_xr import repair as front, selfcheck
    from anyband_xr.settings import RepairSettings

    values, missing, _, _ = front.prepare(observed, mask)
    measured = front._self_check(values, missing, RepairSettings.build(method="diffusion", seed=0, **FAST),
                                 front._run_calibration)
    gain = outs["diffusion"].attrs["anyband_correction_gain"]
    assert gain == measured and gain == round(gain, 2) and selfcheck.COMPLETION_MARGIN > 0
    assert rmse["diffusion"] < 1.05 * rmse["lowrank"] and rmse["diffusion"] < 0.8 * rmse["pchip"]
    lazy = observed.chunk({"y": 10}).anyband.repair(mask, method="diffusion", seed=0, **FAST)
    np.testing.assert_array_equal(lazy.values, outs["diffusion"].values)
    assert "anyband_correction_gain" not in lazy.attrs  # measured when the graph computes


def test_the_model_adds_its_correction_gain_times_its_correction_of_the_completion():
    from dataclasses import replace

    from anyband_xr.engine import fill_block, scene_prior
    from anyband_xr.settings import RepairSettings

    da = anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 20), x=slice(0, 20)).load()
    values = da.transpose("wavelength", "y", "x").values
    missing = anyband_xr.masks.dropout(da, 0.4, seed=0).transpose("wavelength", "y", "x").values
    observed, nm = np.where(missing, np.nan, values), da["wavelength"].values
    prior = scene_prior("diffusion", observed, missing)
    settings = RepairSettings.build(method="diffusion", seed=0, **FAST)
    fill = {gain: fill_block(observed, missing, nm, replace(settings, correction_gain=gain), prior=prior)[0]
            for gain in (0.0, 0.5, 1.0)}
    completion = fill_block(observed, missing, nm, replace(settings, method="lowrank"), prior=prior)[0]
    np.testing.assert_array_equal(fill[0.0], completion)  # no share: the completion, without running the model
    np.testing.assert_allclose(fill[0.5], 0.5 * (fill[0.0] + fill[1.0]), atol=1e-6)
    assert not np.allclose(fill[1.0], completion, atol=1e-5)
    lost = np.broadcast_to(anyband_xr.masks.band_loss(da, 0.3, seed=0).values[:, None, None], values.shape)
    pchip_base = {gain: fill_block(np.where(lost, np.nan, values), lost, nm, replace(settings, correction_gain=gain))[0]
                  for gain in (0.0, 1.0)}
    np.testing.assert_array_equal(pchip_base[0.0], pchip_base[1.0])  # the gain weighs a completion's correction only


def test_the_model_corrects_pchip_where_the_scene_cannot_teach_a_band():
    from anyband_xr.engine import scene_prior
    from anyband_xr.lowrank import UnseenBandsError

    da = anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 20), x=slice(0, 20)).load()
    values = da.transpose("wavelength", "y", "x").values
    lost = np.broadcast_to(anyband_xr.masks.band_loss(da, 0.3, seed=0).values[:, None, None], values.shape)
    assert scene_prior("diffusion", values, lost) is None
    with pytest.raises(UnseenBandsError):
        scene_prior("lowrank", values, lost)
    dropped = anyband_xr.masks.dropout(da, 0.3, seed=0).transpose("wavelength", "y", "x").values
    assert scene_prior("diffusion", values, dropped).rank >= 1
    assert scene_prior("pchip", values, dropped) is None


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


def test_a_pixel_without_any_observed_band_has_no_std_or_interval():
    """Nothing fills a pixel with no observed band: its values, std and bounds stay NaN, whatever the check says."""
    da = anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 30), x=slice(0, 30)).load()
    mask = anyband_xr.masks.dropout(da, 0.3, seed=0)
    mask[:, 3, 4] = True
    out = da.where(~mask).anyband.repair(mask, return_std=True, interval=0.9)
    for name in ("reflectance", "std", "lower", "upper"):
        assert np.isnan(out[name].values[:, 3, 4]).all()
    others = np.ones(da.shape[1:], bool)
    others[3, 4] = False
    assert np.isfinite(out["std"].values[:, others]).all()


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


def _bits(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def test_a_complete_scene_comes_back_as_it_is_without_a_check():
    """Nothing missing: the default repair (auto) runs no check and returns the scene as it is, in memory and on
    dask (lazily); so do interval= and a named method's calibrated std (zero half-widths)."""
    from anyband_xr.selfcheck import STATUS

    da = anyband_xr.datasets.jasper_ridge().load()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        out = da.anyband.repair()
        ds = da.anyband.repair(interval=0.9, return_std=True)
        named = da.anyband.repair(method="pchip", interval=0.9)
        with count_dask_computes() as counter:
            lazy = da.chunk({"y": 50, "x": 40}).anyband.repair(interval=0.9, return_std=True)
        assert counter.count == 0 and lazy["reflectance"].chunks is not None
        computed = lazy.compute()
    np.testing.assert_array_equal(_bits(out.values), _bits(da.values))
    assert out.attrs["anyband_method"] == "auto:none" and out.attrs[STATUS].startswith("not run: nothing needed repair")
    assert not any(k.startswith("anyband_selfcheck_rmse") for k in out.attrs)
    assert anyband_xr.selfcheck.report(out.attrs).startswith("self-check: not run")
    for result in (ds, named, computed):
        np.testing.assert_array_equal(_bits(result["reflectance"].values), _bits(da.values))
        np.testing.assert_array_equal(_bits(result["lower"].values), _bits(da.values))
        np.testing.assert_array_equal(_bits(result["upper"].values), _bits(da.values))
    assert (ds["std"].values == 0).all() and (computed["std"].values == 0).all()


def test_pixels_without_any_observed_band_alone_need_no_repair():
    """Only all-band-empty border pixels missing (every method leaves them missing): no error, no check, the scene
    as it is (NaN there), in memory and on dask."""
    da = anyband_xr.datasets.jasper_ridge().load()
    border = da.copy()
    border[:, :3, :] = np.nan
    border[:, :, -2:] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        out = border.anyband.repair()
        with count_dask_computes() as counter:
            lazy = border.chunk({"y": 50, "x": 50}).anyband.repair()
        assert counter.count == 0
        computed = lazy.compute()
    assert out.attrs["anyband_method"] == "auto:none" and out.attrs["anyband_empty_pixels"] == 3 * 100 + 2 * 97
    np.testing.assert_array_equal(_bits(out.values), _bits(border.values))
    np.testing.assert_array_equal(_bits(computed.values), _bits(out.values))


def test_auto_checks_a_window_around_missing_values_outside_the_central_crop(monkeypatch):
    """The bundled scene with a patch of band loss in a corner, wholly outside the central crop: the self-check runs
    where the patch is (a 16 x 16 window here, to keep the test fast; the default window is 64 x 64) and the best
    method fills the patch; observed values bit for bit; on dask lazily, equal bit for bit. A named method's
    interval= checks the default window around the patch too."""
    da = anyband_xr.datasets.jasper_ridge().load()
    mask = xr.zeros_like(da, dtype=bool)
    mask[100:140, :24, :24] = True
    observed = da.where(~mask)
    pchip = observed.anyband.repair(mask, method="pchip", interval=0.9)  # the default window (64 x 64)
    assert pchip.attrs["anyband_selfcheck_window"] == "y 0:64, x 0:64"
    assert np.isfinite(pchip["upper"].values).all() and (pchip["upper"] > pchip["lower"]).values[mask.values].all()
    monkeypatch.setattr(anyband_xr.selfcheck, "MAX_PIXELS", 256)
    out = observed.anyband.repair(mask, **FAST)
    assert out.attrs["anyband_method"].startswith("auto:") and out.attrs["anyband_method"] != "auto:none"
    assert out.attrs["anyband_selfcheck_window"] == "y 8:24, x 8:24"  # inside the patch, nearest the centre
    assert "anyband_selfcheck_skipped_lowrank" in out.attrs  # its bands are missing all over the window
    keep = ~mask.values
    np.testing.assert_array_equal(_bits(out.values[keep]), _bits(da.values[keep]))
    assert np.isfinite(out.values).all()
    with count_dask_computes() as counter:
        lazy = observed.chunk({"y": 50, "x": 50}).anyband.repair(mask, **FAST)
    assert counter.count == 0 and lazy.attrs["anyband_method"] == "auto"
    if out.attrs["anyband_method"] == "auto:diffusion":  # dask blocks cut other windows than in-memory tiles
        diff = np.abs(lazy.values - out.values)
        assert np.quantile(diff, 0.995) < 2e-3 and diff.max() < 1e-2
    else:
        np.testing.assert_array_equal(_bits(lazy.values), _bits(out.values))


def test_the_check_window_of_a_dask_scene_is_assembled_from_its_blocks():
    """The dask check's crop: every block hands over its part of the window the delayed choice places (loop dims,
    several spectral and spatial chunks), nothing computed before asked."""
    import dask

    from anyband_xr.repair import _window_crop

    data = np.arange(3 * 6 * 20 * 30, dtype=np.float32).reshape(3, 6, 20, 30)
    array = dask.array.from_array(data, chunks=(1, 4, 7, 9))
    window = dask.delayed(lambda: ((2,), slice(5, 17), slice(8, 29)))()
    with count_dask_computes() as counter:
        crop = _window_crop(array, window)
    assert counter.count == 0
    np.testing.assert_array_equal(crop.compute(), data[2, :, 5:17, 8:29])
    assert _window_crop(array, dask.delayed(lambda: None)()).compute() is None


def test_a_time_series_is_checked_on_the_step_that_misses_values():
    """A time series whose first step is complete: the check runs on the step that misses values, in memory and on
    dask (lazily, the same result bit for bit)."""
    da = anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 24), x=slice(0, 24)).load()
    series = xr.concat([da, da], dim="time").assign_coords(time=[0, 1])
    mask = xr.zeros_like(series, dtype=bool)
    mask[1] = anyband_xr.masks.dropout(da, 0.4, seed=0)
    observed = series.where(~mask)
    out = observed.anyband.repair(mask)
    assert out.attrs["anyband_selfcheck_window"] == "time 1, y 0:24, x 0:24"
    assert out.attrs["anyband_method"] == "auto:lowrank"
    np.testing.assert_array_equal(_bits(out.values[~mask.values]), _bits(series.values[~mask.values]))
    np.testing.assert_array_equal(_bits(out.values[0]), _bits(da.values))
    with count_dask_computes() as counter:
        lazy = observed.chunk({"time": 1, "y": 12}).anyband.repair(mask)
    assert counter.count == 0
    np.testing.assert_array_equal(_bits(lazy.values), _bits(out.values))


def test_auto_falls_back_to_the_diffusion_model_with_a_warning_when_nothing_can_be_hidden():
    """Two observed bands: no observed value can be hidden like the mask, so auto repairs with the diffusion model
    and says so (a UserWarning naming method='auto' (the default) and how to choose a method; on dask when the graph
    computes); a named method's interval= gets inf half-widths, with a warning."""
    da = anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 12), x=slice(0, 12)).load()
    lost = np.ones(da.sizes["wavelength"], bool)
    lost[[50, 120]] = False
    mask = xr.DataArray(lost, dims="wavelength", coords={"wavelength": da.wavelength})
    observed = da.where(~mask)
    settings = {"steps": 2, "tile": 16, "overlap": 4, "seed": 0}
    with pytest.warns(UserWarning, match=r"method='auto' \(the default\) could not run.*method='diffusion'"):
        out = observed.anyband.repair(mask, **settings)
    assert out.attrs["anyband_method"] == "auto:diffusion"
    assert out.attrs["anyband_selfcheck_status"].startswith("not run: the mask leaves too few observed values")
    np.testing.assert_array_equal(_bits(out.values), _bits(observed.anyband.repair(mask, method="diffusion",
                                                                                    **settings).values))
    with count_dask_computes() as counter:
        lazy = observed.chunk({"y": 12}).anyband.repair(mask, **settings)
    assert counter.count == 0
    with pytest.warns(UserWarning, match=r"method='auto' \(the default\) could not run"):
        np.testing.assert_array_equal(_bits(lazy.values), _bits(out.values))
    with pytest.warns(UserWarning, match="are inf"):
        bounded = observed.anyband.repair(mask, method="pchip", interval=0.9)
    full = np.broadcast_to(lost[:, None, None], da.shape)
    assert np.isinf(bounded["upper"].values[full]).all() and (bounded["upper"].values[~full] == da.values[~full]).all()
