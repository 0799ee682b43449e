"""One-call judgement of predictors: tidy metric tables with bootstrap CIs, the simple baselines
every claim must beat, and grouped cross-validation (the figures live in ``workbench.viz``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workbench._checks import check_int
from workbench.evaluation._metrics import (
    ArrayLike,
    Cost,
    Metric,
    Stopwatch,
    _applicable,
    _vector,
    bootstrap_cis,
    mae,
    mean_baseline_errors,
    mse,
    paired_arrays,
    point_metrics,
    resolve_metrics,
)

if TYPE_CHECKING:
    from workbench.benchmarks import TabularBenchmark

#: Columns of the tidy tables returned by :func:`evaluate_predictions` / :func:`compare_predictors`.
TIDY_COLUMNS = ("predictor", "metric", "value", "ci_low", "ci_high", "n")

_CV_METRICS = ("kendall_tau", "spearman_rho", "mse", "mae", "r2")
_ERRORS = frozenset({"mse", "mae", "r2"})  # metrics that need predictions on the truth's scale


def _mean_baseline_metrics(mean: float | None) -> dict[str, Metric]:
    """MSE/MAE of the constant predictor (in-sample mean of each (re)sample, or ``mean``)."""
    def const(t: np.ndarray) -> np.ndarray:
        return np.full_like(t, t.mean() if mean is None else mean)
    return {"mse_mean_baseline": lambda p, t: mse(const(t), t),
            "mae_mean_baseline": lambda p, t: mae(const(t), t)}


def evaluate_predictions(pred: ArrayLike, true: ArrayLike, *, name: str = "predictor",
                         baselines: Mapping[str, ArrayLike] | None = None, ci: bool = True,
                         n_boot: int = 200, level: float = 0.95, seed: int = 0,
                         metrics: Sequence[str] | Mapping[str, Metric] | None = None,
                         train_mean: float | None = None,
                         costs: Mapping[str, Cost] | Cost | None = None,
                         rank_only: Iterable[str] = ()) -> pd.DataFrame:
    """Tidy table (predictor, metric, value, ci_low, ci_high, n) of ``pred`` and any baselines.

    Every predictor gets the rank/selection/error metrics plus the predict-the-mean baseline's
    MSE/MAE beside its own (in-sample mean, or ``train_mean``); CIs are percentile bootstraps
    over the same seeded resamples for every predictor. ``costs`` add *_s rows without CIs;
    predictors named in ``rank_only`` (signals not on the truth's scale) get NaN errors.
    """
    t = _vector(true, "truth (labels)")
    preds = {str(name): pred, **{str(k): v for k, v in (baselines or {}).items()}}
    checked = {}
    for label, values in preds.items():
        try:
            checked[label] = paired_arrays(values, t)[0]
        except ValueError as err:
            raise ValueError(f"predictor {label!r}: {err}") from None
    fns = resolve_metrics(metrics)
    ok = {**_applicable(fns, t.size), **_mean_baseline_metrics(train_mean)}
    mean_baseline_errors(t, train_mean)  # validates train_mean
    rows: list[dict[str, Any]] = []
    rank_only = set(rank_only)
    for label, p in checked.items():
        mine = {m: fn for m, fn in ok.items() if not (label in rank_only and m in _ERRORS)}
        values = point_metrics(p, t, mine)
        cis = (bootstrap_cis(p, t, mine, n_boot=n_boot, level=level, seed=seed) if ci else {})
        for m in [*fns, *_mean_baseline_metrics(None)]:
            lo, hi = cis.get(m, (np.nan, np.nan))
            rows.append({"predictor": label, "metric": m, "value": values.get(m, np.nan),
                         "ci_low": lo, "ci_high": hi, "n": t.size})
    rows += _cost_rows(costs, name, t.size)
    return pd.DataFrame(rows, columns=list(TIDY_COLUMNS))


def _cost_rows(costs: Mapping[str, Cost] | Cost | None, name: str, n: int
               ) -> list[dict[str, Any]]:
    if costs is None:
        return []
    if isinstance(costs, Cost):
        costs = {name: costs}
    rows = []
    for label, cost in costs.items():
        if not isinstance(cost, Cost):
            raise ValueError(f"cost of {label!r} must be a Cost, got {type(cost).__name__}")
        rows += [{"predictor": str(label), "metric": k, "value": v, "ci_low": np.nan,
                  "ci_high": np.nan, "n": n} for k, v in cost.as_dict().items()]
    return rows


def metrics_table(tidy: pd.DataFrame, value: str = "value") -> pd.DataFrame:
    """The tidy table as one row per predictor and one column per metric (keeps metric order)."""
    wide = tidy.pivot(index="predictor", columns="metric", values=value)
    cols = list(dict.fromkeys(tidy["metric"]))
    rows = list(dict.fromkeys(tidy["predictor"]))
    return wide.loc[rows, cols]


# -- benchmark baselines -------------------------------------------------------------------------

def _cell_ids(bench: TabularBenchmark, cells: Iterable[Any]) -> list[str]:
    ids = [bench.cell_id(c) for c in cells]
    if len(ids) < 2:
        raise ValueError(f"need at least 2 cells, got {len(ids)}")
    return ids


def benchmark_baselines(bench: TabularBenchmark, cells: Iterable[Any], *,
                        dataset: str | None = None
                        ) -> tuple[dict[str, np.ndarray], dict[str, Cost]]:
    """Cheap predictions every predictor must beat, for ``cells``, and what they cost.

    ``params`` (parameter count) and ``acc@E`` (validation accuracy after each budget E shorter
    than the final one: NB101 4/12/36, NB201 12 epochs); the cost of ``acc@E`` is the
    benchmark's simulated training seconds for those cells (``features_s``).
    """
    ids = _cell_ids(bench, cells)
    final = bench.fidelity(dataset=dataset)
    table = bench.table().set_index("cell_id").loc[ids]
    preds = {"params": table["params"].to_numpy(float)}
    costs = {"params": Cost()}
    for f in bench.fidelities:
        if f.dataset == final.dataset and f.split == "val" and f.epochs < final.epochs:
            preds[f"acc@{f.epochs}"] = table[f.label].to_numpy(float)
            costs[f"acc@{f.epochs}"] = Cost(features_s=float(sum(
                bench.cost(i, dataset=final.dataset, epochs=f.epochs) for i in ids)))
    return preds, costs


def compare_predictors(predictions: Mapping[str, ArrayLike], true: ArrayLike | None = None, *,
                       bench: TabularBenchmark | None = None, cells: Iterable[Any] | None = None,
                       dataset: str | None = None, baselines: bool = True, ci: bool = True,
                       n_boot: int = 200, level: float = 0.95, seed: int = 0,
                       metrics: Sequence[str] | Mapping[str, Metric] | None = None,
                       train_mean: float | None = None,
                       costs: Mapping[str, Cost] | None = None) -> pd.DataFrame:
    """Tidy metric table of several predictors side by side, simple baselines included.

    With ``bench`` and ``cells`` the truth defaults to the table's final accuracy and the
    baselines are params, short-training accuracy and predict-the-mean; without them only
    predict-the-mean (the training mean ``train_mean`` if given, else the in-sample mean).
    ``params`` is judged on ranks only (its errors are NaN: it is not on the accuracy scale).
    """
    if not isinstance(predictions, Mapping):
        raise ValueError("predictions must be a mapping {name: predictions}")
    if (bench is None) != (cells is None):
        raise ValueError("give both bench and cells (or neither)")
    extra: dict[str, np.ndarray] = {}
    all_costs: dict[str, Cost] = {}
    if bench is not None and cells is not None:
        ids = _cell_ids(bench, cells)
        if true is None:
            true = bench.all_accuracies(dataset=dataset).loc[ids].to_numpy(float)
        if baselines:
            extra, all_costs = benchmark_baselines(bench, ids, dataset=dataset)
    if true is None:
        raise ValueError("true is required unless bench and cells are given")
    t = _vector(true, "truth (labels)")
    paired_arrays(t, t)
    if baselines:
        extra["mean"] = np.full_like(t, t.mean() if train_mean is None else float(train_mean))
        all_costs.setdefault("mean", Cost())
    clash = sorted(set(predictions) & set(extra))
    if clash:
        raise ValueError(f"predictor names {clash} clash with baseline names")
    all_costs.update(costs or {})
    items = [*predictions.items(), *extra.items()]
    if not items:
        raise ValueError("no predictions to compare")
    (first, pred), rest = items[0], dict(items[1:])
    return evaluate_predictions(pred, t, name=first, baselines=rest, ci=ci, n_boot=n_boot,
                                level=level, seed=seed, metrics=metrics, train_mean=train_mean,
                                costs=all_costs or None, rank_only={"params"} & set(extra))


# -- grouped cross-validation --------------------------------------------------------------------

def grouped_folds(groups: ArrayLike | Sequence[Any], n_splits: int = 5, *, shuffle: bool = True,
                  seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index arrays of a k-fold split that never puts one group on both sides."""
    g = np.asarray(groups)
    if g.ndim != 1:
        raise ValueError(f"groups must be one-dimensional, got shape {g.shape}")
    n_groups = len(pd.unique(g))
    check_int("n_splits", n_splits, minimum=2)
    if n_splits > n_groups:
        raise ValueError(f"n_splits={n_splits} exceeds the number of groups ({n_groups})")
    from sklearn.model_selection import GroupKFold  # lazy: keeps this package light to import

    kf = GroupKFold(n_splits=n_splits, shuffle=shuffle, random_state=seed if shuffle else None)
    return list(kf.split(np.zeros(len(g)), groups=g))


def _take(X: Any, idx: np.ndarray) -> Any:
    return X.iloc[idx] if isinstance(X, (pd.DataFrame, pd.Series)) else np.asarray(X)[idx]


def grouped_cross_validate(estimator: Any, X: Any, y: ArrayLike, groups: ArrayLike | Sequence[Any],
                           *, n_splits: int = 5, shuffle: bool = True, seed: int = 0,
                           metrics: Sequence[str] | Mapping[str, Metric] | None = _CV_METRICS,
                           features_s: float = 0.0) -> pd.DataFrame:
    """Per-fold metrics of a clone of ``estimator`` fitted on the other folds (groups kept whole).

    Columns: fold, n_train, n_test, the metrics, the training-mean baseline's MSE/MAE and the
    cost (``features_s`` spread over folds pro rata, fit_s, predict_s).
    """
    from sklearn.base import clone

    yv = _vector(y, "y")
    paired_arrays(yv, yv)
    n = len(X)
    if n != yv.size or len(groups) != yv.size:
        raise ValueError(f"X, y and groups differ in length: {n}, {yv.size}, {len(groups)}")
    rows = []
    for fold, (tr, te) in enumerate(grouped_folds(groups, n_splits, shuffle=shuffle, seed=seed)):
        model = clone(estimator)
        with Stopwatch() as fit_sw:
            model.fit(_take(X, tr), yv[tr])
        with Stopwatch() as pred_sw:
            pred = np.asarray(model.predict(_take(X, te)), dtype=float)
        base = mean_baseline_errors(yv[te], float(yv[tr].mean()))
        cost = Cost(features_s * te.size / n, fit_sw.seconds, pred_sw.seconds)
        rows.append({"fold": fold, "n_train": tr.size, "n_test": te.size,
                     **point_metrics(pred, yv[te], metrics),
                     "mse_mean_baseline": base["mse"], "mae_mean_baseline": base["mae"],
                     **cost.as_dict()})
    return pd.DataFrame(rows)
