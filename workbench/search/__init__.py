"""Step-through NAS search on a backend: Successive Halving, Hyperband, random search, local
search, regularized evolution, any Optuna sampler (TPE), rounds of a finite search and
predictor-guided SH (``PredictorSH``), the Neural Predictor's search (``NeuralPredictorSearch``:
train N, predict, train the top K), LayerNAS with its bucket tables, plus seeded simulation of
regret against simulated cost. Backends: table lookups (simulated seconds) or real training
(wall seconds; promoted candidates continue from their checkpoints).

>>> from workbench.search import TabularBackend, TrainingBackend, SuccessiveHalving
>>> backend = TabularBackend("nb101")            # table lookups, simulated seconds
>>> sh = SuccessiveHalving(backend, n=27, min_budget=4, max_budget=108, seed=0)
>>> sh.step(); sh.table()                        # one rung, then its kept/dropped table
>>> sh.run(); sh.best(), sh.incumbent_final()
>>> LayerNAS(TabularBackend("nb201"), target=(0.3, 0.4)).run()   # the same protocol: history
>>> trained = TrainingBackend("nb201", max_budget=270)   # budgets in mini-batches
>>> SuccessiveHalving(trained, n=9, eta=3).run()         # rungs of 10, 30, 90, 270 mini-batches
"""

from workbench.search._backend import TablePool, TabularBackend
from workbench.search._base import (
    SEARCHES,
    Backend,
    BatchRanker,
    Evaluation,
    FunctionRanker,
    ObservedRanker,
    OracleRanker,
    PredictorRanker,
    ProxyRanker,
    Ranker,
    Search,
    as_ranker,
    get_search,
    incumbent_positions,
    list_searches,
    register_search,
)
from workbench.search._candidates import CandidatePool, PooledBackend, SpacePool, SubsetPool
from workbench.search._combine import CombinedRanker, normalised_ranks, zscores
from workbench.search._constraint import (
    CostConstraint,
    constrained,
    pareto_front,
    pareto_mask,
)
from workbench.search._dynamics_ranker import DynamicsRanker, GraphRanker
from workbench.search._evaluator import BackendEvaluator
from workbench.search._evolution import RegularizedEvolution
from workbench.search._hyperband import Hyperband, hyperband_brackets
from workbench.search._layernas import (
    LayerNAS,
    LayerwiseProblem,
    LayerwiseSpace,
    ProblemBackend,
    brute_force,
    independence_violations,
)
from workbench.search._layernas_spaces import (
    LayerwiseChannelSpace,
    channel_space,
    nb201_space,
    nb201_topology,
    paper_example,
)
from workbench.search._local import LocalSearch
from workbench.search._nap2 import (
    OfflinePhase,
    nap2_methods,
    offline_phase,
    regret_at,
    run_online,
    rung_correlations,
    selection_order,
    selection_precision,
    sh_cost,
)
from workbench.search._neural_predictor import NeuralPredictorSearch, table_inputs
from workbench.search._optuna import OptunaSearch
from workbench.search._pool import PoolBackend
from workbench.search._random import RandomSearch
from workbench.search._ray_backend import RayTrainingBackend
from workbench.search._rounds import PredictorSH, Rounds, table_features
from workbench.search._sh import SuccessiveHalving, keep_count, sh_schedule
from workbench.search._simulate import (
    CURVE_COLUMNS,
    aggregate_curves,
    resample_curves,
    search_curve,
    simulate,
)
from workbench.search._training_backend import TrainingBackend

__all__ = [
    "CURVE_COLUMNS",
    "SEARCHES",
    "Backend",
    "BackendEvaluator",
    "BatchRanker",
    "CandidatePool",
    "CombinedRanker",
    "CostConstraint",
    "DynamicsRanker",
    "Evaluation",
    "FunctionRanker",
    "GraphRanker",
    "Hyperband",
    "LayerNAS",
    "LayerwiseChannelSpace",
    "LayerwiseProblem",
    "LayerwiseSpace",
    "LocalSearch",
    "NeuralPredictorSearch",
    "ObservedRanker",
    "OfflinePhase",
    "OptunaSearch",
    "OracleRanker",
    "PoolBackend",
    "PooledBackend",
    "PredictorRanker",
    "PredictorSH",
    "ProblemBackend",
    "ProxyRanker",
    "RandomSearch",
    "Ranker",
    "RayTrainingBackend",
    "RegularizedEvolution",
    "Rounds",
    "Search",
    "SpacePool",
    "SubsetPool",
    "SuccessiveHalving",
    "TablePool",
    "TabularBackend",
    "TrainingBackend",
    "aggregate_curves",
    "as_ranker",
    "brute_force",
    "channel_space",
    "constrained",
    "get_search",
    "hyperband_brackets",
    "incumbent_positions",
    "independence_violations",
    "keep_count",
    "list_searches",
    "nap2_methods",
    "nb201_space",
    "nb201_topology",
    "normalised_ranks",
    "offline_phase",
    "paper_example",
    "pareto_front",
    "pareto_mask",
    "register_search",
    "regret_at",
    "resample_curves",
    "run_online",
    "rung_correlations",
    "search_curve",
    "selection_order",
    "selection_precision",
    "sh_cost",
    "sh_schedule",
    "simulate",
    "table_features",
    "table_inputs",
    "zscores",
]
