"""Pictures of spectral data: spectra with their uncertainty, error heat maps, RGB quicklooks, index maps, SRFs.

Every function takes a wavelength-labelled DataArray first and returns what it drew on: the matplotlib ``Axes``
(one panel) or ``Figure`` (several panels), so it can be styled or saved further. Wavelengths are in nm; values
keep the data's units (``attrs["units"]``). matplotlib (``pip install "anyband_xr[plot]"``) is imported only when
a function draws. The same functions hang on the accessor like xarray's ``.plot``: ``da.anyband.plot.rgb()`` is
``anyband_xr.plot.rgb(da)``.

Example:
    >>> import anyband_xr.datasets
    >>> da = anyband_xr.datasets.jasper_ridge()
    >>> ax = da.anyband.plot.rgb("false")            # colour-infrared quicklook
    >>> ax.figure.savefig("jasper_cir.png")
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from anyband_xr import observation as _observation
from anyband_xr import spectral, srf as _srf
from anyband_xr.indices import index as _index
from anyband_xr.simulate import simulate as _simulate

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Band triplets (red, green, blue channel) in nm for ``rgb``: true colour, colour infrared, SWIR false colour.
PRESETS: dict[str, tuple[float, float, float]] = {
    "true": (650.0, 560.0, 470.0),
    "false": (860.0, 650.0, 560.0),
    "swir": (2200.0, 860.0, 650.0),
}
#: Neighbouring bands further apart than this many median spacings are a gap (e.g. removed water-vapour bands):
#: lines are not drawn across it.
GAP_FACTOR = 3.0
#: Per-pixel error measures of ``error_map``.
METRICS = ("rmse", "mae", "sam")

Pixel = tuple[int, int] | Mapping[str, Any]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError('anyband_xr.plot needs matplotlib: pip install "anyband_xr[plot]"') from err
    return plt


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    return _pyplot().subplots(figsize=figsize, layout="constrained")[1]


def _spatial(da: xr.DataArray) -> tuple[str, str, str]:
    """(spectral dim, y dim, x dim); other dims must have been selected away."""
    dim = spectral.spectral_dim(da)
    loop, y, x = _observation.spatial_layout(da, dim)
    if loop:
        raise ValueError(
            f"plotting draws one (spectral, y, x) scene; dims {loop} are left. Select first, e.g. "
            f"da.isel({loop[0]}=0).anyband.plot..."
        )
    return dim, y, x


def _pick(da: xr.DataArray, pixel: Pixel, y: str, x: str) -> tuple[xr.DataArray, str]:
    """The spectrum of one pixel and a label: a tuple is (row, column) positions, a mapping coordinate labels."""
    if isinstance(pixel, Mapping):
        picked = da.sel(dict(pixel), method="nearest")
    else:
        row, column = pixel
        picked = da.isel({y: int(row), x: int(column)})
    label = ", ".join(f"{d}={picked[d].values.item():g}" if d in picked.coords else d for d in (y, x))
    return picked, label


def _breaks(nm: np.ndarray, *curves: np.ndarray) -> tuple[np.ndarray, ...]:
    """``nm`` and ``curves`` with a NaN inserted inside every spectral gap, so lines are not drawn across it."""
    step = np.diff(nm)
    gaps = np.flatnonzero(step > GAP_FACTOR * np.median(step)) + 1 if nm.size > 2 else np.array([], int)
    return tuple(np.insert(np.asarray(c, dtype=np.float64), gaps, np.nan) for c in (nm, *curves))


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) indices of the runs of True in a 1-D boolean array."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def _span(nm: np.ndarray, first: int, last: int) -> tuple[float, float]:
    """Wavelength interval (nm) covered by bands ``first..last``: halfway to their neighbours."""
    half = np.diff(nm) / 2
    low = nm[first] - (half[first - 1] if first > 0 else half[0])
    high = nm[last] + (half[last] if last < nm.size - 1 else half[-1])
    return float(low), float(high)


def _units(da: xr.DataArray) -> str:
    return str(da.attrs.get("units") or da.attrs.get("long_name") or "value")


def _panel_size(plane: xr.DataArray, colorbar: bool = True) -> tuple[float, float]:
    """(width, height) in inches of one map panel (with its colour bar), following the map's aspect ratio."""
    rows, columns = plane.shape[-2:]
    return max(2.4, 3.0 * columns / rows + (1.3 if colorbar else 0.5)), 3.2


