"""The training backend: evaluate cells by really training them with the training engine.

A promoted candidate (Successive Halving, Hyperband) continues its run from its checkpoint
instead of restarting: the trainer's exact state is saved after every evaluation (in a folder,
or in a :class:`~workbench.store.RunStore`: see ``_checkpoints``) and loaded with
``torch.load(weights_only=True)`` when the search asks for a larger budget, so its mini-batch
count accumulates and the promotion is charged only the extra mini-batches. The learning-rate
schedule is planned over the backend's *largest* budget and every evaluation trains ``until``
its own budget, so a run continued from budget b to 3b is the same run as one trained straight
to 3b. The Ray version is in ``_ray_backend``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench._checks import check_int
from workbench._device import resolve_device
from workbench.benchmarks import TabularBenchmark, get_benchmark
from workbench.collect import run_label
from workbench.data import process_cache
from workbench.features import FEATURE_SCHEMA_VERSION
from workbench.search._backend import TablePool
from workbench.search._base import _EPS, Evaluation, check_budget
from workbench.search._candidates import CandidatePool, PooledBackend, SpacePool
from workbench.search._checkpoints import (
    NOWHERE,
    Checkpoints,
    FolderCheckpoints,
    StoreCheckpoints,
    Where,
)
from workbench.spaces import SearchSpace, get_space
from workbench.store import RunRequest, RunStore
from workbench.training import TrainConfig, Trainer, TrainResult, build_trainer

UNITS = ("steps", "epochs")
CHARGES = ("seconds", "steps")
POOLS = ("table", "space")
TRAINABLE = ("cifar10", "cifar100")


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


def run_job(trainer: Trainer, job: TrainingJob) -> TrainingOutput:
    """Continue ``trainer`` from the job's state (if any) to its mini-batch target."""
    if job.state is not None:
        trainer.load_state_dict(job.state)
    before = trainer.wall_seconds
    result = trainer.run(until=job.steps)
    return TrainingOutput(state=trainer.state_dict(), result=result, wall_before=before)


