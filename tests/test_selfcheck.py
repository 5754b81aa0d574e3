"""Self-validation of a repair: hiding like the user's mask, choosing a method, conformal half-widths."""

import math
import re
import warnings

import numpy as np
import pytest

from anyband_xr import datasets, masks, selfcheck
from anyband_xr.engine import fill_block
from anyband_xr.settings import RepairSettings

CLASSICAL = RepairSettings.build(method="linear")


@pytest.fixture(scope="module")
def jasper():
    """The bundled real scene: values (198, 100, 100) float32 and wavelengths (nm)."""
    scene = datasets.jasper_ridge()
    return scene, scene.values, scene["wavelength"].values.astype(np.float64)


def _whole(mask, shape):
    return np.broadcast_to(mask.values[:, None, None], shape)


def _smooth_scene(pixels: int = 24, seed: int = 0):
    """Smooth spectra on a 2 nm grid (400-1000 nm): per-pixel mixtures of broad Gaussian features."""
    rng = np.random.default_rng(seed)
    nm = np.arange(400.0, 1001.0, 2.0)
    centres, widths = rng.uniform(400, 1000, 12), rng.uniform(40, 150, 12)
    features = np.exp(-0.5 * ((nm[:, None] - centres) / widths) ** 2)
    weights = rng.gamma(2.0, 0.05, size=(12, pixels * pixels))
    return (features @ weights).reshape(nm.size, pixels, pixels).astype(np.float32), nm


def _coverage(values, missing, nm, result, method):
    """Share of the truly missing values of the checked crop inside ``method``'s 90% conformal interval."""
    crop = (slice(None), *selfcheck.central_crop(values.shape[1:], result.pixels))
    truth, miss = values[crop], np.broadcast_to(missing, values.shape)[crop]
    filled = fill_block(np.where(miss, np.nan, truth), miss, nm, RepairSettings.build(method=method))[0]
    scale = np.broadcast_to(result.band_scale[:, None, None], miss.shape)[miss]
    halfwidth = result.halfwidth(method, selfcheck.distance_to_observed(miss, nm)[miss],
                                 selfcheck.gap_width(miss, nm)[miss], scale)
    return float(np.mean(np.abs(filled[miss] - truth[miss]) <= halfwidth))


def test_whole_band_loss_is_hidden_as_whole_bands_of_the_same_widths(jasper):
    scene, values, _ = jasper
    lost = masks.band_loss(scene, 0.3, seed=0).values
    lost[[0, -1]] = False  # no extrapolation: every run lies between observed bands
    missing = np.broadcast_to(lost[:, None, None], values.shape)
    hidden = selfcheck.hide_like(missing, seed=1)
    bands = hidden.any(axis=(1, 2))
    assert hidden[bands].all() and not (hidden & missing).any()  # whole bands, observed ones only
    widths = lambda flags: sorted(b - a for a, b in selfcheck._runs(flags))  # noqa: E731
    merged = selfcheck._runs(bands | missing[:, 0, 0])
    widened = [(a, b) for a, b in merged if bands[a:b].any() and missing[a:b, 0, 0].any()]
    assert all(bands[a:b].sum() == 1 and bands[[a, b - 1]].any() for a, b in widened)  # by one band at an end
    moved = bands.copy()
    moved[[a if bands[a] else b - 1 for a, b in widened]] = False
    assert set(widths(moved)) <= set(widths(lost)) and moved.sum() >= 0.3 * (~lost).sum()
    observed = np.flatnonzero(~missing[:, 0, 0])
    assert not bands[observed[0]] and not bands[observed[-1]]  # the mask does not extrapolate here


