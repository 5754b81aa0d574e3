"""Model weights as safetensors + a JSON config (never pickle), and the shipped default model."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError

from anyband_xr.conditioning.gaussian import (
    GaussianPrior,
    PCAPrior,
    load_gaussian_prior,
    load_pca_prior,
    read_gaussian_prior,
    shipped_prior_file,
)

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    import torch

    from anyband_xr.model.unet import MCDUNet

DEFAULT_NAME = "mcd_default"
#: Suffix of the Gaussian spectral prior a run fitted on its own training scenes, beside its weights.
SPECTRAL_PRIOR_SUFFIX = ".gaussian_prior.safetensors"


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
    from safetensors.torch import save_file

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


def _weights_file(path: str | Path | None) -> Path:
    """The ``.safetensors`` file of the weights ``path``; ``FileNotFoundError`` naming it when it is absent."""
    file = _stem(path).with_suffix(".safetensors")
    if not file.is_file():
        beside = f" (its metadata {file.with_suffix('.json').name} is there, the tensors are not)"
        raise FileNotFoundError(
            f"no weights at {file}{beside if file.with_suffix('.json').is_file() else ''}: copy <name>.safetensors "
            "beside <name>.json, pass the right path, or train weights with `anyband train`."
        )
    return file


def metadata_path(path: str | Path | None = None) -> Path:
    """The JSON file next to the weights ``path`` (default: the shipped weights)."""
    return _stem(path).with_suffix(".json")


def read_metadata(path: str | Path | None = None) -> dict:
    """The JSON record written next to the weights (model config, training config, provenance).

    Raises ``FileNotFoundError`` when it is absent and ``ValueError`` when it is not JSON or has no ``model``
    config, both naming the file.
    """
    file = metadata_path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"no weights metadata at {file}: weights are <name>.safetensors with <name>.json beside them (written by "
            "save_checkpoint and `anyband train`); copy the JSON next to the tensors, or pass the right path."
        )
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except ValueError as error:  # JSONDecodeError, or bytes that are not UTF-8 text
        raise ValueError(
            f"weights metadata {file} is not valid JSON ({error}): the file is corrupt or truncated. Restore it "
            "from where the weights came from, or re-save the model with anyband_xr.model.save_checkpoint."
        ) from None
    if not isinstance(record, dict) or not isinstance(record.get("model"), dict):
        raise ValueError(
            f"weights metadata {file} has no 'model' object (the network's configuration), so it is not the "
            "metadata of anyband_xr weights; restore it or re-save the model with anyband_xr.model.save_checkpoint."
        )
    return record


#: DDIM steps when the weights' metadata names none (the paper's 50).
PAPER_STEPS = 50


def sampling_steps(path: str | Path | None = None) -> int:
    """DDIM steps validated for these weights (``sampling.steps`` of their metadata, written by
    ``scripts/choose_steps.py`` from held-out scores), else :data:`PAPER_STEPS`.

    Example:
        >>> sampling_steps()   # steps the shipped default weights were validated at
    """
    sampling = read_metadata(path).get("sampling", {})
    steps = sampling.get("steps", PAPER_STEPS) if isinstance(sampling, dict) else None
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(
            f"weights metadata {metadata_path(path)}: 'sampling' must be an object whose 'steps' is a positive integer "
            f"(got {sampling!r}); fix it or remove the entry (then {PAPER_STEPS} steps are used)."
        )
    return steps


@lru_cache(maxsize=8)
def _load(stem: str, device: str) -> MCDUNet:
    from safetensors.torch import load_file

    from anyband_xr.model.unet import MCDUNet, ModelConfig

    record = read_metadata(stem)
    model = MCDUNet(ModelConfig.from_dict(record["model"]))
    try:
        tensors = load_file(stem + ".safetensors", device="cpu")
    except SafetensorError as error:
        raise ValueError(
            f"weights {stem}.safetensors cannot be read ({error}): the file is corrupt or truncated. Restore it from "
            "where the weights came from."
        ) from None
    model.load_state_dict(tensors)
    return model.to(device).eval().requires_grad_(False)


def load_model(path: str | Path | None = None, device: str | torch.device | None = None) -> MCDUNet:
    """Load an ``MCDUNet`` in eval mode (default: the shipped ``anyband_xr/data/weights/mcd_default``).

    Cached per (path, device): do not modify the returned model in place.
    """
    import torch

    stem = _weights_file(path).with_suffix("")
    return _load(str(stem), str(torch.device(device or "cpu")))


def spectral_prior_path(path: str | Path | None = None) -> Path:
    """Where the weights ``path`` keep the Gaussian spectral prior they were trained with (may be absent)."""
    stem = _stem(path)
    return stem.parent / (stem.name + SPECTRAL_PRIOR_SUFFIX)


@lru_cache(maxsize=8)
def _gaussian_prior(file: str) -> GaussianPrior:
    return read_gaussian_prior(file)


def gaussian_prior(path: str | Path | None = None) -> GaussianPrior:
    """The Gaussian spectral prior the weights ``path`` were trained with (``<stem>.gaussian_prior.safetensors``,
    fitted by their run on its own scenes), else the shipped prior (``conditioning.gaussian.load_gaussian_prior``)."""
    file = spectral_prior_path(path)
    return _gaussian_prior(str(file)) if file.is_file() else load_gaussian_prior()


@lru_cache(maxsize=8)
def _spectral_prior(file: str) -> PCAPrior:
    return PCAPrior.from_gaussian(_gaussian_prior(file))


def spectral_prior(path: str | Path | None = None) -> PCAPrior:
    """The Gaussian spectral prior behind the weights' prior hint: the one fitted by their training run on its own
    scenes (``<stem>.gaussian_prior.safetensors``, so a leave-one-scene-out model never conditions on a prior that
    saw the left-out scene), else the shipped prior (``conditioning.gaussian.load_pca_prior``)."""
    file = spectral_prior_path(path)
    return _spectral_prior(str(file)) if file.is_file() else load_pca_prior()


def weights_hash(path: str | Path | None = None) -> str:
    """SHA-256 (hex) of the safetensors file, for provenance."""
    return _sha256(_weights_file(path))


def spectral_prior_hash(path: str | Path | None = None) -> str:
    """SHA-256 (hex) of the Gaussian spectral prior file the weights ``path`` condition on (:func:`spectral_prior`:
    their run's own, else the shipped one), for provenance."""
    file = spectral_prior_path(path)
    return _sha256(file if file.is_file() else shipped_prior_file())


def _sha256(file: Path | Traversable) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
