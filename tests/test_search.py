"""workbench.search on the tables: SH, Hyperband, random search, evolution and simulation."""

from __future__ import annotations

import inspect
import math
import re
from functools import partial
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.search import (
    CostConstraint,
    Hyperband,
    PoolBackend,
    PredictorRanker,
    RandomSearch,
    RegularizedEvolution,
    SuccessiveHalving,
    TabularBackend,
    aggregate_curves,
    get_search,
    hyperband_brackets,
    list_searches,
    sh_schedule,
    simulate,
)


@pytest.fixture(scope="module")
def nb101():
    return TabularBackend("nb101")


@pytest.fixture(scope="module")
def nb201():
    return TabularBackend("nb201")


def _sh(backend, **kw):
    args = {"n": 27, "min_budget": 4, "max_budget": 108, "eta": 3, "seed": 0} | kw
    return SuccessiveHalving(backend, **args)


# -- Successive Halving ---------------------------------------------------------------------------


def test_sh_rungs_keep_floor_n_over_eta_and_budgets_multiply(nb101):
    sh = _sh(nb101, n=30)
    sh.run()
    h = sh.history
    sizes = h.groupby("rung").size().tolist()
    kept = h[h.decision == "kept"].groupby("rung").size().tolist()
    assert sizes == [30, 10, 3, 1]
    assert kept == [max(1, n // 3) for n in sizes]
    assert sizes[1:] == kept[:-1]  # exactly the kept ones are promoted
    assert h.groupby("rung")["budget"].first().tolist() == [4, 12, 36, 108]
    assert sh.done and h["budget"].max() == 108


def test_sh_caps_the_last_rung_at_max_budget(nb101):
    sched = sh_schedule(10, 4, 108, eta=2)
    assert sched["budget"].tolist() == [4, 8, 16, 32, 64, 108]
    assert sched["n"].tolist() == [10, 5, 2, 1, 1, 1]
    sh = _sh(nb101, n=10, eta=2)
    sh.run()
    h = sh.history
    assert h["budget"].max() == 108 and h["fidelity"].max() == 108
    # budgets between measured fidelities use the measured one at or above
    assert h.groupby("rung")["fidelity"].first().tolist() == [4, 12, 36, 36, 108, 108]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), eta=st.integers(2, 5), lo=st.floats(0.5, 20),
       ratio=st.floats(1, 500))