def test_an_extrapolating_edge_run_is_hidden_at_the_edge_and_pixels_keep_observations():
    missing = np.zeros((30, 4, 4), bool)
    missing[:3] = True
    missing[12:14] = True
    hidden = selfcheck.hide_like(missing, seed=0)
    assert np.flatnonzero(hidden[:, 0, 0])[:3].tolist() == [3, 4, 5]
    dense = np.random.default_rng(0).random((6, 50, 50)) < 0.9  # most values missing
    hidden = selfcheck.hide_like(dense, seed=0)
    assert not (dense | hidden).all(axis=0)[~dense.all(axis=0)].any()


def test_dropout_is_hidden_at_the_same_rate_deterministically(jasper):
    scene, values, _ = jasper
    missing = masks.dropout(scene, 0.3, seed=0).values
    hidden = selfcheck.hide_like(missing, seed=4)
    assert hidden.sum() / (~missing).sum() == pytest.approx(0.3, abs=0.01)
    assert not (hidden & missing).any() and not hidden.all(axis=(1, 2)).any()
    assert np.array_equal(hidden, selfcheck.hide_like(missing, seed=4))
    assert not np.array_equal(hidden, selfcheck.hide_like(missing, seed=5))


def test_distance_to_the_nearest_observed_band_in_nm():
    missing = np.array([True, False, True, True, True, False, True])[:, None]
    nm = np.array([400.0, 410.0, 420.0, 440.0, 450.0, 460.0, 480.0])
    assert selfcheck.distance_to_observed(missing, nm)[:, 0].tolist() == [10, 0, 10, 20, 10, 0, 20]
    assert np.isinf(selfcheck.distance_to_observed(np.ones((3, 1), bool), nm[:3])).all()


def test_picks_the_in_scene_low_rank_prior_on_dropout_of_a_correlated_scene(jasper):
    scene, values, nm = jasper
    missing = masks.dropout(scene, 0.5, seed=0).values
    result = selfcheck.check(values, missing, nm, CLASSICAL, methods=("linear", "pchip", "lowrank", "gaussian"),
                             max_pixels=256)
    assert result.best == "lowrank" and result.pixels == 256
    assert result.rmse["lowrank"] < 0.6 * min(result.rmse["pchip"], result.rmse["linear"])
    attrs = result.to_attrs()
    assert attrs["anyband_selfcheck_method"] == "lowrank"
    plain = lambda v: isinstance(v, (str, int, float)) and not isinstance(v, bool)  # noqa: E731
    assert all(plain(v) or (isinstance(v, list) and all(map(math.isfinite, v))) for v in attrs.values())
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", key) for key in attrs)  # CF-style attribute names
    assert [row["method"] for row in result.table()][0] == "lowrank"
    nm, rmse = result.band_rmse("lowrank")
    assert attrs["anyband_selfcheck_band_nm"] == nm.tolist() and nm.size == values.shape[0]  # dropout: every band
    assert np.sqrt(np.mean(rmse**2)) == pytest.approx(result.rmse["lowrank"], rel=0.2)
    lines = selfcheck.report(attrs).splitlines()
    assert "chosen: lowrank" in lines[0] and lines[2].startswith("lowrank") and len(lines) == 2 + 4


def test_picks_interpolation_on_a_finely_sampled_smooth_spectrum():
    values, nm = _smooth_scene()
    lost = np.zeros(nm.size, bool)
    lost[[40, 41, 90, 150, 151, 152, 220]] = True
    missing = np.broadcast_to(lost[:, None, None], values.shape)
    result = selfcheck.check(values, missing, nm, CLASSICAL, methods=("linear", "pchip", "lowrank", "gaussian"))
    assert result.best in ("pchip", "linear")
    assert "lowrank" in result.skipped and "lowrank" not in result.rmse  # bands missing everywhere are unseen
    assert "anyband_selfcheck_skipped_lowrank" in result.to_attrs()


