"""Searches made of searches: ``Rounds`` repeats a finite search with fresh cells, and
``PredictorSH`` runs Successive Halving rounds over the cells a regressor predicts best,
refitting it on every cell trained to the largest budget after each round."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from workbench._checks import check_int
from workbench.search._base import (
    Backend,
    BatchRanker,
    Evaluation,
    Search,
    check_budgets,
    check_eta,
    register_search,
)
from workbench.search._constraint import CostConstraint, constrained
from workbench.search._sh import SuccessiveHalving, sh_schedule
from workbench.spaces import RngLike

SearchMaker = Callable[[Backend, np.random.Generator], Search]
FeaturesLike = tuple[Sequence[str], Any] | Callable[[Any], Any] | None


def take_rows(x: Any, rows: Sequence[int] | np.ndarray) -> Any:
    """Rows ``rows`` (positions) of predictor inputs ``x``: an array's first axis (a feature
    matrix, a graph array), a DataFrame's rows, or the items of a list (e.g. cells)."""
    pos = np.asarray(rows, dtype=int)
    if isinstance(x, pd.DataFrame):
        return x.iloc[pos]
    if isinstance(x, np.ndarray):
        return x[pos]
    return [x[int(i)] for i in pos]


def _rows(x: Any) -> tuple[Any, int, tuple[int, ...]]:
    """Predictor inputs as stored (a DataFrame, an array with a row axis or a list) with their
    row count and shape; ValueError for anything else."""
    if isinstance(x, pd.DataFrame):
        return x, len(x), tuple(x.shape)
    if isinstance(x, list):
        return x, len(x), (len(x),)
    arr = np.asarray(x)
    if arr.ndim < 2:
        raise ValueError(f"features need one row per id (a matrix, a graph array, a DataFrame "
                         f"or a list), got an array of shape {arr.shape}")
    return arr, len(arr), tuple(arr.shape)


@register_search("rounds")
class Rounds(Search):
    """Repeat a finite search made by ``make(backend, rng)`` (fresh cells each round, drawn
    from this search's generator) until ``run(max_cost=...)`` or ``max_rounds``; one
    ``step()`` = one step of the current round. The history adds a ``round`` column;
    ``label`` names it in figures and progress bars."""

    name: ClassVar[str] = "rounds"
    extra_columns: ClassVar[tuple[str, ...]] = ("round",)

    def __init__(self, backend: Backend, make: SearchMaker, *, seed: RngLike = 0,
                 max_rounds: int | None = None, label: str = "rounds") -> None:
        super().__init__(backend, seed=seed)
        if not callable(make):
            raise ValueError(f"make must be a callable (backend, rng) -> Search, got {make!r}")
        self.make = make
        self.max_rounds = check_int("max_rounds", max_rounds, minimum=1, allow_none=True)
        self.label = str(label)
        self.round = -1  # the current round (-1: none started)
        self.current: Search | None = None

    @property
    def finite(self) -> bool:
        return self.max_rounds is not None

    @property
    def done(self) -> bool:
        last = self.max_rounds is not None and self.round >= self.max_rounds - 1
        return last and self.current is not None and self.current.done

    def _new_round(self) -> Search:
        """The next round's search (subclasses may learn from the previous one first)."""
        return self.make(self.backend, self.rng)

    def _step(self) -> None:
        if self.current is None or self.current.done:
            self.round += 1
            search = self._new_round()
            if not isinstance(search, Search) or not search.finite:
                raise ValueError(f"a round must be a finite workbench.search Search, got "
                                 f"{search!r} from {self.make!r}")
            self.current = search
        for row, res in self.current.step_rows():
            self._adopt(row, res, round=self.round)

    def table(self) -> pd.DataFrame:
        """The current round's table (the history before the first round)."""
        return self.current.table() if self.current is not None else self.history


def table_features(backend: Backend, encoding: str | None = None
                   ) -> tuple[list[str], np.ndarray]:
    """Cell ids of a tabular backend's benchmark table and the matrix of their ``encoding``
    (one row each; default: the space's ``default_encoding``)."""
    ids, cells = _table_cells(backend)
    space = backend.space
    if encoding is None:
        encoding = space.default_encoding
    if encoding not in space.encodings:
        raise ValueError(f"encoding {encoding!r} is not one of the {space.name} encodings "
                         f"{list(space.encodings)}")
    return ids, np.stack([space.encode(c, encoding) for c in cells])


def feasible_rows(backend: Backend, constraint: CostConstraint | None, ids: list[str], x: Any
                  ) -> tuple[list[str], Any]:
    """The pool ``(ids, x)`` kept to the cells of ``backend`` that meet ``constraint`` (as
    given when None); ValueError when none of them does."""
    if constraint is None:
        return ids, x
    ok = set(constraint.feasible_ids(backend))  # ValueError when no cell of the table meets it
    keep = [i for i, k in enumerate(ids) if k in ok]
    if not keep:
        raise ValueError(f"none of the {len(ids)} pool cells meets {constraint!r}")
    return [ids[i] for i in keep], take_rows(x, keep)


