"""Tiled repair of Zarr scenes too large for memory on dask-distributed: resumable batch jobs (``anyband repair``)."""

from anyband_xr.scale.zarr_job import JobFailed, JobSummary, repair_zarr

__all__ = ["JobFailed", "JobSummary", "repair_zarr"]
