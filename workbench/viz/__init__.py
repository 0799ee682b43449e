"""Figures: each a pure data step (DataFrame) and a plotly drawing step, with one template."""

from workbench.viz._export import export_figure
from workbench.viz._predictors import plot_predicted_vs_true, predicted_vs_true_data
from workbench.viz._search import plot_regret
from workbench.viz._tabular import plot_signal_scatter, signal_correlations, signal_data
from workbench.viz._theme import PAPER_TEMPLATE, apply_theme
from workbench.viz._training import (
    curves_data,
    feature_evolution_data,
    plot_feature_heatmap,
    plot_learning_curves,
)

__all__ = [
    "PAPER_TEMPLATE",
    "apply_theme",
    "curves_data",
    "export_figure",
    "feature_evolution_data",
    "plot_feature_heatmap",
    "plot_learning_curves",
    "plot_predicted_vs_true",
    "plot_regret",
    "plot_signal_scatter",
    "predicted_vs_true_data",
    "signal_correlations",
    "signal_data",
]