def _table_cells(backend: Backend) -> tuple[list[str], list[Any]]:
    """Ids and parsed cells of the backend's benchmark table, in table order."""
    bench = getattr(backend, "benchmark", None)
    if bench is None or not callable(getattr(bench, "table", None)):
        raise ValueError(f"backend {backend!r} has no benchmark table: give the candidate pool "
                         "as features=(cell ids, matrix)")
    table = bench.table()
    return ([str(i) for i in table["cell_id"]],
            [backend.space.parse(c) for c in table["cell"]])


@register_search("predictor_sh")
class PredictorSH(Rounds):
    """Successive Halving guided by a regressor on cell features: fit it on ``k_init`` random
    pool cells trained to ``max_budget`` (charged and logged, round -1), run SH on the ``n``
    not yet evaluated pool cells it predicts best, whose rungs below ``max_budget`` keep the top
    1/eta by z(observed) + z(predicted), refit on every cell trained to ``max_budget`` so far,
    and repeat for at most ``max_rounds`` rounds (or until the pool is used up).

    ``features``: the candidate pool and its feature matrix, ``(cell ids, matrix)`` with one row
    per id (ids as ``backend.cell_id`` gives them); or ``fn(cell) -> vector`` over the backend's
    table cells; default the space's ``default_encoding`` of every table cell
    (``table_features``).
    ``regressor``: a scikit-learn regressor, cloned at each fit with ``random_state`` drawn
    from this search's generator (default: a 20-tree random forest). Predictions are not
    charged, like every ranker here. ``constraint``: a :class:`CostConstraint`; the pool is
    kept to its feasible cells, so no infeasible cell is trained or returned.
    """

    name: ClassVar[str] = "predictor_sh"
    _initial_decision: ClassVar[str] = "predictor data"  # the decision of the random batch

    def __init__(self, backend: Backend, features: FeaturesLike = None, *,
                 regressor: Any = None, encoding: str | None = None, k_init: int = 30,
                 n: int = 27, eta: float = 3, min_budget: float | None = None,
                 max_budget: float | None = None, max_rounds: int | None = 8,
                 seed: RngLike = 0, label: str = "SH+predictor",
                 constraint: CostConstraint | None = None) -> None:
        self.constraint = constraint
        view = constrained(backend, constraint)  # only feasible cells from here on
        super().__init__(view, self._sh, seed=seed, max_rounds=max_rounds, label=label)
        if regressor is None:
            from sklearn.ensemble import RandomForestRegressor

            regressor = RandomForestRegressor(n_estimators=20, n_jobs=1)
        if not (callable(getattr(regressor, "fit", None))
                and callable(getattr(regressor, "predict", None))):
            raise ValueError(f"regressor must be a scikit-learn regressor with fit and predict, "
                             f"got {regressor!r}")
        self.regressor = regressor
        if encoding is not None and features is not None:
            raise ValueError(f"encoding={encoding!r} applies only to the default features; "
                             "encode them yourself when giving features=")
        self.ids, self.x = feasible_rows(backend, constraint,
                                         *self._pool(backend, features, encoding))
        self.row = {k: i for i, k in enumerate(self.ids)}
        self.k_init = check_int("k_init", k_init, minimum=1)
        if self.k_init > len(self.ids):
            raise ValueError(f"k_init {k_init!r} exceeds the {len(self.ids)} cells of the pool")
        self.n = check_int("n", n, minimum=1)
        self.eta = check_eta(eta)
        lo = backend.min_budget if min_budget is None else min_budget
        hi = backend.max_budget if max_budget is None else max_budget
        self.min_budget, self.max_budget = check_budgets(lo, hi)
        self.max_fid = backend.fidelity(self.max_budget)  # names a budget that is not allowed
        for b in sh_schedule(self.n, self.min_budget, self.max_budget, self.eta)["budget"]:
            backend.fidelity(b)  # every rung budget of a round must be allowed
        self.labels: dict[str, float] = {}  # cell id -> observed score at max_budget
        self.model: Any = None  # the regressor fitted on ``labels``
        self.predicted: dict[str, float] = {}  # the current round's candidates -> prediction
        #: The free pool positions at the latest fit and their predictions (None: no fit yet).
        self.pool_scores: tuple[np.ndarray, np.ndarray] | None = None
        self._free = np.ones(len(self.ids), dtype=bool)  # pool cells not evaluated yet

    @staticmethod
    def _pool(backend: Backend, features: FeaturesLike, encoding: str | None
              ) -> tuple[list[str], np.ndarray]:
        """Validated (pool cell ids, feature matrix)."""
        if features is None:
            return table_features(backend, encoding)
        if callable(features):
            ids, cells = _table_cells(backend)
            x = np.stack([np.asarray(features(c), dtype=float).ravel() for c in cells])
        elif isinstance(features, tuple) and len(features) == 2:
            given = list(features[0])
            x, n_rows, shape = _rows(features[1])
            if n_rows != len(given) or not given:
                raise ValueError(f"features=(ids, matrix) needs one row per id, got "
                                 f"{len(given)} ids and shape {shape}")
            ids = [str(i) for i in given]
        else:
            raise ValueError(f"features must be None, (cell ids, matrix) or fn(cell) -> vector, "
                             f"got {features!r}")
        dup = sorted(k for k, c in Counter(ids).items() if c > 1)
        if dup:
            raise ValueError(f"features name some cells twice: {dup[:5]}")
        return ids, x

    @property
    def finite(self) -> bool:
        """Always: every round takes at least one cell out of the finite pool."""
        return True

    @property
    def done(self) -> bool:
        if self.model is None:
            return False
        between = self.current is None or self.current.done
        return super().done or (between and not self._free.any())

    def _fit(self) -> None:
        """Refit a clone of the regressor on every labelled cell (seed from this search)."""
        from sklearn.base import clone

        ids = sorted(self.labels)
        model = clone(self.regressor, safe=False)
        seed = int(self.rng.integers(2**31))
        if "random_state" in getattr(model, "get_params", dict)():
            model.set_params(random_state=seed)
        self.model = model.fit(take_rows(self.x, [self.row[i] for i in ids]),
                               [self.labels[i] for i in ids])
        pool = np.flatnonzero(self._free)  # what the next round chooses from
        scores = np.asarray(self.model.predict(take_rows(self.x, pool)), dtype=float).ravel()
        if scores.shape != pool.shape:
            raise ValueError(f"the regressor returned {scores.size} predictions for "
                             f"{pool.size} cells")
        self.pool_scores = (pool, scores)

    def _rank(self, cells: list[Any], results: list[Evaluation]) -> np.ndarray:
        """Observed score at the largest fidelity, else z(observed) + z(predicted)."""
        obs = np.array([r.score for r in results], dtype=float)
        if all(r.fidelity >= self.max_fid for r in results) or len(results) < 2:
            return obs
        pred = np.array([self.predicted[r.cell_id] for r in results], dtype=float)

        def z(v: np.ndarray) -> np.ndarray:
            return (v - v.mean()) / (v.std() or 1.0)

        return z(obs) + z(pred)

    def _sh(self, backend: Backend, rng: np.random.Generator) -> Search:
        """SH over the ``n`` free pool cells the current model predicts best."""
        assert self.pool_scores is not None  # _fit predicted the free pool
        pool, scores = self.pool_scores
        best = np.argsort(-scores, kind="stable")[:self.n]
        top = [self.ids[pool[j]] for j in best]
        self.predicted = dict(zip(top, scores[best], strict=True))
        return SuccessiveHalving(backend, candidates=[self._cell(int(pool[j])) for j in best],
                                 min_budget=self.min_budget,
                                 max_budget=self.max_budget, eta=self.eta, seed=rng,
                                 ranker=BatchRanker(self._rank, "predicted+observed"))

    def _new_round(self) -> Search:
        if self.current is not None:  # learn from the round just finished
            for res in self.current.evaluations:
                if res.fidelity >= self.max_fid:
                    self.labels[res.cell_id] = res.score
            self._fit()
        return self._sh(self.backend, self.rng)

    def _cell(self, pos: int) -> Any:
        """The cell object of pool row ``pos``."""
        return self.backend.resolve(self.ids[pos])

    def _used(self, result: Evaluation) -> None:
        """Take an evaluated cell out of the free pool."""
        pos = self.row.get(result.cell_id)
        if pos is None:
            raise ValueError(f"evaluated cell id {result.cell_id!r} is not among the feature ids: "
                             "features=(ids, matrix) needs the backend's cell ids "
                             "(backend.cell_id(cell))")
        self._free[pos] = False

    def _adopt(self, row: Any, result: Evaluation, **extra: Any) -> None:
        super()._adopt(row, result, **extra)
        self._used(result)

    def _step(self) -> None:
        if self.model is not None:
            super()._step()
            return
        picks = self.rng.choice(len(self.ids), size=self.k_init, replace=False)
        cells = [self._cell(int(i)) for i in picks]
        results, scores = self._evaluate(cells, self.max_budget)
        for res in results:
            self._used(res)
        for res, s in zip(results, scores, strict=True):
            self.labels[res.cell_id] = res.score
            self._log(res, s, self._initial_decision, round=-1)
        self._fit()