def _yincrease(da: xr.DataArray, y: str) -> bool:
    """Image orientation for ``imshow``: pixel-index rows (integer or no coordinate) top-down, map coordinates
    with larger values (north) up."""
    return y in da.coords and np.issubdtype(da[y].dtype, np.floating)


def spectra(
    da: xr.DataArray,
    pixels: Sequence[Pixel],
    truth: xr.DataArray | None = None,
    mask: xr.DataArray | None = None,
    std: xr.DataArray | None = None,
    n_std: float = 2.0,
    labels: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Spectral curves of chosen pixels: the (repaired) spectrum, the truth, an uncertainty band, missing bands shaded.

    In the style of the paper's Fig. 3/4: one colour per pixel, the spectrum solid, ``truth`` dashed, the band
    ``spectrum ± n_std * std`` filled, and the wavelengths where ``mask`` is True (missing, in any drawn pixel)
    shaded grey. Lines are broken across spectral gaps of the data (removed water-vapour bands).

    Args:
        da: spectra (``wavelength`` dim, or ``band`` with a ``wavelength`` coordinate; nm) with two spatial dims,
            e.g. the result of ``repair``.
        pixels: pixels to draw: ``(row, column)`` positions (as ``isel``) or mappings of coordinate labels
            (``{"y": 4.2e6, "x": 5.1e5}``, nearest, as ``sel``).
        truth: reference spectra like ``da`` (same units), drawn dashed.
        mask: boolean, True where a value was missing, broadcastable to ``da`` (e.g. dims ``("wavelength",)``).
        std: per-value standard deviation like ``da`` (data units), e.g. ``repair(..., method="diffusion",
            samples=8, return_std=True)["std"]`` (the spread over the samples; with the default ``method="auto"``,
            the calibrated std of the self-check).
        n_std: half-width of the uncertainty band in standard deviations (2: about 95% for a Gaussian).
        labels: legend label per pixel (default: its coordinates).
        ax: Axes to draw on (default: a new figure).

    Returns:
        The Axes: x wavelength (nm), y the data's units.

    Example:
        >>> mask = anyband_xr.masks.band_loss(da, 0.3, seed=0)
        >>> result = da.where(~mask).anyband.repair(mask, method="diffusion", samples=4, steps=10, return_std=True)
        >>> result["reflectance"].anyband.plot.spectra([(10, 80)], truth=da, mask=mask, std=result["std"])
    """
    data = spectral.standardize(da)
    dim, y, x = _spatial(data)
    nm = spectral.wavelengths(data)
    missing = _observation.missing_mask(data, mask) if mask is not None else None
    others = {"truth": truth, "std": std}
    others = {k: spectral.standardize(v).transpose(*data.dims) for k, v in others.items() if v is not None}
    labels = list(labels) if labels is not None else [None] * len(pixels)
    if len(labels) != len(pixels):
        raise ValueError(f"{len(labels)} labels for {len(pixels)} pixels.")
    ax = _new_axes(ax, (8.0, 4.0))
    shaded = np.zeros(nm.size, dtype=bool)
    for i, (pixel, label) in enumerate(zip(pixels, labels)):
        colour = f"C{i}"
        picked, where = _pick(data, pixel, y, x)
        values = picked.values
        ax.plot(*_breaks(nm, values), color=colour, lw=1.5, label=label or where)
        if "std" in others:
            spread = n_std * _pick(others["std"], pixel, y, x)[0].values
            ax.fill_between(*_breaks(nm, values - spread, values + spread), color=colour, alpha=0.25, lw=0)
        if "truth" in others:
            ax.plot(*_breaks(nm, _pick(others["truth"], pixel, y, x)[0].values), color=colour, lw=1.0, ls="--")
        if missing is not None:
            shaded |= _pick(missing, pixel, y, x)[0].values
    for k, (first, last) in enumerate(_runs(shaded)):
        ax.axvspan(*_span(nm, first, last), color="0.5", alpha=0.2, lw=0, label="missing" if k == 0 else None)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles, names = ax.get_legend_handles_labels()
    extra = [(Line2D([], [], color="0.3", lw=1.5), "spectrum")]
    if "std" in others:
        extra.append((Patch(color="0.3", alpha=0.25, lw=0), f"± {n_std:g} std"))
    if "truth" in others:
        extra.append((Line2D([], [], color="0.3", lw=1.0, ls="--"), "truth"))
    ax.legend(handles + [h for h, _ in extra], names + [n for _, n in extra], fontsize="small", ncols=2)
    ax.set_xlabel("wavelength (nm)")
    ax.set_ylabel(_units(data))
    return ax


def _pixel_error(da: xr.DataArray, truth: xr.DataArray, mask: xr.DataArray | None, metric: str) -> xr.DataArray:
    """Per-pixel error map (y, x): RMSE/MAE over the missing values (data units), or the spectral angle (deg)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}.")
    data = spectral.standardize(da)
    dim, _, _ = _spatial(data)
    truth = spectral.standardize(truth).transpose(*data.dims)
    truth = truth.assign_coords({d: data[d] for d in data.dims if d in data.coords})
    if metric == "sam":
        dot = (data * truth).sum(dim)
        norms = np.sqrt((data**2).sum(dim) * (truth**2).sum(dim))
        return np.degrees(np.arccos((dot / norms).clip(-1.0, 1.0))).rename("spectral angle").assign_attrs(units="deg")
    diff = data - truth
    if mask is not None:
        diff = diff.where(_observation.missing_mask(data, mask))
    error = np.sqrt((diff**2).mean(dim)) if metric == "rmse" else abs(diff).mean(dim)
    return error.rename(metric.upper()).assign_attrs(units=_units(data))


