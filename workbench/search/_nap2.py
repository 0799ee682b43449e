"""The NAP2 experiment as package code: an offline phase fits dynamics predictors (and a GCN)
on runs of cells kept out of every search pool; an online phase runs Successive Halving with
the observed, dynamics, graph and combined rankers beside Hyperband, random search and
regularized evolution, all on one shared training backend at equal online mini-batches.

``bench/nap2.py`` runs it at benchmark size, notebook 07 and ``workbench search`` in small
sizes. Costs are in mini-batches (``TrainingBackend(charge="steps")``), so they do not depend
on how busy the machine is; wall seconds are recorded beside them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from tqdm.auto import tqdm

from workbench._checks import check_int
from workbench.evaluation import kendall_tau
from workbench.predictors import (
    DynamicsForest,
    GCNPredictor,
    dynamics_inputs,
    graphs_from_cells,
    snapshot_maps,
)
from workbench.search._base import Backend, Evaluation, Search
from workbench.search._combine import CombinedRanker
from workbench.search._dynamics_ranker import DynamicsRanker, GraphRanker
from workbench.search._evolution import RegularizedEvolution
from workbench.search._hyperband import Hyperband
from workbench.search._pool import PoolBackend
from workbench.search._random import RandomSearch
from workbench.search._sh import SuccessiveHalving, sh_schedule
from workbench.search._simulate import search_curve

# -- reading search histories ----------------------------------------------------------------


def sh_cost(n: int, min_budget: float, max_budget: float, eta: float = 3) -> float:
    """Budget units one Successive Halving run spends when promotions continue (resume)."""
    sched = sh_schedule(n, min_budget, max_budget, eta)
    prev = np.concatenate([[0.0], sched["budget"].to_numpy(float)[:-1]])
    return float((sched["n"] * (sched["budget"] - prev)).sum())


def rung_correlations(history: pd.DataFrame) -> pd.DataFrame:
    """Kendall tau against the table's final accuracy of each rung's ranking (``ranker_score``)
    and of its observed score, one row per rung (per bracket and rung for Hyperband)."""
    keys = [k for k in ("bracket", "rung") if k in history.columns]
    if not keys:
        raise ValueError("history has no 'rung' column: rung correlations need an SH-like search")
    rows = []
    for key, g in history.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        ok = np.isfinite(g["final"].to_numpy(float))
        n = int(ok.sum())
        row: dict[str, float] = dict(zip(keys, (int(k) for k in key), strict=True))
        row.update({"budget": float(g["budget"].iloc[0]), "n": n,
                    "tau_ranker": kendall_tau(g["ranker_score"][ok], g["final"][ok])
                    if n >= 3 else math.nan,
                    "tau_observed": kendall_tau(g["score"][ok], g["final"][ok])
                    if n >= 3 else math.nan})
        rows.append(row)
    return pd.DataFrame(rows)


def selection_order(history: pd.DataFrame) -> list[str]:
    """Evaluated candidates best first by the search's own criterion: the highest budget each
    reached, then its ranker score there (NaN last), then the earliest evaluation."""
    if history.empty:
        return []
    h = history.reset_index(drop=True)
    last = h.loc[h.groupby("candidate", sort=False)["budget"].idxmax()]
    score = last["ranker_score"].to_numpy(float)
    key = np.lexsort((last["eval"].to_numpy(), -np.where(np.isnan(score), -np.inf, score),
                      -last["budget"].to_numpy(float)))
    return [str(c) for c in last["candidate"].to_numpy()[key]]


def selection_precision(history: pd.DataFrame, finals: Mapping[str, float], k: int) -> float:
    """NAP2's top-k precision: the share of the search's top ``k`` (``selection_order``) among
    the ``k`` best of ``finals`` (cell id -> final accuracy: the pool)."""
    k = check_int("k", k, minimum=1)
    if k > len(finals):
        raise ValueError(f"k={k} exceeds the {len(finals)} cells of the pool")
    best = set(sorted(finals, key=lambda c: -finals[c])[:k])
    chosen = selection_order(history)[:k]
    return len(best.intersection(chosen)) / k


def regret_at(curve: pd.DataFrame, cost: float) -> float:
    """A ``search_curve``'s regret after the last evaluation costing at most ``cost`` in all."""
    ok = curve[curve["cost"] <= cost * (1 + 1e-9)]
    return float(ok["regret"].iloc[-1]) if len(ok) else math.nan


