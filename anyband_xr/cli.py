"""The ``anyband`` command line: ``repair`` (a tiled Zarr batch job), ``demo``, ``train`` and ``benchmark``.

An error is one line on stderr, ``anyband: error: ...``, with exit code 2 when the command rejects its input before
any work starts (``repair`` checks the input store, variable, mask, settings, device and output store before a
cluster starts or a store is created) and 1 when the run itself fails; ``--debug`` (anywhere on the line) also
prints the traceback. Heavy modules (torch, dask-distributed, the benchmark harness) are imported only by the
command that runs, so ``anyband --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from anyband_xr import __version__
from anyband_xr.settings import DEFAULT_OPERATORS, GRAD_MODES, METHODS, OPERATOR_NAMES

#: Errors that mean the command's input is unusable (exit code 2); anything else is a failure of the run (1).
BAD_INPUT = (ValueError, TypeError, LookupError, FileNotFoundError, FileExistsError, PermissionError)


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
        std=args.std, device=args.device, tile=args.tile, overlap=args.overlap, operators=args.operators, grad=args.grad,
        eta=args.eta, weights=args.weights, region=args.region, scheduler=args.scheduler, workers=args.workers,
        resume=args.resume,
    )
    print(f"anyband repair: {summary}")
    if args.method == "auto" or args.report or args.report_plot:
        _report(args.output, args.report_plot)


def _report(output: str, plot_path: str | None) -> None:
    """Print the self-check's validation table of a repaired store; draw its held-out error to ``plot_path``."""
    import xarray as xr

    from anyband_xr import selfcheck

    repaired = xr.open_zarr(output, consolidated=False)
    table = selfcheck.report(repaired.attrs)
    print(table or "anyband repair: no self-check in this job (it runs with --method auto, the default).")
    if plot_path and "anyband_selfcheck_band_nm" in repaired.attrs:
        from anyband_xr import plot

        plot.heldout_error(repaired).figure.savefig(plot_path, dpi=120)
        print(f"anyband repair: held-out error plot written to {plot_path}")
    elif plot_path:
        print("anyband repair: no held-out error to plot (no self-check ran in this job).")


def _benchmark(args: argparse.Namespace) -> None:
    from anyband_xr.evaluation.commands import build_parser as benchmark_parser

    chosen = benchmark_parser("anyband benchmark").parse_args(args.rest)
    chosen.func(chosen)


def _add_repair(sub: argparse._SubParsersAction) -> None:
    repair = sub.add_parser("repair", help="repair a Zarr scene tile by tile on dask (resumable batch job)")
    repair.add_argument("input", help="input Zarr store")
    repair.add_argument("output", help="output Zarr v3 store (created; see --resume)")
    repair.add_argument("--variable", help="spectral variable of the input store (when it holds several)")
    missing = repair.add_mutually_exclusive_group(required=True)
    missing.add_argument("--mask", help="Zarr store holding one boolean mask variable, True = missing")
    missing.add_argument("--mask-var", help="boolean mask variable (True = missing) of the input store")
    missing.add_argument("--nan-is-missing", action="store_true", help="only NaN values are missing")
    repair.add_argument("--method", default="auto", choices=METHODS,
                        help="auto (default): a self-check on observed values hidden like the mask picks the best of "
                        "diffusion, pchip, linear, lowrank and gaussian, and prints its validation table; or one of "
                        "them by name")
    repair.add_argument("--guidance", type=float, default=1.0, help="PGS scale (0 disables physics guidance)")
    repair.add_argument("--steps", type=int, help="DDIM steps (default: those validated for the weights)")
    repair.add_argument("--samples", type=int, default=1,
                        help="posterior samples (diffusion); > 1 also writes a per-value std: calibrated by the "
                        "self-check with auto or a classical method, else their spread")
    repair.add_argument("--std", action="store_true",
                        help="write the per-value std also with one sample (auto or a classical method: calibrated)")
    repair.add_argument("--seed", type=int, default=0)
    repair.add_argument("--operators", nargs="*", choices=OPERATOR_NAMES, metavar="NAME",
                        help=f"PGS operators among {', '.join(OPERATOR_NAMES)} (default: "
                        f"{' '.join(DEFAULT_OPERATORS)}); the flag alone uses none")
    repair.add_argument("--grad", default="x0", choices=GRAD_MODES,
                        help="guidance gradient through the x0 estimate (cheap) or the full network")
    repair.add_argument("--eta", type=float, default=0.0, help="DDIM noise in [0, 1] (0: deterministic)")
    repair.add_argument("--weights", help="stem or path of MCD weights (default: the shipped model)")
    repair.add_argument("--tile", type=int, default=256, help="diffusion tile side (pixels)")
    repair.add_argument("--overlap", type=int, default=32, help="tile overlap and halo read around a region (pixels)")
    repair.add_argument("--region", type=int, help="write region / output chunk side (pixels; default tile - 2 overlap)")
    cluster = repair.add_mutually_exclusive_group()
    cluster.add_argument("--scheduler", help="address of a running dask scheduler (default: a LocalCluster)")
    cluster.add_argument("--workers", type=int, help="LocalCluster worker processes (default: one per core)")
    repair.add_argument("--device", help="torch device of the workers, e.g. cuda (default: CUDA when available)")
    repair.add_argument("--resume", action="store_true", help="continue a stopped job: repair only missing tiles")
    repair.add_argument("--report", action="store_true",
                        help="print the self-check's validation table (always with --method auto, the default)")
    repair.add_argument("--report-plot", metavar="PATH",
                        help="also draw the held-out error of every candidate against wavelength to PATH (PNG)")
    repair.set_defaults(func=_repair)


def build_parser() -> argparse.ArgumentParser:
    """Argument parser with one sub-command per job (``benchmark`` parses its own options when it runs)."""
    parser = argparse.ArgumentParser(prog="anyband", description="Repair missing spectral bands with AnyBand-Diff.")
    parser.add_argument("--version", action="version", version=f"anyband {__version__}")
    parser.add_argument("--debug", action="store_true", help="on an error, also print the traceback")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="repair dropped bands of the bundled real scene and print the scores")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--steps", type=int, help="DDIM steps (default: those validated for the weights)")
    demo.add_argument("--guidance", type=float, default=1.0, help="PGS scale")
    demo.set_defaults(func=_demo)
    train = sub.add_parser("train", help="train the MCD model from a JSON config")
    train.add_argument("config", help="path to a training config (see configs/default.json)")
    train.set_defaults(func=_train)
    _add_repair(sub)
    bench = sub.add_parser("benchmark", add_help=False, help="quality and speed benchmarks, written to Markdown "
                           "tables (anyband benchmark --help)")
    bench.set_defaults(func=_benchmark)
    return parser


def _one_line(err: BaseException) -> str:
    message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    return " ".join(str(message).split()) or type(err).__name__


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``anyband``; exits with 2 for input rejected up front, 1 for a failed run."""
    words = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in words
    words = [word for word in words if word != "--debug"]
    parser = build_parser()
    args, rest = parser.parse_known_args(words)
    if args.command == "benchmark":
        args.rest = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("anyband: interrupted (a repair job continues with --resume)", file=sys.stderr)
        sys.exit(130)
    except Exception as err:
        if debug:
            traceback.print_exc()
        code = 2 if isinstance(err, BAD_INPUT) else 1
        hint = "" if code == 2 or debug else " (run again with --debug for the traceback)"
        print(f"anyband: error: {_one_line(err)}{hint}", file=sys.stderr)
        sys.exit(code)


if __name__ == "__main__":
    main()
