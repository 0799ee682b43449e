"""The bundled tables: NAS-Bench-101 (20k sample and its first 1k), NAS-Bench-201 (all 15,625
cells, with HW-NAS-Bench / HELP inference costs) and NB201's 200 learning curves."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from workbench._tables import read_table
from workbench.benchmarks._benchmark import Fidelity, TabularBenchmark, register_benchmark
from workbench.benchmarks._cost import NB201CostModel
from workbench.benchmarks._hardware import CostColumn, hardware_columns
from workbench.spaces import NB201Space


@register_benchmark("nb101")
class NB101Benchmark(TabularBenchmark):
    """NAS-Bench-101, 20,001 uniformly sampled cells (the first module hashes in sorted order):
    CIFAR-10 validation accuracy at 4/12/36/108 epochs (one run each). Cost: the measured TPU
    seconds of the 108-epoch run, pro rata. ``nb101_1k`` is its first 1,000 rows."""

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


@register_benchmark("nb101_1k")
class NB101Benchmark1k(NB101Benchmark):
    """The NAS-Bench-101 1k table: the first 1,000 rows of ``nb101`` (equal in every column)."""

    name = "nb101_1k"


_NB201_DS = {"cifar10": "c10", "cifar100": "c100", "ImageNet16-120": "in16"}


@register_benchmark("nb201")
class NB201Benchmark(TabularBenchmark):
    """NAS-Bench-201, all 15,625 cells on CIFAR-10, CIFAR-100 and ImageNet16-120: accuracy after
    the 12-epoch schedule (val and test) and test accuracy after 200 epochs (mean over seeds);
    on CIFAR-10 also the 200-epoch *validation* accuracy (``cifar10-valid``, a duplicate cell
    carries its representative's), which searches observe while the final label stays test.

    Inference costs (:meth:`cost` with ``metric`` / ``device``, :meth:`all_costs`,
    :meth:`costs`): HW-NAS-Bench latency / energy on six devices per dataset and HELP's further
    CIFAR-10 latencies (:meth:`cost_metrics` lists them).

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
    fidelities: ClassVar[tuple[Fidelity, ...]] = (
        *(Fidelity(ds, e, split, f"{p}_{split}_{e}", 1.0)
          for ds, p in _NB201_DS.items()
          for e, split in ((12, "val"), (12, "test"), (200, "test"))),
        Fidelity("cifar10", 200, "val", "c10_val_200", 1.0),
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

    def _load_raw(self) -> pd.DataFrame:
        raw = read_table("nb201")
        # 200-epoch CIFAR-10 validation accuracy (NB201's cifar10-valid) of the distinct cells;
        # a duplicate (equal after pruning dead edges) gets its representative's.
        val = read_table("nb201_val200").set_index("index")["val_accs"]
        space = NB201Space()
        pos = {a: i for i, a in enumerate(raw["arch"])}
        idx = raw["index"].to_numpy()
        reps = [idx[pos[space.parse(a).prune().to_string()]] for a in raw["arch"]]
        raw["c10_val_200"] = val.reindex(reps).to_numpy(dtype=np.float64)
        return raw

    def _cost_columns(self) -> tuple[CostColumn, ...]:
        return hardware_columns()

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


@register_benchmark("nb201_curves")
class NB201CurvesBenchmark(NB201Benchmark):
    """NAS-Bench-201 cells 0-199 with their 200-epoch learning curves: CIFAR-10 validation
    accuracy (``cifar10-valid``, mean over seeds) after every epoch 1..200 of the 200-epoch
    schedule, so any epoch is a fidelity; final label: the 200-epoch test accuracy of ``nb201``.
    ``train_curve`` / ``val_curve`` give one cell's curve."""

    name = "nb201_curves"
    fidelities: ClassVar[tuple[Fidelity, ...]] = tuple(
        Fidelity("cifar10", e, "val", f"val_acc_{e}", 1.0) for e in range(1, 201))
    final: ClassVar[dict[str, Fidelity]] = {
        "cifar10": Fidelity("cifar10", 200, "test", "c10_test_200", 1.0)}

    def _load_raw(self) -> pd.DataFrame:
        curves = read_table("nb201_curves")
        wide = {f"{k}_{e}": grp for k in ("val_acc", "train_acc")
                for e, grp in curves.pivot(index="index", columns="epoch",
                                           values=k).items()}
        frame = pd.DataFrame(wide)
        base = read_table("nb201").set_index("index").loc[frame.index]
        out = pd.concat([base, frame], axis=1).reset_index()
        return out

    def _representative_rows(self) -> np.ndarray:
        # The subset holds few duplicates' representatives: a cell stands for itself unless its
        # pruned form is in the subset.
        pos = {str(c): i for i, c in enumerate(self._cells)}
        return np.array([pos.get(self.space.parse(str(c)).prune().to_string(), i)
                         for i, c in enumerate(self._cells)])

    def _cost_values(self, metric: str, device: str | None, dataset: str | None) -> np.ndarray:
        full = NB201Benchmark._cost_values(_full_nb201(), metric, device, dataset)
        return full[self.raw["index"].to_numpy()]

    def val_curve(self, cell: object) -> pd.Series:
        """Validation accuracy (%) of ``cell`` after each epoch 1..200, indexed by epoch."""
        row = self.row(cell)
        return pd.Series([float(row[f"val_acc_{e}"]) for e in range(1, 201)],
                         index=pd.RangeIndex(1, 201, name="epoch"), name="val_acc")

    def train_curve(self, cell: object) -> pd.Series:
        """Training accuracy (%) of ``cell`` over each epoch 1..200, indexed by epoch."""
        row = self.row(cell)
        return pd.Series([float(row[f"train_acc_{e}"]) for e in range(1, 201)],
                         index=pd.RangeIndex(1, 201, name="epoch"), name="train_acc")

    def proxies(self, *, dataset: str | None = None, distinct_only: bool = False
                ) -> pd.DataFrame:
        """Not for the 200-cell subset: ValueError (use ``get_benchmark("nb201").proxies()``)."""
        raise ValueError("nb201_curves has no published proxy table of its own; use "
                         "get_benchmark('nb201').proxies() and select its ids")


_FULL: list[NB201Benchmark] = []


def _full_nb201() -> NB201Benchmark:
    """One shared full NB201 benchmark (for the curve subset's cost lookups)."""
    if not _FULL:
        _FULL.append(NB201Benchmark())
    return _FULL[0]
