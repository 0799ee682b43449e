"""Random search: each step evaluates a batch of new uniformly random cells at one budget."""

from __future__ import annotations

from typing import ClassVar

import pandas as pd

from workbench._checks import check_int
from workbench.search._base import (
    Backend,
    RankerLike,
    rank_order,
    register_search,
)
from workbench.search._constraint import CostConstraint
from workbench.search._open_ended import OpenEndedSearch
from workbench.spaces import RngLike


@register_search("random")
class RandomSearch(OpenEndedSearch):
    """Sample ``batch`` cells never evaluated before (uniform over the backend's cells) and
    evaluate them at ``budget`` (the backend's unit, epochs or mini-batches; default its
    largest budget)."""

    name: ClassVar[str] = "random"
    label = "RS"

    def __init__(self, backend: Backend, budget: float | None = None, batch: int = 1, *,
                 seed: RngLike = 0, ranker: RankerLike = "observed",
                 max_evaluations: int | None = None,
                 constraint: CostConstraint | None = None) -> None:
        super().__init__(backend, budget, seed=seed, ranker=ranker,
                         max_evaluations=max_evaluations, constraint=constraint)
        self.batch = check_int("batch", batch, minimum=1)
        self._seen: set[str] = set()

    def _step(self) -> None:
        want = self.batch
        if self.max_evaluations is not None:
            want = min(want, self.max_evaluations - len(self._rows))
        try:
            cells = self.backend.sample(want, self.rng, exclude=self._seen)
        except ValueError:  # fewer cells left than wanted: take them one by one
            cells, taken = [], set(self._seen)
            for _ in range(want):
                try:
                    cell = self.backend.sample(1, self.rng, exclude=taken)[0]
                except ValueError:
                    break
                taken.add(self.backend.cell_id(cell))
                cells.append(cell)
            self._exhausted = True
        if not cells:
            self._exhausted = True
            return
        results, scores = self._evaluate(cells, self.budget)
        for res, s in zip(results, scores, strict=True):
            self._seen.add(res.cell_id)
            self._log(res, s, "random")

    def table(self) -> pd.DataFrame:
        """All evaluations so far, best ranker score first (ties: earliest)."""
        h = self.history
        return h.iloc[rank_order(h["ranker_score"].to_numpy())].reset_index(drop=True)
