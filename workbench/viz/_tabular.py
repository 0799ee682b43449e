"""Figures over the tabular benchmarks: cheap signals against final accuracy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from workbench.benchmarks import TabularBenchmark
from workbench.evaluation import rank_correlations
from workbench.viz._theme import apply_theme


def signal_data(bench: TabularBenchmark, dataset: str | None = None) -> pd.DataFrame:
    """Data step: per cell, the cheap signals (params, short-budget accuracies) and the label."""
    final = bench.fidelity(dataset=dataset)
    t = bench.table()
    out = pd.DataFrame({"cell_id": t["cell_id"], "params": t["params"]})
    for f in bench.fidelities:
        if f.dataset == final.dataset and f.epochs < final.epochs and f.split == "val":
            out[f"acc@{f.epochs}"] = t[f.label]
    if hasattr(bench, "naswot"):
        out["naswot"] = bench.naswot().to_numpy()
    out["final"] = t[final.label]
    return out


def signal_correlations(data: pd.DataFrame) -> pd.DataFrame:
    """Data step: Kendall/Spearman of each signal column of :func:`signal_data` vs ``final``."""
    cols = [c for c in data.columns if c not in ("cell_id", "final")]
    return rank_correlations(data[cols], data["final"])


def plot_signal_scatter(data: pd.DataFrame, signal: str = "params", *, log_x: bool | None = None,
                        title: str | None = None) -> go.Figure:
    """Drawing step: one signal against final accuracy, one point per cell."""
    if signal not in data.columns:
        raise ValueError(f"unknown signal {signal!r}; available: "
                         f"{[c for c in data.columns if c not in ('cell_id', 'final')]}")
    x = data[signal]
    if log_x is None:
        log_x = bool(signal == "params" and (x > 0).all() and x.max() / max(x.min(), 1) > 50)
    fig = go.Figure(go.Scattergl(x=x, y=data["final"], mode="markers", text=data["cell_id"],
                                 marker=dict(size=4, opacity=0.5)))
    fig.update_xaxes(title=signal, type="log" if log_x else "linear")
    fig.update_yaxes(title="final accuracy (%)", range=_robust_range(data["final"]))
    return apply_theme(fig, title)


def _robust_range(y: pd.Series) -> list[float]:
    lo, hi = np.nanpercentile(y, [1, 100])
    pad = 0.05 * (hi - lo)
    return [float(lo - pad), float(hi + pad)]
