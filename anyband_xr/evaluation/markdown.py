"""Markdown pieces shared by the benchmark reports: tables, number formatting, machine and provenance lines."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import torch


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Lines of a Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def number(value: float | None, digits: int) -> str:
    """``value`` with ``digits`` decimals; ``n/a`` for a missing or undefined (NaN) value."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def mean_std(values: Sequence[float], digits: int) -> str:
    """``mean ± std`` over the finite values (population std); ``n/a`` when none is finite."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "n/a"
    mean = sum(finite) / len(finite)
    if len(finite) == 1:
        return number(mean, digits)
    std = math.sqrt(sum((v - mean) ** 2 for v in finite) / len(finite))
    return f"{number(mean, digits)} ± {number(std, digits)}"


def machine() -> str:
    """One line describing this machine: platform, CPU cores, Python, torch and its threads, GPU."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    cpu = platform.processor() or platform.machine()
    return (
        f"{platform.platform()}, {cpu}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"torch {torch.__version__} (torch threads: {torch.get_num_threads()}), {gpu}"
    )


def provenance() -> str:
    """Date (UTC) and the git commit of the working tree, when it is a git checkout."""
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return date
    return f"{date}, commit {commit}"
