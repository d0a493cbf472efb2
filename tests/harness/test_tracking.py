"""The MLflow store as the tracker opens it: SQLite in write-ahead-log mode."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import create_engine

from conftest import TINY_STUDY, copy_store, uri_of, write_study
from dlbench.harness import process
from dlbench.harness.grid import expand
from dlbench.harness.spec import load_study
from dlbench.harness.tracking import Tracker


def _pragma(db: Path, name: str) -> str:
    connection = sqlite3.connect(db)
    try:
        return str(connection.execute(f"PRAGMA {name}").fetchone()[0])
    finally:
        connection.close()


def test_a_sqlite_store_is_written_through_a_write_ahead_log(tmp_path: Path) -> None:
    process.setup()  # what an entry point does first (nothing is set up on import)
    spec = load_study(write_study(tmp_path, TINY_STUDY))
    tracker = Tracker(spec, uri_of(tmp_path))
    run_id = tracker.start_cell(expand(spec)[0], 1)
    tracker.end_cell(run_id, "completed", 0.5)
    assert _pragma(tmp_path / "mlflow.db", "journal_mode") == "wal"  # it stays with the file
    # A backup copy, taken while the tracker's connections are open, has the cell's run.
    copy = tmp_path / "copy"
    copy.mkdir()
    copy_store(tmp_path, copy)
    connection = sqlite3.connect(copy / "mlflow.db")
    try:
        statuses = connection.execute("SELECT status FROM runs WHERE run_uuid = ?", (run_id,))
        assert statuses.fetchall() == [("FINISHED",)]
    finally:
        connection.close()


def test_a_read_only_store_opens_as_it_is(tmp_path: Path) -> None:
    process.setup()
    db = tmp_path / "old.db"
    sqlite3.connect(db).close()  # a store in the default rollback-journal mode
    engine = create_engine(f"sqlite:///file:{db}?mode=ro&uri=true")
    with engine.connect() as connection:  # the WAL switch needs a write: it is skipped
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
    engine.dispose()


def test_importing_dlbench_sets_nothing_up_process_wide() -> None:
    """No environment variable, logger level or SQLAlchemy listener changes on import."""
    import subprocess
    import sys

    code = (
        "import logging, os, warnings, sqlalchemy.event as e, sqlalchemy.engine as g\n"
        "import lightning, mlflow, optuna, sklearn, torch\n"  # they set their own
        "names = ['mlflow', 'lightning.pytorch', 'lightning.fabric', 'optuna']\n"
        "levels = [logging.getLogger(n).level for n in names]\n"
        "env, filters = dict(os.environ), list(warnings.filters)\n"
        "import dlbench.harness.sweep, dlbench.harness.worker, dlbench.cli\n"
        "from dlbench.harness import tracking\n"
        "assert dict(os.environ) == env and list(warnings.filters) == filters\n"
        "assert [logging.getLogger(n).level for n in names] == levels\n"
        "assert not e.contains(g.Engine, 'connect', tracking.write_ahead_log)\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("MLFLOW_")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
