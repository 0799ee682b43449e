"""Hyperband (Li et al. 2018): Successive Halving brackets trading candidates for budget."""

from __future__ import annotations

import math
from typing import ClassVar

import pandas as pd

from workbench._checks import check_int
from workbench.search._base import (
    _EPS,
    Backend,
    RankerLike,
    Search,
    check_budgets,
    check_eta,
    register_search,
)
from workbench.search._constraint import CostConstraint, constrained
from workbench.search._sh import SuccessiveHalving, sh_schedule
from workbench.spaces import RngLike


def hyperband_brackets(min_budget: float, max_budget: float, eta: float = 3) -> pd.DataFrame:
    """Li et al.'s brackets, most exploratory first: s_max = floor(log_eta(R/r)); bracket s has
    n = ceil((s_max+1)/(s+1) * eta^s) candidates starting at r_s = R * eta^-s epochs."""
    eta = check_eta(eta)
    lo, hi = check_budgets(min_budget, max_budget)
    ratio = hi / lo
    if not math.isfinite(ratio):
        raise ValueError(f"max_budget / min_budget is too large: {max_budget!r} / {min_budget!r}")
    s_max, power = 0, float(eta)
    while power <= ratio * (1 + _EPS):
        s_max, power = s_max + 1, power * eta
    rows = []
    for s in range(s_max, -1, -1):
        if isinstance(eta, int):  # exact: ceil((s_max+1) * eta^s / (s+1))
            n = -(-(s_max + 1) * eta**s // (s + 1))
        else:
            n = math.ceil((s_max + 1) / (s + 1) * eta**s - _EPS)
        r = hi / float(eta) ** s
        sched = sh_schedule(n, r, hi, eta)
        rows.append({"bracket": s, "n": n, "r": r, "r_units": r / lo, "rungs": len(sched),
                     "n_per_rung": sched["n"].tolist(), "budgets": sched["budget"].tolist(),
                     "total_units": float((sched["n"] * sched["budget"]).sum() / lo)})
    return pd.DataFrame(rows)


@register_search("hyperband")
class Hyperband(Search):
    """Run the SH brackets s = s_max..0 in turn; one ``step()`` = one rung of the current one.

    Each bracket samples fresh candidates from this search's generator; ``repeats`` runs the
    whole set of brackets several times (None: forever, so ``run`` needs a budget). Budgets
    default to the backend's smallest and largest.
    """

    name: ClassVar[str] = "hyperband"
    label = "Hyperband"
    extra_columns: ClassVar[tuple[str, ...]] = ("bracket", "rung", "rank")

    def __init__(self, backend: Backend, min_budget: float | None = None,
                 max_budget: float | None = None, eta: float = 3, *, seed: RngLike = 0,
                 ranker: RankerLike = "observed", repeats: int | None = 1,
                 resume: bool = True, constraint: CostConstraint | None = None) -> None:
        self.constraint = constraint
        backend = constrained(backend, constraint)  # only feasible cells from here on
        super().__init__(backend, seed=seed, ranker=ranker)
        self.eta = check_eta(eta)
        min_budget = backend.min_budget if min_budget is None else min_budget
        max_budget = backend.max_budget if max_budget is None else max_budget
        self.min_budget, self.max_budget = check_budgets(min_budget, max_budget)
        self.repeats = check_int("repeats", repeats, minimum=1, allow_none=True)
        self.resume = resume
        backend.fidelity(self.max_budget)  # names the budget as given when it is not allowed
        self._brackets = hyperband_brackets(self.min_budget, self.max_budget, self.eta)
        for budgets in self._brackets["budgets"]:
            for b in budgets:
                backend.fidelity(b)  # every rung budget must be allowed
        self._index = 0  # position in the bracket list, over all repeats
        self.current: SuccessiveHalving | None = None

    def brackets(self) -> pd.DataFrame:
        """The brackets (s, n, r, rungs, survivors per rung, budgets) and their status."""
        out = self._brackets.copy()
        k = len(out)
        cur = self._index % k if (self.repeats is None or self._index < k * self.repeats) else k
        done_all = self.done
        started = self.current is not None
        running = "done" if self.current is not None and self.current.done else "running"
        out["status"] = ["done" if done_all or i < cur else
                         (running if i == cur and started else "pending") for i in range(k)]
        return out

    @property
    def finite(self) -> bool:
        return self.repeats is not None

    @property
    def done(self) -> bool:
        if self.repeats is None:
            return False
        total = len(self._brackets) * self.repeats
        return self._index >= total or (self._index == total - 1 and self.current is not None
                                        and self.current.done)

    def _step(self) -> None:
        if self.current is None or self.current.done:
            if self.current is not None:
                self._index += 1
            b = self._brackets.iloc[self._index % len(self._brackets)]
            self.current = SuccessiveHalving(
                self.backend, n=int(b["n"]), min_budget=float(b["r"]),
                max_budget=self.max_budget, eta=self.eta, ranker=self.ranker, seed=self.rng,
                resume=self.resume)
        bracket = int(self._brackets["bracket"].iloc[self._index % len(self._brackets)])
        for row, res in self.current.step_rows():
            self._adopt(row, res, bracket=bracket)

    def table(self) -> pd.DataFrame:
        """The current bracket's current rung (see ``SuccessiveHalving.table``)."""
        if self.current is None:
            return self.brackets()
        out = self.current.table()
        out.insert(0, "bracket", int(self._brackets["bracket"].iloc[
            self._index % len(self._brackets)]))
        return out
