"""The wavelength contract: find, validate and normalise the spectral axis of xarray objects.

The spectral axis is a ``wavelength`` dimension, or a ``band`` dimension carrying a ``wavelength``
(or STAC-style ``center_wavelength``) coordinate. Wavelengths are nanometres; micrometres (attrs
``units`` or values below 30) are converted. An optional ``fwhm`` coordinate is converted alike.
Values that cannot be wavelengths in the declared units (band numbers, wavenumbers, µm labelled nm) raise.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from anyband_xr.grid import CANONICAL_START_NM, CANONICAL_STEP_NM, CANONICAL_STOP_NM

WAVELENGTH = "wavelength"
BAND = "band"
FWHM = "fwhm"
_WAVELENGTH_COORDS = (WAVELENGTH, "center_wavelength")
_MICROMETRE_UNITS = {"um", "µm", "μm", "micrometer", "micrometers", "micrometre", "micrometres", "micron", "microns"}
_NANOMETRE_UNITS = {"nm", "nanometer", "nanometers", "nanometre", "nanometres"}
_WAVENUMBER_UNITS = {"cm-1", "cm^-1", "cm⁻¹", "1/cm", "wavenumber", "wavenumbers"}
_MICROMETRE_MAX = 30.0
#: Longest wavelength (nm) of any optical remote-sensing band: thermal bands end near 14.5 µm (MODIS band 36).
OPTICAL_MAX_NM = 16_000.0
#: Shortest band (nm) a spectral grid lying wholly beyond it may start at before a descending order reads as
#: wavenumbers (cm⁻¹ of VNIR-SWIR spectra run 25,000 down to 4,000); the longest reflective band ends near 2,600 nm.
REFLECTIVE_MAX_NM = 2_600.0
#: The model's spectral domain (nm): the canonical grid 400-2500 nm widened by half its 10 nm step, so a band the
#: grid's edge sample stands for (e.g. AVIRIS's 399.4 nm) counts as inside.
MODEL_RANGE_NM = (CANONICAL_START_NM - CANONICAL_STEP_NM / 2, CANONICAL_STOP_NM + CANONICAL_STEP_NM / 2)


class SpectralAxisError(ValueError):
    """The object has no usable spectral axis; the message names the problem and the fix."""


class SpectralDataError(ValueError):
    """The spectral values cannot be used as they are; the message names the problem and the fix."""


class AnyBandWarning(UserWarning):
    """Something was repaired on the way in (sorted, rechunked, dropped); the message says what."""


def spectral_dim(obj: xr.DataArray | xr.Dataset) -> str:
    """Name of the spectral dimension of ``obj``: ``wavelength`` or ``band`` (with a wavelength coordinate).

    Raises ``SpectralAxisError`` saying how to attach wavelengths when there is none.

    Example:
        >>> spectral_dim(da.anyband.simulate("sentinel-2a"))   # "band"
    """
    if WAVELENGTH in obj.dims:
        return WAVELENGTH
    if BAND in obj.dims:
        if _wavelength_coord_name(obj, BAND) is not None:
            return BAND
        raise SpectralAxisError(
            f"dimension 'band' has no wavelength coordinate (coords: {sorted(map(str, obj.coords))}). "
            "Attach one in nm: anyband_xr.assign_wavelengths(da, [490, 560, 665, ...], dim='band')."
        )
    raise SpectralAxisError(
        f"no spectral axis among dims {tuple(map(str, obj.dims))}: expected a 'wavelength' dimension or a "
        "'band' dimension with a 'wavelength' coordinate. Fix: da.rename({'<your dim>': 'wavelength'}) and "
        "anyband_xr.assign_wavelengths(da, wavelengths_nm)."
    )


def _wavelength_coord_name(obj: xr.DataArray | xr.Dataset, dim: str) -> str | None:
    for name in _WAVELENGTH_COORDS:
        if name in obj.coords and obj.coords[name].dims == (dim,):
            return name
    if dim == WAVELENGTH and WAVELENGTH in obj.dims:
        return WAVELENGTH
    return None


def _to_nanometres(values: np.ndarray, units: str | None, what: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    unit = (units or "").strip().lower()
    if unit in _MICROMETRE_UNITS:
        return values * 1000.0
    if unit in _NANOMETRE_UNITS:
        return values
    if unit in _WAVENUMBER_UNITS:
        raise SpectralAxisError(
            f"{what} has units {units!r} (wavenumbers); anyband_xr understands nm and µm. Convert: wavelength in nm "
            "= 1e7 / wavenumber in cm⁻¹, e.g. da.assign_coords(wavelength=1e7 / da.wavelength), and set "
            "attrs['units'] = 'nm'."
        )
    if unit:
        raise SpectralAxisError(
            f"{what} has units {units!r}; anyband_xr understands nm and µm. Convert to nm and set attrs['units'] = 'nm'."
        )
    finite = values[np.isfinite(values)]
    if finite.size and np.nanmax(np.abs(finite)) < _MICROMETRE_MAX:
        return values * 1000.0
    return values


def _span(values: np.ndarray) -> str:
    """``"lo-hi"`` of ``values`` for messages (one value when they are all the same)."""
    lo, hi = np.min(values), np.max(values)
    return f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"


def _check_not_band_numbers(raw: np.ndarray) -> None:
    """Raise ``SpectralAxisError`` when the (finite) wavelength values are band numbers: 0..N-1 or 1..N, step 1."""
    ordered = np.sort(raw)
    if raw.size >= 3 and ordered[0] in (0.0, 1.0) and np.array_equal(ordered, ordered[0] + np.arange(raw.size)):
        raise SpectralAxisError(
            f"the wavelength coordinate holds {ordered[0]:g}..{ordered[-1]:g} in steps of 1: band numbers, not "
            "wavelengths. Attach centre wavelengths in nm: anyband_xr.assign_wavelengths(da, [490, 560, 665, ...])."
        )


def _check_units(raw: np.ndarray, units: str | None, nm: np.ndarray) -> None:
    """Raise ``SpectralAxisError`` when positive centre wavelengths cannot be what their units say.

    Catches µm labelled nm, nm labelled µm and wavenumbers (cm⁻¹) passed as nm. ``raw`` are the coordinate's
    values in their own ``units``, ``nm`` the same converted.
    """
    unit = (units or "").strip().lower()
    if unit in _NANOMETRE_UNITS and np.max(raw) < _MICROMETRE_MAX:
        raise SpectralAxisError(
            f"wavelengths {_span(raw)} are labelled {units!r}, but no band lies below 30 nm: these are micrometres. "
            "Set da['wavelength'].attrs['units'] = 'um' (converted to nm on the way in) or multiply them by 1000."
        )
    if unit in _MICROMETRE_UNITS and np.max(raw) >= _MICROMETRE_MAX:
        raise SpectralAxisError(
            f"wavelengths {_span(raw)} are labelled {units!r}, but no band lies beyond 30 µm: these look like "
            "nanometres. Set da['wavelength'].attrs['units'] = 'nm'."
        )
    if np.max(nm) > OPTICAL_MAX_NM:
        reason = f"reach beyond {OPTICAL_MAX_NM:g} nm, past any optical band"
    elif nm.size >= 10 and np.min(nm) > REFLECTIVE_MAX_NM and bool((np.diff(nm) < 0).all()):
        reason = f"descend, all beyond {REFLECTIVE_MAX_NM:g} nm"
    else:
        return
    raise SpectralAxisError(
        f"wavelengths {_span(nm)} nm {reason}: these look like wavenumbers in cm⁻¹. Convert: wavelength in nm = "
        "1e7 / wavenumber, e.g. da.assign_coords(wavelength=1e7 / da.wavelength), and set attrs['units'] = 'nm'."
    )


def check_model_range(nm: np.ndarray) -> None:
    """Warn (``AnyBandWarning``) when wavelengths lie outside the model's 400-2500 nm, where it knows nothing.

    For a model call (repair or generate): missing or generated values there are only extrapolated (the PCHIP
    interpolant of the observed bands, constant beyond the outermost one, or the scene's low-rank completion where
    values are missing per pixel, plus the model's correction at its 400/2500 nm edge); observed values there are
    kept and only shape that interpolant. Within half a canonical
    step (5 nm) of the edges counts as inside. Silent when all wavelengths are inside.

    Args:
        nm: wavelengths in nm (observed bands, or the wavelengths to generate).

    Example:
        >>> check_model_range(np.array([3000.0, 4000.0]))   # AnyBandWarning: 2 of 2 wavelengths ... extrapolated
    """
    nm = np.asarray(nm, dtype=np.float64)
    low, high = MODEL_RANGE_NM
    outside = nm[(nm < low) | (nm > high)]
    if outside.size:
        warnings.warn(
            f"{outside.size} of {nm.size} wavelengths ({_span(outside)} nm) lie outside 400-2500 nm, the only range "
            "the model was trained on: it knows nothing there. Values missing or generated there are only "
            "extrapolated (the PCHIP interpolant of the observed bands, held constant beyond the outermost one, or the "
            "scene's low-rank completion where values are missing per pixel, plus the model's correction at its "
            "400/2500 nm edge); observed values there are returned as they are. "
            "Treat them as interpolation, or drop those bands (da.sel(wavelength=slice(400, 2500))).",
            AnyBandWarning,
            stacklevel=2,
        )


def wavelengths(obj: xr.DataArray | xr.Dataset) -> np.ndarray:
    """Validated centre wavelengths of the spectral axis in nm (float64, in the object's own order).

    µm values (attrs ``units``, or all values below 30) are converted; missing, non-positive or duplicate
    wavelengths, band numbers, wavenumbers and units contradicting the values raise ``SpectralAxisError`` with
    the fix.

    Example:
        >>> wavelengths(xr.DataArray([1, 2], dims="band", coords={"wavelength": ("band", [0.665, 0.842])}))
        array([665., 842.])
    """
    dim = spectral_dim(obj)
    coord = obj.coords[_wavelength_coord_name(obj, dim)]
    nm = _to_nanometres(coord.values, coord.attrs.get("units"), "the wavelength coordinate")
    bad = ~np.isfinite(nm)
    if bad.any():
        raise SpectralAxisError(
            f"{int(bad.sum())} wavelength(s) are missing or NaN (positions {np.flatnonzero(bad)[:10].tolist()}). "
            f"Drop those bands (da.isel({dim}=...)) or fill in their centre wavelengths."
        )
    raw = np.asarray(coord.values, dtype=np.float64)
    _check_not_band_numbers(raw)
    if (nm <= 0).any():
        raise SpectralAxisError(
            f"wavelengths must be positive nm; got {nm[nm <= 0][:5].tolist()}. Check the coordinate's values and units."
        )
    _check_units(raw, coord.attrs.get("units"), nm)
    values, counts = np.unique(nm, return_counts=True)
    if (counts > 1).any():
        raise SpectralAxisError(
            f"duplicate wavelengths {values[counts > 1][:10].tolist()} nm: each band needs its own wavelength. "
            "Drop or average the duplicated bands, e.g. da.groupby('wavelength').mean()."
        )
    return nm


def fwhm(obj: xr.DataArray | xr.Dataset) -> np.ndarray | None:
    """Full width at half maximum of each band in nm, or None when the object carries no ``fwhm``.

    Units: the coordinate's own ``units``, else the wavelength coordinate's, else those of the wavelength values
    (widths of a few nm must not be mistaken for micrometres).

    Example:
        >>> fwhm(anyband_xr.datasets.jasper_ridge())   # None: no FWHM is published for this scene
    """
    dim = spectral_dim(obj)
    if FWHM not in obj.coords or obj.coords[FWHM].dims != (dim,):
        return None
    coord = obj.coords[FWHM]
    centres = obj.coords[_wavelength_coord_name(obj, dim)]
    units = coord.attrs.get("units") or centres.attrs.get("units")
    if not units:
        units = "um" if np.nanmax(np.abs(np.asarray(centres.values, dtype=np.float64))) < _MICROMETRE_MAX else "nm"
    return _to_nanometres(coord.values, units, "the fwhm coordinate")


def assign_wavelengths(
    obj: xr.DataArray | xr.Dataset,
    wavelength: np.ndarray | list[float],
    fwhm: np.ndarray | list[float] | None = None,
    dim: str | None = None,
) -> xr.DataArray | xr.Dataset:
    """Attach centre wavelengths (nm or µm) and optionally FWHM to the spectral dimension ``dim``.

    ``dim`` defaults to ``wavelength`` if present, else ``band``. The coordinate's ``units`` attr says nm or um.

    Example:
        >>> da = assign_wavelengths(raw.rename(layer="band"), [490, 560, 665, 842], fwhm=[66, 36, 31, 106])
    """
    if dim is None:
        dim = WAVELENGTH if WAVELENGTH in obj.dims else BAND
    if dim not in obj.dims:
        raise SpectralAxisError(f"dimension {dim!r} not in {tuple(map(str, obj.dims))}; pass dim='<spectral dim>'.")
    wl = np.asarray(wavelength, dtype=np.float64)
    if wl.shape != (obj.sizes[dim],):
        raise SpectralAxisError(f"{wl.size} wavelengths given for {obj.sizes[dim]} entries of dimension {dim!r}.")
    units = "nm" if np.nanmax(wl) >= _MICROMETRE_MAX else "um"
    coords = {WAVELENGTH: (dim, wl, {"units": units})}
    if fwhm is not None:
        coords[FWHM] = (dim, np.asarray(fwhm, dtype=np.float64), {"units": units})
    return obj.assign_coords(coords)


def _check_values(da: xr.DataArray) -> None:
    scale_keys = {"scale_factor", "add_offset", "scale", "offset"}
    if np.issubdtype(da.dtype, np.integer) and scale_keys & (set(da.attrs) | set(da.encoding)):
        raise SpectralDataError(
            f"integer DN data ({da.dtype}) with a scale factor/offset in its attrs: the values are not yet physical. "
            "Decode them first: da = xr.decode_cf(da.to_dataset(name='x'))['x'], or "
            "da * da.attrs['scale_factor'] + da.attrs.get('add_offset', 0)."
        )


def standardize(obj: xr.DataArray, rechunk: bool = True) -> xr.DataArray:
    """Return ``obj`` with wavelengths in nm (sorted ascending), ``fwhm`` in nm, and one dask chunk along the spectral axis.

    Non-monotonic wavelengths (e.g. where AVIRIS spectrometers overlap) are sorted with a warning; a spectral axis
    split across dask chunks is rechunked with a warning. Nothing is computed. Integer DN data with a scale
    factor raise ``SpectralDataError`` (decode first).

    Example:
        >>> standardize(da.isel(wavelength=slice(None, None, -1)))   # sorted ascending again, with a warning
    """
    if not isinstance(obj, xr.DataArray):
        raise TypeError(
            f"expected an xarray.DataArray, got {type(obj).__name__}. Wrap arrays with their wavelengths (nm): "
            "xr.DataArray(values, dims=('wavelength', 'y', 'x'), coords={'wavelength': wavelengths_nm})."
        )
    dim = spectral_dim(obj)
    _check_values(obj)
    nm = wavelengths(obj)
    coords = {WAVELENGTH: (dim, nm, {"units": "nm", "long_name": "centre wavelength"})}
    widths = fwhm(obj)
    if widths is not None:
        coords[FWHM] = (dim, widths, {"units": "nm", "long_name": "full width at half maximum"})
    out = obj.assign_coords(coords)
    if "center_wavelength" in out.coords and dim == BAND:
        out = out.drop_vars("center_wavelength")
    order = np.argsort(nm, kind="stable")
    if (np.diff(nm) < 0).any():
        warnings.warn(
            f"wavelengths along {dim!r} are not monotonic (e.g. overlapping spectrometers); sorted them ascending.",
            AnyBandWarning,
            stacklevel=2,
        )
        out = out.isel({dim: order})
    if rechunk and out.chunks is not None:
        axis = out.get_axis_num(dim)
        if len(out.chunks[axis]) > 1:
            warnings.warn(
                f"the spectral axis {dim!r} was split across {len(out.chunks[axis])} dask chunks; rechunked it to one "
                f"chunk (spectral operations need whole spectra). Do da.chunk({{{dim!r}: -1}}) upstream to avoid this.",
                AnyBandWarning,
                stacklevel=2,
            )
            out = out.chunk({dim: -1})
    return out
