"""MkDocs hook (mkdocs.yml ``hooks:``): the "Benchmarks" nav section lists every page under docs/benchmarks/.

The benchmark scripts write their tables there, so new benchmarks appear in the site without editing the nav; the
section is left out while there is none.
"""

from __future__ import annotations

from pathlib import Path

SECTION = "Benchmarks"
FOLDER = "benchmarks"


def on_config(config):
    """Fill the empty ``Benchmarks`` nav section with docs/benchmarks/*.md (index.md first)."""
    pages = sorted(Path(config["docs_dir"], FOLDER).glob("*.md"), key=lambda p: (p.stem != "index", p.stem))
    entries = [f"{FOLDER}/{p.name}" for p in pages]
    nav = []
    for item in config["nav"] or []:
        if isinstance(item, dict) and list(item) == [SECTION]:
            if not entries:
                continue
            item = {SECTION: entries}
        nav.append(item)
    config["nav"] = nav
    return config
