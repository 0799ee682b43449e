"""Shared pieces of every search: evaluation results, the backend interface, rankers, the
seeded step-through ``Search`` base class and the registry of search methods."""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from workbench._checks import check_int, check_real
from workbench._registry import Registry
from workbench.spaces import RngLike, SearchSpace, as_rng

_EPS = 1e-9  # relative tolerance when comparing budgets computed as min * eta**i


# -- results and backends ---------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of a cell at a budget: the observed score and the seconds it was charged.

    ``budget`` is what the search asked for (epochs, or the backend's unit); ``fidelity`` is
    what the backend actually ran (a tabular backend rounds up to a measured column). ``cost``
    is the charge for this call (only the extra work when resumed from ``resumed_from``);
    ``full_cost`` the from-scratch cost. ``final`` is the table's final accuracy, for analysis
    only (NaN when unknown). ``snapshots``: the run's weight/gradient features so far (a
    ``workbench.features.Snapshots``, training backends only), for rankers that read dynamics;
    ``info``: anything else the backend reports (e.g. curves, checkpoint path).
    """

    cell: Hashable
    cell_id: str
    budget: float
    fidelity: float
    score: float
    cost: float
    full_cost: float
    final: float = math.nan
    resumed_from: float | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    snapshots: Any = None


class Backend(ABC):
    """What a search needs from the world: sample and identify cells, and evaluate them.

    A tabular backend looks results up; a training backend trains. ``slow`` says whether
    ``run`` should show a progress bar by default. ``evaluate(..., previous=ev)`` continues the
    run ``ev`` of the same cell (Successive Halving promotions) and charges only the extra work.
    """

    space: SearchSpace
    slow: bool = False
    budget_unit: str = "epochs"  #: what a budget counts (for tables and widgets)
    cost_unit: str = "s"  #: what ``Evaluation.cost`` counts (simulated or wall seconds)

    @abstractmethod
    def evaluate(self, cell: Any, budget: float, previous: Evaluation | None = None
                 ) -> Evaluation:
        """Evaluate ``cell`` after ``budget`` epochs (continuing ``previous`` when given)."""

    def evaluate_many(self, requests: Sequence[tuple[Any, float, Evaluation | None]]
                      ) -> list[Evaluation]:
        """Evaluate ``(cell, budget, previous)`` requests, results in order; a search hands a
        whole batch (an SH rung) here so a parallel backend (Ray) can run it at once. This
        default evaluates them one after the other."""
        return [self.evaluate(c, b, previous=p) for c, b, p in requests]

    @abstractmethod
    def fidelity(self, budget: float) -> float:
        """The budget actually run for a requested ``budget``; ValueError if not allowed."""

    @abstractmethod
    def sample(self, n: int, rng: RngLike = None, exclude: Collection[str] = ()) -> list[Any]:
        """``n`` distinct random cells whose ids are not in ``exclude``."""

    @abstractmethod
    def resolve(self, cell: Any) -> Any:
        """The canonical cell object for a cell, cell string or id (ValueError if unknown)."""

    @abstractmethod
    def contains(self, cell: Any) -> bool:
        """Whether ``cell`` can be evaluated (a table backend: whether it is in the table)."""

    @abstractmethod
    def cell_id(self, cell: Any) -> str:
        """A stable string key of ``cell`` (the table id for tabular backends)."""

    @property
    @abstractmethod
    def max_budget(self) -> float:
        """The largest budget this backend accepts (epochs)."""

    @property
    def min_budget(self) -> float:
        """The smallest sensible budget (epochs): the default first rung of SH and Hyperband."""
        return 1.0

    def format(self, cell: Any) -> str:
        """The canonical cell string (for tables and histories)."""
        return self.space.format(cell)

    def best_final(self) -> float:
        """The best final accuracy reachable (the regret reference; NaN if unknown)."""
        return math.nan


# -- rankers ------------------------------------------------------------------------------------


class Ranker(ABC):
    """Scores evaluated candidates for selection (higher is better); called on a whole batch.

    Rankers are not charged any cost: a zero-cost proxy's own seconds are not simulated.
    """

    name: str = "ranker"
    uses_oracle: bool = False

    @abstractmethod
    def __call__(self, cells: Sequence[Any], results: Sequence[Evaluation]) -> np.ndarray:
        """One score per (cell, result) pair."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class ObservedRanker(Ranker):
    """The classic criterion: the observed score at the current budget."""

    name = "observed"

    def __call__(self, cells: Sequence[Any], results: Sequence[Evaluation]) -> np.ndarray:
        return np.array([r.score for r in results], dtype=float)


