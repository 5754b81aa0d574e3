"""Plots on the bundled real scene (Agg backend): what each function draws is the data it was given."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402

import anyband_xr  # noqa: E402,F401
from anyband_xr import masks, plot  # noqa: E402
from anyband_xr.datasets import jasper_ridge  # noqa: E402
from anyband_xr.spectral import SpectralAxisError  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def scene() -> xr.DataArray:
    return jasper_ridge().isel(y=slice(0, 12), x=slice(80, 92))


@pytest.fixture(scope="module")
def mask(scene) -> xr.DataArray:
    return masks.combine(masks.spectral_gap(scene, 1000, 1250), masks.band_loss(scene, 0.1, seed=0))


@pytest.fixture(scope="module")
def repaired(scene, mask) -> xr.DataArray:
    return scene.where(~mask).anyband.repair(mask, method="pchip")


def _finite(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


def test_spectra_draws_repair_truth_uncertainty_and_missing_bands(scene, mask, repaired):
    std = xr.full_like(repaired, 0.01)
    ax = repaired.anyband.plot.spectra([(2, 3), (7, 9)], truth=scene, mask=mask, std=std)
    lines = ax.get_lines()
    assert len(lines) == 4  # spectrum + truth per pixel
    np.testing.assert_allclose(_finite(lines[0].get_ydata()), repaired.isel(y=2, x=3).values, rtol=1e-6)
    np.testing.assert_allclose(_finite(lines[1].get_ydata()), scene.isel(y=2, x=3).values, rtol=1e-6)
    assert lines[1].get_linestyle() == "--"
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2
    top = bands[0].get_paths()[0].vertices[:, 1].max()
    assert top == pytest.approx(float(repaired.isel(y=2, x=3).max()) + 0.02, rel=1e-5)
    runs = plot._runs(mask.values)
    spans = [p for p in ax.patches]
    assert len(spans) == len(runs)
    nm = scene["wavelength"].values
    inside = nm[(nm >= 1000) & (nm <= 1250)]
    gap = [p for p in spans if p.get_x() < 1100 < p.get_x() + p.get_width()]
    assert len(gap) == 1 and gap[0].get_x() < inside[0] and gap[0].get_x() + gap[0].get_width() > inside[-1]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"missing", "truth", "± 2 std", "y=2, x=83"} <= set(labels)
    assert ax.get_xlabel() == "wavelength (nm)" and ax.get_ylabel() == scene.attrs["units"]


def test_spectra_picks_pixels_by_label_or_position_and_breaks_at_spectral_gaps(scene):
    by_position = scene.anyband.plot.spectra([(0, 4)]).get_lines()[0].get_ydata()
    by_label = scene.anyband.plot.spectra([{"y": 0, "x": 84}]).get_lines()[0].get_ydata()
    np.testing.assert_array_equal(by_position, by_label)
    nm = scene["wavelength"].values
    gaps = int((np.diff(nm) > plot.GAP_FACTOR * np.median(np.diff(nm))).sum())
    assert gaps >= 2 and np.isnan(by_position).sum() == gaps  # the removed water-vapour bands
    with pytest.raises(ValueError, match="labels"):
        scene.anyband.plot.spectra([(0, 0)], labels=["a", "b"])


def test_spectra_asks_to_select_extra_dims(scene):
    stacked = xr.concat([scene, scene], dim="time")
    with pytest.raises(ValueError, match="isel\\(time=0\\)"):
        stacked.anyband.plot.spectra([(0, 0)])


def test_error_map_shows_the_per_pixel_rmse_over_missing_values(scene, mask, repaired):
    ax = repaired.anyband.plot.error_map(scene, mask=mask)
    image = next(a for a in ax.get_children() if isinstance(a, AxesImage))
    expected = np.sqrt(((repaired - scene) ** 2).where(mask).mean("wavelength")).values
    np.testing.assert_allclose(np.asarray(image.get_array()), expected, rtol=1e-5)
    assert image.get_clim()[0] == 0.0
    colorbar = ax.figure.axes[-1]
    assert colorbar.get_ylabel() == f"RMSE ({scene.attrs['units']})"


def test_error_map_angles_in_degrees_and_bad_metric(scene, repaired):
    ax = scene.anyband.plot.error_map(scene * 2.0, metric="sam")
    image = next(a for a in ax.get_children() if isinstance(a, AxesImage))
    np.testing.assert_allclose(np.asarray(image.get_array()), 0.0, atol=1e-3)
    assert ax.figure.axes[-1].get_ylabel() == "spectral angle (deg)"
    with pytest.raises(ValueError, match="metric"):
        repaired.anyband.plot.error_map(scene, metric="psnr")


def test_error_maps_share_one_colour_scale(scene, mask, repaired):
    linear = scene.where(~mask).anyband.repair(mask, method="linear")
    fig = plot.error_maps({"linear": linear, "pchip": repaired}, scene, mask=mask, metric="mae")
    images = [next(a for a in ax.get_children() if isinstance(a, AxesImage)) for ax in fig.axes[:2]]
    assert images[0].get_clim() == images[1].get_clim()
    assert fig.axes[0].get_title().startswith("linear\nmean ")
    assert len(fig.axes) == 3  # two maps and one colour bar


def test_rgb_stretches_the_bands_nearest_the_requested_wavelengths(scene):
    ax = scene.anyband.plot.rgb("false")
    image = np.asarray(ax.get_images()[0].get_array())[..., :3]  # xarray adds an alpha channel
    assert image.shape == (12, 12, 3) and image.min() >= 0.0 and image.max() <= 1.0
    nm = scene["wavelength"].values
    picked = plot.rgb_bands(scene, "false")
    assert [abs(nm[i] - w) for i, w in zip(picked, plot.PRESETS["false"])] == [
        np.abs(nm - w).min() for w in plot.PRESETS["false"]
    ]
    assert ax.get_title() == "RGB = " + ", ".join(f"{nm[i]:.0f}" for i in picked) + " nm"
    nir = scene.isel(wavelength=picked[0]).values
    low, high = np.percentile(nir, [2, 98])
    np.testing.assert_allclose(image[..., 0], np.clip((nir - low) / (high - low), 0, 1), atol=1e-6)


def test_rgb_on_simulated_multispectral_bands_and_errors(scene):
    s2 = scene.anyband.simulate("sentinel-2a")
    ax = s2.anyband.plot.rgb("true")
    assert ax.get_title() == "RGB = " + ", ".join(
        f"{s2['wavelength'].values[i]:.0f}" for i in plot.rgb_bands(s2, "true")
    ) + " nm"
    with pytest.raises(SpectralAxisError, match="2600"):
        scene.anyband.plot.rgb([2600, 860, 650])
    with pytest.raises(KeyError, match="preset"):
        scene.anyband.plot.rgb("natural")


def test_indices_side_by_side_with_reference_and_difference(scene, repaired):
    fig = repaired.anyband.plot.indices(["NDVI", "NDWI"], reference=scene, labels=("repaired", "truth"))
    maps = [ax for ax in fig.axes if ax.get_images()]
    assert len(maps) == 6
    ndvi = repaired.anyband.index("NDVI").values
    np.testing.assert_allclose(np.asarray(maps[0].get_images()[0].get_array()), ndvi, rtol=1e-5)
    titles = [ax.get_title() for ax in maps]
    assert "NDVI\nrepaired" in titles and "NDWI\nrepaired - truth" in titles
    single = scene.anyband.plot.indices("NDVI")
    assert len([ax for ax in single.axes if ax.get_images()]) == 1


def test_srf_draws_every_band_and_what_it_sees(scene):
    ax = scene.anyband.plot.srf("sentinel-2a", pixel=(3, 3))
    right = next(a for a in ax.figure.axes if a is not ax)
    assert len(right.collections) == 13
    markers = ax.get_lines()[1]
    seen = scene.isel(y=3, x=3).anyband.simulate("sentinel-2a")
    np.testing.assert_allclose(markers.get_xdata(), seen["wavelength"].values)
    np.testing.assert_allclose(markers.get_ydata(), seen.values, rtol=1e-6)
    both = scene.anyband.plot.srf(["sentinel-2a", "landsat-8-oli"])
    assert [t.get_text() for t in both.get_legend().get_texts()] == [
        "scene mean", "sentinel-2a", "landsat-8-oli", "simulated bands"
    ]


def test_plot_namespace_reads_like_xarray(scene):
    namespace = scene.anyband.plot
    assert isinstance(namespace, plot.PlotAccessor)
    for name in ("spectra", "error_map", "rgb", "indices", "srf"):
        method = getattr(namespace, name)
        assert method.__doc__ == getattr(plot, name).__doc__ and "Example" in method.__doc__


def test_matplotlib_is_imported_only_when_drawing():
    code = "import sys, anyband_xr, anyband_xr.plot; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
