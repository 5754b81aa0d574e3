"""Benchmark: loading a multi-band (hyperspectral) COG through ``anyband_xr.stac.load`` vs odc-stac band by band.

    python benchmarks/bench_stac.py [--tiles 2] [--blocksize 256] [--folder /tmp/anyband_bench_stac]

The scene is the bundled Jasper Ridge cube (198 bands, int16 DN) tiled ``tiles`` x ``tiles`` times and written as
one pixel-interleaved COG (GDAL's default layout, as EnMAP/EMIT-style single-COG cubes come) with one STAC item.
Jobs: a plain rasterio read of the whole file (the reference), ``anyband_xr.stac.load(...).compute()`` (one read
per asset and chunk) and odc-stac loading ``reflectance.1`` ... ``reflectance.198`` as separate bands (what
``anyband_xr.stac`` did before: one open and one whole-block decompression per band and chunk). Times are
ratios against the reference in the same run, because these machines are shared and noisy. Writes
benchmarks/results/stac.md and .json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def build(folder: Path, tiles: int, blocksize: int) -> dict:
    """Write the tiled scene as one COG and return its STAC item (dict)."""
    from anyband_xr.testing.stac_api import hyperspectral_item, jasper_dn

    folder.mkdir(parents=True, exist_ok=True)
    dn, wl_nm = jasper_dn()
    return hyperspectral_item(folder / f"jasper_{tiles}x{tiles}.tif", np.tile(dn, (1, tiles, tiles)), wl_nm, blocksize)


def timed(job: str, item_dict: dict) -> float:
    """Seconds for one job."""
    import odc.stac
    import pystac
    import rasterio

    from anyband_xr import stac

    item = pystac.Item.from_dict(item_dict)
    start = time.perf_counter()
    if job == "warm-up":  # first-call costs (GDAL, odc-stac, the SRF library) out of the timed jobs
        stac.load([item], bands=["B001"]).compute()
    elif job == "rasterio read (reference)":
        with rasterio.open(item.assets["reflectance"].href) as src:
            src.read()
    elif job == "anyband_xr.stac.load":
        stac.load([item]).compute()
    else:
        keys = [f"reflectance.{i + 1}" for i in range(len(item.assets["reflectance"].extra_fields["eo:bands"]))]
        odc.stac.load([item], bands=keys, chunks={"x": 2048, "y": 2048}).compute()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiles", type=int, default=2)
    parser.add_argument("--blocksize", type=int, default=256)
    parser.add_argument("--folder", default="/tmp/anyband_bench_stac")
    parser.add_argument("--out", default=str(RESULTS / "stac"))
    args = parser.parse_args()
    item = build(Path(args.folder), args.tiles, args.blocksize)
    jobs = ("rasterio read (reference)", "anyband_xr.stac.load", "odc-stac, one band at a time (before)")
    timed("warm-up", item)
    results = [{"job": job, "seconds": timed(job, item)} for job in jobs]
    for r in results:
        r["ratio_to_reference"] = r["seconds"] / results[0]["seconds"]
    side = 100 * args.tiles
    meta = {
        "scene": f"{side}x{side}x198 int16 pixel-interleaved COG, deflate, {args.blocksize} px blocks",
        "machine": f"{platform.processor() or platform.machine()}, {mp.cpu_count()} cores, {platform.python_version()}",
        "command": f"python benchmarks/bench_stac.py --tiles {args.tiles} --blocksize {args.blocksize}",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps({**meta, "results": results}, indent=2))
    lines = [f"# Multi-band COG load: {meta['scene']}", "",
             f"Machine: {meta['machine']}. Command: `{meta['command']}`.", "",
             "| job | seconds | ratio to reference |", "|---|---|---|"]
    lines += [f"| {r['job']} | {r['seconds']:.2f} | {r['ratio_to_reference']:.1f} |" for r in results]
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