class OracleRanker(Ranker):
    """The table's final accuracy: an upper bound for teaching, never a real strategy."""

    name = "oracle"
    uses_oracle = True

    def __call__(self, cells: Sequence[Any], results: Sequence[Evaluation]) -> np.ndarray:
        return np.array([r.final for r in results], dtype=float)


class FunctionRanker(Ranker):
    """Any user function ``fn(cell, result) -> score``."""

    def __init__(self, fn: Callable[[Any, Evaluation], float], name: str | None = None) -> None:
        if not callable(fn):
            raise ValueError(f"ranker function must be callable, got {fn!r}")
        self.fn = fn
        self.name = name or str(getattr(fn, "__name__", "function"))

    def __call__(self, cells: Sequence[Any], results: Sequence[Evaluation]) -> np.ndarray:
        return np.array([float(self.fn(c, r)) for c, r in zip(cells, results, strict=True)])


class BatchRanker(Ranker):
    """Any user function ``fn(cells, results) -> scores`` on a whole rung at once, for
    criteria that compare candidates with each other (e.g. z-scores taken over the rung)."""

    def __init__(self, fn: Callable[[list[Any], list[Evaluation]], Any],
                 name: str | None = None) -> None:
        if not callable(fn):
            raise ValueError(f"batch ranker function must be callable, got {fn!r}")
        self.fn = fn
        self.name = name or str(getattr(fn, "__name__", "batch"))

    def __call__(self, cells: Sequence[Any], results: Sequence[Evaluation]) -> np.ndarray:
        return np.asarray(self.fn(list(cells), list(results)), dtype=float).ravel()


class ProxyRanker(Ranker):
    """A zero-cost-proxy-like ``fn(cell) -> score``, cached per cell (it ignores the budget)."""

    def __init__(self, fn: Callable[[Any], float], name: str | None = None,
                 cache: bool = True) -> None:
        if not callable(fn):
            raise ValueError(f"proxy must be callable, got {fn!r}")
        self.fn = fn
        self.name = name or str(getattr(fn, "__name__", "proxy"))
        self._cache: dict[Hashable, float] | None = {} if cache else None

    def _one(self, cell: Any) -> float:
        if self._cache is None:
            return float(self.fn(cell))
        if cell not in self._cache:
            self._cache[cell] = float(self.fn(cell))
        return self._cache[cell]

    def __call__(self, cells: Sequence[Any], results: Sequence[Evaluation]) -> np.ndarray:
        return np.array([self._one(c) for c in cells], dtype=float)


