"""``RunStore``: a crash-safe, multi-process index of training runs plus their per-run files."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import sqlite3
import time
import traceback
import uuid
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench._checks import check_int, check_real
from workbench._io import atomic_write
from workbench.store._features import FeatureSet, stack_features
from workbench.store._files import check_arrays, read_npz, write_npz
from workbench.store._schema import initialise, reading, transaction
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
_TIME_COLUMNS = ("created", "started", "finished")
_CHUNK = 500  # run ids per "IN (...)" query, well under SQLite's variable limit


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
    """Rows as a DataFrame; config/metrics expanded into ``config.*``/``metrics.*`` columns."""
    import pandas as pd

    dicts = [_row_dict(r) for r in rows]
    base = pd.DataFrame(
        [{k: v for k, v in d.items() if k not in ("config", "metrics")} for d in dicts],
        columns=[c for c in _COLUMNS if c not in ("config", "metrics")],
    )
    for col in _TIME_COLUMNS:
        base[col] = pd.to_datetime(base[col].astype("float64"), unit="s", utc=True)
    for col in ("wall_seconds", "label", *METRIC_COLUMNS.values()):
        base[col] = base[col].astype("float64")
    parts = [base]
    for name in ("config", "metrics"):
        values = [d[name] or {} for d in dicts]
        if any(values):
            parts.append(pd.json_normalize(values, sep=".").add_prefix(f"{name}."))
    return pd.concat(parts, axis=1) if len(parts) > 1 else base


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
)


class RunStore:
    """Runs of a collection: an SQLite index (``index.sqlite``) plus files in ``runs/<run_id>/``.

    Status model: ``pending -claim-> running -mark_*-> done | diverged | failed``;
    ``reset_unfinished`` puts ``running`` back to ``pending`` after a crash, ``requeue`` retries
    ``failed``/``diverged`` runs. Every call opens its own connection and short transaction, so
    one store object may be shared by forked or spawned processes.
    """

    def __init__(self, root: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        """Open (creating if needed) the store in ``root``; ``timeout``: lock wait in seconds."""
        timeout = check_real("timeout", timeout)
        if timeout <= 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"run store root {self.root} exists and is not a directory")
        (self.root / RUNS_DIR).mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        self.index_path = self.root / INDEX_NAME
        initialise(self.index_path, timeout)

    def __repr__(self) -> str:
        """``RunStore('<root>')``."""
        return f"RunStore({str(self.root)!r})"

    # -- internals -------------------------------------------------------------------------------

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        """A short ``BEGIN IMMEDIATE`` write transaction on a fresh connection."""
        return transaction(self.index_path, self.timeout)

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        """A fresh connection for reads."""
        return reading(self.index_path, self.timeout)

    def _status(self, conn: sqlite3.Connection, run_id: str) -> sqlite3.Row:
        """``status, started`` of a run; UnknownRunError if it is absent."""
        row = conn.execute(
            "SELECT status, started FROM runs WHERE run_id = ?", (check_run_id(run_id),)
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

    def claim(self, run_id: str, worker: str | None = None) -> bool:
        """Atomically mark a ``pending`` run ``running`` for ``worker``; False if not pending."""
        worker = _check_worker(worker)
        with self._tx() as conn:
            self._status(conn, run_id)
            cur = conn.execute(
                "UPDATE runs SET status = 'running', started = ?, finished = NULL, worker = ?, "
                "error = NULL WHERE run_id = ? AND status = 'pending'",
                (time.time(), worker, run_id),
            )
            return cur.rowcount == 1

    def claim_next(
        self, worker: str | None = None, *, space: str | None = None, dataset: str | None = None
    ) -> str | None:
        """Claim the oldest ``pending`` run (optionally of a space/dataset); None if none."""
        worker = _check_worker(worker)
        clauses, params = self._filters("pending", space, dataset)
        with self._tx() as conn:
            row = conn.execute(
                f"SELECT run_id FROM runs WHERE {' AND '.join(clauses)} ORDER BY rowid LIMIT 1",
                params,
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE runs SET status = 'running', started = ?, finished = NULL, worker = ?, "
                "error = NULL WHERE run_id = ?",
                (time.time(), worker, row[0]),
            )
            return str(row[0])

    def reset_unfinished(self) -> int:
        """Turn every ``running`` run back to ``pending`` (after a crash); returns how many."""
        with self._tx() as conn:
            return conn.execute(
                "UPDATE runs SET status = 'pending', worker = NULL WHERE status = 'running'"
            ).rowcount

    def requeue(self, run_id: str) -> None:
        """Put a ``failed`` or ``diverged`` run back to ``pending``, clearing its results."""
        with self._tx() as conn:
            status = self._status(conn, run_id)["status"]
            if status not in ("failed", "diverged"):
                raise ValueError(
                    f"run {run_id} is {status!r}; only failed or diverged runs requeue"
                )
            conn.execute(
                "UPDATE runs SET status = 'pending', error = NULL, started = NULL, "
                "finished = NULL, wall_seconds = NULL, metrics = NULL, final_train_loss = NULL, "
                "final_train_acc = NULL, final_val_acc = NULL, final_test_acc = NULL, "
                "worker = NULL WHERE run_id = ?",
                (run_id,),
            )

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
    ) -> None:
        """Move a pending/running run to a final ``status``, validating everything first."""
        metrics_json, typed = _check_metrics(metrics) if metrics is not None else (None, {})
        label = check_real("label", label, allow_none=True)
        if label_name is not None and not isinstance(label_name, str):
            raise ValueError(f"label_name must be a string or None, got {label_name!r}")
        steps = check_int("steps", steps, minimum=0, allow_none=True)
        wall_seconds = check_real("wall_seconds", wall_seconds, allow_none=True)
        if wall_seconds is not None and wall_seconds < 0:
            raise ValueError(f"wall_seconds must be >= 0, got {wall_seconds!r}")
        now = time.time()
        with self._tx() as conn:
            row = self._status(conn, run_id)
            if row["status"] not in ("pending", "running"):
                raise ValueError(
                    f"run {run_id} is already {row['status']!r}; only pending or running runs can "
                    f"be marked {status} (requeue it first)"
                )
            if wall_seconds is None and row["started"] is not None:
                wall_seconds = max(0.0, now - row["started"])
            conn.execute(
                "UPDATE runs SET status = ?, finished = ?, wall_seconds = ?, error = ?, "
                "metrics = ?, final_train_loss = ?, final_train_acc = ?, final_val_acc = ?, "
                "final_test_acc = ?, steps_done = COALESCE(?, steps_done), "
                "label = COALESCE(?, label), label_name = COALESCE(?, label_name) "
                "WHERE run_id = ?",
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
                    run_id,
                ),
            )

    def mark_done(
        self,
        run_id: str,
        metrics: Mapping[str, Any],
        label: float | None = None,
        label_name: str | None = None,
        *,
        steps: int | None = None,
        wall_seconds: float | None = None,
    ) -> None:
        """Record a finished run: final ``metrics`` (``train_loss``/``train_acc``/``val_acc``/
        ``test_acc`` also go to typed columns) and optionally its benchmark ``label``."""
        self._finish(
            run_id,
            "done",
            metrics=metrics,
            label=label,
            label_name=label_name,
            steps=steps,
            wall_seconds=wall_seconds,
        )

    def mark_diverged(
        self,
        run_id: str,
        metrics: Mapping[str, Any],
        *,
        steps: int | None = None,
        wall_seconds: float | None = None,
    ) -> None:
        """Record a run whose training diverged (non-finite loss); NaN/inf metrics are kept."""
        self._finish(run_id, "diverged", metrics=metrics, steps=steps, wall_seconds=wall_seconds)

    def mark_failed(self, run_id: str, error: str | BaseException) -> None:
        """Record a run that raised; ``error`` is a message or the exception (traceback kept)."""
        if isinstance(error, BaseException):
            error = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        if not isinstance(error, str) or not error:
            raise ValueError(f"error must be a non-empty message or an exception, got {error!r}")
        self._finish(run_id, "failed", error=error)

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

    def save_arrays(self, run_id: str, name: str, arrays: Mapping[str, np.ndarray]) -> Path:
        """Atomically write ``runs/<run_id>/<name>.npz`` (compressed; object arrays refused)."""
        check_file_name(name, "name")
        checked = check_arrays(arrays)
        self._require(run_id)
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
        self, run_id: str, state_dict: Mapping[str, Any], extra: Mapping[str, Any] | None = None
    ) -> Path:
        """Atomically write ``runs/<run_id>/checkpoint.pt`` (``torch.save``).

        The file is re-read with ``weights_only=True`` before it replaces the old one, so a
        checkpoint holding anything that safe loading refuses raises ValueError and is not kept.
        """
        import torch

        if not isinstance(state_dict, Mapping):
            raise ValueError(f"state_dict must be a mapping, got {type(state_dict).__name__}")
        extra = {} if extra is None else extra
        if not isinstance(extra, Mapping):
            raise ValueError(f"extra must be a mapping or None, got {type(extra).__name__}")
        self._require(run_id)
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

        atomic_write(self.run_dir(run_id) / CHECKPOINT_NAME, write)
        return self.run_dir(run_id) / CHECKPOINT_NAME

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
        payload = torch.load(path, map_location=map_location, weights_only=True)
        return payload["state_dict"], payload["extra"]

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
        dup = sorted({r for r in ids if ids.count(r) > 1})
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
