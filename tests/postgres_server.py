"""A real, throwaway PostgreSQL server for tests of shared Optuna/MLflow storage.

The fixture is registered in tests/conftest.py; tests import ``create_database`` from here.

SQLite cannot stand in here: the behaviour under test (several processes sharing one
study, heartbeats, MLflow's server-side migrations) depends on a client/server database.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dlbench.harness.tracking import free_port


def _pg_bin(name: str) -> str | None:
    """PATH first, then Debian's versioned folder (the package does not put initdb on PATH)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return candidates[-1] if candidates else None


def _run(cmd: list[str]) -> None:
    """Run a server binary; as root go through `postgres`, since initdb/postgres refuse root."""
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")


def create_database(url: str, name: str) -> str:
    """CREATE DATABASE `name` on the server of `url`; returns the URL pointing at it.

    Each consumer (Optuna, an MLflow server) gets its own database so their schemas
    and migrations never meet. Names must be new within the session.
    """
    from sqlalchemy import create_engine, make_url, text

    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"database name must be a lowercase identifier, got {name!r}")
    engine = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of database `dlbench` on a fresh server on 127.0.0.1 (session-wide).

    The folder comes from tempfile, not tmp_path_factory: pytest's base dir is 0700 to its
    owner, which the `postgres` user could not enter when we run as root; it also keeps
    the unix socket path short (the OS limits it to ~107 bytes).
    """
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.fail(
            "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in "
            "/usr/lib/postgresql/*/bin; run `apt-get install postgresql`",
            pytrace=False,
        )
    root = Path(tempfile.mkdtemp(prefix="dlbench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, log, port = root / "data", root / "server.log", free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {root} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    try:
        _run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
        try:
            _run([pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "start"])
        except RuntimeError:
            detail = log.read_text() if log.exists() else "(no server log)"
        else:
            detail = ""
        if detail:
            pytest.fail(f"PostgreSQL did not start on port {port}:\n{detail}", pytrace=False)
        try:
            yield create_database(f"postgresql://postgres@127.0.0.1:{port}/postgres", "dlbench")
        finally:
            _run([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"])
    finally:
        shutil.rmtree(root, ignore_errors=True)
