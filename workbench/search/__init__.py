"""Step-through NAS search on a backend: Successive Halving, Hyperband, random search and
regularized evolution, LayerNAS with its bucket tables, plus seeded simulation of regret
against simulated cost. Backends: table lookups (simulated seconds) or real training
(wall seconds; promoted candidates continue from their checkpoints).

>>> from workbench.search import TabularBackend, TrainingBackend, SuccessiveHalving
>>> backend = TabularBackend("nb101")            # table lookups, simulated seconds
>>> sh = SuccessiveHalving(backend, n=27, min_budget=4, max_budget=108, seed=0)
>>> sh.step(); sh.table()                        # one rung, then its kept/dropped table
>>> sh.run(); sh.best(), sh.incumbent_final()
>>> trained = TrainingBackend("nb201", max_budget=270)   # budgets in mini-batches
>>> SuccessiveHalving(trained, n=9, eta=3).run()         # rungs of 10, 30, 90, 270 mini-batches
"""

from workbench.search._backend import TabularBackend
from workbench.search._base import (
    SEARCHES,
    Backend,
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
from workbench.search._evolution import RegularizedEvolution
from workbench.search._hyperband import Hyperband, hyperband_brackets
from workbench.search._layernas import (
    LayerNAS,
    LayerwiseProblem,
    LayerwiseSpace,
    brute_force,
    independence_violations,
)
from workbench.search._layernas_spaces import (
    ChannelSpace,
    channel_space,
    nb201_topology,
    paper_example,
)
from workbench.search._random import RandomSearch
from workbench.search._sh import SuccessiveHalving, keep_count, sh_schedule
from workbench.search._simulate import (
    aggregate_curves,
    resample_curves,
    search_curve,
    simulate,
)
from workbench.search._training_backend import (
    BackendEvaluator,
    RayTrainingBackend,
    TrainingBackend,
)

__all__ = [
    "SEARCHES",
    "Backend",
    "BackendEvaluator",
    "ChannelSpace",
    "Evaluation",
    "FunctionRanker",
    "Hyperband",
    "LayerNAS",
    "LayerwiseProblem",
    "LayerwiseSpace",
    "ObservedRanker",
    "OracleRanker",
    "PredictorRanker",
    "ProxyRanker",
    "RandomSearch",
    "Ranker",
    "RayTrainingBackend",
    "RegularizedEvolution",
    "Search",
    "SuccessiveHalving",
    "TabularBackend",
    "TrainingBackend",
    "aggregate_curves",
    "as_ranker",
    "brute_force",
    "channel_space",
    "get_search",
    "hyperband_brackets",
    "incumbent_positions",
    "independence_violations",
    "keep_count",
    "list_searches",
    "nb201_topology",
    "paper_example",
    "register_search",
    "resample_curves",
    "search_curve",
    "sh_schedule",
    "simulate",
]
