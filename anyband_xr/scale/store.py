"""The output Zarr v3 store of a tiled job: metadata-only template, region writes, per-tile completion counts.

A tile counts as done once its completion count (the ``anyband_tile_writes`` coordinate, one chunk per tile) is
non-zero; the count is raised only after the tile's data, its count of pixels without any observed band
(``anyband_tile_empty``) and of observed values screened out (``anyband_tile_screened``) are written, so a tile cut
off mid-write is redone.
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

from anyband_xr.scale.fingerprint import LABELS
from anyband_xr.scale.layout import TileGrid

WRITES = "anyband_tile_writes"
EMPTY = "anyband_tile_empty"
SCREENED = "anyband_tile_screened"
STD = "std"
_COMPLETE = "anyband_template"


def write_template(
    target: str | Path, like: xr.DataArray, name: str, grid: TileGrid, std: str | None, attrs: dict[str, Any],
    fingerprint: dict[str, Any],
) -> None:
    """Create the output store from ``like`` (dims (spectral, y, x)): coords, CRS and attrs, no pixel data.

    Pixel variables are chunked like the write regions with one chunk along the spectral axis. ``attrs`` (the
    provenance) go on the dataset and on the variables, ``fingerprint`` (of the input and mask) on the dataset
    only; an existing incomplete store is replaced. ``std``: the ``long_name`` of a per-value ``std`` variable
    (e.g. ``selfcheck.CALIBRATED_STD``); None: none.
    """
    dims = like.dims
    chunks = (like.shape[0], *grid.sizes)
    dtype = like.dtype if np.issubdtype(like.dtype, np.floating) else np.dtype("float32")
    empty = dsa.empty(like.shape, chunks=chunks, dtype=dtype)
    variables = {name: xr.Variable(dims, empty, {**like.attrs, **attrs})}
    if std is not None:
        variables[STD] = xr.Variable(dims, empty, {"long_name": std, "units": like.attrs.get("units", "")})
    ds = xr.Dataset(variables, coords=like.coords, attrs={**attrs, **fingerprint}).drop_encoding()
    ds = ds.assign_coords({
        WRITES: (("tile_y", "tile_x"), np.zeros(grid.shape, dtype=np.int32),
                 {"long_name": "completed writes per output tile (1 once written)"}),
        EMPTY: (("tile_y", "tile_x"), np.zeros(grid.shape, dtype=np.int64),
                {"long_name": "pixels of the tile without any observed band, left NaN"}),
        SCREENED: (("tile_y", "tile_x"), np.zeros(grid.shape, dtype=np.int64),
                   {"long_name": "observed values of the tile treated as missing (fill values, implausible values)"}),
    })
    for counts in (WRITES, EMPTY, SCREENED):
        ds[counts].encoding["chunks"] = (1, 1)
    if like.rio.crs is not None:
        ds = ds.rio.write_crs(like.rio.crs)
    for var in variables:
        ds[var].encoding["chunks"] = chunks
    ds.to_zarr(str(target), mode="w", compute=False, zarr_format=3, consolidated=False)
    zarr.open_group(str(target), mode="r+").attrs[_COMPLETE] = "complete"


def job_state(target: str | Path) -> str:
    """What is at ``target``: ``"absent"``, ``"complete"`` (a job store), ``"partial"`` (a template cut off while
    being written) or ``"other"`` (anything else, never to be overwritten)."""
    if not Path(target).exists():
        return "absent"
    try:
        attrs = zarr.open_group(str(target), mode="r").attrs
    except (FileNotFoundError, NotADirectoryError, zarr.errors.BaseZarrError):
        return "other"
    if attrs.get(_COMPLETE) == "complete":
        return "complete"
    return "partial" if "anyband_version" in attrs else "other"


def stored_record(target: str | Path) -> dict[str, Any] | None:
    """The job record of a complete template at ``target``; None when there is no store or only part of one."""
    try:
        attrs = dict(zarr.open_group(str(target), mode="r").attrs)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        return None
    if attrs.pop(_COMPLETE, None) != "complete":
        return None
    return attrs


def _shown(value: Any) -> str:
    """A record value for a message: sha256 hashes shortened to 12 hex digits."""
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return f"sha256 {value[:12]}"
    return "nothing" if value is None else repr(value)


def check_record(target: str | Path, stored: dict[str, Any], expected: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming every entry where a stored job record differs from the one a resumed job
    would write (the input and mask fingerprints, the settings, the model weights)."""
    expected = json.loads(json.dumps(expected))
    diff = sorted(k for k, v in expected.items() if stored.get(k) != v)
    if diff:
        lines = "; ".join(
            f"{LABELS.get(k, k.removeprefix('anyband_'))}: stored {_shown(stored.get(k))}, now {_shown(expected[k])}"
            for k in diff
        )
        raise ValueError(
            f"cannot resume {target}: it was started from another input, mask or settings ({lines}). Resume with "
            "the same input, mask, settings and weights, or write to a new output store."
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


def tile_counts(target: str | Path) -> tuple[int, int]:
    """(pixels without any observed band, observed values screened out) over the tiles written so far."""
    return tuple(int(zarr.open_array(str(target), path=path, mode="r")[...].sum()) for path in (EMPTY, SCREENED))


def mark_written(target: str | Path, iy: int, ix: int, empty: int, screened: int) -> int:
    """Record tile (iy, ix)'s counts of ``empty`` pixels and ``screened`` values, then raise its completion count
    (after its data is written); returns the new completion count."""
    zarr.open_array(str(target), path=EMPTY, mode="r+")[iy, ix] = empty
    zarr.open_array(str(target), path=SCREENED, mode="r+")[iy, ix] = screened
    writes = zarr.open_array(str(target), path=WRITES, mode="r+")
    count = int(writes[iy, ix]) + 1
    writes[iy, ix] = count
    return count
