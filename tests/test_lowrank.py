"""The in-scene low-rank Gaussian (probabilistic PCA by EM on observed entries)."""

import dask.array as dsa
import numpy as np
import pytest

from anyband_xr import baselines, datasets, lowrank, masks
from tests.helpers import count_dask_computes


def _planted(rank: int = 4, bands: int = 40, pixels: int = 1500, noise: float = 0.05, seed: int = 0):
    rng = np.random.default_rng(seed)
    clean = 1.0 + rng.normal(size=(bands, rank)) @ rng.normal(size=(rank, pixels))
    return clean + noise * rng.normal(size=clean.shape), rng.random(clean.shape) < 0.3


@pytest.fixture(scope="module")
def scene_crop():
    """40 x 40 pixels of the bundled real scene (198 bands), float32, and a 50% per-value dropout mask."""
    scene = datasets.jasper_ridge().isel(y=slice(0, 40), x=slice(0, 40))
    return scene, masks.dropout(scene, 0.5, seed=3).values


def test_planted_rank_is_chosen_and_missing_values_recovered_to_the_noise_level():
    values, missing = _planted(rank=4, noise=0.05)
    model = lowrank.fit(values, missing)
    assert model.rank == 4 and set(model.rank_scores) >= {3, 4, 6}
    assert model.rank_scores[4] < 0.2 * model.rank_scores[3]  # the held-out error drops to the noise at rank 4
    filled = model.complete(values, missing)
    rmse = np.sqrt(np.mean((filled[missing] - values[missing]) ** 2))
    assert rmse < 1.2 * 0.05


def test_beats_pchip_on_dropout_of_the_real_scene_and_keeps_observed_values(scene_crop):
    scene, missing = scene_crop
    values = scene.values  # float32 (198, 40, 40)
    model = lowrank.fit(np.where(missing, np.nan, values), missing)  # NaN at the missing entries
    filled = model.complete(np.where(missing, np.nan, values), missing)
    assert filled.dtype == values.dtype and np.array_equal(filled[~missing], values[~missing])
    flat, flat_missing = values.reshape(198, -1), missing.reshape(198, -1)
    pchip = baselines.interpolate(flat, scene["wavelength"].values, flat_missing, "pchip").reshape(values.shape)
    error = lambda pred: np.sqrt(np.mean((pred[missing] - values[missing]) ** 2))  # noqa: E731
    assert error(filled) < 0.75 * error(pchip)


def test_bands_missing_everywhere_raise_a_clear_error():
    values, missing = _planted()
    missing[[7, 12]] = True
    missing[12, :3] = False  # observed in 3 pixels: still too few to learn
    assert list(lowrank.unseen_bands(missing)) == [7, 12]
    with pytest.raises(lowrank.UnseenBandsError, match=r"cannot see band\(s\) 7 \(0 px\), 12 \(3 px\)") as err:
        lowrank.fit(values, missing)
    assert list(err.value.bands) == [7, 12] and "method='pchip'" in str(err.value)


def test_deterministic_for_a_seed_and_the_pixel_sample_follows_it():
    values, missing = _planted(pixels=2000)
    first, again = (lowrank.fit(values, missing, seed=5, max_pixels=800) for _ in range(2))
    other = lowrank.fit(values, missing, seed=6, max_pixels=800)
    assert np.array_equal(first.components, again.components) and first.rank_scores == again.rank_scores
    assert not np.array_equal(first.components, other.components)
    assert np.array_equal(first.complete(values, missing), again.complete(values, missing))


def test_a_given_rank_is_used_and_a_bad_one_refused():
    values, missing = _planted()
    assert lowrank.fit(values, missing, rank=2).rank == 2
    with pytest.raises(ValueError, match="rank must be between 1 and the number of bands - 1"):
        lowrank.fit(values, missing, rank=40)


def test_dask_scene_is_sampled_per_block_once_and_completed_lazily(scene_crop):
    scene, missing = scene_crop
    lazy = dsa.from_array(scene.values, chunks=(198, 20, 20))
    lazy_missing = dsa.from_array(missing, chunks=(198, 20, 20))
    with count_dask_computes() as computes:
        model = lowrank.fit(lazy, lazy_missing, rank=6, max_pixels=500)
        filled = model.complete(lazy, lazy_missing)
    assert computes.count == 1 and isinstance(filled, dsa.Array)  # the pixel sample only
    eager = lowrank.fit(scene.values, missing, rank=6, max_pixels=500)
    np.testing.assert_array_equal(model.components, eager.components)
    np.testing.assert_array_equal(filled.compute(), eager.complete(scene.values, missing))


def test_the_rank_is_chosen_on_a_pixel_subsample_unless_it_would_leave_a_band_unseen(monkeypatch):
    """Above RANK_PIXELS the rank search runs on a seeded subsample, then only the chosen rank is fitted on every
    pixel; a subsample that would leave a rarely observed band too few pixels falls back to all of them."""
    values, missing = _planted(rank=4, pixels=2000)
    monkeypatch.setattr(lowrank, "RANK_PIXELS", 500)
    x, miss = lowrank.sample_pixels(values, missing)
    sub_x, _ = lowrank._rank_sample(x, miss, seed=0)
    assert sub_x.shape == (40, 500)
    model = lowrank.fit(values, missing)
    assert model.rank == 4 and set(model.rank_scores) >= {3, 4, 6}
    rare = missing.copy()
    rare[5] = True
    rare[5, :10] = False  # band 5 observed in 10 pixels: enough for the fit, not for a 500-pixel subsample
    x, miss = lowrank.sample_pixels(values, rare)
    assert lowrank._rank_sample(x, miss, seed=0)[0] is x
    assert lowrank.fit(values, rare).rank == 4


def test_fit_or_none_gives_none_where_the_scene_cannot_teach_its_bands():
    rng = np.random.default_rng(0)
    x = rng.random((6, 20, 20))
    dropped = rng.random(x.shape) < 0.3
    assert lowrank.fit_or_none(x, dropped).rank >= 1
    whole = np.zeros(x.shape, bool)
    whole[2] = True
    assert lowrank.fit_or_none(x, whole) is None
    assert lowrank.fit_or_none(x[:1], dropped[:1]) is None
    with pytest.raises(ValueError, match="at least 2 bands"):
        lowrank.fit(x[:1], dropped[:1])
