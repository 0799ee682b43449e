"""Any backend as a LayerNAS evaluator: a candidate's score and the seconds it cost."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from typing import Any

from workbench.search._base import Backend, Evaluation, check_budget


class BackendEvaluator:
    """A LayerNAS evaluator from any backend: ``ev(candidate)`` evaluates the cell
    ``to_cell(candidate)`` at ``budget`` and returns its score; ``ev.seconds(candidate)`` is
    what that cost (pass it as LayerNAS's ``eval_seconds``). A NaN score (a diverged run)
    becomes ``nan_score``, since LayerNAS needs a number."""

    def __init__(self, backend: Backend, budget: float,
                 to_cell: Callable[[Any], Any] | None = None, *, nan_score: float = 0.0) -> None:
        if not isinstance(backend, Backend):
            raise ValueError(f"backend must be a workbench.search Backend, got {backend!r}")
        if to_cell is not None and not callable(to_cell):
            raise ValueError(f"to_cell must be callable or None, got {to_cell!r}")
        backend.fidelity(check_budget("budget", budget))  # names a budget it cannot run
        self.backend = backend
        self.budget = budget
        self.to_cell = to_cell
        self.nan_score = float(nan_score)
        self.evaluations: dict[Hashable, Evaluation] = {}

    def __call__(self, candidate: Hashable) -> float:
        cell = candidate if self.to_cell is None else self.to_cell(candidate)
        ev = self.backend.evaluate(self.backend.resolve(cell), self.budget)
        self.evaluations[candidate] = ev
        return self.nan_score if math.isnan(ev.score) else float(ev.score)

    def seconds(self, candidate: Hashable) -> float:
        """Seconds charged for ``candidate`` (0 if it was never evaluated here)."""
        ev = self.evaluations.get(candidate)
        return 0.0 if ev is None else float(ev.cost)

    def truth(self, candidate: Hashable) -> float:
        """The evaluated candidate's table final accuracy (analysis only; NaN if unknown)."""
        ev = self.evaluations.get(candidate)
        return math.nan if ev is None else float(ev.final)
