"""Report of a quality run: per-protocol Markdown tables (mean ± std over seeds) with the paper's reported numbers
beside them, a headline table of the model against the best baseline, and the raw rows as JSON."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from anyband_xr.evaluation import reported
from anyband_xr.evaluation.markdown import mean_std, number, table
from anyband_xr.evaluation.quality import BAND_LOSS, DROPOUT, GAP, GENERATION, MODEL, MODEL_NO_PGS

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
NOT_RUN = {
    "AnyBand-Diff w/o MCD conditioning": "not run: needs a separately trained model without masked conditioning",
    "AnyBand-Diff w/o MSPL": "not run: needs a separately trained model without the multi-scale physical loss",
}
NOT_RUN_REASON = "(one training run of the default model takes this machine's whole CPU budget)"
#: The paper's Table 4 rows and our labels for them.
GENERATION_REPORTED = {
    "Full Model": MODEL, "Without PGS": MODEL_NO_PGS, "Without MCD": "AnyBand-Diff w/o MCD conditioning",
    "Without MSPL": "AnyBand-Diff w/o MSPL",
}
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


def _extra_rows(protocol: str, condition: str, columns) -> list[list[str]]:
    """The paper's rows for this condition (marked reported) beside ours."""
    if protocol == BAND_LOSS:
        fraction = float(condition.rstrip("%")) / 100
        values = reported.BAND_LOSS.get(round(fraction, 2))
        return [[condition, f"*{reported.LABEL}*", *_reported_cells(values, columns)]] if values else []
    if protocol == GENERATION and condition in SUBSET_BANDS:
        out = []
        for paper_row, label in GENERATION_REPORTED.items():
            entry = reported.GENERATION[paper_row]
            values = {"psnr": entry["psnr"][SUBSET_BANDS[condition]], **{k: entry[k] for k in ("ssim", "rmse", "sam")}}
            out.append([condition, _reported_label(label), *_reported_cells(values, columns)])
        return out
    return []


def protocol_table(rows: Sequence[Row], scene: str, protocol: str) -> list[str]:
    """Markdown table of one protocol on one scene: every condition and method, then the paper's rows."""
    columns = GENERATION_COLUMNS if protocol == GENERATION else REPAIR_COLUMNS
    body, conditions = [], []
    for (s, p, condition, method), runs in group(rows).items():
        if s != scene or p != protocol:
            continue
        if condition not in conditions:
            if conditions:
                body += _extra_rows(protocol, conditions[-1], columns)
            conditions.append(condition)
        body.append([condition, method, *_cells(runs, columns)])
    if conditions:
        body += _extra_rows(protocol, conditions[-1], columns)
    if protocol == GENERATION:
        body += [["all", f"{name}: {why} {NOT_RUN_REASON}", *["—"] * len(columns)] for name, why in NOT_RUN.items()]
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


def _best(groups, scene: str, protocol: str, condition: str, key: str) -> tuple[str, float] | None:
    """The baseline with the lowest mean ``key`` on this condition."""
    candidates = []
    for (s, p, c, method), runs in groups.items():
        if (s, p, c) == (scene, protocol, condition) and not method.startswith(MODEL):
            candidates.append((sum(float(r[key]) for r in runs) / len(runs), method))
    return min(candidates)[::-1] if candidates else None


def headline_rows(rows: Sequence[Row]) -> list[list[str]]:
    """Per scene, protocol and condition: the best baseline (lowest RMSE on the missing values) against the model."""
    groups = group(rows)
    out = []
    for scene, protocol, condition in dict.fromkeys((s, p, c) for s, p, c, _ in groups):
        key = "rmse" if protocol == GENERATION else "rmse_missing"
        best = _best(groups, scene, protocol, condition, key)
        model = groups.get((scene, protocol, condition, MODEL))
        no_pgs = groups.get((scene, protocol, condition, MODEL_NO_PGS))
        if best is None or model is None:
            continue
        baseline_runs = groups[(scene, protocol, condition, best[0])]
        mean_model = sum(float(r[key]) for r in model) / len(model)
        psnr_key = "psnr" if protocol == GENERATION else "psnr_missing"
        gain = [float(m[psnr_key]) - float(b[psnr_key]) for m, b in zip(model, baseline_runs)]
        verdict = "model better" if mean_model < best[1] else "baseline better"
        out.append([
            scene, protocol, condition, best[0], mean_std([float(r[key]) for r in baseline_runs], 4),
            mean_std([float(r[key]) for r in model], 4),
            mean_std([float(r[key]) for r in no_pgs], 4) if no_pgs else "n/a", mean_std(gain, 2), verdict,
        ])
    return out


def headline_table(rows: Sequence[Row]) -> list[str]:
    """Markdown headline table (RMSE over the missing values; over everything for generation)."""
    header = ["scene", "protocol", "condition", "best baseline", "its RMSE", f"{MODEL} RMSE", f"{MODEL_NO_PGS} RMSE",
              "PSNR gain of the model (dB)", "verdict"]
    return table(header, headline_rows(rows))