class PredictorRanker(Ranker):
    """A fitted predictor: scores = ``predictor.predict(X)`` with one row per candidate,
    ``featurize(cell, result)`` giving the row (array-like of any shape, stacked along a new
    first axis, or a mapping → named columns). For dynamics use :class:`DynamicsRanker`."""

    def __init__(self, predictor: Any, featurize: Callable[[Any, Evaluation], Any],
                 name: str | None = None) -> None:
        if not callable(getattr(predictor, "predict", None)):
            raise ValueError(f"predictor must have a predict(X) method, got {predictor!r}")
        if not callable(featurize):
            raise ValueError(f"featurize must be callable (cell, result) -> row, got {featurize!r}")
        self.predictor = predictor
        self.featurize = featurize
        self.name = name or type(predictor).__name__

    def __call__(self, cells: Sequence[Any], results: Sequence[Evaluation]) -> np.ndarray:
        rows = [self.featurize(c, r) for c, r in zip(cells, results, strict=True)]
        if not rows:
            return np.zeros(0)
        if all(isinstance(r, (Mapping, pd.Series)) for r in rows):
            x: Any = pd.DataFrame([dict(r) for r in rows])
        else:  # rows keep their shape: 1-D rows give [n, d], graphs or maps [n, ...]
            arrays = [np.atleast_1d(np.asarray(r, dtype=float)) for r in rows]
            shapes = {a.shape for a in arrays}
            if len(shapes) != 1:
                raise ValueError(f"featurize gave rows of different shapes {sorted(shapes)}")
            x = np.stack(arrays)
        out = np.asarray(self.predictor.predict(x), dtype=float).ravel()
        if out.shape != (len(rows),):
            raise ValueError(f"predictor returned {out.size} scores for {len(rows)} candidates")
        return out


RankerLike = str | Ranker | Callable[..., float] | None


def as_ranker(spec: RankerLike) -> Ranker:
    """A Ranker from ``"observed"``, ``"oracle"``, ``"dynamics"`` (the bundled dynamics
    predictor), a Ranker, ``fn(cell, result)`` or ``fn(cell)``.

    A callable that accepts two positional arguments is called as ``(cell, result)``, one that
    accepts only one as a proxy ``(cell)``. A bare predictor needs ``PredictorRanker``.
    """
    if spec is None or (isinstance(spec, str) and spec == "observed"):
        return ObservedRanker()
    if isinstance(spec, str):
        if spec == "oracle":
            return OracleRanker()
        if spec == "dynamics":  # the bundled dynamics predictor (a module above this one)
            from workbench.search._dynamics_ranker import DynamicsRanker

            return DynamicsRanker()
        raise ValueError(f"unknown ranker {spec!r}; use 'observed', 'oracle', 'dynamics', a "
                         "Ranker, "
                         "PredictorRanker(predictor, featurize) or a callable")
    if isinstance(spec, Ranker):
        return spec
    if hasattr(spec, "predict") and not callable(spec):
        raise ValueError(f"ranker {spec!r} is a predictor: wrap it as "
                         "PredictorRanker(predictor, featurize)")
    if callable(spec):
        try:
            sig = inspect.signature(spec)
        except (TypeError, ValueError):
            raise ValueError(f"cannot inspect the signature of ranker {spec!r}; wrap it in "
                             "FunctionRanker or ProxyRanker") from None
        for n_args, cls in ((2, FunctionRanker), (1, ProxyRanker)):
            try:
                sig.bind(*([None] * n_args))
            except TypeError:
                continue
            return cls(spec)
        raise ValueError(f"ranker callable {spec!r} must accept (cell, result) or (cell)")
    raise ValueError(f"cannot use {spec!r} as a ranker")


def rank_order(scores: np.ndarray) -> np.ndarray:
    """Positions sorted best first: higher score first, NaN last, ties by position (stable)."""
    s = np.asarray(scores, dtype=float)
    key = np.where(np.isnan(s), -np.inf, s)
    return np.lexsort((np.arange(len(s)), -key))


# -- validation helpers ---------------------------------------------------------------------------


def check_eta(eta: Any) -> float:
    """``eta`` as a number >= 2 (an int when it is integral); ValueError naming it otherwise."""
    value = check_real("eta", eta, minimum=2)
    return int(value) if value.is_integer() else value


def check_budget(name: str, value: Any) -> float:
    """A finite budget > 0 in the backend's unit (epochs or mini-batches), returned unchanged."""
    check_real(name, value, minimum=0, inclusive="neither")
    return value


def check_budgets(min_budget: Any, max_budget: Any) -> tuple[float, float]:
    """Validated ``(min_budget, max_budget)`` with ``0 < min <= max``."""
    lo, hi = check_budget("min_budget", min_budget), check_budget("max_budget", max_budget)
    if lo > hi:
        raise ValueError(f"min_budget {min_budget!r} must not exceed max_budget {max_budget!r}")
    return lo, hi


