"""Figures of training runs: learning curves and the evolution of per-layer features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from workbench._checks import is_int
from workbench.features import FEATURE_NAMES, FEATURE_SOURCES, Snapshots
from workbench.store import RunStore
from workbench.viz._theme import apply_theme

if TYPE_CHECKING:
    from workbench.training import TrainResult

LEARNING_CURVE_COLUMNS = ["run_id", "name", "step", "metric", "value"]


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
    return (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame(columns=LEARNING_CURVE_COLUMNS))


def result_curves_data(result: TrainResult, name: str = "run", run_id: str = "") -> pd.DataFrame:
    """Data step: :func:`curves_data`'s long table from one in-memory ``TrainResult`` (live
    training panels draw it with :func:`plot_learning_curves` before anything is stored)."""
    frames = []
    for frame, metrics in ((result.curves, ("train_loss", "train_acc")),
                           (result.evals, ("val_loss", "val_acc"))):
        for m in metrics:
            if m in frame.columns and len(frame):
                frames.append(pd.DataFrame({"run_id": run_id, "name": name,
                                            "step": frame["step"].to_numpy(), "metric": m,
                                            "value": frame[m].to_numpy(float)}))
    return (pd.concat(frames, ignore_index=True) if frames
            else pd.DataFrame(columns=LEARNING_CURVE_COLUMNS))


def plot_learning_curves(data: pd.DataFrame, metric: str = "train_loss",
                         title: str | None = None) -> go.Figure:
    """Drawing step: one line per run of ``metric`` against mini-batches."""
    allowed = sorted(data["metric"].unique())
    if data.empty:
        return apply_theme(go.Figure().update_layout(xaxis_title="mini-batch",
                                                     yaxis_title=metric), title)
    if metric not in allowed:
        raise ValueError(f"unknown metric {metric!r}; available: {allowed}")
    d = data[data["metric"] == metric]
    fig = px.line(d, x="step", y="value", color="name", markers=metric.startswith("val"))
    fig.update_layout(xaxis_title="mini-batch", yaxis_title=metric, legend_title="run")
    return apply_theme(fig, title)


def plot_run_curves(data: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Drawing step: one run's loss (left) and accuracy (right), training and held-out, from
    :func:`result_curves_data` or :func:`curves_data` of a single run (a live panel's view)."""
    missing = {"step", "metric", "value"} - set(data.columns)
    if missing:
        raise ValueError(f"data lacks columns {sorted(missing)}; use result_curves_data")
    fig = make_subplots(rows=1, cols=2, subplot_titles=["loss", "accuracy (%)"],
                        horizontal_spacing=0.1)
    style = {"train_loss": (1, "#1f77b4", "lines"), "val_loss": (1, "#d62728", "lines+markers"),
             "train_acc": (2, "#1f77b4", "lines"), "val_acc": (2, "#d62728", "lines+markers")}
    for metric, (col, color, mode) in style.items():
        d = data[data["metric"] == metric]
        if len(d):
            fig.add_trace(go.Scatter(x=d["step"], y=d["value"], mode=mode, name=metric,
                                     line=dict(color=color)), row=1, col=col)
    fig.update_xaxes(title="mini-batch")
    fig.update_layout(height=330)
    return apply_theme(fig, title)


def feature_evolution_data(snapshots: Snapshots, feature: str = "l2_norm",
                           source: str = "grads") -> pd.DataFrame:
    """Data step: layer x snapshot table of one statistic (rows: layers in topological order)."""
    if feature not in FEATURE_NAMES:
        raise ValueError(f"unknown feature {feature!r}; available: {list(FEATURE_NAMES)}")
    if source not in FEATURE_SOURCES:
        raise ValueError(f"unknown source {source!r}; available: {list(FEATURE_SOURCES)}")
    arr = snapshots.weights if source == "weights" else snapshots.grads
    n = snapshots.n_layers
    values = arr[:, :n, FEATURE_NAMES.index(feature)].T
    index = pd.Index(layer_labels(snapshots), name="layer")
    return pd.DataFrame(values, index=index, columns=pd.Index(snapshots.steps, name="step"))


def layer_labels(snapshots: Snapshots) -> list[str]:
    """'07 conv cells.0.edge...' per real layer: topological position, kind and module name."""
    return [f"{i:02d} {k} {name}" for i, (k, name) in
            enumerate(zip(snapshots.layer_kinds, snapshots.layer_names, strict=True))]


def _check_feature(feature: str) -> None:
    if feature not in FEATURE_NAMES:
        raise ValueError(f"unknown feature {feature!r}; available: {list(FEATURE_NAMES)}")


def _check_layers(snapshots: Snapshots, layers: Sequence[int] | int | None) -> list[int]:
    """Layer positions to show (default: every real layer), validated."""
    n = snapshots.n_layers
    if layers is None:
        return list(range(n))
    chosen = [layers] if isinstance(layers, (int, np.integer)) else list(layers)
    bad = [i for i in chosen if not is_int(i) or not 0 <= i < n]
    if bad or not chosen:
        raise ValueError(f"layers must be positions in 0..{n - 1}, got {layers!r}")
    return [int(i) for i in chosen]


