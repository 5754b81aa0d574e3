"""Readers (.mat, ENVI) and Zarr v3 storage, on small files cut from the bundled Jasper Ridge scene."""

from __future__ import annotations

import json
import warnings

import h5py
import numpy as np
import pytest
import rasterio
import scipy.io
import xarray as xr
from rasterio.transform import from_origin

from anyband_xr import datasets, wavelengths
from anyband_xr.io import open_zarr, read_envi, read_jasper_ridge, read_labels, read_mat, write_zarr
from anyband_xr.io.mat import _table
from tests.helpers import count_dask_computes

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")


@pytest.fixture(scope="module")
def scene() -> xr.DataArray:
    return datasets.jasper_ridge().isel(y=slice(0, 12), x=slice(0, 9))


def _dn_cube(scene: xr.DataArray, bands: int) -> np.ndarray:
    """(rows, cols, bands) uint16 DN built from the scene's spectra, band count tiled to ``bands``."""
    dn = np.rint(scene.values * 1e4).astype(np.uint16)
    return np.moveaxis(np.resize(dn, (bands, *dn.shape[1:])), 0, 2)


def _assert_reader_convention(da: xr.DataArray) -> None:
    assert da.dims == ("wavelength", "y", "x")
    assert da.dtype == np.float32
    assert da.wavelength.attrs["units"] == "nm"
    assert np.all(np.diff(wavelengths(da)) > 0)
    assert {"sensor", "source", "licence", "units", "scale_note"} <= set(da.attrs)


def test_pavia_university_layout(tmp_path, scene):
    cube = _dn_cube(scene, 103)
    scipy.io.savemat(tmp_path / "PaviaU.mat", {"paviaU": cube})
    da = read_mat(tmp_path / "PaviaU.mat")
    _assert_reader_convention(da)
    assert da.shape == (103, 12, 9) and da.attrs["sensor"] == "ROSIS"
    assert da.wavelength[0] == 430 and da.wavelength[-1] == 850
    np.testing.assert_allclose(da.values, np.moveaxis(cube, 2, 0) / 1e4, rtol=1e-6)


@pytest.mark.parametrize(
    ("variable", "bands", "table", "removed"),
    [
        ("salinas_corrected", 204, "aviris", [108, 112, 154, 167, 224]),
        ("indian_pines_corrected", 200, "indian_pines_92av3c", [104, 108, 150, 163, 220]),
        ("salinas", 224, "aviris", []),
    ],
)
def test_aviris_water_band_layouts(tmp_path, scene, variable, bands, table, removed):
    scipy.io.savemat(tmp_path / "s.mat", {variable: _dn_cube(scene, bands)})
    da = read_mat(tmp_path / "s.mat")
    _assert_reader_convention(da)
    assert da.sizes["wavelength"] == bands
    centres = _table(table)[0]
    assert not np.isin(centres[np.asarray(removed, dtype=int) - 1], da.wavelength.values).any()
    assert ("fwhm" in da.coords) == variable.startswith("indian_pines")


def test_jasper_ridge_layout_column_major(tmp_path, scene):
    table = _table("jasper_ridge")[0]
    channels = np.array([np.flatnonzero(table == w)[0] + 1 for w in scene.wavelength.values])
    order = np.argsort(channels)
    dn = np.rint(scene.values[order] * 1e4).astype(np.uint16)
    rows, cols = dn.shape[1:]
    abundance = np.full((4, rows * cols), 0.25)
    scipy.io.savemat(tmp_path / "jr.mat", {
        "Y": dn.reshape(dn.shape[0], -1, order="F"), "SlectBands": channels[order][:, None].astype(np.uint8),
        "M": np.ones((dn.shape[0], 4)), "A": abundance, "nRow": rows, "nCol": cols, "maxValue": 5000,
    })
    assert np.any(np.diff(table[channels[order] - 1]) < 0)
    da = read_mat(tmp_path / "jr.mat")
    _assert_reader_convention(da)
    np.testing.assert_allclose(da.values, scene.values, atol=1e-6)
    ds = read_jasper_ridge(tmp_path / "jr.mat")
    assert ds.abundance.dims == ("endmember", "y", "x") and ds.abundance.shape == (4, rows, cols)
    np.testing.assert_allclose(ds.endmember_spectra, 0.5)


