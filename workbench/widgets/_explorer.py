"""Exploring stored runs: one run's features over snapshots, and a t-SNE of all runs."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from workbench.features import FEATURE_NAMES, FEATURE_SOURCES, Snapshots
from workbench.store import FeatureSet, RunStore
from workbench.viz import (
    feature_evolution_data,
    feature_lines_data,
    frame_html,
    layer_labels,
    load_feature_set,
    plot_feature_heatmap,
    plot_feature_lines,
    plot_tsne,
    snapshot_values_data,
    stored_feature_runs,
    tsne_data,
)
from workbench.widgets._common import WidgetView, ipywidgets, show_figure

ALL_LAYERS = -1


def _run_label(row: pd.Series) -> str:
    """'nb201 1234 seed 0: 41.2 % (label 91.3)' for a run picker."""
    acc = row.get("final_val_acc")
    label = row.get("label")
    parts = [f"{row['space']} {str(row['cell_id'])[:12]} seed {row['seed']}"]
    if acc is not None and pd.notna(acc):
        parts.append(f": {acc:.1f} %")
    if label is not None and pd.notna(label):
        parts.append(f" (table {label:.1f} %)")
    return "".join(parts)


class FeatureExplorer(WidgetView):
    """Browse the NAP2 snapshots of stored runs.

    Pick a run, a statistic, weights or gradients, a layer (or all) and a snapshot with the
    slider: the layer x snapshot heatmap (slider position marked), the per-layer lines of
    weights vs gradients, and a table of the values at that snapshot. ``.store``, ``.runs``,
    ``.snapshots`` (the current run's), ``.data`` (the heatmap's DataFrame) and ``.table``
    (the values at the snapshot) expose what is shown.
    """

    def __init__(self, store: RunStore, run_ids: Sequence[str] | None = None, *,
                 feature: str = "l2_norm", source: str = "grads") -> None:
        w = ipywidgets()
        self.store = store
        ids = stored_feature_runs(store, run_ids)
        if not ids:
            raise ValueError(f"no finished runs with snapshots in {store.root}")
        self.runs = store.runs().set_index("run_id").loc[ids].reset_index()
        style = {"description_width": "initial"}
        self.run_picker = w.Dropdown(options=[(_run_label(r), r["run_id"]) for _, r in
                                              self.runs.iterrows()], value=ids[0],
                                     description="run", layout=w.Layout(width="520px"))
        self.feature_picker = w.Dropdown(options=list(FEATURE_NAMES), value=feature,
                                         description="statistic")
        self.source_picker = w.ToggleButtons(options=list(FEATURE_SOURCES), value=source)
        self.layer_picker = w.Dropdown(options=[("all layers", ALL_LAYERS)], value=ALL_LAYERS,
                                       description="layer", layout=w.Layout(width="420px"))
        self.snapshot_slider = w.IntSlider(value=0, min=0, max=0, description="snapshot",
                                           style=style, continuous_update=False)
        self.step_label = w.HTML("")
        self.heatmap_out = w.Output()
        self.lines_out = w.Output()
        self.table_html = w.HTML("")
        self.widget = w.VBox([
            self.run_picker,
            w.HBox([self.feature_picker, self.source_picker]),
            w.HBox([self.layer_picker, self.snapshot_slider, self.step_label]),
            self.heatmap_out, self.lines_out, self.table_html])
        self._cache: dict[str, Snapshots] = {}
        self._quiet = False
        self.heatmap_figure: go.Figure | None = None
        self.lines_figure: go.Figure | None = None
        self.run_picker.observe(lambda _: self._run_changed(), names="value")
        for picker in (self.feature_picker, self.source_picker):
            picker.observe(lambda _: self.refresh(), names="value")
        self.layer_picker.observe(lambda _: self.refresh(heatmap=False), names="value")
        self.snapshot_slider.observe(lambda _: self.refresh(lines=False), names="value")
        self._run_changed()

    # -- state ---------------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        """The selected run."""
        return str(self.run_picker.value)

    @property
    def snapshots(self) -> Snapshots:
        """The selected run's snapshots (loaded once per run)."""
        rid = self.run_id
        if rid not in self._cache:
            self._cache[rid] = Snapshots.from_arrays(self.store.load_arrays(rid, "snapshots"))
        return self._cache[rid]

    @property
    def layer(self) -> int | None:
        """The selected layer position, or None for all layers."""
        v = int(self.layer_picker.value)
        return None if v == ALL_LAYERS else v

    @property
    def data(self) -> pd.DataFrame:
        """Layer x snapshot table of the selected statistic and source."""
        return feature_evolution_data(self.snapshots, self.feature_picker.value,
                                      self.source_picker.value)

    @property
    def table(self) -> pd.DataFrame:
        """Values at the selected snapshot: every statistic of the selected layer, or the
        selected statistic of every layer (weights and gradients side by side)."""
        return snapshot_values_data(self.snapshots, int(self.snapshot_slider.value),
                                    layer=self.layer, feature=self.feature_picker.value)

    # -- drawing -------------------------------------------------------------------------------
    def _run_changed(self) -> None:
        snaps = self.snapshots
        self._quiet = True  # no redraw per control reset; one at the end
        try:
            self.layer_picker.options = [("all layers", ALL_LAYERS)] + [
                (label, i) for i, label in enumerate(layer_labels(snaps))]
            self.layer_picker.value = ALL_LAYERS
            self.snapshot_slider.max = max(0, len(snaps) - 1)
            self.snapshot_slider.value = max(0, len(snaps) - 1)
        finally:
            self._quiet = False
        self.refresh()

    def refresh(self, *, heatmap: bool = True, lines: bool = True) -> None:
        """Redraw what depends on the controls (all of it by default)."""
        if self._quiet:
            return
        snaps = self.snapshots
        if len(snaps) == 0:
            self.step_label.value = "this run has no snapshots"
            return
        pos = int(self.snapshot_slider.value)
        step = int(snaps.steps[pos])
        self.step_label.value = f"mini-batch {step}"
        feature, source = self.feature_picker.value, self.source_picker.value
        if heatmap or not lines:
            self.heatmap_figure = plot_feature_heatmap(
                self.data, mark_step=step, title=f"{source}: {feature} per layer")
            show_figure(self.heatmap_out, self.heatmap_figure)
        if lines:
            layers = None if self.layer is None else [self.layer]
            self.lines_figure = plot_feature_lines(
                feature_lines_data(snaps, feature, layers),
                title=f"{feature}: weights vs gradients")
            show_figure(self.lines_out, self.lines_figure)
        what = (f"layer {html.escape(layer_labels(snaps)[self.layer])}" if self.layer is not None
                else f"{html.escape(feature)}, every layer")
        self.table_html.value = frame_html(self.table.reset_index(), float_format="{:.4g}",
                                           caption=f"at mini-batch {step}: {what}")


