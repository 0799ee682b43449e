"""Rank, selection and error metrics for judging performance predictors (scipy-backed, ties
handled), bootstrap intervals and cost accounting.

Every metric takes ``(pred, true)`` — equally long, finite vectors — and returns a float; higher
predictions mean "predicted better". Rank metrics return NaN when one side is constant.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from scipy import stats

from workbench._checks import check_int, check_real

#: What the metrics accept as a vector of predictions or labels.
ArrayLike: TypeAlias = np.ndarray | pd.Series | Sequence[float]
Metric = Callable[[np.ndarray, np.ndarray], float]


def _vector(values: Any, what: str) -> np.ndarray:
    """``values`` as a 1-D float array; ValueError naming ``what`` when that is impossible."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be numbers, got {type(values).__name__}: {err}") from None
    if arr.ndim > 1 and sum(s > 1 for s in arr.shape) > 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {arr.shape}")
    return arr.ravel()


def paired_arrays(pred: ArrayLike, true: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``(pred, true)`` as validated 1-D float arrays: same length, at least 2 pairs, all finite.

    The check every metric runs first; public so that figures validate their input the same way.
    """
    p, t = _vector(pred, "predictions"), _vector(true, "truth (labels)")
    if p.shape != t.shape:
        raise ValueError(f"predictions and truth differ in length: {p.size} vs {t.size}")
    if p.size < 2:
        raise ValueError(f"need at least 2 pairs to rank, got {p.size}")
    for arr, what in ((t, "truth (labels)"), (p, "predictions")):
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ValueError(f"{what} must be finite: found {int(bad.sum())} NaN or inf "
                             f"value(s), first at position {int(np.argmax(bad))}")
    return p, t


def _quiet(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` without scipy's warnings about constant input (the result is NaN then)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            return fn(*args)


# -- rank correlations ---------------------------------------------------------------------------

def kendall_tau(pred: ArrayLike, true: ArrayLike) -> float:
    """Kendall's tau-b between predictions and truth (ties handled as scipy does)."""
    p, t = paired_arrays(pred, true)
    return float(_quiet(stats.kendalltau, p, t).statistic)


def spearman_rho(pred: ArrayLike, true: ArrayLike) -> float:
    """Spearman's rank correlation between predictions and truth."""
    p, t = paired_arrays(pred, true)
    return float(_quiet(stats.spearmanr, p, t).statistic)


def weighted_tau(pred: ArrayLike, true: ArrayLike) -> float:
    """Weighted Kendall tau (scipy's hyperbolic weigher): swaps among the best count most.

    Symmetric in its arguments (scipy averages the rankings by either side).
    """
    p, t = paired_arrays(pred, true)
    return float(_quiet(stats.weightedtau, p, t).statistic)


def sample_weighted_tau(pred: ArrayLike, true: ArrayLike, weights: ArrayLike) -> float:
    """Kendall's tau-b with a weight per *item*: each pair (i, j) counts ``w_i * w_j``.

    The tau of a test set drawn from the distribution ``weights`` (e.g. NAS-Bench-101's own
    sampler, ``nb101_sampler_weights``) without drawing it: with integer weights it equals
    :func:`kendall_tau` on the data with item i repeated ``w_i`` times; with equal weights it
    is :func:`kendall_tau`. Unlike :func:`weighted_tau` the weights belong to the items, not to
    rank positions. Weights must be finite and >= 0 with a positive sum; NaN when every
    weighted pair is tied on one side. Exact, O(n^2) time in blocks of bounded memory.
    """
    p, t = paired_arrays(pred, true)
    w = _vector(weights, "weights")
    if w.shape != p.shape:
        raise ValueError(f"weights and predictions differ in length: {w.size} vs {p.size}")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be finite and >= 0 with a positive sum")
    num = den_p = den_t = 0.0
    block = max(1, 2_000_000 // p.size)
    for start in range(0, p.size, block):
        rows = slice(start, start + block)
        sp = np.sign(p[rows, None] - p[None, :])
        st = np.sign(t[rows, None] - t[None, :])
        ww = w[rows, None] * w[None, :]
        num += float((ww * sp * st).sum())
        den_p += float((ww * np.abs(sp)).sum())
        den_t += float((ww * np.abs(st)).sum())
    if den_p <= 0 or den_t <= 0:
        return math.nan
    return num / math.sqrt(den_p * den_t)


def rank_correlations(signals: pd.DataFrame, truth: pd.Series | np.ndarray) -> pd.DataFrame:
    """Kendall tau and Spearman rho of every column of ``signals`` against ``truth``.

    Rows with a missing value in a column are left out for that column (``n`` says how many
    pairs were used), so a signal that is only partly available is still judged fairly.
    """
    truth = pd.Series(np.asarray(truth, dtype=float), index=signals.index)
    rows = []
    for col in signals.columns:
        ok = signals[col].notna() & truth.notna()
        p, t = signals.loc[ok, col].to_numpy(float), truth[ok].to_numpy(float)
        rows.append({"signal": col, "kendall_tau": kendall_tau(p, t),
                     "spearman_rho": spearman_rho(p, t), "n": int(ok.sum())})
    return pd.DataFrame(rows)


# -- selection quality ---------------------------------------------------------------------------

def resolve_k(k: int | float, n: int) -> int:
    """``k`` as a count: an int as is, a float in (0, 1) as that fraction of ``n`` (at least 1)."""
    if isinstance(k, bool) or not isinstance(k, (int, float, np.integer, np.floating)):
        raise ValueError(f"k must be an int >= 1 or a fraction in (0, 1), got {k!r}")
    if isinstance(k, (float, np.floating)) and not float(k).is_integer():
        if not 0.0 < k < 1.0:
            raise ValueError(f"a fractional k must lie in (0, 1), got {k!r}")
        return max(1, math.ceil(float(k) * n - 1e-9))
    count = int(k)
    if not 1 <= count <= n:
        raise ValueError(f"k must be in 1..{n} (the number of pairs), got {k!r}")
    return count


def top_k_precision(pred: ArrayLike, true: ArrayLike, k: int | float = 5) -> float:
    """|predicted top-k ∩ true top-k| / k: how many of the k picks are truly among the best k.

    ``k`` may be a fraction of n (0.05 = top 5 %). Ties: a pick tied with the true k-th best
    counts as a hit; picks tied at the predicted boundary count in expectation (random order).
    """
    p, t = paired_arrays(pred, true)
    k = resolve_k(k, p.size)
    good = t >= np.sort(t)[::-1][k - 1]
    boundary = np.sort(p)[::-1][k - 1]
    above, tied = p > boundary, p == boundary
    need = k - int(above.sum())
    hits = float(good[above].sum()) + need * float(good[tied].mean())
    return hits / k


def regret_at_1(pred: ArrayLike, true: ArrayLike) -> float:
    """True best minus the true value of the predicted best (the top-1 pick's regret, >= 0).

    Ties for the top prediction are averaged (the expected regret of a random tie-break).
    """
    p, t = paired_arrays(pred, true)
    return float(t.max() - t[p == p.max()].mean())


# -- errors --------------------------------------------------------------------------------------

def mse(pred: ArrayLike, true: ArrayLike) -> float:
    """Mean squared error (in the truth's units squared)."""
    p, t = paired_arrays(pred, true)
    return float(np.mean((p - t) ** 2))


def mae(pred: ArrayLike, true: ArrayLike) -> float:
    """Mean absolute error (in the truth's units)."""
    p, t = paired_arrays(pred, true)
    return float(np.mean(np.abs(p - t)))


def r2(pred: ArrayLike, true: ArrayLike) -> float:
    """Coefficient of determination 1 - SS_res / SS_tot (NaN when the truth is constant)."""
    p, t = paired_arrays(pred, true)
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    return float("nan") if ss_tot == 0.0 else 1.0 - float(np.sum((p - t) ** 2)) / ss_tot


def mean_baseline_errors(true: ArrayLike, mean: float | None = None) -> dict[str, float]:
    """MSE and MAE of predicting one constant for every cell (computed, not assumed).

    ``mean`` defaults to the in-sample mean of ``true`` (then MSE = var(true), the best any
    constant can do); pass the training labels' mean for the honest out-of-sample baseline.
    """
    t = _vector(true, "truth (labels)")
    paired_arrays(t, t)
    c = float(t.mean()) if mean is None else float(mean)
    if not math.isfinite(c):
        raise ValueError(f"the baseline constant must be finite, got {mean!r}")
    const = np.full_like(t, c)
    return {"mse": mse(const, t), "mae": mae(const, t)}


#: The metrics :func:`point_metrics` computes by default, by name (read-only).
METRICS: Mapping[str, Metric] = MappingProxyType({
    "kendall_tau": kendall_tau,
    "spearman_rho": spearman_rho,
    "weighted_tau": weighted_tau,
    "top3_precision": lambda p, t: top_k_precision(p, t, 3),
    "top5_precision": lambda p, t: top_k_precision(p, t, 5),
    "top10_precision": lambda p, t: top_k_precision(p, t, 10),
    "top5pct_precision": lambda p, t: top_k_precision(p, t, 0.05),
    "regret_at_1": regret_at_1,
    "mse": mse,
    "mae": mae,
    "r2": r2,
})

_NEEDS_K = {"top3_precision": 3, "top5_precision": 5, "top10_precision": 10}


def resolve_metrics(metrics: Sequence[str] | Mapping[str, Metric] | None) -> dict[str, Metric]:
    """Metric functions by name: names from :data:`METRICS`, or a mapping of callables."""
    if metrics is None:
        return dict(METRICS)
    if isinstance(metrics, Mapping):
        bad = [name for name, fn in metrics.items() if not callable(fn)]
        if bad:
            raise ValueError(f"metrics {bad} are not callable")
        return dict(metrics)
    if isinstance(metrics, str):
        metrics = [metrics]
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; available: {list(METRICS)}")
    return {m: METRICS[m] for m in metrics}


def _applicable(metrics: Mapping[str, Metric], n: int) -> dict[str, Metric]:
    """Drop the fixed-k precisions whose k exceeds the number of pairs."""
    return {m: fn for m, fn in metrics.items() if _NEEDS_K.get(m, 0) <= n}


def point_metrics(pred: ArrayLike, true: ArrayLike,
                  metrics: Sequence[str] | Mapping[str, Metric] | None = None) -> dict[str, float]:
    """Every requested metric of ``pred`` against ``true`` (top-k with k > n come out NaN)."""
    p, t = paired_arrays(pred, true)
    fns = resolve_metrics(metrics)
    ok = _applicable(fns, p.size)
    return {m: float(ok[m](p, t)) if m in ok else float("nan") for m in fns}


# -- bootstrap -----------------------------------------------------------------------------------

def _check_boot(n_boot: int, level: float) -> None:
    check_int("n_boot", n_boot, minimum=1)
    check_real("level", level, minimum=0, maximum=1, inclusive="neither")


def bootstrap_samples(n: int, n_boot: int = 200, seed: int = 0) -> np.ndarray:
    """``n_boot`` resamples (rows) of ``n`` indices drawn with replacement, seeded."""
    _check_boot(n_boot, 0.5)
    return np.random.default_rng(seed).integers(0, n, size=(int(n_boot), n))


def bootstrap_cis(pred: ArrayLike, true: ArrayLike, metrics: Mapping[str, Metric], *,
                  n_boot: int = 200, level: float = 0.95, seed: int = 0
                  ) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of several metrics over the same seeded pair resamples.

    Resamples where a metric is undefined (NaN, e.g. all picks tied) are left out of its
    interval; a metric undefined on every resample gets (NaN, NaN).
    """
    p, t = paired_arrays(pred, true)
    _check_boot(n_boot, level)
    values = {m: np.empty(int(n_boot)) for m in metrics}
    for b, idx in enumerate(bootstrap_samples(p.size, n_boot, seed)):
        pb, tb = p[idx], t[idx]
        for m, fn in metrics.items():
            values[m][b] = _quiet(fn, pb, tb)
    tail = 50.0 * (1.0 - level)
    out: dict[str, tuple[float, float]] = {}
    for m, v in values.items():
        v = v[np.isfinite(v)]
        if v.size == 0:
            out[m] = (float("nan"), float("nan"))
        else:
            lo, hi = np.percentile(v, [tail, 100.0 - tail])
            out[m] = (float(lo), float(hi))
    return out


def bootstrap_ci(metric: Metric, pred: ArrayLike, true: ArrayLike, *, n_boot: int = 200,
                 level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval (low, high) of ``metric(pred, true)``, seeded."""
    if not callable(metric):
        raise ValueError(f"metric must be callable, got {metric!r}")
    return bootstrap_cis(pred, true, {"m": metric}, n_boot=n_boot, level=level, seed=seed)["m"]


# -- cost accounting -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Cost:
    """Seconds a predictor spent collecting its inputs, fitting and predicting."""

    features_s: float = 0.0
    fit_s: float = 0.0
    predict_s: float = 0.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (isinstance(value, (int, float)) and value >= 0 and math.isfinite(value)):
                raise ValueError(f"Cost.{name} must be a finite number >= 0, got {value!r}")

    @property
    def total_s(self) -> float:
        """All seconds together."""
        return self.features_s + self.fit_s + self.predict_s

    def as_dict(self) -> dict[str, float]:
        """The columns, ``total_s`` included."""
        return {**asdict(self), "total_s": self.total_s}

    def __add__(self, other: Cost) -> Cost:
        if not isinstance(other, Cost):
            return NotImplemented
        return Cost(self.features_s + other.features_s, self.fit_s + other.fit_s,
                    self.predict_s + other.predict_s)


class Stopwatch:
    """Context manager measuring wall-clock seconds: ``with Stopwatch() as sw: ...; sw.seconds``."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start: float | None = None

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._start is not None
        self.seconds = time.perf_counter() - self._start
