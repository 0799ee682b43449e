"""Cost constraints for search (latency / energy / params under a budget) and the Pareto front of
accuracy against cost.

A :class:`CostConstraint` names a cost (a function of the cell, or ``(metric, device)`` looked up
in the backend's benchmark, e.g. ``("latency", "pixel3")``) and the allowed range; its
:meth:`~CostConstraint.restrict` gives the backend seen through the feasible cells only, so SH,
RE and RS built with ``constraint=`` never sample, mutate into or return an infeasible cell.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from workbench.search._base import Backend
from workbench.search._pool import PoolBackend

#: A cost: ``cost(cell) -> float``, ``(metric, device)`` or a metric name such as "params".
CostLike = Callable[[Any], float] | tuple[str, str] | str


def _fmt(x: float) -> str:
    return f"{x:.4g}"


class CostConstraint:
    """Cells whose cost lies in ``[min_value, max_value]`` (either end open when None).

    ``cost``: a function ``cost(cell) -> float``, ``(metric, device)`` (the benchmark's
    :meth:`~workbench.benchmarks.TabularBenchmark.all_costs`, e.g. ``("latency", "pixel3")`` in
    ms, ``("energy", "fpga")`` in mJ) or ``"params"`` (millions). ``dataset``: the dataset whose
    costs are read (default: the backend's). A constraint that no cell of a backend meets raises
    ``ValueError`` naming the costs' range there.
    """

    def __init__(self, cost: CostLike, max_value: float | None = None, *,
                 min_value: float | None = None, dataset: str | None = None) -> None:
        if isinstance(cost, tuple):
            if len(cost) != 2 or not all(isinstance(c, str) for c in cost):
                raise ValueError(f"cost must be (metric, device), a metric name or a function, "
                                 f"got {cost!r}")
        elif not (isinstance(cost, str) or callable(cost)):
            raise ValueError(f"cost must be (metric, device), a metric name or a function, "
                             f"got {cost!r}")
        for name, v in (("max_value", max_value), ("min_value", min_value)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                                  or not math.isfinite(v)):
                raise ValueError(f"{name} must be a finite number or None, got {v!r}")
        if max_value is None and min_value is None:
            raise ValueError("give max_value and/or min_value (the allowed cost range)")
        if max_value is not None and min_value is not None and min_value > max_value:
            raise ValueError(f"min_value {min_value!r} exceeds max_value {max_value!r}")
        self.cost = cost
        self.max_value = None if max_value is None else float(max_value)
        self.min_value = None if min_value is None else float(min_value)
        self.dataset = dataset
        self._restricted: dict[int, tuple[Backend, PoolBackend]] = {}

    def __repr__(self) -> str:
        return (f"CostConstraint({self.label}, min_value={self.min_value}, "
                f"max_value={self.max_value})")

    @property
    def label(self) -> str:
        """The cost's name: 'pixel3 latency', 'params' or the function's name."""
        if isinstance(self.cost, tuple):
            return f"{self.cost[1]} {self.cost[0]}"
        if isinstance(self.cost, str):
            return self.cost
        return getattr(self.cost, "__name__", "cost")

    # -- costs over a backend's table ---------------------------------------------------------
    def values(self, backend: Backend) -> pd.Series:
        """The cost of every cell of ``backend``'s table, by cell id (table order)."""
        bench = getattr(backend, "benchmark", None)
        if bench is None:
            inner = getattr(backend, "backend", None)
            bench = getattr(inner, "benchmark", None)
        if bench is None:
            raise ValueError(f"a cost constraint needs a table-backed backend (with a "
                             f"benchmark), got {backend!r}")
        dataset = self.dataset or getattr(backend, "dataset", None)
        if callable(self.cost) and not isinstance(self.cost, str):
            table = bench.table()
            fn = self.cost
            vals = [float(fn(bench.cell(i))) for i in table["cell_id"]]
            return pd.Series(vals, index=pd.Index(table["cell_id"].astype(str), name="cell_id"),
                             name=self.label)
        metric, device = (self.cost, None) if isinstance(self.cost, str) else self.cost
        return bench.all_costs(metric, device, dataset=dataset)

    def mask(self, values: pd.Series | np.ndarray) -> np.ndarray:
        """Which of ``values`` meet the constraint."""
        v = np.asarray(values, dtype=float)
        ok = np.isfinite(v)
        if self.min_value is not None:
            ok &= v >= self.min_value
        if self.max_value is not None:
            ok &= v <= self.max_value
        return ok

    def violation(self, values: pd.Series | np.ndarray) -> np.ndarray:
        """How far each of ``values`` breaks the constraint, relative to the bound it breaks
        (0 when it meets it; ``inf`` for a missing, NaN cost): what a constrained sampler
        ranks infeasible cells by."""
        v = np.asarray(values, dtype=float)
        out = np.zeros_like(v)
        for bound, excess in ((self.max_value, lambda b: v - b), (self.min_value, lambda b: b - v)):
            if bound is not None:
                out += np.maximum(excess(bound), 0.0) / max(abs(bound), 1e-12)
        return np.where(np.isfinite(v), out, np.inf)

    def feasible_ids(self, backend: Backend) -> list[str]:
        """Ids of the cells of ``backend`` that meet the constraint (ValueError when none
        does, naming the range of the costs)."""
        vals = self.values(backend)
        ids = vals.index[self.mask(vals)]
        if getattr(backend, "benchmark", None) is None:  # a view of a table: keep its cells
            ids = [i for i in ids if backend.contains(i)]
        if len(ids) == 0:
            raise ValueError(f"no cell meets {self.label} in [{self.min_value}, "
                             f"{self.max_value}]: the costs range over "
                             f"{_fmt(float(np.nanmin(vals)))}..{_fmt(float(np.nanmax(vals)))}")
        return [str(i) for i in ids]

    def restrict(self, backend: Backend) -> PoolBackend:
        """``backend`` with its cells kept to the feasible ones (cached per backend)."""
        hit = self._restricted.get(id(backend))
        if hit is not None and hit[0] is backend:
            return hit[1]
        view = PoolBackend(backend, self.feasible_ids(backend))
        self._restricted[id(backend)] = (backend, view)
        return view

    def is_feasible(self, backend: Backend, cell: Any) -> bool:
        """Whether ``cell`` of ``backend`` meets the constraint."""
        if callable(self.cost) and not isinstance(self.cost, str):
            return bool(self.mask([float(self.cost(backend.resolve(cell)))])[0])
        vals = self.values(backend)
        return bool(self.mask([float(vals.loc[backend.cell_id(backend.resolve(cell))])])[0])


def constrained(backend: Backend, constraint: CostConstraint | None) -> Backend:
    """``backend`` restricted to ``constraint``'s feasible cells (itself when None)."""
    if constraint is None:
        return backend
    if not isinstance(constraint, CostConstraint):
        raise ValueError(f"constraint must be a CostConstraint or None, got {constraint!r}")
    return constraint.restrict(backend)


def pareto_mask(cost: Any, score: Any) -> np.ndarray:
    """Which points are Pareto-optimal for low ``cost`` and high ``score``: no other point is
    at most as costly and at least as good with one of the two strictly better. Exact ties of
    optimal points are all kept; NaNs are never optimal."""
    c = np.asarray(cost, dtype=float)
    s = np.asarray(score, dtype=float)
    if c.shape != s.shape or c.ndim != 1:
        raise ValueError(f"cost and score must be 1-d of one length, got shapes {c.shape} and "
                         f"{s.shape}")
    ok = np.isfinite(c) & np.isfinite(s)
    out = np.zeros(len(c), dtype=bool)
    idx = np.flatnonzero(ok)
    if not len(idx):
        return out
    order = idx[np.lexsort((-s[idx], c[idx]))]  # by cost, then best score first
    best = -np.inf
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and c[order[j]] == c[order[i]]:
            j += 1
        group = order[i:j]
        top = s[group[0]]  # best score at this cost
        if top > best:
            out[group[s[group] == top]] = True
            best = top
        i = j
    return out


def pareto_front(table: pd.DataFrame, cost: str = "cost", score: str = "score"
                 ) -> pd.DataFrame:
    """The Pareto-optimal rows of ``table`` (low ``cost``, high ``score``), by rising cost."""
    for col in (cost, score):
        if col not in table.columns:
            raise ValueError(f"column {col!r} is not in the table; columns: "
                             f"{list(table.columns)}")
    keep = pareto_mask(table[cost].to_numpy(), table[score].to_numpy())
    return table.loc[keep].sort_values([cost, score], ascending=[True, False], kind="stable")
