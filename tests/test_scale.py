"""Tiled Zarr repair on dask-distributed: equality with the in-memory repair, no seams, kill and resume."""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
import rioxarray  # noqa: F401
import torch
import xarray as xr
from distributed import Client, LocalCluster

from anyband_xr import datasets, masks, selfcheck
from anyband_xr.io.zarr import open_zarr, write_zarr
from anyband_xr.repair import repair
from anyband_xr.scale import inputs, repair_zarr
from anyband_xr.scale.layout import TileGrid
from anyband_xr.scale.store import WRITES, tile_writes

SETTINGS = {"method": "diffusion", "steps": 4, "tile": 32, "overlap": 8, "samples": 2, "seed": 3}
REGION = SETTINGS["tile"] - 2 * SETTINGS["overlap"]
CLI_ARGS = ["--method", "diffusion", "--steps", "4", "--tile", "32", "--overlap", "8", "--samples", "2", "--seed", "3",
            "--workers", "2"]


def tiled_scene() -> xr.DataArray:
    """A 64 x 96 pixel mosaic of 2 x 2 copies of a real 32 x 48 Jasper Ridge crop, UTM coords and CRS."""
    crop = datasets.jasper_ridge().isel(y=slice(10, 42), x=slice(30, 78))
    values = np.tile(crop.values, (1, 2, 2))
    ny, nx = values.shape[1:]
    coords = {"wavelength": crop.wavelength, "y": 4_140_000.0 - 30.0 * np.arange(ny), "x": 560_000.0 + 30.0 * np.arange(nx)}
    scene = xr.DataArray(values, dims=crop.dims, coords=coords, attrs=crop.attrs, name="reflectance")
    return scene.rio.write_crs("EPSG:32610")


def realistic_mask(scene: xr.DataArray) -> xr.DataArray:
    """True = missing: 30% of bands lost everywhere, a dead detector column, a saturated SWIR patch."""
    b, ny, nx = scene.shape
    mask = np.zeros((b, ny, nx), dtype=bool)
    mask[np.random.default_rng(0).choice(b, int(0.3 * b), replace=False)] = True
    mask[100:140, :, 40] = True
    mask[scene.wavelength.values > 1800, 10:26, 50:75] = True
    return xr.DataArray(mask, dims=scene.dims, coords=scene.coords, name="missing")


@pytest.fixture(scope="module")
def scene():
    return tiled_scene()


@pytest.fixture(scope="module")
def mask(scene):
    return realistic_mask(scene)


@pytest.fixture(scope="module")
def stores(tmp_path_factory, scene, mask):
    root = tmp_path_factory.mktemp("scale")
    write_zarr(scene.where(~mask), root / "scene.zarr", chunks={"y": 24, "x": 40})
    mask.to_dataset().to_zarr(root / "mask.zarr", zarr_format=3, consolidated=False)
    return root


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def reference(stores, client):
    """The uninterrupted job, repaired on the 2-worker cluster."""
    out = stores / "reference.zarr"
    summary = repair_zarr(stores / "scene.zarr", out, mask=stores / "mask.zarr", scheduler=client, progress=False, **SETTINGS)
    assert summary.tiles_done == summary.tiles_total == 24 and summary.pixels == 64 * 96
    return xr.open_zarr(out, consolidated=False, decode_coords="all").load()


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def assert_same_output(path, expected: xr.Dataset) -> None:
    out = xr.open_zarr(path, consolidated=False, decode_coords="all").load()
    for name in ("reflectance", "std"):
        np.testing.assert_array_equal(bits(out[name].values), bits(expected[name].values))
    np.testing.assert_array_equal(out[WRITES].values, 1)


def test_grid_regions_tile_the_scene_once_and_windows_add_the_halo():
    grid = TileGrid(70, 45, 16, 8)
    cover = np.zeros((70, 45), dtype=int)
    for iy, ix in grid:
        ys, xs = grid.region(iy, ix)
        assert ys.start % 16 == 0 and xs.start % 16 == 0
        cover[ys, xs] += 1
        wy, wx = grid.window(iy, ix)
        assert wy.start == max(ys.start - 8, 0) and wx.stop == min(xs.stop + 8, 45)
    assert grid.shape == (5, 3) and len(grid) == 15 and (cover == 1).all()


def test_tiled_job_equals_in_memory_repair(reference, scene, mask):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        lazy = scene.where(~mask).chunk({"y": REGION, "x": REGION})
        expected = repair(lazy, mask, return_std=True, **SETTINGS).compute(scheduler="synchronous")
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(bits(reference["reflectance"].values), bits(expected["reflectance"].values))
    np.testing.assert_array_equal(bits(reference["std"].values), bits(expected["std"].values))
    observed = ~mask.values
    np.testing.assert_array_equal(bits(reference["reflectance"].values[observed]), bits(scene.values[observed]))
    assert np.isfinite(reference["reflectance"].values).all()


