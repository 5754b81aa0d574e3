"""Train the PROSAIL emulator (``anyband_xr.physics.rtm``) on a store from ``scripts/generate_prosail.py``.

Stage 1 fits the decoder P -> reflectance (the forward emulator). Stage 2 fits the encoder reflectance -> P on
noisy, randomly masked spectra (full range, VNIR-only, sub-ranges, water-vapour gaps, sparse bands): both heads
with the parameter loss, the ``encode`` head also with the reconstruction loss through the frozen decoder (the
PROSAIL-regularised autoencoder of A.1). A seeded 10% of the store is held out; its scores and the training time
go to the JSON config and to the marked block of ``docs/rtm.md``.

    python scripts/train_rtm.py --data ~/.cache/anyband_xr/prosail.zarr
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import zarr
from safetensors.torch import save_file

from anyband_xr.grid import CANONICAL_NM
from anyband_xr.physics.rtm import CONFIG_FILE, WEIGHTS_FILE, RTMEmulator

ROOT = Path(__file__).resolve().parents[1]
NM = torch.as_tensor(CANONICAL_NM, dtype=torch.float32)
WATER_VAPOUR_NM = ((1340.0, 1460.0), (1790.0, 1970.0))
NOISE = 0.001  # reflectance, additive Gaussian on encoder inputs
#: coverage kinds of ``random_valid``: full, sub-range, VNIR-only, water-vapour gaps, sparse bands.
COVERAGE_P = (0.4, 0.15, 0.15, 0.15, 0.15)
#: parameter-loss weight of the retrieval targets (LAI, Cab); 1 for the others.
TARGET_WEIGHT = {"lai": 3.0, "cab": 3.0}
#: ``docs/rtm.md`` lines between these markers are rewritten with the held-out scores.
SCORES_BEGIN, SCORES_END = "<!-- scores: written by scripts/train_rtm.py -->", "<!-- end of scores -->"


def random_valid(n: int, gen: torch.Generator) -> torch.Tensor:
    """(n, 211) bool coverage masks: full, sub-range, VNIR-only, water-vapour gaps or sparse bands (``COVERAGE_P``)."""
    u = torch.rand(n, 4, generator=gen)
    kind = torch.multinomial(torch.tensor(COVERAGE_P), n, replacement=True, generator=gen)
    lo = torch.where(kind == 2, 400 + 100 * u[:, 0], 400 + 600 * u[:, 0])
    hi = torch.where(kind == 2, 700 + 350 * u[:, 1], torch.maximum(lo + 300, 900 + 1600 * u[:, 1]))
    in_range = (NM >= lo[:, None]) & (NM <= hi[:, None])
    gaps = torch.zeros_like(in_range)
    for a, b in WATER_VAPOUR_NM:
        gaps |= (NM >= a) & (NM <= b)
    gaps |= (NM > 2400) & (u[:, 2:3] < 0.5)
    sparse = torch.rand(n, len(NM), generator=gen) < (0.05 + 0.5 * u[:, 3:4])
    sparse[:, 0] |= sparse.sum(dim=1) < 3
    valid = torch.ones_like(in_range)
    valid = torch.where((kind == 1)[:, None] | (kind == 2)[:, None], in_range, valid)
    valid = torch.where((kind == 3)[:, None], ~gaps, valid)
    return torch.where((kind == 4)[:, None], sparse, valid)


def batches(n: int, size: int, gen: torch.Generator):
    """Shuffled index batches covering ``range(n)``."""
    yield from torch.randperm(n, generator=gen).split(size)


def fit(params, loss_fn, n: int, epochs: int, lr: float, batch: int, gen: torch.Generator, label: str) -> None:
    """AdamW with a one-cycle schedule over ``epochs`` passes of ``loss_fn(index_batch)``."""
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=1e-5)
    steps = epochs * -(-n // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps, pct_start=0.1)
    for epoch in range(epochs):
        start, total, count = time.perf_counter(), 0.0, 0
        for idx in batches(n, batch, gen):
            loss = loss_fn(idx)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total, count = total + loss.item(), count + 1
        print(f"{label} epoch {epoch + 1}/{epochs}: loss {total / count:.5f} ({time.perf_counter() - start:.0f} s)",
              flush=True)


def r2(pred: np.ndarray, true: np.ndarray) -> float:
    """Coefficient of determination of ``pred`` against ``true``."""
    return float(1.0 - ((pred - true) ** 2).sum() / ((true - true.mean()) ** 2).sum())


@torch.no_grad()
def evaluate(model: RTMEmulator, x: torch.Tensor, p: torch.Tensor) -> dict:
    """Held-out scores: decoder and autoencoder RMSE (reflectance), encoder R^2 per parameter (physical units).

    ``encoder_r2`` scores the retrieval head on the clean full-range spectra, ``encoder_r2_vnir_only`` on their VNIR
    part only (400-1000 nm), ``encode_head_r2`` the ``encode`` head (the parameters behind D(E(x))), full range.
    """
    phys_true = model.to_physical(p).numpy()
    vnir = NM <= 1000
    scores = {
        "n_heldout": len(x),
        "decoder_rmse": float(((model.decode(p) - x) ** 2).mean().sqrt()),
        "autoencoder_rmse": float(((model.decode(model.encode(x)) - x) ** 2).mean().sqrt()),
        "autoencoder_rmse_vnir_only": float(((model.decode(model.encode(x, vnir)) - x)[:, vnir] ** 2).mean().sqrt()),
    }
    for key, head, valid in (("encoder_r2", model.retrieve, None), ("encoder_r2_vnir_only", model.retrieve, vnir),
                             ("encode_head_r2", model.encode, None)):
        phys_pred = model.to_physical(head(x, valid)).numpy()
        scores[key] = {name: r2(phys_pred[:, i], phys_true[:, i]) for i, name in enumerate(model.parameter_names)}
    return scores


def scores_markdown(scores: dict, training: dict) -> str:
    """Markdown table of the held-out scores and the training time."""
    lines = [
        f"Held-out PROSAIL spectra: {scores['n_heldout']} of {training['n_spectra']} (canonical grid, reflectance "
        f"units). Training: {training['seconds']['decoder']} s decoder ({training['epochs_decoder']} epochs) + "
        f"{training['seconds']['encoder']} s encoder ({training['epochs_encoder']} epochs), "
        f"{training['torch_threads']} CPU thread.",
        "",
        "| score | value |",
        "|---|---|",
        f"| decoder RMSE, D(P) vs PROSAIL | {scores['decoder_rmse']:.4f} |",
        f"| autoencoder RMSE, D(E(x)) vs x | {scores['autoencoder_rmse']:.4f} |",
        f"| autoencoder RMSE, VNIR-only input (400-1000 nm) | {scores['autoencoder_rmse_vnir_only']:.4f} |",
        "",
        "| parameter | R², `retrieve`, full range | R², `retrieve`, VNIR only | R², `encode`, full range |",
        "|---|---|---|---|",
    ]
    full, vnir, encode = scores["encoder_r2"], scores["encoder_r2_vnir_only"], scores["encode_head_r2"]
    lines += [f"| `{name}` | {full[name]:.3f} | {vnir[name]:.3f} | {encode[name]:.3f} |" for name in full]
    return "\n".join(lines)


def write_scores(markdown: str, path: Path) -> None:
    """Replace the lines between ``SCORES_BEGIN`` and ``SCORES_END`` of ``path`` with ``markdown``."""
    text = path.read_text()
    if SCORES_BEGIN not in text or SCORES_END not in text:
        raise SystemExit(f"{path}: add the lines {SCORES_BEGIN!r} and {SCORES_END!r} where the scores go")
    head, rest = text.split(SCORES_BEGIN, 1)
    _, tail = rest.split(SCORES_END, 1)
    path.write_text(f"{head}{SCORES_BEGIN}\n{markdown}\n{SCORES_END}{tail}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path.home() / ".cache/anyband_xr/prosail.zarr")
    parser.add_argument("--epochs-decoder", type=int, default=40)
    parser.add_argument("--epochs-encoder", type=int, default=40)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "anyband_xr" / "data")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "rtm.md", help="page whose score block is rewritten")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    store = zarr.open_group(args.data, mode="r")
    attrs = dict(store.attrs)
    done = store["done"][:]
    if not done.all():
        raise SystemExit(f"{args.data}: {int((~done).sum())} chunks not generated yet")
    x_all = torch.as_tensor(store["reflectance"][:], dtype=torch.float32)
    low, high = np.array(attrs["low"]), np.array(attrs["high"])
    p_all = torch.as_tensor((store["parameters"][:] - low) / (high - low), dtype=torch.float32)
    order = torch.randperm(len(x_all), generator=gen)
    n_test = len(x_all) // 10
    test, train = order[:n_test], order[n_test:]
    x, p = x_all[train], p_all[train]

    model = RTMEmulator(attrs["names"])
    model.x_mean.copy_(x.mean(dim=0))
    model.x_std.copy_(x.std(dim=0))
    model.parameter_low.copy_(torch.as_tensor(low))
    model.parameter_high.copy_(torch.as_tensor(high))
    scale = model.x_std
    weight = torch.tensor([TARGET_WEIGHT.get(name, 1.0) for name in model.parameter_names])

    def decoder_loss(idx: torch.Tensor) -> torch.Tensor:
        return (((model.decode(p[idx]) - x[idx]) / scale) ** 2).mean()

    def encoder_loss(idx: torch.Tensor) -> torch.Tensor:
        valid = random_valid(len(idx), gen)
        noisy = x[idx] + NOISE * torch.randn(x[idx].shape, generator=gen)
        p_encode, p_retrieve = model.heads(noisy, valid)
        reconstruction = (((model.decode(p_encode) - x[idx]) / scale) ** 2).mean()
        return (weight * ((p_encode - p[idx]) ** 2 + (p_retrieve - p[idx]) ** 2)).mean() + reconstruction

    start = time.perf_counter()
    fit(model.decoder.parameters(), decoder_loss, len(x), args.epochs_decoder, args.lr, args.batch, gen, "decoder")
    decoder_seconds = round(time.perf_counter() - start)
    model.decoder.requires_grad_(False)
    fit(model.encoder.parameters(), encoder_loss, len(x), args.epochs_encoder, args.lr, args.batch, gen, "encoder")
    encoder_seconds = round(time.perf_counter() - start) - decoder_seconds
    model.eval()
    scores = evaluate(model, x_all[test], p_all[test])
    print(json.dumps(scores, indent=1))
    training = {
        "n_spectra": len(x_all), "epochs_decoder": args.epochs_decoder, "epochs_encoder": args.epochs_encoder,
        "batch": args.batch, "lr": args.lr, "seed": args.seed, "encoder_input_noise": NOISE,
        "coverage_p": list(COVERAGE_P), "parameter_loss_weight": TARGET_WEIGHT, "torch_threads": torch.get_num_threads(),
        "seconds": {"decoder": decoder_seconds, "encoder": encoder_seconds, "total": decoder_seconds + encoder_seconds},
    }

    args.out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(args.out / WEIGHTS_FILE))
    config = {
        "parameter_names": list(model.parameter_names),
        "parameter_units": attrs["units"],
        "parameter_low": list(map(float, low)),
        "parameter_high": list(map(float, high)),
        "hidden": list(model.hidden),
        "canonical_nm": {"start": float(CANONICAL_NM[0]), "stop": float(CANONICAL_NM[-1]), "count": len(CANONICAL_NM)},
        "reflectance": "surface reflectance factor in [0, 1] (PROSAIL SDR)",
        "training_data": {k: attrs[k] for k in ("n", "seed", "design", "model", "resampling")},
        "training": training,
        "heldout_scores": scores,
    }
    (args.out / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n")
    write_scores(scores_markdown(scores, training), args.docs)


if __name__ == "__main__":
    main()
