"""Reader for ENVI rasters (binary file + ``.hdr`` text header) through rioxarray, lazily."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import rioxarray
import xarray as xr
from rasterio.errors import NotGeoreferencedWarning

from anyband_xr.spectral import FWHM, WAVELENGTH, standardize, wavelengths

_FIELD = re.compile(r"^\s*([^=\n]+?)\s*=\s*(\{[^}]*\}|[^\n]*)", re.MULTILINE)
_UNITS = {"micrometers": "um", "microns": "um", "um": "um", "µm": "um", "nanometers": "nm", "nm": "nm"}


def header_path(path: str | Path) -> Path:
    """The ``.hdr`` file of an ENVI raster: ``name.hdr`` beside ``name.ext``, or ``name.ext.hdr``.

    Example:
        >>> header_path("flight.img")   # Path("flight.hdr") or Path("flight.img.hdr"), whichever exists
    """
    path = Path(path)
    for candidate in (path.with_suffix(".hdr"), path.with_name(path.name + ".hdr"), path):
        if candidate.suffix == ".hdr" and candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no ENVI header for {path}: expected {path.with_suffix('.hdr')} or {path}.hdr")


def _data_path(path: Path) -> Path:
    """The binary file of an ENVI raster given either it or its ``.hdr``."""
    if path.suffix != ".hdr":
        return path
    candidates = sorted(p for p in path.parent.glob(path.stem + "*") if p.suffix != ".hdr" and p.stem == path.stem)
    if not candidates:
        raise FileNotFoundError(f"no data file beside {path} (expected {path.stem}.img, .dat, .bsq, ...)")
    return candidates[0]


def parse_header(text: str) -> dict[str, str | list[str]]:
    """Fields of an ENVI header, keys lower-case; braces lists become lists of stripped strings.

    Example:
        >>> parse_header("ENVI\nbands = 2\nwavelength = {450.0, 550.0}")["wavelength"]   # ["450.0", "550.0"]
    """
    if not text.lstrip().startswith("ENVI"):
        raise ValueError("not an ENVI header: the first line must be 'ENVI'")
    fields: dict[str, str | list[str]] = {}
    for key, value in _FIELD.findall(text):
        value = value.strip()
        if value.startswith("{"):
            fields[key.strip().lower()] = [v.strip() for v in value[1:-1].split(",") if v.strip()]
        else:
            fields[key.strip().lower()] = value
    return fields


def _floats(values: str | list[str] | None) -> np.ndarray | None:
    return None if values is None else np.asarray(values if isinstance(values, list) else [values], dtype=np.float64)


def read_envi(path: str | Path, chunks: dict | str | None = "auto") -> xr.DataArray:
    """Read an ENVI raster lazily as float32 ``(wavelength, y, x)``, wavelengths/FWHM in nm sorted ascending.

    ``path`` is the binary file (or its ``.hdr``). The header's ``wavelength``, ``fwhm``, ``wavelength units``,
    ``data ignore value`` (-> NaN) and ``reflectance scale factor`` (values divided by it) are applied; the CRS and
    transform come from GDAL (``da.rio.crs``). Without georeferencing, ``y`` and ``x`` are integer pixel indices.
    ``chunks`` is passed to dask for ``y``/``x``; the spectral axis is one chunk (None reads into memory).

    Example:
        >>> da = read_envi("f180601t01p00r06_rfl.img", chunks={"y": 512, "x": 512})   # lazy, nm, NaN for nodata
    """
    hdr = header_path(path)
    fields = parse_header(hdr.read_text(errors="replace"))
    data_path = _data_path(Path(path))
    centre = _floats(fields.get("wavelength"))
    if centre is None:
        raise ValueError(f"{hdr} has no 'wavelength = {{...}}' field; read it with rioxarray and assign wavelengths.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        dask_chunks = None if chunks is None else {"band": -1, "y": chunks, "x": chunks}
        da = rioxarray.open_rasterio(data_path, chunks=dask_chunks, mask_and_scale=False)
    raw_dtype = da.dtype
    da = da.drop_vars(["band", WAVELENGTH, FWHM], errors="ignore").rename({"band": WAVELENGTH})
    units = _UNITS.get(str(fields.get("wavelength units", "")).strip().lower())
    coords = {WAVELENGTH: (WAVELENGTH, centre, {"units": units} if units else {})}
    width = _floats(fields.get("fwhm"))
    if width is not None:
        coords[FWHM] = (WAVELENGTH, width, {"units": units} if units else {})
    da = da.assign_coords(coords)
    if da.rio.crs is None:
        da = da.drop_vars("spatial_ref", errors="ignore")
        da = da.assign_coords(y=np.arange(da.sizes["y"]), x=np.arange(da.sizes["x"]))
    values = da.astype(np.float32)
    ignore = fields.get("data ignore value")
    if ignore is not None:
        values = values.where(da != np.asarray(float(ignore)).astype(raw_dtype))
    scale = fields.get("reflectance scale factor")
    if scale:
        values = values / np.float32(float(scale))
    description = fields.get("description", "")
    values.attrs = {
        "description": ", ".join(description) if isinstance(description, list) else description,
        "sensor": str(fields.get("sensor type", "unknown")),
        "source": Path(path).name,
        "licence": "unknown (user file)",
        "units": "reflectance" if scale else "as stored",
        "scale_note": f"divided by the header's reflectance scale factor {scale}" if scale else "values as stored",
    }
    order = np.argsort(wavelengths(values), kind="stable")
    return standardize(values.isel({WAVELENGTH: order}))
