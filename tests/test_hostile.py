"""Hostile but realistic input (issue 25): every case gives the correct result or one clear error.

Each section covers one area; cases are small crops of the bundled real scene so the file runs in seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import anyband_xr


@pytest.fixture(scope="module")
def scene() -> xr.DataArray:
    """A 12x12 crop of the bundled real AVIRIS scene (wavelength, y, x), float32 reflectance."""
    return anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 12), x=slice(0, 12)).load()


# --- spectral contract, metrics, simulate, weights ---


def _relabelled(scene: xr.DataArray, values: np.ndarray, units: str | None) -> xr.DataArray:
    """``scene`` with its wavelength coordinate replaced by ``values`` (attrs ``units`` when given)."""
    return scene.assign_coords(wavelength=("wavelength", np.asarray(values, float), {"units": units} if units else {}))


@pytest.mark.parametrize(
    "values, units, message",
    [
        (lambda nm: nm / 1000.0, "nm", "these are micrometres"),
        (lambda nm: nm, "um", "look like nanometres"),
        (lambda nm: 1e7 / nm, None, "wavenumbers"),  # 25,040-4,070 cm⁻¹, descending
        (lambda nm: 1e7 / nm, "nm", "wavenumbers"),
        (lambda nm: 1e7 / nm[nm > 1000], None, "wavenumbers"),  # SWIR only: 10,000-4,070, all below 16,000
        (lambda nm: 1e7 / nm, "cm-1", "1e7 / wavenumber"),
        (lambda nm: np.arange(nm.size), None, "band numbers"),
        (lambda nm: np.arange(1, nm.size + 1), "nm", "band numbers"),
        (lambda nm: np.arange(1, nm.size + 1)[::-1], None, "band numbers"),
    ],
    ids=["um-as-nm", "nm-as-um", "wavenumbers", "wavenumbers-as-nm", "swir-wavenumbers", "cm-1", "indices-0",
         "indices-1", "indices-reversed"],
)
def test_wavelengths_that_cannot_be_nm_raise(scene, values, units, message):
    nm = scene.wavelength.values
    keep = slice(None) if values(nm).size == nm.size else nm > 1000
    da = _relabelled(scene.isel(wavelength=keep), values(nm), units)
    with pytest.raises(anyband_xr.SpectralAxisError, match=message):
        anyband_xr.standardize(da)
    with pytest.raises(anyband_xr.SpectralAxisError, match=message):
        da.anyband.simulate("sentinel-2a")


def test_real_grids_with_thermal_and_1nm_steps_still_pass(scene):
    landsat = [443.0, 482.0, 561.0, 655.0, 865.0, 1609.0, 2201.0, 10900.0, 12000.0]
    da = xr.DataArray(np.ones((9, 2, 2), "float32"), dims=("band", "y", "x"))
    np.testing.assert_array_equal(anyband_xr.wavelengths(anyband_xr.assign_wavelengths(da, landsat)), landsat)
    fine = xr.DataArray(np.ones((2151, 1, 1)), dims=("wavelength", "y", "x"))
    assert anyband_xr.standardize(fine.assign_coords(wavelength=np.arange(350.0, 2501.0))).sizes["wavelength"] == 2151
    with pytest.warns(anyband_xr.AnyBandWarning, match="B10"):  # the 1375 nm cirrus band falls in a water gap
        assert anyband_xr.wavelengths(scene.anyband.simulate("sentinel-2a")).min() > 400.0


def test_model_range_warning_names_what_is_only_extrapolated(scene):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        anyband_xr.spectral.check_model_range(scene.wavelength.values)  # 399.4-2457 nm: inside
    with pytest.warns(anyband_xr.AnyBandWarning, match=r"21 of 21 wavelengths \(3000-5000 nm\).*only\s+extrapolated"):
        anyband_xr.spectral.check_model_range(np.linspace(3000.0, 5000.0, 21))  # generate(target=3000-5000 nm)
    with pytest.warns(anyband_xr.AnyBandWarning, match=r"3 of 227 wavelengths \(365-385 nm\)"):
        anyband_xr.spectral.check_model_range(np.concatenate([[365.0, 375.0, 385.0], np.linspace(400, 2500, 224)]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_predictions_are_counted_and_never_score_perfectly(scene, bad):
    mask = anyband_xr.masks.band_loss(scene, 0.2, seed=0).broadcast_like(scene)
    pred = scene.copy()
    pred[{"wavelength": int(np.flatnonzero(mask.any(("y", "x")))[0]), "y": 3, "x": 4}] = bad
    with pytest.warns(anyband_xr.AnyBandWarning, match="1 predicted values are NaN or infinite"):
        out = anyband_xr.metrics.scores(pred, scene, mask)
    assert out["n_nonfinite"] == out["n_nonfinite_missing"] == 1
    assert np.isnan(out["psnr_missing"]) and np.isnan(out["rmse_missing"]) and np.isnan(out["sam"])
    assert np.isnan(anyband_xr.metrics.rmse(pred, scene, mask)) and np.isnan(anyband_xr.metrics.ssim(pred, scene))


def test_values_without_a_reference_are_not_counted(scene):
    truth = scene.where(scene.wavelength > 500)  # no reference below 500 nm
    out = anyband_xr.metrics.scores(scene.where(scene.wavelength > 500), truth)
    assert out["n_nonfinite"] == 0 and out["rmse"] == 0.0 and out["psnr"] == float("inf")


@pytest.mark.parametrize("sensor", [None, 42, ["sentinel-2a"], anyband_xr.srf.get("sentinel-2a").values])
def test_simulate_names_the_accepted_sensors(scene, sensor):
    with pytest.raises(TypeError, match="sensor must be a sensor name .* or an SRF DataArray"):
        scene.anyband.simulate(sensor)


def test_simulate_of_something_that_is_not_a_dataarray():
    with pytest.raises(TypeError, match="expected an xarray.DataArray, got NoneType. Wrap arrays"):
        anyband_xr.simulate.simulate(None, "sentinel-2a")


@pytest.mark.parametrize(
    "broken, error, message",
    [
        (lambda s: "", anyband_xr.srf.UnknownSensorError, "available: sentinel-2a"),
        (lambda s: s.drop_vars("centroid"), ValueError, "lacks the per-band coordinate"),
        (lambda s: s.assign_coords(wavelength=s.wavelength / 1000), ValueError, "must ascend in nm"),
        (lambda s: s * 0, ValueError, "no positive responses"),
        (lambda s: s.transpose(), ValueError, "dims"),
    ],
    ids=["empty-name", "no-centroid", "micrometres", "all-zero", "transposed"],
)
def test_simulate_refuses_broken_srfs(scene, broken, error, message):
    with pytest.raises(error, match=message):
        scene.anyband.simulate(broken(anyband_xr.srf.get("sentinel-2a")))


def _weights_copy(tmp_path, tensors: bool = True):
    """Stem of a copy of the shipped weights' JSON (and tensors) under ``tmp_path``."""
    import shutil

    from anyband_xr.model import weights

    stem = tmp_path / "w"
    shutil.copy(f"{weights.default_weights()}.json", f"{stem}.json")
    if tensors:
        shutil.copy(f"{weights.default_weights()}.safetensors", f"{stem}.safetensors")
    return stem


