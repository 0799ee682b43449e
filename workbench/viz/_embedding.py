"""t-SNE of runs' NAP2 feature maps at one snapshot, coloured by the runs' final accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from workbench._checks import is_int
from workbench.features import FEATURE_SOURCES
from workbench.store import FeatureSet, RunStore
from workbench.viz._theme import apply_theme

TSNE_COLUMNS = ["run_id", "space", "cell_id", "seed", "label", "snapshot", "step", "x", "y"]


def stored_feature_runs(store: RunStore, run_ids: Sequence[str] | None = None) -> list[str]:
    """Ids of the finished runs (done or diverged) of ``store`` that recorded snapshots."""
    runs = store.runs(status=["done", "diverged"])
    ids = list(runs["run_id"]) if run_ids is None else list(run_ids)
    return [r for r in ids if "snapshots" in store.array_names(r)]


def load_feature_set(store_or_features: RunStore | FeatureSet,
                     run_ids: Sequence[str] | None = None) -> FeatureSet:
    """The stacked snapshots of ``run_ids`` (default: every finished run that has them)."""
    if isinstance(store_or_features, FeatureSet):
        return store_or_features
    if not isinstance(store_or_features, RunStore):
        raise ValueError("expected a RunStore or a FeatureSet (RunStore.load_features), got "
                         f"{type(store_or_features).__name__}")
    ids = stored_feature_runs(store_or_features, run_ids)
    if not ids:
        raise ValueError(f"no finished runs with snapshots in {store_or_features.root}")
    return store_or_features.load_features(ids)


def _positions(features: FeatureSet, snapshot: int | None, step: int | None) -> np.ndarray:
    """Per run, the snapshot position to use (-1 where the run has no such snapshot)."""
    counts = features.n_snapshots
    steps = features.arrays["steps"]
    out = np.full(len(counts), -1, dtype=int)
    for i, n in enumerate(counts):
        if step is not None:
            ok = np.flatnonzero(steps[i, :n] <= step)
            out[i] = ok[-1] if ok.size else -1
        else:
            assert snapshot is not None  # the caller passes one of snapshot and step
            pos = snapshot + n if snapshot < 0 else snapshot
            out[i] = pos if 0 <= pos < n else -1
    return out


def feature_matrix(features: FeatureSet, snapshot: int = -1, *, step: int | None = None,
                   sources: Sequence[str] = FEATURE_SOURCES) -> tuple[np.ndarray, pd.DataFrame]:
    """(X, rows): one row per run holding its [layers x statistics] maps of ``sources`` at one
    snapshot, flattened (padded layers are 0, as in NAP2), and the runs' rows with the snapshot
    used. ``snapshot`` is a position (negative: from each run's end); ``step`` instead picks each
    run's last snapshot at or before that mini-batch. Runs without it are left out."""
    if step is None and not is_int(snapshot):
        raise ValueError(f"snapshot must be an int position, got {snapshot!r}")
    bad = [s for s in sources if s not in FEATURE_SOURCES]
    if bad or not sources:
        raise ValueError(f"unknown sources {bad or sources!r}; available: {list(FEATURE_SOURCES)}")
    pos = _positions(features, None if step is not None else int(snapshot), step)
    keep = np.flatnonzero(pos >= 0)
    blocks = []
    for source in sources:
        arr = features.arrays[source]  # [runs, snapshots, layers, features]
        blocks.append(arr[keep, pos[keep]].reshape(len(keep), -1))
    x = np.nan_to_num(np.concatenate(blocks, axis=1).astype(np.float64), nan=0.0)
    rows = features.runs.iloc[keep].reset_index(drop=True).copy()
    rows["snapshot"] = pos[keep]
    rows["step"] = features.arrays["steps"][keep, pos[keep]].astype(np.int64)
    return x, rows


def _standardise(x: np.ndarray) -> np.ndarray:
    """Signed log1p (the statistics span many orders of magnitude), then z-scores per column;
    constant columns are dropped."""
    z = np.sign(x) * np.log1p(np.abs(x))
    std = z.std(axis=0)
    z = z[:, std > 1e-12]
    return (z - z.mean(axis=0)) / z.std(axis=0) if z.shape[1] else z


def tsne_data(store_or_features: RunStore | FeatureSet, snapshot: int = -1, *,
              step: int | None = None, run_ids: Sequence[str] | None = None,
              sources: Sequence[str] = FEATURE_SOURCES, label: str = "label",
              perplexity: float = 30.0, random_state: int = 0) -> pd.DataFrame:
    """Data step: 2-D t-SNE of the runs' feature maps at one snapshot (see
    :func:`feature_matrix`), one row per run with its label (the table's final accuracy by
    default; the run's own held-out accuracy ``final_val_acc`` when no run has a label).

    sklearn's TSNE with ``init="pca"`` and a fixed ``random_state`` (reproducible); the
    perplexity is clipped to n_runs - 1, which t-SNE requires.
    """
    from sklearn.manifold import TSNE  # lazy: only this figure needs it

    features = load_feature_set(store_or_features, run_ids)
    x, rows = feature_matrix(features, snapshot, step=step, sources=sources)
    n = len(rows)
    if n < 2:
        raise ValueError(f"t-SNE needs at least 2 runs with that snapshot, got {n} "
                         f"(snapshot={snapshot!r}, step={step!r})")
    if not (isinstance(perplexity, (int, float)) and perplexity > 0):
        raise ValueError(f"perplexity must be a number > 0, got {perplexity!r}")
    z = _standardise(x)
    if z.shape[1] == 0:
        emb = np.zeros((n, 2))
    else:
        if z.shape[1] < 2:
            z = np.hstack([z, np.zeros((n, 1))])
        emb = TSNE(n_components=2, init="pca", perplexity=float(min(perplexity, n - 1)),
                   random_state=int(random_state), learning_rate="auto").fit_transform(z)
    lab = rows[label] if label in rows.columns else pd.Series(np.nan, index=rows.index)
    if lab.isna().all() and "final_val_acc" in rows.columns:
        lab = rows["final_val_acc"]
    out = pd.DataFrame({c: rows[c] if c in rows.columns else pd.NA
                        for c in ("run_id", "space", "cell_id", "seed")})
    out["label"] = pd.to_numeric(lab, errors="coerce").to_numpy(dtype=float)
    out["snapshot"] = rows["snapshot"].to_numpy()
    out["step"] = rows["step"].to_numpy()
    out["x"], out["y"] = emb[:, 0], emb[:, 1]
    return out[TSNE_COLUMNS]


def tsne_frames(store_or_features: RunStore | FeatureSet, snapshots: Sequence[int],
                **kwargs: Any) -> pd.DataFrame:
    """Data step: :func:`tsne_data` at several snapshot positions, stacked (for a slider)."""
    features = load_feature_set(store_or_features, kwargs.pop("run_ids", None))
    parts = [tsne_data(features, s, **kwargs).assign(position=s) for s in snapshots]
    return pd.concat(parts, ignore_index=True)


def plot_tsne(data: pd.DataFrame, *, title: str | None = None, label: str = "final accuracy (%)"
              ) -> go.Figure:
    """Drawing step: the t-SNE map, one point per run, coloured by its label."""
    missing = {"x", "y", "label", "run_id"} - set(data.columns)
    if missing:
        raise ValueError(f"data lacks columns {sorted(missing)}; use tsne_data")
    text = [f"{sp}:{str(c)[:12]} run {str(r)[:8]}" for sp, c, r in
            zip(data.get("space", [""] * len(data)), data.get("cell_id", [""] * len(data)),
                data["run_id"], strict=True)]
    has_label = bool(data["label"].notna().any())
    marker = dict(size=9, line=dict(width=0.5, color="#333"))
    if has_label:
        marker.update(color=data["label"], colorscale="Viridis", showscale=True,
                      colorbar=dict(title=label))
    fig = go.Figure(go.Scatter(
        x=data["x"], y=data["y"], mode="markers", marker=marker, text=text,
        customdata=data["label"],
        hovertemplate="%{text}<br>label %{customdata:.2f}<extra></extra>"))
    steps = sorted(set(data["step"])) if "step" in data.columns else []
    sub = f"snapshot at mini-batch {steps[0]}" if len(steps) == 1 else ""
    fig.update_xaxes(title="t-SNE 1", showticklabels=False)
    fig.update_yaxes(title="t-SNE 2", showticklabels=False)
    fig.update_layout(annotations=[dict(text=sub, xref="paper", yref="paper", x=0, y=1.06,
                                        showarrow=False)] if sub else [])
    return apply_theme(fig, title)
