"""User-facing spectral repair on DataArrays: diffusion (AnyBand-Diff with PGS) or a classical baseline.

Masks are boolean, True where a value is missing; NaN in the data counts as missing. Observed values come back
unchanged bit for bit. On dask arrays a lazy graph of overlapping spatial blocks is built (one chunk along the
spectral axis); on numpy arrays the repair runs eagerly, tile by tile, with a progress bar.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import dask.array as dsa
import numpy as np
import xarray as xr

from tqdm.auto import tqdm

from anyband_xr import __version__, baselines, spectral, srf, tiling
from anyband_xr.model.weights import sampling_steps, weights_hash
from anyband_xr.sampling.conditional import diffuse

METHODS = ("diffusion", "linear", "pchip", "gaussian")


@dataclass(frozen=True)
class RepairSettings:
    """Everything that decides a repair's result (recorded as provenance)."""

    method: str = "diffusion"
    guidance: float = 1.0
    steps: int = 50
    samples: int = 1
    seed: int = 0
    eta: float = 0.0
    operators: tuple[str, ...] = ("sensor", "ndvi", "ndwi", "range")
    grad: str = "x0"
    tile: int = 256
    overlap: int = 32
    device: str | None = None
    weights: str | None = None
    reflectance: bool = True
    user_operators: tuple = field(default=(), compare=False, repr=False)


def missing_mask(da: xr.DataArray, mask: xr.DataArray | np.ndarray | None) -> xr.DataArray:
    """Boolean DataArray like ``da``, True where a value is missing (the mask's True values, or NaN in ``da``).

    ``mask`` (boolean, True = missing) is checked and broadcast by dimension name; a numpy array must have
    ``da``'s shape. Raises ``TypeError``/``ValueError`` naming the problem.

    Example:
        >>> missing_mask(da.where(da > 0.01), anyband_xr.masks.band_loss(da, 0.3, seed=0))  # dims like da
    """
    nan = da.isnull()
    if mask is None:
        return nan
    if isinstance(mask, np.ndarray):
        if mask.shape != da.shape:
            raise ValueError(
                f"mask shape {mask.shape} does not match the data's {da.shape} {tuple(da.dims)}; pass a DataArray "
                "with named dims to broadcast (e.g. dims ('wavelength',) to drop whole bands)."
            )
        mask = xr.DataArray(mask, dims=da.dims, coords=da.coords)
    if not isinstance(mask, xr.DataArray):
        raise TypeError(f"mask must be a boolean DataArray (True = missing), got {type(mask).__name__}.")
    if mask.dtype != bool:
        raise TypeError(
            f"mask must be boolean, True where a value is missing; got dtype {mask.dtype}. "
            "Convert explicitly, e.g. mask.astype(bool) or (mask == 0) if 0 marks missing values."
        )
    extra = set(mask.dims) - set(da.dims)
    if extra:
        raise ValueError(f"mask has dims {sorted(map(str, extra))} that the data {tuple(da.dims)} lacks.")
    for dim in mask.dims:
        if mask.sizes[dim] != da.sizes[dim]:
            raise ValueError(f"mask has {mask.sizes[dim]} entries along {dim!r}, the data has {da.sizes[dim]}.")
    mask = mask.drop_vars([c for c in mask.coords if c not in mask.dims]).reset_coords(drop=True)
    mask = mask.assign_coords({d: da[d] for d in mask.dims if d in da.coords})
    return (nan | mask).transpose(*da.dims)


def _check_pixels(missing: np.ndarray) -> None:
    empty = missing.all(axis=0)
    if empty.any():
        y, x = (int(v[0]) for v in np.nonzero(empty))
        raise ValueError(
            f"{int(empty.sum())} pixel(s) have every band missing (first at y={y}, x={x}); nothing can be inferred "
            "there. Exclude them (mask them as NaN afterwards) or give at least one observed band."
        )


