"""Figures of training runs: learning curves and the evolution of per-layer features."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from workbench.features import FEATURE_NAMES, SOURCES, Snapshots
from workbench.store import RunStore
from workbench.viz._theme import apply_theme


def curves_data(store: RunStore, run_ids: Sequence[str]) -> pd.DataFrame:
    """Data step: long table (run_id, name, step, metric, value) of training and eval curves."""
    frames = []
    runs = store.runs().set_index("run_id")
    for rid in run_ids:
        name = f"{runs.loc[rid, 'space']}:{runs.loc[rid, 'cell_id']}"[:28]
        for arrays_name, metrics in (("curves", ("train_loss", "train_acc")),
                                     ("evals", ("val_loss", "val_acc"))):
            if arrays_name not in store.array_names(rid):
                continue
            arr = store.load_arrays(rid, arrays_name)
            for m in metrics:
                if m in arr:
                    frames.append(pd.DataFrame({"run_id": rid, "name": name,
                                                "step": arr["step"], "metric": m,
                                                "value": arr[m]}))
    cols = ["run_id", "name", "step", "metric", "value"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def plot_learning_curves(data: pd.DataFrame, metric: str = "train_loss",
                         title: str | None = None) -> go.Figure:
    """Drawing step: one line per run of ``metric`` against mini-batches."""
    allowed = sorted(data["metric"].unique())
    if metric not in allowed:
        raise ValueError(f"unknown metric {metric!r}; available: {allowed}")
    d = data[data["metric"] == metric]
    fig = px.line(d, x="step", y="value", color="name", markers=metric.startswith("val"))
    fig.update_layout(xaxis_title="mini-batch", yaxis_title=metric, legend_title="run")
    return apply_theme(fig, title)


def feature_evolution_data(snapshots: Snapshots, feature: str = "l2_norm",
                           source: str = "grads") -> pd.DataFrame:
    """Data step: layer x snapshot table of one statistic (rows: layers in topological order)."""
    if feature not in FEATURE_NAMES:
        raise ValueError(f"unknown feature {feature!r}; available: {list(FEATURE_NAMES)}")
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; available: {list(SOURCES)}")
    arr = snapshots.weights if source == "weights" else snapshots.grads
    n = snapshots.n_layers
    values = arr[:, :n, FEATURE_NAMES.index(feature)].T
    index = pd.Index([f"{i:02d} {k} {name}" for i, (k, name) in
                      enumerate(zip(snapshots.layer_kinds, snapshots.layer_names, strict=True))],
                     name="layer")
    return pd.DataFrame(values, index=index, columns=pd.Index(snapshots.steps, name="step"))


def plot_feature_heatmap(data: pd.DataFrame, *, log: bool = True, title: str | None = None
                         ) -> go.Figure:
    """Drawing step: heatmap of :func:`feature_evolution_data` (log10 |value| by default)."""
    z = data.to_numpy(dtype=float)
    if log:
        z = np.log10(np.abs(z) + 1e-12)
    fig = go.Figure(go.Heatmap(z=z, x=data.columns.to_numpy(), y=list(data.index),
                               colorscale="Viridis",
                               colorbar=dict(title="log10 |v|" if log else "value")))
    fig.update_layout(xaxis_title="mini-batch", yaxis=dict(autorange="reversed", title="layer"),
                      height=max(300, 14 * len(data) + 120))
    return apply_theme(fig, title)
