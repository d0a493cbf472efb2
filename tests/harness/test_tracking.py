"""The MLflow store as the tracker opens it: SQLite in write-ahead-log mode."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import create_engine

from conftest import TINY_STUDY, copy_store, uri_of, write_study
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
    db = tmp_path / "old.db"
    sqlite3.connect(db).close()  # a store in the default rollback-journal mode
    engine = create_engine(f"sqlite:///file:{db}?mode=ro&uri=true")
    with engine.connect() as connection:  # the WAL switch needs a write: it is skipped
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
    engine.dispose()
