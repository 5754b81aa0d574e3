"""Where benchmark results land: a Markdown page with the raw rows beside it (CSV and JSON), and the README block.

Example:
    >>> write_results(Path("docs/benchmarks"), "quality", lines, rows, {"command": "anyband benchmark quality"})
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

#: The README block that ``anyband benchmark quality --readme README.md`` fills (markers stay in place).
README_START = "<!-- benchmark-headline:start (written by `anyband benchmark quality --readme README.md`) -->"
README_END = "<!-- benchmark-headline:end -->"


def _plain(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_results(out: Path, stem: str, lines: Sequence[str], rows: Sequence[dict], meta: dict) -> list[Path]:
    """Write ``<stem>.md`` (``lines``), ``<stem>.csv`` (``rows``) and ``<stem>.json`` (``meta`` + rows) in ``out``.

    Non-finite numbers become empty CSV cells and JSON ``null``. Returns the paths written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.md", out / f"{stem}.csv", out / f"{stem}.json"]
    paths[0].write_text("\n".join(lines).rstrip("\n") + "\n")
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with paths[1].open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows({k: _plain(v) for k, v in row.items()} for row in rows)
    record = {**meta, "rows": [{k: _plain(v) for k, v in row.items()} for row in rows]}
    paths[2].write_text(json.dumps(record, indent=1) + "\n")
    return paths


def fill_readme(readme: Path, lines: Sequence[str]) -> None:
    """Replace what lies between :data:`README_START` and :data:`README_END` in ``readme`` with ``lines``."""
    text = Path(readme).read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(
            f"{readme} has no benchmark block; add the two lines\n{README_START}\n{README_END}\nwhere the numbers go."
        )
    head = text[: start + len(README_START)]
    Path(readme).write_text("\n".join([head, *lines, text[end:]]))
