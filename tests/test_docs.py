"""The documentation: the MkDocs site builds without warnings, its pictures are used, its tables match the code."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from anyband_xr import srf

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_site_builds_strictly(tmp_path):
    """`mkdocs build --strict`: a broken link, a missing page or figure, or a bad docstring fails."""
    for plugin in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        pytest.importorskip(plugin)
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    api = (site / "reference" / "repair" / "index.html").read_text()
    assert "Fill missing spectral values" in api and "return_std" in api
    for figure in (DOCS / "figures").glob("*.png"):
        assert (site / "figures" / figure.name).is_file()


def test_every_figure_is_used_by_a_page():
    pages = "\n".join(p.read_text() for p in DOCS.rglob("*.md"))
    unused = [f.name for f in (DOCS / "figures").glob("*.png") if f"figures/{f.name}" not in pages]
    assert not unused, f"figures no page shows: {unused} (remove them or docs/make_figures.py's code for them)"


def test_srf_page_lists_the_library():
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| (\d+) \|", (DOCS / "srf.md").read_text(), flags=re.MULTILINE)
    assert [(name, int(bands)) for name, bands in rows] == [(n, srf.get(n).sizes["band"]) for n in srf.list_sensors()]
