"""Figures of search traces: regret against cumulative cost, with bands over seeds."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from workbench.viz._theme import PAPER_TEMPLATE, apply_theme


def plot_regret(agg: pd.DataFrame, *, band: tuple[str, str] = ("q25", "q75"), log_x: bool = True,
                title: str | None = None) -> go.Figure:
    """Drawing step for ``workbench.search.aggregate_curves``: mean regret per method against
    simulated cost, with a shaded band (default: the inter-quartile range over seeds)."""
    missing = {"method", "cost", "mean", *band} - set(agg.columns)
    if missing:
        raise ValueError(f"aggregated curves lack columns {sorted(missing)}; "
                         "pass the output of workbench.search.aggregate_curves")
    colors = PAPER_TEMPLATE.layout.colorway
    fig = go.Figure()
    for i, (method, d) in enumerate(agg.groupby("method", sort=False)):
        d = d[d["cost"] > 0] if log_x else d
        color = colors[i % len(colors)]
        fig.add_trace(go.Scatter(x=list(d["cost"]) + list(d["cost"])[::-1],
                                 y=list(d[band[1]]) + list(d[band[0]])[::-1], fill="toself",
                                 line=dict(width=0), fillcolor=color, opacity=0.15,
                                 hoverinfo="skip", showlegend=False, legendgroup=method))
        fig.add_trace(go.Scatter(x=d["cost"], y=d["mean"], mode="lines", name=str(method),
                                 line=dict(color=color, width=2), legendgroup=method))
    fig.update_xaxes(title="cumulative training cost (simulated seconds)",
                     type="log" if log_x else "linear")
    fig.update_yaxes(title="regret (accuracy points)")
    return apply_theme(fig, title)