class EmbeddingView(WidgetView):
    """t-SNE of the stored runs' feature maps at one snapshot, coloured by final accuracy.

    The slider picks the snapshot position; the map is computed on change and cached (or all
    positions up front with ``precompute=True``). ``.features`` (the FeatureSet), ``.data``
    (the current map's DataFrame) and ``.figure`` expose what is shown.
    """

    SOURCE_OPTIONS = (("weights + gradients", "both"), ("weights", "weights"),
                      ("gradients", "grads"))

    def __init__(self, store_or_features: RunStore | FeatureSet,
                 run_ids: Sequence[str] | None = None, *, perplexity: float = 30.0,
                 random_state: int = 0, precompute: bool = False, sources: str = "both"
                 ) -> None:
        w = ipywidgets()
        self.features = load_feature_set(store_or_features, run_ids)
        self.perplexity = perplexity
        self.random_state = random_state
        n = int(self.features.n_snapshots.max())
        self.snapshot_slider = w.IntSlider(value=n - 1, min=0, max=n - 1, description="snapshot",
                                           continuous_update=False)
        self.source_picker = w.Dropdown(options=list(self.SOURCE_OPTIONS), value=sources,
                                        description="features")
        self.status = w.HTML("")
        self.out = w.Output()
        self.widget = w.VBox([w.HBox([self.snapshot_slider, self.source_picker]), self.status,
                              self.out])
        self._cache: dict[tuple[int, str], pd.DataFrame] = {}
        self.figure: go.Figure | None = None
        if precompute:
            for pos in range(n):
                self._compute(pos, sources)
        self.snapshot_slider.observe(lambda _: self.refresh(), names="value")
        self.source_picker.observe(lambda _: self.refresh(), names="value")
        self.refresh()

    def _compute(self, pos: int, sources: str) -> pd.DataFrame:
        key = (pos, sources)
        if key not in self._cache:
            srcs = FEATURE_SOURCES if sources == "both" else (sources,)
            self._cache[key] = tsne_data(self.features, pos, sources=srcs,
                                         perplexity=self.perplexity,
                                         random_state=self.random_state)
        return self._cache[key]

    @property
    def data(self) -> pd.DataFrame:
        """The t-SNE map at the selected snapshot (one row per run)."""
        return self._compute(int(self.snapshot_slider.value), self.source_picker.value)

    def refresh(self) -> None:
        """Recompute (or fetch from the cache) and redraw the map."""
        try:
            data = self.data
        except ValueError as err:
            self.status.value = f"<span style='color:#c00'>{html.escape(str(err))}</span>"
            return
        steps = sorted(set(np.asarray(data["step"]).tolist()))
        self.status.value = (f"{len(data)} runs; snapshot at mini-batch "
                             f"{', '.join(str(s) for s in steps)}")
        self.figure = plot_tsne(data, title="t-SNE of the runs' feature maps")
        show_figure(self.out, self.figure)
