"""Dual stochastic masking (paper 3.1, A.2): simulate a random sensor on a true patch, then drop values at random.

Stage 1 (sensor) picks, per sample, the scene's own grid, a random Gaussian hyperspectral grid, a multispectral
sensor from the SRF library, or (``p_hyperspectral``) a real hyperspectral band layout of
``anyband_xr.training.sensors`` (fine VNIR imagers, full-range spectrometers without their water-vapour bands),
each simulated from the true spectrum by SRF-weighted means over the scene's bands.
Stage 2 (dropout) removes values with ``p_drop ~ U[0.1, 0.7]``: Bernoulli over whole bands (the paper's band
dropout: every pixel loses the same bands, as in whole-band loss), or Bernoulli per value (scattered loss, where
neighbouring pixels still see the band), or neither; then, with some probability, a contiguous gap (30-400 nm), the
whole SWIR, or everything beyond a random cut at either end of the range (a sensor that covers less, e.g. VNIR-only
DESIS or CASI: short and long extrapolations). Every pixel keeps at least two observed values.
The training target is the true spectrum on the canonical grid, with a mask of the wavelengths the scene covers.
Simulated bands carry their SRF operator from the canonical grid (``Observation.band_integrals``), as
``generate`` passes the operator of real multispectral bands to the model's condition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from anyband_xr import srf
from anyband_xr.grid import CANONICAL_NM
from anyband_xr.grid import interpolation_matrix
from anyband_xr.training.sensors import HYPERSPECTRAL_SENSORS, draw_grid

#: A gap (nm) between neighbouring scene bands wider than this (e.g. removed water-vapour bands) is not a target.
MAX_TARGET_GAP_NM = 30.0
#: SRF support threshold, as a fraction of the peak response.
SUPPORT_FRACTION = 0.01
SWIR_START_NM = 1000.0
#: Weights of the smoothness and of the anchor to linear interpolation in the canonical target (``canonical_target``),
#: relative to the band-reproduction term (chosen on the three real scenes: round trip within 2% of the smallest).
TARGET_SMOOTHING = 1.0e-2
TARGET_ANCHOR = 1.0e-2
_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


@dataclass
class MaskingConfig:
    """Probabilities and ranges of dual stochastic masking (defaults follow the paper where it gives them).

    Hyperspectral layouts (``p_hyperspectral``; off by default, the shipped weights were trained without them):
    a sensor of ``HYPERSPECTRAL_SENSORS`` drawn uniformly, its FWHM scaled by ``hyperspectral_fwhm_jitter``, its
    water-vapour bands removed with probability ``p_water_removed``.

    Edge loss (``p_edge_missing``; off by default, the shipped weights were trained without it, see docs/model.md):
    at the red end (``p_red_edge``) everything above a cut drawn uniformly between ``edge_fraction`` of the way
    through the range and its last band, else everything below a cut in the first ``edge_fraction`` of the range.
    """

    p_own: float = 0.4
    p_gaussian: float = 0.3
    p_multispectral: float = 0.3
    p_hyperspectral: float = 0.0
    hyperspectral_fwhm_jitter: tuple[float, float] = (0.8, 1.3)
    p_water_removed: float = 0.9
    spacing_nm: tuple[float, float] = (5.0, 20.0)
    fwhm_factor: tuple[float, float] = (0.8, 1.5)
    p_drop: tuple[float, float] = (0.1, 0.7)
    p_band_dropout: float = 0.45
    p_value_dropout: float = 0.35
    p_gap: float = 0.3
    gap_nm: tuple[float, float] = (30.0, 400.0)
    p_swir_missing: float = 0.1
    p_edge_missing: float = 0.0
    p_red_edge: float = 0.75
    edge_fraction: float = 0.25
    min_observed: int = 2


@dataclass
class Observation:
    """A simulated observation: ``values`` (B, h, w), ``wavelength_nm`` (B,) ascending, ``missing`` (B, h, w) bool,
    and ``band_integrals`` (B, K): the SRF-weighted means mapping a canonical spectrum to the simulated bands, None
    where the bands are the scene's own (point samples)."""

    values: np.ndarray
    wavelength_nm: np.ndarray
    missing: np.ndarray
    sensor: str
    band_integrals: np.ndarray | None = None