@pytest.mark.parametrize(
    "text, message",
    [
        (lambda t: t[: len(t) // 2], "is not valid JSON .*corrupt or truncated"),
        (lambda t: "", "is not valid JSON"),
        (lambda t: "[1, 2]", "has no 'model' object"),
        (lambda t: '{"training": {}}', "has no 'model' object"),
    ],
    ids=["truncated", "empty", "list", "no-model"],
)
def test_corrupt_weights_json_names_the_file(tmp_path, text, message):
    from anyband_xr.model import weights

    stem = _weights_copy(tmp_path, tensors=False)
    json_file = stem.with_suffix(".json")
    json_file.write_text(text(json_file.read_text()))
    with pytest.raises(ValueError, match=message) as raised:
        weights.sampling_steps(stem)
    assert str(json_file) in str(raised.value)


def test_bad_validated_steps_in_weights_json_are_refused(tmp_path):
    from anyband_xr.model import weights

    stem = _weights_copy(tmp_path, tensors=False)
    stem.with_suffix(".json").write_text('{"model": {}, "sampling": {"steps": "ten"}}')
    with pytest.raises(ValueError, match="'steps' is a positive integer"):
        weights.sampling_steps(stem)


def test_missing_or_truncated_safetensors_names_the_file(tmp_path):
    from anyband_xr.model import weights

    stem = _weights_copy(tmp_path, tensors=False)
    with pytest.raises(FileNotFoundError, match=r"w\.safetensors \(its metadata w\.json is there, the tensors"):
        weights.load_model(stem)
    with pytest.raises(FileNotFoundError, match=r"w\.safetensors"):
        weights.weights_hash(stem)
    stem.with_suffix(".safetensors").write_bytes(b"\x10\x00\x00\x00")
    with pytest.raises(ValueError, match=r"w\.safetensors cannot be read .*corrupt or truncated"):
        weights.load_model(stem)
    stem.with_suffix(".json").unlink()
    with pytest.raises(FileNotFoundError, match=r"no weights metadata at .*w\.json"):
        weights.load_model(stem)


# --- masks aligned by label, input screening, settings, chunking (repair front door) ---
import warnings  # noqa: E402

from anyband_xr.spectral import AnyBandWarning  # noqa: E402


def _assert_repaired(out: xr.DataArray, truth: xr.DataArray, missing: xr.DataArray) -> None:
    """Observed values bit for bit and every missing value filled, compared by wavelength label."""
    out, truth, missing = (a.sortby("wavelength").transpose("wavelength", "y", "x") for a in (out, truth, missing))
    observed = ~missing.values
    np.testing.assert_array_equal(out.values[observed].view(np.uint32), truth.values[observed].view(np.uint32))
    assert np.isfinite(out.values[missing.values]).all()


def _shuffled(scene: xr.DataArray, seed: int) -> xr.DataArray:
    return scene.isel(wavelength=np.random.default_rng(seed).permutation(scene.sizes["wavelength"]))


def _aviris_like(scene: xr.DataArray) -> xr.DataArray:
    """Overlapping spectrometers, as on real AVIRIS grids: the wavelengths step back at two joins."""
    nm = scene.wavelength.values.copy()
    nm[60:64] -= 25.0
    nm[150:153] -= 18.0
    assert len(np.unique(nm)) == nm.size and (np.diff(nm) < 0).any()
    return scene.assign_coords(wavelength=nm)


@pytest.mark.parametrize("seed", range(6))
def test_shuffled_wavelengths_with_a_labelled_mask(scene, seed):
    da = _shuffled(scene, seed)
    mask = anyband_xr.masks.band_loss(da, 0.4, seed=seed)
    with pytest.warns(AnyBandWarning, match="not monotonic"):
        out = da.where(~mask).anyband.repair(mask, method="linear")
    _assert_repaired(out, da, mask.broadcast_like(da))


@pytest.mark.parametrize("seed", range(3))
def test_shuffled_wavelengths_with_a_numpy_mask_in_the_input_order(scene, seed):
    da = _shuffled(scene, seed)
    mask = np.random.default_rng(seed).random(da.shape) < 0.3
    with pytest.warns(AnyBandWarning):
        out = da.where(~mask).anyband.repair(mask, method="pchip")
    _assert_repaired(out, da, xr.DataArray(mask, dims=da.dims, coords=da.coords))


@pytest.mark.parametrize("make", [lambda d: anyband_xr.masks.band_loss(d, 0.3, seed=1),
                                  lambda d: anyband_xr.masks.spectral_gap(d, 1000.0, 1100.0)])
def test_aviris_like_overlapping_grid(scene, make):
    da = _aviris_like(scene)
    mask = make(da)
    with pytest.warns(AnyBandWarning):
        out = da.where(~mask).anyband.repair(mask, method="linear")
    _assert_repaired(out, da, mask.broadcast_like(da))


def test_mask_labelled_in_micrometres_aligns_with_nanometre_data(scene):
    mask = anyband_xr.masks.band_loss(scene, 0.3, seed=2)
    micro = mask.assign_coords(wavelength=mask.wavelength.values / 1000.0).isel(wavelength=slice(None, None, -1))
    out = scene.where(~mask).anyband.repair(micro, method="linear")
    _assert_repaired(out, scene, mask.broadcast_like(scene))


def test_mask_with_other_labels_is_refused(scene):
    mask = anyband_xr.masks.band_loss(scene, 0.3, seed=0)
    moved = mask.assign_coords(wavelength=mask.wavelength.values + 3.0)
    with pytest.raises(ValueError, match="labels do not match"):
        scene.anyband.repair(moved, method="linear")


def test_mask_with_reversed_spatial_labels_aligns(scene):
    mask = anyband_xr.masks.dropout(scene, 0.3, seed=0)
    out = scene.where(~mask).anyband.repair(mask.isel(y=slice(None, None, -1)), method="linear")
    _assert_repaired(out, scene, mask)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, 1e30])
