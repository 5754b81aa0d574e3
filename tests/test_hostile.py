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
