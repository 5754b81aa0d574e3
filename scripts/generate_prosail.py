"""Generate the PROSAIL (PROSPECT-D + 4SAIL) training set of the RTM emulator and cache it as Zarr v3.

Design: a scrambled Latin hypercube (``scipy.stats.qmc.LatinHypercube``) over the parameter ranges in
``PARAMETERS`` (uniform in physical units). Each 1-nm PROSAIL spectrum (400-2500 nm, directional reflectance
factor) is convolved with Gaussian SRFs (FWHM 10 nm) centred on ``anyband_xr.grid.CANONICAL_NM``.

Output store (never committed): ``reflectance`` (n, 211) float32, ``parameters`` (n, p) float64 in physical
units, ``done`` (n_chunks,) bool; attributes hold parameter names, units, ranges and the seed. A rerun with the
same arguments resumes: finished chunks are skipped.

Needs the GPL-3 ``prosail`` package (the ``prosail`` and ``test`` extras); the core package never imports it.

    python scripts/generate_prosail.py --n 100000 --out ~/.cache/anyband_xr/prosail.zarr --workers 1
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import zarr
from scipy.stats import qmc

from anyband_xr.grid import CANONICAL_NM

#: name, unit, low, high (uniform Latin hypercube ranges; Jacquemoud et al. 2009, Berger et al. 2018).
PARAMETERS: tuple[tuple[str, str, float, float], ...] = (
    ("n", "leaf structure (layers)", 1.0, 2.5),
    ("cab", "ug/cm2 chlorophyll a+b", 10.0, 80.0),
    ("car", "ug/cm2 carotenoids", 2.0, 20.0),
    ("ant", "ug/cm2 anthocyanins", 0.0, 5.0),
    ("cbrown", "brown pigment fraction", 0.0, 1.0),
    ("cw", "cm equivalent water thickness", 0.002, 0.05),
    ("cm", "g/cm2 dry matter", 0.002, 0.02),
    ("lai", "m2/m2 leaf area index", 0.1, 7.0),
    ("ala", "deg average leaf angle (ellipsoidal)", 30.0, 80.0),
    ("hspot", "hot-spot size ratio", 0.01, 0.5),
    ("rsoil", "soil brightness factor", 0.5, 1.5),
    ("psoil", "soil dryness (0 wet, 1 dry)", 0.0, 1.0),
    ("tts", "deg solar zenith", 20.0, 60.0),
    ("tto", "deg view zenith", 0.0, 10.0),
    ("psi", "deg relative azimuth", 0.0, 180.0),
)
PROSAIL_NM = np.arange(400.0, 2501.0)
FWHM_NM = 10.0
CHUNK = 5000


def canonical_weights(fwhm_nm: float = FWHM_NM) -> np.ndarray:
    """(211, 2101) Gaussian SRF weights from PROSAIL's 1-nm grid to the canonical grid, rows summing to 1."""
    sigma = fwhm_nm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    w = np.exp(-0.5 * ((CANONICAL_NM[:, None] - PROSAIL_NM[None, :]) / sigma) ** 2)
    return w / w.sum(axis=1, keepdims=True)


def latin_hypercube(n: int, seed: int) -> np.ndarray:
    """(n, p) parameter samples in physical units from a scrambled Latin hypercube."""
    unit = qmc.LatinHypercube(d=len(PARAMETERS), seed=seed).random(n)
    low = np.array([p[2] for p in PARAMETERS])
    high = np.array([p[3] for p in PARAMETERS])
    return qmc.scale(unit, low, high)


def simulate(params: np.ndarray) -> np.ndarray:
    """(m, p) physical parameters -> (m, 211) canonical-grid reflectance factors (one PROSAIL call each)."""
    import prosail

    weights = canonical_weights()
    out = np.empty((len(params), weights.shape[0]), dtype=np.float32)
    for i, row in enumerate(params):
        p = dict(zip((q[0] for q in PARAMETERS), row))
        rho = prosail.run_prosail(
            n=p["n"], cab=p["cab"], car=p["car"], cbrown=p["cbrown"], cw=p["cw"], cm=p["cm"], lai=p["lai"],
            lidfa=p["ala"], hspot=p["hspot"], tts=p["tts"], tto=p["tto"], psi=p["psi"], ant=p["ant"],
            prospect_version="D", typelidf=2, rsoil=p["rsoil"], psoil=p["psoil"], factor="SDR",
        )
        out[i] = weights @ rho
    return out


def open_store(out: Path, n: int, seed: int) -> zarr.Group:
    """Open (or create) the output group for ``n`` samples drawn with ``seed``."""
    if (out / "zarr.json").exists():
        group = zarr.open_group(out, mode="r+")
        if group.attrs["n"] != n or group.attrs["seed"] != seed:
            raise SystemExit(f"{out} holds n={group.attrs['n']} seed={group.attrs['seed']}; use another --out")
        return group
    group = zarr.open_group(out, mode="w", zarr_format=3)
    n_chunks = -(-n // CHUNK)
    group.create_array("reflectance", shape=(n, len(CANONICAL_NM)), chunks=(CHUNK, len(CANONICAL_NM)), dtype="f4")
    group.create_array("parameters", shape=(n, len(PARAMETERS)), chunks=(CHUNK, len(PARAMETERS)), dtype="f8")
    group.create_array("wavelength", shape=(len(CANONICAL_NM),), dtype="f8")[:] = CANONICAL_NM
    group.create_array("done", shape=(n_chunks,), dtype="bool", fill_value=False)
    group["parameters"][:] = latin_hypercube(n, seed)
    group.attrs.update(
        n=n, seed=seed, design="scipy.stats.qmc.LatinHypercube, uniform in physical units",
        names=[p[0] for p in PARAMETERS], units=[p[1] for p in PARAMETERS],
        low=[p[2] for p in PARAMETERS], high=[p[3] for p in PARAMETERS],
        model="prosail.run_prosail PROSPECT-D + 4SAIL, SDR, ellipsoidal LIDF, alpha 40 deg",
        resampling=f"Gaussian SRF FWHM {FWHM_NM} nm from 1 nm onto anyband_xr.grid.CANONICAL_NM",
    )
    return group


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="number of spectra")
    parser.add_argument("--out", type=Path, default=Path.home() / ".cache/anyband_xr/prosail.zarr")
    parser.add_argument("--workers", type=int, default=1, help="processes running PROSAIL")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    group = open_store(args.out, args.n, args.seed)
    todo = [i for i, finished in enumerate(group["done"][:]) if not finished]
    params = group["parameters"]
    start, finished = time.perf_counter(), 0
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        slices = [slice(i * CHUNK, min((i + 1) * CHUNK, args.n)) for i in todo]
        for i, sl, spectra in zip(todo, slices, pool.map(simulate, (params[sl] for sl in slices))):
            group["reflectance"][sl] = spectra
            group["done"][i] = True
            finished += sl.stop - sl.start
            rate = (time.perf_counter() - start) / finished
            print(f"chunk {i + 1}/{group['done'].shape[0]}: {1e3 * rate:.2f} ms/spectrum", flush=True)
    print(f"{args.n} spectra in {args.out} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
