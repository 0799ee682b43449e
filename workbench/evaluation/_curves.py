"""Sample-size curves: how well a predictor ranks the cells it has not seen, against the number
of cells it was fitted on, beside fixed scores (parameter count, zero-cost proxies) judged on
the same held-out cells.

>>> rows = sample_size_curves({"xgb": lambda seed: GraphFeatureRegressor(random_state=seed),
...                            "params": table["params"]}, cells, y, ns=[32, 100], seeds=[0, 1])
>>> summarize_curves(rows)              # mean, sd and count of Kendall tau per predictor and N
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from workbench._checks import check_int
from workbench.evaluation._metrics import (
    ArrayLike,
    _vector,
    kendall_tau,
    sample_weighted_tau,
    spearman_rho,
)

#: The columns every row of :func:`sample_size_curves` has (then the optional ones: see there).
CURVE_COLUMNS = ("n", "seed", "predictor", "n_test", "kendall_tau", "spearman_rho",
                 "fit_seconds", "predict_seconds")


@dataclass(frozen=True)
class CurvePredictor:
    """One entry of :func:`sample_size_curves`: a model refitted on every draw, or a fixed score.

    ``make(seed)``: a fresh unfitted estimator (``fit(X, y)`` then ``predict(X)``), fitted on the
    training rows of ``X`` (this entry's own inputs, row-aligned with the labels; None: the
    curves' shared ``X``). ``scores``: one fixed score per row instead (no fit; higher means
    predicted better), judged on the same held-out rows. ``ns`` / ``seeds``: run the entry only
    at these training sizes / seeds (None: all), e.g. to bound a slow model's cost.
    """

    make: Callable[[int], Any] | None = None
    X: Any = None
    scores: ArrayLike | None = None
    ns: Collection[int] | None = None
    seeds: Collection[int] | None = None

    def __post_init__(self) -> None:
        if (self.make is None) == (self.scores is None):
            raise ValueError("a CurvePredictor needs exactly one of make (a model factory) "
                             "and scores (a fixed score per row)")
        if self.make is not None and not callable(self.make):
            raise ValueError(f"make must be a callable seed -> estimator, got {self.make!r}")

    def runs_at(self, n: int, seed: int) -> bool:
        """Whether this entry is evaluated at training size ``n`` and ``seed``."""
        return ((self.ns is None or n in self.ns)
                and (self.seeds is None or seed in self.seeds))


def _as_entry(name: str, spec: Any) -> CurvePredictor:
    if isinstance(spec, CurvePredictor):
        return spec
    if callable(spec):
        return CurvePredictor(make=spec)
    try:
        return CurvePredictor(scores=_vector(spec, f"scores of {name!r}"))
    except ValueError as err:
        raise ValueError(f"predictor {name!r} must be a CurvePredictor, a callable "
                         f"seed -> estimator or a score per row: {err}") from None


def _length(X: Any) -> int:
    return int(X.shape[0]) if hasattr(X, "shape") else len(X)


def _take(X: Any, rows: np.ndarray) -> Any:
    """The rows of ``X`` at positions ``rows`` (DataFrame/Series, array or plain sequence)."""
    if isinstance(X, (pd.DataFrame, pd.Series)):
        return X.iloc[rows]
    if isinstance(X, np.ndarray):
        return X[rows]
    return [X[int(i)] for i in rows]


def training_rows(pool: np.ndarray, n: int, seed: int) -> np.ndarray:
    """The ``n`` training rows of draw ``seed``: the first ``n`` of a seeded permutation of
    ``pool``, so that for one seed the smaller training sets are nested in the larger ones."""
    return np.random.default_rng(seed).permutation(pool)[:n]


def _pool_rows(pool: Any, n_rows: int) -> np.ndarray:
    if pool is None:
        return np.arange(n_rows)
    arr = np.asarray(pool)
    if arr.dtype == bool:
        if arr.shape != (n_rows,):
            raise ValueError(f"a boolean pool must have one entry per row ({n_rows}), "
                             f"got shape {arr.shape}")
        return np.flatnonzero(arr)
    if arr.ndim != 1 or arr.dtype.kind not in "iu" or arr.size == 0:
        raise ValueError("pool must be a boolean mask or non-empty integer row positions")
    if arr.min() < 0 or arr.max() >= n_rows or np.unique(arr).size != arr.size:
        raise ValueError(f"pool positions must be distinct and in [0, {n_rows})")
    return arr


def _metrics(pred: np.ndarray, true: np.ndarray, test: np.ndarray, weights: np.ndarray | None,
             groups: np.ndarray | None, group_names: list[Any]) -> dict[str, float]:
    out = {"n_test": float(test.size), "kendall_tau": kendall_tau(pred, true[test]),
           "spearman_rho": spearman_rho(pred, true[test])}
    if weights is not None:
        out["weighted_kendall_tau"] = (sample_weighted_tau(pred, true[test], weights[test])
                                       if weights[test].sum() > 0 else math.nan)
    if groups is not None:
        for g in group_names:
            inside = groups[test] == g
            out[f"n_test[{g}]"] = float(inside.sum())
            out[f"kendall_tau[{g}]"] = (kendall_tau(pred[inside], true[test][inside])
                                        if inside.sum() >= 2 else math.nan)
    return out


def sample_size_curves(predictors: Mapping[str, CurvePredictor | Callable[[int], Any] | ArrayLike],
                       y: ArrayLike, *, ns: Sequence[int], seeds: Sequence[int], X: Any = None,
                       pool: ArrayLike | None = None, weights: ArrayLike | None = None,
                       groups: ArrayLike | None = None, progress: bool = False,
                       desc: str = "curves") -> pd.DataFrame:
    """Rank correlation of every predictor on the held-out rows, per training size and seed.

    For each seed and each ``n`` in ``ns``, ``n`` training rows are drawn from ``pool`` (row
    positions or a boolean mask; default every row) by :func:`training_rows` (one draw per
    seed, nested over ``n``, the same for every predictor); every other row of ``y`` is the
    test set. ``predictors`` maps a name to a :class:`CurvePredictor`, to a callable
    ``seed -> estimator`` (fitted on the shared ``X``: anything row-aligned with ``y``, e.g.
    cells, a graph array or a feature DataFrame) or to a fixed score per row.

    Returns one row per (n, seed, predictor) with :data:`CURVE_COLUMNS`: Kendall tau and
    Spearman rho on the test rows and the seconds of ``fit`` and ``predict`` (0 for fixed
    scores). With ``weights`` (one per row, >= 0, e.g. a sampler's probabilities) also
    ``weighted_kendall_tau`` (:func:`sample_weighted_tau` on the test rows); with ``groups``
    (a label per row, e.g. vertex count) also ``kendall_tau[g]`` and ``n_test[g]`` per group
    (NaN below 2 test rows in the group).
    """
    true = _vector(y, "labels y")
    if not np.isfinite(true).all():
        raise ValueError(f"labels y must be finite: {int((~np.isfinite(true)).sum())} are not")
    n_rows = true.size
    rows_pool = _pool_rows(pool, n_rows)
    ns = [check_int("n", n, minimum=2, maximum=rows_pool.size) for n in ns]
    seeds = [check_int("seed", s, minimum=0) for s in seeds]
    if not ns or not seeds:
        raise ValueError("ns and seeds must not be empty")
    if n_rows - max(ns) < 2:
        raise ValueError(f"n = {max(ns)} leaves {n_rows - max(ns)} test rows; need at least 2")
    if not predictors:
        raise ValueError("no predictors given")
    entries = {str(k): _as_entry(str(k), v) for k, v in predictors.items()}
    for name, e in entries.items():
        data = e.scores if e.scores is not None else (X if e.X is None else e.X)
        if data is None:
            raise ValueError(f"predictor {name!r} needs inputs: pass X or CurvePredictor(X=...)")
        if _length(data) != n_rows:
            raise ValueError(f"predictor {name!r}: its inputs have {_length(data)} rows but y "
                             f"has {n_rows}")
    w = None if weights is None else _vector(weights, "weights")
    if w is not None and (w.shape != true.shape or not np.isfinite(w).all() or (w < 0).any()):
        raise ValueError(f"weights must be one finite value >= 0 per row ({n_rows})")
    g = None if groups is None else np.asarray(groups, dtype=object).ravel()
    if g is not None and g.size != n_rows:
        raise ValueError(f"groups has {g.size} entries but y has {n_rows}")
    group_names = [] if g is None else sorted(set(g.tolist()), key=str)

    tasks = [(n, s, name) for s in seeds for n in ns for name, e in entries.items()
             if e.runs_at(n, s)]
    out: list[dict[str, Any]] = []
    for n, seed, name in tqdm(tasks, desc=desc, disable=not progress, unit="fit"):
        e = entries[name]
        train = training_rows(rows_pool, n, seed)
        test = np.setdiff1d(np.arange(n_rows), train)
        fit_s = predict_s = 0.0
        if e.scores is not None:
            pred = _vector(e.scores, name)[test]
        else:
            assert e.make is not None
            data = X if e.X is None else e.X
            est = e.make(seed)
            t0 = time.perf_counter()
            est.fit(_take(data, train), true[train])
            t1 = time.perf_counter()
            pred = np.asarray(est.predict(_take(data, test)), dtype=float).ravel()
            predict_s, fit_s = time.perf_counter() - t1, t1 - t0
        try:
            scores = _metrics(pred, true, test, w, g, group_names)
        except ValueError as err:
            raise ValueError(f"predictor {name!r} at n={n}, seed={seed}: {err}") from None
        out.append({"n": n, "seed": seed, "predictor": name, **scores, "fit_seconds": fit_s,
                    "predict_seconds": predict_s})
    frame = pd.DataFrame.from_records(out)
    frame["n_test"] = frame["n_test"].astype(int)
    rest = [c for c in frame.columns if c not in CURVE_COLUMNS]
    return frame[[*CURVE_COLUMNS, *rest]]


def summarize_curves(frame: pd.DataFrame, metric: str = "kendall_tau",
                     by: Sequence[str] = ("predictor", "n")) -> pd.DataFrame:
    """Mean, sample sd (ddof 1; NaN for one seed) and count over seeds of ``metric`` per
    ``by`` group of :func:`sample_size_curves` rows (NaN values left out), groups in order of
    first appearance and ascending ``n``."""
    missing = {metric, *by} - set(frame.columns)
    if missing:
        raise ValueError(f"frame lacks columns {sorted(missing)}; use sample_size_curves "
                         f"(metrics: {[c for c in frame.columns if 'tau' in c or 'rho' in c]})")
    by = list(by)
    agg = (frame.groupby(by, sort=False)[metric]
           .agg(mean="mean", sd=lambda v: v.std(ddof=1), count="count").reset_index())
    if "n" in by:
        order = [c for c in by if c != "n"]
        firsts = {k: i for i, k in enumerate(dict.fromkeys(
            map(tuple, frame[order].to_numpy().tolist())))} if order else {}
        key = agg[order].apply(tuple, axis=1).map(firsts) if order else 0
        agg = agg.assign(_k=key).sort_values(["_k", "n"], kind="stable").drop(columns="_k")
    agg.insert(len(by), "metric", metric)
    return agg.reset_index(drop=True)


def curve_table(frame: pd.DataFrame, metric: str = "kendall_tau", *, digits: int = 3,
                sd: bool = True) -> pd.DataFrame:
    """:func:`summarize_curves` as a wide table of strings, one row per predictor and one
    column per training size: ``"mean ± sd"`` (just the mean for one seed, or ``sd=False``),
    ``"-"`` where the predictor did not run at that size."""
    agg = summarize_curves(frame, metric)

    def cell(row: pd.Series) -> str:
        text = f"{row['mean']:.{digits}f}"
        if sd and row["count"] > 1 and math.isfinite(row["sd"]):
            text += f" ± {row['sd']:.{digits}f}"
        return text

    agg["text"] = agg.apply(cell, axis=1)
    wide = agg.pivot(index="predictor", columns="n", values="text")
    wide = wide.reindex(index=list(dict.fromkeys(agg["predictor"])),
                        columns=sorted(agg["n"].unique()))
    wide.columns = [f"N={n}" for n in wide.columns]
    return wide.fillna("-")
