"""The training backend: evaluate cells by really training them with the training engine.

A promoted candidate (Successive Halving, Hyperband) continues its run from its checkpoint
instead of restarting: the trainer's exact state is saved after every evaluation (in a folder,
or in a :class:`~workbench.store.RunStore`) and loaded with ``torch.load(weights_only=True)``
when the search asks for a larger budget, so its mini-batch count accumulates and the promotion
is charged only the extra mini-batches' wall seconds. The learning-rate schedule is planned over
the backend's *largest* budget and every evaluation trains ``until`` its own budget, so a run
continued from budget b to 3b is the same run as one trained straight to 3b.

:class:`RayTrainingBackend` trains the same jobs as Ray tasks, a whole batch (an SH rung) at
once: the driver ships each job's checkpoint state with its task, gets the new state back and
saves it as the sequential backend does, so nothing assumes a shared filesystem.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from workbench._device import resolve_device
from workbench.benchmarks import TabularBenchmark, get_benchmark
from workbench.features import FEATURE_SCHEMA_VERSION, Snapshots
from workbench.search._backend import TabularBackend
from workbench.search._base import _EPS, Backend, Evaluation, check_budget
from workbench.spaces import RngLike, SearchSpace, as_rng, get_space
from workbench.store import RunRequest, RunStore, default_worker
from workbench.training import TrainConfig, Trainer, TrainResult, model_kwargs, seeded

UNITS = ("steps", "epochs")
CHARGES = ("seconds", "steps")
POOLS = ("table", "space")
TRAINABLE = ("cifar10", "cifar100")


def _data_cache() -> Any:
    """One ``DataCache`` per process, so several backends decode a dataset only once."""
    from workbench.collect._worker import process_cache

    return process_cache()


@dataclass
class TrainingJob:
    """One evaluation prepared on the driver: the cell, its mini-batch target and the trainer
    state it continues from (None: a fresh run); everything a worker needs besides the recipe."""

    cell: Any
    cell_id: str
    budget: float
    steps: int
    state: dict[str, Any] | None
    previous: Evaluation | None
    save: bool = True  # False: a shorter run beside a longer stored one (kept out of the store)
    reused: Evaluation | None = None  # already known: nothing to train


@dataclass
class TrainingOutput:
    """What training a job produced: the trainer's state afterwards (CPU tensors when it came
    from a Ray worker), its result, and its wall seconds before this call (to charge only the
    extra mini-batches)."""

    state: dict[str, Any]
    result: TrainResult
    wall_before: float


def build_trainer(space: SearchSpace, cell: Any, model_kwargs: dict[str, Any],
                  config: TrainConfig, train: Any, val: Any, progress: bool = False) -> Trainer:
    """A fresh seeded :class:`Trainer` for ``cell`` (the same weights wherever it is built)."""
    with seeded(config.seed):
        model = space.build(cell, num_classes=train.num_classes, **model_kwargs)
    return Trainer(model, train, config, val=val, progress=progress)


def run_job(trainer: Trainer, job: TrainingJob) -> TrainingOutput:
    """Continue ``trainer`` from the job's state (if any) to its mini-batch target."""
    if job.state is not None:
        trainer.load_state_dict(job.state)
    before = trainer.wall_seconds
    result = trainer.run(until=job.steps)
    return TrainingOutput(state=trainer.state_dict(), result=result, wall_before=before)


