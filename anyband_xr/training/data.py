"""Training patches: scenes cached once as Zarr v3, cut with xbatcher, masked and conditioned in a torch Dataset.

Only each scene's training columns (``[:holdout_start(width)]``) are written to the cache, so the held-out
region never reaches training. xbatcher 0.4.0 notes: ``concat_input_dims`` is not used (it fails on dask
arrays) and its batch cache is not used (it never hits with Zarr v3); each patch is loaded with ``.values``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
import xbatcher
from threadpoolctl import threadpool_limits
from torch.utils.data import DataLoader, Dataset, RandomSampler

from anyband_xr import lowrank
from anyband_xr.grid import CANONICAL_NM, holdout_start
from anyband_xr.conditioning.bridge import make_condition, to_model
from anyband_xr.conditioning.gaussian import PCAPrior
from anyband_xr.training.masking import MaskingConfig, SensorLibrary, canonical_target, dual_stochastic_mask
from anyband_xr.training.synthetic import SyntheticPatches

VARIABLE = "reflectance"


def training_region(da: xr.DataArray) -> xr.DataArray:
    """The training columns of a (wavelength, y, x) scene: everything left of the held-out region."""
    return da.isel(x=slice(0, holdout_start(da.sizes["x"])))


def cache_scenes(scenes: dict[str, xr.DataArray], cache_dir: str | Path) -> dict[str, Path]:
    """Write each scene's training region once to ``cache_dir/<name>.zarr`` (Zarr v3); existing stores are kept."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, da in scenes.items():
        path = cache_dir / f"{name.replace('/', '__')}.zarr"
        if not (path / "zarr.json").exists():
            region = training_region(da.transpose("wavelength", "y", "x")).astype("float32")
            region = region.drop_vars([c for c in region.coords if c not in region.dims])
            region.chunk({"wavelength": -1}).to_dataset(name=VARIABLE).to_zarr(path, mode="w", zarr_format=3)
        paths[name] = path
    return paths


def open_cached(path: str | Path) -> xr.DataArray:
    """Lazily open a cached scene (dask-backed, one chunk along wavelength)."""
    return xr.open_zarr(path, zarr_format=3)[VARIABLE]


@dataclass
class AugmentConfig:
    """Spatial flips/rot90 and a random brightness factor (log-uniform in ``brightness``)."""

    flips: bool = True
    brightness: tuple[float, float] = (0.5, 2.0)


