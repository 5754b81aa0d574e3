"""Real scenes: the bundled Jasper Ridge cube and the scenes of a user-given data folder."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import xarray as xr

from anyband_xr.io.mat import detect_layout, load_arrays, read_mat

BUNDLED = "jasper_ridge.nc"


def _bundled() -> xr.Dataset:
    """The shipped Jasper Ridge file, decoded (DN * 1e-4), loaded in memory, int64 pixel indices."""
    with resources.as_file(resources.files("anyband_xr") / "data" / BUNDLED) as path:
        with xr.open_dataset(path, engine="scipy") as ds:
            ds = ds.load()
    return ds.assign_coords(y=np.arange(ds.sizes["y"]), x=np.arange(ds.sizes["x"]))


def jasper_ridge() -> xr.DataArray:
    """AVIRIS Jasper Ridge, float32 reflectance (DN / 10000), dims (wavelength: 198, y: 100, x: 100), 399-2457 nm.

    Shipped inside the package (nothing is downloaded); ``y``/``x`` are pixel indices. The right-hand 25 columns
    (``anyband_xr.grid.holdout_start``) are never used in training. See ``docs/data.md`` for source and licence.

    Example:
        >>> da = anyband_xr.datasets.jasper_ridge()
        >>> da.sel(wavelength=860, method="nearest").mean().item()   # NIR reflectance, about 0.16
    """
    da = _bundled()["reflectance"]
    return da.astype("float32").assign_attrs(da.attrs)


def jasper_ridge_abundances() -> xr.DataArray:
    """Reference abundances of Jasper Ridge, float32 fractions summing to 1 per pixel, dims (endmember, y, x).

    Example:
        >>> trees = jasper_ridge_abundances().sel(endmember="tree") > 0.8   # (y, x) boolean
    """
    return _bundled()["abundance"]


def jasper_ridge_endmembers() -> xr.DataArray:
    """Reference endmember spectra of Jasper Ridge, float32 reflectance, dims (endmember, wavelength nm).

    Example:
        >>> jasper_ridge_endmembers().sel(endmember="water").max().item()   # dark: below 0.1
    """
    return _bundled()["endmember_spectra"]


def training_scenes(root: str | Path) -> dict[str, xr.DataArray]:
    """Every real scene under ``root`` (laid out like the project's ``hsi/`` folder), keyed by ``<folder>/<stem>``.

    Reads each ``.mat`` file whose variables match a known layout (``anyband_xr.io.mat.read_mat``); files
    with labels only (e.g. ground truth maps) are skipped. Each scene is float32 (wavelength nm, y, x).

    Example:
        >>> scenes = training_scenes("/data/hsi")   # {"jasper_ridge/jasperRidge2_R198": <DataArray>, ...}
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"scene folder {root} does not exist: pass the folder that holds the scene sub-folders "
            "(e.g. <data>/hsi with jasper_ridge/, houston_crop/, indian_pines_simulated/)."
        )
    scenes = {}
    for path in sorted(root.rglob("*.mat")):
        if detect_layout(load_arrays(path)) is not None:
            scenes[path.relative_to(root).with_suffix("").as_posix()] = read_mat(path)
    if not scenes:
        raise FileNotFoundError(f"no readable .mat scene under {root}; see docs/data.md for the supported layouts.")
    return scenes


def scene_folder(name: str) -> str:
    """The folder part of a scene key of :func:`training_scenes` (``"jasper_ridge/jasperRidge2_R198"`` ->
    ``"jasper_ridge"``); a key without a folder (``"jasper_ridge"``, the bundled scene) is its own folder."""
    return name.split("/", 1)[0]


def select_scenes(
    scenes: dict[str, xr.DataArray], include: list[str] | None = None, exclude: list[str] | tuple[str, ...] = ()
) -> dict[str, xr.DataArray]:
    """The scenes named by ``include`` (all when None) less those named by ``exclude``, in their order.

    A name matches a scene key or its folder (:func:`scene_folder`), so ``exclude=["jasper_ridge"]`` leaves out
    ``jasper_ridge/jasperRidge2_R198``. A name that matches no scene is an error (a typo would otherwise train on
    the scene it meant to leave out).

    Example:
        >>> select_scenes(training_scenes("/data/hsi"), exclude=["jasper_ridge"])   # houston_crop, indian_pines
    """
    def named(key: str, names) -> bool:
        return key in names or scene_folder(key) in names

    unknown = [n for n in [*(include or []), *exclude] if not any(named(key, [n]) for key in scenes)]
    if unknown:
        raise ValueError(f"scene names {unknown} match none of the scenes {sorted(scenes)} (by key or folder).")
    return {k: v for k, v in scenes.items() if (include is None or named(k, include)) and not named(k, exclude)}
