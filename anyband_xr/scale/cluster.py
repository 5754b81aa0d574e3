"""Dask-distributed set-up of a tiled job: a LocalCluster or an existing scheduler, and per-worker preparation."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from distributed import Client, LocalCluster, Worker, WorkerPlugin

from anyband_xr.settings import check_device


class PrepareWorker(WorkerPlugin):
    """Sets the torch thread count of a worker and loads the model once (cached per process by ``load_model``)."""

    name = "anyband-prepare"

    def __init__(self, torch_threads: int | None, device: str | None, load: bool) -> None:
        self.torch_threads = torch_threads
        self.device = device
        self.load = load

    def setup(self, worker: Worker) -> None:
        import torch

        if self.torch_threads is not None:
            torch.set_num_threads(self.torch_threads)
        if self.load:
            from anyband_xr.model.weights import load_model
            from anyband_xr.sampling.conditional import resolve_device

            load_model(device=resolve_device(self.device))


def _prepare(client: Client, device: str | None, load: bool) -> None:
    """Register ``PrepareWorker`` on a client of a running scheduler, after checking ``device`` on one of its
    workers (a client without a GPU may drive GPU workers), so a bad device is one clear error."""
    if load:
        client.submit(check_device, device, pure=False).result()
    client.register_plugin(PrepareWorker(None, device, load))


@contextmanager
def session(scheduler: str | Client | None, workers: int | None, method: str, device: str | None) -> Iterator[Client]:
    """A prepared client: of ``scheduler`` (a Client, or an address) or of a LocalCluster made and closed here.

    The LocalCluster has ``workers`` processes (default: one per core), one thread and one torch thread each. Every
    worker, including one that joins or restarts later, loads the model once when ``method`` is diffusion; on a
    running scheduler ``device`` is checked on a worker first (``ValueError`` naming it).
    """
    load = method == "diffusion"
    if isinstance(scheduler, Client):
        _prepare(scheduler, device, load)
        yield scheduler
    elif scheduler is not None:
        with Client(scheduler) as client:
            _prepare(client, device, load)
            yield client
    else:
        n = workers or os.cpu_count() or 1
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
            with Client(cluster) as client:
                client.register_plugin(PrepareWorker(1, device, load))
                yield client
