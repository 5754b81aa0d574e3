"""``repair_zarr``: repair a Zarr scene too large for memory, tile by tile on dask-distributed, resumably.

Everything that can be checked is checked before a cluster starts or the output store is created: the input, the
mask, the settings, the device and the output store (a resumed job's fingerprints included). What fails later is a
``JobFailed``.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import xarray as xr
from dask.base import tokenize
from dask.delayed import Delayed
from distributed import Client, as_completed
from tqdm.auto import tqdm

from anyband_xr import selfcheck, spectral, tiling
from anyband_xr.engine import SCENE_PRIOR_METHODS, inscene_prior
from anyband_xr.io.zarr import open_zarr
from anyband_xr.lowrank import UnseenBandsError
from anyband_xr.observation import looks_like_reflectance, missing_mask, screen
from anyband_xr.scale import inputs, store
from anyband_xr.scale.cluster import session
from anyband_xr.scale.fingerprint import input_fingerprint
from anyband_xr.scale.layout import TileGrid
from anyband_xr.scale.tile import TileJob, read_window, run_tile
from anyband_xr.settings import RepairSettings


class JobFailed(RuntimeError):
    """A tiled job that passed every check failed while running (tiles that failed, tiles never written, a
    cluster that would not start); the message says whether ``resume=True`` (``--resume``) can finish it."""


@dataclass(frozen=True)
class JobSummary:
    """What a run did: tiles repaired now / already done before / in all, repaired pixels, pixels without any
    observed band (left NaN) and observed values screened out as missing (conventional fill values such as -9999,
    reflectance out of range; both over the whole scene), wall time (s), and the dask dashboard link (None when
    unknown). ``str(summary)`` is a one-line report."""

    tiles_done: int
    tiles_skipped: int
    tiles_total: int
    pixels: int
    empty_pixels: int
    screened_values: int
    seconds: float
    dashboard: str | None

    @property
    def pixels_per_second(self) -> float:
        """Spatial pixels (all bands) repaired per second of wall time in this run."""
        return self.pixels / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (
            f"{self.tiles_done} tiles repaired, {self.tiles_skipped} already done, {self.tiles_total} in all; "
            f"{self.pixels} pixels in {self.seconds:.1f} s ({self.pixels_per_second:,.0f} pixels/s); "
            f"{self.empty_pixels} pixels without any observed band left NaN"
            + (f"; {self.screened_values} observed values treated as missing (fill or implausible values)"
               if self.screened_values else "")
        )


@dataclass(frozen=True)
class _Plan:
    """A checked job: what the tiles need, the store's template and record, and whether the store exists."""

    job: TileJob
    like: xr.DataArray
    provenance: dict
    fingerprint: dict
    existing: bool


def _check_writable(source: str, target: str, resume: bool) -> str:
    """``store.job_state`` of ``target``; raise when it is the input, something else than a job store, or a job
    store without ``resume``."""
    if "://" not in target and Path(target).resolve() == Path(source).resolve():
        raise ValueError(f"the output store {target} is the input store; write the repair to a new path.")
    state = store.job_state(target)
    if state == "other":
        raise FileExistsError(f"{target} exists and is not a repair job store; choose another output path.")
    if state != "absent" and not resume:
        raise FileExistsError(f"{target} already holds a repair job; pass resume=True (--resume) or remove it.")
    return state


def _check_target(source: str, target: str, record: dict, resume: bool) -> bool:
    """Whether ``target`` already holds this job (to resume); raise when it cannot be written or resumed.

    Only a job store (or a template of one cut off while being written) is ever written into again."""
    state = _check_writable(source, target, resume)
    if state != "complete":
        return False
    store.check_record(target, store.stored_record(target), record)
    return True


def _check_options(operators: list | tuple | None, workers: int | None) -> None:
    if operators is not None and not all(isinstance(op, str) for op in operators):
        raise TypeError("repair_zarr takes PGS operators by name only (they travel to the dask workers).")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a whole number >= 1, got {workers!r}.")


