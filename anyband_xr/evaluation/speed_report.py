"""``anyband benchmark speed``: every performance figure in one run, as ratios against references of the same run.

Sections: sampling latency per tile for the default and the paper-size model with the physics-guidance (PGS)
overhead and its profile, spectral throughput against a plain read, and the tiled Zarr repair's throughput and peak
memory per worker. GPU figures are measured only when CUDA is available.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from anyband_xr.evaluation import reported, speed
from anyband_xr.evaluation.markdown import number, table
from anyband_xr.evaluation.throughput import build_scene, spectral_throughput
from anyband_xr.evaluation.tiled import tiled_run
from anyband_xr.model import MCDUNet, ModelConfig, count_parameters, load_model
from anyband_xr.model.weights import sampling_steps

#: DDIM steps of the paper's repair; latencies are given per tile at this count and at the shipped weights' default.
FULL_STEPS = 50
PGS_GOAL = 1.05


@dataclass(frozen=True)
class SpeedSettings:
    """What a speed run measures; sizes in pixels, ``steps`` are the DDIM steps timed (latency is per step x 50)."""

    tile: int = 256
    steps: int = 5
    repeats: int = 2
    paper: bool = True
    paper_steps: int = 1
    paper_repeats: int = 2
    spectral_size: int = 2048
    bands: int = 200
    tiled_size: int = 512
    tiled_methods: tuple[str, ...] = ("linear", "diffusion")
    tiled_steps: int = 1
    auto_repeats: int = 1
    workers: int = 2
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "anyband_bench")

    @property
    def overlap(self) -> int:
        """Tile overlap of the tiled run: the package default of 32 pixels, at most a quarter of the tile."""
        return min(32, self.tile // 4)


def _latency(name: str, sampler: speed.TileSampler, inputs: speed.TileInputs, steps: int, repeats: int) -> dict:
    """Latency record of one model on one device (see :func:`rows` for what is kept)."""
    times = speed.guidance_latencies(sampler, steps, repeats)
    parts = speed.fixed_costs(sampler, inputs)
    fixed = sum(seconds for _, seconds in parts)
    per_step = {mode: statistics.median(values) / steps for mode, values in times.items()}
    return {
        "model": name, "device": sampler.device.type, "parameters": count_parameters(sampler.model.config),
        "steps_timed": steps, "repeats": repeats, "seconds": times, "fixed_seconds": fixed, "fixed_parts": parts,
        "tile_seconds": {mode: fixed + FULL_STEPS * s for mode, s in per_step.items()},
        "default_steps": sampling_steps(),
        "default_tile_seconds": fixed + sampling_steps() * per_step["guided"],
        "step_seconds": per_step, "pgs_ratio": speed.overhead_ratio(times),
    }


def _paper_model() -> MCDUNet:
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    try:
        return MCDUNet(ModelConfig.paper()).eval().requires_grad_(False)
    finally:
        torch.random.set_rng_state(generator_state)


def _log(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} anyband benchmark speed: {line}", file=sys.stderr, flush=True)


def measure(settings: SpeedSettings, log: Callable[[str], None] = _log) -> dict:
    """Run every section of the speed benchmark, logging progress; a dict of plain values (see :func:`document`)."""
    results: dict = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()},
                     "overlap": settings.overlap}
    reference = [speed.reference_seconds()]
    inputs = speed.tile_inputs(settings.tile)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results["latency"] = []
    for device in devices:
        log(f"default model on {device}")
        default = speed.sampler_for(load_model(device=device), inputs, device)
        steps = settings.steps if device == "cpu" else FULL_STEPS
        results["latency"].append(_latency("default (shipped weights)", default, inputs, steps, settings.repeats))
        if device == "cpu":
            results["profile"] = speed.guidance_profile(default)
        if settings.paper:
            log(f"paper-size model on {device}")
            steps, repeats = (settings.paper_steps, settings.paper_repeats) if device == "cpu" else (FULL_STEPS, 3)
            paper = speed.sampler_for(_paper_model(), inputs, device)
            results["latency"].append(_latency("paper size (random weights)", paper, inputs, steps, repeats))
            del paper
    results["spectral"], results["tiled"] = [], []
    if settings.spectral_size > 0:
        store = Path(settings.workdir) / f"scene_{settings.spectral_size}x{settings.spectral_size}x{settings.bands}.zarr"
        log(f"simulate/index throughput on {store}")
        build_scene(store, settings.spectral_size, settings.bands)
        results["spectral"] = spectral_throughput(store)
    if settings.tiled_size > 0 and settings.tiled_methods:
        store = Path(settings.workdir) / f"scene_{settings.tiled_size}x{settings.tiled_size}x{settings.bands}.zarr"
        log(f"tiled repair of {store}")
        build_scene(store, settings.tiled_size, settings.bands)
        results["tiled"] = [
            tiled_run(store, Path(settings.workdir) / "repaired.zarr", method, settings.tiled_steps, settings.workers,
                      tile=settings.tile, overlap=settings.overlap).as_dict()
            for method in settings.tiled_methods
        ]
    if settings.auto_repeats > 0:
        log("self-check cost: repair(method='auto') against a plain diffusion repair")
        results["auto"] = speed.auto_overhead(settings.tile, settings.tiled_steps, settings.auto_repeats)
    reference.append(speed.reference_seconds())
    results["reference_seconds"] = reference
    results["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return results


def rows(results: dict) -> list[dict]:
    """Flat rows (section, item, quantity, value, unit) for the CSV and JSON files."""
    out = [{"section": "reference", "item": speed.REFERENCE, "quantity": f"seconds ({when})", "value": s, "unit": "s"}
           for when, s in zip(("start", "end"), results["reference_seconds"])]
    for lat in results["latency"]:
        item = f"{lat['model']} on {lat['device']}"
        for mode in ("unguided", "guided"):
            out.append({"section": "latency", "item": item, "quantity": f"tile seconds at {FULL_STEPS} steps, {mode}",
                        "value": lat["tile_seconds"][mode], "unit": "s"})
        out.append({"section": "latency", "item": item, "quantity": "PGS overhead ratio", "value": lat["pgs_ratio"],
                    "unit": "ratio"})
    out += [{"section": "profile", "item": name, "quantity": "seconds per guided step", "value": s, "unit": "s"}
            for name, s in results["profile"]]
    out += [{"section": "spectral", "item": r["job"], "quantity": "ratio to plain read", "value": r["ratio_to_read"],
             "unit": "ratio"} for r in results["spectral"]]
    out += [{"section": "tiled", "item": f"{r['method']} ({r['steps']} steps)", "quantity": "pixels per second",
             "value": r["pixels_per_second"], "unit": "pixel/s"} for r in results["tiled"]]
    out += [{"section": "self-check", "item": f"{r['mask']}: auto ({r['chosen']})",
             "quantity": "ratio to a plain diffusion repair", "value": r["ratio"], "unit": "ratio"}
            for r in results.get("auto") or []]
    return out


def _latency_table(results: dict, reference: float) -> list[str]:
    body = []
    for lat in results["latency"]:
        tile = lat["tile_seconds"]
        body.append([
            lat["model"], lat["device"], f"{lat['parameters'] / 1e6:.1f} M", f"{lat['steps_timed']} x {lat['repeats']}",
            number(lat["step_seconds"]["unguided"], 2), number(lat["step_seconds"]["guided"], 2),
            number(lat["fixed_seconds"], 2), number(tile["unguided"], 1), number(tile["guided"], 1),
            number(lat["default_tile_seconds"], 1), number(tile["guided"] / reference, 0),
            f"**{number(lat['pgs_ratio'], 3)}**",
        ])
    paper = reported.SPEED
    body.append([
        f"*AnyBand-Diff, {reported.MARK}*", f"*{reported.SPEED_HARDWARE}*", f"*{number(paper['params_m'], 0)} M*", "—",
        "—", "—", "—", number(paper["latency_ms_without_pgs"] / 1000, 2), number(paper["latency_ms_full"] / 1000, 2),
        "—", "—", number(paper["latency_ms_full"] / paper["latency_ms_without_pgs"], 3),
    ])
    header = ["model", "device", "parameters", "steps timed x repeats", "s / step", "s / step with PGS",
              "fixed s / tile", f"s / tile, {FULL_STEPS} steps", f"s / tile, {FULL_STEPS} steps, PGS",
              f"s / tile, default {sampling_steps()} steps, PGS", "PGS tile in reference units", "PGS overhead ratio"]
    return table(header, body)


def _pgs_verdict(results: dict) -> list[str]:
    lines = []
    for lat in results["latency"]:
        ratio = lat["pgs_ratio"]
        state = "meets" if ratio <= PGS_GOAL else "misses"
        lines.append(f"- {lat['model']} on {lat['device']}: guided / unguided = {number(ratio, 3)}, which {state} the "
                     f"goal of {PGS_GOAL} (cheap `grad=\"x0\"` mode).")
    if any(lat["pgs_ratio"] > PGS_GOAL for lat in results["latency"]):
        parts = dict(results["profile"])
        model, guidance = list(parts.values())[:2]
        operators = sorted(((s, name.strip()) for name, s in results["profile"][3:]), reverse=True)
        expected = [f"{lat['model']} on {lat['device']}: {number(1 + guidance / lat['step_seconds']['unguided'], 3)}"
                    for lat in results["latency"] if lat["device"] == "cpu"]
        lines += [
            "", "Expected from the profile below (1 + guidance time / unguided step time), free of the timing noise of "
            "few repeats: " + "; ".join(expected) + ".",
            "", f"Where the time goes: the guidance of one step costs {number(guidance * 1000, 0)} ms on this tile, "
            f"{number(guidance / model, 2)} of a default-model forward ({number(model * 1000, 0)} ms). It is a fixed "
            "cost per pixel and canonical band, independent of the model, so its share shrinks as the model grows "
            "(compare the paper-size row). Largest parts: "
            + "; ".join(f"{name} {number(s * 1000, 0)} ms" for s, name in operators[:2]) + ".",
        ]
    return lines


def _profile_table(results: dict) -> list[str]:
    profile = dict(results["profile"])
    model = next(iter(profile.values()))
    body = [[name, number(s * 1000, 0), number(s / model, 2)] for name, s in results["profile"]]
    fixed = results["latency"][0]["fixed_parts"]
    body += [[f"per tile, once: {name}", number(s * 1000, 0), number(s / model, 2)] for name, s in fixed]
    return table(["part (default model, CPU)", "ms", "ratio to the denoiser forward"], body)


def document(results: dict, meta: dict[str, str]) -> list[str]:
    """The whole ``speed.md`` page. ``meta``: ``command``, ``machine``, ``provenance``, ``wall``."""
    reference = statistics.median(results["reference_seconds"])
    settings = results["settings"]
    lines = [
        "# Speed benchmark",
        "",
        "Written by the command below; no number on this page is typed by hand. Raw values: `speed.csv`, `speed.json`.",
        "",
        f"- Command: `{meta['command']}`",
        f"- Machine: {meta['machine']}",
        f"- Run: {meta['provenance']}; wall time {meta['wall']}",
        f"- Reference workload ({speed.REFERENCE}), timed at the start and the end of the run: "
        + ", ".join(f"{s * 1000:.1f} ms" for s in results["reference_seconds"])
        + ". Times on a shared machine drift; compare ratios, not seconds, across machines.",
        "",
        f"## Sampling latency per {settings['tile']}x{settings['tile']} tile",
        "",
        f"The tile is the bundled real scene tiled out, with {speed.BAND_LOSS:.0%} of its bands missing. Each model is",
        "timed through the DDIM sampler on that tile's condition after one untimed warm-up step; guided and unguided",
        "runs alternate (ABBA order against drift); the ratio is of their medians. The latency at",
        f"{FULL_STEPS} steps (the paper's) is the per-step median x {FULL_STEPS} plus the fixed per-tile cost (conditioning",
        "and the map back to the band grid), measured separately, and likewise at the step count validated for the",
        "shipped weights (the API's default); on CPU fewer steps are timed to keep the run short. The",
        "paper-size model (`ModelConfig.paper()`) has random weights: its timing does not depend on them.",
        "",
        *_latency_table(results, reference),
        "",
        "### Physics-guided sampling overhead",
        "",
        *_pgs_verdict(results),
        "",
        "Where one guided step of the default model goes (median of repeated timings; each operator row includes the",
        "residual-to-spectrum map):",
        "",
        *_profile_table(results),
        "",
    ]
    if results["gpu"] is None:
        lines += ["GPU: skipped, no GPU on this machine (`torch.cuda.is_available()` is False). The same command times",
                  "both models on CUDA (50 steps, bf16 autocast as in the sampler) when one is present.", ""]
    return lines + _spectral_section(results) + _tiled_section(results) + auto_section(results)


def auto_section(results: dict) -> list[str]:
    """The page's section on what the self-check of ``method="auto"`` adds to a diffusion repair."""
    auto, settings = results.get("auto"), results["settings"]
    lines = ["", "## Self-check cost (`repair(method=\"auto\")`)", ""]
    if not auto:
        return lines + ["Skipped (`auto_repeats` 0)."]
    rows = []
    for case in auto:
        rows += [[case["mask"], "diffusion", number(case["diffusion_seconds"], 1), "1.00"],
                 [case["mask"], f"auto (chose {case['chosen'].split(':')[-1]})", number(case["auto_seconds"], 1),
                  f"**{case['ratio']:.2f}**"]]
    return lines + [
        f"The {settings['tile']}x{settings['tile']} tile above repaired in memory on the CPU, by a plain diffusion "
        f"repair and by `method=\"auto\"` ({settings['tiled_steps']} DDIM step(s) each; the self-check fills a "
        "64x64 window with every candidate, then the chosen method repairs the tile), under whole-band loss and "
        f"under per-value dropout of as many values; median of {settings['auto_repeats']} run(s) each in ABBA order "
        "after an untimed diffusion run. The issue's bound is 1.5. On dropout the check usually picks the in-scene "
        "low-rank completion; its fit on the whole tile, which a plain diffusion repair makes too (the base the "
        "model corrects there), dominates both costs.",
        "",
        *table(["mask", "method", "seconds", "ratio to diffusion"], rows),
    ]


