"""One BLAS thread for computations whose bits must not depend on the thread count.

Multi-threaded BLAS/LAPACK splits some products and factorisations differently with the number of threads, so their
last bits change with it: a one-thread dask worker and a many-thread client would compute a few ulps apart, and the
tiled Zarr job promises the in-memory repair's bits. ``threadpoolctl.threadpool_limits`` alone is not thread-safe
(the limit is process-wide and each context restores what it found on entry, so overlapping blocks of the threaded
scheduler could restore many threads under another block's feet); :func:`one_thread` counts the blocks inside and
restores the limits when the last one leaves.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits

_lock = threading.Lock()
_inside = 0
_limiter: threadpool_limits | None = None


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with BLAS/LAPACK on one thread (process-wide while any such block runs, in any thread)."""
    global _inside, _limiter
    with _lock:
        if _inside == 0:
            _limiter = threadpool_limits(1)
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0:
                _limiter.restore_original_limits()
                _limiter = None
