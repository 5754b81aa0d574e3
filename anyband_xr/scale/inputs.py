"""The inputs of a tiled Zarr job, opened and checked before anything starts: the scene variable and its mask.

Only metadata and coordinates are read here (and the mask, chunk by chunk, for its fingerprint), so a job with an
unusable input fails before a cluster starts or an output store is created, with one message that says what to fix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from anyband_xr import spectral
from anyband_xr.io.zarr import open_zarr
from anyband_xr.observation import align_mask, spatial_layout
from anyband_xr.scale.fingerprint import mask_hash
from anyband_xr.scale.tile import MaskSource, open_variable

#: Largest in-memory mask (bytes) a job accepts: it travels with every tile task; larger masks go in a Zarr store.
MAX_MASK_BYTES = 64 * 2**20


def _existing_store(path: str, what: str) -> None:
    if "://" not in path and not Path(path).exists():
        raise FileNotFoundError(f"the {what} store {path} does not exist; check the path.")


def open_source(path: str, variable: str | None) -> tuple[xr.DataArray, xr.DataArray, str, str]:
    """(stored, standardised) views of the source variable, its name in the store and its spectral dim.

    The standardised view has wavelengths in nm and dims (spectral, y, x); both are lazily indexed (nothing read).
    """
    _existing_store(path, "input")
    raw = open_zarr(path, variable, chunks=None)
    dim = spectral.spectral_dim(raw)
    if (np.diff(spectral.wavelengths(raw)) <= 0).any():
        raise ValueError(f"the wavelengths along {dim!r} of {path} are not strictly ascending; sort the store first.")
    loop, y, x = spatial_layout(raw, dim)
    if loop:
        raise ValueError(f"repair_zarr repairs one (spectral, y, x) scene; {path} has extra dims {loop}. Split them.")
    return raw, spectral.standardize(raw).transpose(dim, y, x), str(raw.name), dim


def _check_mask(like: xr.DataArray, mask: xr.DataArray, where: str) -> None:
    """Raise unless ``mask`` is boolean and fits ``like`` (dims, sizes, labels), with spatial labels in its order
    (tiles slice the mask by position)."""
    try:
        align_mask(like, mask.chunk() if mask.chunks is None else mask)
    except (TypeError, ValueError) as err:
        raise type(err)(f"the mask {where} does not fit the input: {err}") from err
    for dim in like.dims[1:]:
        if dim in mask.indexes and dim in like.indexes:
            mine, theirs = np.asarray(like.indexes[dim]), np.asarray(mask.indexes[dim])
            same = np.allclose(mine, theirs) if np.issubdtype(mine.dtype, np.number) else np.array_equal(mine, theirs)
            if not same:
                raise ValueError(
                    f"the mask {where} lists its {dim!r} coordinates in another order than the input; write it on "
                    f"the input's grid, e.g. mask.reindex({dim}=scene.{dim})."
                )


def open_mask(
    source: str, like: xr.DataArray, mask: xr.DataArray | str | Path | None, mask_variable: str | None
) -> tuple[MaskSource, str]:
    """Where the tiles find the mask (True = missing), checked against ``like``, and the mask's content hash.

    Args:
        source: the input store (a ``mask_variable`` without ``mask`` is one of its variables).
        like: the standardised input (dims (spectral, y, x)).
        mask: a boolean DataArray, a Zarr store path, or None (NaN and fill values mark missing values).
        mask_variable: the mask's variable in its store (may be omitted when the store holds one variable).
    """
    if isinstance(mask, xr.DataArray):
        if mask_variable is not None:
            raise ValueError("pass either a mask DataArray or mask_variable, not both.")
        if mask.nbytes > MAX_MASK_BYTES:
            raise ValueError(
                f"the mask DataArray holds {mask.nbytes / 2**20:.0f} MiB, and an in-memory mask is sent with every "
                "tile task. Write it to a Zarr store (mask.to_dataset(name='missing').to_zarr('mask.zarr')) and pass "
                "mask='mask.zarr', or pass a mask over the spectral dim only."
            )
        loaded = mask.load()
        _check_mask(like, loaded, "DataArray")
        return MaskSource(array=loaded), mask_hash(loaded)
    if mask is None and mask_variable is None:
        return MaskSource(), mask_hash(None)
    if mask is not None and not isinstance(mask, (str, Path)):
        raise TypeError(f"mask must be a boolean DataArray or a Zarr store path, got {type(mask).__name__}.")
    path = source if mask is None else str(mask)
    _existing_store(path, "mask")
    stored = open_variable(path, mask_variable)
    _check_mask(like, stored, f"{path}:{stored.name}")
    return MaskSource(store=path, variable=str(stored.name)), mask_hash(stored)
