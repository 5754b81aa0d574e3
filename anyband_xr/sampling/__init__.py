"""DDIM sampling and Physics-Guided Sampling (PGS)."""

from anyband_xr.sampling.ddim import Trajectory, ddim_timesteps, sample

__all__ = ["Trajectory", "ddim_timesteps", "sample"]
