"""The paper's own numbers (arXiv 2605.14341), shown beside ours and marked as reported, never as reproduced."""

from __future__ import annotations

#: Mark of every reported row: the paper evaluates on Pavia University / Washington DC Mall, not on our scenes.
MARK = "reported (PaviaU/WDC), not reproduced"
LABEL = f"AnyBand-Diff, {MARK}"

#: Table 2, "AnyBand-Diff (Ours)": random whole-band masking, keyed by the masked fraction.
BAND_LOSS: dict[float, dict[str, float]] = {
    0.1: {"psnr": 34.22, "ssim": 0.93, "rmse": 0.028},
    0.3: {"psnr": 32.19, "ssim": 0.89, "rmse": 0.030},
    0.5: {"psnr": 29.65, "ssim": 0.84, "rmse": 0.051},
}

#: Table 3, "AnyBand-Diff": NDVI / NDWI correlation coefficient and RMSE against the ground truth's index maps.
INDICES: dict[str, dict[str, float]] = {
    "NDVI": {"cc": 0.94, "rmse": 0.015},
    "NDWI": {"cc": 0.92, "rmse": 0.022},
}

#: Table 4 (ablation, arbitrary multiband generation): PSNR per number of input bands; SSIM, RMSE, SAM once per row.
GENERATION: dict[str, dict[str, object]] = {
    "Without Any Modules": {"psnr": {3: 28.75, 5: 30.11, 7: 31.01}, "ssim": 0.82, "rmse": 0.050, "sam": 0.038},
    "Without MCD and PGS": {"psnr": {3: 30.12, 5: 31.85, 7: 32.45}, "ssim": 0.86, "rmse": 0.043, "sam": 0.035},
    "Full Model": {"psnr": {3: 34.25, 5: 35.42, 7: 36.01}, "ssim": 0.93, "rmse": 0.028, "sam": 0.025},
    "Without MCD": {"psnr": {3: 33.18, 5: 34.01, 7: 34.89}, "ssim": 0.91, "rmse": 0.032, "sam": 0.029},
    "Without PGS": {"psnr": {3: 32.10, 5: 33.48, 7: 34.15}, "ssim": 0.89, "rmse": 0.036, "sam": 0.031},
    "Without MSPL": {"psnr": {3: 31.45, 5: 32.70, 7: 33.80}, "ssim": 0.88, "rmse": 0.039, "sam": 0.033},
}

#: Table 5: 256x256 input, one NVIDIA A100, FP16, DDIM with 50 steps.
SPEED: dict[str, float] = {
    "params_m": 278.0,
    "latency_ms_full": 1420.0,
    "latency_ms_without_pgs": 1350.0,
}
SPEED_HARDWARE = "one NVIDIA A100 GPU, FP16, 50 DDIM steps, 256x256 input"
