"""A backend seen through a candidate pool: every method of one benchmark seed draws from the
same cells (and none from the cells a predictor was fitted on), sharing one real backend."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from workbench._checks import check_int
from workbench.search._base import Backend, Evaluation
from workbench.spaces import RngLike, as_rng


class PoolBackend(Backend):
    """``backend`` restricted to the cells of ``pool`` (None: all of its cells) minus those of
    ``exclude``: ``sample`` draws only there and ``contains`` says whether a cell is there;
    evaluation is the wrapped backend's, so searches on several views share its training."""

    def __init__(self, backend: Backend, pool: Iterable[Any] | None = None,
                 exclude: Iterable[Any] = ()) -> None:
        if not isinstance(backend, Backend):
            raise ValueError(f"backend must be a workbench.search Backend, got {backend!r}")
        self.backend = backend
        self.space = backend.space
        self.slow = backend.slow
        self.budget_unit = backend.budget_unit
        self.cost_unit = backend.cost_unit
        self.excluded = frozenset(backend.cell_id(backend.resolve(c)) for c in exclude)
        self.pool: list[Any] | None = None
        if pool is not None:
            cells = [backend.resolve(c) for c in pool]
            ids = [backend.cell_id(c) for c in cells]
            if len(set(ids)) != len(ids):
                dup = sorted({k for k in ids if ids.count(k) > 1})
                raise ValueError(f"pool holds duplicate cells: {dup[:5]}")
            inside = [k for k in ids if k in self.excluded]
            if inside:
                raise ValueError(f"pool and exclude overlap: {inside[:5]}")
            if not cells:
                raise ValueError("pool must not be empty")
            self.pool = cells
            self._ids = ids
            self._id_set = frozenset(ids)

    def __repr__(self) -> str:
        size = "all cells" if self.pool is None else f"{len(self.pool)} cells"
        return f"PoolBackend({self.backend!r}, {size}, {len(self.excluded)} excluded)"

    def evaluate(self, cell: Any, budget: float, previous: Evaluation | None = None
                 ) -> Evaluation:
        return self.backend.evaluate(cell, budget, previous=previous)

    def evaluate_many(self, requests: Sequence[tuple[Any, float, Evaluation | None]]
                      ) -> list[Evaluation]:
        return self.backend.evaluate_many(requests)

    def fidelity(self, budget: float) -> float:
        return self.backend.fidelity(budget)

    def sample(self, n: int, rng: RngLike = None, exclude: Collection[str] = ()) -> list[Any]:
        """``n`` distinct random cells of the pool, none excluded here or by ``exclude``."""
        taken = set(self.excluded) | {str(e) for e in exclude}
        if self.pool is None:
            return self.backend.sample(n, rng, exclude=taken)
        n = check_int("n", n, minimum=0)
        free = [c for c, k in zip(self.pool, self._ids, strict=True) if k not in taken]
        if n > len(free):
            raise ValueError(f"n={n!r}: only {len(free)} cells of the pool of {len(self.pool)} "
                             "are left")
        picks = as_rng(rng).choice(len(free), size=n, replace=False)
        return [free[int(i)] for i in picks]

    def resolve(self, cell: Any) -> Any:
        return self.backend.resolve(cell)

    def contains(self, cell: Any) -> bool:
        try:
            if not self.backend.contains(cell):
                return False
            key = self.backend.cell_id(self.backend.resolve(cell))
        except ValueError:  # e.g. a mutant an NB101 table does not hold
            return False
        return key not in self.excluded and (self.pool is None or key in self._id_set)

    def cell_id(self, cell: Any) -> str:
        return self.backend.cell_id(cell)

    @property
    def max_budget(self) -> float:
        return self.backend.max_budget

    @property
    def min_budget(self) -> float:
        return self.backend.min_budget

    def format(self, cell: Any) -> str:
        return self.backend.format(cell)

    def best_final(self) -> float:
        """The wrapped backend's reference (the whole table's best), not the pool's."""
        return self.backend.best_final()
