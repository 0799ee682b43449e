"""``RunStore``: a crash-safe, multi-process index of training runs plus their per-run files."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import sqlite3
import threading
import time
import traceback
import uuid
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench._checks import check_int, check_real
from workbench._io import atomic_write
from workbench.store._features import FeatureSet, stack_features
from workbench.store._files import StoreFileError, check_arrays, check_npz, read_npz, write_npz
from workbench.store._schema import (
    SCHEMA_VERSION,
    StoreError,
    StoreReadOnlyError,
    initialise,
    reading,
    transaction,
)
from workbench.store._validate import (
    METRIC_COLUMNS,
    RUN_STATUSES,
    RunRequest,
    check_file_name,
    check_name,
    check_run_id,
    check_statuses,
    dumps,
    to_jsonable,
)

if TYPE_CHECKING:  # pandas and torch are imported lazily: worker processes start faster
    import pandas as pd

INDEX_NAME = "index.sqlite"
RUNS_DIR = "runs"
CHECKPOINT_NAME = "checkpoint.pt"
_TIME_COLUMNS = ("created", "started", "finished", "lease_until")
_CHUNK = 500  # run ids per "IN (...)" query, well under SQLite's variable limit
#: Seconds a claim lasts unless renewed; a heartbeat renews it every ``lease / 5`` seconds.
DEFAULT_LEASE = 300.0
_FINAL = ("done", "diverged", "failed")
#: What a requeued run is set to: pending, with its results and claim cleared.
_REQUEUED = ("status = 'pending', error = NULL, started = NULL, finished = NULL, "
             "wall_seconds = NULL, metrics = NULL, final_train_loss = NULL, "
             "final_train_acc = NULL, final_val_acc = NULL, final_test_acc = NULL, "
             "worker = NULL, lease_until = NULL, files = NULL")
# "host:pid", optionally "ray:" before it and "/anything" after it (pool workers, Ray drivers).
_OWNER_RE = re.compile(r"(?:ray:)?(?P<host>[^:/\s]+):(?P<pid>\d+)(?:/.*)?")


class ClaimLostError(StoreError, ValueError):
    """A process tried to write a run it no longer holds (its lease expired and another took
    it over, or the run already finished); its results are not written."""


def _pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OverflowError:
        return False
    return True


def owner_gone(worker: str | None, *, host: str | None = None) -> bool:
    """Whether the owner named ``worker`` is known to be dead: a ``host:pid`` owner on this host
    whose process no longer exists. Owners elsewhere (or unparseable names) are judged by their
    lease alone."""
    if not worker:
        return True
    m = _OWNER_RE.fullmatch(worker)
    if m is None or m["host"] != (host or socket.gethostname()):
        return False
    return not _pid_alive(int(m["pid"]))


class UnknownRunError(KeyError):
    """No run with this id is in the store."""

    def __str__(self) -> str:
        """The plain message (``KeyError`` would print its repr)."""
        return str(self.args[0]) if self.args else "unknown run"


def default_worker() -> str:
    """``host:pid`` of the calling process, recorded on the runs it claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _check_worker(worker: str | None) -> str:
    """``worker`` validated, or the calling process's ``host:pid``."""
    if worker is None:
        return default_worker()
    if not isinstance(worker, str) or not worker or len(worker) > 256:
        raise ValueError(f"worker must be a non-empty string of at most 256 chars, got {worker!r}")
    return worker


def _check_metrics(metrics: Mapping[str, Any]) -> tuple[str, dict[str, float | None]]:
    """Metrics as JSON text plus the typed ``final_*`` column values."""
    if not isinstance(metrics, Mapping):
        raise ValueError(f"metrics must be a mapping of name -> value, got {metrics!r:.80}")
    plain = to_jsonable(metrics, "metrics", allow_nan=True)
    typed = {
        col: check_real(f"metrics[{name!r}]", plain.get(name), finite=False, allow_none=True)
        for name, col in METRIC_COLUMNS.items()
    }
    return dumps(plain, allow_nan=True), typed


def _row_dict(row: sqlite3.Row) -> dict[str, Any]:
    """A run row as a dict with ``config`` and ``metrics`` parsed from JSON."""
    out = dict(row)
    out["config"] = json.loads(out["config"])
    out["metrics"] = json.loads(out["metrics"]) if out["metrics"] is not None else None
    return out


