"""A backend seen through a candidate pool: every method of one benchmark seed draws from the
same cells (and none from the cells a predictor was fitted on), sharing one real backend."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from workbench.search._base import Backend, Evaluation
from workbench.search._candidates import CandidatePool, PooledBackend, SubsetPool


class PoolBackend(PooledBackend):
    """``backend`` with its cells kept to ``pool`` minus ``exclude``: ``sample`` draws only
    there, ``contains`` and ``resolve`` accept only those cells; evaluation is the wrapped
    backend's, so searches on several views share its training.

    ``pool``: the cells to keep (None: all of ``backend``'s) or a :class:`CandidatePool` to
    draw from instead. ``candidates`` is the resulting pool (a :class:`SubsetPool` unless a
    pool was passed without ``exclude``).
    """

    def __init__(self, backend: Backend, pool: Iterable[Any] | CandidatePool | None = None,
                 exclude: Iterable[Any] = ()) -> None:
        if not isinstance(backend, Backend):
            raise ValueError(f"backend must be a workbench.search Backend, got {backend!r}")
        self.backend = backend
        self.space = backend.space
        self.slow = backend.slow
        self.budget_unit = backend.budget_unit
        self.cost_unit = backend.cost_unit
        exclude = list(exclude)
        if isinstance(pool, CandidatePool):
            self.candidates: CandidatePool = (SubsetPool(pool, None, exclude) if exclude
                                              else pool)
        else:
            self.candidates = SubsetPool(backend, pool, exclude)

    def __repr__(self) -> str:
        return f"PoolBackend({self.backend!r}, {self.candidates!r})"

    def evaluate(self, cell: Any, budget: float, previous: Evaluation | None = None
                 ) -> Evaluation:
        return self.backend.evaluate(cell, budget, previous=previous)

    def evaluate_many(self, requests: Sequence[tuple[Any, float, Evaluation | None]]
                      ) -> list[Evaluation]:
        return self.backend.evaluate_many(requests)

    def fidelity(self, budget: float) -> float:
        return self.backend.fidelity(budget)

    @property
    def max_budget(self) -> float:
        return self.backend.max_budget

    @property
    def min_budget(self) -> float:
        return self.backend.min_budget

    def best_final(self) -> float:
        """The wrapped backend's reference (the whole table's best), not the pool's."""
        return self.backend.best_final()
