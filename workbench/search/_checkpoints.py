"""Where a training backend keeps its runs' trainer states: a folder (one file per evaluation)
or a run store (one run per cell, its latest state, curves and snapshots), chosen once.

States are written on the driver and read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from workbench._io import atomic_write
from workbench.features import Snapshots
from workbench.search._base import Evaluation
from workbench.store import ClaimLostError, RunRequest, RunStore, default_worker
from workbench.training import TrainResult

#: Where an evaluation's state went: ``{"checkpoint": path or None, "run_id": id or None}``.
Where = dict[str, Any]
NOWHERE: Where = {"checkpoint": None, "run_id": None}


class Checkpoints(ABC):
    """A training backend's checkpoint keeper: saves each trained state, finds the state a new
    evaluation can continue, and loads the state of an earlier :class:`Evaluation`."""

    @abstractmethod
    def save(self, cell: Any, cell_id: str, state: dict[str, Any], result: TrainResult
             ) -> Where:
        """Keep ``state`` (the trainer after ``result``); where it went."""

    @abstractmethod
    def furthest(self, cell: Any, cell_id: str, steps: int, previous: Evaluation | None
                 ) -> tuple[dict[str, Any] | None, bool]:
        """(the furthest kept state of ``cell``'s run at or before ``steps``, or None: train
        from scratch; whether the run to ``steps`` may be kept here afterwards)."""

    def stored(self, cell: Any, cell_id: str, steps: int) -> tuple[TrainResult, Where] | None:
        """The run of ``cell`` as it was at ``steps`` and where its state is, when kept here
        with a held-out evaluation at that step (None: not known, train it)."""
        return None

    def load(self, previous: Evaluation) -> dict[str, Any]:
        """The trainer state saved by the evaluation ``previous`` (ValueError naming what is
        missing: no checkpoint, a gone file, a state at another step)."""
        steps = previous.info.get("steps")
        if steps is None or not (previous.info.get("checkpoint") or previous.info.get("run_id")):
            raise ValueError(f"cannot continue {previous.cell_id!r}: the evaluation has no "
                             "checkpoint (was it made by a TrainingBackend?)")
        if previous.info.get("run_id"):
            state = self._load_run(previous.cell_id, str(previous.info["run_id"]))
        else:
            path = Path(previous.info["checkpoint"])
            if not path.is_file():
                raise ValueError(f"cannot continue {previous.cell_id!r}: checkpoint {path} "
                                 "is gone")
            state = torch.load(path, map_location="cpu", weights_only=True)
        if int(state["step"]) != int(steps):
            raise ValueError(f"checkpoint of {previous.cell_id!r} is at mini-batch "
                             f"{state['step']}, the evaluation to continue at {steps}")
        return state

    def _load_run(self, cell_id: str, run_id: str) -> dict[str, Any]:
        """The latest state of stored run ``run_id`` (only a store has runs)."""
        raise ValueError(f"cannot continue {cell_id!r}: its checkpoint is in a run store "
                         f"(run {run_id!r}) and this backend has none")

    def close(self) -> None:
        """Release what this keeper holds (a temporary folder); nothing by default."""
        return None


class FolderCheckpoints(Checkpoints):
    """Every evaluation's state in its own file ``<cell key>-<steps>.pt`` of ``folder`` (None:
    a temporary folder, removed by :meth:`close` or when this object is garbage collected)."""

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if folder is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="workbench-search-")
            folder = self._tmp.name
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._saved: dict[str, dict[int, Path]] = {}  # cell id -> step -> file saved here

    def __repr__(self) -> str:
        kind = "temporary " if self._tmp is not None else ""
        return f"FolderCheckpoints({kind}{str(self.folder)!r})"

    def path(self, cell_id: str, steps: int) -> Path:
        """The file of ``cell_id``'s state after ``steps`` mini-batches."""
        key = hashlib.sha1(cell_id.encode()).hexdigest()[:20]
        return self.folder / f"{key}-{steps}.pt"

    def save(self, cell: Any, cell_id: str, state: dict[str, Any], result: TrainResult
             ) -> Where:
        step = int(state["step"])
        path = self.path(cell_id, step)
        atomic_write(path, lambda fh: torch.save(state, fh))
        self._saved.setdefault(cell_id, {})[step] = path
        return {"checkpoint": str(path), "run_id": None}

    def furthest(self, cell: Any, cell_id: str, steps: int, previous: Evaluation | None
                 ) -> tuple[dict[str, Any] | None, bool]:
        """The furthest state saved here at or before ``steps`` whose file is still there, or
        that of ``previous`` when it is further."""
        saved = self._saved.get(cell_id, {})
        best = max((n for n, p in saved.items() if n <= steps and p.is_file()), default=None)
        done = -1 if previous is None else int(previous.info.get("steps", -1))
        if previous is not None and (best is None or done > best):
            return self.load(previous), True
        if best is None:
            return None, True
        return torch.load(saved[best], map_location="cpu", weights_only=True), True

    def close(self) -> None:
        """Remove the temporary folder (nothing to do with a folder given)."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


class StoreCheckpoints(Checkpoints):
    """One run per cell in a :class:`~workbench.store.RunStore`: registered (by ``request``)
    and claimed on first use, its latest state, curves, held-out evaluations and snapshots
    rewritten after every evaluation, marked done at ``max_steps`` (or diverged).

    What the store holds answers later requests, across processes and restarts: an evaluation
    at a step with a held-out evaluation is rebuilt from it, and a run is continued from its
    latest state; a longer stored run is never overwritten by a shorter one."""

    def __init__(self, store: RunStore, request: Callable[[Any, str], RunRequest],
                 max_steps: int) -> None:
        if not isinstance(store, RunStore):
            raise ValueError(f"store must be a RunStore, got {store!r}")
        self.store = store
        self.request = request
        self.max_steps = int(max_steps)
        self._run_ids: dict[str, str] = {}
        self._claimed: set[str] = set()

    def __repr__(self) -> str:
        return f"StoreCheckpoints({self.store!r})"

    def close(self) -> None:
        """Hand back the runs this keeper claimed but did not finish (candidates a search
        dropped at a lower rung): ``pending`` again, their checkpoints kept, so the next
        search or collection continues or retrains them instead of finding them ``running``."""
        me = default_worker()
        for rid in sorted(self._claimed):
            try:
                self.store.release(me, rid)
            except Exception:  # closing must not fail: the lease expires on its own
                pass
        self._claimed.clear()

    def run_id(self, cell: Any, cell_id: str) -> str:
        """The store run of ``cell`` (registered and claimed on first use)."""
        if cell_id not in self._run_ids:
            rid = self.store.add_runs([self.request(cell, cell_id)])[0]
            if self.store.claim(rid, default_worker()):
                self._claimed.add(rid)
            self._run_ids[cell_id] = rid
        return self._run_ids[cell_id]

    def _where(self, rid: str) -> Where:
        return {"checkpoint": str(self.store.run_dir(rid) / "checkpoint.pt"), "run_id": rid}

    def save(self, cell: Any, cell_id: str, state: dict[str, Any], result: TrainResult
             ) -> Where:
        step = int(state["step"])
        rid = self.run_id(cell, cell_id)
        if rid not in self._claimed:  # another process holds (or finished) it: leave it alone
            return self._where(rid)
        me, arrays = default_worker(), result.arrays()
        try:
            if result.status == "diverged" or step >= self.max_steps:
                mark = (self.store.mark_diverged if result.status == "diverged"
                        else self.store.mark_done)
                mark(rid, dict(result.metrics), steps=result.steps,
                     wall_seconds=result.wall_seconds, worker=me, arrays=arrays,
                     checkpoint=state, checkpoint_extra={"steps": step})
                self._claimed.discard(rid)
                return self._where(rid)
            self.store.save_checkpoint(rid, state, extra={"steps": step}, worker=me)
            for name, group in arrays.items():
                self.store.save_arrays(rid, name, group, worker=me)
            self.store.update_progress(rid, step)
            self.store.renew(me, rid)  # still training it: keep the claim
        except ClaimLostError:  # its lease ran out and another process took it over
            self._claimed.discard(rid)
        return self._where(rid)

    def furthest(self, cell: Any, cell_id: str, steps: int, previous: Evaluation | None
                 ) -> tuple[dict[str, Any] | None, bool]:
        """The stored run's latest state when it is at or before ``steps``; a longer stored
        run (without a held-out evaluation at ``steps``) means train from scratch and keep the
        shorter run out of the store."""
        rid = self.run_id(cell, cell_id)
        if not self.store.has_checkpoint(rid):
            return None, True
        state, _ = self.store.load_checkpoint(rid)
        if int(state["step"]) <= steps:
            return state, True
        return None, False

    def stored(self, cell: Any, cell_id: str, steps: int) -> tuple[TrainResult, Where] | None:
        rid = self.run_id(cell, cell_id)
        names = self.store.array_names(rid)
        if "evals" not in names:
            return None
        ev = self.store.load_arrays(rid, "evals")
        hit = np.flatnonzero(np.asarray(ev["step"]) == steps)
        if hit.size == 0 or "wall_seconds" not in ev:
            return None
        i = int(hit[-1])
        evals = pd.DataFrame({k: np.asarray(v)[: i + 1] for k, v in ev.items()})
        curves = pd.DataFrame(self.store.load_arrays(rid, "curves"))
        curves = curves[curves["step"] <= steps].reset_index(drop=True)
        snaps = None
        if "snapshots" in names:
            snaps = Snapshots.from_arrays(self.store.load_arrays(rid, "snapshots")
                                          ).truncate(steps)
        metrics = {"steps": float(steps), "val_loss": float(evals["val_loss"].iloc[-1]),
                   "val_acc": float(evals["val_acc"].iloc[-1])}
        if len(curves):
            metrics["train_loss"] = float(curves["train_loss"].iloc[-1])
            metrics["train_acc"] = float(curves["train_acc"].iloc[-1])
        result = TrainResult(status="done" if steps >= self.max_steps else "stopped",
                             steps=steps, total_steps=self.max_steps,
                             wall_seconds=float(evals["wall_seconds"].iloc[-1]), curves=curves,
                             evals=evals, snapshots=snaps, metrics=metrics)
        return result, self._where(rid)

    def _load_run(self, cell_id: str, run_id: str) -> dict[str, Any]:
        state, _ = self.store.load_checkpoint(run_id)
        return state