class TrainingBackend(PooledBackend):
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
    accuracy, for analysis only) or from the whole space (``pool="space"``); ``candidates`` is
    that :class:`~workbench.search.CandidatePool`. ``checkpoints``: a folder, a
    :class:`~workbench.store.RunStore` (runs are registered there, with their curves and
    snapshots, and marked done at the largest budget) or None (a temporary folder removed by
    :meth:`close` or when the backend is garbage collected). In a folder every evaluation keeps
    its own checkpoint (``<cell key>-<steps>.pt``); a store keeps each run's latest.

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
        self.model_kwargs = self.space.model_kwargs(model)  # names a bad preset
        self.model_preset = model if isinstance(model, str) else None
        self._max = check_budget("max_budget", max_budget)
        if min_budget is not None:
            check_budget("min_budget", min_budget)
            if min_budget > max_budget:
                raise ValueError(f"min_budget {min_budget!r} must not exceed max_budget "
                                 f"{max_budget!r}")
        self.data = {"val_size": check_int("val_size", val_size, minimum=1),
                     "split_seed": check_int("split_seed", split_seed, minimum=0),
                     "train_size": check_int("train_size", train_size, minimum=1,
                                             allow_none=True),
                     "source": source if root is None else None,
                     "root": None if root is None else str(root)}
        base = config or TrainConfig(steps=1, resize=16)
        if base.batch_size > (train_size or base.batch_size):
            raise ValueError(f"train_size {train_size!r} is smaller than one batch of "
                             f"{base.batch_size}")
        self._batch_size = base.batch_size
        self._batches_per_epoch: int | None = None
        self.max_steps = self._to_steps(max_budget)
        self._min = (float(min_budget) if min_budget is not None
                     else max(self._max / 27, self._unit_of_one_step()))
        changes: dict[str, Any] = {"steps": self.max_steps}
        if device is not None:
            changes["device"] = device
        if config is None:  # about four snapshots in the first rung
            changes["snapshot_every"] = max(1, self._to_steps(self._min) // 4)
        self.config = base.replace(**changes)
        bench: TabularBenchmark | None = None
        try:
            bench = get_benchmark(self.space.name)
        except ValueError:
            if pool == "table":
                raise ValueError(f"pool='table' needs a benchmark table for space "
                                 f"{self.space.name!r}; use pool='space'") from None
        self._bench = bench
        self.candidates: CandidatePool = (
            TablePool(bench) if bench is not None and pool == "table" else SpacePool(self.space))
        #: The table whose final accuracies label this dataset's runs (None: no labels).
        self._labels = bench if bench is not None and dataset in bench.datasets else None
        self.checkpoints: Checkpoints = (
            StoreCheckpoints(checkpoints, self._request, self.max_steps)
            if isinstance(checkpoints, RunStore) else FolderCheckpoints(checkpoints))
        # (cell id, steps) -> the run as it was then and where its state is
        self._memo: dict[tuple[str, int], tuple[TrainResult, Where]] = {}
        self.trained_steps = 0  # mini-batches this backend really trained (not reused)

    @property
    def benchmark(self) -> TabularBenchmark | None:
        """The table the candidates come from (``pool="table"``), else None: what a
        :class:`~workbench.search.CostConstraint` reads costs (latency, energy, params) from,
        so that a search on real training can be held to a latency target."""
        return self._bench if isinstance(self.candidates, TablePool) else None

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

    def _to_steps(self, budget: float) -> int:
        """Whole mini-batches for ``budget`` in the backend's unit, rounded up (no limit)."""
        check_budget("budget", budget)
        per = 1.0 if self.unit == "steps" else float(self.batches_per_epoch)
        return max(1, math.ceil(budget * per * (1 - _EPS)))

    def steps(self, budget: float) -> int:
        """Whole mini-batches for ``budget`` (rounded up; ValueError above the largest budget)."""
        n = self._to_steps(budget)
        if n > self.max_steps:
            raise ValueError(f"budget {budget!r} {self.budget_unit} exceeds the largest budget "
                             f"{self._max!r} {self.budget_unit} (the schedule is planned over "
                             f"it); allowed: up to {self._max!r}")
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
        if self._labels is None:
            return math.nan
        return float(np.nanmax(self._labels.all_accuracies(dataset=self.dataset).to_numpy()))

    def _final(self, cell: Any) -> float:
        """The table's final accuracy of ``cell`` on this dataset (NaN when unknown)."""
        if self._labels is None:
            return math.nan
        try:
            return float(self._labels.final_accuracy(cell, dataset=self.dataset))
        except (ValueError, LookupError):
            return math.nan

    def datasets(self) -> tuple[Any, Any]:
        """(train, held-out) splits used for every run (decoded once per process)."""
        return process_cache().get(self.dataset, self.data)

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
                "data": self.data, "checkpoints": self.checkpoints,
                "reuse": self.reuse, "charge": self.charge}
        return pd.DataFrame({"setting": list(rows), "value": [str(v) for v in rows.values()]})

    def __repr__(self) -> str:
        return (f"TrainingBackend({self.space.name!r}, dataset={self.dataset!r}, "
                f"budgets {self.min_budget:g}..{self.max_budget:g} {self.unit}, "
                f"model={self.model_kwargs}, pool={self.pool!r})")

    # -- the store's view of a run --------------------------------------------------------------
    def _request(self, cell: Any, cell_id: str) -> RunRequest:
        """The run store request of ``cell`` under this recipe (where it executes left out)."""
        train = self.config.to_dict()
        train.pop("device")
        label, label_name = run_label(self._bench, cell, self.dataset)
        return RunRequest(space=self.space.name, cell_id=cell_id, dataset=self.dataset,
                          seed=self.config.seed, cell=self.space.format(cell),
                          config={"train": train, "model": self.model_kwargs,
                                  "data": self.data, "search": {"unit": self.unit}},
                          label=label, label_name=label_name)

    def close(self) -> None:
        """Remove the temporary checkpoint folder (nothing to do with a folder or store given)."""
        self.checkpoints.close()

    def __enter__(self) -> TrainingBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- evaluation -------------------------------------------------------------------------
    def trainer(self, cell: Any) -> Trainer:
        """A fresh :class:`Trainer` for ``cell`` with this backend's data and recipe."""
        return build_trainer(self.space, cell, self.config, dataset=self.dataset,
                             data=self.data, model=self.model_kwargs, progress=self.progress)

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
                                 f"mini-batches ({steps}, budget {budget!r} "
                                 f"{self.budget_unit})")
        job = TrainingJob(cell=cell, cell_id=cid, budget=float(budget), steps=steps,
                          state=None, previous=previous)
        if not self.reuse:
            if previous is not None:
                job.state = self.checkpoints.load(previous)
            return job
        known = self._memo.get((cid, steps)) or self.checkpoints.stored(cell, cid, steps)
        if known is not None:
            self._memo[(cid, steps)] = known
            job.reused = self._evaluation(job, *known, reused=True)
            return job
        job.state, job.save = self.checkpoints.furthest(cell, cid, steps, previous)
        return job

    def _charge(self, steps: int, wall: float, previous: Evaluation | None) -> tuple[float, float]:
        """(cost of this request, from-scratch cost) of an evaluation at ``steps`` whose run had
        trained ``wall`` seconds by then; only the part after ``previous`` is charged."""
        if self.charge == "steps":
            done = 0 if previous is None else int(previous.info.get("steps", 0))
            return float(steps - done), float(steps)
        before = 0.0 if previous is None else float(previous.full_cost)
        return float(wall) - before, float(wall)

    def _evaluation(self, job: TrainingJob, result: TrainResult, where: Where,
                    reused: bool = False) -> Evaluation:
        """The answer to ``job`` from its run as it was at the job's step (trained now, or
        known already: ``reused``), charged what the request would have cost alone."""
        previous = job.previous
        cost, full = self._charge(result.steps, result.wall_seconds, previous)
        score = (math.nan if result.status == "diverged"
                 else float(result.metrics.get("val_acc", math.nan)))
        info = {"steps": result.steps, "status": result.status, **where,
                "curves": result.curves, "evals": result.evals,
                "metrics": dict(result.metrics), "wall_seconds": result.wall_seconds,
                "recipe": self.recipe}
        if reused:
            info["reused"] = True
        return Evaluation(cell=job.cell, cell_id=job.cell_id, budget=job.budget,
                          fidelity=self.fidelity(job.budget), score=score, cost=cost,
                          full_cost=full, final=self._final(job.cell),
                          resumed_from=None if previous is None else previous.fidelity,
                          info=info, snapshots=result.snapshots)

    def _finish(self, job: TrainingJob, out: TrainingOutput) -> Evaluation:
        """Save a trained job's checkpoint (here, on the driver) and make its Evaluation."""
        result = out.result
        self.trained_steps += result.steps - (0 if job.state is None else int(job.state["step"]))
        where = (self.checkpoints.save(job.cell, job.cell_id, out.state, result) if job.save
                 else dict(NOWHERE))
        if self.reuse and (result.status == "diverged" or result.steps == job.steps):
            self._memo[(job.cell_id, job.steps)] = (result, where)
        return self._evaluation(job, result, where)