@pytest.mark.parametrize("protocol", ["dropout", "band loss"])
def test_conformal_halfwidths_cover_about_90_percent_of_the_truly_missing_values(jasper, protocol):
    scene, values, nm = jasper
    if protocol == "dropout":
        missing = masks.dropout(scene, 0.5, seed=2).values
    else:
        missing = _whole(masks.band_loss(scene, 0.3, seed=2), values.shape)
    result = selfcheck.check(values, missing, nm, CLASSICAL, methods=("pchip",), max_pixels=1024)
    assert 0.80 <= _coverage(values, missing, nm, result, "pchip") <= 0.98


def test_halfwidth_is_the_scaled_split_conformal_quantile_and_pools_small_classes():
    residuals = np.concatenate([np.arange(1.0, 101.0), np.arange(1.0, 101.0) * 10])  # |r| = 1..100, then 10..1000
    gaps = np.repeat([20.0, np.inf], 100)  # between observed bands, then extrapolated
    result = selfcheck.SelfCheck({"m": 1.0}, {"m": residuals}, np.full(200, 10.0), gaps, np.ones(200), np.ones(3),
                                 np.full(200, 500.0), 1.0)
    assert result.halfwidth("m", 10.0, 20.0, 1.0, level=0.9) == 91.0  # ceil(101 * 0.9) = 91st smallest
    assert result.halfwidth("m", 10.0, np.inf, 2.0, level=0.9) == 1820.0  # its own class, times the scale
    assert result.halfwidth("m", [200.0], 20.0, 1.0)[0] == 91.0  # an empty class borrows its gap class
    assert result.halfwidth("m", 10.0, 100.0, 1.0) == 810.0  # an empty gap class borrows all 200 (181st)
    assert math.isinf(result.halfwidth("m", 10.0, 20.0, 1.0, level=0.999))
    with pytest.raises(ValueError, match="not scored"):
        result.halfwidth("pchip", 10.0, 20.0, 1.0)


def _scored(residuals: dict[str, np.ndarray], band_nm: np.ndarray, whole_bands: bool) -> selfcheck.SelfCheck:
    ones = np.ones(band_nm.size)
    rmse = {m: float(np.sqrt(np.mean(r**2))) for m, r in residuals.items()}
    return selfcheck.SelfCheck(rmse, residuals, ones, ones, ones, np.ones(5), band_nm, 1.0, whole_bands=whole_bands)


def test_under_whole_band_loss_a_win_from_few_hidden_bands_falls_back_to_the_model():
    """The lowest RMSE wins outright under dropout; under whole-band loss only when it beats the model in most hidden
    bands (CONSISTENT_SHARE): here "gaussian" is far better in one band of five and worse in the others."""
    band_nm = np.repeat([500.0, 600.0, 700.0, 800.0, 900.0], 10)
    lucky = np.where(band_nm == 700.0, 0.0, 1.2)  # |residual| per hidden value
    steady = np.where(band_nm == 700.0, 3.0, 1.0)
    residuals = {"gaussian": lucky, "pchip": steady, "diffusion": steady * 1.1}
    assert _scored(residuals, band_nm, whole_bands=False).best == "gaussian"
    fell_back = _scored(residuals, band_nm, whole_bands=True)
    assert fell_back.best == selfcheck.FALLBACK == "diffusion" and fell_back.lowest == ("gaussian", 0.2)
    assert "chosen: diffusion (gaussian has the lowest RMSE but beats diffusion in only 20% of the hidden bands" in (
        selfcheck.report(fell_back.to_attrs()))
    consistent = {**residuals, "gaussian": np.full(band_nm.size, 0.9)}  # better than the model in every band
    assert _scored(consistent, band_nm, whole_bands=True).best == "gaussian"
    near_tie = {"pchip": steady, "linear": steady * 1.001, "diffusion": steady * 3}  # the model far worse
    assert _scored(near_tie, band_nm, whole_bands=True).best == "pchip"
    unscored = {m: r for m, r in residuals.items() if m != selfcheck.FALLBACK}
    assert _scored(unscored, band_nm, whole_bands=True).best == "gaussian"


