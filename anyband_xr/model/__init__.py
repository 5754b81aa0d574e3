"""AnyBand-Diff model: canonical bridge, MCD U-Net with CAM, diffusion schedule, weight loading."""

from anyband_xr.model.bridge import GAIN, Condition, from_model, interpolate_observed, make_condition, to_grid, to_model
from anyband_xr.model.diffusion import LinearSchedule
from anyband_xr.model.unet import MCDUNet, ModelConfig, count_parameters
from anyband_xr.model.weights import load_model, save_checkpoint, weights_hash

__all__ = [
    "GAIN",
    "Condition",
    "LinearSchedule",
    "MCDUNet",
    "ModelConfig",
    "count_parameters",
    "from_model",
    "interpolate_observed",
    "load_model",
    "make_condition",
    "save_checkpoint",
    "to_grid",
    "to_model",
    "weights_hash",
]