def test_output_keeps_coords_crs_attrs_and_provenance(reference, scene):
    out = reference["reflectance"]
    assert out.dims == scene.dims and out.rio.crs == scene.rio.crs
    for name in ("wavelength", "y", "x"):
        np.testing.assert_array_equal(out[name].values, scene[name].values)
    assert out.attrs["units"] == scene.attrs["units"]
    for record in (out.attrs, reference.attrs):
        assert record["anyband_method"] == "diffusion" and record["anyband_steps"] == 4
        assert record["anyband_samples"] == 2 and len(record["anyband_weights_sha256"]) == 64
    assert reference["std"].shape == out.shape and (reference["std"].values[~np.isnan(reference["std"].values)] >= 0).all()
    assert out.encoding["chunks"] == (scene.sizes["wavelength"], REGION, REGION)
    np.testing.assert_array_equal(reference[WRITES].values, 1)


def test_no_seams_at_region_borders(reference, scene, mask):
    """The error's jump between neighbouring pixels is no larger across region borders than inside regions."""
    error = np.where(mask.values, reference["reflectance"].values - scene.values, np.nan)
    for axis in (1, 2):
        jumps = np.nanmean(np.abs(np.diff(error, axis=axis)), axis=(0, 3 - axis))
        border = (np.arange(jumps.size) + 1) % REGION == 0
        assert np.nanmean(jumps[border]) < 1.5 * np.nanmean(jumps[~border]), (axis, jumps[border], jumps[~border])


def test_linear_job_with_nan_as_missing_equals_repair(stores, scene, mask, client):
    out = stores / "linear.zarr"
    summary = repair_zarr(stores / "scene.zarr", out, method="linear", tile=48, overlap=8, scheduler=client, progress=False)
    assert summary.tiles_total == 2 * 3
    expected = repair(scene.where(~mask), method="linear")
    np.testing.assert_array_equal(bits(open_zarr(out, "reflectance").values), bits(expected.values))


def test_job_on_a_scheduler_address_reports_progress_dashboard_and_summary(stores, scene, mask, client, capsys):
    out = stores / "address.zarr"
    summary = repair_zarr(stores / "scene.zarr", out, method="linear", tile=48, overlap=8,
                          scheduler=client.scheduler.address, progress=True)
    printed = capsys.readouterr()
    assert f"6 of 6 tiles to repair; dashboard {client.dashboard_link}" in printed.out
    assert "anyband repair" in printed.err and "6/6" in printed.err  # the tqdm bar
    assert summary.dashboard == client.dashboard_link and summary.pixels_per_second > 0
    assert re.fullmatch(r"6 tiles repaired, 0 already done, 6 in all; 6144 pixels in [\d.]+ s \([\d,]+ pixels/s\); "
                        r"0 pixels without any observed band left NaN", str(summary))
    expected = repair(scene.where(~mask), method="linear")
    np.testing.assert_array_equal(bits(open_zarr(out, "reflectance").values), bits(expected.values))


def test_bad_tiling_and_oversized_in_memory_masks_are_refused_clearly(stores, scene, client, monkeypatch):
    with pytest.raises(ValueError, match="larger than twice the overlap"):
        repair_zarr(stores / "scene.zarr", stores / "bad.zarr", tile=32, overlap=16, scheduler=client, progress=False)
    monkeypatch.setattr(inputs, "MAX_MASK_BYTES", 1000)
    with pytest.raises(ValueError, match="Write it to a Zarr store"):
        repair_zarr(stores / "scene.zarr", stores / "bad.zarr", mask=xr.zeros_like(scene, dtype=bool), scheduler=client,
                    progress=False)
    assert not (stores / "bad.zarr").exists()


def test_existing_job_needs_resume_and_the_same_settings(stores, reference, client):
    out = stores / "reference.zarr"
    with pytest.raises(FileExistsError, match="resume"):
        repair_zarr(stores / "scene.zarr", out, mask=stores / "mask.zarr", scheduler=client, progress=False, **SETTINGS)
    with pytest.raises(ValueError, match="steps: stored 4, now 5"):
        repair_zarr(stores / "scene.zarr", out, mask=stores / "mask.zarr", scheduler=client, progress=False,
                    resume=True, **{**SETTINGS, "steps": 5})
    summary = repair_zarr(stores / "scene.zarr", out, mask=stores / "mask.zarr", scheduler=client, progress=False,
                          resume=True, **SETTINGS)
    assert summary.tiles_done == 0 and summary.tiles_skipped == 24