def error_map(
    da: xr.DataArray,
    truth: xr.DataArray,
    mask: xr.DataArray | None = None,
    metric: str = "rmse",
    vmax: float | None = None,
    cmap: str = "magma",
    ax: Axes | None = None,
) -> Axes:
    """Per-pixel error heat map of ``da`` against ``truth``.

    Args:
        da: repaired spectra with two spatial dims.
        truth: the reference spectra, same shape and units.
        mask: boolean, True where a value was missing; ``rmse``/``mae`` then use only those values (pixels without
            any are blank). Without it every value counts.
        metric: ``"rmse"`` or ``"mae"`` over the spectrum (data units), or ``"sam"``, the spectral angle (degrees).
        vmax: top of the colour scale (default: the map's 99th percentile).
        cmap: matplotlib colour map.
        ax: Axes to draw on (default: a new figure).

    Returns:
        The Axes, with a colour bar labelled with the metric and its units.

    Example:
        >>> repaired = da.where(~mask).anyband.repair(mask, method="pchip")
        >>> repaired.anyband.plot.error_map(da, mask=mask, metric="rmse")
    """
    error = _pixel_error(da, truth, mask, metric).compute()
    ax = _new_axes(ax, (5.0, 4.0))
    if vmax is None:
        vmax = float(np.nanpercentile(error.values, 99)) if np.isfinite(error.values).any() else None
    label = f"{error.name} ({error.attrs['units']})"
    yincrease = _yincrease(error, error.dims[0])
    error.plot.imshow(ax=ax, cmap=cmap, vmin=0.0, vmax=vmax, yincrease=yincrease, cbar_kwargs={"label": label})
    ax.set_aspect("equal")
    return ax


