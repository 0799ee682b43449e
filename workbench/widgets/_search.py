"""Steppers for searches: Step / Run to end / Reset over a Successive Halving or a LayerNAS run,
showing the current table, its diagram and a log of the decisions."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from workbench.viz import (
    frame_html,
    layernas_buckets_data,
    layernas_tables_html,
    plot_layernas_buckets,
    plot_sh_rungs,
    sh_decisions_data,
    sh_rungs_data,
)
from workbench.widgets._common import WidgetView, ipywidgets, show_figure
from workbench.widgets._session import fresh_copy, layernas_lines, sh_rung_lines

MAX_LOG_LINES = 400


class _Stepper(WidgetView):
    """Buttons, status, table, diagram and log around a step-through search object."""

    def __init__(self, search: Any, *, diagram: bool = True) -> None:
        w = ipywidgets()
        if callable(search) and not hasattr(search, "step"):
            self._factory: Callable[[], Any] | None = search
            self.search = search()
            self._initial = None
        else:
            self._factory = None
            self.search = search
            self._initial = fresh_copy(search)
        self.step_button = w.Button(description="Step", icon="step-forward",
                                    button_style="primary")
        self.run_button = w.Button(description="Run to end", icon="fast-forward")
        self.reset_button = w.Button(description="Reset", icon="undo")
        self.status = w.HTML("")
        self.table_html = w.HTML("")
        self.diagram_out = w.Output()
        self.log_box = w.Textarea(value="", disabled=True,
                                  layout=w.Layout(width="100%", height="160px"))
        self.log: list[str] = []
        self.figure: go.Figure | None = None
        self._diagram = bool(diagram)
        self.step_button.on_click(lambda _: self.step())
        self.run_button.on_click(lambda _: self.run())
        self.reset_button.on_click(lambda _: self.reset())
        parts = [w.HBox([self.step_button, self.run_button, self.reset_button]), self.status,
                 self.table_html]
        if self._diagram:
            parts.append(self.diagram_out)
        self.widget = w.VBox([*parts, w.HTML("<b>decisions</b>"), self.log_box])

    # -- to implement ------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """Whether the search has nothing left to do."""
        return bool(self.search.done)

    def _advance(self) -> list[str]:
        raise NotImplementedError

    def _run_to_end(self) -> list[str]:
        raise NotImplementedError

    def _status(self) -> str:
        raise NotImplementedError

    def _table_html(self) -> str:
        raise NotImplementedError

    def _figure(self) -> go.Figure:
        raise NotImplementedError

    # -- actions -------------------------------------------------------------------------------
    def step(self) -> _Stepper:
        """One step of the search (nothing when it is done), then redraw."""
        if self.done:
            self._write(["(done: nothing left to step)"])
        else:
            self._write(self._advance())
        self.refresh()
        return self

    def run(self) -> _Stepper:
        """Step until the search is done, then redraw."""
        if not self.done:
            self._write(self._run_to_end())
        self.refresh()
        return self

    def reset(self) -> _Stepper:
        """Back to the state the stepper started from (a fresh search from the factory, or a
        copy of the search as it was given)."""
        if self._factory is not None:
            self.search = self._factory()
        else:
            self.search = fresh_copy(self._initial)
        self.log = []
        self.log_box.value = ""
        self.refresh()
        return self

    def _write(self, lines: list[str]) -> None:
        self.log = (self.log + list(lines))[-MAX_LOG_LINES:]
        self.log_box.value = "\n".join(self.log)

    def refresh(self) -> None:
        """Redraw status, table and diagram from the search's current state."""
        self.step_button.disabled = self.run_button.disabled = self.done
        self.status.value = self._status()
        self.table_html.value = self._table_html()
        if self._diagram:
            self.figure = self._figure()
            show_figure(self.diagram_out, self.figure)


