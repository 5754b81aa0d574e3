"""Training of the MCD model: dual stochastic masking, xbatcher data pipeline, MSPL, the trainer."""

from anyband_xr.training.masking import MaskingConfig, Observation, SensorLibrary, dual_stochastic_mask
from anyband_xr.training.train import load_config, main, train

__all__ = ["MaskingConfig", "Observation", "SensorLibrary", "dual_stochastic_mask", "load_config", "main", "train"]
