"""Predicted against true values: the scatter every predictor claim should come with."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from workbench.evaluation import ArrayLike, kendall_tau, paired_arrays, spearman_rho
from workbench.viz._theme import apply_theme


def predicted_vs_true_data(pred: ArrayLike | Mapping[str, ArrayLike], true: ArrayLike, *,
                           cell_ids: Sequence[Any] | None = None, name: str = "predictor"
                           ) -> pd.DataFrame:
    """Data step: long table (predictor, cell_id, predicted, true), one row per cell and predictor.

    ``pred`` is one vector (labelled ``name``) or a mapping {name: vector}; inputs are validated.
    """
    preds = dict(pred) if isinstance(pred, Mapping) else {name: pred}
    if not preds:
        raise ValueError("no predictions to plot")
    frames = []
    for label, values in preds.items():
        try:
            p, t = paired_arrays(values, true)
        except ValueError as err:
            raise ValueError(f"predictor {label!r}: {err}") from None
        ids = np.arange(t.size) if cell_ids is None else np.asarray(cell_ids, dtype=object)
        if len(ids) != t.size:
            raise ValueError(f"cell_ids has {len(ids)} entries but there are {t.size} values")
        frames.append(pd.DataFrame({"predictor": str(label), "cell_id": ids,
                                    "predicted": p, "true": t}))
    return pd.concat(frames, ignore_index=True)


def plot_predicted_vs_true(data: pd.DataFrame, *, title: str | None = None,
                           identity: bool | None = None) -> go.Figure:
    """Drawing step: predicted (x) against true (y), one trace per predictor with its tau/rho.

    ``identity`` draws y = x; by default only when predictions and truth share a range.
    """
    missing = {"predictor", "predicted", "true"} - set(data.columns)
    if missing:
        raise ValueError(f"data lacks columns {sorted(missing)}; use predicted_vs_true_data")
    fig = go.Figure()
    for label, part in data.groupby("predictor", sort=False):
        p, t = part["predicted"].to_numpy(float), part["true"].to_numpy(float)
        tau, rho = kendall_tau(p, t), spearman_rho(p, t)
        fig.add_trace(go.Scattergl(
            x=p, y=t, mode="markers", name=f"{label} (τ={tau:.3f}, ρ={rho:.3f})",
            text=part["cell_id"].astype(str), marker=dict(size=5, opacity=0.6),
            hovertemplate="cell %{text}<br>predicted %{x:.4g}<br>true %{y:.4g}<extra></extra>"))
    lo = float(min(data["predicted"].min(), data["true"].min()))
    hi = float(max(data["predicted"].max(), data["true"].max()))
    if identity is None:
        p_lo, p_hi = data["predicted"].min(), data["predicted"].max()
        t_lo, t_hi = data["true"].min(), data["true"].max()
        identity = bool(p_lo < t_hi and t_lo < p_hi)
    if identity:
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x",
                                 line=dict(color="#888", dash="dash", width=1)))
    fig.update_xaxes(title="predicted")
    fig.update_yaxes(title="true")
    return apply_theme(fig, title)
