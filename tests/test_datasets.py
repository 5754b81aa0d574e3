"""The bundled Jasper Ridge scene and the training-scene folder reader."""

from __future__ import annotations

import numpy as np
import pytest

from anyband_xr import datasets, wavelengths


def test_jasper_ridge_cube():
    da = datasets.jasper_ridge()
    assert da.dims == ("wavelength", "y", "x")
    assert da.shape == (198, 100, 100)
    assert da.dtype == np.float32
    wl = wavelengths(da)
    assert np.all(np.diff(wl) > 0)
    assert 399 < wl[0] < 400 and 2457 < wl[-1] < 2458
    assert da.wavelength.attrs["units"] == "nm"
    assert 0.0 <= float(da.min()) and float(da.max()) <= 0.6
    assert da.attrs["sensor"] == "AVIRIS" and "10000" in da.attrs["units"]


def test_jasper_ridge_abundances_and_endmembers():
    a = datasets.jasper_ridge_abundances()
    m = datasets.jasper_ridge_endmembers()
    assert list(a.endmember.values) == ["tree", "water", "soil", "road"]
    assert a.dims == ("endmember", "y", "x") and a.shape == (4, 100, 100)
    np.testing.assert_allclose(a.sum("endmember"), 1.0, atol=1e-3)
    assert m.dims == ("endmember", "wavelength") and m.shape == (4, 198)
    cube = datasets.jasper_ridge()
    np.testing.assert_array_equal(m.wavelength, cube.wavelength)
    mixed = np.einsum("ew,eyx->wyx", m.values, a.values)
    assert np.sqrt(np.mean((mixed - cube.values) ** 2)) < 0.05
    water = a.sel(endmember="water")
    assert float(water.isel(x=slice(0, 50)).mean()) > float(water.isel(x=slice(70, 100)).mean())


def test_training_scenes_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        datasets.training_scenes(tmp_path / "nope")
