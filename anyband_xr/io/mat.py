"""Readers for hyperspectral scenes stored as MATLAB ``.mat`` files (v5 via scipy.io, v7.3/HDF5 via h5py).

Every reader returns float32 ``(wavelength, y, x)`` with wavelengths in nm sorted ascending. The layout of the
usual benchmark files is detected from their variable names; see :data:`LAYOUTS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import h5py
import numpy as np
import scipy.io
import xarray as xr

from anyband_xr.spectral import WAVELENGTH, assign_wavelengths, standardize

AVIRIS_CHANNELS = 224
HYPERION_CHANNELS = 242
JASPER_ENDMEMBERS = ("tree", "water", "soil", "road")
_ACADEMIC = "none stated (widely used academic benchmark); cite the original data providers"


@dataclass(frozen=True)
class Layout:
    """How one benchmark ``.mat`` file stores its cube (rows, cols, bands) and which wavelengths it has."""

    name: str
    variables: tuple[str, ...]
    sensor: str
    n_bands: int
    table: str | None
    channels: tuple[int, ...] | None
    scale: float  # integer DN are divided by it; float data is kept as stored
    units: str
    licence: str = _ACADEMIC


def _kept(n: int, removed: list[tuple[int, int]]) -> tuple[int, ...]:
    """1-based channels 1..n without the inclusive 1-based ``removed`` ranges."""
    drop = {c for lo, hi in removed for c in range(lo, hi + 1)}
    return tuple(c for c in range(1, n + 1) if c not in drop)


_DN = "reflectance-like: DN / 10000"
LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout("houston_casi", ("hyprimg",), "ITRES CASI-1500 (GRSS DFC 2018)", 48, "linspace_380_1050", None,
               1e4, "at-sensor radiance DN / 10000 (reflectance-like magnitude, not surface reflectance)",
               "GPL-3.0 (JuanMarcosRamirez/featurefusion_igarss2021)"),
        Layout("indian_pines_simulated", ("simu_indian",), "AVIRIS (simulated low-rank Indian Pines)", 224,
               "aviris_92av3c", None, 1e4, "normalised reflectance-like (unitless, as stored)"),
        Layout("indian_pines", ("indian_pines",), "AVIRIS", 220, "indian_pines_92av3c", None, 1e4,
               "at-sensor radiance DN / 10000 (reflectance-like magnitude)"),
        Layout("indian_pines_corrected", ("indian_pines_corrected",), "AVIRIS", 200, "indian_pines_92av3c",
               _kept(220, [(104, 108), (150, 163), (220, 220)]), 1e4,
               "at-sensor radiance DN / 10000 (reflectance-like magnitude)"),
        Layout("salinas", ("salinas",), "AVIRIS", 224, "aviris", None, 1e4, _DN),
        Layout("salinas_corrected", ("salinas_corrected",), "AVIRIS", 204, "aviris",
               _kept(AVIRIS_CHANNELS, [(108, 112), (154, 167), (224, 224)]), 1e4, _DN),
        Layout("pavia_university", ("paviau", "pavia_university"), "ROSIS", 103, "rosis", None, 1e4, _DN),
        Layout("pavia_centre", ("pavia", "pavia_centre", "paviac"), "ROSIS", 102, None, None, 1e4, _DN),
        Layout("washington_dc_mall", ("dc", "dcmall", "dc_mall", "washington", "washington_dc_mall"), "HYDICE",
               191, None, None, 1e4, _DN),
        Layout("ksc", ("ksc",), "AVIRIS", 176, None, None, 1e4, _DN),
        Layout("botswana", ("botswana",), "EO-1 Hyperion", 145, "hyperion",
               _kept(HYPERION_CHANNELS, [(1, 9), (56, 81), (98, 101), (120, 133), (165, 186), (221, 242)]), 1e4, _DN),
    )
}


def _table(name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Centre wavelengths (nm) and FWHM (nm, or None) of a shipped table, one row per band of the usual file.

    ``aviris_92av3c`` spreads the 220 calibrated Indian Pines channels over the 224 AVIRIS channels (NaN where absent).
    """
    if name == "linspace_380_1050":
        return np.linspace(380.0, 1050.0, 48), None
    folder = resources.files("anyband_xr") / "data" / "wavelengths"
    if name == "indian_pines_92av3c":
        rows = np.loadtxt(str(folder / f"{name}.csv"), delimiter=",", skiprows=1)
        return rows[:, 1], rows[:, 2]
    if name == "aviris_92av3c":
        rows = np.loadtxt(str(folder / "indian_pines_92av3c.csv"), delimiter=",", skiprows=1)
        centre = np.full(AVIRIS_CHANNELS, np.nan)
        width = np.full(AVIRIS_CHANNELS, np.nan)
        channel = rows[:, 0].astype(int) - 1
        centre[channel], width[channel] = rows[:, 1], rows[:, 2]
        return centre, width
    return np.genfromtxt(str(folder / f"{name}.csv"), skip_header=1, delimiter=","), None


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """All numeric arrays of a ``.mat`` file (v5 or v7.3) by name, in MATLAB's (row, col, ...) index order.

    Example:
        >>> {k: v.shape for k, v in load_arrays("PaviaU.mat").items()}   # {"paviaU": (610, 340, 103)}
    """
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as f:
            return {
                k: np.asarray(v).T for k, v in f.items() if isinstance(v, h5py.Dataset) and v.dtype.kind in "iufb"
            }
    raw = scipy.io.loadmat(str(path))
    return {k: v for k, v in raw.items() if not k.startswith("__") and isinstance(v, np.ndarray)}


