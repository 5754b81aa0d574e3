"""Tiled repair of Zarr scenes too large for memory on dask-distributed: resumable batch jobs (``anyband repair``)."""

from anyband_xr.scale.zarr_job import JobSummary, repair_zarr

__all__ = ["JobSummary", "repair_zarr"]