def _check_size(name: str, value: Any, minimum: int, allow_none: bool = False) -> int | None:
    """An int >= ``minimum`` (or None when allowed); ValueError naming ``name`` otherwise."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        none = " or None" if allow_none else ""
        raise ValueError(f"{name} must be an int >= {minimum}{none}, got {value!r}")
    return int(value)


class TrainingBackend(Backend):
    """Evaluate cells by training: score = held-out accuracy (%) after the budget, cost = the
    wall seconds of the mini-batches trained for this call.

    Budgets are mini-batches (``unit="steps"``) or epochs of the training split
    (``unit="epochs"``, converted with its batches per epoch); a budget is rounded *up* to whole
    mini-batches, ``fidelity`` reports what was run in the same unit. ``max_budget`` fixes the
    length of the learning-rate schedule (``TrainConfig(steps=max)``); ``min_budget`` (default
    max/27, at least one mini-batch) is the default first rung of SH and Hyperband.

    Defaults are sized for a CPU: the ``small`` network preset, 16x16 inputs, the bundled
    CIFAR-10 sample (``source="bundled"``; ``root=`` a CIFAR folder instead, needed for
    CIFAR-100) with 1,000 held-out images, batch 64, snapshots four times per first rung.
    ``config`` replaces the training recipe (its budget is overridden); ``device`` (default:
    the config's, ``"auto"``) is resolved by each trainer when it runs.

    Candidates come from the benchmark table (``pool="table"``: ``final`` is the table's final
    accuracy, for analysis only) or from the whole space (``pool="space"``). ``checkpoints``: a
    folder, a :class:`~workbench.store.RunStore` (runs are registered there, with their curves
    and snapshots, and marked done at the largest budget) or None (a temporary folder removed
    by :meth:`close` or when the backend is garbage collected). In a folder every evaluation
    keeps its own checkpoint (``<cell key>-<steps>.pt``); a store keeps each run's latest.

    ``reuse`` (default True): an evaluation (cell, mini-batches) is trained once per backend and
    answered from what is known afterwards: from memory, and with a store also from the stored
    run (its held-out evaluations, snapshots and latest checkpoint), across processes and
    restarts. Continued training is deterministic, so any request on a cell's trajectory can
    continue the furthest stored state instead of its own ``previous``; several searches on one
    backend (the methods of a benchmark) then share their training. Each evaluation is still
    charged what it would have cost alone: ``charge="seconds"`` the wall seconds of its
    mini-batches on that trajectory, ``charge="steps"`` the mini-batches themselves (exact and
    load-independent, for benchmarks on a busy machine). A held-out evaluation at that step must
    exist for a stored answer; ``config.eval_at`` holding every rung budget makes sure it does.
    """

    slow = True

    def __init__(self, space: str | SearchSpace = "nb201", max_budget: float = 270,
                 min_budget: float | None = None, *, unit: str = "steps",
                 dataset: str = "cifar10", source: str | None = "bundled",
                 root: str | os.PathLike[str] | None = None, train_size: int | None = None,
                 val_size: int = 1000, split_seed: int = 0,
                 model: str | dict[str, Any] = "small", config: TrainConfig | None = None,
                 device: str | None = None, pool: str = "table",
                 checkpoints: str | os.PathLike[str] | RunStore | None = None,
                 progress: bool = False, reuse: bool = True, charge: str = "seconds") -> None:
        self.space: SearchSpace = get_space(space) if isinstance(space, str) else space
        if not isinstance(self.space, SearchSpace):
            raise ValueError(f"space must be a space name or SearchSpace, got {space!r}")
        if unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
        if dataset not in TRAINABLE:
            raise ValueError(f"dataset must be one of {TRAINABLE} (what can be trained here), "
                             f"got {dataset!r}")
        if dataset != "cifar10" and root is None:
            raise ValueError(f"dataset {dataset!r} has no bundled copy: pass root= (its "
                             "official python folder)")
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        if charge not in CHARGES:
            raise ValueError(f"charge must be one of {CHARGES}, got {charge!r}")
        if not isinstance(reuse, bool):
            raise ValueError(f"reuse must be True or False, got {reuse!r}")
        if config is not None and not isinstance(config, TrainConfig):
            raise ValueError(f"config must be a TrainConfig or None, got {config!r}")
        if device is not None:
            resolve_device(device)  # names an unknown device now; each run resolves it again
        if not (checkpoints is None or isinstance(checkpoints, (str, os.PathLike, RunStore))):
            raise ValueError(f"checkpoints must be a folder, a RunStore or None, "
                             f"got {checkpoints!r}")
        self.unit = unit
        self.dataset = dataset
        self.pool = pool
        self.progress = bool(progress)
        self.reuse = reuse
        self.charge = charge
        self.budget_unit = "mini-batches" if unit == "steps" else "epochs"
        self.cost_unit = "mini-batches" if charge == "steps" else "s"
        self.model_kwargs = model_kwargs(self.space.name, model)  # names a bad preset
        self.model_preset = model if isinstance(model, str) else None
        self._max = check_budget("max_budget", max_budget)
        if min_budget is not None:
            check_budget("min_budget", min_budget)
            if min_budget > max_budget:
                raise ValueError(f"min_budget {min_budget!r} must not exceed max_budget "
                                 f"{max_budget!r}")
        self.data = {"val_size": _check_size("val_size", val_size, 1),
                     "split_seed": _check_size("split_seed", split_seed, 0),
                     "train_size": _check_size("train_size", train_size, 1, allow_none=True),
                     "source": source if root is None else None,
                     "root": None if root is None else str(root)}
        base = config or TrainConfig(steps=1, resize=16)
        self._batch_size = base.batch_size
        if base.batch_size > (train_size or base.batch_size):
            raise ValueError(f"train_size {train_size!r} is smaller than one batch of "
                             f"{base.batch_size}")
        self._batches_per_epoch: int | None = None
        self.max_steps = self.steps(max_budget)
        self._min = (float(min_budget) if min_budget is not None
                     else max(self._max / 27, self._unit_of_one_step()))
        changes: dict[str, Any] = {"steps": self.max_steps}
        if device is not None:
            changes["device"] = device
        if config is None:  # about four snapshots in the first rung
            changes["snapshot_every"] = max(1, self.steps(self._min) // 4)
        self.config = base.replace(**changes)
        self._bench: TabularBenchmark | None = None
        self._table: TabularBackend | None = None
        try:
            self._bench = get_benchmark(self.space.name)
        except ValueError:
            if pool == "table":
                raise ValueError(f"pool='table' needs a benchmark table for space "
                                 f"{self.space.name!r}; use pool='space'") from None
        if pool == "table":
            label = dataset if dataset in self._bench.datasets else self._bench.datasets[0]
            self._table = TabularBackend(self._bench, label)
        self._label = (dataset if self._bench is not None and dataset in self._bench.datasets
                       else None)
        self._store = checkpoints if isinstance(checkpoints, RunStore) else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if checkpoints is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="workbench-search-")
            self.checkpoint_dir: Path | None = Path(self._tmp.name)
        elif self._store is None:
            self.checkpoint_dir = Path(checkpoints)  # type: ignore[arg-type]
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        else:
            self.checkpoint_dir = None
        self._run_ids: dict[str, str] = {}
        self._claimed: set[str] = set()
        self._memo: dict[tuple[str, int], Evaluation] = {}  # (cell id, steps) -> evaluation
        self.trained_steps = 0  # mini-batches this backend really trained (not reused)

    # -- budgets --------------------------------------------------------------------------------
    @property
    def batches_per_epoch(self) -> int:
        """Mini-batches in one epoch of the training split (loads the data on first use)."""
        if self._batches_per_epoch is None:
            train, _ = self.datasets()
            self._batches_per_epoch = max(1, len(train) // self._batch_size)
        return self._batches_per_epoch

    def _unit_of_one_step(self) -> float:
        return 1.0 if self.unit == "steps" else 1.0 / self.batches_per_epoch

    def steps(self, budget: float) -> int:
        """Whole mini-batches for ``budget`` (rounded up; ValueError above the largest budget)."""
        check_budget("budget", budget)
        per = 1.0 if self.unit == "steps" else float(self.batches_per_epoch)
        n = max(1, math.ceil(budget * per * (1 - _EPS)))
        limit = getattr(self, "max_steps", None)
        if limit is not None and n > limit:
            raise ValueError(f"budget {budget!r} {self.unit} exceeds the largest budget "
                             f"{self._max!r} (the schedule is planned over it); allowed: up to "
                             f"{self._max!r}")
        return n

    def fidelity(self, budget: float) -> float:
        """What ``budget`` actually runs, in the backend's unit (whole mini-batches)."""
        n = self.steps(budget)
        return float(n) if self.unit == "steps" else n / self.batches_per_epoch

    @property
    def max_budget(self) -> float:
        return float(self._max)

    @property
    def min_budget(self) -> float:
        return float(self._min)

    def best_final(self) -> float:
        """The table's best final accuracy on this dataset (NaN without a table for it)."""
        if self._label is None:
            return math.nan
        return float(np.nanmax(self._bench.all_accuracies(dataset=self._label).to_numpy()))

    def datasets(self) -> tuple[Any, Any]:
        """(train, held-out) splits used for every run (decoded once per process)."""
        return _data_cache().get(self.dataset, self.data)

    @property
    def recipe(self) -> dict[str, Any]:
        """What a run's snapshots depend on (dynamics rankers check it against a predictor's)."""
        return {"space": self.space.name, "model_preset": self.model_preset,
                "model": dict(self.model_kwargs), "snapshot_every": self.config.snapshot_every,
                "schema_version": FEATURE_SCHEMA_VERSION, "resize": self.config.resize,
                "batch_size": self.config.batch_size, "max_steps": self.max_steps,
                "lr": self.config.lr, "schedule": self.config.schedule,
                "optimizer": self.config.optimizer, "dataset": self.dataset}

    def describe(self) -> pd.DataFrame:
        """The settings a run uses, one row per setting."""
        rows = {"space": self.space.name, "dataset": self.dataset, "unit": self.unit,
                "min_budget": self.min_budget, "max_budget": self.max_budget,
                "max_steps": self.max_steps, "model": self.model_kwargs, "pool": self.pool,
                "device": self.config.device, "batch_size": self.config.batch_size,
                "resize": self.config.resize, "snapshot_every": self.config.snapshot_every,
                "data": self.data, "checkpoints": self._store or self.checkpoint_dir,
                "reuse": self.reuse, "charge": self.charge}
        return pd.DataFrame({"setting": list(rows), "value": [str(v) for v in rows.values()]})

    def __repr__(self) -> str:
        return (f"TrainingBackend({self.space.name!r}, dataset={self.dataset!r}, "
                f"budgets {self.min_budget:g}..{self.max_budget:g} {self.unit}, "
                f"model={self.model_kwargs}, pool={self.pool!r})")

    # -- cells --------------------------------------------------------------------------------
    def cell_id(self, cell: Any) -> str:
        if self._table is not None:
            return self._table.cell_id(cell)
        return str(self.space.cell_id(self.resolve(cell)))

    def resolve(self, cell: Any) -> Any:
        """The cell object for a cell or cell string (or table id with ``pool="table"``)."""
        if self._table is not None:
            return self._table.resolve(cell)
        try:
            obj = self.space.parse(cell) if isinstance(cell, str) else cell
            self.space.format(obj)
            return obj
        except (ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"cannot read cell {cell!r} in {self.space.name}: {exc}") from None

    def contains(self, cell: Any) -> bool:
        """Whether ``cell`` can be trained here (with ``pool="table"``: whether it is in it)."""
        if self._table is not None:
            return self._table.contains(cell)
        try:
            self.cell_id(cell)
        except ValueError:
            return False
        return True

    def format(self, cell: Any) -> str:
        if self._table is not None:
            return self._table.format(cell)
        return self.space.format(self.resolve(cell))

    def sample(self, n: int, rng: RngLike = None, exclude: Collection[str] = ()) -> list[Any]:
        """``n`` distinct cells (table cells with ``pool="table"``) none of whose ids is in
        ``exclude``."""
        if self._table is not None:
            return self._table.sample(n, rng, exclude)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        gen = as_rng(rng)
        taken = {str(e) for e in exclude}
        out: list[Any] = []
        for _ in range(100 * int(n) + 1000):
            if len(out) == n:
                break
            cell = self.space.sample(gen)
            key = str(self.space.cell_id(cell))
            if key not in taken:
                taken.add(key)
                out.append(cell)
        if len(out) < n:
            raise ValueError(f"n={n!r}: could not draw that many new cells from "
                             f"{self.space.name} ({len(out)} found)")
        return out

    def _final(self, cell: Any) -> float:
        if self._label is None:
            return math.nan
        try:
            return float(self._bench.final_accuracy(cell, self._label))
        except (ValueError, LookupError):
            return math.nan

    # -- checkpoints ----------------------------------------------------------------------------
    def _path(self, cell_id: str, steps: int) -> Path:
        key = hashlib.sha1(cell_id.encode()).hexdigest()[:20]
        return self.checkpoint_dir / f"{key}-{steps}.pt"  # type: ignore[operator]

    def _run_id(self, cell: Any, cell_id: str) -> str:
        """The store run of ``cell`` under this recipe (registered and claimed on first use)."""
        if cell_id not in self._run_ids:
            train = self.config.to_dict()
            train.pop("device")
            final = self._final(cell)
            req = RunRequest(space=self.space.name, cell_id=cell_id, dataset=self.dataset,
                             seed=self.config.seed, cell=self.space.format(cell),
                             config={"train": train, "model": self.model_kwargs,
                                     "data": self.data, "search": {"unit": self.unit}},
                             label=final if math.isfinite(final) else None,
                             label_name=(None if not math.isfinite(final)
                                         else f"{self.space.name}:{self._label}:final"))
            rid = self._store.add_runs([req])[0]  # type: ignore[union-attr]
            if self._store.claim(rid, default_worker()):  # type: ignore[union-attr]
                self._claimed.add(rid)
            self._run_ids[cell_id] = rid
        return self._run_ids[cell_id]

    def _save(self, cell: Any, cell_id: str, state: dict[str, Any], result: TrainResult
              ) -> dict[str, Any]:
        """Write the trainer's state (and, in a store, the run's arrays); where it went."""
        step = int(state["step"])
        if self._store is None:
            path = self._path(cell_id, step)
            tmp = path.with_suffix(".tmp")
            torch.save(state, tmp)
            os.replace(tmp, path)
            return {"checkpoint": str(path), "run_id": None}
        from workbench.collect._worker import result_arrays

        rid = self._run_id(cell, cell_id)
        self._store.save_checkpoint(rid, state, extra={"steps": step})
        for name, arrays in result_arrays(result).items():
            self._store.save_arrays(rid, name, arrays)
        if rid in self._claimed:
            if result.status == "diverged":
                self._store.mark_diverged(rid, dict(result.metrics), steps=result.steps,
                                          wall_seconds=result.wall_seconds)
                self._claimed.discard(rid)
            elif step >= self.max_steps:
                self._store.mark_done(rid, dict(result.metrics), steps=result.steps,
                                      wall_seconds=result.wall_seconds)
                self._claimed.discard(rid)
            else:
                self._store.update_progress(rid, step)
        return {"checkpoint": str(self._store.run_dir(rid) / "checkpoint.pt"), "run_id": rid}

    def _load(self, previous: Evaluation) -> dict[str, Any]:
        """The trainer state saved by the evaluation ``previous`` (``weights_only`` load)."""
        steps = previous.info.get("steps")
        if steps is None or not (previous.info.get("checkpoint") or previous.info.get("run_id")):
            raise ValueError(f"cannot continue {previous.cell_id!r}: the evaluation has no "
                             "checkpoint (was it made by a TrainingBackend?)")
        if previous.info.get("run_id"):
            if self._store is None:
                raise ValueError(f"cannot continue {previous.cell_id!r}: its checkpoint is in a "
                                 "run store and this backend has none")
            state, _ = self._store.load_checkpoint(previous.info["run_id"])
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

    def close(self) -> None:
        """Remove the temporary checkpoint folder (nothing to do with a folder or store given)."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> TrainingBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- evaluation -------------------------------------------------------------------------
    def trainer(self, cell: Any) -> Trainer:
        """A fresh :class:`Trainer` for ``cell`` with this backend's data and recipe."""
        train, val = self.datasets()
        return build_trainer(self.space, cell, self.model_kwargs, self.config, train, val,
                             self.progress)

    def evaluate(self, cell: Any, budget: float, previous: Evaluation | None = None
                 ) -> Evaluation:
        """Train ``cell`` to ``budget`` (continuing the checkpoint of ``previous`` when given)
        and score it on the held-out split; NaN score if the run diverged. With ``reuse``, an
        evaluation known already is answered without training (see the class docstring)."""
        job = self._job(cell, budget, previous)
        if job.reused is not None:
            return job.reused
        return self._finish(job, run_job(self.trainer(job.cell), job))

    def _job(self, cell: Any, budget: float, previous: Evaluation | None) -> TrainingJob:
        """Validate one evaluation request; find its answer, or the state it continues from."""
        steps = self.steps(budget)
        cell = self.resolve(cell)
        cid = self.cell_id(cell)
        if previous is not None:
            if previous.cell_id != cid:
                raise ValueError(f"cannot continue the run of {previous.cell_id!r} as {cid!r}")
            if "steps" not in previous.info or "recipe" not in previous.info:
                raise ValueError(f"cannot continue {previous.cell_id!r}: the evaluation has no "
                                 "checkpoint (was it made by a TrainingBackend?)")
            if int(previous.info.get("steps", 0)) > steps:
                raise ValueError(f"cannot continue from {previous.info.get('steps')} to fewer "
                                 f"mini-batches ({steps}, budget {budget!r})")
        job = TrainingJob(cell=cell, cell_id=cid, budget=float(budget), steps=steps,
                          state=None, previous=previous)
        if not self.reuse:
            if previous is not None:
                job.state = self._load(previous)
            return job
        known = self._memo.get((cid, steps))
        if known is None and self._store is not None:
            known = self._stored(cell, cid, steps)
        if known is not None:
            job.reused = self._charged(known, float(budget), previous)
            return job
        if self._store is not None:  # continue the furthest stored state on this trajectory
            rid = self._run_id(cell, cid)
            if self._store.has_checkpoint(rid):
                state, _ = self._store.load_checkpoint(rid)
                if int(state["step"]) <= steps:
                    job.state = state
                else:  # only a longer run is stored and it has no evaluation at ``steps``
                    job.save = False
        else:  # the furthest evaluation in memory with a checkpoint file, else ``previous``
            done = [ev for (c, n), ev in self._memo.items() if c == cid and n <= steps
                    and ev.info.get("checkpoint") and Path(ev.info["checkpoint"]).is_file()]
            start = max(done, key=lambda ev: int(ev.info["steps"]), default=previous)
            if start is not None:
                job.state = self._load(start)
        return job

    def _charge(self, steps: int, wall: float, previous: Evaluation | None) -> tuple[float, float]:
        """(cost of this request, from-scratch cost) of an evaluation at ``steps`` whose run had
        trained ``wall`` seconds by then; only the part after ``previous`` is charged."""
        if self.charge == "steps":
            done = 0 if previous is None else int(previous.info.get("steps", 0))
            return float(steps - done), float(steps)
        before = 0.0 if previous is None else float(previous.full_cost)
        return float(wall) - before, float(wall)

    def _charged(self, known: Evaluation, budget: float, previous: Evaluation | None
                 ) -> Evaluation:
        """A known evaluation as the answer to a new request (its own budget and charge)."""
        steps = int(known.info["steps"])
        wall = float(known.info.get("wall_seconds", known.full_cost))
        cost, full = self._charge(steps, wall, previous)
        return replace(known, budget=budget, fidelity=self.fidelity(budget), cost=cost,
                       full_cost=full, info={**known.info, "reused": True},
                       resumed_from=None if previous is None else previous.fidelity)

    def _stored(self, cell: Any, cid: str, steps: int) -> Evaluation | None:
        """The evaluation at ``steps`` rebuilt from the stored run of ``cell`` (None when the
        store has no held-out evaluation at that step)."""
        rid = self._run_id(cell, cid)
        names = self._store.array_names(rid)  # type: ignore[union-attr]
        if "evals" not in names:
            return None
        ev = self._store.load_arrays(rid, "evals")  # type: ignore[union-attr]
        hit = np.flatnonzero(np.asarray(ev["step"]) == steps)
        if hit.size == 0 or "wall_seconds" not in ev:
            return None
        i = int(hit[-1])
        evals = pd.DataFrame({k: np.asarray(v)[: i + 1] for k, v in ev.items()})
        curves = pd.DataFrame(self._store.load_arrays(rid, "curves"))  # type: ignore[union-attr]
        curves = curves[curves["step"] <= steps].reset_index(drop=True)
        snaps = None
        if "snapshots" in names:
            snaps = Snapshots.from_arrays(
                self._store.load_arrays(rid, "snapshots")).truncate(steps)  # type: ignore
        metrics = {"steps": float(steps), "val_loss": float(evals["val_loss"].iloc[-1]),
                   "val_acc": float(evals["val_acc"].iloc[-1])}
        if len(curves):
            metrics["train_loss"] = float(curves["train_loss"].iloc[-1])
            metrics["train_acc"] = float(curves["train_acc"].iloc[-1])
        wall = float(evals["wall_seconds"].iloc[-1])
        info = {"steps": steps, "status": "done" if steps >= self.max_steps else "stopped",
                "checkpoint": str(self._store.run_dir(rid) / "checkpoint.pt"),  # type: ignore
                "run_id": rid, "curves": curves, "evals": evals, "metrics": metrics,
                "wall_seconds": wall, "recipe": self.recipe}
        known = Evaluation(cell=cell, cell_id=cid, budget=float(steps),
                           fidelity=self.fidelity(steps) if self.unit == "steps" else math.nan,
                           score=metrics["val_acc"], cost=wall, full_cost=wall,
                           final=self._final(cell), info=info, snapshots=snaps)
        self._memo[(cid, steps)] = known
        return known

    def _finish(self, job: TrainingJob, out: TrainingOutput) -> Evaluation:
        """Save a trained job's checkpoint (here, on the driver) and make its Evaluation."""
        result = out.result
        self.trained_steps += result.steps - (0 if job.state is None else int(job.state["step"]))
        where = (self._save(job.cell, job.cell_id, out.state, result) if job.save
                 else {"checkpoint": None, "run_id": None})
        score = (math.nan if result.status == "diverged"
                 else float(result.metrics.get("val_acc", math.nan)))
        info = {"steps": result.steps, "status": result.status, **where,
                "curves": result.curves, "evals": result.evals,
                "metrics": dict(result.metrics), "wall_seconds": result.wall_seconds,
                "recipe": self.recipe}
        previous = job.previous
        cost, full = self._charge(result.steps, result.wall_seconds, previous)
        ev = Evaluation(cell=job.cell, cell_id=job.cell_id, budget=job.budget,
                        fidelity=self.fidelity(job.budget), score=score, cost=cost,
                        full_cost=full, final=self._final(job.cell),
                        resumed_from=None if previous is None else previous.fidelity,
                        info=info, snapshots=result.snapshots)
        if self.reuse and (result.status == "diverged" or result.steps == job.steps):
            self._memo[(job.cell_id, job.steps)] = ev
        return ev


class RayTrainingBackend(TrainingBackend):
    """A :class:`TrainingBackend` whose evaluations train as Ray tasks: the candidates of a
    Successive Halving rung (any batch a search evaluates at once) train in parallel on the
    cluster, with the same results as the sequential backend for the same seeds.

    The driver keeps every checkpoint (its folder or run store, as the sequential backend
    does): a promoted candidate's trainer state is shipped with its task and the new state
    comes back with the result, so a candidate continues wherever it is scheduled and the
    cluster needs no shared filesystem (only ``workbench`` and the data on every node).
    Each task reserves ``num_cpus`` CPUs and ``num_gpus`` GPUs (fractions share a GPU; None:
    one if the cluster has GPUs). A task whose worker dies is retried up to ``max_retries``
    times; then the evaluation raises RuntimeError naming the cell. Ray: an already
    initialised one, else ``ray.init(address=ray_address)`` on first use. Every other argument
    is :class:`TrainingBackend`'s; ``device="auto"`` means the task's reserved GPU, else CPU.
    """

    def __init__(self, *args: Any, ray_address: str | None = None, num_cpus: float = 1,
                 num_gpus: float | None = None, max_retries: int = 3, **kwargs: Any) -> None:
        from workbench.collect._ray import check_resources, import_ray

        check_resources(num_cpus, num_gpus, max_retries)
        import_ray("RayTrainingBackend")
        super().__init__(*args, **kwargs)
        self.ray_address = ray_address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.max_retries = max_retries

    def __repr__(self) -> str:
        return "Ray" + super().__repr__()

    def evaluate(self, cell: Any, budget: float, previous: Evaluation | None = None
                 ) -> Evaluation:
        """:meth:`TrainingBackend.evaluate`, trained as one Ray task."""
        return self.evaluate_many([(cell, budget, previous)])[0]

    def evaluate_many(self, requests: Sequence[tuple[Any, float, Evaluation | None]]
                      ) -> list[Evaluation]:
        """Train every ``(cell, budget, previous)`` request as a concurrent Ray task; the
        Evaluations come back in request order, checkpoints saved here in that order."""
        from workbench.collect._ray import init_ray, remote_options, threads_for

        every = [self._job(c, b, p) for c, b, p in requests]  # all validated before any runs
        jobs = [job for job in every if job.reused is None]
        if not jobs:
            return [job.reused for job in every]  # type: ignore[misc]
        ray = init_ray(self.ray_address)
        task = ray.remote(**remote_options(ray, self.num_cpus, self.num_gpus,
                                           self.max_retries))(_candidate_task)
        recipe = ray.put({"space": self.space, "model_kwargs": self.model_kwargs,
                          "config": self.config, "dataset": self.dataset, "data": self.data})
        threads = threads_for(self.num_cpus)
        # The worker needs neither the previous Evaluation nor its frames: only the state.
        refs = [task.remote(recipe, replace(job, previous=None), threads) for job in jobs]
        pending = list(refs)
        try:
            with tqdm(total=len(refs), disable=not self.progress, desc="train (ray)",
                      leave=False) as bar:
                while pending:
                    ready, pending = ray.wait(pending, num_returns=1)
                    bar.update(len(ready))
            outs = []
            for job, ref in zip(jobs, refs, strict=True):
                try:
                    outs.append(ray.get(ref))
                except ray.exceptions.RayTaskError:
                    raise  # the training itself raised: the same error as sequentially
                except ray.exceptions.RayError as exc:
                    raise RuntimeError(
                        f"training {self.format(job.cell)!r} to {job.steps} mini-batches on "
                        f"Ray failed (worker deaths are retried up to max_retries="
                        f"{self.max_retries} times): {type(exc).__name__}: {exc}") from exc
        except BaseException:
            for ref in pending:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # already finished or gone
                    pass
            raise
        trained = iter([self._finish(job, out) for job, out in zip(jobs, outs, strict=True)])
        return [job.reused if job.reused is not None else next(trained) for job in every]


def _candidate_task(recipe: dict[str, Any], job: TrainingJob, threads: int) -> TrainingOutput:
    """The body of a Ray evaluation task: build the candidate's trainer on this worker (its
    data decoded once per worker), continue the shipped state, return the new state on CPU."""
    from workbench.collect._ray import task_device, to_cpu

    torch.set_num_threads(threads)
    config = recipe["config"]
    config = config.replace(device=task_device(config.device))
    train, val = _data_cache().get(recipe["dataset"], recipe["data"])
    trainer = build_trainer(recipe["space"], job.cell, recipe["model_kwargs"], config, train,
                            val)
    out = run_job(trainer, job)
    return TrainingOutput(state=to_cpu(out.state), result=out.result,
                          wall_before=out.wall_before)


class BackendEvaluator:
    """A LayerNAS evaluator from any backend: ``ev(candidate)`` evaluates the cell
    ``to_cell(candidate)`` at ``budget`` and returns its score; ``ev.seconds(candidate)`` is
    what that cost (pass it as LayerNAS's ``eval_seconds``). A NaN score (a diverged run)
    becomes ``nan_score``, since LayerNAS needs a number."""

    def __init__(self, backend: Backend, budget: float,
                 to_cell: Callable[[Any], Any] | None = None, *, nan_score: float = 0.0) -> None:
        if not isinstance(backend, Backend):
            raise ValueError(f"backend must be a workbench.search Backend, got {backend!r}")
        if to_cell is not None and not callable(to_cell):
            raise ValueError(f"to_cell must be callable or None, got {to_cell!r}")
        backend.fidelity(check_budget("budget", budget))  # names a budget it cannot run
        self.backend = backend
        self.budget = budget
        self.to_cell = to_cell
        self.nan_score = float(nan_score)
        self.evaluations: dict[Hashable, Evaluation] = {}

    def __call__(self, candidate: Hashable) -> float:
        cell = candidate if self.to_cell is None else self.to_cell(candidate)
        ev = self.backend.evaluate(self.backend.resolve(cell), self.budget)
        self.evaluations[candidate] = ev
        return self.nan_score if math.isnan(ev.score) else float(ev.score)

    def seconds(self, candidate: Hashable) -> float:
        """Seconds charged for ``candidate`` (0 if it was never evaluated here)."""
        ev = self.evaluations.get(candidate)
        return 0.0 if ev is None else float(ev.cost)

    def truth(self, candidate: Hashable) -> float:
        """The evaluated candidate's table final accuracy (analysis only; NaN if unknown)."""
        ev = self.evaluations.get(candidate)
        return math.nan if ev is None else float(ev.final)
