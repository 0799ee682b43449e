"""The base of searches that could go on until every cell is evaluated (random search,
evolution, local search, Optuna samplers): one budget for every evaluation, an optional cost
constraint, ``max_evaluations``, and "done" once no new cell is left."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from workbench._checks import check_int
from workbench.search._base import Backend, RankerLike, Search, check_budget
from workbench.search._constraint import CostConstraint, constrained
from workbench.spaces import RngLike


class OpenEndedSearch(Search):
    """Evaluations at ``budget`` (default the backend's largest) on the backend restricted to
    ``constraint``'s feasible cells; ends after ``max_evaluations`` evaluations when that is
    set (None: only limits passed to ``run`` stop it), or once ``_exhausted`` says no new cell
    is left."""

    def __init__(self, backend: Backend, budget: float | None = None, *, seed: RngLike = 0,
                 ranker: RankerLike = "observed", max_evaluations: int | None = None,
                 constraint: CostConstraint | None = None) -> None:
        self.constraint = constraint
        backend = constrained(backend, constraint)  # only feasible cells from here on
        super().__init__(backend, seed=seed, ranker=ranker)
        self.budget = check_budget("budget", backend.max_budget if budget is None else budget)
        backend.fidelity(self.budget)  # validates against the backend
        self.max_evaluations = check_int("max_evaluations", max_evaluations, minimum=1,
                                         allow_none=True)
        self._exhausted = False

    @property
    def finite(self) -> bool:
        return self.max_evaluations is not None

    @property
    def done(self) -> bool:
        return self._exhausted or (self.max_evaluations is not None
                                   and len(self._rows) >= self.max_evaluations)

    def _new_cell(self, exclude: Collection[str]) -> Any | None:
        """A random cell whose id is not in ``exclude``; None (and the search done) when every
        cell is excluded."""
        try:
            return self.backend.sample(1, self.rng, exclude=exclude)[0]
        except ValueError:
            self._exhausted = True
            return None
