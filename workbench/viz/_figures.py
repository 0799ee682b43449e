"""The figure registry: each name is a pair (data step, plot step) over stored inputs.

>>> fig = get_figure("regret", title="NB201")(curves, log=True)  # aggregate_curves, plot_regret
>>> recipe = get_figure("feature_lines"); recipe.draw(feature_lines_data(snaps))  # plot step only

The data step turns what a run, a store, a benchmark or a search holds into a tidy DataFrame;
the plot step draws it. ``get_figure(name, **options)`` fixes the plot step's options (title,
metric, ...); calling the recipe runs both steps.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from workbench._registry import Registry
from workbench.search import aggregate_curves
from workbench.viz._correlations import correlation_table_data, plot_correlation_table
from workbench.viz._embedding import plot_tsne, tsne_data
from workbench.viz._layernas import layernas_buckets_data, plot_layernas_buckets
from workbench.viz._nap2 import (
    nap2_precision_frame,
    nap2_results_frame,
    plot_nap2_precision,
    plot_nap2_regret,
    plot_rung_scores,
    plot_rung_taus,
    rung_table_data,
    rung_taus_frame,
)
from workbench.viz._pareto import pareto_data, plot_pareto
from workbench.viz._predictors import plot_predicted_vs_true, predicted_vs_true_data
from workbench.viz._sample_size import plot_sample_size_curves, sample_size_curve_data
from workbench.viz._search import (
    plot_regret,
    plot_search_progress,
    plot_sh_rungs,
    search_progress_data,
    sh_rungs_data,
)
from workbench.viz._tabular import plot_signal_scatter, signal_data
from workbench.viz._training import (
    curves_data,
    feature_evolution_data,
    feature_lines_data,
    plot_feature_heatmap,
    plot_feature_lines,
    plot_learning_curves,
    plot_run_curves,
    result_curves_data,
)

PlotStep = Callable[..., go.Figure]
DataStep = Callable[..., pd.DataFrame]


@dataclass(frozen=True)
class FigureRecipe:
    """A registered figure: ``data(*inputs)`` gives a DataFrame, ``plot(frame, **options)`` draws
    it; calling the recipe runs both, :meth:`draw` only the plot step."""

    name: str
    data: DataStep
    plot: PlotStep
    options: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, *inputs: Any, **data_kwargs: Any) -> go.Figure:
        """The figure of ``inputs``: the data step on them, then the plot step."""
        return self.draw(self.data(*inputs, **data_kwargs))

    def draw(self, frame: pd.DataFrame) -> go.Figure:
        """The plot step alone, on a frame the data step made (e.g. a stored or filtered one)."""
        return self.plot(frame, **self.options)


FIGURES: Registry[FigureRecipe] = Registry("figure")


def register_figure(name: str, data: DataStep) -> Callable[[PlotStep], PlotStep]:
    """Decorator adding the plot step it decorates, with its ``data`` step, as figure ``name``:
    ``@register_figure("mine", data=my_data)`` over ``def plot_mine(frame, *, title=None)``."""
    if not callable(data):
        raise ValueError(f"figure {name!r}: data must be the data-step function, got {data!r}")

    def deco(plot: PlotStep) -> PlotStep:
        if not callable(plot):
            raise ValueError(f"figure {name!r}: the plot step must be a function, got {plot!r}")
        signature = inspect.signature(plot)

        def make(**options: Any) -> FigureRecipe:
            try:
                signature.bind_partial(None, **options)
            except TypeError:
                allowed = list(signature.parameters)[1:]
                raise ValueError(f"figure {name!r} ({plot.__name__}) takes no options "
                                 f"{sorted(options)}; allowed: {allowed}") from None
            return FigureRecipe(name, data, plot, dict(options))

        make.__doc__ = f"The {name!r} figure: {data.__name__} then {plot.__name__}."
        FIGURES.register(name)(make)
        return plot

    return deco


def list_figures() -> list[str]:
    """Names of the registered figures, sorted (each one :func:`get_figure` builds)."""
    return FIGURES.names()


def get_figure(name: str, **options: Any) -> FigureRecipe:
    """A new recipe of figure ``name`` whose plot step gets ``options`` (``title=...``);
    ValueError naming the registered figures, or the plot step's options, when unknown."""
    return FIGURES.create(name, **options)


_BUILTIN: tuple[tuple[str, DataStep, PlotStep], ...] = (
    ("signal_scatter", signal_data, plot_signal_scatter),
    ("correlation_table", correlation_table_data, plot_correlation_table),
    ("learning_curves", curves_data, plot_learning_curves),
    ("run_curves", result_curves_data, plot_run_curves),
    ("feature_heatmap", feature_evolution_data, plot_feature_heatmap),
    ("feature_lines", feature_lines_data, plot_feature_lines),
    ("tsne", tsne_data, plot_tsne),
    ("predicted_vs_true", predicted_vs_true_data, plot_predicted_vs_true),
    ("regret", aggregate_curves, plot_regret),
    ("sh_rungs", sh_rungs_data, plot_sh_rungs),
    ("search_progress", search_progress_data, plot_search_progress),
    ("layernas_buckets", layernas_buckets_data, plot_layernas_buckets),
    ("rung_scores", rung_table_data, plot_rung_scores),
    ("rung_taus", rung_taus_frame, plot_rung_taus),
    ("nap2_regret", nap2_results_frame, plot_nap2_regret),
    ("nap2_precision", nap2_precision_frame, plot_nap2_precision),
    ("sample_size_curves", sample_size_curve_data, plot_sample_size_curves),
    ("pareto", pareto_data, plot_pareto),
)
for _name, _data, _plot in _BUILTIN:
    register_figure(_name, data=_data)(_plot)
del _name, _data, _plot
