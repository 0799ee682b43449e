"""timm-style smoke test over every registered search method: built by name on the NB201 table,
stepped, run to its end, and checked against the protocol every search shares (history with
the base columns, ``best()`` a (cell, score) pair the backend resolves, RuntimeError after the
end, the same history for the same seed, a regret curve from ``search_curve``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from workbench.search import (
    Search,
    SuccessiveHalving,
    get_search,
    list_searches,
    search_curve,
)
from workbench.search._base import BASE_COLUMNS


def _sh_round(backend: Any, rng: Any) -> Search:
    """One small SH run (the round of ``rounds``)."""
    return SuccessiveHalving(backend, n=3, min_budget=12, max_budget=200, seed=rng)


#: Small, finite kwargs per registered name on ``TabularBackend("nb201")``. A newly registered
#: search fails the test below until it gets a recipe here.
RECIPES: dict[str, dict[str, Any]] = {
    "sh": {"n": 9, "min_budget": 12, "max_budget": 200},
    "hyperband": {"min_budget": 12, "max_budget": 200},
    "random": {"max_evaluations": 6},
    "evolution": {"population": 3, "sample_size": 2, "max_evaluations": 6},
    "layernas": {"target": (0.3, 0.4), "buckets_per_layer": 2, "capacity_H": 1},
    "rounds": {"make": _sh_round, "max_rounds": 2},
    "predictor_sh": {"k_init": 6, "n": 3, "max_rounds": 2},
}


def _build(name: str, backend: Any) -> Search:
    if name not in RECIPES:
        pytest.fail(f"search {name!r} is registered but has no recipe in "
                    f"tests/test_search_registry.py: add its small kwargs to RECIPES")
    return get_search(name, backend=backend, seed=0, **RECIPES[name])


@pytest.mark.parametrize("name", list_searches())
def test_every_registered_search_follows_the_protocol(name, nb201_backend):
    search = _build(name, nb201_backend)
    assert isinstance(search, Search) and not search.done and search.finite
    with pytest.raises(RuntimeError):
        search.best()  # nothing evaluated yet
    first = search.step()
    assert isinstance(first, pd.DataFrame) and set(BASE_COLUMNS) <= set(first.columns)
    part = search.run(max_steps=2)
    assert isinstance(part, pd.DataFrame) and len(part) >= len(first) and search.n_steps <= 3
    h = search.run()
    assert search.done and h.equals(search.history)
    assert list(h.columns[:len(BASE_COLUMNS)]) == list(BASE_COLUMNS)
    assert 0 < search.n_evaluations <= len(h)
    assert h["cum_cost"].is_monotonic_increasing
    assert search.total_cost == pytest.approx(h["cost"].sum())
    cell, score = search.best()
    assert isinstance(score, float) and np.isfinite(score)
    assert nb201_backend.resolve(cell) == cell
    assert nb201_backend.cell_id(cell) in set(h["candidate"])
    assert np.isfinite(search.incumbent_final())
    assert isinstance(search.table(), pd.DataFrame)
    with pytest.raises(RuntimeError):
        search.step()
    curve = search_curve(search)
    assert len(curve) == len(h) and curve["evaluations"].iloc[-1] == search.n_evaluations
    assert curve["regret"].iloc[-1] >= 0
    again = _build(name, nb201_backend)
    again.run()
    pd.testing.assert_frame_equal(again.history, h)  # same seed, same history
