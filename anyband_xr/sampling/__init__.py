"""DDIM sampling and Physics-Guided Sampling (PGS)."""

from anyband_xr.sampling.ddim import DDIM, Guidance, Known, Trajectory, ddim_timesteps, sample

__all__ = ["DDIM", "Guidance", "Known", "Trajectory", "ddim_timesteps", "sample"]