def test_sh_schedule_properties(n, eta, lo, ratio):
    hi = lo * ratio
    s = sh_schedule(n, lo, hi, eta)
    assert s["n"].iloc[0] == n
    assert (s["keep"] == np.maximum(1, s["n"] // eta)).all()
    assert (s["n"].iloc[1:].to_numpy() == s["keep"].iloc[:-1].to_numpy()).all()
    b = s["budget"].to_numpy()
    assert b[-1] == hi and (b[:-1] < hi).all()
    np.testing.assert_allclose(b[:-1], lo * float(eta) ** np.arange(len(b) - 1))


def test_sh_history_logs_every_evaluation_once(nb101):
    sh = _sh(nb101)
    sh.run()
    h = sh.history
    assert len(h) == sh.schedule()["n"].sum() == sh.n_evaluations == len(sh.evaluations)
    assert [e.cell_id for e in sh.evaluations] == h["candidate"].tolist()
    assert h["eval"].tolist() == list(range(len(h)))
    assert not h.duplicated(["rung", "candidate"]).any()
    assert np.isclose(h["cost"].sum(), sh.total_cost)
    assert np.allclose(h["cum_cost"], h["cost"].cumsum())
    assert set(h["decision"]) == {"kept", "dropped"}
    assert set(h.columns) >= {"iteration", "candidate", "cell", "budget", "cost", "score",
                              "ranker_score", "final", "decision"}


def test_sh_oracle_keeps_the_best_candidate_to_the_end(nb201):
    sh = SuccessiveHalving(nb201, n=27, min_budget=12, max_budget=200, ranker="oracle", seed=3)
    first = sh.table()
    assert (first["decision"] == "pending").all()
    best_id = max(first["candidate"], key=lambda c: nb201.benchmark.final_accuracy(c))
    sh.run()
    h = sh.history
    assert (h["ranker_score"] == h["final"]).all()
    last = sh.rung_table()
    assert last.loc[last["rank"] == 1, "candidate"].item() == best_id
    assert nb201.cell_id(sh.best()[0]) == best_id
    assert sh.incumbent_final() == pytest.approx(nb201.benchmark.final_accuracy(best_id))
    # NB201 measures 12 and 200 epochs: budgets 36 and 108 are run at 200, at no extra cost
    assert h.groupby("rung")["fidelity"].first().tolist() == [12, 200, 200, 200]
    assert (h.loc[h.rung >= 2, "cost"] == 0).all()
    bench = nb201.benchmark
    assert h["cost"].iloc[0] == pytest.approx(bench.cost(h["candidate"].iloc[0], epochs=12))


def test_sh_promotion_cost_is_incremental(nb101):
    sh = _sh(nb101)
    sh.run()
    h = sh.history
    bench = nb101.benchmark
    for cand, g in h.groupby("candidate"):
        fids = [0, *g["fidelity"].tolist()]
        expected = [bench.cost(cand, epochs=b) - bench.cost(cand, epochs=a)
                    for a, b in pairwise(fids)]
        assert np.allclose(g["cost"], expected)
        assert g["cost"].sum() == pytest.approx(bench.cost(cand, epochs=fids[-1]))
    fresh = _sh(nb101, resume=False)
    fresh.run()
    full = [bench.cost(c, epochs=f) for c, f in zip(fresh.history.candidate, fresh.history.fidelity,
                                             strict=True)]
    assert np.allclose(fresh.history["cost"], full) and fresh.total_cost > sh.total_cost


def test_sh_ties_are_broken_by_candidate_order(nb101):
    cands = nb101.sample(9, 1)
    sh = SuccessiveHalving(nb101, min_budget=4, max_budget=108, candidates=cands,
                           ranker=lambda cell, result: 0.0)
    sh.step()
    ids = [nb101.cell_id(c) for c in cands]
    t = sh.table()
    assert t["candidate"].tolist() == ids
    assert t["rank"].tolist() == list(range(1, 10))
    assert t.loc[t.decision == "kept", "candidate"].tolist() == ids[:3]


def test_sh_custom_rankers(nb101):
    worst = SuccessiveHalving(nb101, n=9, min_budget=4, max_budget=108, seed=2,
                              ranker=lambda cell, result: -result.score)
    worst.step()
    t = worst.table()
    assert t.loc[t.decision == "kept", "score"].max() <= t.loc[t.decision == "dropped",
                                                                "score"].min()

    class Mean:
        def predict(self, x):
            return np.asarray(x, dtype=float).mean(axis=1)

    ranker = PredictorRanker(Mean(), lambda cell, res: [res.score, res.score])
    pred = SuccessiveHalving(nb101, n=9, min_budget=4, max_budget=108, seed=2, ranker=ranker)
    obs = SuccessiveHalving(nb101, n=9, min_budget=4, max_budget=108, seed=2)
    pred.run()
    obs.run()
    pd.testing.assert_series_equal(pred.history["decision"], obs.history["decision"])
    proxy = SuccessiveHalving(nb101, n=9, min_budget=4, max_budget=108, seed=2,
                              ranker=lambda cell: float(len(nb101.format(cell))))
    proxy.step()
    assert proxy.table()["ranker_score"].nunique() > 1
    with pytest.raises(ValueError, match="PredictorRanker"):
        SuccessiveHalving(nb101, n=9, min_budget=4, max_budget=108, ranker=type(
            "P", (), {"predict": lambda self, x: x})())


# -- Hyperband -----------------------------------------------------------------------------------


def test_hyperband_hand_example(nb201):
    b = hyperband_brackets(1, 81, eta=3)
    pd.testing.assert_frame_equal(Hyperband(nb201, 1, 81).brackets().drop(columns="status"), b)
    assert b["bracket"].tolist() == [4, 3, 2, 1, 0]
    assert b["n"].tolist() == [81, 34, 15, 8, 5]
    assert b["r"].tolist() == [1, 3, 9, 27, 81]
    assert b["n_per_rung"].iloc[0] == [81, 27, 9, 3, 1]
    assert b["n_per_rung"].iloc[1] == [34, 11, 3, 1]
    assert b["budgets"].iloc[2] == [9, 27, 81]


@settings(max_examples=60, deadline=None)
@given(eta=st.integers(2, 5), big_r=st.integers(1, 2000), r=st.integers(1, 4))
def test_hyperband_brackets_follow_li_et_al(eta, big_r, r):
    max_budget = big_r * r  # R/r = big_r exactly
    b = hyperband_brackets(r, max_budget, eta)
    s_max = max(s for s in range(40) if eta**s <= big_r)  # floor(log_eta(R/r))
    assert b["bracket"].tolist() == list(range(s_max, -1, -1))
    for s, n, rr, units, rungs in zip(b["bracket"], b["n"], b["r"], b["r_units"], b["rungs"],
                                      strict=True):
        assert n == -(-(s_max + 1) * eta**s // (s + 1))  # ceil((s_max+1)/(s+1) * eta^s)
        assert rr == pytest.approx(max_budget / eta**s)
        assert units == pytest.approx(big_r / eta**s)
        assert rungs == s + 1


def test_hyperband_steps_one_rung_at_a_time(nb101):
    hb = Hyperband(nb101, min_budget=4, max_budget=108, eta=3, seed=0)
    br = hb.brackets()
    assert br["n"].tolist() == [27, 12, 6, 4] and (br["status"] == "pending").all()
    first = hb.step()
    assert len(first) == 27 and set(first["rung"]) == {0} and set(first["bracket"]) == {3}
    assert hb.brackets()["status"].tolist() == ["running", "pending", "pending", "pending"]
    hb.run()
    assert hb.done and hb.n_steps == br["rungs"].sum()
    h = hb.history
    assert [e.score for e in hb.evaluations] == h["score"].tolist()
    assert h.groupby("bracket", sort=False).size().tolist() == [
        sum(x) for x in br["n_per_rung"]]
    assert h["eval"].tolist() == list(range(len(h)))
    assert (hb.brackets()["status"] == "done").all()
    with pytest.raises(RuntimeError, match="done"):
        hb.step()


# -- determinism ---------------------------------------------------------------------------------

# Same seed, same history, and step() to the end equals run(): every registered search, in
# tests/test_registries.py (test_same_seed_same_history_and_steps_equal_run).


def test_run_stops_at_a_cost_budget(nb101):
    rs = RandomSearch(nb101, 108, seed=0)
    with pytest.raises(ValueError, match=r"never finishes by itself: pass max_cost= \(s\)"):
        rs.run()
    rs.run(max_cost=20_000)
    assert rs.total_cost >= 20_000 and rs.total_cost - rs.history["cost"].iloc[-1] < 20_000


def test_every_search_runs_to_the_same_limits(nb101):
    """``run(max_cost=, max_evaluations=, max_steps=)`` on any search; the first reached wins
    (the step crossing it is finished: a batch of 4 may overshoot an evaluation limit)."""
    rs = RandomSearch(nb101, 108, batch=4, seed=0)
    assert len(rs.run(max_evaluations=6)) == 8 and rs.n_steps == 2
    rs.run(max_evaluations=9, max_steps=5)
    assert rs.n_evaluations == 12
    sh = SuccessiveHalving(nb101, n=9, min_budget=12, max_budget=108)
    sh.run(max_evaluations=1)
    assert sh.n_steps == 1 and sh.n_evaluations == 9  # one whole rung
    sh.run(max_steps=0)
    assert sh.n_steps == 1
    with pytest.raises(ValueError, match=r"max_cost \(s\) must be None or a finite number > 0"):
        rs.run(max_cost=0)
    with pytest.raises(ValueError, match="max_evaluations must be None or an int >= 1"):
        rs.run(max_evaluations=2.0)
    with pytest.raises(TypeError):
        rs.run(20_000)  # keyword-only: a cost is never mistaken for an evaluation budget


# -- random search and evolution -----------------------------------------------------------------


def test_random_search_improves_and_never_repeats(nb101):
    rs = RandomSearch(nb101, 108, batch=4, seed=1, max_evaluations=40)
    rs.run()
    h = rs.history
    assert len(h) == 40 and h["candidate"].is_unique and rs.n_steps == 10
    assert rs.best()[1] == h["score"].max()
    assert rs.incumbent_final() > h["final"].iloc[0]
    assert rs.table()["score"].iloc[0] == h["score"].max()


def test_evolution_population_ages_and_improves(nb201):
    re_ = RegularizedEvolution(nb201, population=10, sample_size=3, budget=200, seed=0,
                               max_evaluations=60)
    removed = []
    while not re_.done:
        before = re_.table()
        row = re_.step().iloc[0]
        assert len(re_.population) <= 10
        if row["decision"] != "initial":
            assert len(before) == 10
            assert row["removed"] == before["candidate"].iloc[0]  # the oldest goes
            assert row["parent"] in set(before["candidate"])
            removed.append(row["removed"])
    h = re_.history
    assert (h["decision"] == "initial").sum() == 10 and len(removed) == 50
    assert set(h["decision"]) <= {"initial", "mutant", "random fallback"}
    assert (h["decision"] == "mutant").sum() > 40  # NB201's table holds every mutant
    assert re_.table()["born"].tolist() == list(range(50, 60))
    assert re_.incumbent_final() > h.loc[h.decision == "initial", "final"].max()


def test_evolution_unique_never_trains_a_cell_twice(nb201):
    limit = float(nb201.benchmark.all_costs("latency", "pixel3").quantile(0.25))
    constraint = CostConstraint(("latency", "pixel3"), max_value=limit)
    runs = {}
    for unique in (False, True):
        re_ = RegularizedEvolution(nb201, population=10, sample_size=5, budget=12, seed=1,
                                   max_evaluations=150, unique=unique, constraint=constraint)
        re_.run()
        runs[unique] = re_.history
    assert runs[False]["candidate"].duplicated().sum() > 10  # the paper's RE repeats itself
    h = runs[True]
    assert len(h) == 150 and h["candidate"].is_unique
    assert (h["decision"] == "mutant").sum() > 100  # mostly new mutants, not fallbacks
    lat = nb201.benchmark.all_costs("latency", "pixel3")
    assert (lat.loc[h["candidate"].astype(str)] <= limit).all()


def test_evolution_unique_ends_when_every_cell_was_evaluated(nb201):
    pool = PoolBackend(nb201, nb201.sample(12, 4))
    re_ = RegularizedEvolution(pool, population=5, sample_size=2, budget=12, seed=0,
                               unique=True)
    h = re_.run(max_evaluations=100)  # stops early: the pool has 12 cells
    assert re_.done and len(h) == 12 and h["candidate"].is_unique
    with pytest.raises(RuntimeError, match="done"):
        re_.step()
    with pytest.raises(ValueError, match="unique must be True or False, got 'yes'"):
        RegularizedEvolution(pool, unique="yes")


def test_evolution_on_nb101_falls_back_to_table_cells(nb101):
    re_ = RegularizedEvolution(nb101, 5, 2, 108, seed=0, max_evaluations=15, max_attempts=2)
    re_.run()
    assert all(nb101.contains(c) for c in re_.history["cell"])
    assert (re_.history["attempts"].iloc[5:] <= 2).all()


# -- simulation -----------------------------------------------------------------------------------


def test_simulate_curves_are_monotone_per_seed(nb101):
    curves = simulate({"RS": partial(RandomSearch, budget=108, max_evaluations=15),
                       "SH": partial(SuccessiveHalving, n=9, min_budget=4, max_budget=108)},
                      nb101, seeds=[0, 1, 2], max_cost=None, progress=False)
    assert set(curves["method"]) == {"RS", "SH"}
    for _, g in curves.groupby(["method", "seed"]):
        assert g["best_final"].is_monotonic_increasing and g["cost"].is_monotonic_increasing
        assert (g["regret"] >= 0).all()
        assert g["evaluations"].tolist() == list(range(1, len(g) + 1))
    assert np.allclose(curves["regret"], nb101.best_final() - curves["best_final"])
    agg = aggregate_curves(curves, points=7)
    assert len(agg) == 14 and agg["n"].max() == 3
    assert {"mean", "std", "q25", "q50", "q75"} <= set(agg.columns)


# -- validation ------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(eta=st.one_of(st.floats(-5, 1.999), st.integers(-3, 1), st.just(math.nan)))
def test_bad_eta_is_named(nb101, eta):
    with pytest.raises(ValueError, match=re.escape(repr(eta))):
        SuccessiveHalving(nb101, n=9, min_budget=4, max_budget=108, eta=eta)
    with pytest.raises(ValueError, match="eta"):
        hyperband_brackets(1, 81, eta)


@settings(max_examples=30, deadline=None)
@given(lo=st.floats(-50, 108, allow_nan=False), hi=st.floats(-50, 108, allow_nan=False))
def test_bad_budgets_are_named(nb101, lo, hi):
    if 0 < lo <= hi:
        SuccessiveHalving(nb101, n=3, min_budget=lo, max_budget=hi)
        return
    with pytest.raises(ValueError, match=re.escape(repr(lo if lo <= 0 or hi > 0 else hi))):
        SuccessiveHalving(nb101, n=3, min_budget=lo, max_budget=hi)


def test_bad_configurations_raise_value_error(nb101):
    with pytest.raises(ValueError, match="n must be an int >= 1, got 0"):
        SuccessiveHalving(nb101, n=0, min_budget=4, max_budget=108)
    with pytest.raises(ValueError, match=r"candidates must not be empty, got \[\]"):
        SuccessiveHalving(nb101, min_budget=4, max_budget=108, candidates=[])
    with pytest.raises(ValueError, match=r"budget 200 .*allowed: \[4, 12, 36, 108\]"):
        SuccessiveHalving(nb101, n=3, min_budget=4, max_budget=200)
    with pytest.raises(ValueError, match=r"budget 5 .*not a measured"):
        TabularBackend(nb101.benchmark, rounding="exact").fidelity(5)
    with pytest.raises(ValueError, match="fidelities"):
        TabularBackend(nb101.benchmark, fidelities=[5])
    with pytest.raises(ValueError, match="sample_size 9"):
        RegularizedEvolution(nb101, population=4, sample_size=9)
    with pytest.raises(ValueError, match="batch"):
        RandomSearch(nb101, batch=0)
    outside = next(c for c in (nb101.space.sample(i) for i in range(100))
                   if not nb101.contains(c))
    with pytest.raises(ValueError, match="not in the nb101 table"):
        SuccessiveHalving(nb101, min_budget=4, max_budget=108, candidates=[outside])
    with pytest.raises(ValueError, match="ranker 'best'"):
        RandomSearch(nb101, ranker="best")


def test_every_search_takes_seed_and_ranker_by_keyword_only():
    """One calling convention: seed= and ranker= by keyword, a per-evaluation budget= (no
    budget_epochs: a training backend's budgets are mini-batches)."""
    from workbench.search import SEARCHES

    for name in list_searches():
        params = inspect.signature(SEARCHES.get(name)).parameters
        assert "seed" in params, name
        for arg in ("seed", "ranker"):
            if arg in params:
                assert params[arg].kind is inspect.Parameter.KEYWORD_ONLY, (name, arg)
        assert "budget_epochs" not in params and "fidelity" not in params, name
    assert RandomSearch(TabularBackend("nb201"), 12).budget == 12
    with pytest.raises(TypeError, match="positional"):
        SuccessiveHalving(TabularBackend("nb201"), 9, 12, 200, 3, "observed")


def test_registry_builds_every_method(nb101):
    assert {"sh", "hyperband", "random", "evolution"} <= set(list_searches())
    sh = get_search("sh", backend=nb101, n=3, min_budget=12, max_budget=108)
    assert isinstance(sh, SuccessiveHalving) and sh.n_rungs == 3
    assert SuccessiveHalving(nb101, n=27).schedule()["budget"].tolist() == [4, 12, 36, 108]
    assert Hyperband(nb101).brackets()["r"].tolist() == [4, 12, 36, 108]
    with pytest.raises(ValueError, match="unknown search"):
        get_search("nope")


def test_hyperband_honours_the_max_budget_and_keeps_floor_n_over_eta(nb201):
    hb = Hyperband(nb201, min_budget=12, max_budget=200, eta=3, seed=1)
    hb.run()
    h = hb.history
    assert h["budget"].max() == 200 and h["fidelity"].max() == 200
    for (_, _), g in h.groupby(["bracket", "rung"]):
        assert g["decision"].eq("kept").sum() == max(1, len(g) // 3)
    assert (h.groupby("bracket")["budget"].max() == 200).all()


@pytest.mark.parametrize("make, match", [
    (lambda b: Hyperband(b, min_budget=108, max_budget=4), "min_budget 108"),
    (lambda b: Hyperband(b, 4, 108, eta=1), "eta must be a finite number >= 2, got 1"),
    (lambda b: Hyperband(b, 4, 108, repeats=0), "repeats must be None or an int >= 1, got 0"),
    (lambda b: SuccessiveHalving(b, n=3, min_budget=4, max_budget=108,
                                 candidates=b.sample(2, 0)), "n=3 disagrees"),
    (lambda b: SuccessiveHalving(b, min_budget=4, max_budget=108,
                                 candidates=b.sample(1, 0) * 2), "duplicates"),
    (lambda b: RandomSearch(b, budget=0), "budget must be .*, got 0"),
    (lambda b: RegularizedEvolution(b, budget=500), "budget 500"),
    (lambda b: simulate(partial(RandomSearch, max_evaluations=2), b, seeds=[]), "seeds"),
])
def test_more_bad_configurations_name_the_value(nb101, make, match):
    with pytest.raises(ValueError, match=match):
        make(nb101)
