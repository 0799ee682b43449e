"""One stepper for every search: Step / Run / Reset over any ``workbench.search.Search``
(Successive Halving, Hyperband, random search, evolution, local search, LayerNAS,
composites), showing its ``table()``, a diagram, the latest history rows and a log of the
decisions. How a search is drawn is a *view*, picked by what the search offers: SH rungs,
LayerNAS bucket tables, or the generic scores-against-cost view."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from workbench._checks import check_int
from workbench.viz import (
    frame_html,
    layernas_buckets_data,
    layernas_tables_html,
    plot_layernas_buckets,
    plot_search_progress,
    plot_sh_rungs,
    search_progress_data,
    sh_rungs_data,
)
from workbench.widgets._common import WidgetView, ipywidgets, show_figure
from workbench.widgets._session import fresh_copy, layernas_lines, search_lines, sh_rung_lines

MAX_LOG_LINES = 400
HISTORY_ROWS = 8  # history rows shown under the table


# -- views ----------------------------------------------------------------------------------------

class SearchView:
    """How a stepper shows a search: ``data`` (the DataFrame behind the shown table), its HTML,
    a figure, log lines for new history rows, a status line and the history columns shown.
    This generic view fits every search: ``table()`` and scores against cumulative cost."""

    diagram: bool = True  # whether the stepper draws the figure unless told otherwise
    history_columns: tuple[str, ...] = ("iteration", "candidate", "budget", "score",
                                        "ranker_score", "cost", "cum_cost", "decision")

    @staticmethod
    def applies(search: Any) -> bool:
        """Whether this view can show ``search``."""
        return True

    def data(self, search: Any) -> pd.DataFrame:
        """The DataFrame the table shows (here ``search.table()``)."""
        return search.table()

    def table_html(self, search: Any, show_final: bool) -> str:
        """The table as HTML, rows coloured by their decision (``final`` only if asked)."""
        t = self.data(search)
        if not show_final:
            t = t.drop(columns=[c for c in ("final",) if c in t.columns])
        status = "decision" if "decision" in t.columns else None
        return frame_html(t, status=status, float_format="{:.2f}", max_rows=60,
                          caption=f"{search.label}: table()")

    def figure(self, search: Any) -> go.Figure:
        """The diagram: observed scores against cumulative cost, with the incumbent."""
        return plot_search_progress(search_progress_data(search),
                                    title=f"{search.label}: scores against cost")

    def lines(self, search: Any, rows: pd.DataFrame) -> list[str]:
        """Log lines for the history rows ``rows`` just made."""
        return search_lines(rows)

    def status(self, search: Any) -> str:
        """One HTML line: steps, evaluations, cost and the incumbent so far."""
        s = search
        ranker = getattr(getattr(s, "ranker", None), "name", "?")
        text = (f"{html.escape(s.label)} with ranker <b>{html.escape(ranker)}</b>: "
                f"{s.n_steps} steps, {s.n_evaluations} evaluations, {s.total_cost:,.0f} "
                f"{html.escape(getattr(s.backend, 'cost_unit', 's'))} charged")
        try:
            cell, score = s.best()
        except RuntimeError:
            return text + ("; <b>done</b>" if s.done else "")
        final = s.incumbent_final()
        text += (f"; {'<b>done</b>: best' if s.done else 'best so far'} "
                 f"<b>{html.escape(str(s.backend.cell_id(cell)))}</b> (score {score:.2f}"
                 + (f", final {final:.2f}" if final == final else "") + ")")
        return text


class SHView(SearchView):
    """Successive Halving: the current rung (kept green, dropped red), the rung diagram and
    one log line per rung."""

    history_columns = ("rung", "candidate", "budget", "score", "ranker_score", "rank", "cost",
                       "decision")
    COLUMNS = ("rung", "candidate", "cell", "budget", "score", "ranker_score", "rank",
               "final", "decision")

    @staticmethod
    def applies(search: Any) -> bool:
        return all(hasattr(search, a) for a in ("rung_table", "schedule", "rung", "n_rungs"))

    def data(self, search: Any) -> pd.DataFrame:
        return sh_rungs_data(search)

    def table_html(self, search: Any, show_final: bool) -> str:
        t = search.table()
        hist = search.history
        if show_final and "final" not in t.columns and len(hist) and len(t):
            rung = hist[hist["rung"] == t["rung"].iloc[0]].set_index("candidate")["final"]
            t = t.assign(final=t["candidate"].map(rung))  # the table's truth, shown not used
        cols = [c for c in self.COLUMNS if c in t.columns and (c != "final" or show_final)]
        return frame_html(t[cols], status="decision", float_format="{:.2f}",
                          caption=f"rung {int(t['rung'].iloc[0])}" if len(t) else "")

    def figure(self, search: Any) -> go.Figure:
        return plot_sh_rungs(self.data(search), title="Successive Halving: rungs")

    def lines(self, search: Any, rows: pd.DataFrame) -> list[str]:
        if rows.empty:
            return []
        return [line for r in sorted(set(rows["rung"].astype(int)))
                for line in sh_rung_lines(search.rung_table(r),
                                          getattr(search.backend, "budget_unit", "epochs"))]

    def status(self, search: Any) -> str:
        s = search
        rungs = f"rung {min(s.rung, s.n_rungs)} of {s.n_rungs} evaluated; "
        return rungs + super().status(s)


class LayerNASView(SearchView):
    """LayerNAS: every layer's bucket table as in the paper (new members green, evicted and
    rejected struck through, [x] = all children generated, drops listed), one log line per
    generated child; the figure is the same tables (off by default)."""

    diagram = False
    history_columns = ("iteration", "layer", "parent", "child", "model_cost", "bucket",
                       "score", "cost", "decision")

    @staticmethod
    def applies(search: Any) -> bool:
        return all(hasattr(search, a) for a in ("bucket_table", "bucket_of", "explain"))

    def data(self, search: Any) -> pd.DataFrame:
        return layernas_buckets_data(search)

    def table_html(self, search: Any, show_final: bool) -> str:
        return layernas_tables_html(self.data(search))

    def figure(self, search: Any) -> go.Figure:
        return plot_layernas_buckets(self.data(search), title="LayerNAS bucket tables")

    def lines(self, search: Any, rows: pd.DataFrame) -> list[str]:
        return layernas_lines(rows)

    def status(self, search: Any) -> str:
        s = search
        lo, hi = s.target
        text = (f"LayerNAS on <b>{html.escape(s.space.name)}</b>, target {lo:g}-{hi:g}: "
                f"iteration {s.iteration}, {s.n_evaluations} evaluated, "
                f"{s.total_cost:,.0f} {html.escape(getattr(s.backend, 'cost_unit', 's'))} "
                "charged")
        try:
            best = s.found()
        except RuntimeError:
            return text + ("; <b>done</b>" if s.done else "")
        return text + (f"; best so far <b>{html.escape(best.name)}</b> (cost {best.cost:g}, "
                       f"score {best.score:.2f})") + ("; <b>done</b>" if s.done else "")


#: The views a stepper tries in order; the generic view is the fallback.
VIEWS: tuple[SearchView, ...] = (LayerNASView(), SHView())


def view_for(search: Any) -> SearchView:
    """The first view of :data:`VIEWS` that applies to ``search``, else the generic one."""
    return next((v for v in VIEWS if v.applies(search)), SearchView())


# -- the stepper ----------------------------------------------------------------------------------

class SearchStepper(WidgetView):
    """Step / Run / Reset over any search, with its table, a diagram, recent history and log.

    ``search``: a :class:`workbench.search.Search` (Reset restores a copy of it as given), a
    factory ``() -> Search`` (Reset makes a new one) or a ``LayerwiseProblem`` (its
    ``search()`` is the factory). Run steps to the end, or ``run_steps`` steps for a search
    that never ends by itself. ``view`` (default: :func:`view_for`) decides what is shown;
    ``diagram`` overrides whether its figure is drawn; ``show_final`` adds the table's final
    accuracy to the tables (teaching only, never used by a search). ``.search``, ``.table``
    (``search.table()``), ``.data`` (the view's DataFrame), ``.history``, ``.figure`` and
    ``.log`` expose the state.
    """

    def __init__(self, search: Any, *, view: SearchView | None = None,
                 diagram: bool | None = None, show_final: bool = False, run_steps: int = 10
                 ) -> None:
        w = ipywidgets()
        if hasattr(search, "search") and not hasattr(search, "step"):
            search = search.search  # a LayerwiseProblem: its search() is the factory
        if callable(search) and not hasattr(search, "step"):
            self._factory: Callable[[], Any] | None = search
            self.search = search()
            self._initial = None
        else:
            self._factory = None
            self.search = search
            self._initial = fresh_copy(search)
        if not hasattr(self.search, "step") or not hasattr(self.search, "history"):
            raise ValueError(f"expected a workbench.search Search or a factory of one, got "
                             f"{type(self.search).__name__}")
        run_steps = check_int("run_steps", run_steps, minimum=1)
        self.view = view_for(self.search) if view is None else view
        self.show_final = bool(show_final)
        self.run_steps = run_steps
        self._diagram = self.view.diagram if diagram is None else bool(diagram)
        finite = bool(getattr(self.search, "finite", True))
        self.step_button = w.Button(description="Step", icon="step-forward",
                                    button_style="primary")
        self.run_button = w.Button(description="Run to end" if finite else f"Run {run_steps}",
                                   icon="fast-forward")
        self.reset_button = w.Button(description="Reset", icon="undo")
        self.status = w.HTML("")
        self.table_html = w.HTML("")
        self.history_html = w.HTML("")
        self.diagram_out = w.Output()
        self.log_box = w.Textarea(value="", disabled=True,
                                  layout=w.Layout(width="100%", height="160px"))
        self.log: list[str] = []
        self.figure: go.Figure | None = None
        self.step_button.on_click(lambda _: self.step())
        self.run_button.on_click(lambda _: self.run())
        self.reset_button.on_click(lambda _: self.reset())
        parts = [w.HBox([self.step_button, self.run_button, self.reset_button]), self.status,
                 self.table_html]
        if self._diagram:
            parts.append(self.diagram_out)
        self.widget = w.VBox([*parts, w.HTML("<b>latest history rows</b>"), self.history_html,
                              w.HTML("<b>decisions</b>"), self.log_box])
        self.refresh()

    # -- state -------------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """Whether the search has nothing left to do."""
        return bool(self.search.done)

    @property
    def table(self) -> pd.DataFrame:
        """The search's own current table (``search.table()``)."""
        return self.search.table()

    @property
    def data(self) -> pd.DataFrame:
        """The DataFrame behind the shown table (e.g. SH: every rung; LayerNAS: the buckets
        with the latest iteration's events)."""
        return self.view.data(self.search)

    @property
    def history(self) -> pd.DataFrame:
        """The search's history so far."""
        return self.search.history

    # -- actions -----------------------------------------------------------------------------------
    def step(self) -> SearchStepper:
        """One step of the search (nothing when it is done), then redraw."""
        if self.done:
            self._write(["(done: nothing left to step)"])
        else:
            self._write(self.view.lines(self.search, self.search.step()))
        self.refresh()
        return self

    def run(self) -> SearchStepper:
        """Step to the end (``run_steps`` steps for a search that never ends), then redraw."""
        if not self.done:
            start = len(self.search.history)
            if getattr(self.search, "finite", True):
                self.search.run(progress=False)
            else:
                self.search.run(max_steps=self.run_steps, progress=False)
            self._write(self.view.lines(self.search, self.search.history.iloc[start:]))
        self.refresh()
        return self

    def reset(self) -> SearchStepper:
        """Back to the state the stepper started from (a fresh search from the factory, or a
        copy of the search as it was given)."""
        self.search = self._factory() if self._factory is not None else fresh_copy(
            self._initial)
        self.log = []
        self.log_box.value = ""
        self.refresh()
        return self

    def _write(self, lines: Sequence[str]) -> None:
        self.log = (self.log + list(lines))[-MAX_LOG_LINES:]
        self.log_box.value = "\n".join(self.log)

    def refresh(self) -> None:
        """Redraw status, table, history and diagram from the search's current state."""
        self.step_button.disabled = self.run_button.disabled = self.done
        self.status.value = self.view.status(self.search)
        self.table_html.value = self.view.table_html(self.search, self.show_final)
        hist = self.search.history
        cols = [c for c in self.view.history_columns if c in hist.columns]
        if self.show_final and "final" in hist.columns:
            cols.append("final")
        self.history_html.value = frame_html(
            hist[cols].tail(HISTORY_ROWS), float_format="{:.2f}",
            status="decision" if "decision" in cols else None) if len(hist) else ""
        if self._diagram:
            self.figure = self.view.figure(self.search)
            show_figure(self.diagram_out, self.figure)
