"""Build ``anyband_xr/data/jasper_ridge.nc`` from the Jasper Ridge ``.mat`` file of the shared data folder.

Usage: python scripts/build_bundled_scene.py [path/to/jasperRidge2_R198.mat]
The DN are stored as int16 with scale_factor 1e-4 (netCDF3 via scipy: no extra dependency to read it back).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from anyband_xr.io.mat import read_jasper_ridge

SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "hsi" / "jasper_ridge" / "jasperRidge2_R198.mat"
TARGET = Path(__file__).resolve().parents[1] / "anyband_xr" / "data" / "jasper_ridge.nc"


def main(source: Path = SOURCE, target: Path = TARGET) -> None:
    """Convert ``source`` to the compact bundled netCDF ``target``."""
    ds = read_jasper_ridge(source)
    ds["reflectance"].attrs |= {
        "source": "MeiShaohui/Spectral-Variability-Augmented-Sparse-Unmixing : data/jasperRidge2_R198.mat",
        "conversion": "Y reshaped column-major to 100x100; wavelengths = jasper_ridge.csv[SlectBands - 1], sorted; "
        "reflectance = DN / 10000",
    }
    ds.attrs = {"title": "AVIRIS Jasper Ridge (100x100, 198 bands)", "built_by": "scripts/build_bundled_scene.py"}
    dn = np.rint(ds["reflectance"].values * 1e4)
    assert dn.min() >= 0 and dn.max() < np.iinfo(np.int16).max
    encoding = {"reflectance": {"dtype": "int16", "scale_factor": 1e-4, "_FillValue": -1}}
    ds.to_netcdf(target, engine="scipy", encoding=encoding)
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE)