# -- the offline phase ----------------------------------------------------------------------


@dataclass
class OfflinePhase:
    """What the offline phase produced: its cells and runs, one fitted dynamics predictor per
    step, the GCN fitted on the same cells, and what it all cost."""

    cells: list[Any]
    evaluations: list[Evaluation]
    predictors: dict[int, Any]
    gcn: Any
    minibatches: float
    train_seconds: float  # the runs' own recorded training wall seconds (also when replayed)
    fit_seconds: float
    dropped: list[str] = field(default_factory=list)

    @property
    def cell_ids(self) -> list[str]:
        return [ev.cell_id for ev in self.evaluations]


def offline_phase(backend: Any, cells: Sequence[Any], steps: Sequence[int], *,
                  estimator: Any = None, gcn: Any = None, progress: bool = True
                  ) -> OfflinePhase:
    """Train ``cells`` to ``max(steps)`` mini-batches on ``backend`` (a TrainingBackend with a
    table: the labels are its final accuracies), fit a clone of ``estimator`` (default
    ``DynamicsForest()``) on the snapshots up to each step and ``gcn`` (default a rank-target
    GCN; ``False``: none) on the cells' graphs. Diverged or non-finite runs are
    left out of the fit (``dropped``)."""
    steps = sorted({check_int("step", s, minimum=1) for s in steps})
    if not cells:
        raise ValueError("offline_phase needs at least one cell")
    estimator = DynamicsForest() if estimator is None else estimator
    evs = [backend.evaluate(c, max(steps)) for c in tqdm(cells, desc="offline runs",
                                                          disable=not progress, leave=False)]
    train_s = float(sum(ev.info.get("wall_seconds", math.nan) for ev in evs))
    keep, dropped = [], []
    for ev in evs:
        m = snapshot_maps(ev.snapshots, max(steps)) if ev.snapshots is not None else None
        if m is None or not np.isfinite(m).all() or not math.isfinite(ev.final) \
                or ev.info.get("status") == "diverged":
            dropped.append(ev.cell_id)
        else:
            keep.append(ev)
    if len(keep) < 2:
        raise ValueError(f"only {len(keep)} usable offline runs of {len(evs)}: need at least 2")
    y = np.array([ev.final for ev in keep], dtype=float)
    t1 = time.perf_counter()
    recipe = dict(keep[0].info.get("recipe", {}))
    predictors = {}
    for s in steps:
        maps = np.stack([snapshot_maps(ev.snapshots, s) for ev in keep])
        est = clone(estimator).fit(dynamics_inputs(maps), y)
        est.metadata_ = {"step": s, "model_preset": recipe.get("model_preset"),
                         "snapshot_every": recipe.get("snapshot_every"),
                         "space": recipe.get("space"), "dataset": recipe.get("dataset"),
                         "train": {k: recipe.get(k) for k in ("batch_size", "lr", "schedule",
                                                              "optimizer", "max_steps",
                                                              "resize", "snapshot_every")},
                         "trained_on": f"{len(keep)} offline runs", "target": "final"}
        predictors[s] = est
    fitted_gcn = None
    if gcn is not False:
        g = (GCNPredictor(epochs=150, lr=1e-3, weight_decay=1e-4, target="rank")
             if gcn is None else clone(gcn))
        fitted_gcn = g.fit(graphs_from_cells(backend.space.name, [ev.cell for ev in keep]), y)
    fit_s = time.perf_counter() - t1
    return OfflinePhase(cells=list(cells), evaluations=evs, predictors=predictors,
                        gcn=fitted_gcn, minibatches=float(sum(ev.cost for ev in evs)),
                        train_seconds=train_s, fit_seconds=fit_s, dropped=dropped)


# -- the online phase -------------------------------------------------------------------------

MethodFactory = Callable[[Backend, int], Search]


