"""Shared fixtures: a real local STAC API (``rustac serve``) over COGs made from real scenes (anyband_xr.testing)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from anyband_xr.testing.stac_api import RustacServer, write_catalog


@pytest.fixture(scope="session")
def stac_catalog(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Collection and item files (with their COGs) for the local STAC API, written once per session."""
    return write_catalog(Path(tmp_path_factory.mktemp("stac")))


@pytest.fixture(scope="session")
def stac_api(stac_catalog: list[str]) -> Iterator[str]:
    """URL of a running ``rustac serve`` on a free 127.0.0.1 port; the process is stopped by PID at teardown."""
    with RustacServer(stac_catalog) as server:
        yield server.url