def _layout_error(path: str | Path, arrays: dict[str, np.ndarray], why: str) -> ValueError:
    found = ", ".join(f"{k} {v.shape}" for k, v in arrays.items()) or "none"
    return ValueError(
        f"{path}: {why}. Variables found: {found}. Known layouts: {', '.join(sorted(LAYOUTS))} and 'jasper_ridge'. "
        "Pass layout='<name>' to choose one, or layout='cube:<variable>' with wavelengths=[... nm] for any "
        "(rows, cols, bands) array."
    )


def detect_layout(arrays: dict[str, np.ndarray]) -> str | None:
    """Name of the layout whose variable names match ``arrays`` (case-insensitive), or None.

    Example:
        >>> detect_layout(load_arrays("PaviaU.mat"))   # "pavia_university"
    """
    names = {k.lower() for k in arrays}
    if {"y", "slectbands"} <= names:
        return "jasper_ridge"
    for layout in LAYOUTS.values():
        if names & set(layout.variables):
            return layout.name
    return None


def _variable(arrays: dict[str, np.ndarray], candidates: tuple[str, ...]) -> np.ndarray | None:
    by_lower = {k.lower(): v for k, v in arrays.items()}
    return next((by_lower[c] for c in candidates if c in by_lower), None)


def _wavelengths(layout: Layout, n_bands: int, wavelengths: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    if wavelengths is not None:
        return np.asarray(wavelengths, dtype=np.float64), None
    if layout.table is None:
        raise ValueError(
            f"layout {layout.name!r} ({layout.sensor}, {n_bands} bands): no public table says which channels the "
            "usual file keeps, so its wavelengths are unknown. Pass wavelengths=[... nm] (one per band)."
        )
    centre, width = _table(layout.table)
    if layout.channels is not None:
        index = np.asarray(layout.channels) - 1
        centre, width = centre[index], None if width is None else width[index]
    return centre, width


def _cube(
    data: np.ndarray, wl: np.ndarray, fwhm: np.ndarray | None, scale: float, attrs: dict[str, str]
) -> xr.DataArray:
    """float32 (wavelength, y, x) DataArray from a (bands, rows, cols) array; integer DN are divided by ``scale``."""
    if not np.issubdtype(data.dtype, np.integer):
        scale = 1.0
    values = (data.astype(np.float64) / scale).astype(np.float32)
    rows, cols = values.shape[1:]
    da = xr.DataArray(
        values,
        dims=(WAVELENGTH, "y", "x"),
        coords={"y": np.arange(rows), "x": np.arange(cols)},
        attrs=attrs | {"scale_note": f"stored values divided by {scale:g}" if scale != 1 else "values as stored"},
    )
    da = assign_wavelengths(da, wl, fwhm)
    if not np.all(np.diff(wl) > 0):
        da = da.isel({WAVELENGTH: np.argsort(wl, kind="stable")})
    return standardize(da)


def _read_layout(path: str | Path, arrays: dict[str, np.ndarray], layout: Layout, wavelengths) -> xr.DataArray:
    cube = _variable(arrays, layout.variables)
    if cube is None:
        raise _layout_error(path, arrays, f"none of the variables {layout.variables} of {layout.name!r} is present")
    if cube.ndim != 3:
        raise _layout_error(path, arrays, f"the cube of layout {layout.name!r} must be (rows, cols, bands)")
    wl, width = _wavelengths(layout, cube.shape[2], wavelengths)
    data = np.moveaxis(cube, 2, 0)
    known = np.isfinite(wl)
    if wl.size == data.shape[0] and not known.all():
        data, wl, width = data[known], wl[known], None if width is None else width[known]
    if wl.size != data.shape[0]:
        why = f"{data.shape[0]} bands but {wl.size} wavelengths (layout {layout.name!r} has {layout.n_bands})"
        raise _layout_error(path, arrays, why)
    attrs = {"sensor": layout.sensor, "source": f"{Path(path).name} (layout {layout.name})",
             "licence": layout.licence, "units": layout.units}
    if not known.all():
        attrs["note"] = f"bands {(np.flatnonzero(~known) + 1).tolist()} (1-based) dropped: no calibrated wavelength"
    return _cube(data, wl, width, layout.scale, attrs)


def read_mat(
    path: str | Path, layout: str | None = None, wavelengths: np.ndarray | list[float] | None = None
) -> xr.DataArray:
    """Read a hyperspectral cube from a ``.mat`` file as float32 ``(wavelength, y, x)``, wavelengths in nm.

    ``layout`` is detected from the variable names when None; give a name of ``LAYOUTS``, ``'jasper_ridge'``,
    or ``'cube:<variable>'`` (any (rows, cols, bands) array; needs ``wavelengths``). ``wavelengths`` (nm or µm,
    one per band) overrides the layout's table. Integer DN are divided by the layout's scale (see attrs
    ``scale_note``), giving reflectance-like values; an unknown file raises a ``ValueError`` listing its variables.

    Example:
        >>> pavia = read_mat("PaviaU.mat")                                     # (wavelength: 103, y, x), 430-850 nm
        >>> cube = read_mat("scene.mat", layout="cube:data", wavelengths=wl_nm)  # any (rows, cols, bands) array
    """
    arrays = load_arrays(path)
    name = layout or detect_layout(arrays)
    if name is None:
        raise _layout_error(path, arrays, "no known layout matches the variable names")
    if name == "jasper_ridge":
        return read_jasper_ridge(path)["reflectance"]
    if name.startswith("cube:"):
        variable = name.split(":", 1)[1]
        if variable not in arrays or wavelengths is None:
            raise _layout_error(path, arrays, f"layout {name!r} needs an existing variable and wavelengths=")
        custom = Layout("custom", (variable.lower(),), "unknown", arrays[variable].shape[-1], None, None,
                        1e4, "reflectance-like (integer DN / 10000, float as stored)", "unknown")
        return _read_layout(path, arrays, custom, wavelengths)
    if name not in LAYOUTS:
        raise _layout_error(path, arrays, f"unknown layout {name!r}")
    return _read_layout(path, arrays, LAYOUTS[name], wavelengths)


def read_jasper_ridge(path: str | Path) -> xr.Dataset:
    """Jasper Ridge (AVIRIS, 100x100, 198 bands): ``reflectance`` (DN / 10000), ``abundance`` and ``endmember_spectra``.

    ``Y`` (198 x 10000) is MATLAB column-major: pixel ``p`` is row ``p % 100``, column ``p // 100``. Channel
    wavelengths come from ``SlectBands`` (1-based AVIRIS channels) and are sorted ascending (the AVIRIS
    spectrometers overlap). Endmembers: tree, water, soil, road; their spectra ``M`` (stored as DN / maxValue)
    are rescaled to DN / 10000.

    Example:
        >>> ds = read_jasper_ridge("jasperRidge2_R198.mat")   # reflectance, abundance, endmember_spectra
    """
    arrays = load_arrays(path)
    if not {"Y", "SlectBands", "M", "A"} <= set(arrays):
        raise _layout_error(path, arrays, "Jasper Ridge needs the variables Y, SlectBands, M and A")
    rows, cols = int(np.ravel(arrays.get("nRow", [100]))[0]), int(np.ravel(arrays.get("nCol", [100]))[0])
    channels = np.ravel(arrays["SlectBands"]).astype(int)
    wl = _table("jasper_ridge")[0][channels - 1]
    order = np.argsort(wl, kind="stable")
    cube = arrays["Y"].reshape(-1, rows, cols, order="F")
    attrs = {"sensor": "AVIRIS", "source": f"{Path(path).name} (Jasper Ridge, California)", "licence": _ACADEMIC,
             "units": "reflectance (DN / 10000)"}
    reflectance = _cube(cube[order], wl[order], None, 1e4, attrs)
    endmember = xr.IndexVariable("endmember", list(JASPER_ENDMEMBERS))
    abundance = xr.DataArray(
        arrays["A"].reshape(-1, rows, cols, order="F").astype(np.float32),
        dims=("endmember", "y", "x"),
        coords={"endmember": endmember, "y": reflectance.y, "x": reflectance.x},
        attrs={"units": "fraction", "long_name": "endmember abundance"},
    )
    max_value = float(np.ravel(arrays.get("maxValue", [1e4]))[0])
    spectra = xr.DataArray(
        (arrays["M"][order].T * (max_value / 1e4)).astype(np.float32),
        dims=("endmember", WAVELENGTH),
        coords={"endmember": endmember, WAVELENGTH: reflectance[WAVELENGTH]},
        attrs={"units": "reflectance", "long_name": "endmember spectrum",
               "scale_note": f"M is stored as DN / maxValue ({max_value:g}); multiplied by maxValue / 10000"},
    )
    return xr.Dataset({"reflectance": reflectance, "abundance": abundance, "endmember_spectra": spectra})


_LABEL_SUFFIXES = ("_gt", "gt")
_LABEL_NAMES = ("claslabs", "labels", "gt")


def read_labels(path: str | Path, variable: str | None = None) -> xr.DataArray:
    """Class-label map of a ``.mat`` file as int32 ``(y, x)`` (0 = unlabelled in the usual benchmarks).

    The variable is detected (``clasLabs``, ``*_gt``) when ``variable`` is None. Houston's ``clasLabs`` lies on a
    grid 4x finer than ``hyprImg`` (512 vs 128 pixels).

    Example:
        >>> labels = read_labels("PaviaU_gt.mat")   # int32 (y: 610, x: 340), classes 0-9
    """
    arrays = load_arrays(path)
    if variable is None:
        found = [k for k in arrays if k.lower() in _LABEL_NAMES or k.lower().endswith(_LABEL_SUFFIXES)]
        if len(found) != 1:
            raise _layout_error(path, arrays, "no single label variable (clasLabs, *_gt); pass variable='<name>'")
        variable = found[0]
    labels = arrays[variable]
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise _layout_error(path, arrays, f"{variable!r} is not a 2-D integer label map")
    rows, cols = labels.shape
    return xr.DataArray(
        labels.astype(np.int32),
        dims=("y", "x"),
        coords={"y": np.arange(rows), "x": np.arange(cols)},
        name=variable,
        attrs={"source": f"{Path(path).name}:{variable}", "long_name": "class label", "flag_meaning": "0 = unlabelled"},
    )
