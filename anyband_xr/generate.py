"""Full spectra from multispectral observations: ``generate`` (e.g. Sentinel-2 to a 400-2500 nm grid)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from anyband_xr import observation, spectral, srf
from anyband_xr.engine import run_blocks
from anyband_xr.grid import CANONICAL_NM
from anyband_xr.repair import prepare
from anyband_xr.settings import DEFAULT_OPERATORS, RepairSettings
from anyband_xr.simulate import simulate


def target_grid(target: str | np.ndarray | list | xr.DataArray | None) -> tuple[np.ndarray, str | None]:
    """(wavelengths nm, sensor to simulate afterwards or None) for a ``generate`` target.

    Example:
        >>> target_grid([0.45, 0.55, 0.65])   # (array([450., 550., 650.]), None): µm converted to nm
    """
    if target is None:
        return CANONICAL_NM.copy(), None
    if isinstance(target, str):
        srf.get(target)
        return CANONICAL_NM.copy(), target
    if isinstance(target, xr.DataArray):
        return spectral.wavelengths(target), None
    grid = np.asarray(target, dtype=np.float64)
    if grid.ndim != 1 or grid.size < 2 or (np.diff(grid) <= 0).any():
        raise ValueError("target wavelengths must be a 1-D ascending array of at least two values (nm).")
    return (grid * 1000.0 if grid.max() < 30 else grid), None


def generate(
    da: xr.DataArray,
    target: str | np.ndarray | list | xr.DataArray | None = None,
    return_std: bool = False,
    **options: Any,
) -> xr.DataArray | xr.Dataset:
    """Generate full spectra on ``target`` from a (multispectral) observation, with SRF consistency guidance.

    Args:
        da: observed bands (``band`` dim with ``wavelength`` centroids, nm; ``fwhm`` or ``attrs['sensor']`` for the
            band responses), two spatial dims. NaN values count as missing.
        target: None (the canonical 400-2500 nm, 10 nm grid), a wavelength array (nm or µm), a DataArray whose
            wavelengths to use, or a sensor name (the full spectrum is then simulated through that sensor's SRFs).
        return_std: return a Dataset with the generated values and a per-value ``std`` over the samples.
        **options: the sampling keywords of ``anyband_xr.repair.repair`` (``guidance``, ``steps``, ``samples``,
            ``seed``, ``operators``, ``device``, ``tile``, ``overlap`` in pixels, ``grad``, ``eta``, ``weights``;
            validated by ``RepairSettings.build``), not ``method``. ``operators`` defaults to ``("sensor", "ndvi",
            "ndwi", "range")`` here, where ``"sensor"`` asks the SRF integrals of the spectrum to match the
            observed bands.

    Returns:
        A DataArray (``wavelength`` dim on the target grid, nm; the data's units), or a Dataset with ``std``.

    Example:
        >>> s2 = anyband_xr.datasets.jasper_ridge().anyband.simulate("sentinel-2a")
        >>> hyper = s2.anyband.generate()            # (wavelength: 211, y, x), 400-2500 nm
        >>> landsat = s2.anyband.generate("landsat-8-oli", steps=10)   # Sentinel-2 -> Landsat 8 bands
    """
    if "method" in options:
        raise TypeError("generate() runs the diffusion model; it takes no method= (see repair for the baselines).")
    grid, then_simulate = target_grid(target)
    if options.get("operators") is None:
        options["operators"] = DEFAULT_OPERATORS
    settings = RepairSettings.build(method="diffusion", **options, reflectance=observation.looks_like_reflectance(da))
    values, missing, _, found = prepare(da, None)
    loop, dim = list(values.dims[:-3]), values.dims[-3]
    y, x = values.dims[-2:]
    spectral.check_model_range(grid)
    responses = srf.observation_responses(values)
    mean, std = run_blocks(values, missing, settings, target_nm=grid, responses=responses)
    spectral_coords = [n for n, c in values.coords.items() if dim in c.dims]
    template = values.drop_vars(spectral_coords).isel({dim: 0}, drop=True)
    coords = {**template.coords, "wavelength": ("wavelength", grid, {"units": "nm"})}
    dims = (*loop, "wavelength", y, x)
    provenance = {k: v for k, v in settings.provenance().items() if k != "anyband_correction_gain"}  # repair only
    attrs = {**values.attrs, **provenance, **found,
             "anyband_generated_from": str(values.attrs.get("sensor", "bands"))}
    out = xr.DataArray(mean, dims=dims, coords=coords, attrs=attrs, name=values.name)
    std_da = xr.DataArray(std, dims=dims, coords=coords, name="std")
    if then_simulate is not None:
        out = simulate(out, then_simulate).assign_attrs(attrs)
        std_da = simulate(std_da, then_simulate)
    if return_std:
        return xr.Dataset({out.name or "generated": out, "std": std_da}, attrs=attrs)
    return out
