"""The rows of an unfinished ``anyband benchmark quality`` run, kept per part so that ``--resume`` skips what is done.

A part is one scene of one split (a leave-one-scene-out scene, a training scene) or the held-out-materials probe. Its
rows are written to ``<out>/.partial/<key>.json`` when it finishes; the key is the SHA-256 of everything its rows
depend on: the split and scene name, the scene's values, wavelengths and attrs (the materials probe: the versions
of the spectral libraries), the weights and the Gaussian prior they condition on, the run's settings, and every
file of the installed ``anyband_xr`` package (code and data). A resumed run reuses a part only when all of these
are unchanged; a finished run removes the folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import xarray as xr

import anyband_xr
from anyband_xr.model.weights import spectral_prior_hash, weights_hash

Row = dict[str, float | str | int]
FOLDER = ".partial"


@lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-256 of the installed package's files, code and data (names and contents, in name order)."""
    digest = hashlib.sha256()
    root = Path(anyband_xr.__file__).parent
    for file in sorted(f for f in root.rglob("*") if f.is_file() and "__pycache__" not in f.parts):
        digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def scene_digest(scene: xr.DataArray) -> str:
    """SHA-256 of a scene's dims, shape, attrs (units, nodata ...), wavelengths (nm) and values."""
    header = [list(map(str, scene.dims)), list(scene.shape), scene.attrs]
    digest = hashlib.sha256(json.dumps(header, sort_keys=True, default=str).encode())
    digest.update(np.ascontiguousarray(scene["wavelength"].values, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(scene.values).tobytes())
    return digest.hexdigest()


@dataclasses.dataclass
class PartialRows:
    """Where a run keeps its finished parts (``<out>/.partial``), whether it reuses them (``resume``), and the wall
    time (s) the reused parts took when they ran (``reused_seconds``)."""

    out: Path
    resume: bool
    reused_seconds: float = 0.0

    @property
    def folder(self) -> Path:
        return Path(self.out) / FOLDER

    def rows(self, part: dict[str, object], settings: object, weights: str | None,
             compute: Callable[[], list[Row]], log: Callable[[str], None]) -> list[Row]:
        """The rows of ``part`` (a JSON-able description: split, scene name and digest ...) run with ``settings``
        (a dataclass) and ``weights`` (None: the shipped ones): reused when resuming and unchanged, else computed
        by ``compute`` and kept."""
        record = {"part": part, "settings": dataclasses.asdict(settings), "weights": weights_hash(weights),
                  "prior": spectral_prior_hash(weights), "code": code_digest()}
        key = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()
        file = self.folder / f"{key}.json"
        if self.resume and file.is_file():
            log(f"{part.get('split')} / {part.get('scene', '-')}: reusing the rows of an unfinished run ({file})")
            kept = json.loads(file.read_text())
            self.reused_seconds += kept["seconds"]
            return kept["rows"]
        start = time.perf_counter()
        rows = compute()
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = file.with_suffix(".tmp")
        record = {**record, "seconds": time.perf_counter() - start, "rows": rows}
        partial.write_text(json.dumps(record, default=_plain))
        partial.replace(file)
        return rows

    def clear(self) -> None:
        """Remove the kept parts (the run finished)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _plain(value: object) -> object:
    """JSON form of numpy scalars in rows."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
