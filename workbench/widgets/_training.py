"""The training panel: pick a cell, train it, watch its learning curve and feature heatmap."""

from __future__ import annotations

import html
import time
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from workbench.features import FEATURE_NAMES, FEATURE_SOURCES
from workbench.spaces import get_space
from workbench.training import Trainer, TrainResult
from workbench.viz import (
    LEARNING_CURVE_COLUMNS,
    feature_evolution_data,
    plot_feature_heatmap,
    plot_run_curves,
    result_curves_data,
)
from workbench.widgets._common import WidgetView, ipywidgets, show_figure
from workbench.widgets._session import (
    DATASETS,
    SPACES,
    BackgroundRun,
    LiveCallback,
    make_trainer,
    pick_cell,
)


class TrainingPanel(WidgetView):
    """Train one NB101/NB201 cell on CIFAR with snapshots and watch it live.

    Controls: space, cell (a table index, a table id, a cell string or ``random``; the *Random
    cell* button writes a random table index), dataset, network preset, budget in mini-batches
    and snapshot interval; *Train* / *Stop*; a progress bar; the learning curves and the
    layer x snapshot heatmap of one statistic, redrawn from the Trainer's callbacks.

    With ``background=True`` (the default, also in quick mode: training in the kernel's main
    thread is many times slower on a busy machine) training runs in a thread and *Stop* calls
    ``trainer.request_stop()``; with ``background=False`` a click trains synchronously (tests).
    Bad input (an unknown cell, say) and a failed run are shown in red in the panel and kept in
    ``.error``; :meth:`wait` raises them, a click does not (no traceback in the log console).
    The package objects stay reachable: ``.trainer``, ``.result``, ``.cell``, ``.data`` (the
    curves as a long DataFrame) and ``.snapshots``.
    """

    def __init__(self, space: str = "nb201", cell: Any = "random", *, dataset: str = "cifar10",
                 steps: int = 300, snapshot_every: int = 20, model: str = "small",
                 resize: int | None = 16, batch_size: int = 64, val_size: int = 1000,
                 train_size: int | None = None, seed: int = 0, device: str = "auto",
                 background: bool = True, feature: str = "l2_norm", source: str = "grads",
                 redraw_seconds: float = 0.5) -> None:
        w = ipywidgets()
        if not isinstance(cell, (str, int, np.integer)):
            cell = get_space(space).format(cell)
        self.options: dict[str, Any] = {  # make_trainer's keywords
            "resize": resize, "batch_size": batch_size, "val_size": val_size,
            "train_size": train_size, "seed": seed, "device": device}
        self.background = bool(background)
        self.redraw_seconds = float(redraw_seconds)
        self._rng = np.random.default_rng(seed)
        style = {"description_width": "initial"}
        self.space_picker = w.Dropdown(options=list(SPACES), value=space, description="space")
        self.cell_box = w.Text(value=str(cell), description="cell", style=style,
                               placeholder="table index, table id, cell string or 'random'",
                               layout=w.Layout(width="520px"))
        self.random_button = w.Button(description="Random cell", icon="random")
        self.dataset_picker = w.Dropdown(options=list(DATASETS), value=dataset,
                                         description="dataset")
        self.model_picker = w.Dropdown(options=sorted(get_space(space).model_presets), value=model,
                                       description="network")
        self.steps_box = w.BoundedIntText(value=steps, min=1, max=10_000_000, style=style,
                                          description="mini-batches")
        self.snapshot_box = w.BoundedIntText(value=snapshot_every, min=1, max=10_000_000,
                                             style=style, description="snapshot every")
        self.train_button = w.Button(description="Train", button_style="success", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="danger", icon="stop",
                                    disabled=True)
        self.progress = w.IntProgress(value=0, min=0, max=steps, description="0 / " + str(steps),
                                      style=style)
        self.status = w.HTML("")
        self.feature_picker = w.Dropdown(options=list(FEATURE_NAMES), value=feature,
                                         description="statistic")
        self.source_picker = w.ToggleButtons(options=list(FEATURE_SOURCES), value=source)
        self.curve_out = w.Output()
        self.heatmap_out = w.Output()
        self.random_button.on_click(lambda _: self.random_cell())
        self.train_button.on_click(lambda _: self.train())
        self.stop_button.on_click(lambda _: self.stop())
        self.space_picker.observe(self._space_changed, names="value")
        for picker in (self.feature_picker, self.source_picker):
            picker.observe(lambda _: self._draw_heatmap(), names="value")
        self.widget = w.VBox([
            w.HBox([self.space_picker, self.cell_box, self.random_button]),
            w.HBox([self.dataset_picker, self.model_picker, self.steps_box, self.snapshot_box]),
            w.HBox([self.train_button, self.stop_button, self.progress]),
            self.status, self.curve_out,
            w.HBox([self.feature_picker, self.source_picker]), self.heatmap_out])
        self.trainer: Trainer | None = None
        self.result: TrainResult | None = None
        self.cell: Any = None
        self.run_handle: BackgroundRun | None = None
        self.error: Exception | None = None  # what went wrong in the last train(), if anything
        self.curve_figure: go.Figure | None = None
        self.heatmap_figure: go.Figure | None = None
        self._next_draw = 0.0
        self._stop_requested = False

    # -- state ---------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether a training run is in progress."""
        return self.run_handle is not None and self.run_handle.running

    @property
    def data(self) -> pd.DataFrame:
        """The current run's curves (run_id, name, step, metric, value); empty before training."""
        if self.trainer is None:
            return pd.DataFrame(columns=LEARNING_CURVE_COLUMNS)
        return result_curves_data(self.trainer.result(), name=self._name())

    @property
    def snapshots(self) -> Any:
        """The snapshots recorded so far (``workbench.features.Snapshots``), or None."""
        if self.trainer is None or self.trainer.recorder is None:
            return None
        return self.trainer.recorder.snapshots()

    def _name(self) -> str:
        """'nb201:1234' / 'nb101:<hash>': the run's name in charts and ``.data``, the same as
        ``curves_data`` gives a stored run of the cell."""
        space = get_space(self.space_picker.value)
        try:
            key = space.cell_id(self.cell)
        except (ValueError, TypeError, AttributeError):  # not a cell of a bundled table
            key = space.format(self.cell)
        return f"{space.name}:{key}"[:28]

    # -- actions -------------------------------------------------------------------------------
    def random_cell(self) -> str:
        """Write a random table index of the chosen space into the cell box (reproducible)."""
        from workbench.benchmarks import get_benchmark

        n = len(get_benchmark(self.space_picker.value))
        self.cell_box.value = str(int(self._rng.integers(n)))
        return self.cell_box.value

    def train(self) -> TrainingPanel:
        """Build a Trainer from the controls and run it (in a thread with ``background``)."""
        if self.running:
            self.status.value = "<b>already training</b>: press Stop first"
            return self
        space = self.space_picker.value
        try:
            self.cell = pick_cell(space, self.cell_box.value,
                                  seed=int(self._rng.integers(2**31)))
            steps = int(self.steps_box.value)
            self.trainer = make_trainer(
                space, self.cell, dataset=self.dataset_picker.value, steps=steps,
                snapshot_every=int(self.snapshot_box.value), model=self.model_picker.value,
                callbacks=[LiveCallback(self._on_event)], **self.options)
        except Exception as err:  # bad input: said in the panel, no traceback in the log
            self.error = err
            self.status.value = f"<span style='color:#c00'>{html.escape(str(err))}</span>"
            return self
        self.error = None
        self.result = None
        self.progress.max, self.progress.value = steps, 0
        self.progress.description = f"0 / {steps}"
        self.status.value = (f"training <code>{html.escape(get_space(space).format(self.cell))}"
                             f"</code> on {self.trainer.device}")
        self.train_button.disabled, self.stop_button.disabled = True, False
        self._next_draw = 0.0
        self._stop_requested = False
        if self.background:
            self.run_handle = BackgroundRun(self._run)
        else:
            self._run()
        return self

    def _run(self) -> TrainResult | None:
        assert self.trainer is not None
        try:
            self.result = self.trainer.run()
            r = self.result
            acc = r.metrics.get("val_acc", r.metrics.get("train_acc", float("nan")))
            self.status.value = (f"{r.status} after {r.steps} mini-batches in "
                                 f"{r.wall_seconds:.1f} s; accuracy {acc:.1f} %")
            return r
        except Exception as err:
            self.error = err
            self.status.value = f"<span style='color:#c00'>failed: {html.escape(str(err))}</span>"
            return None
        finally:
            self.train_button.disabled, self.stop_button.disabled = False, True

    def stop(self) -> None:
        """Ask the running trainer to stop after its current mini-batch (also when the click
        comes before its loop started: the request is repeated at the next callback)."""
        self._stop_requested = True
        if self.trainer is not None:
            self.trainer.request_stop()

    def wait(self, timeout: float | None = None) -> TrainResult | None:
        """Wait for a background run to end and return the result; raise what went wrong
        (bad input to the last :meth:`train`, or the run's error), which a click only shows
        in the panel."""
        if self.run_handle is not None:
            self.run_handle.wait(timeout)
        if self.error is not None:
            raise self.error
        return self.result

    # -- drawing -------------------------------------------------------------------------------
    def _space_changed(self, change: dict[str, Any]) -> None:
        presets = sorted(get_space(change["new"]).model_presets)
        keep = self.model_picker.value if self.model_picker.value in presets else presets[0]
        self.model_picker.options = presets
        self.model_picker.value = keep

    def _on_event(self, event: str, trainer: Trainer) -> None:
        if self._stop_requested and event != "end":
            trainer.request_stop()
        self.progress.value = trainer.step
        self.progress.description = f"{trainer.step} / {trainer.total_steps}"
        start = time.monotonic()
        if event == "end" or start >= self._next_draw:
            self._draw_curves()
            self._draw_heatmap()
            # Redrawing must not slow training down: wait at least 4x the drawing time.
            took = time.monotonic() - start
            self._next_draw = time.monotonic() + max(self.redraw_seconds, 4 * took)

    def _draw_curves(self) -> None:
        data = self.data
        if data.empty:
            return
        self.curve_figure = plot_run_curves(data, title=self._name())
        show_figure(self.curve_out, self.curve_figure)

    def _draw_heatmap(self) -> None:
        snaps = self.snapshots
        if snaps is None or len(snaps) == 0:
            return
        d = feature_evolution_data(snaps, self.feature_picker.value, self.source_picker.value)
        self.heatmap_figure = plot_feature_heatmap(
            d, title=f"{self.source_picker.value}: {self.feature_picker.value} per layer")
        show_figure(self.heatmap_out, self.heatmap_figure)
