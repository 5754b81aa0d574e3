"""AnyBand-Diff model: MCD U-Net with CAM, diffusion schedule, weight loading (its conditioning: ``anyband_xr.conditioning``).

The names below are imported on first access, so ``anyband_xr.model.weights`` (paths, metadata, validated steps)
can be read without importing torch.
"""

import importlib

_EXPORTS = {
    "LinearSchedule": "diffusion",
    "MCDUNet": "unet",
    "ModelConfig": "unet",
    "count_parameters": "unet",
    "load_model": "weights",
    "save_checkpoint": "weights",
    "weights_hash": "weights",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Import ``name`` from its submodule on first access (``anyband_xr.model.load_model`` ...)."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"anyband_xr.model.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'anyband_xr.model' has no attribute {name!r}")
