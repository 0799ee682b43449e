"""Bundled tabular benchmarks (NAS-Bench-101 1k, NAS-Bench-201): accuracies, params and costs.

>>> from workbench.benchmarks import get_benchmark
>>> nb201 = get_benchmark("nb201")
>>> nb201.query(1)  # by index, cell string or NB201Cell; one row per (dataset, epochs, split)
"""

from workbench._tables import CellNotInTableError, read_table
from workbench.benchmarks._benchmark import (
    Fidelity,
    TabularBenchmark,
    get_benchmark,
    list_benchmarks,
    register_benchmark,
)
from workbench.benchmarks._cost import NB201_DATASETS, NB201CostModel, nb201_macs
from workbench.benchmarks._nb import NB101Benchmark, NB201Benchmark
from workbench.benchmarks._sampler import nb101_sampler_weights, sampler_test_set
from workbench.benchmarks._validation import NB201_VAL200_FILE, nb201_val200_accuracies

__all__ = [
    "NB201_DATASETS",
    "NB201_VAL200_FILE",
    "CellNotInTableError",
    "Fidelity",
    "NB101Benchmark",
    "NB201Benchmark",
    "NB201CostModel",
    "TabularBenchmark",
    "get_benchmark",
    "list_benchmarks",
    "nb101_sampler_weights",
    "nb201_macs",
    "nb201_val200_accuracies",
    "read_table",
    "register_benchmark",
    "sampler_test_set",
]
