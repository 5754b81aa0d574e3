"""Write a run folder's loss so far as ``loss.md``, from the ``history`` in its checkpoint JSON.

    python scripts/train_loss_log.py training_runs/wide-prior-1        # -> training_runs/wide-prior-1/loss.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

#: Rows of the table: the loss averaged over this many logged intervals each.
ROWS = 20


def loss_table(history: list[dict], rows: int = ROWS) -> str:
    """A Markdown table of the mean loss, MSE and MSPL over ``rows`` equal stretches of ``history``."""
    lines = ["| steps | minutes | loss | mse | mspl |", "|---|---|---|---|---|"]
    for part in np.array_split(np.arange(len(history)), min(rows, len(history))):
        entries = [history[i] for i in part]
        mean = {k: np.mean([e[k] for e in entries]) for k in ("loss", "mse", "mspl")}
        first, last = entries[0]["step"], entries[-1]["step"]
        span = f"{first}-{last}" if first != last else f"{last}"
        lines.append(f"| {span} | {entries[-1]['minutes']:.0f} | {mean['loss']:.4f} | {mean['mse']:.4f} | {mean['mspl']:.4f} |")
    return "\n".join(lines)


def main() -> None:
    """Read ``<run>/config.json`` for the checkpoint stem and write ``<run>/loss.md``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder with config.json")
    args = parser.parse_args()
    config = json.loads((args.run / "config.json").read_text())
    record = json.loads(Path(config["output"] + ".json").read_text())
    history = record["history"]
    if not history:
        raise SystemExit(f"{config['output']}.json has no loss history yet: wait for the first checkpoint.")
    parent = record.get("parent", {})
    text = (
        f"# Loss of `{args.run.name}`\n\n"
        f"Step {record['step']} after {record['minutes']:.0f} minutes of training (all sessions), fine-tuned from "
        f"`{parent.get('weights')}` (sha256 {str(parent.get('sha256'))[:12]}). Each row averages the logged "
        f"loss (relative masked MSE + weighted MSPL, per step) over a stretch of steps; it is noisy because every "
        f"batch draws new sensors, masks and diffusion times.\n\n{loss_table(history)}\n"
    )
    (args.run / "loss.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
