"""NAS-Bench-101's own sampling distribution over a table's cells: weights and test sets.

The bundled NB101 table is a uniform sample of distinct cells, but NAS-Bench-101's own sampler
(``random_spec``, ``NB101Space.sample(method="nasbench")``) yields small cells far more often.
Reweighting or resampling the table's cells by that sampler's probabilities gives a test set
that follows it, so a distribution shift shows up in a predictor's own numbers.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from workbench._checks import check_int
from workbench.benchmarks._benchmark import TabularBenchmark
from workbench.spaces import NB101Space, RngLike, as_rng


def nb101_sampler_weights(bench: TabularBenchmark) -> pd.Series:
    """The probability of each cell of ``bench`` (an nb101 table) under NAS-Bench-101's
    ``random_spec``, renormalised over the table's cells: a Series named ``weight`` indexed by
    cell id in table order, summing to 1, every weight positive.

    Exact (``NB101Space.nasbench_probability``), not a Monte Carlo estimate: a 7-vertex cell
    comes out about once in 2e8 draws, so 200,000 draws would miss nearly every table cell.
    ``attrs["sampler_mass"]`` holds the unnormalised total: the chance that one draw of the
    sampler is a cell of this table. ValueError if ``bench`` is not over the nb101 space.
    """
    space = bench.space
    if not isinstance(space, NB101Space):
        raise ValueError(f"sampler weights need an nb101 benchmark, got {bench.name!r} "
                         f"(space {bench.space_name!r})")
    ids = bench.table()["cell_id"].astype(str).tolist()
    prob = np.array([space.nasbench_probability(bench.cell(i)) for i in ids])
    weights = pd.Series(prob / prob.sum(), index=pd.Index(ids, name="cell_id"), name="weight")
    weights.attrs["sampler_mass"] = float(prob.sum())
    return weights


def sampler_test_set(bench: TabularBenchmark, n: int, rng: RngLike = None, *,
                     exclude: Iterable[str] = (), weights: pd.Series | None = None
                     ) -> list[str]:
    """``n`` cell ids of ``bench`` (nb101) drawn with replacement with the probabilities of
    :func:`nb101_sampler_weights`, so the list follows NAS-Bench-101's own sampler.

    With replacement, as the sampler itself repeats cells: a few small cells carry most of the
    weight and recur (without replacement they could not follow the distribution). ``exclude``
    (e.g. the training ids) are left out and the rest renormalised; ValueError if none is left.
    ``weights``: the result of ``nb101_sampler_weights(bench)``, to reuse over many draws.
    """
    n = check_int("n", n, minimum=1)
    if weights is None:
        weights = nb101_sampler_weights(bench)
    dropped = set(map(str, exclude))
    if dropped:
        weights = weights[~weights.index.isin(list(dropped))]
    if weights.empty:
        raise ValueError(f"exclude leaves no cell of the {bench.name} table to draw from "
                         f"({len(dropped)} ids excluded)")
    picks = as_rng(rng).choice(len(weights), size=n, replace=True,
                               p=(weights / weights.sum()).to_numpy())
    return [str(i) for i in weights.index[picks]]
