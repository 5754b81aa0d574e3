"""``anyband repair`` with the self-check: the validation table on stdout and the held-out error plot."""

import pytest
import xarray as xr

from anyband_xr import datasets, masks, selfcheck
from anyband_xr.cli import main
from anyband_xr.io import write_zarr
from anyband_xr.scale import repair_zarr, zarr_job


@pytest.fixture(scope="module")
def dropout_store(tmp_path_factory):
    """A 24 x 24 crop of the bundled scene with half of its values dropped (NaN), in a Zarr store."""
    root = tmp_path_factory.mktemp("cli")
    scene = datasets.jasper_ridge().isel(y=slice(0, 24), x=slice(0, 24)).astype("float32")
    write_zarr(scene.where(~masks.dropout(scene, 0.5, seed=0)), root / "scene.zarr", chunks={"y": 24, "x": 24})
    return root


def test_auto_prints_the_validation_table_and_draws_the_held_out_error(dropout_store, capsys):
    plot = dropout_store / "heldout.png"
    main(["repair", str(dropout_store / "scene.zarr"), str(dropout_store / "out.zarr"), "--nan-is-missing",
          "--method", "auto", "--steps", "1", "--tile", "24", "--overlap", "4", "--workers", "1",
          "--report-plot", str(plot)])
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("method"))
    assert "chosen: lowrank" in lines[header - 1]
    assert lines[header + 1].startswith("lowrank")  # first: the lowest RMSE, the chosen one among equals
    scores = {line.split()[0]: float(line.split()[1]) for line in lines[header + 1:header + 6]}
    assert scores["diffusion"] >= 0.99 * scores["lowrank"] and "not worth running the model" in lines[header - 1]
    assert {line.split()[0] for line in lines[header + 1:header + 6]} == {"diffusion", "pchip", "linear", "lowrank",
                                                                         "gaussian"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_without_a_self_check_says_so(dropout_store, capsys):
    main(["repair", str(dropout_store / "scene.zarr"), str(dropout_store / "linear.zarr"), "--nan-is-missing",
          "--method", "linear", "--workers", "1", "--report"])
    assert "no self-check in this job" in capsys.readouterr().out


def test_the_cli_and_repair_zarr_default_to_auto(dropout_store, capsys):
    scene = str(dropout_store / "scene.zarr")
    main(["repair", scene, str(dropout_store / "default_cli.zarr"), "--nan-is-missing", "--steps", "1", "--tile", "24",
          "--overlap", "4", "--workers", "1", "--std"])
    assert "chosen: lowrank" in capsys.readouterr().out  # the validation table, without --report
    repair_zarr(scene, dropout_store / "default_py.zarr", steps=1, tile=24, overlap=4, workers=1, progress=False)
    for name in ("default_cli.zarr", "default_py.zarr"):
        attrs = xr.open_zarr(dropout_store / name, consolidated=False).attrs
        assert attrs["anyband_method"] == "auto:lowrank" and attrs["anyband_selfcheck_method"] == "lowrank"
    with_std, without = (xr.open_zarr(dropout_store / n, consolidated=False) for n in ("default_cli.zarr",
                                                                                      "default_py.zarr"))
    assert with_std["std"].attrs["long_name"] == selfcheck.CALIBRATED_STD and "std" not in without  # --std


def test_auto_checks_the_output_store_and_the_region_before_its_self_check(dropout_store, monkeypatch):
    """The self-check runs the model on a crop: what can fail without it fails first (a region the model cannot
    use fails whatever the check would choose)."""
    monkeypatch.setattr(zarr_job, "_check_window", lambda *args: pytest.fail("the self-check ran"))
    scene = dropout_store / "scene.zarr"
    taken = dropout_store / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("not a store")
    with pytest.raises(FileExistsError, match="not a repair job store"):
        repair_zarr(scene, taken, tile=24, overlap=4, progress=False)
    with pytest.raises(ValueError, match="multiple of the model's region side"):
        repair_zarr(scene, dropout_store / "region.zarr", tile=24, overlap=4, region=10, progress=False)
    assert not (dropout_store / "region.zarr").exists()
