"""Reading the bundled tabular benchmarks (raw tables, as published), and the error for a cell
that is not in one.

A base module so that both ``spaces`` (index <-> cell mapping) and ``benchmarks`` (queries) can
read the tables without one importing the other.
"""

from __future__ import annotations

from functools import cache

import pandas as pd

from workbench._paths import bundled_path

_FILES = {
    "nb101": "nasbench101_20k.csv.gz",  # 20,001 cells; its first 1,000 rows are the 1k table
    "nb101_1k": "nasbench101_1k.csv.gz",
    "nb201": "nasbench201.csv.gz",
    # HW-NAS-Bench latency / energy per device, one file per dataset; HELP's further latencies.
    "nb201_hw_cifar10": "nasbench201_hw_cifar10.csv.gz",
    "nb201_hw_cifar100": "nasbench201_hw_cifar100.csv.gz",
    "nb201_hw_ImageNet16-120": "nasbench201_hw_ImageNet16-120.csv.gz",
    "nb201_latency": "nasbench201_latency.csv.gz",
    # 200-epoch learning curves of cells 0-199 and the 200-epoch validation accuracy.
    "nb201_curves": "nasbench201_curves_200.csv.gz",
    "nb201_val200": "nasbench201_val200_cifar10.csv.gz",
    # NAS-Bench-Suite-Zero's published zero-cost proxy scores, one row per distinct NB201 cell.
    "nb201_zc_cifar10": "nasbench201_zc_cifar10.csv.gz",
    "nb201_zc_ImageNet16-120": "nasbench201_zc_ImageNet16-120.csv.gz",
}


class CellNotInTableError(LookupError, ValueError):
    """Raised when a cell (or id) is valid but has no row in a benchmark table (or a backend's
    view of one); a LookupError and a ValueError, so either kind of ``except`` catches it.

    Defined here, below both ``spaces`` and ``benchmarks``, so that a space's index lookup
    raises the same error as a table query; public as ``workbench.benchmarks``'s.
    """


@cache
def _read(name: str) -> pd.DataFrame:
    path = bundled_path(_FILES[name])
    try:
        return pd.read_csv(path, dtype={"hash": str})
    except (OSError, ValueError) as exc:  # gzip/CSV damage
        raise ValueError(f"cannot read benchmark table {path}: {exc}") from exc


def read_table(name: str) -> pd.DataFrame:
    """The raw bundled table ``name`` as a new DataFrame (a copy): 'nb101' (20k), 'nb101_1k',
    'nb201', the published NB201 proxy scores 'nb201_zc_cifar10' / 'nb201_zc_ImageNet16-120',
    hardware costs 'nb201_hw_{dataset}' / 'nb201_latency', 'nb201_curves', 'nb201_val200'."""
    if name not in _FILES:
        raise ValueError(f"unknown benchmark table {name!r}; available: {sorted(_FILES)}")
    return _read(name).copy()
