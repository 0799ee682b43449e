"""The SQLite index: schema, versioning and short-lived connections."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

#: Version written to ``PRAGMA user_version``; stores from a newer version are refused.
SCHEMA_VERSION = 1

STATUS_CHECK = "status IN ('pending', 'running', 'done', 'diverged', 'failed')"

SCHEMA = f"""
CREATE TABLE runs (
    run_id           TEXT PRIMARY KEY,
    key              TEXT NOT NULL UNIQUE,
    space            TEXT NOT NULL,
    cell_id          TEXT NOT NULL,
    cell             TEXT NOT NULL DEFAULT '',
    dataset          TEXT NOT NULL,
    config           TEXT NOT NULL,
    config_hash      TEXT NOT NULL,
    seed             INTEGER NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending' CHECK ({STATUS_CHECK}),
    error            TEXT,
    created          REAL NOT NULL,
    started          REAL,
    finished         REAL,
    wall_seconds     REAL,
    steps_done       INTEGER NOT NULL DEFAULT 0,
    metrics          TEXT,
    final_train_loss REAL,
    final_train_acc  REAL,
    final_val_acc    REAL,
    final_test_acc   REAL,
    label            REAL,
    label_name       TEXT,
    worker           TEXT
);
CREATE INDEX runs_status ON runs (status);
CREATE INDEX runs_space_dataset ON runs (space, dataset);
"""


class StoreError(RuntimeError):
    """The store's folder or index cannot be used."""


class StoreVersionError(StoreError):
    """The store was written by a newer workbench (its schema version is unknown here)."""


def check_version(conn: sqlite3.Connection, path: Path) -> int:
    """The schema version of the open index; raise if it is newer than this code knows."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreVersionError(
            f"run store {path} has schema version {version}, but this workbench only knows "
            f"versions up to {SCHEMA_VERSION}; upgrade the workbench to open it"
        )
    return version


def connect(path: Path, timeout: float) -> sqlite3.Connection:
    """A fresh autocommit connection with a busy timeout; refuses newer schema versions."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        conn.execute("PRAGMA synchronous = NORMAL")
        check_version(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def transaction(path: Path, timeout: float) -> Iterator[sqlite3.Connection]:
    """A short write transaction (``BEGIN IMMEDIATE``) on a fresh connection, then close."""
    conn = connect(path, timeout)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()


@contextlib.contextmanager
def reading(path: Path, timeout: float) -> Iterator[sqlite3.Connection]:
    """A fresh connection for reads, closed afterwards."""
    conn = connect(path, timeout)
    try:
        yield conn
    finally:
        conn.close()


def initialise(path: Path, timeout: float) -> None:
    """Create the index (WAL mode, schema, version) if needed; safe to race from many processes."""
    deadline = time.monotonic() + timeout
    while True:  # switching to WAL needs a moment of exclusive access; retry while others hold it
        conn = connect(path, timeout)
        try:
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() == "wal":
                break
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
        finally:
            conn.close()
        if time.monotonic() > deadline:
            raise StoreError(
                f"could not switch {path} to WAL journal mode (unsupported filesystem?)"
            )
        time.sleep(0.05)
    with transaction(path, timeout) as conn:
        version = check_version(conn, path)
        if version == SCHEMA_VERSION:
            return
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        if tables:
            raise StoreError(
                f"{path} holds tables {tables} but no workbench schema version; not a run store"
            )
        # One statement at a time: executescript() would COMMIT the open transaction first.
        for stmt in filter(None, (s.strip() for s in SCHEMA.split(";"))):
            conn.execute(stmt)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
