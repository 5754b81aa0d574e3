"""One BLAS thread while any block asks for it, from any thread; the limits come back when the last one leaves."""

import threading

import numpy  # noqa: F401  (loads the BLAS whose threads are counted)
from threadpoolctl import threadpool_info

from anyband_xr import blas


def _threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_overlapping_blocks_in_two_threads_keep_one_thread_until_the_last_leaves():
    before = _threads()
    assert before  # a BLAS is loaded: the test is not vacuous
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first() -> None:
        with blas.one_thread():
            first_in.set()
            second_in.wait()
        first_out.set()

    def second() -> None:
        first_in.wait()
        with blas.one_thread():
            second_in.set()
            first_out.wait()
            seen["after the first left"] = _threads()

    workers = [threading.Thread(target=f) for f in (first, second)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert all(n == 1 for n in seen["after the first left"])
    assert _threads() == before
