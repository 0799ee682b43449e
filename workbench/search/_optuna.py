"""Any Optuna sampler as a search (TPE by default): the space's categorical choices
(``space.choices()``) are the study's parameters, each step asks for one cell and tells the
study its score. Needs the ``optuna`` extra."""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator
from typing import Any, ClassVar

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


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ImportError("OptunaSearch needs Optuna: pip install 'nas-workbench[optuna]'"
                          ) from None
    return optuna


@contextlib.contextmanager
def _quiet(optuna: Any) -> Iterator[None]:
    """Optuna logs every finished trial at INFO; keep it at WARNING while we ask and tell,
    and give the caller's setting back afterwards (Optuna's verbosity is process-wide)."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(before, optuna.logging.WARNING))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


@register_search("optuna")
class OptunaSearch(OpenEndedSearch):
    """Each step asks ``sampler`` (default ``optuna.samplers.TPESampler`` seeded from
    ``seed``) for the space's choices, evaluates the cell they make at ``budget`` (default the
    backend's largest) and tells the study its ranker score.

    A proposal that makes no valid cell, or a cell outside the backend (not in the table), is
    told to the study as failed and another is asked for; a cell evaluated before is told its
    known score without training it again. A table cell that breaks ``constraint`` is never
    trained: with a TPE sampler (the default) it is told as a finished trial carrying the
    constraint's relative violation (``Trial.set_constraint``, Optuna's constrained TPE,
    Watanabe & Hutter 2023), so the sampler learns where the feasible cells are instead of
    proposing infeasible ones again; other samplers are told it failed
    (``infeasible_proposals`` counts these proposals). After
    ``max_attempts`` proposals without a new cell, a random new cell is evaluated instead
    (decision ``"random fallback"``) and added to the study as a finished trial, so the sampler
    learns from it too. On the NB101 20k table most proposals are outside the table (about a
    quarter of NB101's choice assignments are valid cells, and 1 in 21 of those is in the
    table), so there it is mostly random search, and slow: every failed proposal is a trial
    the sampler reads again at each ask. (Told as constraint violations too, such proposals
    changed little: 85 % instead of 87 % random fallbacks over 150 evaluations on that table,
    at 4x the time, since TPE leaves failed trials out of its model but not finished ones.)
    ``study``: the ``optuna.Study`` (maximising).
    """

    name: ClassVar[str] = "optuna"
    label = "TPE"
    extra_columns: ClassVar[tuple[str, ...]] = ("attempts",)

    def __init__(self, backend: Backend, budget: float | None = None, sampler: Any = None, *,
                 seed: RngLike = 0, ranker: RankerLike = "observed",
                 max_evaluations: int | None = None, max_attempts: int = 20,
                 constraint: CostConstraint | None = None) -> None:
        optuna = _optuna()
        outer = backend  # the backend before the constraint restricts it
        super().__init__(backend, budget, seed=seed, ranker=ranker,
                         max_evaluations=max_evaluations, constraint=constraint)
        backend = self.backend
        self.max_attempts = check_int("max_attempts", max_attempts, minimum=1)
        if sampler is None:
            sampler = optuna.samplers.TPESampler(seed=int(self.rng.integers(2**31)))
        elif not isinstance(sampler, optuna.samplers.BaseSampler):
            raise ValueError(f"sampler must be an optuna sampler, got {sampler!r}")
        else:
            self.label = type(sampler).__name__.removesuffix("Sampler") or "optuna"
        self.sampler = sampler
        try:
            choices = backend.space.choices()
        except NotImplementedError:
            raise ValueError(f"OptunaSearch needs a space that lists its choices; "
                             f"{backend.space.name!r} does not") from None
        self._distributions = {k: optuna.distributions.CategoricalDistribution(list(v))
                               for k, v in choices.items()}
        with _quiet(optuna):
            self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self._known: dict[str, float] = {}  # id -> ranker score of every evaluated cell
        self.failed_proposals = 0  # proposals that made no cell of the backend
        self.repeated_proposals = 0  # proposals of a cell evaluated before
        self.infeasible_proposals = 0  # table cells that break the constraint (never trained)
        # How far each table cell breaks the constraint, for telling TPE (None: infeasible
        # proposals are told as failed, like cells outside the table).
        self._outer = outer
        self._violations: pd.Series | None = None
        if (constraint is not None and isinstance(sampler, optuna.samplers.TPESampler)
                and hasattr(optuna.trial.Trial, "set_constraint")):  # Optuna >= 5
            costs = constraint.values(outer)
            self._violations = pd.Series(constraint.violation(costs), index=costs.index)

    def _propose(self) -> tuple[Any, Any, int] | None:
        """(trial, cell, attempts) of the first proposal that is a new cell of the backend."""
        space, backend = self.backend.space, self.backend
        failed = _optuna().trial.TrialState.FAIL
        for attempt in range(1, self.max_attempts + 1):
            trial = self.study.ask(self._distributions)
            try:
                cell = space.from_choices(trial.params)
            except ValueError:
                cell = None
            if cell is not None and not backend.contains(cell) and self._infeasible(trial, cell):
                continue
            if cell is None or not backend.contains(cell):
                self.study.tell(trial, state=failed)
                self.failed_proposals += 1
                continue
            cell = backend.resolve(cell)
            known = self._known.get(str(backend.cell_id(cell)))
            if known is not None:
                self.study.tell(trial, known if math.isfinite(known) else None,
                                state=None if math.isfinite(known) else failed)
                self.repeated_proposals += 1
                continue
            return trial, cell, attempt
        return None

    def _infeasible(self, trial: Any, cell: Any) -> bool:
        """Tell ``trial`` (a table cell outside the constrained backend) as a finished trial
        with its relative constraint violation; False when that is not possible (no
        violations kept, or the cell is not in the table), and the caller tells it failed."""
        if self._violations is None or not self._outer.contains(cell):
            return False
        cid = str(self._outer.cell_id(self._outer.resolve(cell)))
        violation = float(self._violations.loc[cid])
        if violation == 0:
            return False  # feasible after all: not ours to decide
        # an unmeasured cost (inf) ranks after every measured one; Optuna wants a finite value
        trial.set_constraint("cost", min(violation, 1e300))
        scores = [v for v in self._known.values() if math.isfinite(v)]
        self.study.tell(trial, min(scores, default=0.0))  # any value: infeasible ranks last
        self.infeasible_proposals += 1
        return True

    def _step(self) -> None:
        optuna = _optuna()
        with _quiet(optuna):
            proposal = self._propose()
            if proposal is None:
                cell = self._new_cell(self._known.keys())
                if cell is None:  # every cell evaluated
                    return
                trial, attempts, decision = None, self.max_attempts, "random fallback"
            else:
                trial, cell, attempts = proposal
                decision = "sampled"
            (res,), (score,) = self._evaluate([cell], self.budget)
            self._known[str(res.cell_id)] = float(score)
            ok = math.isfinite(score)
            if trial is not None:
                self.study.tell(trial, float(score) if ok else None,
                                state=None if ok else optuna.trial.TrialState.FAIL)
            elif ok:
                self.study.add_trial(optuna.trial.create_trial(
                    params=self.backend.space.to_choices(res.cell),
                    distributions=self._distributions, value=float(score)))
        self._log(res, score, decision, attempts=attempts)

    def __deepcopy__(self, memo: dict[int, Any]) -> OptunaSearch:
        """A copy that continues exactly as this search would: the sampler (and its random
        state) copied, the study rebuilt from the same trials (a study itself cannot be
        copied: its storage holds a lock)."""
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            if key != "study":
                setattr(new, key, copy.deepcopy(value, memo))
        optuna = _optuna()
        with _quiet(optuna):
            new.study = optuna.create_study(direction="maximize", sampler=new.sampler)
            new.study.add_trials(self.study.trials)
        return new

    def table(self) -> pd.DataFrame:
        """All evaluations so far, best ranker score first (ties: earliest)."""
        h = self.history
        return h.iloc[rank_order(h["ranker_score"].to_numpy())].reset_index(drop=True)
