"""Reading the bundled tabular benchmarks (raw tables, as published).

A base module so that both ``spaces`` (index <-> cell mapping) and ``benchmarks`` (queries) can
read the tables without one importing the other.
"""

from __future__ import annotations

from functools import cache

import pandas as pd

from workbench._paths import bundled_path

_FILES = {"nb101": "nasbench101_1k.csv.gz", "nb201": "nasbench201.csv.gz"}


@cache
def _read(name: str) -> pd.DataFrame:
    path = bundled_path(_FILES[name])
    try:
        return pd.read_csv(path, dtype={"hash": str})
    except (OSError, ValueError) as exc:  # gzip/CSV damage
        raise ValueError(f"cannot read benchmark table {path}: {exc}") from exc


def read_table(name: str) -> pd.DataFrame:
    """The raw bundled table ``name`` ('nb101' or 'nb201') as a new DataFrame (a copy)."""
    if name not in _FILES:
        raise ValueError(f"unknown benchmark table {name!r}; available: {sorted(_FILES)}")
    return _read(name).copy()
