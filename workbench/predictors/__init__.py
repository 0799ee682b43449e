"""Performance predictors: the dynamics (NAP2) predictors, the GCN Neural Predictor, trivial
baselines, learning-curve extrapolation and GRAF graph-feature trees (all scikit-learn
estimators), the zero-cost proxies, proxy scores of many cells (``proxy_batch``,
``score_cells``, cached) and predictor files (no pickle).

>>> from workbench.predictors import GCNPredictor, graphs_from_cells
>>> X = graphs_from_cells("nb201", cells)       # [n, 8, 8 + 6] padded graphs
>>> GCNPredictor(epochs=50).fit(X, y).predict(X)
>>> data = load_dynamics("runs/", step=100)       # snapshot maps of stored runs + labels
>>> DynamicsGBT().fit(data.X, data.y).predict(data.X)
>>> GraphFeatureRegressor("nb201").fit(cells, y).predict(cells)   # GRAF: trees on graph features
>>> ArchitectureEnsemble("nb101").fit(cells, y).predict(cells)    # GCN & GRAF, mean rank
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
from workbench.predictors._default import (
    DEFAULT_DYNAMICS_FILE,
    DEFAULT_DYNAMICS_MODELS,
    default_dynamics_predictor,
    fitted_on_differences,
    rank_runs,
    refit_default_predictor,
)
from workbench.predictors._dynamics import (
    DynamicsForest,
    DynamicsGBT,
    DynamicsGRU,
    summary_feature_names,
    summary_features,
)
from workbench.predictors._dynamics_data import (
    CHANNELS,
    DynamicsData,
    dynamics_inputs,
    layer_mask,
    load_dynamics,
    snapshot_maps,
    split_inputs,
)
from workbench.predictors._ensemble import MEMBER_KINDS, ArchitectureEnsemble
from workbench.predictors._gcn import (
    GRAPH_SCHEMA_VERSION,
    GCNPredictor,
    benchmark_graphs,
    graphs_from_cells,
    split_graphs,
)
from workbench.predictors._graph_features import (
    GRAPH_FEATURE_VERSION,
    GraphFeatures,
    graph_feature_names,
    graph_features,
)
from workbench.predictors._graph_regressor import GraphFeatureRegressor
from workbench.predictors._persist import (
    PredictorFileError,
    load_predictor,
    read_header,
    save_predictor,
)
from workbench.predictors._predictor_registry import (
    PREDICTORS,
    get_predictor,
    list_predictors,
    register_predictor,
)
from workbench.predictors._proxies import (
    PROXIES,
    ZeroCostProxy,
    compute_proxies,
    get_proxy,
    list_proxies,
    register_proxy,
)
from workbench.predictors._proxy_scores import ProxyBatch, proxy_batch, score_cells
from workbench.predictors._targets import TARGETS, transform_target

__all__ = [
    "CHANNELS",
    "CURVE_MODELS",
    "DEFAULT_DYNAMICS_FILE",
    "DEFAULT_DYNAMICS_MODELS",
    "GRAPH_FEATURE_VERSION",
    "GRAPH_SCHEMA_VERSION",
    "MEMBER_KINDS",
    "PREDICTORS",
    "PROXIES",
    "TARGETS",
    "ArchitectureEnsemble",
    "CurveExtrapolator",
    "CurveFit",
    "DynamicsData",
    "DynamicsForest",
    "DynamicsGBT",
    "DynamicsGRU",
    "FeaturePredictor",
    "GCNPredictor",
    "GraphFeatureRegressor",
    "GraphFeatures",
    "LastValue",
    "MeanPredictor",
    "PredictorFileError",
    "ProxyBatch",
    "ZeroCostProxy",
    "benchmark_graphs",
    "compute_proxies",
    "default_dynamics_predictor",
    "dynamics_inputs",
    "exponential",
    "extrapolate",
    "fit_curve",
    "fitted_on_differences",
    "get_predictor",
    "get_proxy",
    "graph_feature_names",
    "graph_features",
    "graphs_from_cells",
    "layer_mask",
    "list_predictors",
    "list_proxies",
    "load_dynamics",
    "load_predictor",
    "power_law",
    "proxy_batch",
    "rank_runs",
    "read_header",
    "refit_default_predictor",
    "register_predictor",
    "register_proxy",
    "save_predictor",
    "score_cells",
    "snapshot_maps",
    "split_graphs",
    "split_inputs",
    "summary_feature_names",
    "summary_features",
    "transform_target",
]