def _region_sizes(shape: tuple[int, int], settings: RepairSettings, region: int | None) -> tuple[int, int]:
    """Write-region side along y and x: the model's regions (``tiling.region_step``) by default; a user's
    ``region`` must hold whole model regions, so that every pixel is predicted from the same window as in memory.
    Classical methods work pixel by pixel: any region, by default ``tile - 2 * overlap``."""
    if settings.method == "diffusion":
        steps = tuple(tiling.region_step(n, settings.tile, settings.overlap) for n in shape)
    else:
        steps = (max(settings.tile - 2 * settings.overlap, 1),) * 2
    if region is None:
        return steps
    if int(region) < 1:
        raise ValueError(f"region must be >= 1 pixel, got {region}.")
    sizes = tuple(min(int(region), n) for n in shape)
    bad = [(s, step) for s, step, n in zip(sizes, steps, shape) if settings.method == "diffusion" and s < n and s % step]
    if bad:
        raise ValueError(
            f"region ({region}) must be a multiple of the model's region side {bad[0][1]} (tile - 2 * overlap) so each "
            f"pixel is predicted from the same window as in memory; e.g. region={2 * bad[0][1]}."
        )
    return sizes


def repair_zarr(
    source: str | Path,
    target: str | Path,
    variable: str | None = None,
    mask: xr.DataArray | str | Path | None = None,
    mask_variable: str | None = None,
    guidance: float = 1.0,
    steps: int | None = None,
    samples: int = 1,
    seed: int | None = None,
    method: str = "auto",
    std: bool = False,
    device: str | None = None,
    tile: int = 256,
    overlap: int = 32,
    operators: list | tuple | None = None,
    grad: str = "x0",
    eta: float = 0.0,
    weights: str | None = None,
    region: int | None = None,
    scheduler: str | Client | None = None,
    workers: int | None = None,
    resume: bool = False,
    progress: bool = True,
) -> JobSummary:
    """Repair the missing values of a Zarr scene into a new Zarr v3 store, one output chunk per dask task.

    Args:
        source: input Zarr store; ``variable`` names its spectral variable (dims (spectral, y, x)) when it holds
            several. NaN counts as missing.
        target: output Zarr v3 store: the repaired variable (same name, coords, CRS and attrs plus provenance),
            ``std`` when ``std`` or ``samples > 1`` (as ``repair(..., return_std=True)`` gives it: with
            ``method="auto"`` or a classical method the calibrated one of a self-check, the split-conformal 68.27%
            half-width; with ``method="diffusion"`` the spread over the diffusion samples), the per-tile
            completion counts ``anyband_tile_writes`` and the per-tile counts of pixels without any observed band
            ``anyband_tile_empty`` and of observed values screened out as missing ``anyband_tile_screened`` (as
            ``repair`` does: -9999 and the like, reflectance out of range).
        mask: boolean, True where missing: a DataArray (e.g. dims ``("wavelength",)``), or a Zarr store path whose
            variable ``mask_variable`` (or only variable) it is; ``mask_variable`` alone names a variable of
            ``source``. Its dims and sizes must fit the input (labels are matched, spatial ones in the same order).
        guidance: PGS scale, as in ``anyband_xr.repair.repair`` (as are ``steps``, ``samples``, ``seed``,
            ``method``, ``device``, ``tile`` and ``overlap`` in pixels, ``operators`` (names only: they travel to
            the workers), ``grad``, ``eta`` and ``weights``); the result does not depend on scheduling or worker
            count. Pixels without any observed band are left NaN and counted, never an error.
        method: ``"auto"`` (the default): the self-check (``anyband_xr.selfcheck``) runs once, before any tile
            (and after every other check), on a window of at most 64 x 64 pixels placed from the mask (the central
            crop unless the mask misses values mostly elsewhere: ``selfcheck.choose_window``; counting them reads
            the mask, and the data's NaN, of the whole scene once), and the method it picks repairs every tile; the
            store's attrs record the choice (``anyband_method`` ``"auto:<chosen>"``) and the scores
            (``anyband_selfcheck_*``). When nothing needs repair the store holds the scene as it is
            (``"auto:none"``); when the mask leaves nothing to hide like it, the diffusion model repairs it, with a
            warning (``"auto:diffusion"``, ``anyband_selfcheck_status`` says why). Or one method by name, as in
            ``repair``.
        std: write the ``std`` also with ``samples=1`` (``method="auto"`` or a classical method; the spread of
            ``method="diffusion"`` needs ``samples > 1``).
        region: side (pixels) of the write regions, which are the output chunks; default: the model's region side
            (``tile - 2 * overlap``, or the whole axis when it fits in one tile), so that a region with its
            ``overlap`` halo on each side is one diffusion tile; a multiple of it otherwise. The result equals
            ``repair(da, ...)`` in memory, bit for bit, whatever the region. With ``method="auto"`` the model is a
            candidate, so ``tile``, ``overlap`` and ``region`` must suit it (checked before the self-check runs).
        scheduler: address of a running dask scheduler, or a ``distributed.Client``; default: a LocalCluster of
            ``workers`` processes (default one per core) with one thread each. With a scheduler, ``device`` is
            checked on a worker.
        resume: continue a job stopped part-way: only tiles without a completion count are repaired, and the
            result is bit for bit that of an uninterrupted run. The store records the input's shape, chunks,
            coordinates, metadata and first region, the mask's content hash and the settings; a resume with any
            of them changed is refused, naming what differs. Without it an existing job store is an error.
        progress: show a progress bar and the dashboard link.

    Returns:
        A ``JobSummary`` (tiles, pixels left NaN for lack of any observation, wall time, pixels per second).

    Raises:
        ValueError, TypeError, KeyError, FileNotFoundError, FileExistsError: before anything starts or is written,
            naming the unusable input, mask, setting, device or output store.
        UnseenBandsError: for ``method="lowrank"``, bands the scene never observes (its prior is fitted once on
            the cluster, before the output store is created).
        JobFailed: when the run fails (failed tiles are named; the other tiles stay written).

    Example:
        >>> summary = repair_zarr("scene.zarr", "repaired.zarr", mask="mask.zarr", steps=20, workers=2)
        >>> print(summary)   # "12 tiles repaired, 0 already done, 12 in all; ... pixels/s; 0 pixels ... left NaN"
        >>> repair_zarr("scene.zarr", "repaired.zarr", mask="mask.zarr", steps=20, resume=True)  # after a crash
    """
    _check_options(operators, workers)
    if std and method == "diffusion" and samples < 2:
        raise ValueError("std=True with method='diffusion' needs samples > 1: its std is the spread over the "
                         "samples. For a calibrated std use method='auto' (the default) or a classical method.")
    source, target = str(source), str(target)
    raw, like, name, dim = inputs.open_source(source, variable)
    settings = RepairSettings.build(
        method=method, guidance=guidance, steps=steps, samples=samples, seed=seed, eta=eta, operators=operators,
        grad=grad, tile=tile, overlap=overlap, device=device if scheduler is None else None, weights=weights,
        reflectance=looks_like_reflectance(like),
    )
    settings = replace(settings, device=None if device is None else str(device))
    mask_source, mask_digest = inputs.open_mask(source, like, mask, mask_variable)
    job = TileJob(
        source=source, variable=name, target=target, name=name, dims=(dim, *like.dims[1:]),
        wavelength_nm=like[spectral.WAVELENGTH].values, grid=TileGrid(*like.shape[1:], 1, 0), settings=settings,
        mask=mask_source, with_std=std or settings.samples > 1,
    )
    chosen, checked, check = None, {}, None
    # auto picks its method by a self-check; a classical method's std is calibrated by one (as repair does). What
    # does not depend on the check is checked before it runs (with auto the model is a candidate: its regions).
    # diffusion measures the share of its correction of a completion that the scene backs (selfcheck._gained)
    checks = settings.method == "auto" or (job.with_std and settings.method != "diffusion")
    if checks or settings.method == "diffusion":
        _region_sizes(like.shape[1:], replace(settings, method="diffusion") if settings.method == "auto" else settings,
                      region)
        _check_writable(source, target, resume)
    if checks:
        check = _self_check(job, like.shape[1:], scheduler)
        if isinstance(check, selfcheck.Unchecked):
            check.warn(settings.method, stacklevel=2)
        checked = check.to_attrs()
    if settings.method == "diffusion":
        settings = replace(settings, correction_gain=_self_check(job, like.shape[1:], scheduler, calibrate=True))
    if settings.method == "auto":
        chosen = check.best
        settings = selfcheck.settings_for(check, settings)
    halo = settings.overlap if settings.method == "diffusion" else 0
    grid = TileGrid(like.shape[1], like.shape[2], _region_sizes(like.shape[1:], settings, region), halo)
    job = replace(job, settings=settings, grid=grid, check=check if job.with_std else None)
    provenance = {**settings.provenance(), **checked, "anyband_region": list(grid.sizes), "anyband_halo": grid.halo}
    if chosen is not None:
        provenance["anyband_method"] = f"auto:{chosen}"
    provenance["anyband_std"] = job.std_name or "none"  # recorded either way: a resume cannot drop or add the std
    fingerprint = {**input_fingerprint(raw, like, name, grid.region(0, 0)), "anyband_mask": mask_digest}
    compared = {k: v for k, v in provenance.items() if not k.startswith("anyband_selfcheck_")}
    existing = _check_target(source, target, {**compared, **fingerprint}, resume)
    plan = _Plan(job, like, provenance, fingerprint, existing)
    try:
        return _run(plan, scheduler, workers, progress)
    except (JobFailed, UnseenBandsError):
        raise
    except Exception as err:
        raise JobFailed(
            f"the job stopped ({type(err).__name__}: {err}); fix the cause and run again with resume=True (--resume)."
        ) from err


