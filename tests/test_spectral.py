"""The wavelength contract: finding, converting, validating and standardising the spectral axis."""

import warnings

import dask.array as dsa
import numpy as np
import pytest
import xarray as xr

import anyband_xr
from anyband_xr import spectral


def cube(wavelength, dims=("wavelength", "y", "x"), dtype="float32", **attrs):
    values = np.arange(len(wavelength) * 12, dtype=dtype).reshape(len(wavelength), 3, 4)
    spectral_dim = dims[0]
    return xr.DataArray(values, dims=dims, coords={spectral_dim: np.arange(len(wavelength))}, attrs=attrs).assign_coords(
        wavelength=(spectral_dim, np.asarray(wavelength, dtype=float))
    )


def test_wavelength_dimension_found():
    da = cube([450.0, 550.0, 650.0])
    assert da.anyband.spectral_dim == "wavelength"
    np.testing.assert_array_equal(da.anyband.wavelength, [450, 550, 650])


def test_band_dimension_with_stac_center_wavelength_in_micrometres():
    da = xr.DataArray(np.ones((2, 3, 3)), dims=("band", "y", "x"), coords={"band": ["B04", "B08"]})
    da = da.assign_coords(center_wavelength=("band", [0.665, 0.842]))
    assert spectral.spectral_dim(da) == "band"
    np.testing.assert_allclose(spectral.wavelengths(da), [665.0, 842.0])
    out = spectral.standardize(da)
    assert out["wavelength"].attrs["units"] == "nm" and "center_wavelength" not in out.coords


def test_micrometre_units_attribute_converted():
    da = cube([0.45, 0.55, 0.65])
    da["wavelength"].attrs["units"] = "µm"
    np.testing.assert_allclose(spectral.wavelengths(da), [450, 550, 650])


def test_fwhm_converted_with_wavelength_units():
    da = cube([0.45, 0.55, 0.65]).assign_coords(fwhm=("wavelength", [0.01, 0.01, 0.01]))
    np.testing.assert_allclose(spectral.standardize(da)["fwhm"].values, [10, 10, 10])


def test_narrow_fwhm_in_nanometres_is_not_taken_for_micrometres():
    da = cube([450.0, 550.0, 650.0]).assign_coords(fwhm=("wavelength", [8.0, 9.5, 10.0]))
    np.testing.assert_allclose(spectral.fwhm(da), [8.0, 9.5, 10.0])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: xr.DataArray(np.ones((2, 2, 2)), dims=("channel", "y", "x")), "no spectral axis"),
        (lambda: xr.DataArray(np.ones((2, 2, 2)), dims=("band", "y", "x")), "no wavelength coordinate"),
        (lambda: cube([450.0, np.nan, 650.0]), "missing or NaN"),
        (lambda: cube([450.0, -5.0, 650.0]), "must be positive"),
        (lambda: cube([450.0, 550.0, 550.0]), "duplicate wavelengths"),
    ],
)
def test_bad_spectral_axes_raise_clear_errors(make, message):
    with pytest.raises(spectral.SpectralAxisError, match=message):
        spectral.standardize(make())


def test_unknown_units_rejected():
    da = cube([450.0, 550.0, 650.0])
    da["wavelength"].attrs["units"] = "cm-1"
    with pytest.raises(spectral.SpectralAxisError, match="understands nm and µm"):
        spectral.wavelengths(da)


def test_non_monotonic_wavelengths_sorted_with_warning():
    da = cube([675.6, 664.1, 685.0])
    with pytest.warns(anyband_xr.AnyBandWarning, match="not monotonic"):
        out = da.anyband.standardize()
    np.testing.assert_array_equal(out["wavelength"].values, [664.1, 675.6, 685.0])
    np.testing.assert_array_equal(out.isel(y=0, x=0).values, da.isel(y=0, x=0).values[[1, 0, 2]])


def test_integer_dn_with_scale_factor_rejected():
    da = cube([450.0, 550.0, 650.0], dtype="uint16", scale_factor=1e-4)
    with pytest.raises(spectral.SpectralDataError, match="scale factor"):
        spectral.standardize(da)


def test_split_spectral_chunks_rechunked_lazily():
    da = cube([450.0, 550.0, 650.0]).chunk({"wavelength": 1})
    with pytest.warns(anyband_xr.AnyBandWarning, match="rechunked"):
        out = spectral.standardize(da)
    assert isinstance(out.data, dsa.Array) and out.chunks[0] == (3,)


def test_assign_wavelengths_by_hand():
    da = xr.DataArray(np.ones((3, 2, 2)), dims=("band", "y", "x"))
    out = anyband_xr.assign_wavelengths(da, [0.49, 0.56, 0.665], fwhm=[0.065, 0.035, 0.03])
    np.testing.assert_allclose(spectral.wavelengths(out), [490, 560, 665])
    np.testing.assert_allclose(spectral.fwhm(out), [65, 35, 30])
    with pytest.raises(spectral.SpectralAxisError, match="3 entries"):
        anyband_xr.assign_wavelengths(da, [490, 560])


def test_dataset_accessor_standardises_spectral_variables():
    ds = xr.Dataset({"refl": cube([0.65, 0.45, 0.55]), "label": (("y", "x"), np.zeros((3, 4)))})
    with pytest.warns(anyband_xr.AnyBandWarning):
        out = ds.anyband.standardize()
    np.testing.assert_allclose(out["refl"]["wavelength"].values, [450, 550, 650])


@pytest.mark.parametrize(
    "wavelength, units",
    [
        (np.linspace(365.0, 2500.0, 224), None),  # AVIRIS
        (np.linspace(2500.0, 365.0, 224), "nm"),  # AVIRIS, listed long to short
        ([443.0, 490.0, 560.0, 665.0, 705.0, 740.0, 783.0, 842.0, 865.0, 945.0, 1375.0, 1610.0, 2202.0], "nm"),
        ([443.0, 482.0, 561.0, 655.0, 865.0, 1609.0, 2201.0, 10900.0, 12000.0], "nm"),  # Landsat 8 with thermal
        ([0.443, 0.482, 0.561, 0.655, 0.865, 1.609, 2.201, 10.9, 12.0], None),  # the same in µm, no units
        (np.arange(350.0, 2501.0, 1.0), "nm"),  # 1 nm field spectrometer
        (np.arange(350.0, 2501.0, 2.0), None),
    ],
)
def test_real_sensor_grids_pass_the_sanity_checks(wavelength, units):
    da = xr.DataArray(np.zeros((len(wavelength), 1, 1)), dims=("wavelength", "y", "x"))
    da = da.assign_coords(wavelength=("wavelength", np.asarray(wavelength), {"units": units} if units else {}))
    nm = spectral.wavelengths(da)
    assert 350.0 <= nm.min() and nm.max() <= 12000.0


def test_model_range_check_is_silent_inside_and_names_what_is_outside():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spectral.check_model_range(anyband_xr.datasets.jasper_ridge().wavelength.values)  # 399.4 nm: edge sample
        spectral.check_model_range(np.array([396.0, 1000.0, 2504.0]))
    with pytest.warns(anyband_xr.AnyBandWarning, match=r"2 of 3 wavelengths \(350-2600 nm\).*extrapolated"):
        spectral.check_model_range(np.array([350.0, 1000.0, 2600.0]))