def test_houston_layout_and_labels(tmp_path, scene):
    labels = np.arange(48 * 36, dtype=np.uint8).reshape(48, 36) % 13
    scipy.io.savemat(tmp_path / "h.mat", {"hyprImg": _dn_cube(scene, 48), "clasLabs": labels})
    da = read_mat(tmp_path / "h.mat")
    _assert_reader_convention(da)
    np.testing.assert_allclose(da.wavelength[[0, -1]], [380, 1050])
    np.testing.assert_allclose(np.diff(da.wavelength), 670 / 47)
    lab = read_labels(tmp_path / "h.mat")
    assert lab.dims == ("y", "x") and lab.dtype == np.int32
    np.testing.assert_array_equal(lab, labels)


def test_indian_pines_simulated_drops_uncalibrated_channels(tmp_path, scene):
    cube = np.moveaxis(np.resize(scene.values, (224, 12, 9)), 0, 2).astype(np.float64)
    scipy.io.savemat(tmp_path / "simu_indian.mat", {"simu_indian": cube})
    da = read_mat(tmp_path / "simu_indian.mat")
    _assert_reader_convention(da)
    assert da.sizes["wavelength"] == 220 and "fwhm" in da.coords
    centres = _table("aviris_92av3c")[0]
    assert np.flatnonzero(np.isnan(centres)).tolist() == [0, 32, 96, 160]
    kept = np.delete(np.moveaxis(cube, 2, 0), [0, 32, 96, 160], axis=0)
    order = np.argsort(np.delete(centres, [0, 32, 96, 160]), kind="stable")
    np.testing.assert_allclose(da.values, kept[order], rtol=1e-6)


def test_mat_v73_hdf5(tmp_path, scene):
    cube = _dn_cube(scene, 103)
    path = tmp_path / "paviaU_v73.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset("paviaU", data=cube.T)
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file".ljust(116) + bytes(8) + b"\x00\x02IM")
    da = read_mat(path)
    np.testing.assert_allclose(da.values, np.moveaxis(cube, 2, 0) / 1e4, rtol=1e-6)


def test_unknown_layout_lists_variables(tmp_path, scene):
    scipy.io.savemat(tmp_path / "odd.mat", {"myCube": _dn_cube(scene, 5)})
    with pytest.raises(ValueError, match=r"Variables found: myCube \(12, 9, 5\).*layout="):
        read_mat(tmp_path / "odd.mat")
    da = read_mat(tmp_path / "odd.mat", layout="cube:myCube", wavelengths=[0.5, 0.6, 0.7, 0.8, 0.9])
    np.testing.assert_allclose(da.wavelength, [500, 600, 700, 800, 900])
    with pytest.raises(ValueError, match="unknown layout 'nope'"):
        read_mat(tmp_path / "odd.mat", layout="nope")
    with pytest.raises(ValueError, match="none of the variables"):
        read_mat(tmp_path / "odd.mat", layout="salinas")


def test_layout_without_known_wavelengths_needs_them(tmp_path, scene):
    scipy.io.savemat(tmp_path / "KSC.mat", {"KSC": _dn_cube(scene, 4)})
    with pytest.raises(ValueError, match="wavelengths="):
        read_mat(tmp_path / "KSC.mat")
    assert read_mat(tmp_path / "KSC.mat", wavelengths=[450, 550, 650, 850]).sizes["wavelength"] == 4


def test_training_scenes_reads_folder(tmp_path, scene):
    (tmp_path / "pavia").mkdir()
    scipy.io.savemat(tmp_path / "pavia" / "PaviaU.mat", {"paviaU": _dn_cube(scene, 103)})
    scipy.io.savemat(tmp_path / "pavia" / "PaviaU_gt.mat", {"paviaU_gt": np.zeros((12, 9), np.uint8)})
    scenes = datasets.training_scenes(tmp_path)
    assert list(scenes) == ["pavia/PaviaU"]


_HEADER = """ENVI
description = {{cut of Jasper Ridge,
  for tests}}
samples = {cols}
lines = {rows}
bands = {bands}
header offset = 0
file type = ENVI Standard
data type = 2
interleave = bsq
byte order = 0
wavelength units = Micrometers
wavelength = {{{wavelength}}}
fwhm = {{{fwhm}}}
data ignore value = -9999
reflectance scale factor = 10000
"""


