"""Hardware costs of NAS-Bench-201 cells: HW-NAS-Bench latency / energy on six devices and three
datasets, HELP's further CIFAR-10 latencies (desktop GPUs, server CPUs, phones).

Each (dataset, device, metric) is one column of a bundled table; :func:`hardware_columns` names
them, the benchmark reads them (``NB201Benchmark.cost(cell, metric=, device=)``, ``all_costs``,
``costs``). HW-NAS-Bench's ``-1`` (no measurement: 4,699 cells on the Edge TPU, every dataset)
is served as NaN; a constraint never counts such a cell as feasible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from workbench._tables import read_table

#: HW-NAS-Bench's six devices (column prefixes) and what each is.
HW_DEVICES: dict[str, str] = {
    "edgegpu": "NVIDIA Jetson TX2 (edge GPU)",
    "raspi4": "Raspberry Pi 4",
    "edgetpu": "Google Edge TPU",
    "pixel3": "Google Pixel 3",
    "eyeriss": "Eyeriss ASIC (simulated)",
    "fpga": "FPGA (simulated)",
}
#: Units of the cost metrics ("arithmetic_intensity" is Eyeriss's, as published).
COST_UNITS: dict[str, str] = {"latency": "ms", "energy": "mJ", "arithmetic_intensity": "as given",
                              "params": "M params"}
_HW_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
_HELP_PREFIX = "latency_ms_"


@dataclass(frozen=True)
class CostColumn:
    """One bundled cost column: dataset, device, metric, unit, table and column, source."""

    dataset: str
    device: str
    metric: str
    unit: str
    table: str
    column: str
    source: str


@cache
def hardware_columns() -> tuple[CostColumn, ...]:
    """Every bundled NB201 hardware-cost column (HW-NAS-Bench x 3 datasets, then HELP)."""
    out: list[CostColumn] = []
    for ds in _HW_DATASETS:
        for col in read_table(f"nb201_hw_{ds}").columns:
            if col == "index":
                continue
            device, metric = col.split("_", 1)
            out.append(CostColumn(ds, device, metric, COST_UNITS[metric], f"nb201_hw_{ds}", col,
                                  "HW-NAS-Bench"))
    for col in read_table("nb201_latency").columns:
        if col.startswith(_HELP_PREFIX):
            out.append(CostColumn("cifar10", col[len(_HELP_PREFIX):], "latency", "ms",
                                  "nb201_latency", col, "HELP"))
    return tuple(out)


@cache
def _column_values(table: str, column: str, n_rows: int) -> np.ndarray:
    raw = read_table(table)
    idx = raw["index"].to_numpy()
    if len(idx) != n_rows or not np.array_equal(idx, np.arange(n_rows)):
        raise ValueError(f"bundled cost table {table!r} does not list NB201 cells 0..{n_rows - 1}"
                         " in order")
    values = raw[column].to_numpy(dtype=np.float64)
    # HW-NAS-Bench publishes -1 where it has no measurement (4,699 Edge TPU cells): not a cost.
    values = np.where(values < 0, np.nan, values)
    values.setflags(write=False)
    return values


def cost_column_values(col: CostColumn, n_rows: int) -> np.ndarray:
    """The values of ``col`` for NB201 indices 0..n_rows-1 (read-only, cached)."""
    return _column_values(col.table, col.column, n_rows)


def cost_metrics_frame(columns: tuple[CostColumn, ...]) -> pd.DataFrame:
    """The cost columns as a DataFrame: dataset, device, metric, unit, source, description."""
    return pd.DataFrame([{"dataset": c.dataset, "device": c.device, "metric": c.metric,
                          "unit": c.unit, "source": c.source,
                          "description": HW_DEVICES.get(c.device, c.device)} for c in columns],
                        columns=["dataset", "device", "metric", "unit", "source", "description"])


def device_transfer(bench: Any, devices: Sequence[str], *, metric: str = "latency",
                    quantile: float = 0.5, dataset: str | None = None) -> pd.DataFrame:
    """How the best cell under one device's cost target fares on another's: per (source,
    target) device, whether the source's best feasible cell (final accuracy, latency at most the
    ``quantile`` of the source's costs) meets the target device's budget, and its final
    accuracy's percentile among the target's feasible cells (100 = the target's best).

    One row per pair: source, target, cell_id, feasible, percentile (NaN when infeasible),
    accuracy, best_on_target."""
    q = float(quantile)
    if not 0 < q <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile!r}")
    if len(devices) == 0:
        raise ValueError("devices must name at least one device")
    final = bench.all_accuracies(dataset=dataset)
    feas: dict[str, pd.Index] = {}
    for dev in devices:
        cost = bench.all_costs(metric, dev, dataset=dataset)
        feas[dev] = cost.index[cost <= cost.quantile(q)]
    rows = []
    for src in devices:
        cid = str(final.loc[feas[src]].idxmax())
        for dst in devices:
            ok = cid in feas[dst]
            on_dst = final.loc[feas[dst]].to_numpy()
            pct = float((on_dst <= final[cid]).mean() * 100) if ok else float("nan")
            rows.append({"source": src, "target": dst, "cell_id": cid, "feasible": ok,
                         "percentile": pct, "accuracy": float(final[cid]),
                         "best_on_target": float(on_dst.max())})
    return pd.DataFrame(rows)
