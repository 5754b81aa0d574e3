"""Synthetic training patches: smooth spatial mixtures of real, PROSAIL and library spectra on the canonical grid.

Real hyperspectral scenes are few. Mixing their training-column spectra with PROSAIL canopy spectra (leaf and
canopy parameters far beyond what the scenes hold) and measured library spectra (soils, built materials, bark,
water: ``anyband_xr.training.library``) in random spatial layouts widens the spectral prior the model learns,
which is what it needs on scenes and sensors it never saw. A patch mixes 2-6 endmembers with abundance maps from
smoothed random fields (a softmax of Gaussian-filtered noise), modulates brightness with a smooth illumination
field, darkens some regions with shade (``shade``: cast shadows, a smooth field reaching up to that depth) and
adds sensor-like noise. Its valid wavelengths are those every endmember covers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from scipy.ndimage import gaussian_filter

from anyband_xr.training.library import LibrarySpectra
from anyband_xr.training.masking import canonical_target

#: Scenes whose bands cover less of the canonical grid (e.g. VNIR-only sensors) give no pool spectra.
MIN_COVERAGE = 0.7
#: Typical mean surface reflectance; endmembers are rescaled around it so patches look like reflectance.
MEAN_REFLECTANCE = 0.2


@dataclass
class SyntheticConfig:
    """How often and how synthetic patches are drawn (``p_synthetic`` = 0 turns them off)."""

    p_synthetic: float = 0.25
    endmembers: tuple[int, int] = (2, 6)
    p_prosail: float = 0.5
    p_library: float = 0.0
    smoothness_px: tuple[float, float] = (1.0, 8.0)
    sharpness: tuple[float, float] = (1.0, 8.0)
    brightness: tuple[float, float] = (0.3, 3.0)
    illumination: float = 0.1
    shade: tuple[float, float] = (0.0, 0.0)
    noise: tuple[float, float] = (0.001, 0.01)
    pixels_per_scene: int = 20000


@dataclass
class SpectralPool:
    """Canonical-grid spectra ``values`` (S, K), each scaled to mean 1 over its ``valid`` (S, K) wavelengths, and
    optional sampling probabilities ``weights`` (S,) (uniform when None)."""

    values: np.ndarray
    valid: np.ndarray
    weights: np.ndarray | None = None

    @classmethod
    def from_scenes(cls, scenes: dict[str, xr.DataArray], per_scene: int, seed: int = 0) -> SpectralPool:
        """Up to ``per_scene`` random pixels of each (wavelength, y, x) scene covering ``MIN_COVERAGE`` of the grid."""
        rng = np.random.default_rng(seed)
        values, valid = [], []
        for da in scenes.values():
            matrix, covered = canonical_target(da["wavelength"].values)
            if covered.mean() < MIN_COVERAGE:
                continue
            flat = np.asarray(da.transpose("wavelength", ...).values, dtype=np.float32).reshape(da.sizes["wavelength"], -1)
            pick = rng.choice(flat.shape[1], size=min(per_scene, flat.shape[1]), replace=False)
            # Reflectance is not negative; the band-reproducing target undershoots zero slightly (<= 0.005) next to
            # dark bands (water, absorption features).
            values.append(np.maximum(matrix @ flat[:, pick], 0.0).T)
            valid.append(np.broadcast_to(covered, (pick.size, covered.size)))
        return cls._normalised(np.concatenate(values), np.concatenate(valid))

    @classmethod
    def from_prosail(cls, path: str | Path, count: int, seed: int = 0) -> SpectralPool:
        """``count`` random spectra of a PROSAIL store written by ``scripts/generate_prosail.py``."""
        group = zarr.open_group(str(path), mode="r")
        reflectance = group["reflectance"]
        done = np.repeat(group["done"][:], reflectance.chunks[0])[: reflectance.shape[0]]
        rows = np.random.default_rng(seed).choice(np.flatnonzero(done), size=min(count, int(done.sum())), replace=False)
        values = reflectance.get_orthogonal_selection((np.sort(rows), slice(None)))
        return cls._normalised(values.astype(np.float32), np.ones(values.shape, dtype=bool))

    @classmethod
    def from_library(cls, library: LibrarySpectra) -> SpectralPool:
        """The spectra of a ``LibrarySpectra`` (its training split), drawn with its ``class_weights``."""
        return cls._normalised(library.values, library.valid, library.class_weights())

    @classmethod
    def _normalised(cls, values: np.ndarray, valid: np.ndarray, weights: np.ndarray | None = None) -> SpectralPool:
        valid = valid & np.isfinite(values)
        mean = (np.where(valid, values, 0.0)).sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
        keep = (mean > 0) & np.isfinite(values).all(axis=1)
        kept = None if weights is None else weights[keep] / weights[keep].sum()
        return cls((values[keep] / mean[keep, None]).astype(np.float32), np.ascontiguousarray(valid[keep]), kept)

    def __len__(self) -> int:
        return len(self.values)

    def draw(self, rng: np.random.Generator) -> int:
        """A random spectrum index (by ``weights`` when given)."""
        return int(rng.choice(len(self), p=self.weights)) if self.weights is not None else int(rng.integers(len(self)))


class SyntheticPatches:
    """Draws synthetic (K, P, P) canonical patches from a real pool, a PROSAIL pool and a spectral-library pool.

    Each endmember comes from the library pool with probability ``p_library``, else from the PROSAIL pool with
    probability ``p_prosail``, else from the real pool (an absent or empty pool passes its share on).
    """

    def __init__(
        self,
        real: SpectralPool,
        prosail: SpectralPool | None,
        config: SyntheticConfig | None = None,
        library: SpectralPool | None = None,
    ):
        self.real, self.prosail, self.library = real, prosail, library
        self.config = config or SyntheticConfig()

    def _endmembers(self, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        c = self.config
        p_library = c.p_library if self.library is not None and len(self.library) else 0.0
        p_prosail = (1.0 - p_library) * (c.p_prosail if self.prosail is not None and len(self.prosail) else 0.0)
        pools = (self.library, self.prosail, self.real)
        picks = rng.choice(3, size=count, p=[p_library, p_prosail, 1.0 - p_library - p_prosail])
        values, valid = [], []
        for pick in picks:
            pool = pools[pick]
            i = pool.draw(rng)
            values.append(pool.values[i])
            valid.append(pool.valid[i])
        return np.stack(values), np.logical_and.reduce(valid)

    def _abundances(self, count: int, size: int, rng: np.random.Generator) -> np.ndarray:
        c = self.config
        sigma = rng.uniform(*c.smoothness_px)
        fields = gaussian_filter(rng.standard_normal((count, size, size)), sigma=(0, sigma, sigma), mode="wrap")
        fields /= fields.std(axis=(1, 2), keepdims=True) + 1e-12
        logits = fields * rng.uniform(*c.sharpness)
        weights = np.exp(logits - logits.max(axis=0, keepdims=True))
        return weights / weights.sum(axis=0, keepdims=True)

    def _shade(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """(size, size) factors in [1 - depth, 1]: a smooth field thresholded softly, depth ~ U(``shade``)."""
        depth = rng.uniform(*self.config.shade)
        if depth <= 0:
            return np.ones((size, size))
        sigma = rng.uniform(*self.config.smoothness_px)
        field = gaussian_filter(rng.standard_normal((size, size)), sigma=sigma, mode="wrap")
        lit = 1.0 / (1.0 + np.exp(-4.0 * field / (field.std() + 1e-12) - 2.0))  # about a third of the area shaded
        return 1.0 - depth * (1.0 - lit)

    def patch(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A (K, size, size) float32 patch in reflectance-like units and its valid canonical wavelengths (K,)."""
        c = self.config
        count = int(rng.integers(c.endmembers[0], c.endmembers[1] + 1))
        spectra, valid = self._endmembers(count, rng)
        spectra = spectra * np.exp(rng.uniform(*np.log(c.brightness), size=(count, 1))) * MEAN_REFLECTANCE
        mixed = np.einsum("ek,eyx->kyx", spectra, self._abundances(count, size, rng))
        light = gaussian_filter(rng.standard_normal((size, size)), sigma=rng.uniform(*c.smoothness_px), mode="wrap")
        mixed *= np.exp(c.illumination * light / (light.std() + 1e-12))[None]
        mixed *= self._shade(size, rng)[None]
        noise = rng.uniform(*c.noise) * mixed.mean()
        mixed += noise * rng.standard_normal(mixed.shape)
        return mixed.astype(np.float32), valid
