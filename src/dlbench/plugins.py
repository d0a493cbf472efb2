"""Components from outside dlbench: a study's plugin files and installed packages.

A plugin registers with the decorators the built-ins use (``@OPTIMIZERS.register``,
``@INITIALIZERS.register``, ``@problem``, ...), so a new optimizer is one file of the
user's. A study names local files (``plugins: [my_optim.py]``, relative to the study
file); an installed package registers through the entry-point group ``dlbench.plugins``.
Both load when a study file is read, and worker processes read the same file, so every
process sees the same components. A file is imported once per process; its sha256 is the
provenance recorded on each run.

``python -m dlbench.plugins FAMILY FILE`` prints the names FILE registers in FAMILY
(``make bench-my-optimizer`` adds them to the optimizer benchmark's grid).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from dlbench.errors import ConfigError

ENTRY_POINTS = "dlbench.plugins"

_imported: dict[Path, str] = {}  # resolved path -> sha256 of the text imported from it
_installed_loaded = False  # the entry points are imported once per process
_installed_error: ConfigError | None = None  # and the first one's failure, if any


@dataclass(frozen=True)
class Plugin:
    """One loaded plugin file: the path the study names and the sha256 of its text."""

    path: str
    sha256: str


def load(names: Any, study_file: Path) -> tuple[Plugin, ...]:
    """Import the study's plugin files (paths relative to ``study_file``) and the installed
    packages' entry points; a broken plugin is one ConfigError naming the file."""
    load_installed()
    if names is None:
        return ()
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"must be a list of Python file paths, got {names!r}", key="plugins")
    return tuple(_load_file(name, study_file.parent) for name in names)


def load_installed() -> None:
    """Import every ``dlbench.plugins`` entry point, once per process; a broken one fails
    every study read in the process, not only the first."""
    global _installed_loaded, _installed_error
    if not _installed_loaded:
        _installed_loaded = True
        for point in entry_points(group=ENTRY_POINTS):
            try:
                point.load()
            except Exception as err:  # noqa: BLE001 - any error in a plugin is the user's
                _installed_error = ConfigError(
                    f"plugin failed to load: {type(err).__name__}: {err}",
                    source=f"entry point {point.name} = {point.value}",
                )
                break
    if _installed_error is not None:
        raise _installed_error


def to_json(plugins: tuple[Plugin, ...]) -> str:
    """The plugins as the MLflow tag ``dlbench.plugins`` holds them ("[]": none)."""
    return json.dumps([{"path": p.path, "sha256": p.sha256} for p in plugins])


def _load_file(name: str, folder: Path) -> Plugin:
    path = (folder / name).resolve()
    if path.suffix != ".py" or not path.is_file():
        raise ConfigError(f"no such Python file: {path}", key="plugins")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    known = _imported.get(path)
    if known is not None:
        if known != sha:
            raise ConfigError(
                "changed since this process imported it; run again in a new process",
                source=str(path),
            )
        return Plugin(name, sha)
    module_name = f"dlbench_plugin_{path.stem}_{sha[:12]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None  # a .py file always has a loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # so its classes pickle and dataclasses resolve
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - any error in a plugin is the user's
        del sys.modules[module_name]
        line = _line_of(err, path)
        raise ConfigError(
            f"plugin failed to load{line}: {type(err).__name__}: {err}", source=str(path)
        ) from None
    _imported[path] = sha
    return Plugin(name, sha)


def _line_of(err: Exception, path: Path) -> str:
    """' at line N' of the plugin file where ``err`` arose, if it arose there."""
    if isinstance(err, SyntaxError) and err.lineno:
        return f" at line {err.lineno}"
    lines, tb = [], err.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename) == path:
            lines.append(tb.tb_lineno)
        tb = tb.tb_next
    return f" at line {lines[-1]}" if lines else ""


def registers(family: str, path: Path) -> list[str]:
    """The names ``path`` registers in ``family`` (``optimizer``, ``init``, ...): what it
    adds to the registry, imported as a study would import it."""
    from dlbench.components import FAMILIES

    registry = FAMILIES[family]
    before = set(registry.names())
    _load_file(str(path.resolve()), Path.cwd())
    return [name for name in registry.names() if name not in before]


if __name__ == "__main__":
    try:
        print(" ".join(registers(sys.argv[1], Path(sys.argv[2]))))
    except ConfigError as err:
        sys.exit(f"dlbench: error: {err}")
