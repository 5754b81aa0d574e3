"""Overlapping spatial tiles blended with a smooth window, and noise tied to global pixel positions.

Noise is drawn per fixed block of the global pixel grid from a seed and the block's position, so a pixel gets the
same starting noise however the scene is chunked or tiled, and in whatever order tiles are scheduled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

NOISE_BLOCK = 32


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of length ``tile`` covering ``size`` with at least ``overlap`` shared pixels."""
    if tile <= overlap:
        raise ValueError(f"tile ({tile}) must be larger than overlap ({overlap}); pass a smaller overlap, e.g. overlap={tile // 4}.")
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    return starts + [size - tile]


def tiles(height: int, width: int, tile: int, overlap: int) -> Iterator[tuple[slice, slice]]:
    """(y, x) slices of the overlapping tiles covering a ``height`` x ``width`` array."""
    for y0 in tile_starts(height, tile, overlap):
        for x0 in tile_starts(width, tile, overlap):
            yield slice(y0, min(y0 + tile, height)), slice(x0, min(x0 + tile, width))


def ramp(length: int, overlap: int) -> np.ndarray:
    """1-D blending weights: a raised-cosine rise over ``overlap`` pixels at both ends, 1 inside, never 0."""
    weights = np.ones(length)
    n = min(overlap, length // 2)
    if n > 0:
        rise = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)
        weights[:n] = rise
        weights[length - n :] = rise[::-1]
    return weights


def blend_tiles(
    height: int,
    width: int,
    tile: int,
    overlap: int,
    run: Callable[[slice, slice], np.ndarray],
    leading: tuple[int, ...],
) -> np.ndarray:
    """Run ``run(ys, xs) -> array (*leading, h, w)`` on every tile and blend the overlaps with smooth windows."""
    total = np.zeros((*leading, height, width))
    weight = np.zeros((height, width))
    for ys, xs in tiles(height, width, tile, overlap):
        window = np.outer(ramp(ys.stop - ys.start, overlap), ramp(xs.stop - xs.start, overlap))
        total[..., ys, xs] += run(ys, xs) * window
        weight[ys, xs] += window
    return total / weight


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
