"""Trainer of the MCD model: AdamW, warm-up + cosine, EMA, resumable safetensors checkpoints (paper A.4).

``train(config)`` reads a JSON config (see ``configs/default.json``), caches the scenes' training columns as Zarr,
trains with the masked x0 MSE (an SNR-weighted Eq. 2, relative per sample: ``losses.relative_mse``) plus MSPL, and writes the EMA weights to
``config["output"]`` (``.safetensors`` + ``.json``) every ``checkpoint_minutes``. The optimiser state and raw weights
go to ``config["state_dir"]`` (safetensors, no pickle) so a run resumes where it stopped, its EMA included.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from safetensors.torch import load_file, save_file
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from anyband_xr.baselines import fit_scene_prior
from anyband_xr.conditioning.bridge import GAIN
from anyband_xr.conditioning.gaussian import GaussianPrior, PCAPrior, load_gaussian_prior, save_gaussian_prior
from anyband_xr.datasets import select_scenes
from anyband_xr.model.unet import MCDUNet, ModelConfig
from anyband_xr.model.weights import load_model, read_metadata, save_checkpoint, spectral_prior_path, weights_hash
from anyband_xr.training.data import AugmentConfig, PatchDataset, cache_scenes, make_loader, open_cached
from anyband_xr.training.library import HELD_OUT_CLASSES, SOURCES, LibrarySpectra, load_library
from anyband_xr.training.losses import MSPL, MSPLConfig, correlation_prior, masked_mse, relative_mse
from anyband_xr.training.masking import MaskingConfig, SensorLibrary, canonical_target
from anyband_xr.training.synthetic import SpectralPool, SyntheticConfig, SyntheticPatches

DEFAULTS: dict = {
    "scenes_root": "/work/shared/data/hsi",
    "scenes": None,
    "exclude_scenes": [],
    "cache_dir": "/tmp/anyband_cache",
    "state_dir": "/tmp/anyband_train",
    "output": "anyband_xr/data/weights/mcd_default",
    "patch_size": 32,
    "patch_stride": 8,
    "batch_size": 8,
    "steps": 4000,
    "max_minutes": None,
    "lr": 2e-4,
    "warmup_steps": 200,
    "min_lr_fraction": 0.1,
    "weight_decay": 1e-4,
    "betas": [0.9, 0.999],
    "grad_clip": 1.0,
    "relative_floor": 0.01,
    "ema_decay": 0.999,
    "seed": 0,
    "threads": 2,
    "num_workers": 1,
    "checkpoint_minutes": 5.0,
    "log_every": 25,
    "resume": True,
    "use_sensor_library": True,
    "model": {},
    "masking": {},
    "augment": {},
    "mspl": {},
    "synthetic": {},
    "prosail_store": None,
    "library": None,
    "init_weights": None,
    "gaussian_prior": "fit",
    "scene_completion": True,
}

#: Keys of the ``library`` config (spectral libraries for synthetic scenes; None turns them off).
LIBRARY_DEFAULTS: dict = {"sources": list(SOURCES), "ecostress_dir": None, "held_out": list(HELD_OUT_CLASSES)}


def load_config(config: dict | str | Path) -> dict:
    """Defaults overlaid with a config dict or a JSON file."""
    if not isinstance(config, dict):
        config = json.loads(Path(config).read_text())
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown training config keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    return {**DEFAULTS, **config}


def _dataclass(cls, values: dict):
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cls(**fields)


def _lr_factor(step: int, warmup: int, total: int, floor: float) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _canonical_spectra(scenes: dict[str, xr.DataArray]) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for da in scenes.values():
        matrix, valid = canonical_target(da["wavelength"].values)
        values = np.asarray(da.transpose("wavelength", "y", "x").values, dtype=np.float64).reshape(da.sizes["wavelength"], -1)
        out.append((matrix @ values, valid))
    return out


def _initial_model(cfg: dict) -> MCDUNet:
    """A fresh model from ``cfg["model"]``, or a copy of ``cfg["init_weights"]`` ("default" or a weights stem, whose
    own architecture is then used) to fine-tune."""
    if not cfg["init_weights"]:
        return MCDUNet(_dataclass(ModelConfig, cfg["model"]))
    initial = load_model(None if cfg["init_weights"] == "default" else cfg["init_weights"])
    model = MCDUNet(initial.config)
    model.load_state_dict(initial.state_dict())
    return model


def parent_record(init_weights: str) -> dict:
    """Provenance of the weights a fine-tuning run starts from: their path, hash, steps, minutes and, in turn,
    their own parent, so a checkpoint's JSON tells its whole training history."""
    stem = None if init_weights == "default" else init_weights
    record = read_metadata(stem)
    parent = {"weights": init_weights, "sha256": weights_hash(stem), "step": record.get("step"), "minutes": record.get("minutes")}
    return parent | ({"parent": record["parent"]} if "parent" in record else {})


