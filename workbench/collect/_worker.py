"""Executing one stored run request: build the cell, train it with snapshots, store the results.

Training and storing are separate steps: :func:`train_run` needs only the run's row and returns
a :class:`RunOutcome` (arrays, metrics, optional checkpoint) without touching any store, so it
can run in another process or on another machine (the Ray backend); :func:`record_outcome`
writes an outcome into the store. :func:`execute_run` does both, in-process.
"""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.data import DataCache
from workbench.store import ClaimLostError, RunStore
from workbench.training import Callback, TrainConfig, build_trainer


@dataclass
class RunOutcome:
    """What training one run produced, ready to be stored (plain, picklable data).

    ``status`` is ``done``, ``diverged`` or ``failed``; ``arrays`` maps an array-file name
    (``curves``, ``evals``, ``snapshots``) to its arrays; ``checkpoint`` is the trainer's
    ``state_dict`` when one was asked for; ``error`` the traceback of a failed run.
    """

    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    steps: int | None = None
    wall_seconds: float | None = None
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    checkpoint: dict[str, Any] | None = None
    error: str | None = None


def train_run(rec: Mapping[str, Any], *, device: str = "auto", cache: DataCache | None = None,
              checkpoint: bool = False, callbacks: Sequence[Callback] = ()) -> RunOutcome:
    """Train the run described by the store row ``rec`` (space, cell, dataset, config) and
    return its outcome; touches no store. Its splits come from ``cache`` (None: this process's
    :func:`~workbench.data.process_cache`), its trainer from
    :func:`~workbench.training.build_trainer`.

    Any exception becomes a ``failed`` outcome holding the traceback (never raised), so one bad
    architecture never stops a collection; a non-finite loss gives ``diverged``, keeping the
    snapshots recorded so far.
    """
    try:
        conf = rec["config"]
        cfg = TrainConfig.from_dict({**conf["train"], "device": device})
        trainer = build_trainer(rec["space"], rec["cell"], cfg, dataset=rec["dataset"],
                                data=conf.get("data", {}), model=conf.get("model", {}),
                                cache=cache, callbacks=callbacks)
        result = trainer.run()
        diverged = result.status == "diverged"
        return RunOutcome(
            status="diverged" if diverged else "done",
            metrics=dict(result.metrics), steps=result.steps,
            wall_seconds=result.wall_seconds, arrays=result.arrays(),
            checkpoint=trainer.state_dict() if checkpoint else None,
            error=result.reason if diverged else None)
    except Exception as exc:  # the run's failure, reported rather than raised
        return RunOutcome(status="failed", error="".join(
            traceback.format_exception(type(exc), exc, exc.__traceback__)))


def record_outcome(store: RunStore, run_id: str, outcome: RunOutcome, *,
                   worker: str | None = None) -> str:
    """Write ``outcome`` into ``store`` as run ``run_id`` (arrays, checkpoint and final status
    in one step: the files land only if the status does); returns the status.

    With ``worker``, the claim is checked: a run this worker no longer holds (its lease expired
    and another process took it over, or it already finished) is left alone, with a warning,
    and ``"lost"`` is returned. Other refusals by the store raise.
    """
    try:
        if outcome.status == "failed":
            store.mark_failed(run_id, outcome.error or "training failed (no traceback)",
                              worker=worker)
            return "failed"
        files: dict[str, Any] = {"arrays": outcome.arrays, "checkpoint": outcome.checkpoint,
                                 "worker": worker, "steps": outcome.steps,
                                 "wall_seconds": outcome.wall_seconds}
        if outcome.status == "diverged":
            store.mark_diverged(run_id, outcome.metrics, error=outcome.error, **files)
        else:
            store.mark_done(run_id, outcome.metrics, **files)
        return outcome.status
    except ClaimLostError as err:
        if worker is None:
            raise
        warnings.warn(f"{err}; this process's result is dropped", stacklevel=2)
        return "lost"


def execute_run(store: RunStore, run_id: str, *, device: str = "auto",
                cache: DataCache | None = None, checkpoint: bool = False,
                callbacks: Sequence[Callback] = (), worker: str | None = None) -> str:
    """Train the claimed run ``run_id`` (held by ``worker``: checked when it is recorded, see
    :func:`record_outcome`) and record its outcome; returns the final status.

    Any exception marks the run ``failed`` with the traceback (and is not re-raised), so one bad
    architecture never stops a collection; a non-finite loss marks it ``diverged``, keeping the
    snapshots recorded so far.
    """
    try:
        outcome = train_run(store.get(run_id), device=device, cache=cache,
                            checkpoint=checkpoint, callbacks=callbacks)
        return record_outcome(store, run_id, outcome, worker=worker)
    except ClaimLostError:
        raise
    except Exception as exc:  # recorded as the run's failure, never lost
        try:
            store.mark_failed(run_id, exc, worker=worker)
        except ClaimLostError as err:
            warnings.warn(f"{err}; this process's result is dropped", stacklevel=2)
            return "lost"
        return "failed"
