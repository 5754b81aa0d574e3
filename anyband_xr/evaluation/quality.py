"""The paper's quality protocols on the held-out columns of real scenes, against classical baselines.

Protocols: random whole-band loss (paper Table 2), per-value dropout (the training mask of Section 3.1),
contiguous spectral gaps, arbitrary multiband generation (Table 4) and biophysical consistency (Table 3, NDVI/NDWI
of every band-loss and generation result). Every score is over the scene's held-out columns
(:func:`anyband_xr.grid.holdout_start`), or over the whole scene for a scene the weights never saw
(``whole_scene``; :mod:`anyband_xr.evaluation.unseen`), on the scene's own wavelengths, one row per seed. The
Gaussian baselines condition the Gaussian spectral prior of the run's weights (``model.weights.gaussian_prior``:
the one their training run fitted on its own scenes, else the shipped one), as the model's prior hint does.

Beside the model and the baselines, :data:`DEFAULT` scores what a user gets by default: ``repair`` with
``method="auto"`` (the self-check picks among the model and the classical methods on the scene's own observed
values), on every repair protocol (not generation: ``generate`` has no auto); its rows say what it chose
(``chosen``). It is neither a classical baseline nor the model in the report's comparisons (:func:`is_classical`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from anyband_xr import baselines, datasets, indices, lowrank, masks, metrics, srf
from anyband_xr.demo import held_out
from anyband_xr.evaluation.extra_baselines import gaussian_from_bands
from anyband_xr.generate import generate
from anyband_xr.srf import observation_responses
from anyband_xr.io.mat import read_mat
from anyband_xr.model.weights import gaussian_prior
from anyband_xr.repair import repair
from anyband_xr.simulate import simulate

BUNDLED = "jasper_ridge"
BAND_LOSS, DROPOUT, GAP, GENERATION = "band loss", "dropout", "spectral gap", "generation"
INDEX_NAMES = ("NDVI", "NDWI")
MODEL, MODEL_NO_PGS = "AnyBand-Diff", "AnyBand-Diff w/o PGS"
#: The package's default repair (``method="auto"``): scored on the repair protocols, the rows say what it chose.
DEFAULT = "default (auto)"
#: The in-scene baseline of per-value dropout: probabilistic PCA fitted on the region's observed entries.
LOW_RANK = "low-rank (in-scene PPCA)"
#: Contiguous gaps: width in nm placed at a seeded random position, or the whole SWIR (from 1000 nm on).
GAPS: dict[str, float | None] = {"50 nm": 50.0, "150 nm": 150.0, "all SWIR (>= 1000 nm)": None}
SWIR_START_NM = 1000.0
#: Multiband inputs: Gaussian bands (centres, nm) of one FWHM, or a sensor of the SRF library.
BAND_SUBSETS: dict[str, tuple[float, ...]] = {
    "RGB (3 bands)": (460.0, 550.0, 650.0),
    "5 bands": (460.0, 550.0, 650.0, 850.0, 1650.0),
    "7 bands": (460.0, 550.0, 650.0, 720.0, 850.0, 1650.0, 2200.0),
}
SUBSET_FWHM_NM = 40.0
SENSORS: dict[str, str] = {"Sentinel-2A": "sentinel-2a", "Landsat-8 OLI": "landsat-8-oli"}


@dataclass(frozen=True)
class QualitySettings:
    """What a quality run does: seeds, sampler settings (``weights``: a weights stem, None for the shipped ones),
    the region (held-out columns, or the whole scene with ``whole_scene``) and its crop, and protocol conditions."""

    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int | None = None
    weights: str | None = None
    samples: int = 1
    guidance: float = 1.0
    crop: tuple[int, int] | None = None
    whole_scene: bool = False
    band_loss: tuple[float, ...] = (0.1, 0.3, 0.5)
    dropout: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7)
    gaps: tuple[str, ...] = tuple(GAPS)
    generation: tuple[str, ...] = (*BAND_SUBSETS, *SENSORS)


@dataclass(frozen=True)
class Case:
    """One protocol condition for one seed: the truth, and either a repair mask or a multispectral observation."""

    protocol: str
    condition: str
    seed: int
    truth: xr.DataArray
    mask: xr.DataArray | None = None
    observation: xr.DataArray | None = None


def load_scenes(specs: Sequence[str]) -> dict[str, xr.DataArray]:
    """Scenes by name: ``jasper_ridge`` (bundled), a ``.mat`` file, or a folder of scenes (every readable one)."""
    scenes: dict[str, xr.DataArray] = {}
    for spec in specs:
        path = Path(spec)
        if spec == BUNDLED:
            scenes[BUNDLED] = datasets.jasper_ridge()
        elif path.is_dir():
            scenes.update(datasets.training_scenes(path))
        elif path.suffix == ".mat":
            scenes[path.stem] = read_mat(path)
        else:
            raise ValueError(f"scene {spec!r}: give 'jasper_ridge' (bundled), a .mat file or a folder of scenes.")
    return scenes


def evaluation_region(scene: xr.DataArray, crop: tuple[int, int] | None, whole_scene: bool = False) -> xr.DataArray:
    """The held-out columns of ``scene`` (the whole scene with ``whole_scene``; top-left ``crop`` = (rows, columns)
    of it when given), float32."""
    region = scene if whole_scene else held_out(scene)
    if crop is not None:
        region = region.isel(y=slice(0, crop[0]), x=slice(0, crop[1]))
    return region.astype("float32").load()


def _full(mask: xr.DataArray, truth: xr.DataArray) -> xr.DataArray:
    return mask.broadcast_like(truth).transpose(*truth.dims).astype(bool)


def _gap_mask(truth: xr.DataArray, label: str, seed: int) -> xr.DataArray:
    width = GAPS[label]
    if width is None:
        return masks.spectral_gap(truth, SWIR_START_NM, float(truth["wavelength"].max()))
    return masks.random_gap(truth, width, seed=seed)


def _subset_srf(centres: tuple[float, ...]) -> xr.DataArray:
    return srf.gaussian(np.asarray(centres), np.full(len(centres), SUBSET_FWHM_NM))


def cases(truth: xr.DataArray, settings: QualitySettings) -> Iterator[Case]:
    """Every (protocol, condition, seed) case of a run on one evaluation region."""
    for seed in settings.seeds:
        for fraction in settings.band_loss:
            mask = _full(masks.band_loss(truth, fraction, seed=seed), truth)
            yield Case(BAND_LOSS, f"{fraction:.0%}", seed, truth, mask=mask)
        for fraction in settings.dropout:
            mask = _full(masks.dropout(truth, fraction, seed=seed), truth)
            yield Case(DROPOUT, f"{fraction:.0%}", seed, truth, mask=mask)
        for label in settings.gaps:
            yield Case(GAP, label, seed, truth, mask=_full(_gap_mask(truth, label, seed), truth))
        for label in settings.generation:
            sensor = SENSORS.get(label) or _subset_srf(BAND_SUBSETS[label])
            yield Case(GENERATION, label, seed, truth, observation=simulate(truth, sensor))


def _repair_with(method: str) -> Callable[[Case, QualitySettings], xr.DataArray]:
    def run(case: Case, settings: QualitySettings) -> xr.DataArray:
        # the run's weights: "gaussian" conditions the Gaussian prior fitted with them (model.weights.gaussian_prior)
        return repair(case.truth.where(~case.mask), case.mask, method=method, weights=settings.weights)

    return run


def _low_rank(case: Case, settings: QualitySettings) -> xr.DataArray:
    """The in-scene low-rank Gaussian (:mod:`anyband_xr.lowrank`), fitted on the region's observed entries alone."""
    values, missing = case.truth.where(~case.mask).values, case.mask.values
    model = lowrank.fit(values, missing, seed=case.seed)
    return case.truth.copy(data=model.complete(values, missing))


