"""One consistent plotly template for every workbench figure (screen and paper)."""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

PAPER_TEMPLATE = go.layout.Template(
    layout=go.Layout(
        font=dict(family="Helvetica, Arial, sans-serif", size=13, color="#222"),
        paper_bgcolor="white",
        plot_bgcolor="white",
        colorway=["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"],
        xaxis=dict(showline=True, linecolor="#444", ticks="outside", gridcolor="#eee",
                   zeroline=False),
        yaxis=dict(showline=True, linecolor="#444", ticks="outside", gridcolor="#eee",
                   zeroline=False),
        margin=dict(l=60, r=20, t=50, b=50),
        legend=dict(bgcolor="rgba(255,255,255,0.8)"),
    )
)


_MERGED: go.layout.Template | None = None


def workbench_template() -> go.layout.Template:
    """plotly_white with :data:`PAPER_TEMPLATE` on top, built once and registered in
    ``plotly.io.templates`` as ``"workbench"`` (so that ``template="workbench"`` works too)."""
    global _MERGED
    if _MERGED is None:
        merged = go.layout.Template(pio.templates["plotly_white"])  # a copy: plotly_white stays
        merged.update(PAPER_TEMPLATE)
        pio.templates["workbench"] = merged
        _MERGED = merged
    return _MERGED


def apply_theme(fig: go.Figure, title: str | None = None) -> go.Figure:
    """Apply the workbench template (and optionally a title) to ``fig`` in place; return it."""
    fig.update_layout(template=workbench_template())
    if title is not None:
        fig.update_layout(title=title)
    return fig
