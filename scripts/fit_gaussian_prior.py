"""Fit the Gaussian (ridge conditional-mean) baseline's prior on the training columns of the real scenes.

    python scripts/fit_gaussian_prior.py [--root ../shared/data/hsi]

Writes ``anyband_xr/data/gaussian_prior.safetensors``. Held-out columns (``anyband_xr.grid.holdout_start``) are
never used.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from anyband_xr import baselines, datasets
from anyband_xr.grid import holdout_start
from anyband_xr.conditioning.gaussian import PRIOR_FILE, save_gaussian_prior

OUT = Path(__file__).resolve().parents[1] / "anyband_xr" / "data" / PRIOR_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "hsi"))
    args = parser.parse_args()
    train = {}
    for name, scene in datasets.training_scenes(args.root).items():
        train[name] = scene.isel(x=slice(0, holdout_start(scene.sizes["x"])))
        wl = scene["wavelength"].values
        complete = int(train[name].notnull().all("wavelength").sum())
        print(f"{name}: {complete} training pixels with every band, {wl[0]:.0f}-{wl[-1]:.0f} nm")
    save_gaussian_prior(baselines.fit_scene_prior(train.values()), OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