# -- the search base class ---------------------------------------------------------------------

BASE_COLUMNS = ("iteration", "eval", "candidate", "cell", "budget", "fidelity", "cost",
                "cum_cost", "score", "ranker_score", "final", "decision")


def incumbent_positions(budgets: np.ndarray, ranker_scores: np.ndarray) -> np.ndarray:
    """Running incumbent after each evaluation: the best ranker score among the evaluations at
    the highest budget seen so far (ties: the earliest). Scores at different budgets never mix."""
    out = np.empty(len(budgets), dtype=int)
    best_b, best_s, best_i = -math.inf, -math.inf, -1
    for i, (b, s) in enumerate(zip(budgets, ranker_scores, strict=True)):
        s = -math.inf if math.isnan(s) else s
        if best_i < 0 or b > best_b or (b == best_b and s > best_s):
            best_b, best_s, best_i = b, s, i
        out[i] = best_i
    return out


class Search(ABC):
    """A seeded state machine: ``step()`` makes one decision, ``run()`` steps to the end.

    Every evaluation is logged once in ``history``; the same seed gives the same history.
    ``best()`` is the incumbent by the method's own criterion (see ``incumbent_positions``).
    """

    #: The registry key (``get_search(name)``), the same for every instance of the class.
    name: ClassVar[str] = "search"
    #: The human label of figures, tables and progress bars (e.g. "SH"); an instance may set its
    #: own (``Rounds(..., label="SH x3")``).
    label: str = "search"
    extra_columns: ClassVar[tuple[str, ...]] = ()

    def __init__(self, backend: Backend, *, seed: RngLike = 0, ranker: RankerLike = "observed"
                 ) -> None:
        if not isinstance(backend, Backend):
            raise ValueError(f"backend must be a workbench.search Backend, got {backend!r}")
        self.backend = backend
        self.seed = seed
        self.rng = as_rng(seed)
        self.ranker = as_ranker(ranker)
        self._rows: list[dict[str, Any]] = []
        self._cells: list[Any] = []  # the evaluated cell objects, parallel to _rows
        self._results: list[Evaluation] = []  # the evaluations themselves, parallel to _rows
        self._steps = 0
        self._cost = 0.0

    # -- to implement -------------------------------------------------------------------------
    @property
    @abstractmethod
    def done(self) -> bool:
        """Whether the search has nothing left to do."""

    @abstractmethod
    def _step(self) -> None:
        """Make one decision, logging its evaluations with ``_log``."""

    @abstractmethod
    def table(self) -> pd.DataFrame:
        """The current state as a table (e.g. SH: the current rung)."""

    @property
    def finite(self) -> bool:
        """Whether ``run()`` without a limit (``max_cost``, ...) ends by itself."""
        return True

    # -- stepping -----------------------------------------------------------------------------
    def step(self) -> pd.DataFrame:
        """Make one decision; returns the evaluations it logged (RuntimeError when done)."""
        start = len(self._rows)
        self._advance()
        return self._frame(self._rows[start:])

    def _advance(self) -> None:
        """``step()`` without building the returned frame (used by ``run``)."""
        if self.done:
            raise RuntimeError(f"{self.label} is done; nothing left to step")
        self._step()
        self._steps += 1

    def step_rows(self) -> list[tuple[dict[str, Any], Evaluation]]:
        """``step()`` for a composite search driving this one: the new history rows as dicts
        (copies), each with its Evaluation, without building a frame (see ``_adopt``)."""
        start = len(self._rows)
        self._advance()
        return [(dict(row), res) for row, res in zip(self._rows[start:], self._results[start:],
                                                     strict=True)]

    @property
    def cost_unit(self) -> str:
        """What ``total_cost`` and ``run(max_cost=...)`` count: the backend's ``cost_unit``
        ("s", simulated or wall seconds; "mini-batches" for ``charge="steps"``)."""
        return str(getattr(self.backend, "cost_unit", "s"))

    def run(self, *, max_cost: float | None = None, max_evaluations: int | None = None,
            max_steps: int | None = None, progress: bool | None = None) -> pd.DataFrame:
        """Step until done, or until the total cost reaches ``max_cost`` (in ``cost_unit``),
        ``n_evaluations`` reaches ``max_evaluations`` or after ``max_steps`` steps, whichever
        comes first (the step crossing a cost or evaluation limit is finished, so it may
        overshoot); returns the history. ``progress``: a bar (default: for slow backends)."""
        return self._run(max_cost=max_cost, max_evaluations=max_evaluations,
                         max_steps=max_steps, progress=progress)

    def _run(self, *, max_cost: float | None, max_evaluations: int | None,
             max_steps: int | None, progress: bool | None,
             stop: Callable[[], bool] | None = None) -> pd.DataFrame:
        """``run`` with one more stopping rule ``stop()`` checked before each step (a
        subclass's own limit, e.g. LayerNAS's ``max_sweeps``; it counts as a limit)."""
        unit = self.cost_unit
        check_real(f"max_cost ({unit})", max_cost, minimum=0, inclusive="neither",
                   allow_none=True)
        check_int("max_evaluations", max_evaluations, minimum=1, allow_none=True)
        check_int("max_steps", max_steps, minimum=0, allow_none=True)
        if (max_cost is None and max_evaluations is None and max_steps is None and stop is None
                and not self.finite):
            raise ValueError(f"{self.label} never finishes by itself: pass max_cost= ({unit}), "
                             "max_evaluations= or max_steps= to run(), or max_evaluations= "
                             "when creating it")
        steps = 0

        def reached() -> float:
            """What the bar counts: the first given of cost, evaluations and steps."""
            if max_cost is not None:
                return min(self._cost, max_cost)
            if max_evaluations is not None:
                return min(self.n_evaluations, max_evaluations)
            return steps

        total = max_cost if max_cost is not None else (
            max_evaluations if max_evaluations is not None else max_steps)
        bar_unit = unit if max_cost is not None else (
            "eval" if max_evaluations is not None else "step")
        show = self.backend.slow if progress is None else bool(progress)
        with tqdm(total=total, disable=not show, desc=self.label, unit=bar_unit,
                  leave=False) as bar:
            while not self.done and (max_cost is None or self._cost < max_cost) and (
                    max_evaluations is None or self.n_evaluations < max_evaluations) and (
                    max_steps is None or steps < max_steps) and (stop is None or not stop()):
                before = reached()
                self._advance()
                steps += 1
                bar.update(reached() - before)
        return self.history

    # -- logging and evaluation helpers -----------------------------------------------------------
    def _evaluate(self, cells: Sequence[Any], budget: float,
                  previous: Sequence[Evaluation | None] | None = None
                  ) -> tuple[list[Evaluation], np.ndarray]:
        """Evaluate ``cells`` at ``budget`` and score them with the ranker (not logged yet)."""
        prev = list(previous) if previous is not None else [None] * len(cells)
        results = self.backend.evaluate_many(
            [(c, budget, p) for c, p in zip(cells, prev, strict=True)])
        scores = np.asarray(self.ranker(list(cells), results), dtype=float).ravel()
        if scores.shape != (len(results),):
            raise ValueError(f"ranker {self.ranker!r} returned {scores.size} scores for "
                             f"{len(results)} candidates")
        return results, scores

    def _log(self, result: Evaluation, ranker_score: float, decision: str,
             **extra: Any) -> dict[str, Any]:
        """Append one evaluation to the history (cost accumulates here)."""
        self._cost += float(result.cost)
        row = {"iteration": self._steps, "eval": len(self._rows), "candidate": result.cell_id,
               "cell": self.backend.format(result.cell), "budget": float(result.budget),
               "fidelity": float(result.fidelity), "cost": float(result.cost),
               "cum_cost": self._cost, "score": float(result.score),
               "ranker_score": float(ranker_score), "final": float(result.final),
               "decision": decision}
        row.update({k: extra.get(k) for k in self.extra_columns})
        self._rows.append(row)
        self._cells.append(result.cell)
        self._results.append(result)
        return row

    def _adopt(self, row: Mapping[str, Any], result: Evaluation, **extra: Any) -> None:
        """Log an inner search's evaluation (a row from its ``step_rows()``) as this search's
        own: iteration, eval and cum_cost renumbered here, ``extra`` columns set."""
        self._cost += float(row["cost"])
        rec = {**row, "iteration": self._steps, "eval": len(self._rows), "cum_cost": self._cost,
               **extra}
        self._rows.append({k: rec.get(k) for k in (*BASE_COLUMNS, *self.extra_columns)})
        self._cells.append(result.cell)
        self._results.append(result)

    def _frame(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        return pd.DataFrame(rows, columns=[*BASE_COLUMNS, *self.extra_columns])

    # -- state --------------------------------------------------------------------------------
    @property
    def history(self) -> pd.DataFrame:
        """Every evaluation so far, in order (one row each)."""
        return self._frame(self._rows)

    @property
    def evaluations(self) -> list[Evaluation]:
        """The :class:`Evaluation` behind each history row (snapshots, curves, checkpoints)."""
        return list(self._results)

    @property
    def total_cost(self) -> float:
        """Cost charged so far, in ``cost_unit`` (seconds unless the backend counts otherwise)."""
        return self._cost

    @property
    def n_evaluations(self) -> int:
        """Evaluations made so far."""
        return len(self._rows)

    @property
    def n_steps(self) -> int:
        """``step()`` calls made so far."""
        return self._steps

    def _incumbent(self) -> int:
        if not self._rows:
            raise RuntimeError(f"{self.label} has made no evaluation yet")
        budgets = np.array([r["budget"] for r in self._rows])
        scores = np.array([r["ranker_score"] for r in self._rows])
        return int(incumbent_positions(budgets, scores)[-1])

    def best(self) -> tuple[Any, float]:
        """(cell, observed score) of the incumbent: best ranker score at the highest budget
        (RuntimeError before the first evaluation)."""
        i = self._incumbent()
        return self._cells[i], float(self._rows[i]["score"])

    def incumbent_final(self) -> float:
        """The table final accuracy of the incumbent (for regret; never used to decide)."""
        return float(self._rows[self._incumbent()]["final"])

    def incumbent_trace(self) -> tuple[np.ndarray, np.ndarray]:
        """After each history row: the evaluations made so far and the incumbent's row then
        (-1: none yet), what ``search_curve`` plots. Here every row is an evaluation and the
        incumbent is ``incumbent_positions``'; a search with rows that are not evaluations or
        another answer (LayerNAS) overrides this."""
        budgets = np.array([r["budget"] for r in self._rows], dtype=float)
        scores = np.array([r["ranker_score"] for r in self._rows], dtype=float)
        return np.arange(1, len(self._rows) + 1), incumbent_positions(budgets, scores)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(ranker={self.ranker.name!r}, seed={self.seed!r}, "
                f"steps={self._steps}, evaluations={len(self._rows)}, "
                f"cost={self._cost:.0f} {self.cost_unit}, done={self.done})")


SEARCHES: Registry[Search] = Registry("search")


def register_search(name: str) -> Callable[[type[Search]], type[Search]]:
    """Class decorator adding a search method under ``name``, which must equal the class's
    ``name``: ``@register_search("sh")`` on ``SuccessiveHalving`` (``name = "sh"``)."""
    return SEARCHES.register(name)


def list_searches() -> list[str]:
    """Names of the registered search methods, sorted (each one :func:`get_search` builds)."""
    return SEARCHES.names()


def get_search(name: str, **kwargs: Any) -> Search:
    """A new search ``name`` ('sh', 'hyperband', 'random', 'evolution', ...) built from
    ``kwargs`` (``backend=`` first); ValueError naming the registered searches if unknown."""
    return SEARCHES.create(name, **kwargs)
