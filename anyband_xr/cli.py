"""The ``anyband`` command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from anyband_xr.evaluation.commands import add_benchmark_parser


def _demo(args: argparse.Namespace) -> None:
    from anyband_xr import demo

    demo.run(seed=args.seed, steps=args.steps, guidance=args.guidance)


def _train(args: argparse.Namespace) -> None:
    from anyband_xr.training.train import train

    train(args.config)


def _repair(args: argparse.Namespace) -> None:
    from anyband_xr.scale import repair_zarr

    summary = repair_zarr(
        args.input, args.output, variable=args.variable, mask=args.mask, mask_variable=args.mask_var,
        guidance=args.guidance, steps=args.steps, samples=args.samples, seed=args.seed, method=args.method,
        device=args.device, tile=args.tile, overlap=args.overlap, region=args.region, scheduler=args.scheduler,
        workers=args.workers, resume=args.resume,
    )
    print(f"anyband repair: {summary}")


def build_parser() -> argparse.ArgumentParser:
    """Argument parser with one sub-command per job."""
    parser = argparse.ArgumentParser(prog="anyband", description="Repair missing spectral bands with AnyBand-Diff.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="repair dropped bands of the bundled real scene and print the scores")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--steps", type=int, help="DDIM steps (default: those validated for the weights)")
    demo.add_argument("--guidance", type=float, default=1.0, help="PGS scale")
    demo.set_defaults(func=_demo)
    train = sub.add_parser("train", help="train the MCD model from a JSON config")
    train.add_argument("config", help="path to a training config (see configs/default.json)")
    train.set_defaults(func=_train)
    repair = sub.add_parser("repair", help="repair a Zarr scene tile by tile on dask (resumable batch job)")
    repair.add_argument("input", help="input Zarr store")
    repair.add_argument("output", help="output Zarr v3 store (created; see --resume)")
    repair.add_argument("--variable", help="spectral variable of the input store (when it holds several)")
    missing = repair.add_mutually_exclusive_group(required=True)
    missing.add_argument("--mask", help="Zarr store holding one boolean mask variable, True = missing")
    missing.add_argument("--mask-var", help="boolean mask variable (True = missing) of the input store")
    missing.add_argument("--nan-is-missing", action="store_true", help="only NaN values are missing")
    repair.add_argument("--guidance", type=float, default=1.0, help="PGS scale")
    repair.add_argument("--steps", type=int, help="DDIM steps (default: those validated for the weights)")
    repair.add_argument("--samples", type=int, default=1, help="posterior samples; > 1 also writes their std")
    repair.add_argument("--seed", type=int, default=0)
    repair.add_argument("--method", default="diffusion", choices=["diffusion", "linear", "pchip", "gaussian"])
    repair.add_argument("--tile", type=int, default=256, help="diffusion tile side (pixels)")
    repair.add_argument("--overlap", type=int, default=32, help="tile overlap and halo read around a region (pixels)")
    repair.add_argument("--region", type=int, help="write region / output chunk side (pixels; default tile - 2 overlap)")
    cluster = repair.add_mutually_exclusive_group()
    cluster.add_argument("--scheduler", help="address of a running dask scheduler (default: a LocalCluster)")
    cluster.add_argument("--workers", type=int, help="LocalCluster worker processes (default: one per core)")
    repair.add_argument("--device", help="torch device of the workers, e.g. cuda (default: CUDA when available)")
    repair.add_argument("--resume", action="store_true", help="continue a stopped job: repair only missing tiles")
    repair.set_defaults(func=_repair)
    add_benchmark_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``anyband``."""
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