def _diffusion(guidance: float | None) -> Callable[[Case, QualitySettings], xr.DataArray]:
    def run(case: Case, settings: QualitySettings) -> xr.DataArray:
        scale = settings.guidance if guidance is None else guidance
        common = {"guidance": scale, "steps": settings.steps, "samples": settings.samples, "seed": case.seed,
                  "weights": settings.weights}
        if case.observation is None:
            return repair(case.truth.where(~case.mask), case.mask, method="diffusion", **common)
        out = generate(case.observation, target=case.truth["wavelength"].values, **common)
        return case.truth.copy(data=out.transpose(*case.truth.dims).values)

    return run


def _default(case: Case, settings: QualitySettings) -> xr.DataArray:
    """The default repair, as a user gets it: ``method="auto"`` with the run's sampler settings and weights (its
    attrs say what the self-check chose: ``anyband_method`` = ``"auto:<chosen>"``)."""
    return repair(case.truth.where(~case.mask), case.mask, method="auto", steps=settings.steps,
                  samples=settings.samples, guidance=settings.guidance, seed=case.seed, weights=settings.weights)


def chosen(pred: xr.DataArray) -> str | None:
    """The method ``method="auto"`` chose for ``pred`` (from ``attrs["anyband_method"]``); None for another method."""
    method = str(pred.attrs.get("anyband_method", ""))
    return method.split(":", 1)[1] if method.startswith("auto:") else None


def is_classical(method: str) -> bool:
    """Whether ``method`` (a row's label) is a classical baseline: neither the model (with or without PGS) nor the
    default repair, which may run the model."""
    return not method.startswith(MODEL) and method != DEFAULT