def test_one_huge_or_infinite_value_does_not_blank_its_tile(scene, bad):
    mask = anyband_xr.masks.band_loss(scene, 0.3, seed=0)
    clean = scene.where(~mask).anyband.repair(mask, method="diffusion", tile=12, overlap=2)
    hostile = scene.copy()
    hostile[5, 3, 3] = bad
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AnyBandWarning)
        out = hostile.where(~mask).anyband.repair(mask, method="diffusion", tile=12, overlap=2)
    filled = mask.broadcast_like(scene).values
    assert np.isfinite(out.values[filled]).all()
    far = np.ones(scene.shape[1:], bool)
    far[:8, :8] = False
    np.testing.assert_allclose(out.values[:, far], clean.values[:, far], atol=0.02)


def test_infinite_observation_is_missing_and_counted(scene):
    hostile = scene.copy()
    hostile[5, 3, 3] = np.inf
    out = hostile.anyband.repair(method="linear")
    assert out.attrs["anyband_nonfinite_values"] == 1
    assert np.isfinite(out.values[5, 3, 3]) and abs(float(out[5, 3, 3]) - float(scene[5, 3, 3])) < 0.05


def test_conventional_fill_value_is_missing_with_a_warning(scene):
    hostile = scene.copy()
    hostile[10, 4, 4] = -9999.0
    reference = scene.where(~((scene.wavelength == scene.wavelength[10]) & (scene.y == scene.y[4]) & (scene.x == scene.x[4]))).anyband.repair(method="linear")
    with pytest.warns(AnyBandWarning, match="1 observed value"):
        out = hostile.anyband.repair(method="linear")
    assert out.attrs["anyband_implausible_values"] == 1
    np.testing.assert_array_equal(out.values, reference.values)


