"""Local search (White, Nolen & Savani, "Exploring the loss landscape in neural architecture
search", UAI 2021): hill climbing over one-edit neighbourhoods with random restarts, a baseline
that is hard to beat on the NAS-Bench tables."""

from __future__ import annotations

import math
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

_TABLE_COLUMNS = ["role", "candidate", "cell", "score", "ranker_score", "final"]


@register_search("local_search")
class LocalSearch(OpenEndedSearch):
    """Evaluate ``n_init`` random cells (one per step) and start from the best; then each step
    evaluates one not yet evaluated neighbour of the current cell (``space.neighbors``: every
    cell one edit away, in a seeded random order). Once the neighbourhood is used up, move to
    its best cell if that beats the current one (strictly, by the ranker's score), else the
    current cell is a local optimum and the search restarts from a new random cell.

    ``first_improvement=True`` moves as soon as a neighbour beats the current cell instead of
    after the whole neighbourhood. Neighbours outside the backend (not in the table, or
    infeasible under ``constraint``) are skipped; neighbours evaluated earlier count with their
    known score and are not trained again. Evaluations are at ``budget`` (default the backend's
    largest). Done once every cell has been evaluated, or after ``max_evaluations``.
    History columns: ``center`` (the cell whose neighbourhood is explored; on a restart, the
    local optimum left) and ``restart`` (0 for the first climb, then one more per restart).
    """

    name: ClassVar[str] = "local_search"
    label = "LS"
    extra_columns: ClassVar[tuple[str, ...]] = ("center", "restart")

    def __init__(self, backend: Backend, budget: float | None = None, n_init: int = 10, *,
                 first_improvement: bool = False, seed: RngLike = 0,
                 ranker: RankerLike = "observed", max_evaluations: int | None = None,
                 constraint: CostConstraint | None = None) -> None:
        super().__init__(backend, budget, seed=seed, ranker=ranker,
                         max_evaluations=max_evaluations, constraint=constraint)
        backend = self.backend
        self.n_init = check_int("n_init", n_init, minimum=1)
        if not isinstance(first_improvement, bool):
            raise ValueError(f"first_improvement must be True or False, got "
                             f"{first_improvement!r}")
        self.first_improvement = first_improvement
        try:
            backend.space.neighbors(backend.space.sample(0))
        except NotImplementedError:
            raise ValueError(f"local search needs a space that lists a cell's neighbours; "
                             f"{backend.space.name!r} does not") from None
        # id -> (evaluation, ranker score, position in the history)
        self._known: dict[str, tuple[Evaluation, float, int]] = {}
        self._center: str | None = None
        self._neighbourhood: list[tuple[str, Any]] = []  # (id, cell) of the centre's neighbours
        self._queue: list[Any] = []  # neighbours not yet looked at, next last
        self._n_initial = 0
        self.restarts = 0
        self.moves = 0

    @property
    def center(self) -> Any | None:
        """The cell whose neighbourhood is being explored (None during the initial sample)."""
        return None if self._center is None else self._known[self._center][0].cell

    # -- internals ----------------------------------------------------------------------------
    def _key(self, cid: str) -> tuple[float, int]:
        """Ranking key of an evaluated cell: higher score first, then the earlier evaluation."""
        _, s, pos = self._known[cid]
        return (-math.inf if math.isnan(s) else s, -pos)

    def _evaluate_one(self, cell: Any, decision: str) -> str:
        (res,), (score,) = self._evaluate([cell], self.budget)
        cid = str(res.cell_id)
        self._known[cid] = (res, float(score), len(self._rows))
        self._log(res, score, decision, center=self._center, restart=self.restarts)
        return cid

    def _set_center(self, cid: str) -> None:
        """Make ``cid`` the current cell and queue its neighbours in the backend, shuffled."""
        self._center = cid
        backend, seen = self.backend, {cid}
        neighbours = []
        for cell in backend.space.neighbors(self._known[cid][0].cell):
            if not backend.contains(cell):
                continue
            cell = backend.resolve(cell)
            nid = str(backend.cell_id(cell))
            if nid not in seen:
                seen.add(nid)
                neighbours.append(cell)
        self._neighbourhood = [(str(backend.cell_id(c)), c) for c in neighbours]
        order = self.rng.permutation(len(neighbours))
        self._queue = [neighbours[int(i)] for i in order[::-1]]

    def _step(self) -> None:
        if self._center is None:  # the initial random sample
            cell = self._new_cell(self._known.keys())
            if cell is None:
                return
            self._evaluate_one(cell, "initial")
            self._n_initial += 1
            if self._n_initial >= self.n_init:
                self._set_center(max(self._known, key=self._key))
            return
        while True:
            while self._queue:
                cell = self._queue.pop()
                nid = str(self.backend.cell_id(cell))
                trained = nid not in self._known  # evaluated before: its score counts as is
                if trained:
                    self._evaluate_one(cell, "neighbor")
                if self.first_improvement and self._key(nid)[0] > self._key(self._center)[0]:
                    self.moves += 1
                    self._set_center(nid)
                if trained:
                    return
            scored = [n for n, _ in self._neighbourhood if n in self._known]
            best = max(scored, key=self._key, default=None)
            if best is not None and self._key(best)[0] > self._key(self._center)[0]:
                self.moves += 1
                self._set_center(best)
                continue
            cell = self._new_cell(self._known.keys())  # a local optimum: start again elsewhere
            if cell is None:
                return
            self.restarts += 1  # logged with the optimum it leaves as its centre
            self._set_center(self._evaluate_one(cell, "restart"))
            return

    def table(self) -> pd.DataFrame:
        """The current cell, then its neighbourhood: the evaluated neighbours best first, then
        the pending ones (empty during the initial sample)."""
        if self._center is None:
            return pd.DataFrame(columns=_TABLE_COLUMNS)
        rows = []
        center = self._known[self._center][0].cell
        for role, cid, cell in [("center", self._center, center)] + [
                ("neighbor", n, c) for n, c in self._neighbourhood]:
            row = {"role": role, "candidate": cid, "cell": self.backend.format(cell),
                   "score": math.nan, "ranker_score": math.nan, "final": math.nan}
            if cid in self._known:
                ev, s, _ = self._known[cid]
                row |= {"score": ev.score, "ranker_score": s, "final": ev.final}
            else:
                row["role"] = "pending"
            rows.append(row)
        order = {"center": 0, "neighbor": 1, "pending": 2}
        rows[1:] = sorted(rows[1:], key=lambda r: (order[r["role"]], -np.nan_to_num(
            r["ranker_score"], nan=-np.inf)))
        return pd.DataFrame(rows, columns=_TABLE_COLUMNS)
