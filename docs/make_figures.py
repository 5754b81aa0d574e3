"""Render the documentation figures (docs/figures/*.png) from the bundled real scene with the shipped weights.

Run from the repository root after the weights change: ``python docs/make_figures.py`` (about two minutes on one
CPU core). Every figure is drawn from AVIRIS Jasper Ridge (``anyband_xr.datasets.jasper_ridge``); repairs use its
held-out columns, which training never sees. Seeds are fixed, so a re-run with the same weights gives the same
pictures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import xarray as xr  # noqa: E402

import anyband_xr  # noqa: E402,F401
from anyband_xr import masks, metrics, plot  # noqa: E402
from anyband_xr.datasets import jasper_ridge, jasper_ridge_abundances  # noqa: E402
from anyband_xr.demo import held_out  # noqa: E402
from anyband_xr.grid import CANONICAL_NM  # noqa: E402
from anyband_xr.conditioning import bridge  # noqa: E402
from anyband_xr.model import load_model  # noqa: E402
from anyband_xr.settings import RepairSettings  # noqa: E402
from anyband_xr.sampling import DDIM, Guidance, Trajectory, sample  # noqa: E402
from anyband_xr.sampling.conditional import build_operators  # noqa: E402
from anyband_xr.tiling import position_noise  # noqa: E402

FIGURES = Path(__file__).parent / "figures"
DPI = 110
SEED = 0
STEPS = 50
GUIDANCE_SWEEP = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)


def scene_mask(da: xr.DataArray) -> xr.DataArray:
    """The documentation's missing data: 30% random band loss plus gaps across the red (620-700 nm) and the NIR
    plateau (1000-1250 nm); True = missing, dims (wavelength,)."""
    return masks.combine(
        masks.band_loss(da, 0.3, seed=SEED), masks.spectral_gap(da, 620, 700), masks.spectral_gap(da, 1000, 1250)
    )


def endmember_pixels(region: xr.DataArray) -> dict[str, tuple[int, int]]:
    """(row, column) in ``region`` of the purest tree, soil and road pixels (the held-out columns hold no water)."""
    abundance = jasper_ridge_abundances().sel(y=region["y"], x=region["x"])
    pixels = {}
    for name in ("tree", "soil", "road"):
        plane = abundance.sel(endmember=name).values
        pixels[str(name)] = tuple(int(i) for i in np.unravel_index(np.argmax(plane), plane.shape))
    return pixels


def save(fig: plt.Figure, name: str) -> None:
    FIGURES.mkdir(exist_ok=True)
    fig.savefig(FIGURES / name, dpi=DPI)
    plt.close(fig)
    print(f"wrote {FIGURES / name}")


def quicklooks(scene: xr.DataArray) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.3), layout="constrained")
    for ax, preset in zip(axes, ("true", "false", "swir")):
        scene.anyband.plot.rgb(preset, ax=ax)
        ax.set_title(f"{preset}: " + ax.get_title(), fontsize="medium")
    save(fig, "quicklooks.png")


def srf_library(scene: xr.DataArray, pixels: dict[str, tuple[int, int]], region: xr.DataArray) -> None:
    fig, axes = plt.subplots(2, 1, figsize=(10, 7), layout="constrained", sharex=True)
    tree = {"y": int(region["y"][pixels["tree"][0]]), "x": int(region["x"][pixels["tree"][1]])}
    soil = {"y": int(region["y"][pixels["soil"][0]]), "x": int(region["x"][pixels["soil"][1]])}
    scene.anyband.plot.srf(["sentinel-2a", "landsat-8-oli"], pixel=tree, ax=axes[0])
    scene.anyband.plot.srf(["planetscope-superdove", "modis-terra"], pixel=soil, ax=axes[1])
    axes[0].set_title("tree pixel: Sentinel-2A and Landsat 8 OLI", fontsize="medium")
    axes[1].set_title("soil pixel: PlanetScope SuperDove and MODIS Terra", fontsize="medium")
    save(fig, "srf_library.png")


def repairs(truth: xr.DataArray, mask: xr.DataArray) -> dict[str, xr.DataArray | xr.Dataset]:
    observed = truth.where(~mask)
    out: dict[str, xr.DataArray | xr.Dataset] = {
        method: observed.anyband.repair(mask, method=method) for method in ("linear", "pchip", "gaussian")
    }
    out["AnyBand-Diff"] = observed.anyband.repair(mask, method="diffusion", steps=STEPS, samples=8, seed=SEED,
                                                  return_std=True)
    return out


def spectra_figure(truth, mask, result: xr.Dataset, pixels) -> None:
    fig, axes = plt.subplots(len(pixels), 1, figsize=(10, 3.2 * len(pixels)), layout="constrained", sharex=True)
    for ax, (name, pixel) in zip(axes.flat, pixels.items()):
        result["reflectance"].anyband.plot.spectra([pixel], truth=truth, mask=mask, std=result["std"], ax=ax)
        ax.set_title(f"{name} pixel (held out)", fontsize="medium")
    save(fig, "repair_spectra.png")


def trajectory(truth: xr.DataArray, mask: xr.DataArray, guidance: float, steps: int) -> Trajectory:
    """Physical loss of the Tweedie estimate along one DDIM run over a 32x24 tile (guidance 0: recorded only)."""
    tile = truth.isel(y=slice(0, 32), x=slice(-24, None)).transpose("wavelength", "y", "x")  # multiple of 4
    nm = tile["wavelength"].values
    missing = torch.as_tensor(np.broadcast_to(mask.values[:, None, None], tile.shape).copy())[None]
    values = torch.as_tensor(np.where(missing[0].numpy(), 0.0, tile.values), dtype=torch.float32)[None]
    model = load_model()
    cond = bridge.make_condition(values, nm, missing)
    context = cond.tensor()
    settings = RepairSettings(guidance=1.0, steps=steps, reflectance=True)
    operators = build_operators(settings, values, missing, nm, cond, None, torch.device("cpu"))
    record = Trajectory()
    noise = torch.from_numpy(position_noise(SEED, 0, CANONICAL_NM.size, 0, 0, *tile.shape[1:]))[None]
    pgs = Guidance(guidance, operators, lambda r: bridge.from_model(r, cond))
    sample(lambda x, t: model(x, t, context), noise, DDIM(model.schedule.alphas_cumprod, steps), pgs, trajectory=record)
    return record


def pgs_figure(truth: xr.DataArray, mask: xr.DataArray) -> None:
    observed = truth.where(~mask)
    full = mask.broadcast_like(truth)
    ndvi_truth = truth.anyband.index("NDVI")
    psnr, ndvi = [], []
    for s in GUIDANCE_SWEEP:
        repaired = observed.anyband.repair(mask, method="diffusion", guidance=s, steps=20, seed=SEED)
        psnr.append(metrics.psnr(repaired, truth, full))
        ndvi.append(metrics.index_rmse(repaired.anyband.index("NDVI"), ndvi_truth))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    for s in (0.0, 1.0, 4.0):
        record = trajectory(truth, mask, s, 20)
        axes[0].semilogy(record.timesteps, record.physical_loss, marker="o", ms=3, label=f"guidance s = {s:g}")
    axes[0].invert_xaxis()
    axes[0].set_xlabel("diffusion timestep t (sampling runs right to left: 999 -> 0)")
    axes[0].set_ylabel("physical loss of the Tweedie estimate (sum)")
    axes[0].set_title("L_phy along the DDIM trajectory (20 steps, one tile)", fontsize="medium")
    axes[0].legend(fontsize="small")
    axes[1].plot(GUIDANCE_SWEEP, psnr, marker="o", color="C0")
    axes[1].ticklabel_format(axis="y", useOffset=False)
    axes[1].set_xlabel("guidance scale s")
    axes[1].set_ylabel("PSNR over the missing values (dB)", color="C0")
    twin = axes[1].twinx()
    twin.plot(GUIDANCE_SWEEP, ndvi, marker="s", color="C3")
    twin.ticklabel_format(axis="y", useOffset=False)
    twin.set_ylabel("NDVI RMSE", color="C3")
    axes[1].set_title("guidance sweep on the held-out columns (20 steps)", fontsize="medium")
    save(fig, "pgs_guidance.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    torch.set_num_threads(parser.parse_args().threads)
    scene = jasper_ridge()
    truth = held_out(scene)
    mask = scene_mask(truth)
    pixels = endmember_pixels(truth)
    quicklooks(scene)
    srf_library(scene, pixels, truth)
    results = repairs(truth, mask)
    diffusion = results["AnyBand-Diff"]
    spectra_figure(truth, mask, diffusion, pixels)
    named = {k: (v["reflectance"] if isinstance(v, xr.Dataset) else v) for k, v in results.items()}
    save(plot.error_maps(named, truth, mask=mask, ncols=4), "error_maps.png")
    fig = named["AnyBand-Diff"].anyband.plot.indices(["NDVI", "NDWI"], reference=truth, labels=("AnyBand-Diff", "truth"))
    save(fig, "index_maps.png")
    pgs_figure(truth, mask)


if __name__ == "__main__":
    main()