def test_declared_nodata_is_honoured(scene):
    hostile = scene.copy().assign_attrs(nodata=0.0)
    hostile[:, 0, :] = 0.0
    out = hostile.anyband.repair(method="linear")
    assert out.attrs["anyband_empty_pixels"] == scene.sizes["x"]
    assert np.isnan(out.values[:, 0, :]).all() and np.isfinite(out.values[:, 1:, :]).all()


def test_implausible_reflectance_is_flagged(scene):
    hostile = scene.copy()
    hostile[3, 2, 2] = 250.0
    with pytest.warns(AnyBandWarning, match="implausible"):
        out = hostile.anyband.repair(method="linear")
    assert out.attrs["anyband_implausible_values"] == 1 and float(out[3, 2, 2]) < 1.0


@pytest.mark.parametrize("method", ["linear", "pchip", "gaussian", "diffusion"])
def test_pixels_with_no_observed_band_stay_missing(scene, method):
    bordered = scene.copy()
    bordered[:, :, :2] = np.nan
    mask = anyband_xr.masks.band_loss(scene, 0.3, seed=0)
    out = bordered.where(~mask).anyband.repair(mask, method=method)
    assert np.isnan(out.values[:, :, :2]).all()
    assert np.isfinite(out.values[:, :, 2:]).all()
    assert out.attrs["anyband_empty_pixels"] == 2 * scene.sizes["y"]


def test_pixels_with_no_observed_band_stay_missing_on_dask(scene):
    bordered = scene.copy()
    bordered[:, :3, :] = np.nan
    out = bordered.chunk({"y": 4}).anyband.repair(method="linear").compute()
    assert np.isnan(out.values[:, :3]).all() and np.isfinite(out.values[:, 3:]).all()


def test_everything_missing_is_an_error(scene):
    with pytest.raises(ValueError, match="every pixel has every band missing"):
        scene.anyband.repair(xr.ones_like(scene, dtype=bool), method="linear")


@pytest.mark.parametrize(
    "keywords, message",
    [
        ({"guidance": 1e6}, "guidance must be in"),
        ({"guidance": float("nan")}, "guidance must be a finite number"),
        ({"eta": 5.0}, "eta must be in"),
        ({"steps": 2.5}, "steps must be a whole number"),
        ({"steps": 0}, "steps must be in"),
        ({"samples": 0}, "samples must be"),
        ({"overlap": -1}, "overlap must be"),
        ({"overlap": 300}, "overlap .* must be smaller than tile"),
        ({"method": "kriging"}, "method must be one of"),
        ({"grad": "both"}, "grad must be one of"),
        ({"operators": ["ndvi", "gravity"]}, "unknown PGS operators"),
        ({"seed": -3}, "seed must be"),
    ],
)
def test_bad_settings_fail_before_any_work(scene, keywords, message):
    with pytest.raises(ValueError, match=message):
        scene.anyband.repair(anyband_xr.masks.band_loss(scene, 0.3, seed=0), **keywords)


def test_cuda_without_a_gpu_is_one_clear_error(scene):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        scene.anyband.repair(anyband_xr.masks.band_loss(scene, 0.3, seed=0), device="cuda")


@pytest.mark.parametrize("chunk", [24, 16, 5])
def test_chunking_never_changes_the_result(chunk):
    da = anyband_xr.datasets.jasper_ridge().isel(y=slice(0, 40), x=slice(0, 40)).load()
    mask = anyband_xr.masks.band_loss(da, 0.3, seed=0)
    settings = {"method": "diffusion", "tile": 24, "overlap": 4}
    expected = da.where(~mask).anyband.repair(mask, **settings)
    lazy = da.where(~mask).chunk({"y": chunk, "x": chunk}).anyband.repair(mask, **settings)
    assert lazy.chunks[1] == da.chunk({"y": chunk}).chunks[1]
    np.testing.assert_array_equal(lazy.values.view(np.uint32), expected.values.view(np.uint32))


