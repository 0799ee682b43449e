"""The tabular backend: evaluations looked up in a bundled benchmark table, costs simulated;
and the pool of a table's cells (what table-backed backends sample from)."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from typing import Any

import numpy as np
import pandas as pd

from workbench._checks import check_int, is_int
from workbench.benchmarks import CellNotInTableError, TabularBenchmark, get_benchmark
from workbench.search._base import _EPS, Evaluation, check_budget
from workbench.search._candidates import CandidatePool, PooledBackend
from workbench.spaces import RngLike, as_rng


class TablePool(CandidatePool):
    """The cells of a benchmark table: drawn uniformly, identified by table id, resolved to
    cached cell objects (an NB101 id is a graph hash that a cell object computes once, so
    reusing the objects makes repeated lookups cheap)."""

    def __init__(self, benchmark: TabularBenchmark | str) -> None:
        self.benchmark = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
        self.space = self.benchmark.space
        table = self.benchmark.table()
        self._ids = table["cell_id"].astype(str).to_numpy()
        self._strings = table["cell"].astype(str).to_numpy()
        self._pos = {k: i for i, k in enumerate(self._ids)}
        self._objects: dict[int, Any] = {}  # parsed table cells by position
        self._id_cache: dict[Any, str] = {}  # ids by cell

    def __repr__(self) -> str:
        return f"TablePool({self.benchmark.name!r}, {len(self)} cells)"

    def __len__(self) -> int:
        return len(self._ids)

    def cell_id(self, cell: Any) -> str:
        try:
            return self._id_cache[cell]
        except (KeyError, TypeError):  # not seen yet, or unhashable
            pass
        key = self.benchmark.cell_id(cell)
        try:
            if len(self._id_cache) > 500_000:
                self._id_cache.clear()
            self._id_cache[cell] = key
        except TypeError:
            pass
        return key

    def id_at(self, pos: int) -> str:
        """The table id of row ``pos``."""
        return str(self._ids[pos])

    def _cell_at(self, pos: int) -> Any:
        """The (cached) cell object of table row ``pos``."""
        cell = self._objects.get(pos)
        if cell is None:
            cell = self._objects[pos] = self.space.parse(self._strings[pos])
        return cell

    def contains(self, cell: Any) -> bool:
        try:
            return self.cell_id(cell) in self._pos
        except ValueError:
            return False

    def position(self, cell: Any) -> int:
        """The table row of ``cell`` (CellNotInTableError, a ValueError, if not in it)."""
        try:
            key = self.cell_id(cell)
        except ValueError as exc:
            raise ValueError(f"cannot read cell {cell!r}: {exc}") from None
        pos = self._pos.get(key)
        if pos is None:
            raise CellNotInTableError(f"cell {cell!s} (id {key!r}) is not in the "
                                      f"{self.benchmark.name} table of {len(self._ids)} cells")
        return pos

    def resolve(self, cell: Any) -> Any:
        """The table's cell object for a cell, cell string or id (CellNotInTableError, a
        ValueError, if not in it)."""
        return self._cell_at(self.position(cell))

    def format(self, cell: Any) -> str:
        return str(self._strings[self.position(cell)])

    def sample(self, n: int, rng: RngLike = None, exclude: Collection[str] = ()) -> list[Any]:
        """``n`` distinct table cells drawn uniformly, none of whose ids is in ``exclude``."""
        gen = as_rng(rng)
        taken = exclude if isinstance(exclude, (set, frozenset)) else {str(e) for e in exclude}
        if not (is_int(n) and 0 <= n <= len(self._ids) - len(taken)):
            free = len(self._ids) - sum(1 for e in taken if e in self._pos)  # counted exactly
            check_int("n (cells left in the table)", n, minimum=0, maximum=free)
        if not taken:
            picks = gen.choice(len(self._ids), size=int(n), replace=False)
        elif len(taken) * 2 > len(self._ids):  # dense exclusion: draw from the complement
            rest = np.array([i for i, k in enumerate(self._ids) if k not in taken])
            picks = rest[gen.choice(len(rest), size=int(n), replace=False)]
        else:
            out: list[int] = []
            seen = set(taken)
            while len(out) < n:
                i = int(gen.integers(len(self._ids)))
                if self._ids[i] not in seen:
                    seen.add(self._ids[i])
                    out.append(i)
            picks = np.array(out, dtype=int)
        return [self._cell_at(int(i)) for i in picks]


class TabularBackend(PooledBackend):
    """Evaluate cells by table lookup: score = accuracy (%) at the budget, cost = simulated s.

    Fidelity mapping: a budget between measured epochs uses the nearest measured fidelity *at or
    above* it (``rounding="up"``, e.g. NB201 36 → 200 epochs), so a search never sees a result it
    did not pay for; ``rounding="exact"`` raises instead. Budgets above the largest measured one
    raise ValueError. The score uses the validation split where the table has one (``split``).
    Promotion (``previous=``) charges ``cost(new) - cost(old)``: a real run would continue.
    Its cells are the table's (``candidates``, a :class:`TablePool`).
    """

    def __init__(self, benchmark: TabularBenchmark | str, dataset: str = "cifar10",
                 fidelities: Iterable[int] | None = None, *, split: str | None = None,
                 rounding: str = "up") -> None:
        self.benchmark = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
        self.dataset = dataset
        self.space = self.benchmark.space
        measured = self.benchmark.epochs(dataset=dataset)  # validates the dataset
        if fidelities is None:
            chosen = measured
        else:
            chosen = sorted({e for e in fidelities})
            bad = [e for e in chosen if e not in measured]
            if bad or not chosen:
                raise ValueError(f"fidelities {list(fidelities)!r} must be a non-empty subset of "
                                 f"the measured epochs {measured} for {dataset!r}")
        if rounding not in ("up", "exact"):
            raise ValueError(f"rounding must be 'up' or 'exact', got {rounding!r}")
        self.rounding = rounding
        self.fidelities: list[int] = [int(e) for e in chosen]
        self._columns = {e: self.benchmark.fidelity(dataset=dataset, epochs=e, split=split)
                         for e in self.fidelities}
        self.candidates: TablePool = TablePool(self.benchmark)
        self._scores = {e: self.benchmark.all_accuracies(dataset=dataset, epochs=e,
                                                     split=f.split).to_numpy(float)
                        for e, f in self._columns.items()}
        self._final = self.benchmark.all_accuracies(dataset=dataset).to_numpy(float)
        self._cost_cache: dict[tuple[int, int], float] = {}

    # -- description ----------------------------------------------------------------------------
    def describe(self) -> pd.DataFrame:
        """The fidelities a search can use: epochs, split and table column of each."""
        return pd.DataFrame([{"epochs": e, "dataset": f.dataset, "split": f.split,
                              "column": f.label} for e, f in self._columns.items()])

    def __repr__(self) -> str:
        return (f"TabularBackend({self.benchmark.name!r}, dataset={self.dataset!r}, "
                f"fidelities={self.fidelities}, rounding={self.rounding!r})")

    @property
    def max_budget(self) -> float:
        return float(self.fidelities[-1])

    @property
    def min_budget(self) -> float:
        return float(self.fidelities[0])

    def best_final(self) -> float:
        """The table's best final accuracy on this dataset (the regret reference)."""
        return float(np.nanmax(self._final))

    # -- evaluation -----------------------------------------------------------------------------
    def fidelity(self, budget: float) -> int:
        """The measured epochs used for ``budget``: the nearest at or above (``rounding="up"``)."""
        check_budget("budget", budget)
        for e in self.fidelities:
            if self.rounding == "up" and e >= budget * (1 - _EPS):
                return e
            if self.rounding == "exact" and math.isclose(e, budget, rel_tol=_EPS):
                return e
        what = ("exceeds the largest measured fidelity" if self.rounding == "up"
                else "is not a measured fidelity")
        raise ValueError(f"budget {budget!r} epochs {what} of {self.benchmark.name}/"
                         f"{self.dataset}; allowed: {self.fidelities}")

    def _cost(self, pos: int, epochs: int) -> float:
        """Simulated seconds of table row ``pos`` for ``epochs`` (cached)."""
        key = (pos, epochs)
        if key not in self._cost_cache:
            # The benchmark's cost hook on the raw row: the same number as the public
            # ``benchmark.cost(cell_id, dataset=..., epochs=...)``, without its slower row lookup.
            row = self.benchmark.raw.iloc[pos]
            self._cost_cache[key] = float(self.benchmark._cost_row(row, dataset=self.dataset,
                                                                   epochs=float(epochs)))
        return self._cost_cache[key]

    def evaluate(self, cell: Any, budget: float, previous: Evaluation | None = None
                 ) -> Evaluation:
        """Look ``cell`` up at ``budget`` epochs; with ``previous`` charge only the extra epochs."""
        fid = self.fidelity(budget)
        pos = self.candidates.position(cell)
        cid = self.candidates.id_at(pos)
        full = self._cost(pos, fid)
        cost = full
        if previous is not None:
            if previous.cell_id != cid:
                raise ValueError(f"cannot continue the run of {previous.cell_id!r} as {cid!r}")
            if previous.fidelity > fid:
                raise ValueError(f"cannot continue from {previous.fidelity} to fewer epochs "
                                 f"({fid}, budget {budget!r})")
            cost = max(0.0, full - self._cost(pos, int(previous.fidelity)))
        return Evaluation(cell=cell, cell_id=cid, budget=float(budget), fidelity=fid,
                          score=float(self._scores[fid][pos]), cost=cost, full_cost=full,
                          final=float(self._final[pos]),
                          resumed_from=None if previous is None else previous.fidelity)
