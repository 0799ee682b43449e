"""The two bundled tables: NAS-Bench-101 (1k sample) and NAS-Bench-201 (all 15,625 cells)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from workbench._tables import read_table
from workbench.benchmarks._benchmark import Fidelity, TabularBenchmark, register_benchmark
from workbench.benchmarks._cost import NB201CostModel
from workbench.spaces import NB201Space


@register_benchmark("nb101")
class NB101Benchmark(TabularBenchmark):
    """NAS-Bench-101, 1,000 uniformly sampled cells: CIFAR-10 validation accuracy at 4/12/36/108
    epochs (one run each). Cost: the measured TPU seconds of the 108-epoch run, pro rata."""

    name = "nb101"
    space_name = "nb101"
    id_column = "hash"
    id_pattern = "[0-9a-f]{32}"
    fidelities: ClassVar[tuple[Fidelity, ...]] = tuple(
        Fidelity("cifar10", e, "val", f"val_acc_{e}", 100.0) for e in (4, 12, 36, 108)
    )
    final: ClassVar[dict[str, Fidelity]] = {"cifar10": fidelities[-1]}

    def _cell_strings(self) -> np.ndarray:
        return (self.raw["matrix"] + "|" + self.raw["ops"]).to_numpy()

    def _params(self) -> np.ndarray:
        return self.raw["params"].to_numpy(dtype=np.int64)

    def _cost_row(self, row: pd.Series, *, dataset: str, epochs: float) -> float:
        return float(row["train_seconds_108"]) / 108.0 * epochs


_NB201_DS = {"cifar10": "c10", "cifar100": "c100", "ImageNet16-120": "in16"}


@register_benchmark("nb201")
class NB201Benchmark(TabularBenchmark):
    """NAS-Bench-201, all 15,625 cells on CIFAR-10, CIFAR-100 and ImageNet16-120: accuracy after
    the 12-epoch schedule (val and test) and test accuracy after 200 epochs (mean over seeds).

    Cost: :class:`NB201CostModel` (modelled from the cell's exact MACs; the table has no times).
    The published NASWOT score is available through :meth:`naswot`, NAS-Bench-Suite-Zero's 13
    published proxies through :meth:`proxies`; duplicates (cells equal after pruning dead edges,
    9,445 distinct) through :meth:`representative` and :meth:`distinct_ids`.
    """

    name = "nb201"
    space_name = "nb201"
    space: NB201Space  # what get_space("nb201") returns
    id_column = "index"
    id_pattern = "[0-9]+"
    fidelities: ClassVar[tuple[Fidelity, ...]] = tuple(
        Fidelity(ds, e, split, f"{p}_{split}_{e}", 1.0)
        for ds, p in _NB201_DS.items()
        for e, split in ((12, "val"), (12, "test"), (200, "test"))
    )
    final: ClassVar[dict[str, Fidelity]] = {
        ds: Fidelity(ds, 200, "test", f"{p}_test_200", 1.0) for ds, p in _NB201_DS.items()
    }

    #: Datasets and columns of the published proxy scores (:meth:`proxies`).
    proxy_datasets: ClassVar[tuple[str, ...]] = ("cifar10", "ImageNet16-120")
    proxy_columns: ClassVar[tuple[str, ...]] = (
        "epe_nas", "fisher", "flops", "grad_norm", "grasp", "jacov", "l2_norm", "nwot",
        "params", "plain", "snip", "synflow", "zen",
    )

    def __init__(self, cost_model: NB201CostModel | None = None) -> None:
        super().__init__()
        self.cost_model = cost_model or NB201CostModel()

    def _cell_strings(self) -> np.ndarray:
        return self.raw["arch"].to_numpy()

    def _params(self) -> np.ndarray:
        return np.rint(self.raw["params_m"].to_numpy() * 1e6).astype(np.int64)

    def _cost_row(self, row: pd.Series, *, dataset: str, epochs: float) -> float:
        ops = self.space.parse(row["arch"]).ops
        return self.cost_model.seconds_per_epoch(ops, dataset=dataset) * epochs

    def naswot(self) -> pd.Series:
        """The published NASWOT score of each cell (NaN where not computed), by cell id."""
        return pd.Series(self.raw["naswot_score"].to_numpy(), index=self._ids, name="naswot")

    def _representative_rows(self) -> np.ndarray:
        # A cell's representative is its pruned form (dead edges set to none), itself a row.
        pos = {str(c): i for i, c in enumerate(self._cells)}
        return np.array([pos[self.space.parse(str(c)).prune().to_string()] for c in self._cells])

    def proxies(self, *, dataset: str | None = None, distinct_only: bool = False
                ) -> pd.DataFrame:
        """NAS-Bench-Suite-Zero's published zero-cost proxy scores (Krishnakumar et al., 2022),
        indexed by cell id in table order, one float column per proxy (``proxy_columns``).

        Scores are raw as published (NASLib's signs: higher goes with higher accuracy for every
        proxy but ``plain``; ``flops``, ``params`` in millions; ``epe_nas`` is EPE-NAS, not
        our ``epsinas``). They were computed once per distinct cell, so by default all 15,625
        rows are returned, duplicates carrying their representative's scores (its ``params``
        too, which leaves out a duplicate's dead convs); ``distinct_only=True`` returns the
        9,445 distinct cells. Datasets: ``proxy_datasets`` (default CIFAR-10).
        """
        ds = "cifar10" if dataset is None else dataset
        if ds not in self.proxy_datasets:
            why = (" (NAS-Bench-Suite-Zero published no CIFAR-100 scores for NAS-Bench-201)"
                   if ds == "cifar100" else "")
            raise ValueError(f"no published nb201 proxy scores for dataset {dataset!r}{why}; "
                             f"available: {list(self.proxy_datasets)}")
        raw = read_table(f"nb201_zc_{ds}")
        ids = raw["index"].astype(str).to_numpy()
        distinct = self.distinct_ids()
        if sorted(ids) != sorted(distinct) or any(
                raw["arch"].to_numpy() != self._cells[[self._pos[i] for i in ids]]):
            raise ValueError(f"the bundled nb201 proxy table for {ds} does not list the "
                             f"{len(distinct)} distinct cells of the nb201 table")
        scores = raw.set_index(pd.Index(ids, name="cell_id"))[list(self.proxy_columns)]
        scores = scores.astype(np.float64)
        if distinct_only:
            return scores.loc[distinct]
        out = scores.loc[self._ids[self._reps]]
        out.index = pd.Index(self._ids, name="cell_id")
        return out