def _run(plan: _Plan, scheduler: str | Client | None, workers: int | None, progress: bool) -> JobSummary:
    """Start the session, write the template (new job), repair the pending tiles and verify the store."""
    job, grid = plan.job, plan.job.grid
    start = time.perf_counter()
    with session(scheduler, workers, job.settings.method, job.settings.device) as client:
        if job.settings.method in SCENE_PRIOR_METHODS:
            job = replace(job, prior=client.compute(_scene_prior(job)).result())
        if not plan.existing:
            store.write_template(job.target, plan.like, job.name, grid, job.std_name, plan.provenance,
                                 plan.fingerprint)
        writes = store.tile_writes(job.target)
        pending = [(iy, ix) for iy, ix in grid if writes[iy, ix] == 0]
        dashboard = client.dashboard_link
        if progress:
            print(f"anyband: {len(pending)} of {len(grid)} tiles to repair; dashboard {dashboard}", flush=True)
        pixels, failures = _repair_tiles(client, job, pending, progress)
    seconds = time.perf_counter() - start
    if failures:
        raise _failed(failures, len(pending)) from failures[0][1]
    _verify(job.target, grid)
    empty, screened = store.tile_counts(job.target)
    if screened:
        warnings.warn(
            f"{screened} observed value(s) are fill values (-9999, -32768) or implausible for the data's units; they "
            "were treated as missing. Declare the fill value (attrs['nodata']) or mask them to silence this.",
            spectral.AnyBandWarning,
            stacklevel=3,
        )
    return JobSummary(len(pending), len(grid) - len(pending), len(grid), pixels, empty, screened, seconds, dashboard)


