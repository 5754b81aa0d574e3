"""Miniatures of the benchmark commands (tiny crop or scene, one seed, two steps), so that they cannot rot."""

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from anyband_xr import datasets
from anyband_xr.cli import main
from anyband_xr.evaluation import quality, quality_report, reported, speed_report
from anyband_xr.evaluation.outputs import README_END, README_START
from anyband_xr.model import MCDUNet, ModelConfig
from anyband_xr.model.weights import save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("linear", "PCHIP", "Gaussian (ridge)", "low-rank (in-scene PPCA)", "AnyBand-Diff", "AnyBand-Diff w/o PGS",
           "linear (band centroids)", "Gaussian (band integrals)")


def _script(*args: str) -> subprocess.CompletedProcess:
    """Run a script of benchmarks/ with this checkout first on the path (as from a clean clone)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True)


def test_quality_command_writes_every_protocol_with_reported_numbers_beside(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n## Benchmarks\n\n{README_START}\nold\n{README_END}\n\nafter\n")
    main(["benchmark", "quality", "--out", str(tmp_path), "--seeds", "0", "--steps", "2", "--crop", "8", "8",
          "--readme", str(readme)])
    page = (tmp_path / "quality.md").read_text()
    record = json.loads((tmp_path / "quality.json").read_text())
    rows = record["rows"]
    assert "`anyband benchmark quality --scene jasper_ridge --out" in page and "--seeds 0 --steps 2" in page
    assert record["command"] in page and record["machine"] in page and "8 x 8 pixels from column 75 of 100" in page
    for title in quality_report.TITLES.values():
        assert f"### {title}" in page
    assert "### Ablations (paper Table 4)" in page and "### 5. Biophysical consistency" in page
    assert {r["method"] for r in rows} == set(METHODS) | {"PCHIP (band centroids)"}
    assert {r["protocol"] for r in rows} == set(quality_report.TITLES) and {r["seed"] for r in rows} == {0}
    assert page.count(reported.MARK) >= 3 + 6 + 1 and "not run: no weights trained without masked conditioning" in page
    for row in rows:  # every number on the page comes from a row
        assert all(math.isfinite(row[k]) for k in ("psnr", "rmse", "sam"))
        if row["protocol"] == "band loss":
            assert f"| {row['condition']} | {row['method']} | {row['psnr']:.2f} | {row['ssim']:.3f} |" in page
    assert (tmp_path / "quality.csv").read_text().count("\n") == len(rows) + 1
    text = readme.read_text()
    assert "old" not in text and text.endswith(f"{README_END}\n\nafter\n") and "| jasper_ridge | band loss | 10% |" in text


def test_quality_runs_the_weights_its_settings_name(tmp_path):
    untrained = MCDUNet(ModelConfig(base_channels=8, cam_channels=8, time_embed=16, channel_mults=(1, 2)))
    stem = save_checkpoint(untrained, tmp_path / "untrained", extra={"sampling": {"steps": 1}})
    truth = quality.evaluation_region(datasets.jasper_ridge(), (8, 8))
    settings = quality.QualitySettings(seeds=(0,), guidance=0.0, band_loss=(0.3,), dropout=(), gaps=(), generation=())
    case = next(quality.cases(truth, settings))
    methods = quality.methods(case.protocol)
    pchip = methods["PCHIP"](case, settings)
    shipped = methods[quality.MODEL](case, settings)
    named = methods[quality.MODEL](case, dataclasses.replace(settings, weights=str(stem)))
    np.testing.assert_allclose(named.values, pchip.values, atol=1e-5)  # a zero correction is the PCHIP interpolant
    assert np.abs(shipped.values - pchip.values).max() > 1e-3


def test_speed_command_times_both_models_and_writes_every_section(tmp_path, monkeypatch):
    monkeypatch.setattr(ModelConfig, "paper", classmethod(lambda cls: cls(base_channels=16)))  # a small stand-in
    main(["benchmark", "speed", "--out", str(tmp_path), "--tile", "32", "--steps", "2", "--repeats", "1",
          "--paper-repeats", "1", "--spectral-size", "0", "--tiled-size", "0"])  # those two: the script tests below
    page = (tmp_path / "speed.md").read_text()
    results = json.loads((tmp_path / "speed.json").read_text())["results"]
    assert [lat["model"] for lat in results["latency"]][:2] == ["default (shipped weights)", "paper size (random weights)"]
    for lat in results["latency"]:
        assert lat["pgs_ratio"] > 0 and len(lat["seconds"]["guided"]) == 1
        assert f"**{lat['pgs_ratio']:.3f}**" in page
    assert "operator 'sensor'" in page and "per tile, once: conditioning" in page and reported.MARK in page
    assert "Skipped (`--spectral-size 0`)" in page and "Skipped (`--tiled-size 0`)" in page
    results["spectral"] = [{"job": "read", "seconds": 2.0, "ratio_to_read": 1.0, "peak_rss_mib": 300.0, "runs": 3}]
    results["tiled"] = [{"method": "diffusion", "steps": 1, "workers": 2, "tiles": 9, "seconds": 4.0,
                         "pixels_per_second": 65536.0, "peak_rss_mib": [512.0, 640.0]}]
    filled = "\n".join(speed_report.document(results, {k: "x" for k in ("command", "machine", "provenance", "wall")}))
    assert "| read | 2.0 | **1.00** | 300 |" in filled and "Each job 3 times in alternating order" in filled
    assert "| diffusion | 1 | 2 | 9 | 4.0 | **65536** | 512, 640 |" in filled
    assert ("GPU: skipped" in page) == (results["gpu"] is None)
    assert "anyband benchmark speed --out" in page and "--tiled-size 0" in page


def test_scale_benchmark_script_reports_scaling_and_memory(tmp_path):
    _script("benchmarks/bench_scale.py", "--size", "64", "--bands", "10", "--methods", "linear", "--tile", "32",
            "--overlap", "8", "--workers", "1", "--workdir", str(tmp_path / "work"), "--out", str(tmp_path))
    page = (tmp_path / "scale.md").read_text()
    rows = json.loads((tmp_path / "scale.json").read_text())["rows"]
    assert [(r["area"], r["size"], r["tiles"]) for r in rows] == [("1/4", 32, 4), ("full", 64, 16)]
    assert f"- linear: time {rows[0]['time_ratio']:.3f}" in page and "adjusted" in page and "memory" in page
    assert "python benchmarks/bench_scale.py --size 64" in page


def test_spectral_benchmark_script_writes_ratios_to_plain_read(tmp_path):
    _script("benchmarks/bench_spectral.py", "--size", "32", "--bands", "10", "--repeats", "2", "--store",
            str(tmp_path / "s.zarr"), "--out", str(tmp_path))
    rows = json.loads((tmp_path / "spectral.json").read_text())["rows"]
    assert [r["job"] for r in rows] == ["read", "simulate", "index"] and rows[0]["ratio_to_read"] == 1.0
    assert all(r["runs"] == 2 for r in rows)
    assert f"| simulate | {rows[1]['seconds']:.1f} | {rows[1]['ratio_to_read']:.2f} |" in (tmp_path / "spectral.md").read_text()
