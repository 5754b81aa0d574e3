"""Spatial regions predicted from overlapping windows, and noise tied to global pixel positions.

An axis is cut into regions fixed by the whole scene (``regions``); each region is predicted from its window (the
region grown by ``overlap`` pixels) and keeps only its centre, so the result never depends on chunks or tile order.

Noise is drawn per fixed block of the global pixel grid from a seed and the block's position, so a pixel gets the
same starting noise however the scene is chunked or tiled, and in whatever order tiles are scheduled.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

NOISE_BLOCK = 32


def region_step(size: int, tile: int, overlap: int) -> int:
    """Side (pixels) of the output regions along an axis of ``size`` pixels: the whole axis when it fits in one
    tile, else ``tile - 2 * overlap`` (each region is predicted from its window, the region grown by ``overlap``)."""
    if size <= tile:
        return size
    if tile <= 2 * overlap:
        raise ValueError(
            f"tile ({tile}) must be larger than twice the overlap ({overlap}): each tile keeps its centre, the tile "
            f"less the overlap on both sides. Pass a larger tile or a smaller overlap, e.g. overlap={tile // 8}."
        )
    return tile - 2 * overlap


def regions(size: int, tile: int, overlap: int, start: int = 0, stop: int | None = None) -> Iterator[tuple[slice, slice]]:
    """(region, window) global slices of the regions of an axis of ``size`` pixels that lie in ``[start, stop)``.

    Regions are fixed by the whole axis (every ``region_step`` pixels from 0), never by how it is chunked, so a
    pixel is always predicted from the same window; ``start`` must be a region boundary. A window is its region
    grown by ``overlap`` pixels on both sides, clipped to the axis.
    """
    step = region_step(size, tile, overlap)
    stop = size if stop is None else stop
    if start % step:
        raise ValueError(f"start {start} is not a region boundary (every {step} pixels).")
    for r0 in range(start, stop, step):
        r1 = min(r0 + step, size)
        yield slice(r0, r1), slice(max(r0 - overlap, 0), min(r1 + overlap, size))


def aligned_chunks(size: int, chunks: tuple[int, ...], tile: int, overlap: int) -> tuple[int, ...]:
    """Dask chunks of an axis of ``size`` pixels whose boundaries are region boundaries (``regions``) and which are
    at least ``overlap`` wide, close to the first of ``chunks``: each chunk then needs only an ``overlap`` halo."""
    step = region_step(size, tile, overlap)
    width = step * max(1, -(-max(chunks[0], overlap) // step))
    out = [width] * (size // width)
    rest = size - sum(out)
    if rest and out and rest < overlap:
        out[-1] += rest
    elif rest:
        out.append(rest)
    return tuple(out)


def position_noise(seed: int, sample: int, channels: int, y0: int, x0: int, height: int, width: int) -> np.ndarray:
    """Standard normal noise (channels, height, width) for the global pixel window starting at (y0, x0).

    Each ``NOISE_BLOCK`` square of the global grid has its own generator seeded by (seed, sample, block row,
    block column), so the noise of a pixel depends only on its position.
    """
    out = np.empty((channels, height, width), dtype=np.float32)
    b = NOISE_BLOCK
    for by in range(y0 // b, (y0 + height - 1) // b + 1):
        for bx in range(x0 // b, (x0 + width - 1) // b + 1):
            block = np.random.default_rng([seed, sample, by, bx]).standard_normal((channels, b, b), dtype=np.float32)
            gy0, gx0 = max(by * b, y0), max(bx * b, x0)
            gy1, gx1 = min((by + 1) * b, y0 + height), min((bx + 1) * b, x0 + width)
            out[:, gy0 - y0 : gy1 - y0, gx0 - x0 : gx1 - x0] = block[:, gy0 - by * b : gy1 - by * b, gx0 - bx * b : gx1 - bx * b]
    return out