def _self_check(job: TileJob, shape: tuple[int, int], scheduler: str | Client | None,
                calibrate: bool = False) -> selfcheck.SelfCheck | selfcheck.Unchecked | float:
    """``method="auto"``: the self-check (``anyband_xr.selfcheck``) on the window ``selfcheck.choose_window`` places
    from the scene's mask, once for the whole job before any tile runs, so tiles never disagree at seams; or why
    none ran (``selfcheck.Unchecked``: nothing to repair, or nothing to hide like the mask). With ``calibrate``
    (``method="diffusion"``): the model's correction gain measured there (``selfcheck.measure_correction_gain``;
    1 with no window).

    With a running scheduler it is one task on a worker, where the tiles will run: the job's ``device`` (e.g. the
    workers' GPU) may not exist on this machine. Without one it runs here, the LocalCluster's machine."""
    if scheduler is None:
        return _check_window(job, shape, calibrate)
    if isinstance(scheduler, Client):
        return scheduler.submit(_check_window, job, shape, calibrate, pure=False).result()
    with Client(scheduler) as client:
        return client.submit(_check_window, job, shape, calibrate, pure=False).result()


def _check_window(job: TileJob, shape: tuple[int, int],
                  calibrate: bool = False) -> selfcheck.SelfCheck | selfcheck.Unchecked | float:
    """The self-check of the job's scene (read from its stores): the repairable missing values of the whole mask
    are counted chunk by chunk (here, with dask threads), which places the window; then the window is read and
    checked (with ``calibrate``, the model's correction gain measured). Warns nothing (the caller does: this may
    run on a worker)."""
    _, missing = _lazy_scene(job)
    counts = selfcheck.repairable_counts(missing.data).compute(scheduler="threads")
    window = selfcheck.choose_window(counts, selfcheck.MAX_PIXELS)
    values = flags = None
    if window is not None:
        values, flags, _ = read_window(job, *window[1:])
    if calibrate:
        if window is None:
            return 1.0
        return selfcheck.measure_correction_gain(values, flags, np.asarray(job.wavelength_nm), job.settings,
                                                 seed=job.settings.seed)
    methods = selfcheck.CANDIDATES if job.settings.method == "auto" else (job.settings.method,)
    return selfcheck.check_or_skip(values, flags, window, np.asarray(job.wavelength_nm), job.settings,
                                   methods=methods, seed=job.settings.seed, dims=tuple(job.dims[1:]))