class SHStepper(_Stepper):
    """Step through a :class:`workbench.search.SuccessiveHalving` one rung at a time.

    Shows the current rung's table (kept rows green, dropped red), the rung diagram
    (candidates x budget) and the decisions. ``search`` is a SuccessiveHalving (Reset restores
    a copy of it as given) or a factory ``() -> SuccessiveHalving``. ``.search``, ``.table``
    (the current rung) and ``.data`` (every rung) expose the state.
    """

    COLUMNS = ("rung", "candidate", "cell", "budget", "score", "ranker_score", "rank",
               "final", "decision")

    def __init__(self, search: Any, *, show_final: bool = False, diagram: bool = True) -> None:
        self.show_final = bool(show_final)
        super().__init__(search, diagram=diagram)
        self.refresh()

    @property
    def table(self) -> pd.DataFrame:
        """The current rung (or the pending candidates before the first step)."""
        return self.search.table()

    @property
    def data(self) -> pd.DataFrame:
        """Every (rung, candidate) so far with decisions, plus the next rung's pending ones."""
        return sh_rungs_data(self.search)

    @property
    def decisions(self) -> pd.DataFrame:
        """One row per evaluated rung: kept, dropped, best, cost."""
        return sh_decisions_data(self.search)

    def _advance(self) -> list[str]:
        self.search.step()
        return sh_rung_lines(self.search.table())

    def _run_to_end(self) -> list[str]:
        first = int(self.search.rung)
        self.search.run(progress=False)
        return [line for r in range(first, int(self.search.rung))
                for line in sh_rung_lines(self.search.rung_table(r))]

    def _status(self) -> str:
        s = self.search
        text = (f"{s.name} with ranker <b>{html.escape(s.ranker.name)}</b>: rung "
                f"{min(s.rung, s.n_rungs)} of {s.n_rungs} evaluated, {s.n_evaluations} "
                f"evaluations, {s.total_cost:,.0f} s simulated")
        if s.done:
            cell, score = s.best()
            text += (f"; <b>done</b>: best {html.escape(s.backend.cell_id(cell))} "
                     f"(score {score:.2f}, final {s.incumbent_final():.2f})")
        return text

    def _table_html(self) -> str:
        t = self.table
        hist = self.search.history
        if self.show_final and "final" not in t.columns and len(hist) and len(t):
            rung = hist[hist["rung"] == t["rung"].iloc[0]].set_index("candidate")["final"]
            t = t.assign(final=t["candidate"].map(rung))  # the table's truth, shown not used
        cols = [c for c in self.COLUMNS if c in t.columns and (c != "final" or self.show_final)]
        return frame_html(t[cols], status="decision", float_format="{:.2f}",
                          caption=f"rung {int(t['rung'].iloc[0])}" if len(t) else "")

    def _figure(self) -> go.Figure:
        return plot_sh_rungs(self.data, title="Successive Halving: rungs")


class LayerNASStepper(_Stepper):
    """Step through a :class:`workbench.search.LayerNAS` one iteration at a time.

    Shows each layer's bucket table as in the paper (new members green, evicted and rejected
    struck through, [x] = all children generated, drops listed), the status and the decisions.
    ``search`` is a LayerNAS, a factory, or a ``LayerwiseProblem`` (whose ``search()`` is the
    factory). ``.search``, ``.table`` (:func:`workbench.viz.layernas_buckets_data`) and
    ``.history`` expose the state; ``.figure`` is the same tables as a plotly figure.
    """

    def __init__(self, search: Any, *, diagram: bool = False) -> None:
        if hasattr(search, "search") and not hasattr(search, "step"):
            search = search.search  # a LayerwiseProblem: its search() is the factory
        super().__init__(search, diagram=diagram)
        self.refresh()

    @property
    def table(self) -> pd.DataFrame:
        """Every layer's buckets with the latest iteration's events marked."""
        return layernas_buckets_data(self.search)

    data = table

    @property
    def history(self) -> pd.DataFrame:
        """Every generated child so far and its fate."""
        return self.search.history

    def _advance(self) -> list[str]:
        return layernas_lines(self.search.step())

    def _run_to_end(self) -> list[str]:
        start = len(self.search.history)
        self.search.run()
        return layernas_lines(self.search.history.iloc[start:])

    def _status(self) -> str:
        s = self.search
        lo, hi = s.target
        text = (f"LayerNAS on <b>{html.escape(s.space.name)}</b>, target {lo:g}-{hi:g}: "
                f"iteration {s.iteration}, {s.n_evaluated} evaluated")
        try:
            best = s.best()
            text += (f"; best so far <b>{html.escape(best.name)}</b> (cost {best.cost:g}, "
                     f"score {best.score:.2f})")
        except LookupError:
            pass
        return text + ("; <b>done</b>" if s.done else "")

    def _table_html(self) -> str:
        return layernas_tables_html(self.table)

    def _figure(self) -> go.Figure:
        return plot_layernas_buckets(self.table, title="LayerNAS bucket tables")
