"""The Neural Predictor's own search (Wen et al., ECCV 2020): train N random cells, fit a
predictor of final accuracy from the architecture alone, train the K candidates it predicts
best, and optionally refit on every trained cell and repeat.

It is :class:`PredictorSH` with a single rung at the full budget: its random batch, refits and
pool bookkeeping, each round an SH run that only evaluates its K candidates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from workbench._checks import check_int
from workbench.predictors import (
    GCNPredictor,
    GraphFeatureRegressor,
    get_predictor,
    graph_features,
    graphs_from_cells,
)
from workbench.search._base import Backend, Evaluation, check_budget, register_search
from workbench.search._constraint import CostConstraint, constrained
from workbench.search._rounds import PredictorSH, _rows, _table_cells, feasible_rows, take_rows
from workbench.spaces import RngLike, SearchSpace, as_rng

PredictorLike = str | Any | None
Featurize = Callable[[list[Any]], Any]

TABLE_COLUMNS = ("rank", "candidate", "cell", "predicted", "decision", "round", "score",
                 "final")  # final: the table's, for analysis only (NaN until trained)


def as_predictor(predictor: PredictorLike, space: SearchSpace) -> Any:
    """An unfitted estimator from None (GRAF: ``GraphFeatureRegressor(space, model="xgb")``),
    a registered predictor name (built with its defaults, ``space=`` set where it takes one) or
    an estimator with ``fit`` and ``predict``; ValueError otherwise, or for an estimator made
    for another space."""
    if predictor is None:
        return GraphFeatureRegressor(space.name, model="xgb")
    if isinstance(predictor, str):
        est = get_predictor(predictor)
        if "space" in est.get_params():
            est.set_params(space=space.name)
        return est
    if not (callable(getattr(predictor, "fit", None))
            and callable(getattr(predictor, "predict", None))):
        raise ValueError(f"predictor must be None, a registered predictor name or an estimator "
                         f"with fit and predict, got {predictor!r}")
    params = predictor.get_params() if callable(getattr(predictor, "get_params", None)) else {}
    theirs = params.get("space")
    theirs = getattr(theirs, "name", theirs)
    if isinstance(theirs, str) and theirs != space.name:
        raise ValueError(f"predictor {type(predictor).__name__} is made for space {theirs!r}, "
                         f"the backend's is {space.name!r}")
    return predictor


def default_featurize(predictor: Any, space: SearchSpace) -> Featurize:
    """How ``predictor`` is fed a list of cells: GCN → their padded graphs
    (``graphs_from_cells``), GRAF → their graph-feature table (``graph_features``, computed once
    and sliced instead of recomputed at each fit), anything else → the list of cells itself."""
    if isinstance(predictor, GCNPredictor):
        return lambda cells: graphs_from_cells(space, cells)
    if isinstance(predictor, GraphFeatureRegressor):
        return lambda cells: graph_features(space.name, cells)
    return list


def table_inputs(backend: Backend, predictor: PredictorLike = None,
                 featurize: Featurize | None = None) -> tuple[list[str], Any]:
    """Cell ids of a tabular backend's table and ``predictor``'s inputs for them (one row per
    id; ``featurize(cells)``, default :func:`default_featurize`): the ``features=`` of
    :class:`NeuralPredictorSearch`, computed once and shared by many seeds (NB201's 15,625
    graph-feature rows take about 5 s)."""
    est = as_predictor(predictor, backend.space)
    fn = default_featurize(est, backend.space) if featurize is None else featurize
    ids, cells = _table_cells(backend)
    return ids, fn(cells)


@register_search("neural_predictor")
class NeuralPredictorSearch(PredictorSH):
    """Wen et al.'s Neural Predictor search: train ``n`` random pool cells at ``budget``
    (default the backend's largest; one step, round -1), fit ``predictor`` on their observed
    scores, then each of ``rounds`` steps trains the ``k`` not yet trained candidates it
    predicts best and refits on every trained cell before the next. Exactly
    ``n + rounds * k`` evaluations, each a full training; ``best()`` is the trained cell with
    the best observed score.

    ``predictor``: None (GRAF, ``GraphFeatureRegressor(space, model="xgb")``), a registered
    predictor name (``"gcn"``, ``"graf"``, ...) or an estimator; cloned at each fit with
    ``random_state`` drawn from this search's generator. Predictions are not charged.
    ``featurize(cells) -> X``: the predictor's inputs of a list of cells, one row each (an
    array, a graph array, a DataFrame or a list); default :func:`default_featurize` (graphs for
    the GCN, graph features for GRAF, else the cells).
    The pool: ``m`` (None: every table cell of a tabular backend) cells drawn uniformly from
    the backend, of which ``n`` are the random batch and the rest the candidates. ``features``
    (``(cell ids, X)``, e.g. :func:`table_inputs`) gives the pool and its inputs instead
    (``m``: draw the pool's ``n + m`` cells from it), so that seeds share them.
    ``constraint``: a :class:`CostConstraint`; the pool is kept to its feasible cells before
    ``m`` are drawn, so no infeasible cell is trained or returned.
    ``table()``: the candidates of the latest fit, best predicted first, with what became of
    them. The history adds ``round`` and ``predicted`` (NaN for the random batch). As in
    PredictorSH, ``k_init`` is ``n`` and ``n`` is ``k``; ``predictor`` the unfitted estimator,
    ``model`` the latest fit.
    """

    name: ClassVar[str] = "neural_predictor"
    extra_columns: ClassVar[tuple[str, ...]] = ("round", "predicted")
    _initial_decision: ClassVar[str] = "random"

    def __init__(self, backend: Backend, predictor: PredictorLike = None, *, n: int = 50,
                 k: int = 10, rounds: int = 1, m: int | None = None,
                 budget: float | None = None, featurize: Featurize | None = None,
                 features: tuple[Sequence[str], Any] | None = None, seed: RngLike = 0,
                 label: str = "NP", constraint: CostConstraint | None = None) -> None:
        if not isinstance(backend, Backend):
            raise ValueError(f"backend must be a workbench.search Backend, got {backend!r}")
        n = check_int("n", n, minimum=2)
        k = check_int("k", k, minimum=1)
        rounds = check_int("rounds", rounds, minimum=1)
        m = check_int("m", m, minimum=1, allow_none=True)
        if m is not None and m < rounds * k:
            raise ValueError(f"m={m} candidates cannot fill rounds * k = {rounds} * {k} = "
                             f"{rounds * k} trainings")
        if featurize is not None and not callable(featurize):
            raise ValueError(f"featurize must be a callable (cells) -> inputs, got {featurize!r}")
        if featurize is not None and features is not None:
            raise ValueError("featurize= builds the inputs; features= gives them: pass one")
        budget = backend.max_budget if budget is None else check_budget("budget", budget)
        backend.fidelity(budget)  # names a budget the backend does not allow
        est = as_predictor(predictor, backend.space)
        rng = as_rng(seed)  # this search's generator: it draws the pool first
        self._objects: list[Any] | None = None  # pool cell objects, where known
        ids, x = self._inputs(backend, est, featurize, features, n, m, rng, constraint)
        if len(ids) < n + rounds * k:
            raise ValueError(f"the pool holds {len(ids)} cells, fewer than n + rounds * k = "
                             f"{n} + {rounds} * {k} = {n + rounds * k}")
        super().__init__(backend, (ids, x), regressor=est, k_init=n, n=k, min_budget=budget,
                         max_budget=budget, max_rounds=rounds, seed=rng, label=label,
                         constraint=constraint)
        self.seed = seed
        self.predictor = est
        self.k, self.rounds, self.m = k, rounds, m
        self.budget = self.max_budget

    def _inputs(self, backend: Backend, est: Any, featurize: Featurize | None,
                features: tuple[Sequence[str], Any] | None, n: int, m: int | None,
                rng: np.random.Generator, constraint: CostConstraint | None
                ) -> tuple[list[str], Any]:
        """The pool's cell ids and predictor inputs (cell objects kept in ``_objects``), kept
        to the cells that meet ``constraint`` before ``m`` of them are drawn."""
        if features is not None:
            if not (isinstance(features, tuple) and len(features) == 2):
                raise ValueError(f"features must be None or (cell ids, inputs), got "
                                 f"{features!r}")
            ids = [str(i) for i in features[0]]
            x, n_rows, shape = _rows(features[1])
            if n_rows != len(ids) or not ids:
                raise ValueError(f"features=(ids, inputs) needs one row per id, got "
                                 f"{len(ids)} ids and shape {shape}")
            ids, x = feasible_rows(backend, constraint, ids, x)
            if m is None:
                return ids, x
            if n + m > len(ids):
                raise ValueError(f"n + m = {n + m} exceeds the {len(ids)} cells of features")
            picks = np.sort(rng.choice(len(ids), size=n + m, replace=False))
            return [ids[i] for i in picks], take_rows(x, picks)
        fn = default_featurize(est, backend.space) if featurize is None else featurize
        if m is None:
            try:
                ids, cells = _table_cells(backend)
            except ValueError:
                raise ValueError(f"backend {backend!r} has no table to take every cell of: "
                                 "pass m= (the candidates to draw) or features=") from None
            ids, cells = feasible_rows(backend, constraint, ids, cells)
        else:
            cells = constrained(backend, constraint).sample(n + m, rng)
            ids = [backend.cell_id(c) for c in cells]
        self._objects = list(cells)
        return ids, fn(list(cells))

    def _cell(self, pos: int) -> Any:
        return super()._cell(pos) if self._objects is None else self._objects[pos]

    def _log(self, result: Evaluation, ranker_score: float, decision: str,
             **extra: Any) -> dict[str, Any]:
        return super()._log(result, ranker_score, decision, **{"predicted": math.nan, **extra})

    def _adopt(self, row: Mapping[str, Any], result: Evaluation, **extra: Any) -> None:
        """A round's evaluation: one of the predicted top k (SH's kept/dropped does not apply)."""
        super()._adopt({**row, "decision": "predicted top"}, result,
                       predicted=self.predicted.get(result.cell_id), **extra)

    def table(self) -> pd.DataFrame:
        """The candidates of the latest fit, best predicted first: ``decision`` "trained"
        (with the round, observed score and final accuracy) or "candidate"; empty before the
        first fit."""
        if self.pool_scores is None:
            return pd.DataFrame(columns=list(TABLE_COLUMNS))
        pool, scores = self.pool_scores
        order = np.argsort(-scores, kind="stable")
        done = {r["candidate"]: r for r in self._rows if r.get("round", -1) >= 0}
        rows = []
        for rank, j in enumerate(order, start=1):
            cid = self.ids[pool[j]]
            r = done.get(cid)
            rows.append({"rank": rank, "candidate": cid,
                         "cell": (r["cell"] if r is not None
                                  else self.backend.format(self._cell(int(pool[j])))),
                         "predicted": float(scores[j]),
                         "decision": "candidate" if r is None else "trained",
                         "round": None if r is None else r["round"],
                         "score": np.nan if r is None else r["score"],
                         "final": np.nan if r is None else r["final"]})
        return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