def test_gap_width_and_band_scale():
    missing = np.array([True, False, True, True, False, False, True])[:, None]
    nm = np.array([400.0, 410.0, 420.0, 440.0, 450.0, 460.0, 480.0])
    assert selfcheck.gap_width(missing, nm)[:, 0].tolist() == [np.inf, 0, 40, 40, 0, 0, np.inf]
    rough = np.tile(np.array([0.0, 1.0] * 5)[:, None], (1, 4))  # a zig-zag: every band departs by 1 from its line
    scale = selfcheck.band_scale(rough, np.zeros(rough.shape, bool), np.arange(10.0) * 10)
    assert np.allclose(scale, 1.0)


def test_deterministic_for_a_seed_and_clear_errors(jasper):
    scene, values, nm = jasper
    missing = _whole(masks.band_loss(scene, 0.2, seed=1), values.shape)
    first = selfcheck.check(values, missing, nm, CLASSICAL, methods=("linear", "pchip"), seed=3, max_pixels=256)
    again = selfcheck.check(values, missing, nm, CLASSICAL, methods=("linear", "pchip"), seed=3, max_pixels=256)
    assert first.rmse == again.rmse and np.array_equal(first.residuals["pchip"], again.residuals["pchip"])
    with pytest.raises(ValueError, match="methods must be"):
        selfcheck.check(values, missing, nm, CLASSICAL, methods=("cubic",))
    with pytest.raises(ValueError, match="nothing to hide"):
        selfcheck.check(values, np.zeros(values.shape, bool), nm, CLASSICAL, methods=("linear",))


def test_the_diffusion_model_is_a_candidate_on_a_small_crop(jasper):
    scene, values, nm = jasper
    missing = _whole(masks.band_loss(scene, 0.3, seed=0), values.shape)
    settings = RepairSettings.build(steps=2, tile=16, overlap=4, device="cpu")
    result = selfcheck.check(values, missing, nm, settings, methods=("diffusion", "pchip"), max_pixels=256)
    assert set(result.rmse) == {"diffusion", "pchip"} and np.isfinite(result.residuals["diffusion"]).all()



def test_correction_gain_is_the_least_squares_share_of_the_models_correction():
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, 0.01, 500)  # residuals (prediction - truth) of the base
    assert selfcheck.correction_gain(-base, base) == pytest.approx(0.5)  # overshoots twice: half of it is right
    assert selfcheck.correction_gain(0.25 * base, base) == pytest.approx(1.0)  # a too-short step: all of it (<= 1)
    assert selfcheck.correction_gain(3.0 * base, base) == 0.0  # away from the truth: none of it
    assert selfcheck.correction_gain(base, base) == 1.0  # no correction at all


def test_a_correction_that_does_not_carry_between_halves_gets_no_share():
    rng = np.random.default_rng(1)
    base = rng.normal(0.0, 0.01, 2000)
    folds = np.arange(2000) % 2
    split = np.where(folds == 0, 0.0, 1.5 * base)  # exact on one half, away from the truth on the other
    residuals, gain = selfcheck._gained(split, base, folds)
    assert selfcheck.correction_gain(split, base) > 0 and gain == 0.0
    np.testing.assert_array_equal(residuals, base)  # no share: what the repair returns is the completion
    useful = 0.3 * base  # moves 70% of the way to the truth everywhere
    residuals, gain = selfcheck._gained(useful, base, folds)
    assert gain == 1.0 and np.allclose(residuals, useful)
    assert selfcheck._gained(0.995 * base, base, folds)[1] == 0.0  # a 0.5% gain: within the noise, not kept


