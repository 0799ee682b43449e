"""Accuracy against inference cost over a whole table: every cell, the Pareto front, and the
cells each search visited (in the order it visited them)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from workbench.benchmarks import COST_UNITS, TabularBenchmark
from workbench.search import Search, pareto_mask
from workbench.viz._theme import PAPER_TEMPLATE, apply_theme

PARETO_COLUMNS = ["kind", "method", "order", "cell_id", "cost", "accuracy", "on_front",
                  "answer"]


def pareto_data(bench: TabularBenchmark, metric: str = "latency", device: str | None = "pixel3",
                searches: Mapping[str, Search | pd.DataFrame] | None = None, *,
                dataset: str | None = None) -> pd.DataFrame:
    """Data step: one row per table cell (``kind`` "cell") with its cost (``metric`` on
    ``device``, :meth:`~TabularBenchmark.all_costs`), final accuracy (%) and whether it is on
    the Pareto front (low cost, high accuracy; ties kept), then one row per evaluation of each
    search (``kind`` "search", ``method`` its key, ``order`` 0, 1, ..., ``answer`` on the cell
    a :class:`~workbench.search.Search` returns); a search is a Search or its history (with a
    ``candidate`` column).
    ``attrs``: metric, device, dataset, unit."""
    ds = dataset or "cifar10"
    cost = bench.all_costs(metric, device, dataset=ds)
    acc = bench.all_accuracies(dataset=ds).reindex(cost.index)
    front = pareto_mask(cost.to_numpy(), acc.to_numpy())
    cells = pd.DataFrame({"kind": "cell", "method": "", "order": -1,
                          "cell_id": cost.index.astype(str), "cost": cost.to_numpy(),
                          "accuracy": acc.to_numpy(), "on_front": front, "answer": False})
    frames = [cells]
    for label, search in (searches or {}).items():
        hist = search.history if isinstance(search, Search) else search
        if not isinstance(hist, pd.DataFrame) or "candidate" not in hist.columns:
            raise ValueError(f"search {label!r} must be a Search or a history DataFrame with a "
                             f"'candidate' column, got {type(search).__name__}")
        ids = hist["candidate"].astype(str)
        if "trained" in hist.columns:  # LayerNAS: keep the rows that evaluated a cell
            ids = ids[hist["trained"].astype(bool).to_numpy()]
        unknown = sorted(set(ids) - set(cost.index))
        if unknown:
            raise ValueError(f"search {label!r} visited cells not in the {bench.name} table: "
                             f"{unknown[:5]}")
        answer = np.zeros(len(ids), dtype=bool)
        if isinstance(search, Search):
            try:
                best = str(search.backend.cell_id(search.best()[0]))
            except RuntimeError:  # nothing to answer yet
                best = None
            hits = np.flatnonzero(ids.to_numpy() == best)
            if len(hits):
                answer[hits[0]] = True
        frames.append(pd.DataFrame({"kind": "search", "method": str(label),
                                    "order": np.arange(len(ids)), "cell_id": ids.to_numpy(),
                                    "cost": cost.loc[ids].to_numpy(),
                                    "accuracy": acc.loc[ids].to_numpy(),
                                    "on_front": front[cost.index.get_indexer(ids)],
                                    "answer": answer}))
    out = pd.concat(frames, ignore_index=True)[PARETO_COLUMNS]
    out.attrs.update(metric=metric, device=device, dataset=ds,
                     unit=COST_UNITS.get(metric, ""))
    return out


def plot_pareto(data: pd.DataFrame, *, log_x: bool = False, title: str | None = None
                ) -> go.Figure:
    """Plot step for :func:`pareto_data`: every cell in grey, the front as a line, each
    search's visited cells joined in visiting order (its answer ringed)."""
    missing = set(PARETO_COLUMNS) - set(data.columns)
    if missing:
        raise ValueError(f"data lacks columns {sorted(missing)}; use pareto_data")
    unit = data.attrs.get("unit", "")
    metric, device = data.attrs.get("metric", "cost"), data.attrs.get("device")
    xlabel = " ".join(str(p) for p in (device, metric) if p) + (f" ({unit})" if unit else "")
    cells = data[data["kind"] == "cell"]
    fig = go.Figure()
    fig.add_trace(go.Scattergl(x=cells["cost"], y=cells["accuracy"], mode="markers",
                               marker=dict(size=3, color="#bbb"), name="cells",
                               text=cells["cell_id"], hovertemplate="%{text}: %{x:.4g}, "
                               "%{y:.2f}%<extra></extra>"))
    front = cells[cells["on_front"]].sort_values(["cost", "accuracy"])
    fig.add_trace(go.Scatter(x=front["cost"], y=front["accuracy"], mode="lines+markers",
                             line=dict(color="#222", shape="hv"), marker=dict(size=5),
                             name="Pareto front", text=front["cell_id"],
                             hovertemplate="%{text}: %{x:.4g}, %{y:.2f}%<extra></extra>"))
    colors = PAPER_TEMPLATE.layout.colorway
    searched = data[data["kind"] == "search"]
    for i, (method, d) in enumerate(searched.groupby("method", sort=False)):
        color = colors[(i + 1) % len(colors)]
        d = d.sort_values("order")
        fig.add_trace(go.Scatter(x=d["cost"], y=d["accuracy"], mode="lines+markers",
                                 line=dict(color=color, width=1), opacity=0.8,
                                 marker=dict(size=6, color=color), name=str(method),
                                 text=d["order"], legendgroup=str(method),
                                 hovertemplate="step %{text}: %{x:.4g}, %{y:.2f}%"
                                               "<extra></extra>"))
        last = d[d["answer"].astype(bool)]
        fig.add_trace(go.Scatter(x=last["cost"], y=last["accuracy"], mode="markers",
                                 marker=dict(size=13, color="rgba(0,0,0,0)",
                                             line=dict(color=color, width=2)),
                                 showlegend=False, legendgroup=str(method), hoverinfo="skip"))
    fig.update_layout(xaxis_title=xlabel, yaxis_title="final accuracy (%)")
    if log_x:
        fig.update_xaxes(type="log")
    return apply_theme(fig, title)
