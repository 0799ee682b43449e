"""Performance predictors: the GCN Neural Predictor, trivial baselines and learning-curve
extrapolation (all scikit-learn estimators), and the zero-cost proxies.

>>> from workbench.predictors import GCNPredictor, graphs_from_cells
>>> X = graphs_from_cells("nb201", cells)       # [n, 8, 8 + 6] padded graphs
>>> GCNPredictor(epochs=50).fit(X, y).predict(X)
"""

from workbench.predictors._baselines import FeaturePredictor, MeanPredictor
from workbench.predictors._curves import (
    CURVE_MODELS,
    CurveExtrapolator,
    CurveFit,
    LastValue,
    exponential,
    extrapolate,
    fit_curve,
    power_law,
)
from workbench.predictors._gcn import (
    GRAPH_NODES,
    NB101_GRAPH_OPS,
    NB201_GRAPH_OPS,
    GCNPredictor,
    benchmark_graphs,
    graphs_from_cells,
    split_graphs,
)
from workbench.predictors._proxies import (
    PROXIES,
    ZeroCostProxy,
    compute,
    list_proxies,
    register_proxy,
)

__all__ = [
    "CURVE_MODELS",
    "GRAPH_NODES",
    "NB101_GRAPH_OPS",
    "NB201_GRAPH_OPS",
    "PROXIES",
    "CurveExtrapolator",
    "CurveFit",
    "FeaturePredictor",
    "GCNPredictor",
    "LastValue",
    "MeanPredictor",
    "ZeroCostProxy",
    "benchmark_graphs",
    "compute",
    "exponential",
    "extrapolate",
    "fit_curve",
    "graphs_from_cells",
    "list_proxies",
    "power_law",
    "register_proxy",
    "split_graphs",
]