def test_auto_takes_the_completion_unless_the_model_correcting_it_wins_by_the_margin():
    ones = np.ones(3)
    result = lambda d, l: selfcheck.SelfCheck({"diffusion": d, "lowrank": l, "pchip": 2.0},  # noqa: E731
                                              {m: ones for m in ("diffusion", "lowrank", "pchip")}, ones, ones, ones,
                                              ones, ones, 1.0, gain=0.3)
    assert result(0.995, 1.0).best == "lowrank" and result(0.98, 1.0).best == "diffusion"
    attrs = {**result(0.995, 1.0).to_attrs(), "anyband_selfcheck_window": "y 0:3, x 0:1"}
    assert "not worth running the model" in selfcheck.report(attrs).splitlines()[0]
    assert "anyband_selfcheck_correction_gain" not in selfcheck.SelfCheck({"pchip": 1.0}, {"pchip": ones}, ones, ones,
                                                                          ones, ones, ones, 1.0).to_attrs()


def test_the_model_on_dropout_is_scored_with_the_share_of_its_correction_the_crop_backs(jasper):
    scene, values, nm = jasper
    missing = masks.dropout(scene, 0.5, seed=0).values
    settings = RepairSettings.build(steps=1, tile=16, overlap=4, device="cpu")
    result = selfcheck.check(values, missing, nm, settings, methods=("diffusion", "lowrank"), max_pixels=256)
    assert 0.0 <= result.gain <= 1.0 and result.to_attrs()["anyband_selfcheck_correction_gain"] == result.gain
    assert selfcheck.measure_correction_gain(values[:, 42:58, 42:58], np.broadcast_to(missing, values.shape)[:, 42:58, 42:58], nm,
                               settings) == result.gain  # the same crop (the central 16 x 16), hidden alike
    lost = _whole(masks.band_loss(scene, 0.3, seed=0), values.shape)  # whole-band loss: the model corrects PCHIP
    assert selfcheck.measure_correction_gain(values[:, :16, :16], lost[:, :16, :16], nm, settings) == 1.0


def test_unprompted_it_picks_lowrank_on_correlated_dropout_and_pchip_on_a_fine_smooth_spectrum(jasper):
    """The issue's test: every candidate (the model too), nothing said about the case."""
    scene, values, nm = jasper
    settings = RepairSettings.build(tile=32, overlap=8, device="cpu")
    dropout = selfcheck.check(values, masks.dropout(scene, 0.5, seed=0).values, nm, settings, max_pixels=256)
    assert set(dropout.rmse) == set(selfcheck.CANDIDATES) and dropout.best == "lowrank" and not dropout.whole_bands
    smooth, fine_nm = _smooth_scene()
    lost = np.zeros(fine_nm.size, bool)
    lost[[40, 41, 90, 150, 151, 152, 220]] = True
    interpolated = selfcheck.check(smooth, np.broadcast_to(lost[:, None, None], smooth.shape), fine_nm, settings)
    assert "diffusion" in interpolated.rmse and interpolated.best == "pchip" and interpolated.whole_bands