def error_maps(
    repairs: Mapping[str, xr.DataArray],
    truth: xr.DataArray,
    mask: xr.DataArray | None = None,
    metric: str = "rmse",
    cmap: str = "magma",
    ncols: int | None = None,
) -> Figure:
    """Error heat maps of several repairs side by side on one colour scale (see ``error_map``).

    Args:
        repairs: name -> repaired DataArray, e.g. ``{"pchip": r1, "AnyBand-Diff": r2}``.
        truth: the reference spectra, as in ``error_map`` (as are ``mask``, ``metric`` and ``cmap``).
        ncols: panels per row (default: all in one row).

    Returns:
        The Figure; each panel's title gives the method and the mean of its map (metric units).

    Example:
        >>> anyband_xr.plot.error_maps({"pchip": pchip, "diffusion": repaired}, da, mask=mask)
    """
    maps = {name: _pixel_error(r, truth, mask, metric).compute() for name, r in repairs.items()}
    if not maps:
        raise ValueError("error_maps needs at least one repair.")
    vmax = float(np.nanmax([np.nanpercentile(m.values, 99) for m in maps.values()]))
    ncols = ncols or len(maps)
    nrows = -(-len(maps) // ncols)
    width, height = _panel_size(next(iter(maps.values())), colorbar=False)
    fig, axes = _pyplot().subplots(
        nrows, ncols, figsize=(width * ncols + 1.0, height * nrows), layout="constrained", squeeze=False
    )
    image = None
    for ax, (name, error) in zip(axes.flat, maps.items()):
        yincrease = _yincrease(error, error.dims[0])
        image = error.plot.imshow(ax=ax, cmap=cmap, vmin=0.0, vmax=vmax, yincrease=yincrease, add_colorbar=False)
        ax.set_title(f"{name}\nmean {float(error.mean()):.3g}", fontsize="medium")
        ax.set_aspect("equal")
    for ax in axes.flat[len(maps):]:
        ax.set_visible(False)
    first = next(iter(maps.values()))
    fig.colorbar(image, ax=axes, label=f"{first.name} ({first.attrs['units']})", shrink=0.9)
    return fig


def rgb_bands(da: xr.DataArray, bands: str | Sequence[float] = "true", tolerance_nm: float = 50.0) -> list[int]:
    """Positions along the spectral axis of the bands nearest the three wavelengths (nm) of ``bands``.

    Example:
        >>> rgb_bands(da, "false")   # NIR, red, green positions
    """
    wanted = PRESETS.get(bands) if isinstance(bands, str) else tuple(float(b) for b in bands)
    if wanted is None:
        raise KeyError(f"unknown band preset {bands!r}; choose from {sorted(PRESETS)} or give three wavelengths (nm).")
    if len(wanted) != 3:
        raise ValueError(f"an RGB quicklook needs three wavelengths (red, green, blue channels), got {len(wanted)}.")
    nm = spectral.wavelengths(da)
    picked = [int(np.argmin(np.abs(nm - w))) for w in wanted]
    far = [(w, nm[i]) for w, i in zip(wanted, picked) if abs(nm[i] - w) > tolerance_nm]
    if far:
        raise spectral.SpectralAxisError(
            f"no band within {tolerance_nm:g} nm of {[w for w, _ in far]} nm (nearest {[round(n, 1) for _, n in far]} "
            f"nm; the data covers {nm.min():.0f}-{nm.max():.0f} nm). Pick wavelengths inside the data's range."
        )
    return picked


def rgb(
    da: xr.DataArray,
    bands: str | Sequence[float] = "true",
    stretch: tuple[float, float] = (2.0, 98.0),
    tolerance_nm: float = 50.0,
    ax: Axes | None = None,
) -> Axes:
    """RGB or false-colour quicklook from the bands nearest three wavelengths.

    Args:
        da: spectral DataArray with two spatial dims (hyperspectral, or multispectral ``band`` data with a
            ``wavelength`` coordinate, e.g. ``simulate("sentinel-2a")``). Only the three bands are computed.
        bands: ``"true"`` (650, 560, 470 nm), ``"false"`` (colour infrared: 860, 650, 560 nm), ``"swir"``
            (2200, 860, 650 nm), or three wavelengths in nm for the red, green and blue channels.
        stretch: per-channel percentiles mapped to 0 and 1 (linear stretch; NaN drawn black).
        tolerance_nm: largest distance (nm) between a requested wavelength and the band used.
        ax: Axes to draw on (default: a new figure).

    Returns:
        The Axes; its title gives the wavelengths (nm) of the bands used.

    Example:
        >>> da.anyband.plot.rgb("swir")
        >>> da.anyband.simulate("sentinel-2a").anyband.plot.rgb("true")
    """
    data = spectral.standardize(da)
    dim, y, x = _spatial(data)
    picked = rgb_bands(data, bands, tolerance_nm)
    nm = spectral.wavelengths(data)
    cube = data.isel({dim: picked}).transpose(y, x, dim).values.astype(np.float64)
    low, high = np.nanpercentile(cube, stretch, axis=(0, 1))
    image = np.nan_to_num(np.clip((cube - low) / np.where(high > low, high - low, 1.0), 0.0, 1.0))
    ax = _new_axes(ax, (5.0, 5.0))
    composite = xr.DataArray(image, dims=(y, x, "channel"), coords={d: data[d] for d in (y, x) if d in data.coords})
    composite.plot.imshow(ax=ax, rgb="channel", yincrease=_yincrease(data, y))
    ax.set_aspect("equal")
    ax.set_title("RGB = " + ", ".join(f"{nm[i]:.0f}" for i in picked) + " nm", fontsize="medium")
    return ax


def indices(
    da: xr.DataArray,
    names: str | Sequence[str] = ("NDVI", "NDWI"),
    reference: xr.DataArray | None = None,
    labels: tuple[str, str] = ("data", "reference"),
    sensor: str | None = None,
    cmap: str = "RdYlGn",
) -> Figure:
    """Spectral index maps side by side: one column per index; with ``reference``, rows for it and the difference.

    Indices come from ``da.anyband.index`` (spyndex, any Awesome Spectral Index). With a reference the first two
    rows share a colour scale per index and the third shows ``data - reference`` on a symmetric scale.

    Args:
        da: spectral DataArray with two spatial dims.
        reference: a DataArray like ``da`` (e.g. the truth) for the second row and the difference.
        names: index name(s), e.g. ``["NDVI", "NDWI"]`` (unitless).
        labels: row titles for ``da`` and ``reference``.
        sensor: SRF library name passed to ``index``.
        cmap: colour map of the index rows (the difference uses ``RdBu_r``).

    Returns:
        The Figure.

    Example:
        >>> repaired.anyband.plot.indices(["NDVI", "NDWI"], reference=da, labels=("repaired", "truth"))
    """
    wanted = [names] if isinstance(names, str) else list(names)
    _spatial(spectral.standardize(da))

    def maps(obj: xr.DataArray) -> list[xr.DataArray]:
        computed = _index(obj, wanted, sensor=sensor).compute()
        return [computed] if len(wanted) == 1 else [computed.sel(index=n) for n in wanted]

    rows = [(labels[0], maps(da))]
    if reference is not None:
        ref = maps(reference)
        rows += [(labels[1], ref), (f"{labels[0]} - {labels[1]}", [a - b for a, b in zip(rows[0][1], ref)])]
    width, height = _panel_size(rows[0][1][0])
    fig, axes = _pyplot().subplots(
        len(rows), len(wanted), figsize=(width * len(wanted), height * len(rows)), layout="constrained", squeeze=False
    )
    for j, name in enumerate(wanted):
        shown = np.concatenate([row[1][j].values.ravel() for row in rows[:2]])
        low, high = np.nanpercentile(shown, [2, 98])
        for i, (title, row) in enumerate(rows):
            if i == 2:
                limit = max(float(np.nanpercentile(np.abs(row[j].values), 98)), 1e-3)
                kwargs = {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit}
            else:
                kwargs = {"cmap": cmap, "vmin": low, "vmax": high}
            yincrease = _yincrease(row[j], row[j].dims[0])
            row[j].plot.imshow(ax=axes[i, j], yincrease=yincrease, cbar_kwargs={"label": name}, **kwargs)
            axes[i, j].set_title(f"{name}\n{title}", fontsize="medium")
            axes[i, j].set_aspect("equal")
    return fig


def srf(
    da: xr.DataArray,
    sensors: str | xr.DataArray | Sequence[str | xr.DataArray] = "sentinel-2a",
    pixel: Pixel | None = None,
    band_labels: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Sensor SRFs from the library drawn over a spectrum, with what each band sees of it.

    The spectrum (left axis, data units) is one pixel's or the scene mean; each sensor's bands (right axis,
    relative response, peak 1) are filled in one colour per sensor, and the band values ``simulate`` gives for
    this spectrum are marked at the band centroids (nm).

    Args:
        da: spectral DataArray with two spatial dims, or a single spectrum (spectral dim only).
        sensors: a name from ``anyband_xr.srf.list_sensors()``, an SRF DataArray (band, wavelength[nm]), or a list.
        pixel: ``(row, column)`` positions or a mapping of coordinate labels (default: the spatial mean).
        band_labels: write band names above their peaks (first sensor only).
        ax: Axes to draw on (default: a new figure); the responses go on ``ax``'s twin (right) axis.

    Returns:
        The (left) Axes; x wavelength (nm).

    Example:
        >>> da.anyband.plot.srf(["sentinel-2a", "landsat-8-oli"], pixel=(10, 80))
    """
    data = spectral.standardize(da)
    if data.ndim > 1:
        _, y, x = _spatial(data)
        spectrum, where = _pick(data, pixel, y, x) if pixel is not None else (data.mean((y, x)), "scene mean")
    else:
        spectrum, where = data, str(data.name or "spectrum")
    spectrum = spectrum.compute()
    nm = spectral.wavelengths(spectrum)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ax = _new_axes(ax, (9.0, 4.0))
    right = ax.twinx()
    handles = ax.plot(*_breaks(nm, spectrum.values), color="k", lw=1.2, zorder=3)
    names = [where]
    listed = [sensors] if isinstance(sensors, (str, xr.DataArray)) else list(sensors)
    for i, sensor in enumerate(listed):
        responses = _srf.get(sensor) if isinstance(sensor, str) else sensor
        colour = f"C{i}"
        for response in responses.values:
            right.fill_between(responses["wavelength"].values, response, color=colour, alpha=0.25, lw=0.5)
        seen = _simulate(spectrum, responses)
        ax.plot(seen["wavelength"].values, seen.values, "o", color=colour, mec="k", ms=5, zorder=4)
        if band_labels and i == 0:
            for band, centre in zip(responses["band"].values, responses["centroid"].values):
                right.text(centre, 1.02, str(band), ha="center", va="bottom", fontsize=6, rotation=90, color=colour)
        handles.append(Patch(color=colour, alpha=0.4))
        names.append(str(responses.attrs.get("sensor", sensor if isinstance(sensor, str) else "SRF")))
    handles.append(Line2D([], [], ls="", marker="o", color="0.6", mec="k", ms=5))
    names.append("simulated bands")
    right.set_ylim(0.0, 1.25)
    right.set_ylabel("relative spectral response")
    ax.set_zorder(right.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.set_xlabel("wavelength (nm)")
    ax.set_ylabel(_units(data))
    ax.legend(handles, names, fontsize="small", loc="upper right")
    return ax


def heldout_error(da: xr.DataArray | xr.Dataset, ax: Axes | None = None) -> Axes:
    """Held-out error against wavelength, one line per candidate, of a self-checked repair
    (``repair(...)`` with ``method="auto"``, the default, or ``interval=``, in memory; a Zarr job's output): the
    RMSE of every candidate on the observed values the self-check hid, per band with hidden values, from
    ``da.attrs`` (``anyband_selfcheck_*``).

    Args:
        da: the repaired DataArray (or Dataset) whose attrs carry the self-check.
        ax: Axes to draw on (default: a new figure).

    Returns:
        The Axes; x wavelength (nm), y RMSE in the data's units, log scale; the chosen method drawn thicker.

    Raises:
        ValueError: ``da`` carries no self-check.

    Example:
        >>> repaired = observed.anyband.repair(mask)   # method="auto", the default
        >>> repaired.anyband.plot.heldout_error().figure.savefig("heldout.png")
    """
    attrs = da.attrs
    if "anyband_selfcheck_band_nm" not in attrs:
        status = f" (self-check {attrs['anyband_selfcheck_status']})" if "anyband_selfcheck_status" in attrs else ""
        raise ValueError(f"no self-check in the attrs{status}: repair an in-memory scene with method='auto' (the "
                         "default) or interval= first; a repair on dask records none (its check runs when the graph "
                         "computes).")
    nm = np.asarray(attrs["anyband_selfcheck_band_nm"], np.float64)
    chosen = attrs.get("anyband_selfcheck_method")
    ax = _new_axes(ax, (9.0, 4.0))
    prefix = "anyband_selfcheck_band_rmse_"
    for key in sorted(k for k in attrs if k.startswith(prefix)):
        method = key[len(prefix):]
        ax.plot(*_breaks(nm, np.asarray(attrs[key], np.float64)), marker=".", lw=2.5 if method == chosen else 1.0,
                label=f"{method} (chosen)" if method == chosen else method)
    ax.set_yscale("log")
    ax.set_xlabel("wavelength (nm)")
    ax.set_ylabel(f"held-out RMSE ({attrs.get('units', 'data units')})")
    ax.legend(fontsize="small")
    return ax


def _bound(func: Callable) -> Callable:
    """``func(da, ...)`` as a method of ``PlotAccessor`` drawing its DataArray."""

    @functools.wraps(func)
    def method(self: PlotAccessor, *args, **kwargs):
        return func(self._obj, *args, **kwargs)

    return method


class PlotAccessor:
    """``da.anyband.plot``: the plots of ``anyband_xr.plot`` drawn from this DataArray (matplotlib).

    Methods: ``spectra`` (curves of chosen pixels with truth, uncertainty and missing bands), ``error_map``
    (per-pixel error against a truth), ``rgb`` (true/false-colour quicklook), ``indices`` (index maps side by
    side), ``srf`` (sensor SRFs over a spectrum), ``heldout_error`` (a self-checked repair's held-out error
    against wavelength). Each returns the matplotlib Axes or Figure.

    Example:
        >>> da.anyband.plot.rgb("false")
        >>> da.anyband.plot.srf("sentinel-2a", pixel=(10, 80))
    """

    def __init__(self, obj: xr.DataArray) -> None:
        self._obj = obj

    spectra = _bound(spectra)
    error_map = _bound(error_map)
    rgb = _bound(rgb)
    indices = _bound(indices)
    srf = _bound(srf)
    heldout_error = _bound(heldout_error)