def _lazy_scene(job: TileJob) -> tuple[xr.DataArray, xr.DataArray]:
    """(values, missing) of the job's whole scene, dask-backed (nothing read), standardised and screened as
    ``repair`` does."""
    values = open_zarr(job.source, job.variable, chunks={}).transpose(*job.dims)
    if not np.issubdtype(values.dtype, np.floating):
        values = values.astype(np.float32)
    values = spectral.standardize(values)
    missing, _ = screen(values, missing_mask(values, job.mask.lazy()), job.dims[0])
    return values, missing


def _scene_prior(job: TileJob) -> Delayed:
    """The fit of the in-scene low-rank prior of the job's method (``engine.scene_prior``: the fill of ``"lowrank"``,
    the model's base for ``"diffusion"``) on the whole scene, as ``repair`` fits it (the same regular pixel
    subsample, the same screening), to run on the cluster once; every tile then uses it."""
    return inscene_prior(*_lazy_scene(job), job.settings.method)


def _repair_tiles(
    client: Client, job: TileJob, pending: list[tuple[int, int]], progress: bool
) -> tuple[int, list[tuple[tuple[int, int], BaseException]]]:
    """Submit one task per pending tile; (pixels repaired, [(tile, error)] of the tiles that failed). The job
    (with its self-check, megabytes) travels to each worker once, not with every task."""
    token = tokenize(job)
    shared = client.scatter(job, broadcast=True, hash=False)
    futures = {
        client.submit(run_tile, shared, iy, ix, key=f"anyband-tile-{iy}-{ix}-{token}", pure=False): (iy, ix)
        for iy, ix in pending
    }
    pixels, failures = 0, []
    with tqdm(total=len(futures), unit="tile", disable=not progress, desc="anyband repair") as bar:
        for future in as_completed(futures):
            if future.status == "finished":
                pixels += future.result().pixels
            else:
                failures.append((futures[future], future.exception()))
            bar.update()
            future.release()
    return pixels, failures


def _failed(failures: list[tuple[tuple[int, int], BaseException]], pending: int) -> JobFailed:
    """The error of a run whose tiles failed: it advises resuming only when that can help."""
    tiles = ", ".join(str(tile) for tile, _ in sorted(failures)[:8]) + (" ..." if len(failures) > 8 else "")
    if all(isinstance(err, (ValueError, TypeError)) for _, err in failures):
        advice = ("their input cannot be repaired as it is, so resuming would fail the same way: fix the input and "
                  "write to a new output store")
    else:
        advice = "fix the cause and run again with resume=True (--resume) to repair only those"
    error = failures[0][1]
    return JobFailed(f"{len(failures)} of {pending} tiles failed (tiles {tiles}; the others are written); {advice}. "
                     f"First error: {type(error).__name__}: {error}")


def _verify(target: str, grid: TileGrid) -> None:
    """Raise ``JobFailed`` naming the tiles whose completion count is still 0 after a run without failures."""
    unwritten = [tuple(map(int, tile)) for tile in np.argwhere(store.tile_writes(target) == 0)]
    if unwritten:
        tiles = ", ".join(map(str, unwritten[:8])) + (" ..." if len(unwritten) > 8 else "")
        raise JobFailed(
            f"the run ended but {len(unwritten)} of {len(grid)} tiles were never written (tiles {tiles}); run again "
            "with resume=True (--resume) to write them."
        )
