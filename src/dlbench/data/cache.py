"""Arrays kept on disk between runs: generated datasets and fixed splits.

One folder (``$DLBENCH_CACHE``, else ``$XDG_CACHE_HOME/dlbench`` or
``~/.cache/dlbench``), one ``.npz`` per key, written atomically (a temporary file in
the same folder, then one rename), read back only when every expected array is there.
A file that cannot be written costs the next run the time to rebuild it, nothing else.
"""

from __future__ import annotations

import os
import tempfile
import warnings
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np


def cache_dir() -> Path:
    """Where generated datasets are kept between runs (read at each call, so tests can move it)."""
    if os.environ.get("DLBENCH_CACHE"):
        return Path(os.environ["DLBENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dlbench"


def read(path: Path, names: Iterable[str]) -> dict[str, np.ndarray] | None:
    """The arrays ``names`` stored at ``path``, or None when it is absent or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {name: stored[name] for name in names}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def write(path: Path, arrays: dict[str, np.ndarray], what: str) -> None:
    """Store ``arrays`` at ``path`` atomically; on a read-only or full disk, warn and go on."""
    scratch = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f"{path.stem}.", suffix=".tmp", delete=False
        ) as file:
            scratch = Path(file.name)
            np.savez(file, **arrays)
        os.replace(scratch, path)
    except OSError as err:
        warnings.warn(f"could not cache {what} in {path.parent}: {err}", stacklevel=3)
        if scratch is not None:
            scratch.unlink(missing_ok=True)
