"""NAS-Bench-201's 200-epoch CIFAR-10 *validation* accuracy of the distinct cells (bundled).

The bundled NB201 table's final label is 200-epoch *test* accuracy. NAS-Bench-Suite-Zero and
much of the predictor literature report rank correlations against the 200-epoch validation
accuracy of NB201's ``cifar10-valid`` setting (trained on half the training set, validated on
the other half), which ``nasbench201_val200_cifar10.csv.gz`` (bundled, and in the shared data
folder) holds for the distinct cells.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from workbench._tables import read_table
from workbench.benchmarks._benchmark import TabularBenchmark, get_benchmark

#: The shared file of 200-epoch CIFAR-10 validation accuracies of the distinct NB201 cells.
NB201_VAL200_FILE = "nasbench201_val200_cifar10.csv.gz"


def nb201_val200_accuracies(bench: TabularBenchmark | None = None, *,
                            path: str | os.PathLike[str] | None = None) -> pd.Series:
    """200-epoch CIFAR-10 validation accuracy (%) of every distinct NB201 cell, a Series named
    ``cifar10/val@200`` indexed by cell id in the order of ``bench.distinct_ids()``.

    Read from ``path`` (default: the bundled copy of :data:`NB201_VAL200_FILE`, which the nb201
    benchmark also serves as its ``cifar10/val@200`` fidelity); FileNotFoundError when a given
    path is absent, ValueError when its cells are not the table's distinct cells (index and,
    where the file has them, cell strings).
    """
    bench = bench if bench is not None else get_benchmark("nb201")
    if bench.name != "nb201":
        raise ValueError(f"validation accuracies exist for nb201 only, got {bench.name!r}")
    if path is None:  # the bundled copy (its arch column dropped; checked when bundled)
        raw = read_table("nb201_val200")
        path = Path(NB201_VAL200_FILE)
    else:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
        raw = pd.read_csv(path)
    missing = {"index", "val_accs"} - set(raw.columns)
    if missing:
        raise ValueError(f"{path} lacks columns {sorted(missing)}")
    ids = raw["index"].astype(str).to_numpy()
    distinct = bench.distinct_ids()
    if sorted(ids) != sorted(distinct):
        raise ValueError(f"{path} lists {len(ids)} cells, not the {len(distinct)} distinct "
                         "cells of the nb201 table")
    table = bench.table().set_index("cell_id")["cell"]
    if "arch" in raw and not np.array_equal(raw["arch"].to_numpy(), table.loc[ids].to_numpy()):
        raise ValueError(f"{path}: cell strings differ from the nb201 table's")
    values = pd.Series(raw["val_accs"].to_numpy(float), index=pd.Index(ids, name="cell_id"),
                       name="cifar10/val@200")
    return values.loc[distinct]