def nap2_methods(offline: OfflinePhase | None, *, n: int = 27, eta: float = 3,
                 min_budget: float = 30, max_budget: float = 270,
                 re_budget: float | None = None) -> dict[str, tuple[str, MethodFactory]]:
    """The compared methods: ``name -> (scope, factory(backend, seed))``; scope ``"pool"``
    searches draw from the seed's pool (all of these), ``"table"`` ones would draw from every
    cell not offline. RS and RE get as many evaluations as one SH run's mini-batches buy (RS
    at ``max_budget``, RE at ``re_budget``, default the second rung); RE's mutants must be in
    the pool (else a random pool cell: on a small pool RE is close to random search)."""
    total = sh_cost(n, min_budget, max_budget, eta)
    re_b = re_budget if re_budget is not None else min(max_budget, min_budget * eta)
    out: dict[str, tuple[str, MethodFactory]] = {
        "SH": ("pool", lambda b, s: SuccessiveHalving(b, n=n, min_budget=min_budget,
                                                      max_budget=max_budget, eta=eta, seed=s)),
    }
    if offline is not None:
        dyn = offline.predictors

        def ranker_dyn() -> DynamicsRanker:
            return DynamicsRanker(dyn)

        out["SH+dynamics"] = ("pool", lambda b, s: SuccessiveHalving(
            b, n=n, min_budget=min_budget, max_budget=max_budget, eta=eta, seed=s,
            ranker=ranker_dyn()))
        if offline.gcn is not None:
            space = offline.evaluations[0].info.get("recipe", {}).get("space")
            out["SH+gcn"] = ("pool", lambda b, s: SuccessiveHalving(
                b, n=n, min_budget=min_budget, max_budget=max_budget, eta=eta, seed=s,
                ranker=GraphRanker(offline.gcn, space)))
            out["SH+dynamics&gcn"] = ("pool", lambda b, s: SuccessiveHalving(
                b, n=n, min_budget=min_budget, max_budget=max_budget, eta=eta, seed=s,
                ranker=CombinedRanker([ranker_dyn(), GraphRanker(offline.gcn, space)],
                                      name="dynamics&gcn")))
    out["HB"] = ("pool", lambda b, s: Hyperband(b, min_budget=min_budget,
                                                 max_budget=max_budget, eta=eta, seed=s))
    out["RS"] = ("pool", lambda b, s: RandomSearch(
        b, budget=max_budget, seed=s, max_evaluations=max(1, int(total // max_budget))))
    out["RE"] = ("pool", lambda b, s: RegularizedEvolution(
        b, population=10, sample_size=3, budget=re_b, seed=s,
        max_evaluations=max(1, int(total // re_b)), max_attempts=20))
    return out


def run_online(backend: Any, pool: Sequence[Any], methods: Mapping[str, tuple[str, Any]],
               seed: int, *, exclude: Sequence[Any] = (), finals: Mapping[str, float],
               at_cost: float, reference: float | None = None,
               progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Search]]:
    """Run every method once with ``seed`` on ``backend`` (its pool view: ``pool`` for pool
    methods, everything but ``exclude`` for table ones). Returns the tidy curves, one summary
    row per method (regret at total cost ``at_cost``, top-3/top-5 precision in the pool,
    cost) and the searches themselves."""
    views = {"pool": PoolBackend(backend, pool),
             "table": PoolBackend(backend, None, exclude=exclude)}
    ref = backend.best_final() if reference is None else reference
    curves, rows, searches = [], [], {}
    for name, (scope, factory) in tqdm(list(methods.items()), desc=f"seed {seed}",
                                       disable=not progress, leave=False):
        t0 = time.perf_counter()
        before = getattr(backend, "trained_steps", 0)
        search = factory(views[scope], seed)
        search.run(progress=False)
        curve = search_curve(search, name, ref)
        h = search.history
        row = {"method": name, "seed": seed, "evaluations": len(h),
               "cost": float(h["cum_cost"].iloc[-1]) if len(h) else 0.0,
               "regret": regret_at(curve, at_cost),
               "final_regret": float(curve["regret"].iloc[-1]) if len(curve) else math.nan,
               "new_minibatches": getattr(backend, "trained_steps", 0) - before,
               "seconds": time.perf_counter() - t0}
        if scope == "pool":
            for k in (3, 5):
                row[f"top{k}_precision"] = (selection_precision(h, finals, k)
                                            if k <= len(finals) else math.nan)
        curves.append(curve)
        rows.append(row)
        searches[name] = search
    return pd.concat(curves, ignore_index=True), pd.DataFrame(rows), searches