def canonical_target(wavelength_nm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matrix (K, B) from a scene spectrum to its canonical-grid target, and ``valid`` (K,) bool.

    The model's output reaches a sensor's bands by linear interpolation from the canonical grid
    (``bridge.to_grid``), so the target is the canonical spectrum ``c`` whose interpolation ``L c`` reproduces the
    scene's bands: ``min |L c - x|^2 + TARGET_SMOOTHING |D2 c|^2 + TARGET_ANCHOR |c - linear(x)|^2``, with ``D2``
    second differences (unique where the bands are sparser than the grid) and a weak anchor to the linear
    interpolation of ``x`` (fixes the wavelengths no band constrains). Linear interpolation alone smooths band-to-band
    structure on the way there and back: on the 14 nm CASI grid of the Houston crop that round trip misses the
    bands by 0.017 reflectance (RMS), this target by 0.006.

    ``valid`` marks canonical wavelengths inside the scene's range and not inside a gap wider than 30 nm.
    """
    wl = np.asarray(wavelength_nm, dtype=np.float64)
    k = CANONICAL_NM.size
    right = np.clip(np.searchsorted(wl, CANONICAL_NM, side="right"), 1, wl.size - 1)
    left = right - 1
    linear = interpolation_matrix(wl, CANONICAL_NM)  # (K, B)
    to_bands = interpolation_matrix(CANONICAL_NM, wl)  # (B, K), as Condition.target_matrix
    second = np.diff(np.eye(k), 2, axis=0)
    normal = to_bands.T @ to_bands + TARGET_SMOOTHING * second.T @ second + TARGET_ANCHOR * np.eye(k)
    matrix = np.linalg.solve(normal, to_bands.T + TARGET_ANCHOR * linear)
    inside = (CANONICAL_NM >= wl[0]) & (CANONICAL_NM <= wl[-1])
    gap = (wl[right] - wl[left]) > MAX_TARGET_GAP_NM
    return matrix.astype(np.float32), inside & ~gap


def _normalise_rows(weights: np.ndarray) -> np.ndarray:
    return weights / weights.sum(axis=1, keepdims=True)


def _band_widths(wl: np.ndarray) -> np.ndarray:
    """Trapezoid integration widths (nm) of an irregular scene grid."""
    edges = np.concatenate([[wl[0]], (wl[1:] + wl[:-1]) / 2.0, [wl[-1]]])
    return np.diff(edges)


def _interpolation_operator(scene_nm: np.ndarray, fine_nm: np.ndarray) -> sparse.csr_matrix:
    """Sparse (F, B_s) linear interpolation from the scene grid to ``fine_nm`` (inside the scene's range)."""
    right = np.clip(np.searchsorted(scene_nm, fine_nm, side="right"), 1, scene_nm.size - 1)
    left = right - 1
    t = np.clip((fine_nm - scene_nm[left]) / (scene_nm[right] - scene_nm[left]), 0.0, 1.0)
    rows = np.arange(fine_nm.size)
    return sparse.csr_matrix(
        (np.concatenate([1.0 - t, t]), (np.concatenate([rows, rows]), np.concatenate([left, right]))),
        shape=(fine_nm.size, scene_nm.size),
    )


def gaussian_srf_matrix(centers_nm: np.ndarray, fwhm_nm: np.ndarray, scene_nm: np.ndarray) -> np.ndarray:
    """(B, B_s) row-normalised weights simulating Gaussian bands from a scene grid (SRF-weighted means).

    The SRF integrates the piecewise-linear spectrum through the scene's samples on a grid of at most 1 nm (a
    quarter of the narrowest FWHM), so a band narrower than the scene's sampling (e.g. 3 nm bands from the 10 nm
    canonical grid) interpolates between samples instead of copying the nearest one.
    """
    scene_nm = np.asarray(scene_nm, dtype=np.float64)
    fwhm_nm = np.asarray(fwhm_nm, dtype=np.float64)
    step = min(1.0, float(fwhm_nm.min()) / 4.0) if scene_nm.size > 1 else 1.0
    fine = np.arange(scene_nm[0], scene_nm[-1] + step / 2, step) if scene_nm.size > 1 else scene_nm
    sigma = fwhm_nm[:, None] * _FWHM_TO_SIGMA
    response = np.exp(-0.5 * ((fine[None, :] - np.asarray(centers_nm)[:, None]) / sigma) ** 2)
    weights = np.asarray((_interpolation_operator(scene_nm, fine).T @ response.T).T) if scene_nm.size > 1 else response
    nearest = np.abs(scene_nm[None, :] - np.asarray(centers_nm)[:, None]).argmin(axis=1)
    empty = weights.sum(axis=1) <= 1e-12
    weights[empty] = 0.0
    weights[empty, nearest[empty]] = 1.0
    return _normalise_rows(weights)


@dataclass
class Sensor:
    """A multispectral sensor: SRFs ``response`` (B, L) on ``srf_nm`` (L,) (1 nm grid) and band ``centroid_nm`` (B,)."""

    name: str
    srf_nm: np.ndarray
    response: np.ndarray
    centroid_nm: np.ndarray


@dataclass
class SensorLibrary:
    """Multispectral sensors for stage 1, with their weight matrices cached per scene grid."""

    sensors: list[Sensor]
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_package(cls) -> SensorLibrary:
        """All sensors of ``anyband_xr.srf``."""
        sensors = []
        for name in srf.list_sensors():
            da = srf.get(name)
            response = np.clip(np.asarray(da.transpose("band", "wavelength").values, dtype=np.float64), 0.0, None)
            sensors.append(Sensor(name, np.asarray(da["wavelength"].values, float), response, np.asarray(da["centroid"].values, float)))
        return cls(sensors)

    def matrix(self, sensor: Sensor, scene_nm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B', B_s) weights and (B',) centroids of the sensor's bands whose SRF support lies in the scene's range."""
        key = (sensor.name, scene_nm.tobytes())
        if key not in self._cache:
            support = sensor.response >= SUPPORT_FRACTION * sensor.response.max(axis=1, keepdims=True)
            lo = np.where(support, sensor.srf_nm[None, :], np.inf).min(axis=1)
            hi = np.where(support, sensor.srf_nm[None, :], -np.inf).max(axis=1)
            keep = (lo >= scene_nm[0]) & (hi <= scene_nm[-1])
            resampled = np.stack([np.interp(scene_nm, sensor.srf_nm, r, left=0.0, right=0.0) for r in sensor.response[keep]]) if keep.any() else np.zeros((0, scene_nm.size))
            weights = resampled * _band_widths(scene_nm)[None, :]
            usable = (weights > 0).sum(axis=1) >= 1
            order = np.argsort(sensor.centroid_nm[keep][usable])
            self._cache[key] = (_normalise_rows(weights[usable])[order].astype(np.float32), sensor.centroid_nm[keep][usable][order])
        return self._cache[key]


def _simulate(x0: np.ndarray, weights: np.ndarray) -> np.ndarray:
    b_s, h, w = x0.shape
    return (weights @ x0.reshape(b_s, -1)).reshape(-1, h, w).astype(np.float32)


def _dedupe(wavelength_nm: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop bands whose centroid repeats one already kept (the bridge needs strictly ascending wavelengths)."""
    keep = np.concatenate([[True], np.diff(wavelength_nm) > 1e-6])
    return wavelength_nm[keep], weights[keep]


def draw_sensor(
    x0: np.ndarray, scene_nm: np.ndarray, rng: np.random.Generator, config: MaskingConfig, library: SensorLibrary
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str]:
    """Stage 1: simulated band values (B, h, w), their wavelengths (B,), the (B, B_s) SRF weights on the scene
    grid (None for the scene's own bands) and the sensor's name."""
    choices = ["own", "gaussian", "multispectral", "hyperspectral"]
    p_multi = config.p_multispectral if library.sensors else 0.0
    probs = np.array([config.p_own, config.p_gaussian, p_multi, config.p_hyperspectral])
    kind = rng.choice(choices, p=probs / probs.sum())
    if kind == "hyperspectral":
        sensor = HYPERSPECTRAL_SENSORS[rng.integers(len(HYPERSPECTRAL_SENSORS))]
        span = (scene_nm[0], scene_nm[-1])
        centers, fwhm = draw_grid(sensor, span, rng, config.hyperspectral_fwhm_jitter, config.p_water_removed)
        if centers.size >= config.min_observed:
            weights = gaussian_srf_matrix(centers, fwhm, scene_nm)
            return _simulate(x0, weights.astype(np.float32)), centers, weights, sensor.name
        kind = "gaussian"
    if kind == "multispectral":
        sensor = library.sensors[rng.integers(len(library.sensors))]
        weights, centroids = library.matrix(sensor, scene_nm)
        if len(centroids) >= config.min_observed:
            centroids, weights = _dedupe(centroids, weights)
            return _simulate(x0, weights), centroids, weights, sensor.name
        kind = "gaussian"
    if kind == "gaussian":
        spacing = rng.uniform(*config.spacing_nm)
        start = scene_nm[0] + rng.uniform(0.0, spacing)
        centers = np.arange(start, scene_nm[-1], spacing)
        fwhm = spacing * rng.uniform(*config.fwhm_factor)
        if centers.size >= config.min_observed:
            weights = gaussian_srf_matrix(centers, np.full(centers.size, fwhm), scene_nm)
            return _simulate(x0, weights.astype(np.float32)), centers, weights, f"gaussian_{spacing:.1f}nm"
    return x0.astype(np.float32, copy=True), scene_nm.copy(), None, "own"


def _edge_loss(wavelength_nm: np.ndarray, rng: np.random.Generator, config: MaskingConfig) -> np.ndarray:
    """(B,) bool: the bands beyond a random cut at one end of the range (see ``MaskingConfig``)."""
    first, last = float(wavelength_nm[0]), float(wavelength_nm[-1])
    boundary = first + config.edge_fraction * (last - first)
    if rng.random() < config.p_red_edge:
        return wavelength_nm > rng.uniform(boundary, last)
    return wavelength_nm < rng.uniform(first, boundary)


def draw_missing(
    wavelength_nm: np.ndarray, shape: tuple[int, int], rng: np.random.Generator, config: MaskingConfig
) -> np.ndarray:
    """Stage 2: a missing mask (B, h, w) bool; every pixel keeps ``min_observed`` values (or all, if fewer)."""
    b = wavelength_nm.size
    h, w = shape
    mode, p_drop = rng.random(), rng.uniform(*config.p_drop)
    band = np.zeros(b, dtype=bool)
    if mode < config.p_band_dropout:
        band |= rng.random(b) < p_drop
    if config.p_band_dropout <= mode < config.p_band_dropout + config.p_value_dropout:
        missing = rng.random((b, h, w)) < p_drop
    else:
        missing = np.zeros((b, h, w), dtype=bool)
    if rng.random() < config.p_gap:
        width = rng.uniform(*config.gap_nm)
        start = rng.uniform(wavelength_nm[0] - width / 2, wavelength_nm[-1] - width / 2)
        band |= (wavelength_nm >= start) & (wavelength_nm <= start + width)
    if rng.random() < config.p_swir_missing:
        band |= wavelength_nm >= SWIR_START_NM
    if rng.random() < config.p_edge_missing:
        band |= _edge_loss(wavelength_nm, rng, config)
    missing |= band[:, None, None]
    keep = min(config.min_observed, b)
    short = (~missing).sum(axis=0) < keep
    if short.any():
        rank = rng.random((b, h, w)).argsort(axis=0).argsort(axis=0)
        missing &= ~((rank < keep) & short[None])
    return missing


def dual_stochastic_mask(
    x0: np.ndarray,
    scene_nm: np.ndarray,
    rng: np.random.Generator,
    config: MaskingConfig | None = None,
    library: SensorLibrary | None = None,
) -> Observation:
    """Both stages on a true patch ``x0`` (B_s, h, w) on the scene grid ``scene_nm`` (B_s,) ascending, nm."""
    config = config or MaskingConfig()
    library = library if library is not None else SensorLibrary([])
    scene_nm = np.asarray(scene_nm, dtype=np.float64)
    values, wavelength_nm, weights, name = draw_sensor(x0, scene_nm, rng, config, library)
    missing = draw_missing(wavelength_nm, values.shape[1:], rng, config)
    integrals = None if weights is None else weights.astype(np.float64) @ interpolation_matrix(CANONICAL_NM, scene_nm)
    return Observation(values=values, wavelength_nm=wavelength_nm, missing=missing, sensor=name, band_integrals=integrals)
