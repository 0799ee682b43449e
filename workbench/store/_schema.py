"""The SQLite index: schema, versioning and short-lived connections."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

#: Version written to ``PRAGMA user_version``; stores from a newer version are refused.
#: 2 added ``lease_until`` (claims expire unless renewed) and ``files`` (the run's final files).
SCHEMA_VERSION = 2

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
    worker           TEXT,
    lease_until      REAL,
    files            TEXT
);
CREATE INDEX runs_status ON runs (status);
CREATE INDEX runs_space_dataset ON runs (space, dataset);
"""


class StoreError(RuntimeError):
    """The store's folder or index cannot be used."""


class StoreReadOnlyError(StoreError):
    """A write was asked of a store opened read-only."""


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


def index_error(path: Path, err: sqlite3.Error, timeout: float) -> StoreError:
    """A :class:`StoreError` naming ``path`` for an SQLite error (damaged, foreign or busy)."""
    text = str(err)
    if "locked" in text or "busy" in text:
        return StoreError(f"run store index {path} stayed locked by another process for "
                          f"{timeout:g} s ({text}); retry, or raise the store's timeout")
    if "readonly" in text or "read-only" in text:
        return StoreReadOnlyError(f"run store index {path} cannot be written ({text}); open "
                                  "the store with readonly=True to read it")
    return StoreError(f"run store index {path} cannot be read: {text} (a damaged or foreign "
                      "file; it is left untouched)")


def _open(path: Path, timeout: float, readonly: bool) -> sqlite3.Connection:
    """An SQLite connection; read-only ones fall back to ``immutable`` where -shm can't be made."""
    if not readonly:
        return sqlite3.connect(path, timeout=timeout, isolation_level=None)
    uri = path.resolve().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", timeout=timeout, isolation_level=None, uri=True)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.OperationalError:  # a read-only folder: WAL's shared memory cannot be created
        conn.close()
        conn = sqlite3.connect(f"{uri}?immutable=1", timeout=timeout, isolation_level=None,
                               uri=True)
    return conn


def connect(path: Path, timeout: float, *, readonly: bool = False) -> sqlite3.Connection:
    """A fresh autocommit connection with a busy timeout; refuses newer schema versions.

    Every SQLite error (a damaged file, a foreign one, a lock held too long) becomes a
    :class:`StoreError` naming the path.
    """
    try:
        conn = _open(path, timeout, readonly)
    except sqlite3.Error as err:
        raise index_error(path, err, timeout) from err
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        if not readonly:
            conn.execute("PRAGMA synchronous = NORMAL")
        check_version(conn, path)
    except sqlite3.Error as err:
        conn.close()
        raise index_error(path, err, timeout) from err
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def transaction(path: Path, timeout: float) -> Iterator[sqlite3.Connection]:
    """A short write transaction (``BEGIN IMMEDIATE``) on a fresh connection, then close."""
    conn = connect(path, timeout)
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise index_error(path, err, timeout) from err
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            raise index_error(path, err, timeout) from err
    finally:
        conn.close()


@contextlib.contextmanager
def reading(path: Path, timeout: float, *, readonly: bool = False) -> Iterator[sqlite3.Connection]:
    """A fresh connection for reads, closed afterwards."""
    conn = connect(path, timeout, readonly=readonly)
    try:
        yield conn
    except sqlite3.Error as err:
        raise index_error(path, err, timeout) from err
    finally:
        conn.close()


def _refuse_foreign(conn: sqlite3.Connection, path: Path, version: int) -> None:
    """Raise if an unversioned index already holds tables: some other program's database."""
    if version:
        return
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    if tables:
        raise StoreError(
            f"{path} holds tables {tables} but no workbench schema version; not a run store "
            "(left untouched)"
        )


MIGRATIONS = {  # version -> statements that lift a store from it to the next version
    1: ("ALTER TABLE runs ADD COLUMN lease_until REAL", "ALTER TABLE runs ADD COLUMN files TEXT"),
}


def _create_schema(conn: sqlite3.Connection) -> None:
    """The current schema and its version, inside the caller's open transaction."""
    # One statement at a time: executescript() would COMMIT the open transaction first.
    for stmt in filter(None, (s.strip() for s in SCHEMA.split(";"))):
        conn.execute(stmt)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _create_atomically(path: Path) -> None:
    """Write a complete new index beside ``path`` and hard-link it into place, so that no other
    process ever sees a half-made (empty) index; a process that loses the race to create it
    keeps the winner's. Filesystems without hard links fall back to creating it in place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")  # persistent in the file's header
            conn.execute("BEGIN IMMEDIATE")
            _create_schema(conn)
            conn.execute("COMMIT")
        finally:
            conn.close()  # the last connection checkpoints the WAL into the file
        with contextlib.suppress(FileExistsError):  # another process made it first: keep theirs
            os.link(tmp, path)
    except (OSError, sqlite3.Error):  # no hard links (or no temp file): create in place
        pass
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def initialise(path: Path, timeout: float) -> None:
    """Create the index (WAL mode, schema, version) if needed, or migrate an older one; safe to
    race from many processes. An index at the current version is only read (no write lock)."""
    if not path.exists():
        _create_atomically(path)
    if path.is_file() and path.stat().st_size > 0:
        with reading(path, timeout) as conn:
            version = check_version(conn, path)
            if version == SCHEMA_VERSION:
                return
            _refuse_foreign(conn, path, version)
    deadline = time.monotonic() + timeout
    while True:  # switching to WAL needs a moment of exclusive access; retry while others hold it
        conn = connect(path, timeout)
        try:
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() == "wal":
                break
        except sqlite3.Error as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise index_error(path, err, timeout) from err
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
        if version in MIGRATIONS:
            while version < SCHEMA_VERSION:
                for stmt in MIGRATIONS[version]:
                    conn.execute(stmt)
                version += 1
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            return
        _refuse_foreign(conn, path, version)
        _create_schema(conn)