def _frame(rows: Sequence[sqlite3.Row]) -> pd.DataFrame:
    """Rows as a DataFrame; config/metrics expanded into ``config.*``/``metrics.*`` columns.

    Built column-wise, and each distinct config text parsed once (a collection's runs share a
    few configs), so that listing 100k runs takes about a second.
    """
    import pandas as pd

    names = list(rows[0].keys()) if rows else list(_COLUMNS)
    base = pd.DataFrame.from_records([tuple(r) for r in rows], columns=names)
    head = base.drop(columns=["config", "metrics"])
    for col in _TIME_COLUMNS:
        head[col] = pd.to_datetime(head[col].astype("float64"), unit="s", utc=True)
    for col in ("wall_seconds", "label", *METRIC_COLUMNS.values()):
        head[col] = head[col].astype("float64")
    parts = [head]
    for name in ("config", "metrics"):
        codes, texts = pd.factorize(base[name], use_na_sentinel=True)
        parsed = [json.loads(t) for t in texts]
        if not any(parsed):
            continue
        flat = pd.json_normalize(parsed, sep=".").add_prefix(f"{name}.")
        if (codes < 0).any():  # runs without metrics yet: an all-missing row
            flat = pd.concat([flat, pd.DataFrame(index=[len(flat)])], ignore_index=True)
            codes = np.where(codes < 0, len(flat) - 1, codes)
        parts.append(flat.iloc[codes].reset_index(drop=True))
    return pd.concat(parts, axis=1) if len(parts) > 1 else head


_COLUMNS = (
    "run_id",
    "key",
    "space",
    "cell_id",
    "cell",
    "dataset",
    "config",
    "config_hash",
    "seed",
    "status",
    "error",
    "created",
    "started",
    "finished",
    "wall_seconds",
    "steps_done",
    "metrics",
    "final_train_loss",
    "final_train_acc",
    "final_val_acc",
    "final_test_acc",
    "label",
    "label_name",
    "worker",
    "lease_until",
    "files",
)


