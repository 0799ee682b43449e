"""The tabular backend: evaluations looked up in a bundled benchmark table, costs simulated."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from typing import Any

import numpy as np
import pandas as pd

from workbench.benchmarks import TabularBenchmark, get_benchmark
from workbench.search._base import _EPS, Backend, Evaluation, check_budget
from workbench.spaces import RngLike, as_rng


class TabularBackend(Backend):
    """Evaluate cells by table lookup: score = accuracy (%) at the budget, cost = simulated s.

    Fidelity mapping: a budget between measured epochs uses the nearest measured fidelity *at or
    above* it (``rounding="up"``, e.g. NB201 36 → 200 epochs), so a search never sees a result it
    did not pay for; ``rounding="exact"`` raises instead. Budgets above the largest measured one
    raise ValueError. The score uses the validation split where the table has one (``split``).
    Promotion (``previous=``) charges ``cost(new) - cost(old)``: a real run would continue.
    """

    def __init__(self, benchmark: TabularBenchmark | str, dataset: str = "cifar10",
                 fidelities: Iterable[int] | None = None, *, split: str | None = None,
                 rounding: str = "up") -> None:
        self.benchmark = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
        self.dataset = dataset
        self.space = self.benchmark.space
        measured = self.benchmark.epochs(dataset)  # validates the dataset
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
        self._columns = {e: self.benchmark.fidelity(dataset, e, split) for e in self.fidelities}
        table = self.benchmark.table()
        self._ids = table["cell_id"].astype(str).to_numpy()
        self._strings = table["cell"].astype(str).to_numpy()
        self._pos = {k: i for i, k in enumerate(self._ids)}
        self._scores = {e: self.benchmark.all_accuracies(e, dataset, f.split).to_numpy(float)
                        for e, f in self._columns.items()}
        self._final = self.benchmark.all_accuracies(dataset=dataset).to_numpy(float)
        self._cost_cache: dict[tuple[str, int], float] = {}
        # Parsed table cells by position, and ids by cell: an NB101 id is a graph hash that a
        # cell object computes once, so reusing the objects makes repeated lookups cheap.
        self._objects: dict[int, Any] = {}
        self._id_cache: dict[Any, str] = {}

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

    # -- cells --------------------------------------------------------------------------------
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

    def _position(self, cell: Any) -> int:
        try:
            key = self.cell_id(cell)
        except ValueError as exc:
            raise ValueError(f"cannot read cell {cell!r}: {exc}") from None
        pos = self._pos.get(key)
        if pos is None:
            raise ValueError(f"cell {cell!s} (id {key!r}) is not in the {self.benchmark.name} "
                             f"table of {len(self._ids)} cells")
        return pos

    def resolve(self, cell: Any) -> Any:
        """The table's cell object for a cell, cell string or id (ValueError if not in it)."""
        return self._cell_at(self._position(cell))

    def format(self, cell: Any) -> str:
        return str(self._strings[self._position(cell)])

    def sample(self, n: int, rng: RngLike = None, exclude: Collection[str] = ()) -> list[Any]:
        """``n`` distinct table cells drawn uniformly, none of whose ids is in ``exclude``."""
        gen = as_rng(rng)
        taken = exclude if isinstance(exclude, (set, frozenset)) else {str(e) for e in exclude}
        ok = not isinstance(n, bool) and isinstance(n, (int, np.integer)) and n >= 0
        if not ok or n > len(self._ids) - len(taken):  # only then count the excluded exactly
            free = len(self._ids) - sum(1 for e in taken if e in self._pos)
            if not ok or n > free:
                raise ValueError(f"n must be an int in 0..{free} (cells left in the table), "
                                 f"got {n!r}")
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

    def _cost(self, cell_id: str, epochs: int) -> float:
        key = (cell_id, epochs)
        if key not in self._cost_cache:
            # The benchmark's cost hook on the raw row: the same number as the public
            # ``benchmark.cost(cell_id, epochs, dataset)``, without its slower row lookup.
            row = self.benchmark.raw.iloc[self._pos[cell_id]]
            self._cost_cache[key] = float(self.benchmark._cost_row(row, float(epochs),
                                                                   self.dataset))
        return self._cost_cache[key]

    def evaluate(self, cell: Any, budget: float, previous: Evaluation | None = None
                 ) -> Evaluation:
        """Look ``cell`` up at ``budget`` epochs; with ``previous`` charge only the extra epochs."""
        fid = self.fidelity(budget)
        pos = self._position(cell)
        cid = str(self._ids[pos])
        full = self._cost(cid, fid)
        cost = full
        if previous is not None:
            if previous.cell_id != cid:
                raise ValueError(f"cannot continue the run of {previous.cell_id!r} as {cid!r}")
            if previous.fidelity > fid:
                raise ValueError(f"cannot continue from {previous.fidelity} to fewer epochs "
                                 f"({fid}, budget {budget!r})")
            cost = max(0.0, full - self._cost(cid, int(previous.fidelity)))
        return Evaluation(cell=cell, cell_id=cid, budget=float(budget), fidelity=fid,
                          score=float(self._scores[fid][pos]), cost=cost, full_cost=full,
                          final=float(self._final[pos]),
                          resumed_from=None if previous is None else previous.fidelity)
