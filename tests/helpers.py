"""Shared test helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dask.callbacks import Callback


class _ComputeCounter(Callback):
    """Dask callback counting graph executions (one per compute/persist of a graph)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def _start(self, dsk) -> None:
        self.count += 1


@contextmanager
def count_dask_computes() -> Iterator[_ComputeCounter]:
    """Count dask graph executions inside the block: ``with count_dask_computes() as c: ...; assert c.count == 0``."""
    counter = _ComputeCounter()
    with counter:
        yield counter
