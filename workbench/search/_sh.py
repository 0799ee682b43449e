"""Successive Halving (Jamieson & Talwalkar 2016), one rung per ``step()``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from workbench._checks import check_int
from workbench.search._base import (
    _EPS,
    Backend,
    Evaluation,
    RankerLike,
    Search,
    check_budgets,
    check_eta,
    rank_order,
    register_search,
)
from workbench.search._constraint import CostConstraint, constrained
from workbench.spaces import RngLike

RUNG_COLUMNS = ("rung", "candidate", "cell", "budget", "fidelity", "score", "ranker_score",
                "rank", "decision", "final")  # final: the table's, for analysis only


def keep_count(n: int, eta: float) -> int:
    """Survivors of a rung of ``n``: floor(n / eta), at least 1."""
    return max(1, math.floor(n / eta + _EPS))


def sh_schedule(n: int, min_budget: float, max_budget: float, eta: float = 3) -> pd.DataFrame:
    """The rungs of one SH run: budget min*eta^i capped at max (the last rung is at max), the
    candidates evaluated and the number kept (floor(n_i/eta), at least 1)."""
    n = check_int("n", n, minimum=1)
    eta = check_eta(eta)
    lo, hi = check_budgets(min_budget, max_budget)
    rows, i, size, b = [], 0, n, float(lo)
    while True:
        last = b >= hi * (1 - _EPS)
        keep = keep_count(size, eta)
        rows.append({"rung": i, "budget": hi if last else b, "n": size, "keep": keep})
        if last:
            return pd.DataFrame(rows)
        size, i, b = keep, i + 1, b * eta


@register_search("sh")
class SuccessiveHalving(Search):
    """Evaluate ``n`` candidates at ``min_budget``, keep the top 1/eta by the ranker, multiply the
    budget by eta, repeat until a rung at ``max_budget``; one ``step()`` = one rung.

    Ties are broken by the original candidate order (the order sampled or given). Survivors are
    continued (``resume=True``): a promotion is charged only the extra epochs. Budgets default
    to the backend's smallest and largest; ``candidates`` (cells, strings or ids) replace sampling.
    """

    name: ClassVar[str] = "sh"
    label = "SH"
    extra_columns: ClassVar[tuple[str, ...]] = ("rung", "rank")

    def __init__(self, backend: Backend, n: int | None = None, min_budget: float | None = None,
                 max_budget: float | None = None, eta: float = 3, *, seed: RngLike = 0,
                 ranker: RankerLike = "observed", candidates: Sequence[Any] | None = None,
                 resume: bool = True,
                 constraint: CostConstraint | None = None) -> None:
        self.constraint = constraint
        backend = constrained(backend, constraint)  # only feasible cells from here on
        super().__init__(backend, seed=seed, ranker=ranker)
        self.eta = check_eta(eta)
        min_budget = backend.min_budget if min_budget is None else min_budget
        max_budget = backend.max_budget if max_budget is None else max_budget
        self.min_budget, self.max_budget = check_budgets(min_budget, max_budget)
        if candidates is not None:
            candidates = list(candidates)
            if not candidates:
                raise ValueError(f"candidates must not be empty, got {candidates!r}")
            if n is not None and n != len(candidates):
                raise ValueError(f"n={n!r} disagrees with the {len(candidates)} candidates given")
            n = len(candidates)
        if n is None:
            raise ValueError("give n (the number of candidates) or candidates")
        self.n = check_int("n", n, minimum=1)
        backend.fidelity(self.max_budget)  # names the budget as given when it is not allowed
        self._schedule = sh_schedule(self.n, self.min_budget, self.max_budget, self.eta)
        self._schedule["fidelity"] = [backend.fidelity(b) for b in self._schedule["budget"]]
        self.resume = bool(resume)
        if candidates is None:
            cells = backend.sample(self.n, self.rng)
        else:
            cells = [backend.resolve(c) for c in candidates]
            ids = [backend.cell_id(c) for c in cells]
            dup = sorted({k for k in ids if ids.count(k) > 1})
            if dup:
                raise ValueError(f"candidates contain duplicates: {dup}")
        self.candidates: list[Any] = cells
        self._survivors: list[int] = list(range(self.n))  # positions in self.candidates
        self._last: dict[int, Evaluation] = {}
        self._rungs: list[pd.DataFrame] = []
        self.rung = 0  # the next rung to evaluate

    def schedule(self) -> pd.DataFrame:
        """The planned rungs: budget, fidelity actually run, candidates and survivors."""
        return self._schedule.copy()

    @property
    def n_rungs(self) -> int:
        """Number of rungs in this run."""
        return len(self._schedule)

    @property
    def done(self) -> bool:
        return self.rung >= self.n_rungs

    def _step(self) -> None:
        plan = self._schedule.iloc[self.rung]
        budget = float(plan["budget"])
        pos = list(self._survivors)
        cells = [self.candidates[p] for p in pos]
        prev = [self._last.get(p) if self.resume else None for p in pos]
        results, scores = self._evaluate(cells, budget, prev)
        order = rank_order(scores)
        keep = keep_count(len(pos), self.eta)
        ranks = np.empty(len(pos), dtype=int)
        ranks[order] = np.arange(1, len(pos) + 1)
        table = []
        for j, (p, res) in enumerate(zip(pos, results, strict=True)):
            decision = "kept" if ranks[j] <= keep else "dropped"
            row = self._log(res, scores[j], decision, rung=self.rung, rank=int(ranks[j]))
            table.append({k: row[k] for k in RUNG_COLUMNS})
            self._last[p] = res
        self._rungs.append(pd.DataFrame(table, columns=list(RUNG_COLUMNS)))
        self._survivors = [p for j, p in enumerate(pos) if ranks[j] <= keep]
        self.rung += 1

    def rung_table(self, rung: int | None = None) -> pd.DataFrame:
        """The table of an evaluated rung (default: the latest): scores, rank, kept/dropped."""
        if not self._rungs:
            raise RuntimeError("no rung has been evaluated yet")
        i = len(self._rungs) - 1 if rung is None else rung
        if not 0 <= i < len(self._rungs):
            raise ValueError(f"rung {rung!r} has not been evaluated; "
                             f"rungs 0..{len(self._rungs) - 1}")
        return self._rungs[i].copy()

    def table(self) -> pd.DataFrame:
        """The current rung: the latest evaluated one, or the pending candidates before rung 0."""
        if self._rungs:
            return self.rung_table()
        b = float(self._schedule["budget"].iloc[0])
        return pd.DataFrame([{"rung": 0, "candidate": self.backend.cell_id(c),
                              "cell": self.backend.format(c), "budget": b,
                              "fidelity": float(self.backend.fidelity(b)), "score": np.nan,
                              "ranker_score": np.nan, "rank": pd.NA, "decision": "pending",
                              "final": np.nan}
                             for c in self.candidates], columns=list(RUNG_COLUMNS))
