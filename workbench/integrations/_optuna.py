"""NAP2 inside Optuna: a pruner that cuts trials at Successive-Halving rungs by the final score a
dynamics predictor reads from their snapshots, and the helpers that put snapshots in a study.

Where things live (so several processes on one RDB storage, e.g. SQLite, cooperate): each trial
keeps, as user attributes in the study's storage, its snapshots (``workbench.snapshots``: a
compressed ``.npz`` of :meth:`Snapshots.to_arrays`, base64 text, no pickle) and its predicted
score at each predictor step it has passed (``workbench.dynamics_score@<step>``, a float).
:func:`report_snapshots` writes both; :class:`DynamicsPruner` reads the scores of every trial
that reached a rung from the storage, so it sees the trials of all processes.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, Trial, TrialState
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from workbench._checks import check_int
from workbench.features import FEATURE_SCHEMA_VERSION, SnapshotRecorder, Snapshots
from workbench.predictors import DynamicsData, dynamics_inputs, snapshot_maps
from workbench.search import DynamicsRanker
from workbench.store import RunRequest, RunStore

#: User-attribute key of a trial's snapshots.
SNAPSHOTS_ATTR = "workbench.snapshots"
#: User-attribute key prefix of a trial's predicted score (``...@<step>``).
SCORE_ATTR = "workbench.dynamics_score@"


def score_key(step: int) -> str:
    """The user-attribute key of the predicted score from snapshots up to ``step``."""
    return f"{SCORE_ATTR}{int(step)}"


def encode_snapshots(snaps: Snapshots) -> str:
    """``snaps`` as base64 text of a compressed ``.npz`` (fits a JSON user attribute)."""
    buf = io.BytesIO()
    arrays: dict[str, Any] = snaps.to_arrays()
    np.savez_compressed(buf, **arrays)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def decode_snapshots(text: str) -> Snapshots:
    """The inverse of :func:`encode_snapshots` (no pickle; checks the feature schema)."""
    with np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False) as arrays:
        return Snapshots.from_arrays(arrays)


def trial_snapshots(trial: FrozenTrial | Trial) -> Snapshots | None:
    """The snapshots a trial stored with :func:`report_snapshots` (None if it stored none)."""
    text = trial.user_attrs.get(SNAPSHOTS_ATTR)
    return None if text is None else decode_snapshots(str(text))


def _as_snapshots(source: Any) -> tuple[Snapshots, int]:
    """(snapshots, mini-batches done) of a recorder or a ``Snapshots``."""
    if isinstance(source, SnapshotRecorder):
        return source.snapshots(), source.batches
    if isinstance(source, Snapshots):
        return source, int(source.steps[-1]) if len(source) else 0
    raise ValueError(f"snapshots must be a SnapshotRecorder or Snapshots, got "
                     f"{type(source).__name__}")


def _cadence(meta: Mapping[str, Any]) -> int | None:
    every = meta.get("snapshot_every")
    if every is None and isinstance(meta.get("train"), Mapping):
        every = meta["train"].get("snapshot_every")
    return None if every is None else int(every)


class DynamicsPruner(BasePruner):
    """Prunes a trial at a Successive-Halving rung unless its predicted final score (a dynamics
    predictor on its snapshots) is in the top ``1 / reduction_factor`` of the trials that reached
    that rung.

    ``predictor``: a fitted dynamics predictor, a predictor file, or ``{step: predictor}`` (at a
    rung, the one with the largest step not above it); default: the bundled NB201 one. ``step``
    (single predictor only): the mini-batch whose snapshots it reads, default its
    ``metadata_["step"]``. Rungs are at ``min_resource * reduction_factor**k`` (default
    ``min_resource``: the smallest predictor step), in the unit of ``trial.report``'s ``step``,
    which must be mini-batches (the recorder's unit). As in Optuna's
    ``SuccessiveHalvingPruner``, at least the best trial of a rung is kept (ties are kept) and a
    trial is judged once per rung; ``min_trials`` trials must have reached a rung before it
    prunes there. Higher scores are better (fit the predictor on e.g. accuracy, or minus the
    loss). ``snapshot_every``: the cadence the predictor expects (default: its metadata; a
    trial recorded at another one is refused).

    In the objective, after ``trial.report(value, step)``: ``report_snapshots(trial, recorder)``,
    then ``if trial.should_prune(): raise optuna.TrialPruned()``. ``table()`` lists the decisions
    this process made.
    """

    def __init__(self, predictor: Any = None, *, step: int | None = None,
                 min_resource: int | None = None, reduction_factor: int = 3,
                 min_trials: int = 1, snapshot_every: int | None = None) -> None:
        for p in (predictor.values() if isinstance(predictor, Mapping) else [predictor]):
            if p is not None and not isinstance(p, str) and hasattr(p, "fit"):
                try:
                    check_is_fitted(p)
                except NotFittedError:
                    raise ValueError(f"predictor {type(p).__name__} is not fitted: fit it on "
                                     "snapshot maps first (study_dynamics or load_dynamics "
                                     "give X, y), or pass a predictor file") from None
        self.predictors = DynamicsRanker(predictor, step).predictors
        first = min(self.predictors)
        self.min_resource = check_int("min_resource", first if min_resource is None
                                      else min_resource, minimum=1)
        if self.min_resource < first:
            raise ValueError(f"min_resource={self.min_resource} is below the predictor's step "
                             f"{first}: the first rung must come after the snapshots it reads")
        self.reduction_factor = check_int("reduction_factor", reduction_factor, minimum=2)
        self.min_trials = check_int("min_trials", min_trials, minimum=1)
        found = [_cadence(getattr(p, "metadata_", None) or {}) for p in self.predictors.values()]
        cadences = {c for c in found if c is not None}
        if snapshot_every is not None:
            self.snapshot_every: int | None = check_int("snapshot_every", snapshot_every,
                                                        minimum=1)
            if cadences and cadences != {self.snapshot_every}:
                raise ValueError(f"snapshot_every={snapshot_every} but the predictor was fitted "
                                 f"on snapshots every {sorted(cadences)} mini-batches")
        else:
            self.snapshot_every = cadences.pop() if len(cadences) == 1 else None
        self.history: list[dict[str, Any]] = []
        self._decided: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"DynamicsPruner(steps={list(self.predictors)}, min_resource={self.min_resource}"
                f", reduction_factor={self.reduction_factor})")

    # -- scoring ------------------------------------------------------------------------------
    def rung_budget(self, rung: int) -> int:
        """Mini-batches of rung ``rung`` (0-based)."""
        return self.min_resource * self.reduction_factor ** int(rung)

    def predictor_step(self, budget: int) -> int:
        """The predictor step a rung of ``budget`` mini-batches uses."""
        return max(s for s in self.predictors if s <= budget)

    def check(self, snaps: Snapshots) -> None:
        """ValueError unless ``snaps`` are of the schema and cadence the predictors expect."""
        for s, p in self.predictors.items():
            theirs = int(getattr(p, "feature_schema_version_", FEATURE_SCHEMA_VERSION))
            if int(snaps.schema_version) != theirs:
                raise ValueError(f"snapshots of feature schema {snaps.schema_version}, but the "
                                 f"predictor for step {s} was fitted on schema {theirs}")
            width = getattr(p, "max_layers_", None)
            if width is not None and snaps.max_layers > int(width):
                raise ValueError(f"snapshots padded to {snaps.max_layers} layers, but the "
                                 f"predictor for step {s} takes at most {int(width)}")
        if self.snapshot_every is not None and snaps.snapshot_every != self.snapshot_every:
            raise ValueError(f"snapshots recorded every {snaps.snapshot_every} mini-batches, but "
                             f"the predictor expects one every {self.snapshot_every}")

    def score(self, snaps: Snapshots, step: int) -> float:
        """The predicted final score from ``snaps`` up to mini-batch ``step`` (a predictor step);
        ``-inf`` for NaN/inf snapshots (a diverging run ranks last)."""
        if step not in self.predictors:
            raise ValueError(f"step={step} is not a predictor step {list(self.predictors)}")
        self.check(snaps)
        maps = snapshot_maps(snaps, step)
        every = snaps.snapshot_every
        want = np.arange(every, step + 1, every)
        got = snaps.truncate(step).steps
        if not np.array_equal(got, want):
            raise ValueError(f"snapshots at mini-batches {got.tolist()[:6]}... up to {step}; "
                             f"the predictor reads one every {every} ({want.tolist()[:6]}...)")
        if not np.isfinite(maps).all():
            return -math.inf
        return float(np.ravel(self.predictors[step].predict(dynamics_inputs(maps[None])))[0])

    # -- the pruning decision -----------------------------------------------------------------
    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        """True when ``trial`` just reached a rung and is not in its top ``1/eta`` by score."""
        if len(study.directions) > 1:
            raise ValueError("DynamicsPruner does not support multi-objective studies")
        last = trial.last_step
        if last is None or last < self.min_resource:
            return False
        rung = 0
        while self.rung_budget(rung + 1) <= last:
            rung += 1
        key_trial = (study.study_name, trial.number)
        with self._lock:
            if self._decided.get(key_trial, -1) >= rung:
                return False
            self._decided[key_trial] = rung
        budget = self.rung_budget(rung)
        step = self.predictor_step(budget)
        key = score_key(step)
        mine = trial.user_attrs.get(key)
        if mine is None:
            raise ValueError(f"trial {trial.number} reached the rung at {budget} mini-batches "
                             f"without a dynamics score for step {step}: call "
                             "report_snapshots(trial, recorder) before trial.should_prune()")
        scores = {t.number: float(t.user_attrs[key]) for t in study.get_trials(deepcopy=False)
                  if key in t.user_attrs and t.last_step is not None and t.last_step >= budget}
        scores[trial.number] = float(mine)
        n = len(scores)
        if n < self.min_trials:
            decision, threshold = False, math.nan
        else:
            k = max(1, n // self.reduction_factor)
            threshold = sorted(scores.values(), reverse=True)[k - 1]
            decision = float(mine) < threshold
        self.history.append({"trial": trial.number, "rung": rung, "budget": budget,
                             "step": step, "score": float(mine), "threshold": threshold,
                             "competitors": n, "pruned": decision})
        return decision

    def table(self) -> pd.DataFrame:
        """The decisions this process made: trial, rung, budget, step, score, threshold,
        competitors, pruned."""
        cols = ["trial", "rung", "budget", "step", "score", "threshold", "competitors",
                "pruned"]
        return pd.DataFrame(self.history, columns=cols)


def _pruner_of(study: optuna.Study) -> DynamicsPruner | None:
    pruner = study.pruner
    return pruner if isinstance(pruner, DynamicsPruner) else None


def report_snapshots(trial: Trial, snapshots: SnapshotRecorder | Snapshots, *,
                     pruner: DynamicsPruner | None = None, store: bool = True
                     ) -> dict[int, float]:
    """Put a trial's snapshots where :class:`DynamicsPruner` reads them; call it after
    ``trial.report`` and before ``trial.should_prune``.

    ``snapshots``: the trial's :class:`SnapshotRecorder` (or its ``Snapshots``). For each
    predictor step the trial has now passed, the predicted score is stored (once) in the
    study's storage; ``pruner`` defaults to the study's own. ``store``: also keep the snapshots
    themselves (``trial_snapshots``, ``study_dynamics``), rewritten only when they grew. Returns
    the scores stored so far, by step.
    """
    if not isinstance(trial, Trial):
        raise ValueError(f"trial must be an optuna Trial (the objective's argument), got "
                         f"{type(trial).__name__}")
    snaps, done = _as_snapshots(snapshots)
    pruner = _pruner_of(trial.study) if pruner is None else pruner
    attrs = trial.user_attrs
    scores = {int(k[len(SCORE_ATTR):]): float(v) for k, v in attrs.items()
              if k.startswith(SCORE_ATTR)}
    if pruner is not None:
        pruner.check(snaps)
        for step in pruner.predictors:
            if step not in scores and done >= step:
                scores[step] = pruner.score(snaps, step)
                trial.set_user_attr(score_key(step), scores[step])
    if store and len(snaps):
        last = int(snaps.steps[-1])
        if attrs.get(SNAPSHOTS_ATTR + ".last_step") != last:
            trial.set_user_attr(SNAPSHOTS_ATTR, encode_snapshots(snaps))
            trial.set_user_attr(SNAPSHOTS_ATTR + ".last_step", last)
    return dict(sorted(scores.items()))


def study_dynamics(study: optuna.Study, *, step: int,
                   states: tuple[TrialState, ...] = (TrialState.COMPLETE,)) -> DynamicsData:
    """Dynamics-predictor inputs of a study's trials: their stored snapshots up to ``step``
    (``X``), their objective values (``y``), one group per trial; fit a predictor on your own
    model's trials with it (``DynamicsForest().fit(data.X, data.y)``)."""
    step = check_int("step", step, minimum=1)
    rows, maps, steps = [], [], None
    for t in study.get_trials(deepcopy=False, states=states):
        snaps = trial_snapshots(t)
        if snaps is None or t.value is None or not len(snaps.truncate(step)):
            continue
        s = snaps.truncate(step).steps
        if steps is None:
            steps = s
        elif not np.array_equal(s, steps):
            raise ValueError(f"trial {t.number} has snapshots at {s.tolist()} up to {step}, "
                             f"others at {steps.tolist()}: record with one cadence")
        maps.append(snapshot_maps(snaps, step))
        rows.append({"trial": t.number, "value": float(t.value), **t.params})
    if not rows:
        raise ValueError(f"no trial of study {study.study_name!r} in states "
                         f"{[s.name for s in states]} has snapshots up to mini-batch {step} "
                         "(report them with report_snapshots)")
    runs = pd.DataFrame(rows)
    return DynamicsData(X=dynamics_inputs(np.stack(maps)), y=runs["value"].to_numpy(float),
                        groups=runs["trial"].astype(str).to_numpy(), runs=runs,
                        steps=np.asarray(steps), step=step)


def study_to_store(study: optuna.Study, store: RunStore | str | os.PathLike[str], *,
                   dataset: str = "custom",
                   states: tuple[TrialState, ...] = (TrialState.COMPLETE, TrialState.PRUNED)
                   ) -> pd.DataFrame:
    """Copy a study's trials that stored snapshots into a run store as ``done`` runs (space
    ``"optuna"``, cell id ``<study>.<trial>``, config = the trial's params, label = its value,
    curves = its reported values), so the feature explorer, ``rank_runs`` and the TensorBoard
    export read them like any run. A trial already copied is skipped. Returns the run ids."""
    store = store if isinstance(store, RunStore) else RunStore(store)
    prefix = re.sub(r"[^A-Za-z0-9_.-]", "_", study.study_name)[:200]
    out = []
    for t in study.get_trials(deepcopy=False, states=states):
        snaps = trial_snapshots(t)
        if snaps is None:
            continue
        params = {k: v for k, v in t.params.items()}
        req = RunRequest(space="optuna", cell_id=f"{prefix}.{t.number}", dataset=dataset,
                         config={"params": params, "study": study.study_name},
                         cell=json.dumps(params, sort_keys=True, default=str),
                         label=None if t.value is None else float(t.value),
                         label_name="objective")
        (rid,) = store.add_runs([req])
        if store.claim(rid):
            steps = sorted(t.intermediate_values)
            curves = {"step": np.asarray(steps, dtype=np.int64),
                      "objective": np.asarray([t.intermediate_values[s] for s in steps],
                                              dtype=np.float64)}
            metrics = {"objective": None if t.value is None else float(t.value),
                       "state": t.state.name}
            store.mark_done(rid, metrics, label=req.label, label_name="objective",
                            steps=t.last_step, arrays={"snapshots": snaps.to_arrays(),
                                                       "curves": curves})
        out.append({"trial": t.number, "run_id": rid, "state": t.state.name})
    return pd.DataFrame(out, columns=["trial", "run_id", "state"])