# --- Zarr job and CLI ---

import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from distributed import Client, LocalCluster  # noqa: E402

from anyband_xr.cli import main as anyband_main  # noqa: E402
from anyband_xr.io import write_zarr  # noqa: E402
from anyband_xr.scale import JobFailed, repair_zarr  # noqa: E402
from anyband_xr.scale import store as job_store  # noqa: E402
from anyband_xr.scale import tile as job_tile  # noqa: E402

#: A cheap job: linear fill, 16-pixel regions (2 x 2 tiles on a 32 x 32 scene), no halo.
JOB = {"method": "linear", "tile": 16, "overlap": 0, "progress": False}


def _job_crop(y0: int = 0, x0: int = 0, size: int = 32) -> xr.DataArray:
    """A size x size crop of the bundled real scene, loaded."""
    return anyband_xr.datasets.jasper_ridge().isel(y=slice(y0, y0 + size), x=slice(x0, x0 + size)).load()


def _job_mask(da: xr.DataArray, extra: bool = False) -> xr.DataArray:
    """True = missing: every fourth band everywhere, and a 4 x 4 SWIR patch (one more pixel when ``extra``)."""
    mask = xr.zeros_like(da, dtype=bool).rename("missing")
    mask[::4] = True
    mask[100:, 4:8, 4:8] = True
    if extra:
        mask[100:, 20, 20] = True
    return mask


@pytest.fixture(scope="module")
def job_client():
    """One in-process worker: tiles run in this process, so tests can patch what a tile calls."""
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        with Client(cluster) as client:
            yield client


@pytest.fixture(scope="module")
def job_stores(tmp_path_factory):
    """The scene, its mask and hostile variants, each in its own Zarr store."""
    root = tmp_path_factory.mktemp("job")
    da = _job_crop()
    write_zarr(da, root / "scene.zarr", chunks={"y": 16, "x": 16})
    variants = {
        "coords": _job_crop(y0=32),
        "values": da * 1.5,
        "metadata": da.assign_attrs(sensor="another sensor"),
        "small": _job_crop(size=16),
        "large": _job_crop(size=48),
    }
    for name, variant in variants.items():
        write_zarr(variant.rename("reflectance"), root / f"{name}.zarr", chunks={"y": 16, "x": 16})
    write_zarr(da, root / "chunks.zarr", chunks={"y": 8, "x": 8})
    for name, mask in {"mask": _job_mask(da), "mask_extra": _job_mask(da, extra=True),
                       "mask_uint8": _job_mask(da).astype("uint8"), "mask_small": _job_mask(_job_crop(size=16))}.items():
        mask.to_dataset().to_zarr(root / f"{name}.zarr", zarr_format=3, consolidated=False)
    return root


@pytest.fixture(scope="module")
def job_done(job_stores, job_client):
    """A finished job of the scene with its mask store, and its output."""
    out = job_stores / "done.zarr"
    summary = repair_zarr(job_stores / "scene.zarr", out, mask=job_stores / "mask.zarr", scheduler=job_client, **JOB)
    assert (summary.tiles_done, summary.tiles_total, summary.empty_pixels) == (4, 4, 0)
    return out


def _job_output(path) -> np.ndarray:
    return xr.open_zarr(path, consolidated=False)["reflectance"].values


@pytest.mark.parametrize(
    "source, message",
    [
        ("coords", r"input coordinates \(wavelength, y, x\): stored sha256 \w{12}, now sha256"),
        ("values", r"input values \(first write region\)"),
        ("metadata", r"input metadata \(variable name, dims, attrs\)"),
        ("chunks", r"input store chunks: stored \{'wavelength': 198, 'y': 16, 'x': 16\}, now .*'y': 8"),
        ("small", r"input shape \(spectral, y, x\): stored \[198, 32, 32\], now \[198, 16, 16\]"),
        ("large", r"input shape \(spectral, y, x\): stored \[198, 32, 32\], now \[198, 48, 48\]"),
    ],
    ids=["other-scene", "same-grid-other-values", "other-attrs", "rechunked", "smaller-scene", "larger-scene"],
)
def test_resume_from_another_input_is_refused_naming_it(job_stores, job_done, job_client, source, message):
    before = _job_output(job_done)
    with pytest.raises(ValueError, match=f"cannot resume .*{message}"):
        repair_zarr(job_stores / f"{source}.zarr", job_done, mask=None if source in ("coords", "small", "large") else
                    job_stores / "mask.zarr", scheduler=job_client, resume=True, **JOB)
    np.testing.assert_array_equal(_job_output(job_done), before)
    np.testing.assert_array_equal(job_store.tile_writes(job_done), 1)


