"""Train the shipped default model (``anyband_xr/data/weights/mcd_default.*``) from ``configs/default.json``.

Reads the real scenes under the config's ``scenes_root`` (training columns only) and checkpoints the EMA weights
into the package every few minutes, so the latest good weights are always in place:

    nohup python scripts/train_default.py configs/default.json > /tmp/train.log 2>&1 &
"""

from __future__ import annotations

import argparse

from anyband_xr.training.train import train


def main() -> None:
    """Parse the config path and train."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="configs/default.json")
    args = parser.parse_args()
    print(f"weights written to {train(args.config)}")


if __name__ == "__main__":
    main()
