"""Local search and the one-edit neighbourhoods it climbs: ``space.neighbors`` by hand and by
hypothesis, and LocalSearch's moves, restarts and bookkeeping read back from its history."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.search import LocalSearch, PoolBackend, TabularBackend
from workbench.spaces import NB101Cell, NB201Space, SearchSpace, get_space

NB101 = get_space("nb101")
NB201 = get_space("nb201")


# -- neighbourhoods ---------------------------------------------------------------------------

def test_nb201_neighbors_are_the_24_single_edge_changes():
    cell = NB201.parse("|nor_conv_3x3~0|+|none~0|skip_connect~1|+"
                       "|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|")
    nbrs = NB201.neighbors(cell)
    assert len(nbrs) == 24 and len(set(nbrs)) == 24 and cell not in nbrs
    for n in nbrs:
        assert sum(a != b for a, b in zip(n.ops, cell.ops, strict=True)) == 1
    assert NB201.neighbors(NB201.format(cell)) == nbrs  # cell strings too


def test_nb101_neighbors_of_a_three_vertex_cell_by_hand():
    # input -> conv3x3 -> output: dropping either edge disconnects it, so the neighbours are
    # the added input->output edge and the two other ops of the middle vertex
    cell = NB101Cell([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv3x3-bn-relu", "output"])
    nbrs = NB101.neighbors(cell)
    expected = [NB101Cell([[0, 1, 1], [0, 0, 1], [0, 0, 0]],
                          ["input", "conv3x3-bn-relu", "output"]),
                NB101Cell([[0, 1, 0], [0, 0, 1], [0, 0, 0]],
                          ["input", "conv1x1-bn-relu", "output"]),
                NB101Cell([[0, 1, 0], [0, 0, 1], [0, 0, 0]],
                          ["input", "maxpool3x3", "output"])]
    assert [n.hash for n in nbrs] == [e.hash for e in expected]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_mutate_draws_from_the_neighbors(seed):
    for space in (NB101, NB201):
        cell = space.sample(seed)
        nbrs = space.neighbors(cell)
        ids = [space.cell_id(n) if space is NB201 else n.hash for n in nbrs]
        assert len(set(ids)) == len(ids) and nbrs
        child = space.mutate(cell, seed)
        assert (space.cell_id(child) if space is NB201 else child.hash) in ids
        if space is NB101:
            assert cell.hash not in ids
            for n in nbrs:
                assert n.is_connected and n.num_edges <= 9


def test_a_space_without_neighbors_says_so(monkeypatch):
    monkeypatch.setattr(NB201Space, "neighbors", SearchSpace.neighbors)
    with pytest.raises(NotImplementedError, match="nb201"):
        NB201.neighbors(NB201.sample(0))
    with pytest.raises(ValueError, match=r"neighbours.*nb201"):
        LocalSearch(TabularBackend("nb201"))


# -- the search -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def backend():
    return TabularBackend("nb201")


def _ids(backend, cells):
    return {backend.cell_id(backend.resolve(c)) for c in cells if backend.contains(c)}


def _check_climb(backend, ls):
    """Every rule of the climb, read from the history."""
    h = ls.history
    score = dict(zip(h["candidate"], h["ranker_score"], strict=True))
    assert h["candidate"].is_unique  # nothing is trained twice
    init = h[h["decision"] == "initial"]
    assert len(init) == min(ls.n_init, len(h)) and (h.index[: len(init)] == init.index).all()
    rows = h.iloc[len(init):]
    if rows.empty:
        return
    first = rows.iloc[0]
    start = first["center"] if first["decision"] == "neighbor" else None
    if start is not None:  # the climb starts at the best initial cell
        assert score[start] == init["ranker_score"].max()
    prev_center = None
    for _, r in rows.iterrows():
        if r["decision"] == "neighbor":
            center = r["center"]
            assert r["candidate"] in _ids(backend, NB201.neighbors(backend.resolve(center)))
            if prev_center is not None and center != prev_center:
                # moved (through neighbourhoods already known, perhaps): only ever uphill
                assert score[center] > score[prev_center]
            prev_center = center
        else:
            assert r["decision"] == "restart"
            # a restart only from a local optimum: every neighbour known, none better
            optimum = r["center"]
            nbrs = _ids(backend, NB201.neighbors(backend.resolve(optimum)))
            known = {n: score[n] for n in nbrs if n in score}
            assert set(known) == nbrs and max(known.values()) <= score[optimum]
            if prev_center is not None:
                assert score[optimum] >= score[prev_center]
            prev_center = r["candidate"]


@pytest.mark.parametrize("seed", [0, 3])
def test_local_search_climbs_and_restarts_only_at_local_optima(backend, seed):
    ls = LocalSearch(backend, budget=12, n_init=5, seed=seed)
    ls.run(max_evaluations=400)
    assert ls.restarts >= 1 and ls.moves >= 1
    _check_climb(backend, ls)
    cell, score = ls.best()
    assert score == ls.history["score"].max() and backend.contains(cell)


def test_first_improvement_moves_at_the_first_better_neighbour(backend):
    ls = LocalSearch(backend, budget=12, n_init=5, seed=1, first_improvement=True)
    h = ls.run(max_evaluations=200)
    score = dict(zip(h["candidate"], h["ranker_score"], strict=True))
    nb = h[h["decision"] == "neighbor"]
    moved = 0
    for (_, a), (_, b) in zip(nb.iloc[:-1].iterrows(), nb.iloc[1:].iterrows(), strict=True):
        if b["restart"] != a["restart"]:
            continue
        better = score[a["candidate"]] > score[a["center"]]
        # the next neighbour explored is around the better one, and only then
        assert (b["center"] == a["candidate"]) == better or (
            not better and b["center"] != a["center"] and b["center"] in score)
        moved += better
    assert moved >= 2 and ls.moves >= moved


def test_the_table_shows_the_centre_and_its_neighbourhood(backend):
    ls = LocalSearch(backend, budget=12, n_init=3, seed=0)
    ls.run(max_evaluations=2)
    assert ls.table().empty and ls.center is None  # still drawing the initial cells
    ls.run(max_evaluations=8)
    t = ls.table()
    assert t["role"].iloc[0] == "center" and t["candidate"].iloc[0] == backend.cell_id(ls.center)
    assert len(t) == 25 and set(t["role"][1:]) <= {"neighbor", "pending"}
    done = t[t["role"] == "neighbor"]
    assert len(done) == 5 and done["ranker_score"].is_monotonic_decreasing
    assert t[t["role"] == "pending"]["score"].isna().all()


def test_on_a_small_pool_it_evaluates_every_cell_once_then_stops(backend):
    rng = np.random.default_rng(0)
    center = NB201.sample(rng)
    pool = [center, *NB201.neighbors(center)[:10], *(NB201.sample(rng) for _ in range(5))]
    view = PoolBackend(backend, pool)
    ls = LocalSearch(view, budget=12, n_init=2, seed=0, max_evaluations=1000)
    h = ls.run()
    assert ls.done and h["candidate"].is_unique
    assert set(h["candidate"]) == {backend.cell_id(c) for c in pool}
    with pytest.raises(RuntimeError):
        ls.step()


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n_init=st.one_of(st.integers(-3, 0), st.sampled_from([0.5, 2.5, "10", None])),
       budget=st.sampled_from([0, -12, 201, float("nan")]))
def test_bad_arguments_are_named(backend, n_init, budget):
    with pytest.raises(ValueError, match="n_init"):
        LocalSearch(backend, n_init=n_init)
    with pytest.raises(ValueError, match="budget"):
        LocalSearch(backend, budget=budget)
    with pytest.raises(ValueError, match="first_improvement"):
        LocalSearch(backend, first_improvement="yes")