def test_resume_with_another_mask_is_refused_and_the_same_job_resumes(job_stores, job_done, job_client):
    with pytest.raises(ValueError, match=r"cannot resume .*mask \(values, dims, labels and store chunks\): stored sha256"):
        repair_zarr(job_stores / "scene.zarr", job_done, mask=job_stores / "mask_extra.zarr", scheduler=job_client,
                    resume=True, **JOB)
    with pytest.raises(ValueError, match=r"mask .*: stored sha256 \w{12}, now 'none: NaN and fill values"):
        repair_zarr(job_stores / "scene.zarr", job_done, scheduler=job_client, resume=True, **JOB)
    summary = repair_zarr(job_stores / "scene.zarr", job_done, mask=job_stores / "mask.zarr", scheduler=job_client,
                          resume=True, **JOB)
    assert (summary.tiles_done, summary.tiles_skipped) == (0, 4)


def test_a_tile_never_written_is_named_and_a_resume_writes_it(job_stores, job_client, monkeypatch):
    out = job_stores / "unwritten.zarr"
    mark = job_store.mark_written
    monkeypatch.setattr(job_store, "mark_written",
                        lambda t, iy, ix, *counts: 0 if (iy, ix) == (1, 0) else mark(t, iy, ix, *counts))
    with pytest.raises(JobFailed, match=r"1 of 4 tiles were never written \(tiles \(1, 0\)\); run again with resume"):
        repair_zarr(job_stores / "scene.zarr", out, mask=job_stores / "mask.zarr", scheduler=job_client, **JOB)
    monkeypatch.undo()
    summary = repair_zarr(job_stores / "scene.zarr", out, mask=job_stores / "mask.zarr", scheduler=job_client,
                          resume=True, **JOB)
    assert (summary.tiles_done, summary.tiles_skipped) == (1, 3)


@pytest.mark.parametrize(
    "error, advice",
    [(ValueError("spectra out of reach"), "resuming would fail the same way"), (OSError("disk full"), "--resume")],
)
def test_failed_tiles_are_named_and_resume_is_advised_only_when_it_helps(job_stores, job_client, monkeypatch,
                                                                         tmp_path, error, advice):
    read = job_tile.read_window

    def flaky(job, ys, xs):
        if (ys.start, xs.start) == (0, 16):
            raise error
        return read(job, ys, xs)

    monkeypatch.setattr(job_tile, "read_window", flaky)
    with pytest.raises(JobFailed, match=r"1 of 4 tiles failed \(tiles \(0, 1\); the others are written\)") as failed:
        repair_zarr(job_stores / "scene.zarr", tmp_path / "out.zarr", scheduler=job_client, **JOB)
    assert advice in str(failed.value) and str(error) in str(failed.value)
    assert ("--resume" in str(failed.value)) == isinstance(error, OSError)