def _cli(stores, out, *extra):
    cmd = [sys.executable, "-m", "anyband_xr.cli", "repair", str(stores / "scene.zarr"), str(out),
           "--mask", str(stores / "mask.zarr"), *CLI_ARGS, *extra]
    return cmd


def _done(out) -> np.ndarray | None:
    try:
        return tile_writes(out)
    except Exception:  # the store is still being created, or a marker is mid-write
        return None


def _wait_for_tiles(process, out, at_least: int = 1, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = _done(out)
        if done is not None and (done > 0).sum() >= at_least:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    raise TimeoutError("no tile finished in time")


@pytest.mark.slow
def test_killed_job_resumes_to_identical_output(stores, reference):
    out = stores / "killed.zarr"
    job = subprocess.Popen(_cli(stores, out), start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_tiles(job, out)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    done_before = int((tile_writes(out) > 0).sum())
    assert 1 <= done_before < 24
    resumed = subprocess.run(_cli(stores, out, "--resume"), capture_output=True, text=True, check=True)
    counts = re.search(r"(\d+) tiles repaired, (\d+) already done, (\d+) in all", resumed.stdout)
    assert counts and tuple(map(int, counts.groups())) == (24 - done_before, done_before, 24), resumed.stdout
    assert_same_output(out, reference)


@pytest.mark.slow
def test_job_survives_a_killed_worker(stores, reference):
    out = stores / "worker_killed.zarr"
    job = subprocess.Popen(_cli(stores, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_tiles(job, out)
    workers = [p for p in psutil.Process(job.pid).children() if "spawn_main" in " ".join(p.cmdline())]
    assert len(workers) == 2
    workers[0].kill()
    stdout, stderr = job.communicate(timeout=600)
    assert job.returncode == 0, stderr
    assert "24 tiles repaired, 0 already done" in stdout
    assert_same_output(out, reference)


def test_auto_job_checks_once_and_equals_the_in_memory_auto_repair(stores, scene, client):
    """method="auto" in a Zarr job: the self-check runs once on a central crop before any tile, so the whole scene
    uses one method, the one the in-memory repair picks; the choice and the scores are in the store's attrs. With
    samples > 1 its std is the calibrated one of the in-memory repair (never the zero spread of a classical fill)."""
    dropped = masks.dropout(scene, 0.3, seed=1)
    write_zarr(scene.where(~dropped), stores / "dropout.zarr", chunks={"y": 32, "x": 48})
    out = stores / "auto.zarr"
    settings = {"method": "auto", "tile": 48, "overlap": 8, "samples": 2}
    repair_zarr(stores / "dropout.zarr", out, scheduler=client, progress=False, **settings)
    stored = xr.open_zarr(out, consolidated=False)
    expected = repair(scene.where(~dropped), return_std=True, **settings)
    assert stored.attrs["anyband_method"] == expected.attrs["anyband_method"] == "auto:lowrank"
    assert stored.attrs["anyband_selfcheck_rmse_lowrank"] == expected.attrs["anyband_selfcheck_rmse_lowrank"]
    np.testing.assert_array_equal(bits(stored["reflectance"].values), bits(expected["reflectance"].values))
    np.testing.assert_array_equal(bits(stored["std"].values), bits(expected["std"].values))
    assert stored["std"].attrs["long_name"] == expected["std"].attrs["long_name"] == selfcheck.CALIBRATED_STD
    assert (stored["std"].values[dropped.values] > 0).all() and (stored["std"].values[~dropped.values] == 0).all()


def test_a_diffusion_job_on_dropout_corrects_the_scene_completion_of_the_in_memory_repair(stores, scene, client):
    """Per-value loss: the job fits the scene's low-rank prior once on the cluster, and every tile's model corrects
    its completion, bit for bit as the in-memory repair does."""
    dropped = masks.dropout(scene, 0.3, seed=2)
    write_zarr(scene.where(~dropped), stores / "dropout_model.zarr", chunks={"y": 32, "x": 48})
    out = stores / "dropout_model_out.zarr"
    settings = {**SETTINGS, "samples": 1}
    repair_zarr(stores / "dropout_model.zarr", out, scheduler=client, progress=False, **settings)
    stored = xr.open_zarr(out, consolidated=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        expected = repair(scene.where(~dropped), **settings)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(bits(stored["reflectance"].values), bits(expected.values))
    pchip = repair(scene.where(~dropped), method="pchip")
    error = {name: float(np.sqrt(((out - scene) ** 2).where(dropped).mean())) for name, out in
             (("model", expected), ("pchip", pchip))}
    assert error["model"] < 0.8 * error["pchip"]


def test_a_classical_job_writes_the_calibrated_std_of_the_in_memory_repair(stores, scene, client):
    """A named classical method with std=True (one sample): the job self-checks it once, as
    repair(..., return_std=True) does, and writes that calibrated std (NaN in a pixel without any observed band),
    equal bit for bit. The spread of the diffusion model needs samples > 1: std=True with one sample is refused."""
    observed = scene.where(~masks.band_loss(scene, 0.3, seed=2))
    observed[:, 5, 7] = np.nan
    write_zarr(observed, stores / "pchip.zarr", chunks={"y": 32, "x": 48})
    out = stores / "pchip_out.zarr"
    with pytest.raises(ValueError, match="needs samples > 1"):
        repair_zarr(stores / "pchip.zarr", out, method="diffusion", std=True, scheduler=client, progress=False)
    repair_zarr(stores / "pchip.zarr", out, method="pchip", std=True, scheduler=client, progress=False)
    stored = xr.open_zarr(out, consolidated=False)
    expected = repair(observed, method="pchip", return_std=True)
    for name in ("reflectance", "std"):
        np.testing.assert_array_equal(bits(stored[name].values), bits(expected[name].values))
    assert stored["std"].attrs["long_name"] == stored.attrs["anyband_std"] == selfcheck.CALIBRATED_STD
    assert np.isnan(stored["std"].values[:, 5, 7]).all() and stored.attrs["anyband_selfcheck_method"] == "pchip"
    with pytest.raises(ValueError, match="std variable .*: stored 'calibrated standard deviation .*', now 'none'"):
        repair_zarr(stores / "pchip.zarr", out, method="pchip", resume=True, scheduler=client, progress=False)


def test_auto_job_with_nothing_to_repair_copies_the_scene(stores, scene, client):
    """Only pixels without any observed band are missing (every method leaves them missing): the auto job runs no
    check and writes the scene as it is."""
    border = scene.copy()
    border[:, :2, :] = np.nan
    write_zarr(border, stores / "border.zarr", chunks={"y": 32, "x": 48})
    out = stores / "border_out.zarr"
    summary = repair_zarr(stores / "border.zarr", out, tile=48, overlap=8, scheduler=client, progress=False)
    stored = xr.open_zarr(out, consolidated=False)
    assert stored.attrs["anyband_method"] == "auto:none" and summary.empty_pixels == 2 * 96
    assert stored.attrs["anyband_selfcheck_status"].startswith("not run: nothing needed repair")
    np.testing.assert_array_equal(bits(stored["reflectance"].values), bits(border.values))


def test_auto_job_checks_where_the_mask_misses_values_off_the_centre(stores, scene, monkeypatch):
    """A patch of band loss off the centre only: the job's self-check runs on the window around it (16 x 16 here,
    to keep the test fast: the check runs in this process without a scheduler), as the in-memory repair's does, and
    the result equals the lazy in-memory repair bit for bit."""
    monkeypatch.setattr(selfcheck, "MAX_PIXELS", 256)
    mask = xr.zeros_like(scene, dtype=bool)
    mask[100:140, :20, 76:] = True  # rows 0:20, columns 76:96 (the central 16 x 16 crop is y 24:40, x 40:56)
    write_zarr(scene.where(~mask), stores / "patch.zarr", chunks={"y": 32, "x": 48})
    mask.to_dataset().to_zarr(stores / "patch_mask.zarr", zarr_format=3, consolidated=False)
    out = stores / "patch_out.zarr"
    settings = {"tile": 48, "overlap": 8, "steps": 4}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as on the job's workers
    try:
        repair_zarr(stores / "patch.zarr", out, mask=stores / "patch_mask.zarr", workers=1, progress=False, **settings)
        lazy = scene.where(~mask).chunk({"y": 32, "x": 32})
        expected = repair(lazy, mask, **settings).compute(scheduler="synchronous")
        checked = repair(scene.where(~mask), mask, **settings)
    finally:
        torch.set_num_threads(threads)
    stored = xr.open_zarr(out, consolidated=False, decode_coords="all").load()
    assert stored.attrs["anyband_selfcheck_window"] == checked.attrs["anyband_selfcheck_window"] == "y 4:20, x 76:92"
    assert stored.attrs["anyband_method"] == checked.attrs["anyband_method"] != "auto:none"
    chosen = checked.attrs["anyband_selfcheck_method"]
    assert stored.attrs[f"anyband_selfcheck_rmse_{chosen}"] == checked.attrs[f"anyband_selfcheck_rmse_{chosen}"]
    np.testing.assert_array_equal(bits(stored["reflectance"].values), bits(expected.values))
    np.testing.assert_array_equal(bits(stored["reflectance"].values[~mask.values]), bits(scene.values[~mask.values]))
