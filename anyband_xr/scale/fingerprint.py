"""Fingerprints of a tiled job's input and mask: recorded in the output store, compared when a job resumes.

A resumed job must read the same scene and mask as the run that started the store, or its output would mix two
runs. The fingerprint records the input's shape, store chunks, a hash of its wavelength and spatial coordinates, a
hash of its metadata (variable name, dims, attrs) and of the values of its first write region (a cheap check for a
different scene on the same grid; the rest of the input is not read), and a content hash of the mask (values, dims
and labels, read one stored chunk at a time, so a rechunked copy of a mask hashes differently). Labels name each
entry in the message of a refused resume.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator

import numpy as np
import xarray as xr

from anyband_xr import spectral

#: What each fingerprint entry of the job record means, for the message of a refused resume.
LABELS = {
    "anyband_input_shape": "input shape (spectral, y, x)",
    "anyband_input_chunks": "input store chunks",
    "anyband_input_coords": "input coordinates (wavelength, y, x)",
    "anyband_input_metadata": "input metadata (variable name, dims, attrs)",
    "anyband_input_values": "input values (first write region)",
    "anyband_mask": "mask (values, dims, labels and store chunks)",
    "anyband_prior_sha256": "Gaussian spectral prior (sha256; older stores do not record it)",
    "anyband_std": "std variable (calibrated by the self-check, the spread over diffusion samples, or none)",
}
#: The mask entry of a job whose only missing values are the NaN (and fill values) of the input.
NO_MASK = "none: NaN and fill values of the input"


def _jsonable(value: object) -> object:
    return np.asarray(value).tolist()


def _update_labels(digest: hashlib._Hash, da: xr.DataArray) -> None:
    """Feed the dims and the coordinate labels of every dim of ``da`` (wavelengths in nm) to ``digest``."""
    for dim in da.dims:
        if spectral.WAVELENGTH in da.coords and da[spectral.WAVELENGTH].dims == (dim,):
            labels = spectral.wavelengths(da)
        else:
            labels = np.asarray(da.indexes[dim]) if dim in da.indexes else np.arange(da.sizes[dim])
        digest.update(f"{dim}:{labels.dtype.str}:{labels.size};".encode())
        digest.update(np.ascontiguousarray(labels).tobytes())


def _blocks(da: xr.DataArray) -> Iterator[np.ndarray]:
    """The values of ``da`` block by block, one stored chunk at a time (the whole array when it has no chunks)."""
    chunks = da.encoding.get("chunks") or da.shape
    starts = [range(0, n, max(int(c), 1)) for n, c in zip(da.shape, chunks)]
    for corner in itertools.product(*starts):
        region = {d: slice(s, s + int(c)) for d, s, c in zip(da.dims, corner, chunks)}
        yield np.ascontiguousarray(da.variable.isel(region).values)


def mask_hash(mask: xr.DataArray | None) -> str:
    """sha256 of a mask's dims, labels, dtype and values, read one stored chunk at a time; ``NO_MASK`` for None."""
    if mask is None:
        return NO_MASK
    digest = hashlib.sha256(f"{mask.dtype.str};".encode())
    _update_labels(digest, mask)
    for block in _blocks(mask):
        digest.update(block.tobytes())
    return digest.hexdigest()


def input_fingerprint(
    raw: xr.DataArray, like: xr.DataArray, name: str, first: tuple[slice, slice]
) -> dict[str, object]:
    """The input's entries of the job record.

    Args:
        raw: the input variable as stored (lazily indexed), for its store chunks, dims and attrs.
        like: the same, standardised and ordered (spectral, y, x) (wavelengths in nm).
        name: the variable's name in the input store.
        first: (y, x) pixel slices of the first write region, whose values are hashed.
    """
    coords = hashlib.sha256()
    _update_labels(coords, like)
    metadata = json.dumps({"name": name, "dims": list(map(str, raw.dims)), "attrs": raw.attrs}, sort_keys=True,
                          default=_jsonable)
    region = like.isel({like.dims[1]: first[0], like.dims[2]: first[1]})
    values = np.ascontiguousarray(region.variable.values)
    chunks = raw.encoding.get("chunks") or raw.shape
    return {
        "anyband_input_shape": [int(n) for n in like.shape],
        "anyband_input_chunks": {str(d): int(c) for d, c in zip(raw.dims, chunks)},
        "anyband_input_coords": coords.hexdigest(),
        "anyband_input_metadata": hashlib.sha256(metadata.encode()).hexdigest(),
        "anyband_input_values": hashlib.sha256(f"{values.dtype.str};".encode() + values.tobytes()).hexdigest(),
    }