def _job_cli(capsys, *words: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``anyband`` run in this process."""
    try:
        anyband_main([str(w) for w in words])
        code = 0
    except SystemExit as stop:
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    "options, message",
    [
        (["--mask", "{root}/mask_uint8.zarr"], "mask must be boolean"),
        (["--mask", "{root}/mask_small.zarr"], "has 16 entries along 'y', the data has 32"),
        (["--mask", "{root}/no_such_mask.zarr"], "the mask store .*no_such_mask.zarr does not exist"),
        (["--mask-var", "missing"], "has no variable 'missing'"),
        (["--nan-is-missing", "--variable", "radiance"], "no variable 'radiance'"),
        (["--nan-is-missing", "--steps", "0"], r"steps must be in \[1, 1000\], got 0"),
        (["--nan-is-missing", "--eta", "5"], r"eta must be in \[0.0, 1.0\]"),
        (["--nan-is-missing", "--method", "diffusion", "--device", "cuda:7"], "cuda:7"),
        (["--nan-is-missing", "--method", "diffusion", "--device", "abacus"], "not a torch device name"),
        (["--nan-is-missing", "--workers", "0"], "workers must be a whole number >= 1"),
    ],
    ids=["uint8-mask", "mask-too-small", "no-mask-store", "no-mask-variable", "no-variable", "steps-0", "eta-5",
         "absent-gpu", "bad-device", "no-workers"],
)
def test_cli_rejects_bad_input_in_one_line_with_exit_2_before_any_store(job_stores, capsys, options, message):
    out = job_stores / "rejected.zarr"
    words = [w.format(root=job_stores) for w in options]
    code, stdout, stderr = _job_cli(capsys, "repair", job_stores / "scene.zarr", out, "--method", "linear", *words)
    assert code == 2 and stdout == ""
    assert len(stderr.splitlines()) == 1 and stderr.startswith("anyband: error: "), stderr
    assert re.search(message, stderr), stderr
    assert not out.exists()


@pytest.mark.parametrize("options", [["--method", "kriging"], ["--steps", "2.5"], ["--tile"]])
def test_cli_argument_errors_exit_2_before_any_store(job_stores, capsys, options):
    out = job_stores / "rejected.zarr"
    code, _, stderr = _job_cli(capsys, "repair", job_stores / "scene.zarr", out, "--nan-is-missing", *options)
    assert code == 2 and "anyband repair: error: argument" in stderr and not out.exists()


def test_cli_debug_adds_the_traceback(job_stores, capsys):
    out = job_stores / "rejected.zarr"
    code, _, stderr = _job_cli(capsys, "--debug", "repair", job_stores / "scene.zarr", out, "--nan-is-missing",
                               "--steps", "0")
    assert code == 2 and stderr.startswith("Traceback (most recent call last)") and "RepairSettings.build" in stderr
    assert stderr.splitlines()[-1] == "anyband: error: steps must be in [1, 1000], got 0."
    assert not out.exists()


def test_cli_version(capsys):
    code, stdout, _ = _job_cli(capsys, "--version")
    assert code == 0 and stdout.strip() == f"anyband {anyband_xr.__version__}"


def test_cli_help_imports_neither_torch_nor_the_benchmark_harness():
    probe = (
        "import sys\nfrom anyband_xr.cli import main\n"
        "for words in (['--help'], ['repair', '--help']):\n"
        "    try:\n        main(words)\n    except SystemExit as stop:\n        assert stop.code == 0\n"
        "print(sorted(m for m in ('torch', 'anyband_xr.evaluation', 'distributed') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]"


def test_cli_run_prints_the_summary_and_a_failed_run_exits_1(job_stores, job_done, job_client, capsys, monkeypatch,
                                                            tmp_path):
    args = ["repair", job_stores / "scene.zarr", tmp_path / "cli.zarr", "--mask", job_stores / "mask.zarr",
            "--method", "linear", "--tile", "16", "--overlap", "0", "--scheduler", job_client.scheduler.address]
    code, stdout, _ = _job_cli(capsys, *args)
    assert code == 0
    assert "anyband repair: 4 tiles repaired, 0 already done, 4 in all; 1024 pixels" in stdout
    assert stdout.rstrip().endswith("; 0 pixels without any observed band left NaN")
    np.testing.assert_array_equal(_job_output(tmp_path / "cli.zarr"), _job_output(job_done))
    monkeypatch.setattr(job_tile, "fill_block", lambda *a, **k: (_ for _ in ()).throw(MemoryError("out of memory")))
    code, _, stderr = _job_cli(capsys, *args[:2], tmp_path / "failed.zarr", *args[3:])
    last = stderr.splitlines()[-1]  # after the progress bar
    assert code == 1 and last.startswith("anyband: error: 4 of 4 tiles failed") and "--resume" in last


@pytest.mark.parametrize("method", ["linear", "diffusion"])
def test_pixels_without_any_observed_band_are_left_nan_and_counted(job_stores, job_client, tmp_path, method):
    da = _job_crop()
    empty = np.zeros(da.shape[1:], dtype=bool)
    empty[:, :3] = True          # a nodata border
    empty[20, 25] = True         # a lone dead pixel
    source = tmp_path / "edges.zarr"
    write_zarr(da.where(~empty), source, chunks={"y": 16, "x": 16})
    mask = _job_mask(da)
    options = {**JOB, "method": method, "steps": 1, "tile": 32, "overlap": 8} if method == "diffusion" else JOB
    summary = repair_zarr(source, tmp_path / "out.zarr", mask=mask, scheduler=job_client, **options)
    assert summary.empty_pixels == empty.sum() == 32 * 3 + 1
    assert f"{empty.sum()} pixels without any observed band left NaN" in str(summary)
    out = _job_output(tmp_path / "out.zarr")
    assert np.isnan(out[:, empty]).all() and np.isfinite(out[:, ~empty]).all()
    observed = ~mask.values & ~empty
    np.testing.assert_array_equal(out[observed], da.values[observed])


def test_an_all_nan_tile_does_not_fail_the_job(job_done, job_client, tmp_path):
    da = _job_crop()
    blank = da.copy()
    blank[:, 16:, :16] = np.nan      # tile (1, 0): a whole region without data
    write_zarr(blank, tmp_path / "blank.zarr", chunks={"y": 16, "x": 16})
    summary = repair_zarr(tmp_path / "blank.zarr", tmp_path / "out.zarr", mask=_job_mask(da), scheduler=job_client,
                          **JOB)
    assert (summary.tiles_done, summary.empty_pixels) == (4, 16 * 16)
    out = _job_output(tmp_path / "out.zarr")
    assert np.isnan(out[:, 16:, :16]).all()
    np.testing.assert_array_equal(out[:, :16], _job_output(job_done)[:, :16])


@pytest.mark.parametrize("output, message", [("scene.zarr", "is the input store"),
                                             ("mask.zarr", "exists and is not a repair job store")])
def test_resume_never_overwrites_a_store_that_is_not_a_job(job_stores, capsys, output, message):
    before = {name: xr.open_zarr(job_stores / name, consolidated=False).load() for name in ("scene.zarr", "mask.zarr")}
    code, _, stderr = _job_cli(capsys, "repair", job_stores / "scene.zarr", job_stores / output, "--method", "linear",
                               "--mask", job_stores / "mask.zarr", "--resume")
    assert code == 2 and message in stderr
    for name, ds in before.items():
        xr.testing.assert_identical(xr.open_zarr(job_stores / name, consolidated=False).load(), ds)


def test_a_template_cut_off_while_written_is_redone_on_resume(job_stores, job_client, tmp_path):
    import zarr

    out = tmp_path / "cut.zarr"
    repair_zarr(job_stores / "scene.zarr", out, mask=job_stores / "mask.zarr", scheduler=job_client, **JOB)
    del zarr.open_group(str(out), mode="r+").attrs["anyband_template"]  # as if killed before the template was done
    with pytest.raises(FileExistsError, match="pass resume=True"):
        repair_zarr(job_stores / "scene.zarr", out, mask=job_stores / "mask.zarr", scheduler=job_client, **JOB)
    summary = repair_zarr(job_stores / "scene.zarr", out, mask=job_stores / "mask.zarr", scheduler=job_client,
                          resume=True, **JOB)
    assert (summary.tiles_done, summary.tiles_skipped) == (4, 0)


def test_a_device_the_workers_lack_is_named_before_any_store(job_stores, job_client, tmp_path):
    out = tmp_path / "gpu.zarr"
    with pytest.raises(JobFailed, match="device 'abacus' is not a torch device name"):
        repair_zarr(job_stores / "scene.zarr", out, method="diffusion", device="abacus", steps=1, tile=32, overlap=8,
                    scheduler=job_client, progress=False)
    assert not out.exists()


def test_fill_and_implausible_values_are_screened_like_in_memory_and_counted(job_client, tmp_path):
    da = _job_crop()
    hostile = da.copy()
    hostile[10, 3, 3] = -9999.0      # an undeclared conventional fill value
    hostile[50, 20, 30] = 50.0       # far beyond any reflectance
    hostile[60, 1, 1] = np.inf       # non-finite: missing like NaN, not "screened"
    write_zarr(hostile, tmp_path / "hostile.zarr", chunks={"y": 16, "x": 16})
    mask = _job_mask(da)
    with pytest.warns(anyband_xr.AnyBandWarning, match="2 observed value"):
        summary = repair_zarr(tmp_path / "hostile.zarr", tmp_path / "out.zarr", mask=mask, scheduler=job_client, **JOB)
    assert summary.screened_values == 2 and "; 2 observed values treated as missing" in str(summary)
    with pytest.warns(anyband_xr.AnyBandWarning):
        expected = hostile.anyband.repair(mask, method="linear")
    out = _job_output(tmp_path / "out.zarr")
    np.testing.assert_array_equal(out.view(np.uint32), expected.values.view(np.uint32))
    assert np.isfinite(out).all() and abs(out[10, 3, 3]) < 1 and abs(out[50, 20, 30]) < 1


def test_lowrank_job_fits_one_prior_for_the_whole_scene_like_in_memory(job_stores, job_client, tmp_path):
    da = _job_crop()
    mask = xr.DataArray(np.random.default_rng(0).random(da.shape) < 0.2, dims=da.dims, coords=da.coords)
    write_zarr(da.where(~mask), tmp_path / "dropout.zarr", chunks={"y": 16, "x": 16})
    options = {**JOB, "method": "lowrank"}
    summary = repair_zarr(tmp_path / "dropout.zarr", tmp_path / "out.zarr", mask=mask, scheduler=job_client, **options)
    assert summary.tiles_done == 4
    expected = da.where(~mask).anyband.repair(mask, method="lowrank")
    np.testing.assert_array_equal(_job_output(tmp_path / "out.zarr").view(np.uint32), expected.values.view(np.uint32))
    with pytest.raises(anyband_xr.lowrank.UnseenBandsError):  # whole bands lost: the scene cannot teach them
        repair_zarr(job_stores / "scene.zarr", tmp_path / "unseen.zarr", mask=job_stores / "mask.zarr",
                    scheduler=job_client, **options)
    assert not (tmp_path / "unseen.zarr").exists()
