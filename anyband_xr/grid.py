"""The canonical spectral grid shared by the diffusion model and the RTM emulator, the one linear interpolation
matrix between wavelength grids, and the held-out split."""

from __future__ import annotations

import numpy as np
from scipy.interpolate import interp1d

CANONICAL_START_NM = 400.0
CANONICAL_STOP_NM = 2500.0
CANONICAL_STEP_NM = 10.0
#: 400, 410, ..., 2500 nm: 211 canonical wavelengths.
CANONICAL_NM: np.ndarray = np.arange(CANONICAL_START_NM, CANONICAL_STOP_NM + CANONICAL_STEP_NM / 2, CANONICAL_STEP_NM)

#: Fraction of each scene's columns (the right-hand side along ``x``) held out from training for validation.
HOLDOUT_FRACTION = 0.25


def holdout_start(width: int) -> int:
    """First held-out column index for a scene ``width`` pixels wide (columns ``[start:]`` are validation).

    Example:
        >>> holdout_start(100)   # 75: Jasper Ridge's columns 75-99 are never trained on
    """
    return int(round(width * (1.0 - HOLDOUT_FRACTION)))


def interpolation_matrix(source_nm: np.ndarray, target_nm: np.ndarray) -> np.ndarray:
    """Matrix (len(target_nm), len(source_nm)) of linear interpolation with flat extrapolation, float64: the one
    map from values at ``source_nm`` (ascending, nm) to ``target_nm`` (nm) of the package."""
    source = np.asarray(source_nm, dtype=np.float64)
    eye = np.eye(source.size)
    return interp1d(source, eye, axis=0, bounds_error=False, fill_value=(eye[0], eye[-1]))(np.asarray(target_nm, np.float64))
