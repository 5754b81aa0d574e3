"""The grid of write regions of a tiled Zarr job: chunk-aligned regions, each read with a halo of context."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class TileGrid:
    """Write regions of ``size`` pixels (one side for both axes, or (rows, columns)) tiling a ``height`` x
    ``width`` scene (the last ones smaller).

    Regions coincide with the output Zarr chunks, so concurrent writes never share a chunk. Each region is repaired
    from its window: the region grown by ``halo`` pixels on every side, clipped to the scene.
    """

    height: int
    width: int
    size: int | tuple[int, int]
    halo: int

    def __post_init__(self) -> None:
        if min(self.sizes) < 1 or self.halo < 0:
            raise ValueError(f"region size must be >= 1 and halo >= 0 pixels, got {self.size} and {self.halo}.")

    @property
    def sizes(self) -> tuple[int, int]:
        """Region side along y and x (pixels)."""
        return (self.size, self.size) if isinstance(self.size, int) else tuple(self.size)

    @property
    def shape(self) -> tuple[int, int]:
        """Number of regions along y and x."""
        sy, sx = self.sizes
        return -(-self.height // sy), -(-self.width // sx)

    def __len__(self) -> int:
        ny, nx = self.shape
        return ny * nx

    def __iter__(self) -> Iterator[tuple[int, int]]:
        ny, nx = self.shape
        return ((iy, ix) for iy in range(ny) for ix in range(nx))

    def region(self, iy: int, ix: int) -> tuple[slice, slice]:
        """Global (y, x) pixel slices written by region (iy, ix)."""
        (sy, sx) = self.sizes
        y0, x0 = iy * sy, ix * sx
        return slice(y0, min(y0 + sy, self.height)), slice(x0, min(x0 + sx, self.width))

    def window(self, iy: int, ix: int) -> tuple[slice, slice]:
        """Global (y, x) pixel slices read to repair region (iy, ix): the region plus its halo, inside the scene."""
        ys, xs = self.region(iy, ix)
        return (
            slice(max(ys.start - self.halo, 0), min(ys.stop + self.halo, self.height)),
            slice(max(xs.start - self.halo, 0), min(xs.stop + self.halo, self.width)),
        )
