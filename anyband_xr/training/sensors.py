"""Hyperspectral sensor grids for training: fine VNIR imagers and full-range ~10 nm spectrometers.

Each ``GridSensor`` lists its band centres as segments (start, stop, step) in nm with a FWHM of ``fwhm_factor``
times the step (Gaussian SRFs), after the published band layouts, rounded (each draw jitters them anyway):

- fine VNIR: CASI-1500 (380-1050 nm, 2.4 nm), ROSIS (430-860 nm, 4 nm), DESIS (400-1000 nm, 2.55 nm), a 3 nm VNIR
  field/UAV imager (400-1000 nm) and a 5 nm one (400-900 nm);
- full range: AVIRIS classic (400-2500 nm, 10 nm), AVIRIS-NG (380-2510 nm, 5 nm), HYDICE (400-2500 nm, 3-4 nm in
  the blue to ~12 nm beyond 760 nm), EnMAP (420-1000 nm at 6.5 nm, 1000-2450 nm at 10 nm), EMIT (381-2493 nm,
  7.4 nm), PRISMA (400-1010 nm at 9.5 nm, 1010-2500 nm at 10 nm). Their water-vapour bands (``WATER_VAPOUR_NM``)
  are removed in most draws, as the products users repair are delivered.

A draw shifts the centres by up to half a step, scales the FWHM by ``fwhm_jitter`` and keeps the bands whose
SRF support (centre +- FWHM) lies inside the scene's range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Water-vapour absorption windows (nm) that full-range products remove; each draw moves the edges by up to
#: ``WATER_EDGE_JITTER_NM``.
WATER_VAPOUR_NM = ((1340.0, 1450.0), (1790.0, 1960.0))
WATER_EDGE_JITTER_NM = 15.0


@dataclass(frozen=True)
class GridSensor:
    """A hyperspectral band layout: ``segments`` of (start, stop, step) nm, FWHM = ``fwhm_factor`` * step."""

    name: str
    segments: tuple[tuple[float, float, float], ...]
    fwhm_factor: float = 1.1
    full_range: bool = False

    def bands(self) -> tuple[np.ndarray, np.ndarray]:
        """Band centres (B,) and FWHM (B,) in nm, ascending."""
        centres, fwhm = [], []
        for start, stop, step in self.segments:
            c = np.arange(start, stop + step / 2, step)
            centres.append(c)
            fwhm.append(np.full(c.size, step * self.fwhm_factor))
        return np.concatenate(centres), np.concatenate(fwhm)


HYPERSPECTRAL_SENSORS: tuple[GridSensor, ...] = (
    GridSensor("casi-1500", ((380.0, 1050.0, 2.4),), 1.5),
    GridSensor("rosis", ((430.0, 860.0, 4.0),), 1.0),
    GridSensor("desis", ((400.0, 1000.0, 2.55),), 1.4),
    GridSensor("vnir-imager-3nm", ((400.0, 1000.0, 3.0),), 1.2),
    GridSensor("vnir-imager-5nm", ((400.0, 900.0, 5.0),), 1.2),
    GridSensor("aviris-classic", ((400.0, 2500.0, 10.0),), 1.0, True),
    GridSensor("aviris-ng", ((380.0, 2510.0, 5.0),), 1.1, True),
    GridSensor("hydice", ((400.0, 520.0, 3.5), (524.0, 760.0, 7.0), (772.0, 2500.0, 12.0)), 1.0, True),
    GridSensor("enmap", ((420.0, 1000.0, 6.5), (1010.0, 2450.0, 10.0)), 1.2, True),
    GridSensor("emit", ((381.0, 2493.0, 7.4),), 1.15, True),
    GridSensor("prisma", ((400.0, 1010.0, 9.5), (1020.0, 2500.0, 10.0)), 1.1, True),
)


def water_vapour_bands(centres_nm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(B,) bool: the bands inside the water-vapour windows, with edges jittered by ``WATER_EDGE_JITTER_NM``."""
    out = np.zeros(centres_nm.size, dtype=bool)
    for lo, hi in WATER_VAPOUR_NM:
        lo, hi = lo + rng.uniform(-1, 1) * WATER_EDGE_JITTER_NM, hi + rng.uniform(-1, 1) * WATER_EDGE_JITTER_NM
        out |= (centres_nm >= lo) & (centres_nm <= hi)
    return out


def draw_grid(
    sensor: GridSensor,
    range_nm: tuple[float, float],
    rng: np.random.Generator,
    fwhm_jitter: tuple[float, float],
    p_water_removed: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Jittered band centres (B,) and FWHM (B,) nm of ``sensor`` inside ``range_nm``; a full-range sensor loses its
    water-vapour bands with probability ``p_water_removed``. B may be 0 when the sensor misses the range."""
    centres, fwhm = sensor.bands()
    step = np.gradient(centres) if centres.size > 1 else np.ones(1)
    centres = centres + rng.uniform(-0.5, 0.5) * step
    fwhm = fwhm * rng.uniform(*fwhm_jitter)
    keep = (centres - fwhm >= range_nm[0]) & (centres + fwhm <= range_nm[1])
    if sensor.full_range and rng.random() < p_water_removed:
        keep &= ~water_vapour_bands(centres, rng)
    return centres[keep], fwhm[keep]