def fill_block(
    values: np.ndarray,
    missing: np.ndarray,
    wavelength_nm: np.ndarray,
    settings: RepairSettings,
    y0: int,
    x0: int,
    target_nm: np.ndarray | None = None,
    responses: xr.DataArray | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Repair one (B, H, W) block whose top-left pixel sits at global (y0, x0): (mean, std).

    On the own grid (``target_nm`` None) observed values are restored exactly; otherwise the block is a generation
    onto ``target_nm`` from band values whose SRFs are ``responses`` (diffusion only).
    """
    _check_pixels(missing)
    filled = np.where(missing, 0.0, values)
    b, h, w = values.shape
    if settings.method == "diffusion":
        n_out = b if target_nm is None else len(target_nm)
        n_tiles = sum(1 for _ in tiling.tiles(h, w, settings.tile, settings.overlap))
        with tqdm(total=n_tiles * settings.samples * settings.steps, disable=not progress, desc="AnyBand-Diff") as bar:

            def run(ys: slice, xs: slice) -> np.ndarray:
                return diffuse(filled[:, ys, xs], missing[:, ys, xs], wavelength_nm, settings, y0 + ys.start,
                               x0 + xs.start, target_nm=target_nm, responses=responses, progress=bar.update)

            stacked = tiling.blend_tiles(h, w, settings.tile, settings.overlap, run, (2, n_out))
        mean, std = stacked[0], stacked[1]
    else:
        flat, flat_missing = filled.reshape(b, -1), missing.reshape(b, -1)
        if settings.method == "gaussian":
            mean = baselines.gaussian_conditional_mean(flat, wavelength_nm, flat_missing).reshape(b, h, w)
        else:
            mean = baselines.interpolate(flat, wavelength_nm, flat_missing, settings.method).reshape(b, h, w)
        std = np.zeros_like(mean)
    if target_nm is not None:
        return mean.astype(values.dtype), std.astype(values.dtype)
    mean = np.where(missing, mean, values).astype(values.dtype)
    std = np.where(missing, std, 0.0).astype(values.dtype)
    return mean, std


def _block(values, missing, y_index, x_index, wavelength_nm, settings, target_nm, responses):
    y0, x0 = int(y_index.ravel()[0]), int(x_index.ravel()[0])
    mean, std = fill_block(values, missing, wavelength_nm, settings, y0, x0, target_nm, responses)
    return np.concatenate([mean, std], axis=0)


def _with_halo(chunks: tuple[int, ...], depth: int) -> tuple[int, ...]:
    """Chunk sizes after ``map_overlap`` adds ``depth`` on every side that has a neighbour (boundary 'none')."""
    last = len(chunks) - 1
    return tuple(c + depth * ((i > 0) + (i < last)) for i, c in enumerate(chunks))


def _repair_dask(data, missing, wavelength_nm, settings, target_nm=None, responses=None):
    b = data.shape[0] if target_nm is None else len(target_nm)
    ny, nx = data.shape[1], data.shape[2]
    chunks = data.chunks
    plane = ((1,), chunks[1], chunks[2])
    y_index = dsa.broadcast_to(dsa.arange(ny).reshape(1, ny, 1), (1, ny, nx)).rechunk(plane)
    x_index = dsa.broadcast_to(dsa.arange(nx).reshape(1, 1, nx), (1, ny, nx)).rechunk(plane)
    depth = {0: 0, 1: min(settings.overlap, min(chunks[1])), 2: min(settings.overlap, min(chunks[2]))}
    out = dsa.map_overlap(
        _block,
        data,
        missing.rechunk(chunks),
        y_index,
        x_index,
        depth=depth,
        boundary="none",
        align_arrays=False,
        chunks=((2 * b,), _with_halo(chunks[1], depth[1]), _with_halo(chunks[2], depth[2])),
        dtype=data.dtype,
        meta=np.array((), dtype=data.dtype),
        wavelength_nm=wavelength_nm,
        settings=settings,
        target_nm=target_nm,
        responses=responses,
    )
    return out[:b], out[b:]


def _repair_numpy(data, missing, wavelength_nm, settings, target_nm=None, responses=None):
    return fill_block(data, missing, wavelength_nm, settings, 0, 0, target_nm, responses, progress=True)


def spatial_layout(data: xr.DataArray, dim: str) -> tuple[list[str], str, str]:
    """(loop dims, y dim, x dim) of a spectral DataArray: ``y``/``x`` or its last two non-spectral dims.

    Example:
        >>> spatial_layout(stack.transpose("time", "wavelength", "y", "x"), "wavelength")  # (["time"], "y", "x")
    """
    others = [d for d in data.dims if d != dim]
    if len(others) < 2:
        raise spectral.SpectralAxisError(
            f"repair needs two spatial dims besides {dim!r}; got dims {tuple(map(str, data.dims))}. "
            "For a single spectrum use da.expand_dims(y=1, x=1)."
        )
    y, x = ("y", "x") if {"y", "x"} <= set(others) else tuple(others[-2:])
    return [d for d in others if d not in (y, x)], y, x


def sensor_responses(da: xr.DataArray) -> xr.DataArray | None:
    """Library SRFs (band, wavelength) of ``da``'s bands when ``attrs['sensor']`` names a library sensor and every
    band maps to one of its bands (by the ``srf_band`` coordinate that ``anyband_xr.stac`` sets, else by ``band``);
    None otherwise (the values are then samples of the spectrum at ``wavelength``)."""
    name = da.attrs.get("sensor")
    if not name or spectral.spectral_dim(da) != spectral.BAND:
        return None
    try:
        library = srf.get(str(name))
    except KeyError:
        return None
    labels = list(map(str, da.coords.get("srf_band", da[spectral.BAND]).values))
    if not set(labels) <= set(map(str, library["band"].values)):
        return None
    return library.sel(band=labels)


def run_blocks(
    values: xr.DataArray,
    missing: xr.DataArray,
    settings: RepairSettings,
    target_nm: np.ndarray | None = None,
    responses: xr.DataArray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std arrays for ``values`` ordered (*loop, spectral, y, x): lazy on dask, eager on numpy."""
    loop = list(values.dims[:-3])
    lazy = values.chunks is not None
    engine = _repair_dask if lazy else _repair_numpy
    wavelength_nm = values["wavelength"].values
    means, stds = [], []
    for index in np.ndindex(*(values.sizes[d] for d in loop)):
        select = dict(zip(loop, index))
        block_missing = missing.isel(select).data
        block_missing = dsa.asarray(block_missing) if lazy else np.asarray(block_missing)
        mean, std = engine(values.isel(select).data, block_missing, wavelength_nm, settings, target_nm, responses)
        means.append(mean)
        stds.append(std)
    stack = dsa.stack if lazy else np.stack
    n_out = values.shape[-3] if target_nm is None else len(target_nm)
    shape = (*values.shape[:-3], n_out, *values.shape[-2:])
    return stack(means).reshape(shape), stack(stds).reshape(shape)


def repair(
    da: xr.DataArray,
    mask: xr.DataArray | np.ndarray | None = None,
    guidance: float = 1.0,
    steps: int | None = None,
    samples: int = 1,
    seed: int | None = None,
    method: str = "diffusion",
    operators: list | tuple | None = None,
    device: str | None = None,
    tile: int = 256,
    overlap: int = 32,
    grad: str = "x0",
    eta: float = 0.0,
    return_std: bool = False,
    weights: str | None = None,
) -> xr.DataArray | xr.Dataset:
    """Fill missing spectral values of ``da``.

    Args:
        da: spectral DataArray (``wavelength`` dim, or ``band`` with a ``wavelength`` coordinate; nm) with two
            spatial dims (``y``, ``x`` or the last two non-spectral dims); other dims (e.g. ``time``) are looped
            over. Values in any units; when ``attrs["units"]`` says reflectance, the ``range`` operator keeps the
            result within [0, 1] (otherwise only non-negative).
        mask: boolean, True where a value is missing, broadcastable to ``da`` (e.g. dims ``("wavelength",)`` for
            whole-band loss). NaN in ``da`` counts as missing too.
        guidance: PGS scale ``s`` (0 disables physics guidance; 1 is one full consistency step at the noisiest
            level, see ``docs/method.md``).
        steps: number of DDIM steps; None: the number validated for the weights (``sampling_steps``).
        samples: number of posterior samples; the result is their mean (and std with ``return_std``).
        seed: random seed (default 0); the result is deterministic for a seed, whatever the chunking.
        method: ``"diffusion"`` (AnyBand-Diff), or the baselines ``"linear"``, ``"pchip"``, ``"gaussian"``
            (ridge conditional mean fitted on real scenes).
        operators: physical operators for PGS: names among ``"sensor"`` (band consistency; through the sensor's
            library SRFs when ``sensor_responses`` finds them, e.g. after ``anyband_xr.stac.load``), ``"ndvi"``,
            ``"ndwi"``, ``"range"``, ``"rtm"``, and/or ``nn.Module`` instances mapping a canonical spectrum
            (N, 211, H, W) to a loss map.
        device: torch device (default: CUDA when available, else CPU).
        tile: side of the spatial tiles the model sees (pixels).
        overlap: overlap of neighbouring tiles (pixels); tiles are blended with a raised-cosine window.
        grad: ``"x0"`` (cheap guidance through the Tweedie estimate) or ``"full"`` (through the network).
        eta: DDIM noise (0: deterministic DDIM, 1: DDPM-like).
        return_std: return a Dataset with the repaired values and a per-value ``std`` over the samples (data units).
        weights: stem or ``.safetensors`` path of MCD weights (e.g. fine-tuned with ``anyband train``); default:
            the shipped model.

    Returns:
        A DataArray like ``da`` (dims, coords, CRS, attrs plus provenance), or a Dataset with ``std`` too.

    Example:
        >>> import anyband_xr.datasets, anyband_xr.masks
        >>> da = anyband_xr.datasets.jasper_ridge()
        >>> mask = anyband_xr.masks.band_loss(da, 0.3, seed=0)          # dims (wavelength,)
        >>> repaired = da.where(~mask).anyband.repair(mask, guidance=1.0)
        >>> result = da.where(~mask).anyband.repair(mask, samples=4, return_std=True)  # Dataset: reflectance, std
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}.")
    names = tuple(op for op in (operators or ()) if isinstance(op, str))
    modules = tuple(op for op in (operators or ()) if not isinstance(op, str))
    settings = RepairSettings(
        method=method,
        guidance=float(guidance),
        steps=sampling_steps(weights) if steps is None else int(steps),
        samples=int(samples),
        seed=0 if seed is None else int(seed),
        eta=float(eta),
        operators=names if operators is not None else RepairSettings.operators,
        grad=grad,
        tile=int(tile),
        overlap=int(overlap),
        device=device,
        weights=None if weights is None else str(weights),
        reflectance=_looks_like_reflectance(da),
        user_operators=modules,
    )
    data = spectral.standardize(da)
    dim = spectral.spectral_dim(data)
    missing = missing_mask(data, mask)
    loop, y, x = spatial_layout(data, dim)
    order = (*loop, dim, y, x)
    values = data.transpose(*order)
    mean, std = run_blocks(values, missing.transpose(*order), settings, responses=sensor_responses(data))
    attrs = {**data.attrs, **_provenance(settings)}
    repaired = values.copy(data=mean).transpose(*data.dims).assign_attrs(attrs)
    if not return_std:
        return repaired
    name = data.name or "repaired"
    std_da = values.copy(data=std).transpose(*data.dims).assign_attrs(
        {"long_name": "posterior standard deviation over samples", "units": data.attrs.get("units", "")}
    )
    return xr.Dataset({name: repaired, "std": std_da}, attrs=_provenance(settings))


def _looks_like_reflectance(da: xr.DataArray) -> bool:
    units = str(da.attrs.get("units", "")).lower()
    return "reflectance" in units


def _provenance(settings: RepairSettings) -> dict[str, str | int | float]:
    record = {k: v for k, v in asdict(settings).items() if k not in ("user_operators", "device", "reflectance", "weights")}
    record["operators"] = ",".join(record["operators"])
    out = {f"anyband_{k}": v for k, v in record.items()}
    out["anyband_version"] = __version__
    if settings.method == "diffusion":
        out["anyband_weights"] = settings.weights or "default"
        out["anyband_weights_sha256"] = weights_hash(settings.weights)
    return out
