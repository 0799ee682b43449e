"""Sample-size curves of predictors (``bench/predictor_curves.py``, notebook 03): mean ± sd over
seeds of a rank correlation on the held-out cells against the number of training cells."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.evaluation import summarize_curves
from workbench.viz._theme import PAPER_TEMPLATE, apply_theme

#: Columns of :func:`sample_size_curve_data`.
CURVE_DATA_COLUMNS = ["label_set", "predictor", "n", "metric", "mean", "sd", "count",
                      "fit_seconds", "fitted"]


def _rows(source: pd.DataFrame | Mapping[str, Any] | str | os.PathLike[str]) -> pd.DataFrame:
    """The tidy rows of ``sample_size_curves`` (with ``label_set``) from a frame, a results dict
    with ``sections`` of ``rows`` (``bench/predictor_curves.py``) or the path of its JSON."""
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
        if "label_set" not in frame.columns:
            frame["label_set"] = ""
        return frame
    if isinstance(source, (str, os.PathLike)):
        source = json.loads(Path(source).read_text())
    sections = source.get("sections") if isinstance(source, Mapping) else None
    if not isinstance(sections, Mapping):
        raise ValueError("expected rows of sample_size_curves (a DataFrame), or the results of "
                         "bench/predictor_curves.py (a dict with 'sections') or its JSON path")
    frames = [pd.DataFrame.from_records(sec["rows"]).assign(label_set=str(name))
              for name, sec in sections.items()
              if isinstance(sec, Mapping) and sec.get("rows")]
    if not frames:
        raise ValueError("the results hold no section with rows yet")
    return pd.concat(frames, ignore_index=True)


def sample_size_curve_data(source: pd.DataFrame | Mapping[str, Any] | str | os.PathLike[str],
                           *, metric: str = "kendall_tau",
                           label_sets: Sequence[str] | None = None,
                           predictors: Sequence[str] | None = None) -> pd.DataFrame:
    """Data step: mean, sd (ddof 1) and count over seeds of ``metric`` per label set, predictor
    and training size ``n``, with the mean ``fit_seconds`` and whether the predictor is fitted
    at all (``fitted``: False for fixed scores, whose fit time is 0) (:data:`CURVE_DATA_COLUMNS`).

    ``source``: rows of :func:`workbench.evaluation.sample_size_curves` (a ``label_set``
    column optional), or the results of ``bench/predictor_curves.py`` (dict or JSON path).
    ``label_sets`` / ``predictors`` keep only those, in that order (default: all, in order).
    """
    frame = _rows(source)
    for what, keep, col in (("label set", label_sets, "label_set"),
                            ("predictor", predictors, "predictor")):
        if keep is None:
            continue
        unknown = sorted(set(keep) - set(frame[col]))
        if unknown:
            raise ValueError(f"unknown {what}s {unknown}; available: "
                             f"{list(dict.fromkeys(frame[col]))}")
        frame = frame[frame[col].isin(list(keep))]
        order = {k: i for i, k in enumerate(keep)}
        frame = frame.iloc[np.argsort(frame[col].map(order).to_numpy(), kind="stable")]
    if metric not in frame.columns:
        raise ValueError(f"no metric {metric!r}; available: "
                         f"{[c for c in frame.columns if 'tau' in c or 'rho' in c]}")
    frame = frame.dropna(subset=[metric])
    by = ["label_set", "predictor", "n"]
    data = summarize_curves(frame, metric, by=by)
    if "fit_seconds" in frame.columns:
        fits = frame.groupby(by, sort=False)["fit_seconds"].mean().rename("fit_seconds")
        fitted = frame.groupby(["label_set", "predictor"], sort=False)["fit_seconds"].max() > 0
        data = data.join(fits, on=by).join(fitted.rename("fitted"), on=["label_set", "predictor"])
    else:
        data = data.assign(fit_seconds=np.nan, fitted=True)
    return data[CURVE_DATA_COLUMNS]


def _err(values: pd.Series) -> dict[str, Any]:
    arr = [None if not math.isfinite(v) else float(v) for v in values.astype(float)]
    return dict(type="data", array=arr, visible=True, thickness=1.2, width=3)


def plot_sample_size_curves(data: pd.DataFrame, *, title: str | None = None,
                            log_x: bool = True, columns: int = 2) -> go.Figure:
    """Drawing step for :func:`sample_size_curve_data`: the metric's mean ± sd over seeds
    against the number of training cells, one line per predictor (dotted: fixed scores, judged
    on the same held-out cells), one panel per label set (``columns`` a row)."""
    missing = set(CURVE_DATA_COLUMNS) - set(data.columns)
    if missing:
        raise ValueError(f"data lacks columns {sorted(missing)}; use sample_size_curve_data")
    if data.empty:
        raise ValueError("no curves to draw")
    sets = list(dict.fromkeys(data["label_set"]))
    predictors = list(dict.fromkeys(data["predictor"]))
    way = PAPER_TEMPLATE.layout.colorway
    colors = {p: way[i % len(way)] for i, p in enumerate(predictors)}
    cols = max(1, min(int(columns), len(sets)))
    rows = -(-len(sets) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[s or " " for s in sets],
                        shared_yaxes=True, horizontal_spacing=0.06, vertical_spacing=0.12)
    metric = str(data["metric"].iloc[0])
    for k, name in enumerate(sets):
        r, c = k // cols + 1, k % cols + 1
        for p in predictors:
            d = data[(data["label_set"] == name) & (data["predictor"] == p)].sort_values("n")
            if d.empty:
                continue
            fixed = not bool(d["fitted"].iloc[0])
            fig.add_trace(go.Scatter(
                x=d["n"], y=d["mean"], error_y=_err(d["sd"]), mode="lines+markers", name=p,
                legendgroup=p, showlegend=k == 0,
                line=dict(color=colors[p], width=2, dash="dot" if fixed else "solid"),
                marker=dict(size=6), customdata=np.column_stack([d["count"], d["fit_seconds"]]),
                hovertemplate=p + ", N=%{x}: %{y:.3f} (%{customdata[0]} seeds, fit "
                              "%{customdata[1]:.2f} s)<extra></extra>"),
                row=r, col=c)
        fig.update_xaxes(title="training cells N" if r == rows else None,
                         type="log" if log_x else "linear", row=r, col=c)
    for r in range(1, rows + 1):
        fig.update_yaxes(title=metric.replace("_", " "), row=r, col=1)
    fig.update_layout(height=360 * rows + 60)
    return apply_theme(fig, title)