class PatchDataset(Dataset):
    """Masked, conditioned training samples from xbatcher patches of cached scenes.

    Each item is a dict of float32 tensors: ``x0`` (K, P, P) target residual, ``context`` (4K, P, P) the
    model's condition (``Condition.tensor``), ``base`` (K, P, P) the interpolant over the brightness unit,
    ``valid`` (K,) canonical wavelengths the scene covers; plus ``scale`` (1,) in data units.
    ``in_memory`` loads each (small) cached training region once, so a patch costs no per-patch dask graph.
    With ``synthetic``, a fraction ``synthetic.config.p_synthetic`` of the items are synthetic canonical patches
    (:mod:`anyband_xr.training.synthetic`) instead of the indexed real patch. ``prior``: the Gaussian spectral
    prior behind the prior hint (default the shipped one). With ``scene_completion`` the model corrects the patch's
    own low-rank completion wherever the patch teaches every band (per-value loss), as a repair corrects the
    scene's (``anyband_xr.lowrank.fit_or_none``, fitted here on the patch's observed values).
    """

    def __init__(
        self,
        scenes: dict[str, xr.DataArray],
        patch: int,
        stride: int,
        masking: MaskingConfig | None = None,
        augment: AugmentConfig | None = None,
        library: SensorLibrary | None = None,
        seed: int = 0,
        in_memory: bool = True,
        synthetic: SyntheticPatches | None = None,
        prior: PCAPrior | None = None,
        scene_completion: bool = False,
    ):
        self.patch = patch
        self.prior = prior
        self.scene_completion = scene_completion
        self.synthetic = synthetic
        self.canonical = (CANONICAL_NM.copy(), np.eye(CANONICAL_NM.size, dtype=np.float32))
        self.masking = masking or MaskingConfig()
        self.augment = augment or AugmentConfig()
        self.library = library if library is not None else SensorLibrary([])
        self.rng = np.random.default_rng(seed)
        self.generators = []
        self.targets = []
        self.index: list[tuple[int, int]] = []
        for i, da in enumerate(scenes.values()):
            if in_memory:
                da = da.load()
            if min(da.sizes["y"], da.sizes["x"]) < patch:
                raise ValueError(f"scene {da.name!r} ({da.sizes['y']}x{da.sizes['x']}) is smaller than a {patch} patch.")
            gen = xbatcher.BatchGenerator(
                da, input_dims={"y": patch, "x": patch}, input_overlap={"y": patch - stride, "x": patch - stride}
            )
            self.generators.append(gen)
            self.targets.append((np.asarray(da["wavelength"].values, float), *canonical_target(da["wavelength"].values)))
            self.index += [(i, j) for j in range(len(gen))]

    def __len__(self) -> int:
        return len(self.index)

    def reseed(self, seed: int) -> None:
        """Reset the masking/augmentation generator (called per DataLoader worker)."""
        self.rng = np.random.default_rng(seed)

    def _augment(self, x: np.ndarray) -> np.ndarray:
        if self.augment.flips:
            x = np.rot90(x, k=int(self.rng.integers(4)), axes=(1, 2))
            if self.rng.random() < 0.5:
                x = x[:, :, ::-1]
        lo, hi = np.log(self.augment.brightness[0]), np.log(self.augment.brightness[1])
        return np.ascontiguousarray(x * np.float32(np.exp(self.rng.uniform(lo, hi))))

    def _draw(self, item: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """A true patch (B, P, P) on its grid (B,) nm, the (K, B) map to the canonical grid and its valid (K,)."""
        if self.synthetic is not None and self.rng.random() < self.synthetic.config.p_synthetic:
            patch, valid = self.synthetic.patch(self.patch, self.rng)
            return patch, *self.canonical, valid
        scene, j = self.index[item]
        patch = self.generators[scene][j].transpose("wavelength", "y", "x").values.astype(np.float32)
        return self._augment(patch), *self.targets[scene]

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        patch, scene_nm, matrix, valid = self._draw(item)
        obs = dual_stochastic_mask(patch, scene_nm, self.rng, self.masking, self.library)
        values = torch.from_numpy(obs.values)[None]
        completion = None
        if self.scene_completion:
            fitted = lowrank.fit_or_none(obs.values, obs.missing)
            completion = None if fitted is None else torch.from_numpy(fitted.complete(obs.values, obs.missing))[None]
        cond = make_condition(values, obs.wavelength_nm, torch.from_numpy(obs.missing)[None], obs.band_integrals,
                              prior=self.prior, completion=completion)
        k, (b, h, w) = matrix.shape[0], patch.shape
        truth = torch.from_numpy((matrix @ patch.reshape(b, -1)).reshape(k, h, w))[None]
        return {
            "x0": to_model(truth, cond)[0],
            "context": cond.tensor()[0],
            "base": (cond.interp / cond.scale)[0],
            "valid": torch.from_numpy(valid),
            "scale": cond.scale.reshape(1),
        }


def _worker_init(worker_id: int) -> None:
    # One BLAS thread per loader worker: the workers already run in parallel with the training process, and a
    # multi-threaded OpenBLAS on a busy machine makes a small matmul 20x slower (measured: 12 ms vs 0.65 ms).
    threadpool_limits(1)
    torch.set_num_threads(1)
    info = torch.utils.data.get_worker_info()
    info.dataset.reseed(info.seed % 2**32)


def make_loader(dataset: PatchDataset, batch_size: int, num_workers: int, seed: int, num_samples: int) -> DataLoader:
    """A DataLoader drawing ``num_samples`` patches with replacement (seeded), with per-worker masking seeds."""
    generator = torch.Generator().manual_seed(seed)
    sampler = RandomSampler(dataset, replacement=True, num_samples=num_samples, generator=generator)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        worker_init_fn=_worker_init if num_workers > 0 else None,
        persistent_workers=num_workers > 0,
        drop_last=True,
        generator=generator,
    )
