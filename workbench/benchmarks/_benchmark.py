"""Query API over the bundled tabular benchmarks: accuracies by fidelity and dataset, and costs."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from workbench._checks import check_int, check_real
from workbench._registry import Registry
from workbench._tables import CellNotInTableError, read_table
from workbench.benchmarks._hardware import (
    COST_UNITS,
    CostColumn,
    cost_column_values,
    cost_metrics_frame,
)
from workbench.spaces import RngLike, SearchSpace, as_rng, get_space


@dataclass(frozen=True)
class Fidelity:
    """One measured column of a table: dataset, training epochs, split, and the raw column."""

    dataset: str
    epochs: int
    split: str
    column: str
    scale: float  # raw value * scale = percent

    @property
    def label(self) -> str:
        """Short name such as ``cifar10/val@108``."""
        return f"{self.dataset}/{self.split}@{self.epochs}"


class TabularBenchmark(ABC):
    """A tabular NAS benchmark: one row per cell, accuracies (percent) at several fidelities.

    Accuracies are in percent for every table (NAS-Bench-101 stores fractions) so that regrets
    are comparable across spaces. Cells may be given as cell objects, cell strings or table ids.
    Every query takes the cell (if any) positionally and the rest by keyword, always named
    ``dataset`` (default CIFAR-10), ``epochs`` and ``split``.
    """

    name: str
    space_name: str
    id_column: str
    fidelities: ClassVar[tuple[Fidelity, ...]]
    final: ClassVar[dict[str, Fidelity]]  # dataset -> the column used as "final accuracy"

    def __init__(self) -> None:
        self.raw = self._load_raw()
        self.space: SearchSpace = get_space(self.space_name)
        self._ids = self.raw[self.id_column].astype(str).to_numpy()
        self._pos = {k: i for i, k in enumerate(self._ids)}
        self._cells = self._cell_strings()

    # -- subclass hooks ---------------------------------------------------------------------
    def _load_raw(self) -> pd.DataFrame:
        """The raw table (hook; default: the bundled table named like the benchmark)."""
        return read_table(self.name)

    @abstractmethod
    def _cell_strings(self) -> np.ndarray:
        """Canonical cell string of every row, in table order."""

    @abstractmethod
    def _params(self) -> np.ndarray:
        """Parameter count of every row's benchmark network."""

    @abstractmethod
    def _cost_row(self, row: pd.Series, *, dataset: str, epochs: float) -> float:
        """Simulated training seconds of one row for ``epochs`` epochs on ``dataset``."""

    # -- identification -----------------------------------------------------------------------
    @property
    def datasets(self) -> list[str]:
        """Datasets measured in this table."""
        return sorted({f.dataset for f in self.fidelities})

    def epochs(self, *, dataset: str | None = None) -> list[int]:
        """Training budgets (epochs) measured for ``dataset``."""
        ds = self._check_dataset(dataset)
        return sorted({f.epochs for f in self.fidelities if f.dataset == ds})

    id_pattern: ClassVar[str]  # regular expression of a table id, e.g. 32 hex digits

    def cell_id(self, cell: Any) -> str:
        """The table id of ``cell`` (a cell object, a cell string or an id already)."""
        if isinstance(cell, (int, np.integer)) and not isinstance(cell, bool):
            cell = str(cell)
        if isinstance(cell, str) and re.fullmatch(self.id_pattern, cell.strip()):
            return cell.strip()
        if isinstance(cell, str):
            return self.space.cell_id(self.space.parse(cell))
        return self.space.cell_id(cell)

    def cell(self, cell_id: str) -> Any:
        """The cell object stored under ``cell_id``."""
        return self.space.parse(str(self._cells[self._position(cell_id)]))

    def _position(self, cell: Any) -> int:
        key = self.cell_id(cell)
        pos = self._pos.get(key)
        if pos is None:
            raise CellNotInTableError(
                f"cell {cell!s} (id {key!r}) is not in the {self.name} table of "
                f"{len(self)} cells"
            )
        return pos

    def row(self, cell: Any) -> pd.Series:
        """The raw table row of ``cell`` (a copy)."""
        return self.raw.iloc[self._position(cell)]

    def __contains__(self, cell: Any) -> bool:
        try:
            return self.cell_id(cell) in self._pos
        except ValueError:
            return False

    def __len__(self) -> int:
        return len(self._ids)

    # -- queries ----------------------------------------------------------------------------
    def table(self) -> pd.DataFrame:
        """All cells (wide): id, cell string, params and each accuracy column in percent."""
        cols: dict[str, Any] = {"cell_id": self._ids, "cell": self._cells,
                                "params": self._params()}
        for f in self.fidelities:
            cols[f.label] = self.raw[f.column].to_numpy() * f.scale
        return pd.DataFrame(cols)

    def query(self, cell: Any, *, dataset: str | None = None, epochs: int | None = None
              ) -> pd.DataFrame:
        """One cell's measurements (long): dataset, epochs, split, accuracy (%), cost (s)."""
        row = self.row(cell)
        ds = None if dataset is None else self._check_dataset(dataset)
        fids = [f for f in self.fidelities
                if (ds is None or f.dataset == ds) and (epochs is None or f.epochs == epochs)]
        if not fids:
            raise ValueError(f"no {self.name} measurement at epochs={epochs!r} for "
                             f"dataset={dataset!r}; available: "
                             f"{sorted({(f.dataset, f.epochs) for f in self.fidelities})}")
        return pd.DataFrame.from_records([
            {"cell_id": self.cell_id(cell), "dataset": f.dataset, "epochs": f.epochs,
             "split": f.split, "accuracy": float(row[f.column]) * f.scale,
             "cost_seconds": self._cost_row(row, dataset=f.dataset, epochs=f.epochs)}
            for f in fids
        ])

    def accuracy(self, cell: Any, *, dataset: str | None = None, epochs: int | None = None,
                 split: str | None = None) -> float:
        """Accuracy (%) of ``cell`` after ``epochs`` (default: the final label)."""
        f = self.fidelity(dataset=dataset, epochs=epochs, split=split)
        return float(self.row(cell)[f.column]) * f.scale

    def final_accuracy(self, cell: Any, *, dataset: str | None = None) -> float:
        """The table's final-accuracy label of ``cell`` (percent)."""
        return self.accuracy(cell, dataset=dataset)

    def all_accuracies(self, *, dataset: str | None = None, epochs: int | None = None,
                       split: str | None = None) -> pd.Series:
        """Accuracy (%) of every cell at one fidelity (default: the final label), by cell id."""
        f = self.fidelity(dataset=dataset, epochs=epochs, split=split)
        return pd.Series(self.raw[f.column].to_numpy() * f.scale, index=self._ids, name=f.label)

    def cost(self, cell: Any, *, dataset: str | None = None, epochs: float | None = None,
             metric: str | None = None, device: str | None = None) -> float:
        """A cost of ``cell``: with ``epochs``, the simulated seconds to train it that long (see
        the cost model); with ``metric`` / ``device``, its inference cost as tabulated, e.g.
        ``cost(cell, metric="latency", device="pixel3")`` in ms (:meth:`cost_metrics` lists
        them; ``metric="params"``: millions of parameters)."""
        if metric is None and device is None:
            if epochs is None:
                raise ValueError("give epochs= (training seconds) or metric= / device= (an "
                                 f"inference cost; available: {self._cost_choices(dataset)})")
            epochs = check_real("epochs", epochs, minimum=0)
            return self._cost_row(self.row(cell), dataset=self._check_dataset(dataset),
                                  epochs=epochs)
        if epochs is not None:
            raise ValueError(f"epochs={epochs!r} goes with training seconds, not with "
                             f"metric={metric!r} / device={device!r}")
        values = self._cost_values(metric or "latency", device, dataset)
        return float(values[self._position(cell)])

    # -- inference costs (latency, energy, params) -------------------------------------------
    def _cost_columns(self) -> tuple[CostColumn, ...]:
        """Hook: the tabulated inference-cost columns of this table (default: none)."""
        return ()

    def cost_metrics(self, *, dataset: str | None = None) -> pd.DataFrame:
        """The inference costs :meth:`cost` knows: dataset, device, metric, unit, source (all
        datasets unless ``dataset``); ``params`` (device ``-``) is always there."""
        cols = [c for c in self._cost_columns()
                if dataset is None or c.dataset == self._check_dataset(dataset)]
        frame = cost_metrics_frame(tuple(cols))
        params = pd.DataFrame([{"dataset": ds, "device": "-", "metric": "params",
                                "unit": COST_UNITS["params"], "source": self.name,
                                "description": "parameters of the benchmark network"}
                               for ds in ([self._check_dataset(dataset)] if dataset is not None
                                          else self.datasets)])
        return pd.concat([params, frame], ignore_index=True)

    def _cost_choices(self, dataset: str | None) -> list[tuple[str, str]]:
        ds = self._check_dataset(dataset)
        return [("params", "-")] + [(c.metric, c.device) for c in self._cost_columns()
                                    if c.dataset == ds]

    def _cost_values(self, metric: str, device: str | None, dataset: str | None) -> np.ndarray:
        ds = self._check_dataset(dataset)
        if metric == "params":
            if device not in (None, "-"):
                raise ValueError(f"metric 'params' has no device, got device={device!r}")
            return self._params().astype(np.float64) / 1e6
        for c in self._cost_columns():
            if c.dataset == ds and c.metric == metric and c.device == device:
                return cost_column_values(c, len(self))
        choices = self._cost_choices(ds)
        devices = sorted({d for m, d in choices if m == metric})
        if device is None and devices:
            raise ValueError(f"metric {metric!r} needs a device; available for {ds!r}: "
                             f"{devices}")
        raise ValueError(f"no {self.name} cost metric={metric!r}, device={device!r} for "
                         f"dataset {ds!r}; available (metric, device): {choices}")

    def all_costs(self, metric: str = "latency", device: str | None = None, *,
                  dataset: str | None = None) -> pd.Series:
        """One inference cost of every cell (see :meth:`cost`), by cell id in table order."""
        ds = self._check_dataset(dataset)
        values = self._cost_values(metric, device, ds)
        name = f"{ds}/{metric}" if metric == "params" else f"{ds}/{device}_{metric}"
        return pd.Series(values, index=pd.Index(self._ids, name="cell_id"), name=name)

    def costs(self, *, dataset: str | None = None) -> pd.DataFrame:
        """Every tabulated inference cost of every cell, tidy: cell_id, dataset, device, metric,
        value, unit, source (one row per cell and cost; ``dataset`` keeps one)."""
        frames = []
        for rec in self.cost_metrics(dataset=dataset).itertuples(index=False):
            dev = None if rec.metric == "params" else str(rec.device)
            values = self._cost_values(str(rec.metric), dev, str(rec.dataset))
            frames.append(pd.DataFrame({"cell_id": self._ids, "dataset": rec.dataset,
                                        "device": rec.device, "metric": rec.metric,
                                        "value": values, "unit": rec.unit,
                                        "source": rec.source}))
        out = pd.concat(frames, ignore_index=True)
        for col in ("dataset", "device", "metric", "unit", "source"):
            out[col] = out[col].astype("category")
        return out

    def best(self, *, dataset: str | None = None) -> tuple[str, float]:
        """Id and final accuracy (%) of the table's best cell."""
        s = self.all_accuracies(dataset=dataset)
        return str(s.idxmax()), float(s.max())

    def sample_ids(self, n: int, rng: RngLike = None) -> list[str]:
        """``n`` distinct cell ids drawn uniformly from the table."""
        n = check_int("n", n, minimum=1, maximum=len(self))
        idx = as_rng(rng).choice(len(self), size=n, replace=False)
        return [str(i) for i in self._ids[idx]]

    # -- distinct cells and published proxy scores --------------------------------------------
    def _representative_rows(self) -> np.ndarray:
        """Row position of each row's representative, in table order (hook; default: every row
        stands for itself, as in a table keyed by an isomorphism-invariant hash)."""
        return np.arange(len(self))

    @cached_property
    def _reps(self) -> np.ndarray:
        return self._representative_rows()

    def representative(self, cell: Any) -> str:
        """The id of the distinct cell that stands for ``cell``: its own id unless the table
        holds functionally identical duplicates (NB201: cells equal after pruning dead edges)."""
        return str(self._ids[self._reps[self._position(cell)]])

    def representatives(self) -> pd.Series:
        """The representative's id of every cell, indexed by cell id, in table order (for
        grouping duplicates, e.g. keeping a training cell's duplicates out of a test set)."""
        return pd.Series(self._ids[self._reps], index=pd.Index(self._ids, name="cell_id"),
                         name="representative")

    def distinct_ids(self) -> list[str]:
        """Ids of the distinct cells (each its own representative), in table order."""
        return [str(i) for i in self._ids[np.unique(self._reps)]]

    def proxies(self, *, dataset: str | None = None, distinct_only: bool = False
                ) -> pd.DataFrame:
        """Published zero-cost proxy scores by cell id, one column per proxy; only tables that
        ship such scores have them (nb201): ValueError for this one."""
        raise ValueError(f"{self.name} has no published proxy table; only nb201 ships one "
                         "(NAS-Bench-Suite-Zero's scores)")

    def fidelity(self, *, dataset: str | None = None, epochs: int | None = None,
                 split: str | None = None) -> Fidelity:
        """The measured column for (dataset, epochs, split); validation preferred over test."""
        ds = self._check_dataset(dataset)
        if epochs is None and split is None:
            return self.final[ds]
        cands = [f for f in self.fidelities if f.dataset == ds
                 and (epochs is None or f.epochs == epochs) and (split is None or f.split == split)]
        if not cands:
            allowed = sorted((f.epochs, f.split) for f in self.fidelities if f.dataset == ds)
            raise ValueError(f"no {self.name} measurement for dataset={ds!r}, epochs={epochs!r}, "
                             f"split={split!r}; available (epochs, split): {allowed}")
        cands.sort(key=lambda f: (f.split != "val", -f.epochs))
        return cands[0]

    def _check_dataset(self, dataset: str | None) -> str:
        if dataset is None:
            return "cifar10"
        if dataset not in self.datasets:
            raise ValueError(f"unknown dataset {dataset!r} for {self.name}; "
                             f"available: {self.datasets}")
        return dataset


BENCHMARKS: Registry[TabularBenchmark] = Registry("benchmark")


def register_benchmark(name: str
                       ) -> Callable[[type[TabularBenchmark]], type[TabularBenchmark]]:
    """Class decorator adding a tabular benchmark under ``name`` (equal to the class's
    ``name``): ``@register_benchmark("nb201")``."""
    return BENCHMARKS.register(name)


def list_benchmarks() -> list[str]:
    """Names of the registered tabular benchmarks, sorted (each one :func:`get_benchmark` loads)."""
    return BENCHMARKS.names()


def get_benchmark(name: str, **kwargs: Any) -> TabularBenchmark:
    """A newly loaded tabular benchmark: 'nb101' (NAS-Bench-101, 20k cells), 'nb101_1k' (its
    first 1,000), 'nb201' (NAS-Bench-201) or 'nb201_curves' (cells 0-199, every epoch).

    ``kwargs`` go to its class (e.g. nb201's ``cost_model``); ValueError naming the registered
    benchmarks when ``name`` is not one of them."""
    return BENCHMARKS.create(name, **kwargs)