def _band_arrays(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """Band values (n_bands, P) and centroids (n_bands,) of the observation, sorted by centroid."""
    obs = case.observation
    order = np.argsort(obs["wavelength"].values, kind="stable")
    values = obs.transpose("band", ...).values.reshape(obs.sizes["band"], -1)[order]
    return values.astype(np.float64), obs["wavelength"].values[order].astype(np.float64)


def _interpolate_bands(method: str) -> Callable[[Case, QualitySettings], xr.DataArray]:
    def run(case: Case, settings: QualitySettings) -> xr.DataArray:
        values, centroids = _band_arrays(case)
        target = case.truth["wavelength"].values.astype(np.float64)
        out = baselines.interpolate(values, centroids, np.zeros(values.shape, bool), method, target_nm=target)
        return case.truth.copy(data=out.reshape(case.truth.shape).astype(case.truth.dtype))

    return run


def _gaussian_bands(case: Case, settings: QualitySettings) -> xr.DataArray:
    obs = case.observation
    values = obs.transpose("band", ...).values.reshape(obs.sizes["band"], -1)
    target = case.truth["wavelength"].values.astype(np.float64)
    out = gaussian_from_bands(values, observation_responses(obs), target, prior=gaussian_prior(settings.weights))
    return case.truth.copy(data=out.reshape(case.truth.shape).astype(case.truth.dtype))


def methods(protocol: str) -> dict[str, Callable[[Case, QualitySettings], xr.DataArray]]:
    """The methods compared on ``protocol``: baselines first, then the model with and without PGS."""
    model = {MODEL: _diffusion(None), MODEL_NO_PGS: _diffusion(0.0)}
    if protocol == GENERATION:
        return {
            "linear (band centroids)": _interpolate_bands("linear"),
            "PCHIP (band centroids)": _interpolate_bands("pchip"),
            "Gaussian (band integrals)": _gaussian_bands,
            **model,
        }
    classical = {"linear": _repair_with("linear"), "PCHIP": _repair_with("pchip"), "Gaussian (ridge)": _repair_with("gaussian")}
    if protocol == DROPOUT:
        classical[LOW_RANK] = _low_rank
    return {**classical, **model}


def scored_methods(protocol: str) -> dict[str, Callable[[Case, QualitySettings], xr.DataArray]]:
    """What a run scores on ``protocol``: :func:`methods`, then the default repair (:data:`DEFAULT`) on every
    repair protocol (``generate`` has no auto)."""
    return methods(protocol) if protocol == GENERATION else {**methods(protocol), DEFAULT: _default}


def index_scores(pred: xr.DataArray, truth: xr.DataArray) -> dict[str, float]:
    """NDVI / NDWI correlation and RMSE of ``pred`` against ``truth`` (paper Table 3)."""
    out = {}
    for name in INDEX_NAMES:
        p, t = indices.index(pred, name), indices.index(truth, name)
        out[f"{name.lower()}_cc"] = float(metrics.index_cc(p, t))
        out[f"{name.lower()}_rmse"] = float(metrics.index_rmse(p, t))
    return out


def score(pred: xr.DataArray, case: Case) -> dict[str, float]:
    """Scores of one result: over the whole region and the missing values alone, and the index scores."""
    mask = case.mask if case.mask is not None else xr.ones_like(case.truth, dtype=bool)
    result = {k: float(v) for k, v in metrics.scores(pred, case.truth, mask=mask).items()}
    if case.protocol in (BAND_LOSS, GENERATION):
        result |= index_scores(pred, case.truth)
    return result


def run(
    scenes: dict[str, xr.DataArray],
    settings: QualitySettings,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> list[dict[str, float | str | int]]:
    """Run every protocol and method (:func:`scored_methods`) on the evaluation region of every scene: one row per
    (case, method); the default repair's rows add ``chosen``, the method its self-check picked."""
    rows: list[dict[str, float | str | int]] = []
    for name, scene in scenes.items():
        truth = evaluation_region(scene, settings.crop, settings.whole_scene)
        for case in cases(truth, settings):
            for method, fill in scored_methods(case.protocol).items():
                start = time.perf_counter()
                pred = fill(case, settings)
                seconds = time.perf_counter() - start
                picked = chosen(pred) if method == DEFAULT else None
                row = {"scene": name, "protocol": case.protocol, "condition": case.condition, "method": method,
                       "seed": case.seed, **score(pred, case), "seconds": seconds,
                       **({"chosen": picked} if method == DEFAULT else {})}
                rows.append(row)
                log(f"{name} | {case.protocol} {case.condition} seed {case.seed} | {method}"
                    f"{f' (chose {picked})' if picked else ''}: {seconds:.1f} s")
    return rows
