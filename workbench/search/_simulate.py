"""Simulating searches over seeds on a backend, and regret-vs-cost curves for plotting."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from workbench.search._base import Backend, Search

SearchFactory = Callable[..., Search]

CURVE_COLUMNS = ("method", "seed", "evaluations", "cost", "incumbent", "incumbent_final",
                 "best_final", "regret")


def search_curve(search: Search, method: str | None = None, reference: float | None = None
                 ) -> pd.DataFrame:
    """One row per history row of ``search`` (``search.incumbent_trace()``: evaluations so far
    and the incumbent then, None before there is one), the incumbent's final accuracy, the
    running best of that (``best_final``, monotone) and regret = ``reference`` - ``best_final``."""
    h = search.history
    ref = search.backend.best_final() if reference is None else reference
    if h.empty:
        return pd.DataFrame(columns=list(CURVE_COLUMNS))
    evaluations, inc = search.incumbent_trace()
    has, pos = inc >= 0, np.maximum(inc, 0)
    inc_final = np.where(has, h["final"].to_numpy(float)[pos], np.nan)
    best = np.fmax.accumulate(inc_final)
    return pd.DataFrame({
        "method": method or search.label, "seed": search.seed,
        "evaluations": evaluations, "cost": h["cum_cost"].to_numpy(float),
        "incumbent": np.where(has, h["candidate"].to_numpy(object)[pos], None),
        "incumbent_final": inc_final, "best_final": best, "regret": ref - best,
    })


def simulate(method_factory: SearchFactory | Mapping[str, SearchFactory], backend: Backend,
             seeds: Iterable[int], *, max_cost: float | None = None,
             max_evaluations: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Run ``method_factory(backend, seed=seed)`` for every seed (and every method of a
    ``{name: factory}`` mapping) as ``search.run(max_cost=..., max_evaluations=...)`` does:
    until done, ``max_cost`` (the backend's ``cost_unit``) or ``max_evaluations``; tidy
    curves, one row per history row (see ``search_curve``; the step crossing a limit is
    kept)."""
    factories = (dict(method_factory) if isinstance(method_factory, Mapping)
                 else {None: method_factory})
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must not be empty")
    if not factories:
        raise ValueError("method_factory mapping must not be empty")
    ref = backend.best_final()
    parts = []
    with tqdm(total=len(factories) * len(seeds), disable=not progress, desc="simulate") as bar:
        for name, factory in factories.items():
            for seed in seeds:
                search = factory(backend, seed=seed)
                search.run(max_cost=max_cost, max_evaluations=max_evaluations,
                           progress=False)
                parts.append(search_curve(search, name, ref))
                bar.update(1)
    return pd.concat(parts, ignore_index=True)


def resample_curves(curves: pd.DataFrame, grid: Sequence[float] | np.ndarray,
                    value: str = "regret") -> pd.DataFrame:
    """Each (method, seed) curve read on a common cost ``grid`` as a step function: the value
    after the last evaluation at or below that cost (NaN before the first; kept after the end)."""
    grid = np.asarray(grid, dtype=float)
    parts = []
    for (method, seed), g in curves.groupby(["method", "seed"], sort=False, dropna=False):
        cost = g["cost"].to_numpy(float)
        vals = g[value].to_numpy(float)
        idx = np.searchsorted(cost, grid, side="right") - 1
        parts.append(pd.DataFrame({"method": method, "seed": seed, "cost": grid,
                                   value: np.where(idx >= 0, vals[np.maximum(idx, 0)], np.nan)}))
    if not parts:
        return pd.DataFrame(columns=["method", "seed", "cost", value])
    return pd.concat(parts, ignore_index=True)


def aggregate_curves(curves: pd.DataFrame, grid: Sequence[float] | np.ndarray | None = None,
                     value: str = "regret", *, points: int = 100, log: bool = False,
                     quantiles: Sequence[float] = (0.25, 0.5, 0.75)) -> pd.DataFrame:
    """Mean, std and quantiles of ``value`` over seeds at each cost of ``grid`` (default:
    ``points`` costs up to the largest seen, log-spaced with ``log``), per method."""
    if grid is None:
        lo, hi = curves["cost"].min(), curves["cost"].max()
        grid = (np.geomspace(max(lo, 1e-9), hi, points) if log
                else np.linspace(0.0, hi, points))
    wide = resample_curves(curves, grid, value)
    g = wide.groupby(["method", "cost"], sort=False)[value]
    out = g.agg(mean="mean", std="std", n="count")
    for q in quantiles:
        out[f"q{round(q * 100):02d}"] = g.quantile(q)
    return out.reset_index()