def test_the_window_is_the_central_crop_for_a_spread_mask_else_where_the_mask_misses_values(jasper):
    """choose_window: the central crop when the mask misses values all over the scene (the check as before); the
    window holding the most around a corner patch, an edge stripe or in a later time step when the mask misses values
    there; None when nothing needs repair (nothing missing, or only pixels without any observed band)."""
    scene, values, _ = jasper
    centre = selfcheck.central_crop(values.shape[1:], selfcheck.MAX_PIXELS)
    for missing in (_whole(masks.band_loss(scene, 0.3, seed=0), values.shape), masks.dropout(scene, 0.3, seed=0).values):
        window = selfcheck.choose_window(selfcheck.repairable_counts(missing))
        assert window == ((), *centre)
    corner = np.zeros(values.shape, bool)
    corner[60:120, :12, :12] = True  # wholly outside the central crop (18:82)
    index, ys, xs = selfcheck.choose_window(selfcheck.repairable_counts(corner))
    assert index == () and (ys, xs) == (slice(0, 64), slice(0, 64))  # the only window holding the whole patch
    stripe = np.zeros(values.shape, bool)
    stripe[::3, :, 97:] = True  # an edge stripe
    assert selfcheck.choose_window(selfcheck.repairable_counts(stripe))[1:] == (slice(18, 82), slice(36, 100))
    assert selfcheck.choose_window(selfcheck.repairable_counts(np.zeros(values.shape, bool))) is None
    border = np.zeros(values.shape, bool)
    border[:, :2], border[:, :, -1] = True, True  # pixels without any observed band: left missing by every method
    assert selfcheck.choose_window(selfcheck.repairable_counts(border)) is None
    series = np.stack([np.zeros(values.shape, bool), corner, corner])  # (time, B, H, W): the first step is clean
    counts = selfcheck.repairable_counts(series)
    assert counts.shape == (3, 100, 100) and selfcheck.choose_window(counts) == ((1,), slice(0, 64), slice(0, 64))
    assert selfcheck.describe_window(((1,), ys, xs), ("time", "y", "x")) == "time 1, y 0:64, x 0:64"
    patch = np.zeros(values.shape, bool)
    patch[100:140, :24, :24] = True  # larger than a 16 x 16 window: the one nearest the centre of those inside
    assert selfcheck.choose_window(selfcheck.repairable_counts(patch), 256)[1:] == (slice(8, 24), slice(8, 24))


def test_check_runs_around_missing_values_outside_the_centre_and_says_how_to_skip_it(jasper):
    scene, values, nm = jasper
    corner = np.zeros(values.shape, bool)
    corner[60:120, :12, :12] = True
    result = selfcheck.check(values, corner, nm, CLASSICAL, methods=("linear", "pchip"), max_pixels=256)
    assert result.where == "y 0:16, x 0:16" and result.pixels == 256 and result.rmse["pchip"] > 0
    assert result.to_attrs()["anyband_selfcheck_window"] == "y 0:16, x 0:16"
    assert "(y 0:16, x 0:16); chosen:" in selfcheck.report(result.to_attrs()).splitlines()[0]
    with pytest.raises(selfcheck.NothingToHide, match=r"nothing to hide.*method='auto' \(the default\).*method="):
        selfcheck.check(values, np.zeros(values.shape, bool), nm, CLASSICAL, methods=("linear",))


def test_check_or_skip_says_why_no_check_ran_and_warns_only_when_values_are_repaired_unchecked(jasper):
    scene, values, nm = jasper
    nothing = selfcheck.check_or_skip(None, None, None, nm, CLASSICAL, methods=("pchip",))
    assert isinstance(nothing, selfcheck.Unchecked) and not nothing.repairable and nothing.best == selfcheck.NOTHING
    assert nothing.to_attrs()[selfcheck.STATUS].startswith("not run: nothing needed repair")
    assert selfcheck.report(nothing.to_attrs()).startswith("self-check: not run: nothing needed repair")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nothing.warn("auto")
    lost = np.ones(values.shape[0], bool)
    lost[[50, 120]] = False  # two observed bands: no run of missing bands fits anywhere else
    crop = (slice(None), slice(0, 8), slice(0, 8))
    missing = np.broadcast_to(lost[:, None, None], values.shape)[crop]
    window = ((), slice(0, 8), slice(0, 8))
    unchecked = selfcheck.check_or_skip(values[crop], missing, window, nm, CLASSICAL, methods=("pchip",))
    assert isinstance(unchecked, selfcheck.Unchecked) and unchecked.repairable
    assert unchecked.best == selfcheck.FALLBACK == "diffusion" and "(y 0:8, x 0:8)" in unchecked.reason
    with pytest.warns(UserWarning, match=r"method='auto' \(the default\) could not run.*method='diffusion'"):
        unchecked.warn("auto")
    with pytest.warns(UserWarning, match=r"method='pchip' are inf"):
        unchecked.warn("pchip")
