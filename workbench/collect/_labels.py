"""The benchmark label a stored run carries, and its name: one convention for every writer of a
run store (``collect`` and the training backends)."""

from __future__ import annotations

import math
from typing import Any

from workbench.benchmarks import TabularBenchmark


def run_label(bench: TabularBenchmark | None, cell: Any, dataset: str
              ) -> tuple[float | None, str | None]:
    """``(label, label_name)`` of a run of ``cell`` on ``dataset``: the table's final accuracy
    (%) and ``"<space>:<table column>"`` (e.g. ``"nb201:cifar10/test@200"``); ``(None, None)``
    without a table, when it has no such dataset or cell, or no finite value there."""
    if bench is None or dataset not in bench.datasets or cell not in bench:
        return None, None
    value = float(bench.final_accuracy(cell, dataset=dataset))
    if not math.isfinite(value):
        return None, None
    return value, f"{bench.name}:{bench.final[dataset].label}"
