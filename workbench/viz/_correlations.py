"""Rank correlations of signals with the truth, with bootstrap confidence intervals, as a table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from workbench.evaluation import METRICS, ArrayLike, bootstrap_cis, point_metrics
from workbench.viz._theme import apply_theme

_SHORT = {"kendall_tau": "Kendall τ", "spearman_rho": "Spearman ρ", "weighted_tau": "weighted τ"}


def correlation_table_data(signals: pd.DataFrame, truth: str | ArrayLike, *,
                           metrics: Sequence[str] = ("kendall_tau", "spearman_rho"),
                           n_boot: int = 200, level: float = 0.95, seed: int = 0
                           ) -> pd.DataFrame:
    """Data step: per signal column, n and each metric with its percentile bootstrap interval
    (columns ``<metric>``, ``<metric>_low``, ``<metric>_high``).

    ``truth`` is a column of ``signals`` or a vector; rows where a signal or the truth is
    missing are left out for that signal (``n`` says how many pairs were used). The intervals
    come from ``workbench.evaluation.bootstrap_cis``: the same seeded resamples for every metric.
    """
    if not isinstance(signals, pd.DataFrame):
        raise ValueError(f"signals must be a DataFrame, got {type(signals).__name__}")
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"unknown metrics {unknown or list(metrics)}; available: {list(METRICS)}")
    if isinstance(truth, str):
        if truth not in signals.columns:
            raise ValueError(f"truth column {truth!r} is not in signals: {list(signals.columns)}")
        t = signals[truth].to_numpy(dtype=float)
        cols = [c for c in signals.columns if c != truth]
    else:
        t = np.asarray(truth, dtype=float).ravel()
        if t.size != len(signals):
            raise ValueError(f"truth has {t.size} values but signals has {len(signals)} rows")
        cols = list(signals.columns)
    fns = {m: METRICS[m] for m in metrics}
    rows = []
    for col in cols:
        s = pd.to_numeric(signals[col], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(s) & np.isfinite(t)
        row: dict[str, object] = {"signal": str(col), "n": int(ok.sum())}
        if ok.sum() >= 2:
            values = point_metrics(s[ok], t[ok], fns)
            cis = bootstrap_cis(s[ok], t[ok], fns, n_boot=n_boot, level=level, seed=seed)
        else:
            values, cis = {}, {}
        for m in metrics:
            lo, hi = cis.get(m, (np.nan, np.nan))
            row.update({m: values.get(m, np.nan), f"{m}_low": lo, f"{m}_high": hi})
        rows.append(row)
    columns = ["signal", "n", *[c for m in metrics for c in (m, f"{m}_low", f"{m}_high")]]
    return pd.DataFrame(rows, columns=columns)


def _metrics_of(data: pd.DataFrame) -> list[str]:
    return [c for c in data.columns if f"{c}_low" in data.columns and f"{c}_high" in data.columns]


def plot_correlation_table(data: pd.DataFrame, *, title: str | None = None, digits: int = 3
                           ) -> go.Figure:
    """Drawing step: :func:`correlation_table_data` as a table, 'value [low, high]' per metric;
    the best signal of each metric in bold."""
    metrics = _metrics_of(data)
    if "signal" not in data.columns or not metrics:
        raise ValueError("data lacks signal/<metric>/_low/_high columns; use "
                         "correlation_table_data")
    header = ["signal", "n", *[f"{_SHORT.get(m, m)} [CI]" for m in metrics]]
    columns: list[list[str]] = [[str(s) for s in data["signal"]],
                                [str(int(n)) for n in data["n"]]]
    for m in metrics:
        vals = data[m].to_numpy(dtype=float)
        best = np.nanargmax(vals) if np.isfinite(vals).any() else -1
        cells = []
        for i, (v, lo, hi) in enumerate(zip(vals, data[f"{m}_low"], data[f"{m}_high"],
                                            strict=True)):
            text = (f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]" if np.isfinite(v)
                    else "n/a")
            cells.append(f"<b>{text}</b>" if i == best else text)
        columns.append(cells)
    fig = go.Figure(go.Table(
        header=dict(values=[f"<b>{h}</b>" for h in header], fill_color="#f4f4f4",
                    align="left", line_color="#ccc"),
        cells=dict(values=columns, align="left", line_color="#ddd", height=26)))
    fig.update_layout(height=min(900, 90 + 28 * len(data)), margin=dict(l=10, r=10, t=40, b=10))
    return apply_theme(fig, title)