def library_config(cfg: dict) -> dict | None:
    """The ``library`` config with its defaults (``LIBRARY_DEFAULTS``), or None when off."""
    if not cfg["library"]:
        return None
    unknown = set(cfg["library"]) - set(LIBRARY_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown 'library' config keys {sorted(unknown)}; known: {sorted(LIBRARY_DEFAULTS)}")
    return {**LIBRARY_DEFAULTS, **cfg["library"]}


def _library_record(train: LibrarySpectra, held_out: LibrarySpectra, config: dict) -> dict:
    classes, counts = np.unique(train.labels, return_counts=True)
    return {**config, "classes": dict(zip(classes.tolist(), counts.tolist())), "held_out_spectra": len(held_out)}


def _synthetic(cfg: dict, scenes: dict[str, xr.DataArray]) -> tuple[SyntheticPatches | None, dict | None]:
    """Synthetic patch source from the scenes' training columns, the optional PROSAIL store and the training
    classes of the spectral libraries (None if off), and the record of the library spectra used."""
    config = _dataclass(SyntheticConfig, cfg["synthetic"])
    if config.p_synthetic <= 0:
        return None, None
    real = SpectralPool.from_scenes(scenes, config.pixels_per_scene, seed=cfg["seed"])
    store = cfg["prosail_store"]
    prosail = SpectralPool.from_prosail(Path(store).expanduser(), config.pixels_per_scene, seed=cfg["seed"]) if store else None
    library, record = None, None
    lib_cfg = library_config(cfg)
    if lib_cfg is not None:
        spectra = load_library(lib_cfg["sources"], lib_cfg["ecostress_dir"])
        train_spectra, held_out = spectra.split(lib_cfg["held_out"])
        library = SpectralPool.from_library(train_spectra)
        record = _library_record(train_spectra, held_out, lib_cfg)
    return SyntheticPatches(real, prosail, config, library), record


def _save_state(state_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int, history: list) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for i, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            tensors[f"optim.{i}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tmp = state_dir / "state.safetensors.tmp"
    save_file(tensors, str(tmp))
    tmp.replace(state_dir / "state.safetensors")
    (state_dir / "state.json").write_text(json.dumps({"step": step, "history": history}))


def _load_state(state_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[int, list]:
    path = state_dir / "state.safetensors"
    if not path.exists():
        return 0, []
    tensors = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state = optimizer.state_dict()
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, i, name = key.split(".", 2)
            state["state"].setdefault(int(i), {})[name] = value
    optimizer.load_state_dict(state)
    record = json.loads((state_dir / "state.json").read_text())
    return int(record["step"]), list(record["history"])


def _resumed_ema(output: str | Path, step: int) -> dict[str, torch.Tensor] | None:
    """The EMA weights checkpointed with the state of ``step``, or None when the checkpoint is of another step
    (then the EMA restarts from the raw weights)."""
    weights, record = Path(f"{output}.safetensors"), Path(f"{output}.json")
    if weights.exists() and record.exists() and json.loads(record.read_text()).get("step") == step:
        return load_file(str(weights))
    return None


def _hardware(device: torch.device) -> dict:
    """What this session trains on (a resumed run records its latest session's)."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"device": device.type, "gpu": gpu, "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "world_size": int(os.environ.get("WORLD_SIZE", "1"))}


def _distributed() -> tuple[torch.device, int]:
    """CUDA device and rank under torchrun (DDP), else CPU and rank 0."""
    if torch.cuda.is_available():
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            torch.distributed.init_process_group("nccl")
            rank = torch.distributed.get_rank()
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
            return torch.device("cuda"), rank
        return torch.device("cuda"), 0
    return torch.device("cpu"), 0


def _run_record(cfg: dict, scenes, synthetic, library_record, library: SensorLibrary, mspl: MSPL, device) -> dict:
    """What the checkpoint JSON records about the run: data, sensors, MSPL terms, hardware, parent weights."""
    extra = {
        "gain": GAIN,
        "scenes": sorted(scenes),
        "exclude_scenes": list(cfg["exclude_scenes"]),
        "gaussian_prior": cfg["gaussian_prior"],
        "scene_completion": cfg["scene_completion"],
        "synthetic": None if synthetic is None else {
            "real_spectra": len(synthetic.real),
            "prosail_spectra": 0 if synthetic.prosail is None else len(synthetic.prosail),
            "library": library_record,
        },
        "sensors": [s.name for s in library.sensors],
        "mspl_terms": {"pixel": True, "region": bool(mspl.functions), "image": mspl.emulator is not None},
        "hardware": _hardware(device),
    }
    if cfg["init_weights"]:
        extra["parent"] = parent_record(cfg["init_weights"])
    return extra


def _predict(model, schedule, batch: dict, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's x0 estimate of a noised batch at uniform random timesteps, and those timesteps."""
    t = torch.randint(0, schedule.num_steps, (batch["x0"].shape[0],), device=device)
    x_t = schedule.q_sample(batch["x0"], t, torch.randn_like(batch["x0"]))
    return model(x_t, t, batch["context"]), t


def _loss(cfg: dict, mspl: MSPL, weight: float, schedule, x0_hat: torch.Tensor, t: torch.Tensor, batch: dict):
    """(total loss, x0 MSE, MSPL term weighted by the signal fraction) of one batch."""
    if cfg["relative_floor"] is None:
        mse = masked_mse(x0_hat, batch["x0"], batch["valid"])
    else:
        mse = relative_mse(x0_hat, batch["x0"], batch["valid"], cfg["relative_floor"])
    terms = mspl(x0_hat, batch["x0"], batch["base"], batch["scale"], batch["valid"])
    physical = (schedule.signal_fraction(t) * terms["total"]).mean()
    return mse + weight * physical, mse, physical


@dataclass
class _Data:
    """What a run trains on: the scenes, their MSPL prior, the sensor library, the synthetic source, the patches."""

    scenes: dict[str, xr.DataArray]
    prior: torch.Tensor
    support: torch.Tensor
    spectral_prior: GaussianPrior
    library: SensorLibrary
    synthetic: SyntheticPatches | None
    library_record: dict | None
    dataset: PatchDataset
    masking: MaskingConfig
    augment: AugmentConfig


def _training_data(
    cfg: dict, scenes: dict[str, xr.DataArray] | None, library: SensorLibrary | None, rank: int
) -> _Data:
    """The chosen scenes cached as Zarr (training columns only) and everything drawn from them."""
    if scenes is None:
        from anyband_xr.datasets import training_scenes

        scenes = training_scenes(cfg["scenes_root"])
    scenes = select_scenes(scenes, cfg["scenes"], cfg["exclude_scenes"])
    paths = cache_scenes(scenes, cfg["cache_dir"])
    cached = {name: open_cached(path) for name, path in paths.items()}
    prior, support = correlation_prior(_canonical_spectra(cached))
    spectral = _spectral_prior(cfg, cached)
    if library is None:
        library = SensorLibrary.from_package() if cfg["use_sensor_library"] else SensorLibrary([])
    synthetic, library_record = _synthetic(cfg, cached)
    masking, augment = _dataclass(MaskingConfig, cfg["masking"]), _dataclass(AugmentConfig, cfg["augment"])
    dataset = PatchDataset(cached, cfg["patch_size"], cfg["patch_stride"], masking=masking, augment=augment,
                           library=library, seed=cfg["seed"] + rank, synthetic=synthetic,
                           prior=PCAPrior.from_gaussian(spectral), scene_completion=cfg["scene_completion"])
    return _Data(scenes, prior, support, spectral, library, synthetic, library_record, dataset, masking, augment)


def _spectral_prior(cfg: dict, cached: dict[str, xr.DataArray]) -> GaussianPrior:
    """The Gaussian spectral prior behind the prior hint: ``"fit"`` on the run's own scenes' training columns (a
    left-out scene stays out of it too), or ``"shipped"`` (``anyband_xr/data/gaussian_prior.safetensors``)."""
    if cfg["gaussian_prior"] == "fit":
        return fit_scene_prior(cached.values())
    if cfg["gaussian_prior"] == "shipped":
        return load_gaussian_prior()
    raise ValueError(f"'gaussian_prior' must be 'fit' or 'shipped', got {cfg['gaussian_prior']!r}.")


@dataclass
class _Run:
    """A run's moving parts: the model (``net``: its DDP wrapper, if any), its EMA, the optimiser, the MSPL, the
    config as recorded in checkpoints, and where the run stands (``step``, loss ``history``)."""

    cfg: dict
    device: torch.device
    model: MCDUNet
    net: torch.nn.Module
    ema: MCDUNet
    optimizer: torch.optim.Optimizer
    mspl: MSPL
    recorded: dict
    step: int
    history: list

    def optimise(self, batch: dict, autocast: torch.autocast) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One optimiser step on ``batch`` (on the device) and the EMA update; (total loss, x0 MSE, MSPL term)."""
        cfg, model = self.cfg, self.model
        for group in self.optimizer.param_groups:
            factor = _lr_factor(self.step, cfg["warmup_steps"], int(cfg["steps"]), cfg["min_lr_fraction"])
            group["lr"] = cfg["lr"] * factor
        network = self.net.module if self.net is not model else self.net
        with autocast:
            x0_hat, t = _predict(network, model.schedule, batch, self.device)
        loss, mse, physical = _loss(cfg, self.mspl, self.mspl.config.weight, model.schedule, x0_hat.float(), t, batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        self.optimizer.step()
        with torch.no_grad():
            for p_ema, p in zip(self.ema.parameters(), model.parameters()):
                p_ema.lerp_(p, 1.0 - cfg["ema_decay"])
        self.step += 1
        return loss, mse, physical

    def checkpoint(self, extra: dict, minutes: float) -> None:
        """The EMA weights to ``output`` and the raw weights and optimiser state to ``state_dir``."""
        record = {**extra, "step": self.step, "minutes": minutes, "history": self.history}
        save_checkpoint(self.ema, self.cfg["output"], config=self.recorded, extra=record)
        _save_state(Path(self.cfg["state_dir"]), self.model, self.optimizer, self.step, self.history)


def _start_run(cfg: dict, data: _Data, device: torch.device) -> _Run:
    """The model, its EMA and optimiser, fresh or resumed from ``state_dir`` (the EMA from its checkpoint)."""
    state_dir = Path(cfg["state_dir"])
    state_dir.mkdir(parents=True, exist_ok=True)
    model = _initial_model(cfg).to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    mspl_config = _dataclass(MSPLConfig, cfg["mspl"])
    # The checkpoint records every setting, defaults included, so later changes of a default cannot rewrite its history.
    recorded = {**cfg, "masking": asdict(data.masking), "augment": asdict(data.augment), "mspl": asdict(mspl_config)}
    mspl = MSPL(mspl_config, data.prior, data.support).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg["lr"], betas=tuple(cfg["betas"]), weight_decay=cfg["weight_decay"]
    )
    step, history = _load_state(state_dir, model, optimizer) if cfg["resume"] else (0, [])
    if step:
        ema.load_state_dict(_resumed_ema(cfg["output"], step) or model.state_dict())
    net = model
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        net = torch.nn.parallel.DistributedDataParallel(model)
    return _Run(cfg, device, model, net, ema, optimizer, mspl, recorded, step, history)


def _fit(run: _Run, loader: Iterable[dict], extra: dict, rank: int) -> None:
    """Optimise until ``steps`` or ``max_minutes``: a history entry (means since the last) every ``log_every`` steps,
    a checkpoint (rank 0) every ``checkpoint_minutes`` and at the end."""
    cfg, steps = run.cfg, int(run.cfg["steps"])
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=run.device.type == "cuda")
    last_save = time.time()
    start = last_save - 60.0 * (run.history[-1]["minutes"] if run.history else 0.0)  # minutes count across resumes
    run_start = last_save
    running = {"loss": 0.0, "mse": 0.0, "mspl": 0.0, "n": 0}
    bar = tqdm(total=steps, initial=run.step, disable=rank != 0, desc="train", mininterval=5.0)
    run.model.train()
    for batch in loader:
        loss, mse, physical = run.optimise({k: v.to(run.device) for k, v in batch.items()}, autocast)
        running["loss"] += loss.item()
        running["mse"] += mse.item()
        running["mspl"] += physical.item()
        running["n"] += 1
        bar.update(1)
        if run.step % cfg["log_every"] == 0 or run.step == steps:
            k = running.pop("n")
            minutes = round((time.time() - start) / 60.0, 2)
            entry = {"step": run.step, "minutes": minutes, **{m: v / k for m, v in running.items()}}
            run.history.append(entry)
            bar.set_postfix(loss=f"{entry['loss']:.4f}")
            running = {"loss": 0.0, "mse": 0.0, "mspl": 0.0, "n": 0}
        out_of_time = cfg["max_minutes"] is not None and time.time() - run_start > 60.0 * cfg["max_minutes"]
        due = time.time() - last_save > 60.0 * cfg["checkpoint_minutes"]
        if rank == 0 and (due or run.step >= steps or out_of_time):
            run.checkpoint(extra, (time.time() - start) / 60.0)
            last_save = time.time()
        if run.step >= steps or out_of_time:
            break
    bar.close()


def train(
    config: dict | str | Path,
    scenes: dict[str, xr.DataArray] | None = None,
    library: SensorLibrary | None = None,
) -> Path:
    """Train an MCD model; returns the stem of the written EMA weights (``.safetensors`` + ``.json``).

    ``scenes`` (name -> (wavelength, y, x) DataArray) overrides ``scenes_root`` (read with
    ``anyband_xr.datasets.training_scenes``). The config keys ``scenes`` (None: all) and ``exclude_scenes`` pick
    the scenes by key or folder (``anyband_xr.datasets.select_scenes``); a left-out scene reaches neither the
    patches nor the real-spectra pool of the synthetic scenes nor the MSPL prior. Only each scene's training
    columns are used. ``library`` overrides
    the multispectral sensors (default: ``anyband_xr.srf`` when ``use_sensor_library``). With
    ``init_weights`` ("default" for the shipped model, or a weights stem) training starts from those weights, e.g.
    to fine-tune on one's own scene.
    """
    cfg = load_config(config)
    torch.manual_seed(cfg["seed"])
    torch.set_num_threads(int(cfg["threads"]))
    threadpool_limits(int(cfg["threads"]))
    device, rank = _distributed()
    data = _training_data(cfg, scenes, library, rank)
    run = _start_run(cfg, data, device)
    steps = int(cfg["steps"])
    samples = (steps - run.step) * cfg["batch_size"]
    loader = make_loader(data.dataset, cfg["batch_size"], cfg["num_workers"], cfg["seed"] + run.step, samples)
    extra = _run_record(cfg, data.scenes, data.synthetic, data.library_record, data.library, run.mspl, device)
    prior_path = Path(str(cfg["output"]) + ".prior.safetensors")
    prior_path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"S": data.prior, "support": data.support}, str(prior_path))
    save_gaussian_prior(data.spectral_prior, spectral_prior_path(cfg["output"]))
    _fit(run, loader, extra, rank)
    return Path(cfg["output"])


def main(argv: Sequence[str] | None = None) -> Path:
    """CLI: ``anyband train CONFIG`` (the JSON config path)."""
    parser = argparse.ArgumentParser(prog="anyband train", description="Train the AnyBand-Diff MCD model.")
    parser.add_argument("config", help="JSON training config (see configs/default.json)")
    args = parser.parse_args(argv)
    return train(args.config)
