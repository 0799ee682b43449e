"""Figures: each a pure data step (DataFrame) and a plotly drawing step, with one template.

Training: learning curves, feature heatmaps and per-layer lines (weights vs gradients), the
values at one snapshot, t-SNE of runs' feature maps. Tables: cheap signals vs accuracy,
rank correlations with bootstrap CIs, predicted vs true, predictors' sample-size curves.
Search: regret bands over seeds, any search's scores against cost, the Successive Halving
rung diagram, LayerNAS bucket tables, the accuracy-vs-latency Pareto front with search paths.
Registry: ``list_figures()``; ``get_figure(name, title=...)(inputs)`` runs a named pair of
data and plot steps. Export: HTML always, PNG/SVG/PDF with kaleido >= 1 and a Chrome
(:func:`static_export_available`).
"""

from workbench.viz._correlations import correlation_table_data, plot_correlation_table
from workbench.viz._embedding import (
    feature_matrix,
    load_feature_set,
    plot_tsne,
    stored_feature_runs,
    tsne_data,
    tsne_frames,
)
from workbench.viz._export import (
    export_figure,
    export_figures,
    find_chrome,
    static_export_available,
)
from workbench.viz._figures import (
    FIGURES,
    FigureRecipe,
    get_figure,
    list_figures,
    register_figure,
)
from workbench.viz._html import STATUS_COLORS, frame_html
from workbench.viz._layernas import (
    layernas_buckets_data,
    layernas_tables_html,
    plot_layernas_buckets,
)
from workbench.viz._nap2 import (
    nap2_precision_frame,
    nap2_results_frame,
    plot_nap2_precision,
    plot_nap2_regret,
    plot_rung_scores,
    plot_rung_taus,
    rung_table_data,
    rung_table_html,
    rung_taus_frame,
)
from workbench.viz._pareto import PARETO_COLUMNS, pareto_data, plot_pareto
from workbench.viz._predictors import plot_predicted_vs_true, predicted_vs_true_data
from workbench.viz._sample_size import (
    CURVE_DATA_COLUMNS,
    plot_sample_size_curves,
    sample_size_curve_data,
)
from workbench.viz._search import (
    plot_regret,
    plot_search_progress,
    plot_sh_rungs,
    search_progress_data,
    sh_decisions_data,
    sh_rungs_data,
)
from workbench.viz._tabular import plot_signal_scatter, signal_correlations, signal_data
from workbench.viz._theme import PAPER_TEMPLATE, apply_theme
from workbench.viz._training import (
    LEARNING_CURVE_COLUMNS,
    curves_data,
    feature_evolution_data,
    feature_lines_data,
    layer_labels,
    plot_feature_heatmap,
    plot_feature_lines,
    plot_learning_curves,
    plot_run_curves,
    result_curves_data,
    snapshot_values_data,
)

__all__ = [
    "CURVE_DATA_COLUMNS",
    "FIGURES",
    "LEARNING_CURVE_COLUMNS",
    "PAPER_TEMPLATE",
    "PARETO_COLUMNS",
    "STATUS_COLORS",
    "FigureRecipe",
    "apply_theme",
    "correlation_table_data",
    "curves_data",
    "export_figure",
    "export_figures",
    "feature_evolution_data",
    "feature_lines_data",
    "feature_matrix",
    "find_chrome",
    "frame_html",
    "get_figure",
    "layer_labels",
    "layernas_buckets_data",
    "layernas_tables_html",
    "list_figures",
    "load_feature_set",
    "nap2_precision_frame",
    "nap2_results_frame",
    "pareto_data",
    "plot_correlation_table",
    "plot_feature_heatmap",
    "plot_feature_lines",
    "plot_layernas_buckets",
    "plot_learning_curves",
    "plot_nap2_precision",
    "plot_nap2_regret",
    "plot_pareto",
    "plot_predicted_vs_true",
    "plot_regret",
    "plot_run_curves",
    "plot_rung_scores",
    "plot_rung_taus",
    "plot_sample_size_curves",
    "plot_search_progress",
    "plot_sh_rungs",
    "plot_signal_scatter",
    "plot_tsne",
    "predicted_vs_true_data",
    "register_figure",
    "result_curves_data",
    "rung_table_data",
    "rung_table_html",
    "rung_taus_frame",
    "sample_size_curve_data",
    "search_progress_data",
    "sh_decisions_data",
    "sh_rungs_data",
    "signal_correlations",
    "signal_data",
    "snapshot_values_data",
    "static_export_available",
    "stored_feature_runs",
    "tsne_data",
    "tsne_frames",
]
