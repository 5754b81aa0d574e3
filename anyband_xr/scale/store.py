"""The output Zarr v3 store of a tiled job: metadata-only template, region writes, per-tile completion counts.

A tile counts as done once its completion count (the ``anyband_tile_writes`` coordinate, one chunk per tile) is
non-zero; the count is raised only after the tile's data is written, so a tile cut off mid-write is redone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dask.array as dsa
import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor used for the CRS)
import xarray as xr
import zarr

from anyband_xr.scale.layout import TileGrid

WRITES = "anyband_tile_writes"
STD = "std"
_COMPLETE = "anyband_template"


def write_template(
    target: str | Path, like: xr.DataArray, name: str, grid: TileGrid, with_std: bool, attrs: dict[str, Any]
) -> None:
    """Create the output store from ``like`` (dims (spectral, y, x)): coords, CRS and attrs, no pixel data.

    Pixel variables are chunked like the write regions with one chunk along the spectral axis. ``attrs`` (the
    job record) go on the dataset and on the variables; an existing incomplete store is replaced.
    """
    dims = like.dims
    chunks = (like.shape[0], grid.size, grid.size)
    dtype = like.dtype if np.issubdtype(like.dtype, np.floating) else np.dtype("float32")
    empty = dsa.empty(like.shape, chunks=chunks, dtype=dtype)
    variables = {name: xr.Variable(dims, empty, {**like.attrs, **attrs})}
    if with_std:
        std_attrs = {"long_name": "posterior standard deviation over samples", "units": like.attrs.get("units", "")}
        variables[STD] = xr.Variable(dims, empty, std_attrs)
    ds = xr.Dataset(variables, coords=like.coords, attrs=attrs).drop_encoding()
    ds = ds.assign_coords({WRITES: (("tile_y", "tile_x"), np.zeros(grid.shape, dtype=np.int32))})
    ds[WRITES].attrs["long_name"] = "completed writes per output tile (1 once written)"
    ds[WRITES].encoding["chunks"] = (1, 1)
    if like.rio.crs is not None:
        ds = ds.rio.write_crs(like.rio.crs)
    for var in variables:
        ds[var].encoding["chunks"] = chunks
    ds.to_zarr(str(target), mode="w", compute=False, zarr_format=3, consolidated=False)
    zarr.open_group(str(target), mode="r+").attrs[_COMPLETE] = "complete"


def stored_record(target: str | Path) -> dict[str, Any] | None:
    """The job record of a complete template at ``target``; None when there is no store or only part of one."""
    try:
        attrs = dict(zarr.open_group(str(target), mode="r").attrs)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        return None
    if attrs.pop(_COMPLETE, None) != "complete":
        return None
    return attrs


def check_record(stored: dict[str, Any], expected: dict[str, Any]) -> None:
    """Raise ``ValueError`` unless a stored job record matches the one a resumed job would write."""
    expected = json.loads(json.dumps(expected))
    diff = {k: (stored.get(k), v) for k, v in expected.items() if stored.get(k) != v}
    if diff:
        lines = ", ".join(f"{k}: stored {a!r}, requested {b!r}" for k, (a, b) in sorted(diff.items()))
        raise ValueError(
            f"cannot resume: the output store was started with other settings ({lines}). Resume with the same "
            "settings (and model weights), or write to a new store."
        )


def tile_writes(target: str | Path, *index: int) -> np.ndarray:
    """Completion counts (tiles_y, tiles_x) of the tiles, 0 = still to do, 1 = done; of one tile given its index."""
    return zarr.open_array(str(target), path=WRITES, mode="r")[index or ...]


def write_region(
    target: str | Path, name: str, dims: tuple[str, str, str], ys: slice, xs: slice, mean: np.ndarray,
    std: np.ndarray | None,
) -> None:
    """Write one region's values (and std) into its slices of the template (explicit region, no coords)."""
    variables = {name: (dims, mean)}
    if std is not None:
        variables[STD] = (dims, std)
    region = {dims[0]: slice(None), dims[1]: ys, dims[2]: xs}
    xr.Dataset(variables).to_zarr(str(target), region=region, mode="r+", zarr_format=3, consolidated=False)


def mark_written(target: str | Path, iy: int, ix: int) -> int:
    """Raise the completion count of tile (iy, ix) after its data is written; returns the new count."""
    writes = zarr.open_array(str(target), path=WRITES, mode="r+")
    count = int(writes[iy, ix]) + 1
    writes[iy, ix] = count
    return count
