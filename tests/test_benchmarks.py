"""Miniatures of the benchmark commands (tiny crop or scene, one seed, two steps), so that they cannot rot."""

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from anyband_xr import datasets, selfcheck
from anyband_xr.cli import main
from anyband_xr.evaluation import quality, quality_report, reported, speed_report
from anyband_xr.evaluation.outputs import README_END, README_START
from anyband_xr.model import MCDUNet, ModelConfig
from anyband_xr.model.weights import save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("linear", "PCHIP", "Gaussian (ridge)", "low-rank (in-scene PPCA)", "AnyBand-Diff", "AnyBand-Diff w/o PGS",
           "default (auto)", "linear (band centroids)", "Gaussian (band integrals)")


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
    _check_default_rows_and_table(rows, page)
    assert quality_report.DEFAULT_NOTE in text and "The default repair against the best classical method on" in text


def _check_default_rows_and_table(rows, page):
    """The default repair (auto) on every repair protocol, not generation, with what it chose; its table row per case
    against the best classical method (highest PSNR on the missing values), its tally; the headline's best baseline
    is never the default nor the model."""
    default = [r for r in rows if r["method"] == quality.DEFAULT]
    assert {r["protocol"] for r in default} == {quality.BAND_LOSS, quality.DROPOUT, quality.GAP}
    assert len(default) == len({(r["protocol"], r["condition"]) for r in rows if r["protocol"] != quality.GENERATION})
    assert all(r["chosen"] in selfcheck.CANDIDATES for r in default)
    assert all("chosen" not in r for r in rows if r["method"] != quality.DEFAULT)
    for r in default:
        case = (r["scene"], r["protocol"], r["condition"])
        same = [o for o in rows if (o["scene"], o["protocol"], o["condition"]) == case]
        best = max((o for o in same if quality.is_classical(o["method"])),
                   key=lambda o: (o["psnr_missing"], o["method"]))
        gain = r["psnr_missing"] - best["psnr_missing"]
        assert (f"| {' | '.join(case)} | {best['method']} | {best['psnr_missing']:.2f} | "
                f"{r['psnr_missing']:.2f} | {gain:.2f} | {r['chosen']} |") in page
    assert quality_report.DEFAULT_NOTE in page
    assert page.count("The default repair against the best classical method on") == 1
    assert f"on {len(default)} cases:" in quality_report.default_tally(rows)
    classical = {"linear", "PCHIP", "Gaussian (ridge)", quality.LOW_RANK, "linear (band centroids)",
                 "PCHIP (band centroids)", "Gaussian (band integrals)"}
    assert {c.baseline for c in quality_report.comparisons(rows)} <= classical


def _row(method, psnr, seed=0, condition="30%", **extra):
    return {"scene": "s", "protocol": quality.DROPOUT, "condition": condition, "method": method, "seed": seed,
            "psnr_missing": psnr, "rmse_missing": 10 ** (-psnr / 20), **extra}


def test_the_default_repair_is_judged_against_the_best_classical_method_and_is_never_a_baseline():
    rows = [
        # 30%: PCHIP is the best classical method; the default beats it by 1.5 and 2.5 dB (chose the model)
        _row("linear", 30.0), _row("PCHIP", 31.0), _row(quality.MODEL, 33.0),
        _row(quality.DEFAULT, 32.5, chosen="diffusion"),
        _row("linear", 30.0, seed=1), _row("PCHIP", 31.0, seed=1), _row(quality.MODEL, 33.0, seed=1),
        _row(quality.DEFAULT, 33.5, seed=1, chosen="diffusion"),
        # 50%: the default is the lowest error of all, but only the classical methods compete for best baseline;
        # it loses 0.5 dB to linear there (chose pchip), and is even on 70% (chose linear, the best one)
        _row("linear", 28.0, condition="50%"), _row("PCHIP", 27.0, condition="50%"),
        _row(quality.MODEL, 26.0, condition="50%"), _row(quality.DEFAULT, 27.5, condition="50%", chosen="pchip"),
        _row("linear", 25.0, condition="70%"), _row(quality.MODEL, 24.0, condition="70%"),
        _row(quality.DEFAULT, 25.0, condition="70%", chosen="linear"),
    ]
    rows[11]["rmse_missing"] = 1e-6  # the default's error: lowest of the case, still not the headline's baseline
    assert [c.baseline for c in quality_report.comparisons(rows)] == ["PCHIP", "linear", "linear"]
    found = quality_report.default_comparisons(rows)
    assert [(c.condition, c.baseline, c.gain_db, c.chosen) for c in found] == [
        ("30%", "PCHIP", [1.5, 2.5], ["diffusion", "diffusion"]), ("50%", "linear", [-0.5], ["pchip"]),
        ("70%", "linear", [0.0], ["linear"])]
    lines = quality_report.default_table(rows)
    assert "| s | dropout | 30% | PCHIP | 31.00 ± 0.00 | 33.00 ± 0.50 | 2.00 ± 0.50 | diffusion ×2 |" in lines
    assert "| s | dropout | 50% | linear | 28.00 | 27.50 | -0.50 | pchip |" in lines
    line = quality_report.default_tally(rows)
    assert "on 3 cases: 1 wins, 1 even (within 0.01 dB), 1 losses; worst case -0.50 dB (s, dropout 50%)" in line
    assert "mean gain +0.50 dB" in line and "chosen: diffusion 2, pchip 1, linear 1 (of 4 repairs)" in line
    assert line.endswith("**not met**.")
    better = [{**r, "psnr_missing": r["psnr_missing"] + 2.0} if r["method"] == quality.DEFAULT else r for r in rows]
    assert quality_report.default_tally(better).endswith(": met.")  # worst +1.5 dB, mean +2.5 dB
    assert quality_report.default_lines([r for r in rows if r["method"] != quality.DEFAULT]) == []


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
    assert [case["mask"] for case in results["auto"]] == ["band loss 30%", "dropout 30%"]  # the self-check's cost
    for case in results["auto"]:
        assert f"| {case['mask']} | auto (chose {case['chosen'].split(':')[-1]}) |" in page and case["ratio"] > 0


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