def feature_lines_data(snapshots: Snapshots, feature: str = "l2_norm",
                       layers: Sequence[int] | int | None = None,
                       sources: Sequence[str] = FEATURE_SOURCES) -> pd.DataFrame:
    """Data step: long table (step, layer, layer_label, kind, source, value) of one statistic,
    per layer and source, so that weights and gradients can be compared layer by layer."""
    _check_feature(feature)
    bad = [s for s in sources if s not in FEATURE_SOURCES]
    if bad or not sources:
        raise ValueError(f"unknown sources {bad or sources!r}; available: {list(FEATURE_SOURCES)}")
    chosen = _check_layers(snapshots, layers)
    labels = layer_labels(snapshots)
    f = FEATURE_NAMES.index(feature)
    frames = []
    for source in sources:
        arr = snapshots.weights if source == "weights" else snapshots.grads
        for i in chosen:
            frames.append(pd.DataFrame({
                "step": snapshots.steps, "layer": i, "layer_label": labels[i],
                "kind": snapshots.layer_kinds[i], "source": source,
                "value": arr[:, i, f].astype(np.float64)}))
    return pd.concat(frames, ignore_index=True)


def plot_feature_lines(data: pd.DataFrame, *, log: bool = True, title: str | None = None
                       ) -> go.Figure:
    """Drawing step: one panel per source (weights | gradients), one line per layer coloured
    by topological position (early layers dark, late layers light); on the log axis a zero
    (a change statistic at the first snapshot) is left out rather than drawn off the axis."""
    missing = {"step", "layer", "layer_label", "source", "value"} - set(data.columns)
    if missing:
        raise ValueError(f"data lacks columns {sorted(missing)}; use feature_lines_data")
    sources = list(dict.fromkeys(data["source"]))
    fig = make_subplots(rows=1, cols=len(sources), shared_xaxes=True,
                        subplot_titles=[s for s in sources], horizontal_spacing=0.08)
    layers = sorted(data["layer"].unique())
    span = max(1, len(layers) - 1)
    colors = sample_colorscale("Viridis", [k / span for k in range(len(layers))])
    color = dict(zip(layers, colors, strict=True))
    legend = len(layers) <= 16
    for col, source in enumerate(sources, start=1):
        part = data[data["source"] == source]
        for layer, d in part.groupby("layer", sort=True):
            y = d["value"].to_numpy(float)
            if log:  # 0 has no place on a log axis: a gap, not a drop to the bottom edge
                y = np.where(np.isfinite(y) & (y != 0), np.abs(y), np.nan)
            fig.add_trace(go.Scatter(
                x=d["step"], y=y, mode="lines+markers", connectgaps=False,
                name=str(d["layer_label"].iloc[0]), legendgroup=str(layer),
                showlegend=legend and col == 1, marker=dict(size=4),
                line=dict(color=color[layer], width=1.5),
                hovertemplate=f"{d['layer_label'].iloc[0]}<br>step %{{x}}<br>%{{y:.4g}}"
                              "<extra></extra>"), row=1, col=col)
        fig.update_yaxes(type="log" if log else "linear", row=1, col=col,
                         title="|value|" if log and col == 1 else None)
        fig.update_xaxes(title="mini-batch", row=1, col=col)
    return apply_theme(fig, title)


def snapshot_values_data(snapshots: Snapshots, snapshot: int = -1, *, layer: int | None = None,
                         feature: str = "l2_norm") -> pd.DataFrame:
    """Data step: the values at one snapshot (position, negative from the end), weights and
    gradients side by side: every statistic of ``layer``, or ``feature`` of every layer."""
    n_snap = len(snapshots)
    if not is_int(snapshot) or not -n_snap <= snapshot < n_snap:
        raise ValueError(f"snapshot must be a position in {-n_snap}..{n_snap - 1}, "
                         f"got {snapshot!r}")
    if layer is not None:
        i = _check_layers(snapshots, layer)[0]
        out = pd.DataFrame({s: (snapshots.weights if s == "weights" else snapshots.grads)
                            [snapshot, i, :] for s in FEATURE_SOURCES},
                           index=pd.Index(FEATURE_NAMES, name="feature"))
    else:
        _check_feature(feature)
        f, n = FEATURE_NAMES.index(feature), snapshots.n_layers
        out = pd.DataFrame({s: (snapshots.weights if s == "weights" else snapshots.grads)
                            [snapshot, :n, f] for s in FEATURE_SOURCES},
                           index=pd.Index(layer_labels(snapshots), name="layer"))
    out.columns.name = f"step {int(snapshots.steps[snapshot])}"
    return out.astype(np.float64)


def _log10_abs(values: np.ndarray) -> np.ndarray:
    """log10 |values|, NaN where a value is 0 or not finite (no floor stretching the scale)."""
    a = np.abs(np.asarray(values, dtype=float))
    out = np.full(a.shape, np.nan)
    ok = np.isfinite(a) & (a > 0)
    out[ok] = np.log10(a[ok])
    return out


def plot_feature_heatmap(data: pd.DataFrame, *, log: bool = True, title: str | None = None,
                         mark_step: int | None = None) -> go.Figure:
    """Drawing step: heatmap of :func:`feature_evolution_data` (log10 |value| by default, zeros
    left blank: a change statistic is 0 at the first snapshot, which has no previous one);
    ``mark_step`` draws a vertical line at that snapshot (an explorer's slider position)."""
    z = data.to_numpy(dtype=float)
    if log:
        z = _log10_abs(z)
    fig = go.Figure(go.Heatmap(z=z, x=data.columns.to_numpy(), y=list(data.index),
                               colorscale="Viridis", hoverongaps=False,
                               colorbar=dict(title="log10 |v|" if log else "value")))
    if mark_step is not None:
        fig.add_vline(x=mark_step, line=dict(color="red", width=2))
    fig.update_layout(xaxis_title="mini-batch", yaxis=dict(autorange="reversed", title="layer"),
                      height=max(300, 14 * len(data) + 120))
    return apply_theme(fig, title)
