"""Regularized (aging) evolution (Real et al. 2019) on a backend's cells."""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from workbench._checks import check_int
from workbench.search._base import (
    Backend,
    Evaluation,
    RankerLike,
    register_search,
)
from workbench.search._constraint import CostConstraint
from workbench.search._open_ended import OpenEndedSearch
from workbench.spaces import RngLike


@register_search("evolution")
class RegularizedEvolution(OpenEndedSearch):
    """Fill a population with random cells (one per step), then each step is one cycle: sample
    ``sample_size`` members, mutate the best (ties: the oldest), add the child, drop the oldest.

    A child must be evaluable (in the table): the parent is re-mutated up to ``max_attempts``
    times, then a random table cell is used instead (decision ``"random fallback"``). On the
    NB101 1k table a mutant is rarely in the table, so expect many fallbacks there.

    ``unique=True`` never trains a cell twice: a mutant (or initial cell) already evaluated is
    re-drawn like one outside the table, so the budget goes to new cells (the paper's RE
    re-trains repeats; under a tight constraint half of its trainings can be repeats,
    ``bench/hardware.py``). The search is done once every cell has been evaluated.
    """

    name: ClassVar[str] = "evolution"
    label = "RE"
    extra_columns: ClassVar[tuple[str, ...]] = ("parent", "removed", "attempts")

    def __init__(self, backend: Backend, population: int = 20, sample_size: int = 5,
                 budget: float | None = None, *, seed: RngLike = 0,
                 ranker: RankerLike = "observed", max_evaluations: int | None = None,
                 max_attempts: int = 50, unique: bool = False,
                 constraint: CostConstraint | None = None) -> None:
        super().__init__(backend, budget, seed=seed, ranker=ranker,
                         max_evaluations=max_evaluations, constraint=constraint)
        self.population_size = check_int("population", population, minimum=1)
        self.sample_size = check_int("sample_size", sample_size, minimum=1)
        if self.sample_size > self.population_size:
            raise ValueError(f"sample_size {sample_size!r} must not exceed population "
                             f"{population!r}")
        self.max_attempts = check_int("max_attempts", max_attempts, minimum=1)
        if not isinstance(unique, bool):
            raise ValueError(f"unique must be True or False, got {unique!r}")
        self.unique = unique
        self._seen: set[str] = set()  # ids of every evaluated cell (kept for unique=True)
        # members: (evaluation, ranker score, eval index at birth), oldest first
        self.population: deque[tuple[Evaluation, float, int]] = deque()

    def _child(self, parent: Any) -> tuple[Any | None, str, int]:
        space = self.backend.space
        for attempt in range(1, self.max_attempts + 1):
            child = space.mutate(parent, self.rng)
            if self.backend.contains(child):
                cell = self.backend.resolve(child)
                if not self.unique or str(self.backend.cell_id(cell)) not in self._seen:
                    return cell, "mutant", attempt
        return self._sample(), "random fallback", self.max_attempts

    def _sample(self, exclude: set[str] | None = None) -> Any | None:
        """One random cell not in ``exclude``; with ``unique`` never an evaluated one, and None
        (the search done) when none is left."""
        try:
            return self.backend.sample(1, self.rng, exclude=self._seen if self.unique
                                       else exclude or ())[0]
        except ValueError:
            if not self.unique:
                raise
            self._exhausted = True  # every cell evaluated
            return None

    def _evaluate_one(self, cell: Any) -> tuple[Evaluation, float]:
        (res,), (score,) = self._evaluate([cell], self.budget)
        self._seen.add(str(res.cell_id))
        return res, float(score)

    def _step(self) -> None:
        born = len(self._rows)
        if len(self.population) < self.population_size:
            cell = self._sample(exclude={ev.cell_id for ev, _, _ in self.population})
            if cell is None:
                return
            res, score = self._evaluate_one(cell)
            self._log(res, score, "initial", attempts=0)
            self.population.append((res, score, born))
            return
        picks = self.rng.choice(len(self.population), size=self.sample_size, replace=False)
        members = list(self.population)
        scores = np.array([members[i][1] for i in picks], dtype=float)
        scores = np.where(np.isnan(scores), -np.inf, scores)
        best = max(range(len(picks)), key=lambda j: (scores[j], -int(picks[j])))
        parent = members[int(picks[best])][0]
        child, decision, attempts = self._child(parent.cell)
        if child is None:
            return
        res, score = self._evaluate_one(child)
        removed = self.population.popleft()
        self.population.append((res, score, born))
        self._log(res, score, decision, parent=parent.cell_id, removed=removed[0].cell_id,
                  attempts=attempts)

    def table(self) -> pd.DataFrame:
        """The current population, oldest first (the next to be removed is row 0)."""
        return pd.DataFrame([{"age_rank": i, "born": b, "candidate": ev.cell_id,
                              "cell": self.backend.format(ev.cell), "score": ev.score,
                              "ranker_score": s, "final": ev.final}
                             for i, (ev, s, b) in enumerate(self.population)],
                            columns=["age_rank", "born", "candidate", "cell", "score",
                                     "ranker_score", "final"])
