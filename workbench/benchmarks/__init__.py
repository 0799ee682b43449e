"""Bundled tabular benchmarks (NAS-Bench-101 20k and 1k, NAS-Bench-201 with its 200 learning
curves): accuracies, params, training costs and inference costs (latency / energy per device).

>>> from workbench.benchmarks import get_benchmark
>>> nb201 = get_benchmark("nb201")
>>> nb201.query(1)  # by index, cell string or NB201Cell; one row per (dataset, epochs, split)
>>> nb201.cost(1, metric="latency", device="pixel3")  # ms; nb201.costs() has all of them
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
from workbench.benchmarks._hardware import COST_UNITS, HW_DEVICES, device_transfer
from workbench.benchmarks._nb import (
    NB101Benchmark,
    NB101Benchmark1k,
    NB201Benchmark,
    NB201CurvesBenchmark,
)
from workbench.benchmarks._sampler import nb101_sampler_weights, sampler_test_set
from workbench.benchmarks._validation import NB201_VAL200_FILE, nb201_val200_accuracies

__all__ = [
    "COST_UNITS",
    "HW_DEVICES",
    "NB201_DATASETS",
    "NB201_VAL200_FILE",
    "CellNotInTableError",
    "Fidelity",
    "NB101Benchmark",
    "NB101Benchmark1k",
    "NB201Benchmark",
    "NB201CostModel",
    "NB201CurvesBenchmark",
    "TabularBenchmark",
    "device_transfer",
    "get_benchmark",
    "list_benchmarks",
    "nb101_sampler_weights",
    "nb201_macs",
    "nb201_val200_accuracies",
    "read_table",
    "register_benchmark",
    "sampler_test_set",
]
