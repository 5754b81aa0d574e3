"""Model weights as safetensors + a JSON config (never pickle), and the shipped default model."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from anyband_xr.model.unet import MCDUNet, ModelConfig

DEFAULT_NAME = "mcd_default"


def default_weights() -> Path:
    """Stem of the shipped default weights (``<stem>.safetensors`` + ``<stem>.json``) inside the package."""
    return Path(str(resources.files("anyband_xr") / "data" / "weights" / DEFAULT_NAME))


def _stem(path: str | Path | None) -> Path:
    if path is None:
        return default_weights()
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".safetensors", ".json") else path


def save_checkpoint(model: MCDUNet, path: str | Path, config: dict | None = None, extra: dict | None = None) -> Path:
    """Write ``path.safetensors`` (the state dict) and ``path.json`` (model config + ``config`` + ``extra``).

    Files are written to temporaries and renamed, so a reader never sees half a checkpoint. Returns the stem.
    """
    stem = _stem(path)
    stem.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    record = {"model": model.config.to_dict(), "training": config or {}, **(extra or {})}
    tmp_weights = stem.parent / (stem.name + ".safetensors.tmp")
    tmp_json = stem.parent / (stem.name + ".json.tmp")
    save_file(tensors, str(tmp_weights))
    tmp_json.write_text(json.dumps(record, indent=2, default=str))
    tmp_weights.replace(stem.with_suffix(".safetensors"))
    tmp_json.replace(stem.with_suffix(".json"))
    return stem


def metadata_path(path: str | Path | None = None) -> Path:
    """The JSON file next to the weights ``path`` (default: the shipped weights)."""
    return _stem(path).with_suffix(".json")


def read_metadata(path: str | Path | None = None) -> dict:
    """The JSON record written next to the weights (model config, training config, provenance)."""
    return json.loads(metadata_path(path).read_text())


#: DDIM steps when the weights' metadata names none (the paper's 50).
PAPER_STEPS = 50


def sampling_steps(path: str | Path | None = None) -> int:
    """DDIM steps validated for these weights (``sampling.steps`` of their metadata, written by
    ``scripts/choose_steps.py`` from held-out scores), else :data:`PAPER_STEPS`.

    Example:
        >>> sampling_steps()   # steps the shipped default weights were validated at
    """
    return int(read_metadata(path).get("sampling", {}).get("steps", PAPER_STEPS))


@lru_cache(maxsize=8)
def _load(stem: str, device: str) -> MCDUNet:
    record = read_metadata(stem)
    model = MCDUNet(ModelConfig.from_dict(record["model"]))
    model.load_state_dict(load_file(stem + ".safetensors", device="cpu"))
    return model.to(device).eval().requires_grad_(False)


def load_model(path: str | Path | None = None, device: str | torch.device | None = None) -> MCDUNet:
    """Load an ``MCDUNet`` in eval mode (default: the shipped ``anyband_xr/data/weights/mcd_default``).

    Cached per (path, device): do not modify the returned model in place.
    """
    stem = _stem(path)
    if not stem.with_suffix(".safetensors").exists():
        raise FileNotFoundError(f"no weights at {stem.with_suffix('.safetensors')}; train them with `anyband train`.")
    return _load(str(stem), str(torch.device(device or "cpu")))


def weights_hash(path: str | Path | None = None) -> str:
    """SHA-256 (hex) of the safetensors file, for provenance."""
    digest = hashlib.sha256()
    with open(_stem(path).with_suffix(".safetensors"), "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