class RunStore:
    """Runs of a collection: an SQLite index (``index.sqlite``) plus files in ``runs/<run_id>/``.

    Status model: ``pending -claim-> running -mark_*-> done | diverged | failed``;
    ``requeue`` retries ``failed``/``diverged`` runs.

    Ownership: a claim records its owner (``worker``, by default ``host:pid``) and a lease
    (``lease_until``) that a :class:`Heartbeat` renews while the run trains. Only runs whose
    owner is gone (lease expired, or a dead process on this host) are put back to ``pending``
    by :meth:`reset_unfinished`; finishing with ``worker=`` checks the claim, and a finished
    run's files are moved into place in the same transaction that marks it finished, so nothing
    finished is ever rewritten. Every call opens its own connection and short transaction, so
    one store object may be shared by forked or spawned processes and by several hosts on a
    shared filesystem that supports SQLite locking.

    ``readonly=True`` opens an existing store without creating or writing anything (read-only
    folders and media work). A damaged or foreign index is refused with a :class:`StoreError`
    naming it, never reinitialised.
    """

    def __init__(self, root: str | os.PathLike[str], *, timeout: float = 30.0,
                 readonly: bool = False, lease: float = DEFAULT_LEASE) -> None:
        """Open (creating if needed, unless ``readonly``) the store in ``root``; ``timeout``:
        lock wait in seconds; ``lease``: seconds a claim lasts unless renewed."""
        timeout = check_real("timeout", timeout)
        if timeout <= 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
        lease = check_real("lease", lease)
        if lease <= 0:
            raise ValueError(f"lease must be positive seconds, got {lease!r}")
        if not isinstance(readonly, bool):
            raise ValueError(f"readonly must be True or False, got {readonly!r}")
        if isinstance(root, str) and not root.strip():
            raise ValueError("run store root is empty; give a folder (e.g. runs/store)")
        self.root = Path(root)
        self.timeout = timeout
        self.lease = lease
        self.readonly = readonly
        self.index_path = self.root / INDEX_NAME
        self._check_root()
        if readonly:
            with self._read() as conn:  # version check; nothing created or written
                version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version == 0:
                raise StoreError(f"{self.index_path} has no workbench schema version; not a run "
                                 "store")
            if version < SCHEMA_VERSION:
                raise StoreError(f"run store {self.root} has schema version {version}; open it "
                                 f"writable once to migrate it to {SCHEMA_VERSION} (e.g. "
                                 f"`workbench verify --store {self.root} --repair`)")
            return
        try:
            (self.root / RUNS_DIR).mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as err:
            raise StoreError(f"run store root {self.root} cannot be created: a parent is a "
                             "file") from err
        except PermissionError as err:
            raise StoreReadOnlyError(f"run store root {self.root} is not writable ({err}); "
                                     "open it with readonly=True to read it") from err
        initialise(self.index_path, timeout)

    def _check_root(self) -> None:
        """Refuse a root that is a file, a missing index (read-only), a zero-length index, or
        run folders without an index: each would otherwise look like a new, empty store."""
        root = self.root
        for parent in [root, *root.parents]:
            if parent.exists():
                if not parent.is_dir():
                    raise StoreError(f"run store root {root}: {parent} exists and is not a "
                                     "directory")
                break
        index = self.index_path
        if self.readonly and not index.is_file():
            raise StoreError(f"no run store at {root} (no {INDEX_NAME})")
        if index.is_file() and index.stat().st_size == 0:
            raise StoreError(
                f"run store index {index} is empty (0 bytes): the index is damaged, and "
                "opening it as a new store would orphan every stored run; restore it from a "
                "backup, or move it away to start a new store here")
        runs = root / RUNS_DIR
        if not index.exists() and runs.is_dir() and any(runs.iterdir()):
            raise StoreError(
                f"{runs} holds run folders but {index} is missing: refusing to start a new "
                "index over them; restore the index, or move the folders away")

    def __repr__(self) -> str:
        """``RunStore('<root>')``."""
        return f"RunStore({str(self.root)!r})"

    # -- internals -------------------------------------------------------------------------------

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        """A short ``BEGIN IMMEDIATE`` write transaction on a fresh connection."""
        if self.readonly:
            raise StoreReadOnlyError(f"run store {self.root} was opened read-only")
        return transaction(self.index_path, self.timeout)

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        """A fresh connection for reads."""
        return reading(self.index_path, self.timeout, readonly=self.readonly)

    def _status(self, conn: sqlite3.Connection, run_id: str) -> sqlite3.Row:
        """``status, started`` of a run; UnknownRunError if it is absent."""
        row = conn.execute(
            "SELECT status, started, worker, lease_until FROM runs WHERE run_id = ?",
            (check_run_id(run_id),),
        ).fetchone()
        if row is None:
            raise UnknownRunError(f"no run {run_id!r} in {self.root}")
        return row

    def _require(self, run_id: str) -> None:
        """Raise UnknownRunError unless the run exists."""
        with self._read() as conn:
            self._status(conn, run_id)

    def run_dir(self, run_id: str) -> Path:
        """The folder of a run's files (``runs/<run_id>``; may not exist yet)."""
        return self.root / RUNS_DIR / check_run_id(run_id)

    # -- adding and claiming ---------------------------------------------------------------------

    def add_runs(self, requests: Iterable[RunRequest | Mapping[str, Any]]) -> list[str]:
        """Add requested runs as ``pending``; a key already stored returns its run id, untouched.

        All requests are validated before anything is written, and all are added in one
        transaction. Returns one run id per request, in order.
        """
        if isinstance(requests, (RunRequest, Mapping, str, bytes)):
            raise ValueError("add_runs takes an iterable of requests; wrap a single one in a list")
        keyed = [(req, req.key) for req in map(RunRequest.coerce, requests)]
        now = time.time()
        ids: list[str] = []
        with self._tx() as conn:
            for req, key in keyed:
                conn.execute(
                    "INSERT OR IGNORE INTO runs (run_id, key, space, cell_id, cell, dataset, "
                    "config, config_hash, seed, status, created, label, label_name) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                    (
                        uuid.uuid4().hex,
                        key,
                        req.space,
                        req.cell_id,
                        req.cell,
                        req.dataset,
                        dumps(req.config),
                        key.split("/")[3],
                        req.seed,
                        now,
                        req.label,
                        req.label_name,
                    ),
                )
                ids.append(
                    conn.execute("SELECT run_id FROM runs WHERE key = ?", (key,)).fetchone()[0]
                )
        return ids

    def _lease(self, lease: float | None) -> float:
        """``lease`` validated (None: the store's)."""
        if lease is None:
            return self.lease
        lease = check_real("lease", lease)
        if lease <= 0:
            raise ValueError(f"lease must be positive seconds, got {lease!r}")
        return lease

    def claim(self, run_id: str, worker: str | None = None, *, lease: float | None = None
              ) -> bool:
        """Atomically mark a ``pending`` run ``running`` for ``worker`` (default ``host:pid``)
        with a lease of ``lease`` seconds (default the store's); False if not pending."""
        worker = _check_worker(worker)
        lease = self._lease(lease)
        with self._tx() as conn:
            self._status(conn, run_id)
            now = time.time()
            cur = conn.execute(
                "UPDATE runs SET status = 'running', started = ?, finished = NULL, worker = ?, "
                "lease_until = ?, error = NULL WHERE run_id = ? AND status = 'pending'",
                (now, worker, now + lease, run_id),
            )
            return cur.rowcount == 1

    def claim_next(
        self, worker: str | None = None, *, space: str | None = None, dataset: str | None = None,
        lease: float | None = None,
    ) -> str | None:
        """Claim the oldest ``pending`` run (optionally of a space/dataset); None if none."""
        worker = _check_worker(worker)
        lease = self._lease(lease)
        clauses, params = self._filters("pending", space, dataset)
        with self._tx() as conn:
            row = conn.execute(
                f"SELECT run_id FROM runs WHERE {' AND '.join(clauses)} ORDER BY rowid LIMIT 1",
                params,
            ).fetchone()
            if row is None:
                return None
            now = time.time()
            conn.execute(
                "UPDATE runs SET status = 'running', started = ?, finished = NULL, worker = ?, "
                "lease_until = ?, error = NULL WHERE run_id = ?",
                (now, worker, now + lease, row[0]),
            )
            return str(row[0])

    def renew(self, worker: str, run_id: str | None = None, *, lease: float | None = None
              ) -> int:
        """Extend the lease of the ``running`` runs ``worker`` holds (or only ``run_id``);
        returns how many it still holds."""
        worker = _check_worker(worker)
        lease = self._lease(lease)
        sql = "UPDATE runs SET lease_until = ? WHERE status = 'running' AND worker = ?"
        params: list[Any] = [time.time() + lease, worker]
        if run_id is not None:
            sql += " AND run_id = ?"
            params.append(check_run_id(run_id))
        with self._tx() as conn:
            return conn.execute(sql, params).rowcount

    def holds(self, run_id: str, worker: str) -> bool:
        """Whether ``worker`` holds the claim on ``run_id`` (it is ``running`` under its name)."""
        with self._read() as conn:
            row = self._status(conn, run_id)
        return row["status"] == "running" and row["worker"] == worker

    def stale(self, *, now: float | None = None) -> list[str]:
        """Ids of ``running`` runs whose owner is gone: an expired (or absent) lease, or an
        owner process on this host that no longer exists."""
        now = time.time() if now is None else now
        with self._read() as conn:
            rows = conn.execute(
                "SELECT run_id, worker, lease_until FROM runs WHERE status = 'running' "
                "ORDER BY rowid"
            ).fetchall()
        host = socket.gethostname()
        return [r["run_id"] for r in rows
                if r["lease_until"] is None or r["lease_until"] < now
                or owner_gone(r["worker"], host=host)]

    def reset_unfinished(self, *, force: bool = False) -> int:
        """Put ``running`` runs whose owner is gone (see :meth:`stale`) back to ``pending``;
        ``force=True``: every ``running`` run (only when no other process uses the store).
        Returns how many were put back."""
        if force:
            with self._tx() as conn:
                return conn.execute(
                    "UPDATE runs SET status = 'pending', worker = NULL, lease_until = NULL "
                    "WHERE status = 'running'"
                ).rowcount
        ids = self.stale()
        n = 0
        with self._tx() as conn:  # re-checked inside the lock: a lease renewed meanwhile stays
            for rid in ids:
                row = self._status(conn, rid)
                if row["status"] != "running":
                    continue
                if (row["lease_until"] is not None and row["lease_until"] >= time.time()
                        and not owner_gone(row["worker"])):
                    continue
                n += conn.execute(
                    "UPDATE runs SET status = 'pending', worker = NULL, lease_until = NULL "
                    "WHERE run_id = ? AND status = 'running'", (rid,)).rowcount
        return n

    def release(self, worker: str, run_id: str | None = None) -> int:
        """Put the ``running`` runs held by ``worker`` (and by its pool workers, named
        ``worker/...``; or only ``run_id``) back to ``pending``, e.g. when its collection is
        interrupted or a search ends with runs it dropped unfinished. Files are kept."""
        worker = _check_worker(worker)
        sql = ("UPDATE runs SET status = 'pending', worker = NULL, lease_until = NULL "
               "WHERE status = 'running' AND (worker = ? OR substr(worker, 1, ?) = ?)")
        params: list[Any] = [worker, len(worker) + 1, worker + "/"]
        if run_id is not None:
            sql += " AND run_id = ?"
            params.append(check_run_id(run_id))
        with self._tx() as conn:
            return conn.execute(sql, params).rowcount

    def requeue(self, run_id: str) -> None:
        """Put a ``failed`` or ``diverged`` run back to ``pending``, clearing its results."""
        with self._tx() as conn:
            status = self._status(conn, run_id)["status"]
            if status not in ("failed", "diverged"):
                raise ValueError(
                    f"run {run_id} is {status!r}; only failed or diverged runs requeue"
                )
            conn.execute(f"UPDATE runs SET {_REQUEUED} WHERE run_id = ?", (run_id,))

    # -- progress and results --------------------------------------------------------------------

    def update_progress(self, run_id: str, steps: int) -> None:
        """Record ``steps`` mini-batches done for a ``running`` run."""
        steps = check_int("steps", steps, minimum=0)
        with self._tx() as conn:
            status = self._status(conn, run_id)["status"]
            if status != "running":
                raise ValueError(
                    f"run {run_id} is {status!r}; progress is recorded for running runs"
                )
            conn.execute("UPDATE runs SET steps_done = ? WHERE run_id = ?", (steps, run_id))

    def _finish(
        self,
        run_id: str,
        status: str,
        *,
        metrics: Mapping[str, Any] | None = None,
        error: str | None = None,
        label: float | None = None,
        label_name: str | None = None,
        steps: int | None = None,
        wall_seconds: float | None = None,
        worker: str | None = None,
        arrays: Mapping[str, Mapping[str, np.ndarray]] | None = None,
        checkpoint: Mapping[str, Any] | None = None,
        checkpoint_extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Move a run to a final ``status``, validating everything first.

        With ``worker``, the run must be ``running`` under that name (else ClaimLostError);
        without, ``pending`` or ``running``. ``arrays`` (name -> arrays) and ``checkpoint`` are
        written to a staging folder first and moved into the run's folder inside the same
        transaction that marks it finished, so a finished run's files are never rewritten.
        """
        metrics_json, typed = _check_metrics(metrics) if metrics is not None else (None, {})
        label = check_real("label", label, allow_none=True)
        if label_name is not None and not isinstance(label_name, str):
            raise ValueError(f"label_name must be a string or None, got {label_name!r}")
        steps = check_int("steps", steps, minimum=0, allow_none=True)
        wall_seconds = check_real("wall_seconds", wall_seconds, allow_none=True)
        if wall_seconds is not None and wall_seconds < 0:
            raise ValueError(f"wall_seconds must be >= 0, got {wall_seconds!r}")
        if worker is not None:
            worker = _check_worker(worker)
        checked = {}
        for name, group in (arrays or {}).items():
            check_file_name(name, "name")
            checked[name] = check_arrays(group)
        with self._read() as conn:  # refuse early, before writing any file
            self._check_finishable(self._status(conn, run_id), run_id, status, worker)
        stage = self.run_dir(run_id) / f".stage-{uuid.uuid4().hex}"
        try:
            staged = self._stage(stage, run_id, checked, checkpoint, checkpoint_extra)
            now = time.time()
            with self._tx() as conn:
                row = self._status(conn, run_id)
                self._check_finishable(row, run_id, status, worker)
                if wall_seconds is None and row["started"] is not None:
                    wall_seconds = max(0.0, now - row["started"])
                for src in staged:
                    os.replace(src, self.run_dir(run_id) / src.name)
                files = self._file_names(run_id)
                conn.execute(
                    "UPDATE runs SET status = ?, finished = ?, wall_seconds = ?, error = ?, "
                    "metrics = ?, final_train_loss = ?, final_train_acc = ?, final_val_acc = ?, "
                    "final_test_acc = ?, steps_done = COALESCE(?, steps_done), "
                    "label = COALESCE(?, label), label_name = COALESCE(?, label_name), "
                    "lease_until = NULL, files = ? WHERE run_id = ?",
                    (
                        status,
                        now,
                        wall_seconds,
                        error,
                        metrics_json,
                        *(typed.get(c) for c in METRIC_COLUMNS.values()),
                        steps,
                        label,
                        label_name,
                        json.dumps(files),
                        run_id,
                    ),
                )
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def _file_names(self, run_id: str) -> list[str]:
        """The run's files (``*.npz`` and the checkpoint), as recorded when it finishes."""
        folder = self.run_dir(run_id)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_file()
                      and not p.name.startswith(".")
                      and (p.suffix == ".npz" or p.name == CHECKPOINT_NAME))

    @staticmethod
    def _check_finishable(row: sqlite3.Row, run_id: str, status: str, worker: str | None) -> None:
        """Raise unless a run in ``row`` may be marked ``status`` by ``worker``."""
        if row["status"] in _FINAL:
            raise ClaimLostError(
                f"run {run_id} is already {row['status']!r}; only pending or running runs can "
                f"be marked {status} (requeue it first)"
            )
        if worker is not None and (row["status"] != "running" or row["worker"] != worker):
            holder = f"held by {row['worker']!r}" if row["status"] == "running" else "pending"
            raise ClaimLostError(
                f"run {run_id} is no longer held by {worker!r} (it is {holder}; its lease "
                f"expired and it was requeued): {status} result not written"
            )

    def _stage(self, stage: Path, run_id: str, arrays: Mapping[str, dict[str, np.ndarray]],
               checkpoint: Mapping[str, Any] | None, extra: Mapping[str, Any] | None
               ) -> list[Path]:
        """Write a run's final files into ``stage``; returns their paths."""
        out: list[Path] = []
        for name, group in arrays.items():
            path = stage / f"{name}.npz"
            write_npz(path, group)
            out.append(path)
        if checkpoint is not None:
            out.append(self._write_checkpoint(stage / CHECKPOINT_NAME, run_id, checkpoint, extra))
        return out

    def mark_done(
        self,
        run_id: str,
        metrics: Mapping[str, Any],
        label: float | None = None,
        label_name: str | None = None,
        *,
        steps: int | None = None,
        wall_seconds: float | None = None,
        worker: str | None = None,
        arrays: Mapping[str, Mapping[str, np.ndarray]] | None = None,
        checkpoint: Mapping[str, Any] | None = None,
        checkpoint_extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a finished run: final ``metrics`` (``train_loss``/``train_acc``/``val_acc``/
        ``test_acc`` also go to typed columns) and optionally its benchmark ``label``.

        ``worker``: the claim's owner, checked (a lost claim raises ClaimLostError and writes
        nothing); ``arrays``/``checkpoint``: final files written with the status (see
        :meth:`_finish`)."""
        self._finish(
            run_id,
            "done",
            metrics=metrics,
            label=label,
            label_name=label_name,
            steps=steps,
            wall_seconds=wall_seconds,
            worker=worker,
            arrays=arrays,
            checkpoint=checkpoint,
            checkpoint_extra=checkpoint_extra,
        )

    def mark_diverged(
        self,
        run_id: str,
        metrics: Mapping[str, Any],
        *,
        steps: int | None = None,
        wall_seconds: float | None = None,
        worker: str | None = None,
        arrays: Mapping[str, Mapping[str, np.ndarray]] | None = None,
        checkpoint: Mapping[str, Any] | None = None,
        checkpoint_extra: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Record a run whose training diverged; NaN/inf metrics are kept, ``error`` says why."""
        self._finish(run_id, "diverged", metrics=metrics, steps=steps, wall_seconds=wall_seconds,
                     worker=worker, arrays=arrays, checkpoint=checkpoint,
                     checkpoint_extra=checkpoint_extra, error=error)

    def mark_failed(self, run_id: str, error: str | BaseException, *,
                    worker: str | None = None) -> None:
        """Record a run that raised; ``error`` is a message or the exception (traceback kept)."""
        if isinstance(error, BaseException):
            error = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        if not isinstance(error, str) or not error:
            raise ValueError(f"error must be a non-empty message or an exception, got {error!r}")
        self._finish(run_id, "failed", error=error, worker=worker)

    # -- queries ---------------------------------------------------------------------------------

    @staticmethod
    def _filters(
        status: str | Iterable[str] | None, space: str | None, dataset: str | None
    ) -> tuple[list[str], list[Any]]:
        """SQL conditions and their parameters for the common filters (validated)."""
        clauses: list[str] = []
        params: list[Any] = []
        statuses = check_statuses(status)
        if statuses is not None:
            clauses.append(f"status IN ({', '.join('?' * len(statuses))})")
            params += statuses
        if space is not None:
            clauses.append("space = ?")
            params.append(check_name(space, "space"))
        if dataset is not None:
            clauses.append("dataset = ?")
            params.append(check_name(dataset, "dataset"))
        return clauses, params

    def runs(
        self,
        status: str | Iterable[str] | None = None,
        space: str | None = None,
        dataset: str | None = None,
    ) -> pd.DataFrame:
        """Runs in insertion order, filtered; ``config.*``/``metrics.*`` columns hold the JSON."""
        clauses, params = self._filters(status, space, dataset)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        with self._read() as conn:
            rows = conn.execute(f"SELECT * FROM runs{where} ORDER BY rowid", params).fetchall()
        return _frame(rows)

    def pending(self, space: str | None = None, dataset: str | None = None) -> pd.DataFrame:
        """The ``pending`` runs (see :meth:`runs`)."""
        return self.runs("pending", space=space, dataset=dataset)

    def counts(self) -> dict[str, int]:
        """Number of runs per status (every status present, zeros included)."""
        with self._read() as conn:
            rows = conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall()
        return {s: 0 for s in RUN_STATUSES} | {r[0]: int(r[1]) for r in rows}

    def get(self, run_id: str) -> dict[str, Any]:
        """One run's row as a dict (``config``/``metrics`` parsed; times as epoch seconds)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT * FROM runs WHERE run_id = ?", (check_run_id(run_id),)
            ).fetchone()
        if row is None:
            raise UnknownRunError(f"no run {run_id!r} in {self.root}")
        return _row_dict(row)

    def delete(self, run_id: str) -> None:
        """Remove a run's row, then its files."""
        with self._tx() as conn:
            self._status(conn, run_id)
            conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    # -- per-run files ---------------------------------------------------------------------------

    def _check_writable(self, run_id: str, worker: str | None) -> None:
        """Refuse writing files of a finished run, or of a run ``worker`` does not hold."""
        if self.readonly:
            raise StoreReadOnlyError(f"run store {self.root} was opened read-only")
        with self._read() as conn:
            row = self._status(conn, run_id)
        if row["status"] in _FINAL:
            raise ClaimLostError(f"run {run_id} is {row['status']!r}: its files are final and "
                                 "are not rewritten (requeue it first)")
        if worker is not None and (row["status"] != "running" or row["worker"] != worker):
            raise ClaimLostError(f"run {run_id} is not held by {worker!r}; its files are "
                                 "not written")

    def save_arrays(self, run_id: str, name: str, arrays: Mapping[str, np.ndarray], *,
                    worker: str | None = None) -> Path:
        """Atomically write ``runs/<run_id>/<name>.npz`` (compressed; object arrays refused) of
        an unfinished run (held by ``worker`` when given). Finished runs' files are final."""
        check_file_name(name, "name")
        checked = check_arrays(arrays)
        self._check_writable(run_id, worker)
        path = self.run_dir(run_id) / f"{name}.npz"
        write_npz(path, checked)
        return path

    def load_arrays(self, run_id: str, name: str) -> dict[str, np.ndarray]:
        """The arrays saved under ``name`` for a run (no pickle)."""
        check_file_name(name, "name")
        self._require(run_id)
        path = self.run_dir(run_id) / f"{name}.npz"
        if not path.is_file():
            raise FileNotFoundError(f"run {run_id} has no arrays {name!r} (no {path})")
        return read_npz(path)

    def array_names(self, run_id: str) -> list[str]:
        """Names of the array files saved for a run."""
        self._require(run_id)
        folder = self.run_dir(run_id)
        return sorted(p.stem for p in folder.glob("*.npz") if not p.name.startswith("."))

    def save_checkpoint(
        self, run_id: str, state_dict: Mapping[str, Any], extra: Mapping[str, Any] | None = None,
        *, worker: str | None = None,
    ) -> Path:
        """Atomically write ``runs/<run_id>/checkpoint.pt`` (``torch.save``) of an unfinished
        run (held by ``worker`` when given).

        The file is re-read with ``weights_only=True`` before it replaces the old one, so a
        checkpoint holding anything that safe loading refuses raises ValueError and is not kept.
        """
        self._check_writable(run_id, worker)
        return self._write_checkpoint(self.run_dir(run_id) / CHECKPOINT_NAME, run_id,
                                      state_dict, extra)

    @staticmethod
    def _write_checkpoint(path: Path, run_id: str, state_dict: Mapping[str, Any],
                          extra: Mapping[str, Any] | None) -> Path:
        """Write a checkpoint file at ``path`` atomically, checked to load with weights_only."""
        import torch

        if not isinstance(state_dict, Mapping):
            raise ValueError(f"state_dict must be a mapping, got {type(state_dict).__name__}")
        extra = {} if extra is None else extra
        if not isinstance(extra, Mapping):
            raise ValueError(f"extra must be a mapping or None, got {type(extra).__name__}")
        payload = {"state_dict": dict(state_dict), "extra": dict(extra)}

        def write(fh: Any) -> None:
            try:
                torch.save(payload, fh)
                fh.flush()
                fh.seek(0)
                torch.load(fh, map_location="cpu", weights_only=True)
            except OSError:
                raise
            except Exception as err:
                raise ValueError(
                    f"checkpoint for run {run_id} cannot be loaded with weights_only=True "
                    f"(store only tensors, dicts, lists, tuples and plain scalars): {err}"
                ) from err
            fh.seek(0, os.SEEK_END)

        atomic_write(path, write)
        return path

    def has_checkpoint(self, run_id: str) -> bool:
        """Whether a run has a saved checkpoint (to resume it)."""
        self._require(run_id)
        return (self.run_dir(run_id) / CHECKPOINT_NAME).is_file()

    def load_checkpoint(self, run_id: str, map_location: Any = "cpu") -> tuple[dict, dict]:
        """``(state_dict, extra)`` of a run's checkpoint, loaded with ``weights_only=True``."""
        import torch

        self._require(run_id)
        path = self.run_dir(run_id) / CHECKPOINT_NAME
        if not path.is_file():
            raise FileNotFoundError(f"run {run_id} has no checkpoint (no {path})")
        try:
            payload = torch.load(path, map_location=map_location, weights_only=True)
            return dict(payload["state_dict"]), dict(payload["extra"])
        except Exception as err:  # truncated, foreign or unsafe: never retried without safety
            raise StoreFileError(f"checkpoint {path} of run {run_id} cannot be loaded: "
                                 f"{type(err).__name__}: {str(err)[:200]}") from err

    def load_features(
        self, run_ids: Sequence[str], name: str = "snapshots", *, fill: float = math.nan
    ) -> FeatureSet:
        """Arrays ``name`` of several runs stacked on a leading run axis, padded to the max shape.

        Runs may differ in any axis length (e.g. number of snapshots); ``FeatureSet.shapes`` keeps
        each run's true shape and ``FeatureSet.n_snapshots`` the per-run snapshot count.
        """
        if isinstance(run_ids, str):
            raise ValueError("run_ids must be a sequence of run ids, not a single string")
        ids = [check_run_id(r) for r in run_ids]
        if not ids:
            raise ValueError("run_ids is empty; give at least one run id")
        dup = sorted(r for r, k in Counter(ids).items() if k > 1)
        if dup:
            raise ValueError(f"run_ids lists runs more than once: {dup}")
        check_file_name(name, "name")
        fill = check_real("fill", fill, finite=False)
        rows: dict[str, sqlite3.Row] = {}
        with self._read() as conn:
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i : i + _CHUNK]
                for row in conn.execute(
                    f"SELECT * FROM runs WHERE run_id IN ({', '.join('?' * len(chunk))})", chunk
                ):
                    rows[row["run_id"]] = row
        missing = [r for r in ids if r not in rows]
        if missing:
            raise UnknownRunError(
                f"no runs {missing[:5]}{' ...' if len(missing) > 5 else ''} in {self.root}"
            )
        per_run = []
        for rid in ids:
            path = self.run_dir(rid) / f"{name}.npz"
            if not path.is_file():
                raise FileNotFoundError(f"run {rid} has no arrays {name!r} (no {path})")
            per_run.append(read_npz(path))
        return stack_features(ids, per_run, _frame([rows[r] for r in ids]), fill)

    # -- integrity -------------------------------------------------------------------------------

    def verify(self, run_ids: Sequence[str] | None = None, *, deep: bool = True,
               repair: bool = False) -> pd.DataFrame:
        """Finished runs (done/diverged) whose files are missing or unreadable.

        Every file recorded when the run finished must exist and read back (``deep``: every
        member's checksum and array header; else only the archive's directory); runs stored
        before files were recorded have each of their present files checked. ``repair=True``
        moves such a run's files into ``runs/<id>/.damaged-<time>/`` and requeues it
        (``pending``), so the next collection retrains it. Returns one row per damaged run:
        ``run_id``, ``status``, ``problem`` (and ``repaired``).
        """
        import pandas as pd

        wanted = None if run_ids is None else {check_run_id(r) for r in run_ids}
        with self._read() as conn:
            rows = conn.execute(
                "SELECT run_id, status, files FROM runs WHERE status IN ('done', 'diverged') "
                "ORDER BY rowid").fetchall()
        found = []
        for row in rows:
            rid = row["run_id"]
            if wanted is not None and rid not in wanted:
                continue
            problem = self._file_problem(rid, row["files"], deep)
            if problem is not None:
                found.append({"run_id": rid, "status": row["status"], "problem": problem,
                              "repaired": False})
        if repair:
            for item in found:
                self._quarantine(item["run_id"])
                item["repaired"] = True
        return pd.DataFrame(found, columns=["run_id", "status", "problem", "repaired"])

    def _file_problem(self, run_id: str, files: str | None, deep: bool) -> str | None:
        """What is wrong with a finished run's files (None: nothing)."""
        folder = self.run_dir(run_id)
        if files is None:  # stored before files were recorded: check what is there
            names = self._file_names(run_id)
        else:
            names = json.loads(files)
            missing = [n for n in names if not (folder / n).is_file()]
            if missing:
                return f"missing {', '.join(missing)}" + ("" if folder.is_dir()
                                                          else " (no run folder)")
        for name in names:
            path = folder / name
            if name == CHECKPOINT_NAME:
                if path.stat().st_size == 0:
                    return f"{name} is empty"
                continue
            if deep:
                problem = check_npz(path)
            else:
                try:
                    with zipfile.ZipFile(path):
                        problem = None
                except (zipfile.BadZipFile, OSError) as err:
                    problem = f"{name}: {err}"
            if problem is not None:
                return problem
        return None

    def _quarantine(self, run_id: str) -> None:
        """Move a damaged finished run's files aside and put it back to ``pending``."""
        folder = self.run_dir(run_id)
        with self._tx() as conn:
            row = self._status(conn, run_id)
            if row["status"] not in ("done", "diverged"):
                return
            if folder.is_dir():
                aside = folder / f".damaged-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
                aside.mkdir()
                for path in folder.iterdir():
                    if path.is_file() and not path.name.startswith("."):
                        os.replace(path, aside / path.name)
            conn.execute(f"UPDATE runs SET {_REQUEUED}, steps_done = 0 WHERE run_id = ?",
                         (run_id,))


class Heartbeat:
    """Renews the leases of the runs ``worker`` holds every ``interval`` seconds (default a fifth
    of the store's lease) in a daemon thread, while the context is open."""

    def __init__(self, store: RunStore, worker: str, *, interval: float | None = None) -> None:
        self.store = store
        self.worker = _check_worker(worker)
        interval = store.lease / 5 if interval is None else check_real("interval", interval)
        if interval <= 0:
            raise ValueError(f"interval must be positive seconds, got {interval!r}")
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.store.renew(self.worker)
            except Exception as err:  # a busy index: the next beat retries, the lease has slack
                warnings.warn(f"lease renewal for {self.worker} failed: {err}", stacklevel=1)

    def __enter__(self) -> Heartbeat:
        """Start renewing."""
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat {self.worker}",
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop renewing."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 5)
