"""Executing one stored run request: build the cell, train it with snapshots, store the results.

Training and storing are separate steps: :func:`train_run` needs only the run's row and returns
a :class:`RunOutcome` (arrays, metrics, optional checkpoint) without touching any store, so it
can run in another process or on another machine (the Ray backend); :func:`record_outcome`
writes an outcome into the store. :func:`execute_run` does both, in-process.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.data import ImageDataset, load_dataset, train_val_split
from workbench.spaces import get_space
from workbench.store import RunStore
from workbench.training import Callback, TrainConfig, Trainer, TrainResult, seeded

NUM_CLASSES = {"cifar10": 10, "cifar100": 100}


@dataclass
class DataCache:
    """Datasets a worker has loaded, keyed by their data config (decode once per process)."""

    _cache: dict[str, tuple[ImageDataset, ImageDataset | None]] = field(default_factory=dict)

    def get(self, dataset: str, data: dict[str, Any]) -> tuple[ImageDataset, ImageDataset | None]:
        """(train, validation) splits for ``dataset`` as described by a run's data config."""
        key = f"{dataset}|{sorted(data.items())}"
        if key not in self._cache:
            full = load_dataset(dataset, "train", root=data.get("root"),
                                source=data.get("source"))
            val_size = int(data.get("val_size", 0))
            if val_size:
                train, val = train_val_split(full, val_size=val_size,
                                             seed=int(data.get("split_seed", 0)))
            else:
                train, val = full, None
            size = data.get("train_size")
            if size is not None and size < len(train):
                train, _ = train_val_split(train, val_size=len(train) - int(size),
                                           seed=int(data.get("split_seed", 0)))
            self._cache[key] = (train, val)
        return self._cache[key]


_PROCESS_CACHE: DataCache | None = None


def process_cache() -> DataCache:
    """The ``DataCache`` of this process (made on first use), shared by everything in it so a
    long-lived worker (a Ray worker, a search backend) decodes each dataset only once."""
    global _PROCESS_CACHE
    if _PROCESS_CACHE is None:
        _PROCESS_CACHE = DataCache()
    return _PROCESS_CACHE


def result_arrays(result: TrainResult) -> dict[str, dict[str, np.ndarray]]:
    """The arrays of a training result as the run store keeps them (name -> arrays)."""
    out = {
        name: {c: frame[c].to_numpy(dtype=np.int64 if c == "step" else np.float64)
               for c in frame.columns}
        for name, frame in (("curves", result.curves), ("evals", result.evals))
    }
    if result.snapshots is not None:
        out["snapshots"] = result.snapshots.to_arrays()
    return out


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
    return its outcome; touches no store.

    Any exception becomes a ``failed`` outcome holding the traceback (never raised), so one bad
    architecture never stops a collection; a non-finite loss gives ``diverged``, keeping the
    snapshots recorded so far.
    """
    try:
        space = get_space(rec["space"])
        cell = space.parse(rec["cell"])
        conf = rec["config"]
        cfg = TrainConfig.from_dict({**conf["train"], "device": device})
        train, val = (cache or DataCache()).get(rec["dataset"], conf.get("data", {}))
        with seeded(cfg.seed):
            model = space.build(cell, num_classes=NUM_CLASSES.get(rec["dataset"], 10),
                                **conf.get("model", {}))
        trainer = Trainer(model, train, cfg, val=val, callbacks=callbacks)
        result = trainer.run()
        return RunOutcome(
            status="diverged" if result.status == "diverged" else "done",
            metrics=dict(result.metrics), steps=result.steps,
            wall_seconds=result.wall_seconds, arrays=result_arrays(result),
            checkpoint=trainer.state_dict() if checkpoint else None)
    except Exception as exc:  # the run's failure, reported rather than raised
        return RunOutcome(status="failed", error="".join(
            traceback.format_exception(type(exc), exc, exc.__traceback__)))


def record_outcome(store: RunStore, run_id: str, outcome: RunOutcome) -> str:
    """Write ``outcome`` into ``store`` as run ``run_id`` (arrays, checkpoint, final status);
    returns the status. Raises if the store refuses it (e.g. the run is already finished)."""
    if outcome.status == "failed":
        store.mark_failed(run_id, outcome.error or "training failed (no traceback)")
        return "failed"
    for name, arrays in outcome.arrays.items():
        store.save_arrays(run_id, name, arrays)
    if outcome.checkpoint is not None:
        store.save_checkpoint(run_id, outcome.checkpoint)
    if outcome.status == "diverged":
        store.mark_diverged(run_id, outcome.metrics, steps=outcome.steps,
                            wall_seconds=outcome.wall_seconds)
    else:
        store.mark_done(run_id, outcome.metrics, steps=outcome.steps,
                        wall_seconds=outcome.wall_seconds)
    return outcome.status


def execute_run(store: RunStore, run_id: str, *, device: str = "auto",
                cache: DataCache | None = None, checkpoint: bool = False,
                callbacks: Sequence[Callback] = ()) -> str:
    """Train the claimed run ``run_id`` and record its outcome; returns the final status.

    Any exception marks the run ``failed`` with the traceback (and is not re-raised), so one bad
    architecture never stops a collection; a non-finite loss marks it ``diverged``, keeping the
    snapshots recorded so far.
    """
    try:
        outcome = train_run(store.get(run_id), device=device, cache=cache,
                            checkpoint=checkpoint, callbacks=callbacks)
        return record_outcome(store, run_id, outcome)
    except Exception as exc:  # recorded as the run's failure, never lost
        store.mark_failed(run_id, exc)
        return "failed"