def test_envi_round_trip(tmp_path, scene):
    sub = scene.isel(wavelength=[40, 10, 20, 30])
    dn = np.rint(sub.values * 1e4).astype(np.int16)
    dn[1, 2, 3] = -9999
    dn.tofile(tmp_path / "cut.img")
    um = sub.wavelength.values / 1e3
    (tmp_path / "cut.hdr").write_text(_HEADER.format(
        rows=dn.shape[1], cols=dn.shape[2], bands=dn.shape[0],
        wavelength=",\n ".join(f"{w:.6f}" for w in um), fwhm=", ".join(["0.010", "0.011", "0.012", "0.013"]),
    ))
    with count_dask_computes() as counter:
        da = read_envi(tmp_path / "cut.img")
        assert counter.count == 0
    assert da.chunks is not None and len(da.chunks[0]) == 1
    _assert_reader_convention(da)
    np.testing.assert_allclose(da.wavelength, np.sort(sub.wavelength.values), rtol=1e-6)
    np.testing.assert_allclose(da.fwhm, [11, 12, 13, 10])
    expected = np.where(dn == -9999, np.nan, dn / 1e4)[np.argsort(um)]
    np.testing.assert_allclose(da.values, expected, rtol=1e-6)
    assert np.isnan(da.values[0, 2, 3])
    assert da.attrs["description"] == "cut of Jasper Ridge, for tests"
    assert da.y.dtype.kind == "i" and da.rio.crs is None


def test_envi_georeferenced_keeps_crs(tmp_path, scene):
    dn = np.rint(scene.values[:3] * 1e4).astype(np.uint16)
    path = tmp_path / "geo.bsq"
    profile = {"driver": "ENVI", "count": 3, "height": dn.shape[1], "width": dn.shape[2], "dtype": "uint16",
               "crs": "EPSG:32610", "transform": from_origin(560000, 4140000, 20, 20)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(dn)
    hdr = tmp_path / "geo.hdr"
    hdr.write_text(hdr.read_text() + "wavelength units = Nanometers\nwavelength = {500, 600, 700}\n")
    da = read_envi(tmp_path / "geo.hdr", chunks=None)
    assert da.rio.crs.to_epsg() == 32610
    np.testing.assert_allclose(da.x[:2], [560010, 560030])
    np.testing.assert_allclose(da.values, dn.astype(np.float32))


def test_zarr_v3_round_trip(tmp_path, scene):
    da = scene.assign_coords(fwhm=("wavelength", np.full(scene.sizes["wavelength"], 10.0), {"units": "nm"}))
    da = da.assign_coords(x=560000 + 20.0 * np.arange(da.sizes["x"]), y=4140000 - 20.0 * np.arange(da.sizes["y"]))
    da = da.rio.write_crs("EPSG:32610")
    store = tmp_path / "scene.zarr"
    write_zarr(da, store, chunks={"y": 4, "x": 4})
    assert json.loads((store / "zarr.json").read_text())["zarr_format"] == 3
    with count_dask_computes() as counter:
        out = open_zarr(store)
        assert counter.count == 0
    assert out.chunks is not None and len(out.chunks[0]) == 1
    assert out.rio.crs.to_epsg() == 32610
    assert out.wavelength.attrs["units"] == "nm" and out.fwhm.attrs["units"] == "nm"
    np.testing.assert_array_equal(out.fwhm, da.fwhm)
    assert out.attrs["sensor"] == "AVIRIS"
    xr.testing.assert_allclose(out.drop_vars("spatial_ref"), da.drop_vars("spatial_ref"))
    with pytest.raises(FileExistsError):
        write_zarr(da, store)


def test_zarr_lazy_input_and_variable_choice(tmp_path, scene):
    store = tmp_path / "two.zarr"
    with count_dask_computes() as counter:
        write_zarr(scene.chunk({"wavelength": 50}), store, name="a")
        assert counter.count == 1
    write_zarr(scene * 2, store, name="b", mode="a")
    with pytest.raises(ValueError, match="variable="):
        open_zarr(store)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(open_zarr(store, "b").values, scene.values * 2)