def _spectral_section(results: dict) -> list[str]:
    """The page's section on ``simulate``/``index`` throughput against a plain read."""
    settings = results["settings"]
    size, bands = settings["spectral_size"], settings["bands"]
    body = [[r["job"], number(r["seconds"], 1), f"**{number(r['ratio_to_read'], 2)}**", number(r["peak_rss_mib"], 0)]
            for r in results["spectral"]]
    lines = [f"## Sensor simulation and spectral index on a {size}x{size}x{bands} Zarr scene", ""]
    return lines + ([
        f"Each job {results['spectral'][0]['runs']} times in alternating order, each run in a fresh process on the "
        "threaded dask scheduler (median seconds, largest peak RSS); `simulate` is Sentinel-2A, `index` is NDVI.",
        "",
        *table(["job", "median seconds", "ratio to plain read", "peak RSS (MiB)"], body),
    ] if body else ["Skipped (`--spectral-size 0`)."])


def _tiled_section(results: dict) -> list[str]:
    """The page's section on tiled Zarr repair throughput."""
    settings = results["settings"]
    size, bands = settings["tiled_size"], settings["bands"]
    body = [[r["method"], str(r["steps"]) if r["method"] == "diffusion" else "—", str(r["workers"]), str(r["tiles"]),
             number(r["seconds"], 1), f"**{number(r['pixels_per_second'], 0)}**",
             ", ".join(number(m, 0) for m in r["peak_rss_mib"])] for r in results["tiled"]]
    lines = ["", f"## Tiled Zarr repair of a {size}x{size}x{bands} scene (`anyband_xr.scale.repair_zarr`)", ""]
    return lines + ([
        f"A fresh LocalCluster per run ({settings['workers']} worker processes, one thread each), 30% of the bands",
        f"missing, tile {settings['tile']}, overlap {results['overlap']}. Diffusion runs {settings['tiled_steps']} DDIM "
        f"step(s) here (a default repair runs {sampling_steps()}, the paper's {FULL_STEPS}: scale the per-tile time "
        "accordingly). Area scaling and the",
        "2048x2048x200 scene: `benchmarks/bench_scale.py` (results in `benchmarks/results/scale.md`).",
        "",
        *table(["method", "steps", "workers", "tiles", "seconds", "pixels / s", "peak RSS per worker (MiB)"], body),
    ] if body else ["Skipped (`--tiled-size 0`)."])
