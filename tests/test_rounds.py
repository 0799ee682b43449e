"""Searches made of searches: Rounds, PredictorSH, BatchRanker and the public hand-over of an
inner search's evaluations (``step_rows``) that Rounds and Hyperband use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import RandomForestRegressor

from workbench.search import (
    BatchRanker,
    Hyperband,
    PredictorSH,
    RandomSearch,
    Rounds,
    SuccessiveHalving,
    get_search,
    hyperband_brackets,
    list_searches,
    sh_schedule,
    table_features,
)

RENUMBERED = ("iteration", "eval", "cum_cost")  # what a composite search numbers itself


@pytest.fixture(scope="module")
def nb201(nb201_backend):
    return nb201_backend


@pytest.fixture(scope="module")
def nb101(nb101_backend):
    return nb101_backend


@pytest.fixture(scope="module")
def feats(nb201):
    return table_features(nb201)


class LinearScore(RegressorMixin, BaseEstimator):
    """Predicts a fixed random projection of the features; remembers what it was fit on."""

    def __init__(self, random_state: int | None = None) -> None:
        self.random_state = random_state

    def fit(self, x, y):
        self.x_, self.y_ = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        return self

    def predict(self, x):
        x = np.asarray(x, dtype=float)
        return x @ np.random.default_rng(42).normal(size=x.shape[1])


def _psh(nb201, feats, **kw):
    args = {"k_init": 8, "n": 9, "max_rounds": 3, "seed": 0} | kw
    return PredictorSH(nb201, feats, **args)


# -- PredictorSH ----------------------------------------------------------------------------------


def test_predictor_sh_runs_through_the_protocol(nb201, feats):
    ps = _psh(nb201, feats)
    assert ps.finite and not ps.done and ps.history.empty and ps.table().empty
    with pytest.raises(RuntimeError, match="no evaluation"):
        ps.best()
    ps.step()  # the k_init cells
    first_round = ps.step()  # rung 0 of round 0
    assert set(first_round["round"]) == {0} and len(first_round) == 9
    table = ps.table()  # the current SH rung
    assert table["candidate"].tolist() == first_round["candidate"].tolist()
    assert set(table["decision"]) == {"kept", "dropped"}
    h = ps.run()
    sched = sh_schedule(9, nb201.min_budget, nb201.max_budget, 3)
    assert ps.done and ps.n_steps == 1 + 3 * len(sched)
    assert h["round"].unique().tolist() == [-1, 0, 1, 2]
    for r in range(3):
        g = h[h["round"] == r]
        assert g.groupby("iteration").size().tolist() == sched["n"].tolist()
        assert g.groupby("iteration")["budget"].first().tolist() == sched["budget"].tolist()
    assert h["eval"].tolist() == list(range(len(h)))
    np.testing.assert_allclose(h["cum_cost"], np.cumsum(h["cost"]))
    assert [e.cell_id for e in ps.evaluations] == h["candidate"].tolist()
    top = h[h["budget"] == h["budget"].max()]
    assert ps.best()[1] == top["score"].max()
    assert ps.incumbent_final() == top.loc[top["score"].idxmax(), "final"]
    with pytest.raises(RuntimeError, match="done"):
        ps.step()


def test_predictor_sh_same_seed_same_history_other_seed_differs(nb201, feats):
    a, b, other = _psh(nb201, feats, seed=4), _psh(nb201, feats, seed=4), _psh(nb201, feats, seed=5)
    a.run()
    while not b.done:
        b.step()
    other.run()
    pd.testing.assert_frame_equal(a.history, b.history)
    assert not set(a.history["candidate"]) == set(other.history["candidate"])
    assert a.best()[1] == b.best()[1]


def test_default_and_callable_features_are_the_table_encoding(nb201, feats):
    given = _psh(nb201, feats, max_rounds=1).run()
    default = PredictorSH(nb201, k_init=8, n=9, max_rounds=1, seed=0).run()
    space = nb201.space
    called = PredictorSH(nb201, lambda c: space.encode(c, "onehot"), k_init=8, n=9,
                         max_rounds=1, seed=0).run()
    pd.testing.assert_frame_equal(given, default)
    pd.testing.assert_frame_equal(given, called)
    assert feats[1].shape == (len(nb201.benchmark.table()), 30)  # 6 edges x 5 ops, one-hot


def test_k_init_cells_are_charged_and_logged(nb201, feats):
    ps = _psh(nb201, feats, k_init=12)
    first = ps.step()
    assert len(first) == 12 and first["candidate"].is_unique
    assert set(first["decision"]) == {"predictor data"} and set(first["round"]) == {-1}
    assert (first["budget"] == nb201.max_budget).all()
    costs = [nb201.evaluate(c, nb201.max_budget).cost for c in first["candidate"]]
    np.testing.assert_allclose(first["cost"], costs)
    assert ps.total_cost == pytest.approx(sum(costs)) and ps.n_evaluations == 12
    assert ps.labels == dict(zip(first["candidate"], first["score"], strict=True))
    assert isinstance(ps.model, RandomForestRegressor) and ps.model.n_estimators == 20
    assert isinstance(ps.model.random_state, int)


def test_rounds_refit_on_every_cell_trained_at_the_largest_fidelity(nb201, feats):
    ids, x = feats
    row = {k: i for i, k in enumerate(ids)}
    ps = _psh(nb201, feats, regressor=LinearScore(), max_rounds=4, seed=2)
    fits = []  # (model, round when it was fitted)
    while not ps.done:
        ps.step()
        if not fits or ps.model is not fits[-1][0]:
            fits.append((ps.model, max(ps.round, 0)))
    assert [r for _, r in fits] == [0, 1, 2, 3]  # after the k_init cells, then every round
    h = ps.history
    top = h["fidelity"] >= nb201.max_budget
    for model, r in fits:
        trained = h[top & (h["round"] < r)].drop_duplicates("candidate", keep="last")
        want = {(*x[row[c]], s) for c, s in zip(trained["candidate"], trained["score"],
                                                 strict=True)}
        assert {(*xi, yi) for xi, yi in zip(model.x_, model.y_, strict=True)} == want
        assert len(model.y_) == len(trained)
    seeds = [m.random_state for m, _ in fits]
    assert all(isinstance(s, int) for s in seeds) and len(set(seeds)) == len(seeds)


def test_each_round_takes_the_best_predicted_cells_not_evaluated_yet(nb201, feats):
    ids, x = feats
    ps = _psh(nb201, feats, regressor=LinearScore(), max_rounds=3, seed=3)
    ps.step()
    for _ in range(3):
        seen = set(ps.history["candidate"])
        rung0 = ps.step()
        pred = LinearScore().predict(x)
        free = [i for i in range(len(ids)) if ids[i] not in seen]
        want = sorted(free, key=lambda i: -pred[i])[:9]
        assert set(rung0["candidate"]) == {ids[i] for i in want}
        # below the largest fidelity: z(observed) + z(predicted) over the rung
        obs = rung0["score"].to_numpy()
        p = np.array([ps.predicted[c] for c in rung0["candidate"]])
        np.testing.assert_allclose(rung0["ranker_score"],
                                   (obs - obs.mean()) / obs.std() + (p - p.mean()) / p.std())
        while ps.current is not None and not ps.current.done:
            later = ps.step()
            at_max = later["fidelity"] >= nb201.max_budget
            np.testing.assert_allclose(later.loc[at_max, "ranker_score"],
                                       later.loc[at_max, "score"])


def test_predictor_sh_stops_when_the_pool_is_used_up(nb201, feats):
    ids, x = feats
    small = (ids[:20], x[:20])
    ps = PredictorSH(nb201, small, k_init=5, n=9, max_rounds=None, seed=0)
    assert ps.finite  # the pool is
    h = ps.run()
    assert ps.done and set(h["candidate"]) == set(ids[:20])
    assert h.drop_duplicates("candidate").groupby("round").size().tolist() == [5, 9, 6]


@pytest.mark.parametrize("kw, match", [
    ({"k_init": 0}, "k_init must be an int >= 1, got 0"),
    ({"k_init": 2.5}, "k_init must be an int >= 1, got 2.5"),
    ({"n": 0}, "n must be an int >= 1, got 0"),
    ({"eta": 1}, "eta must be a finite number >= 2, got 1"),
    ({"max_rounds": 0}, "max_rounds must be None or an int >= 1, got 0"),
    ({"max_budget": 500}, "budget 500"),
    ({"min_budget": 300}, "min_budget 300 must not exceed max_budget"),
    ({"regressor": object()}, "regressor must be a scikit-learn regressor"),
    ({"features": "onehot"}, "features must be None, .*got 'onehot'"),
    ({"features": None, "encoding": "path"}, "encoding 'path' is not one of the nb201"),
])
def test_predictor_sh_bad_arguments_name_the_value(nb201, feats, kw, match):
    args = {"features": feats} | kw
    with pytest.raises(ValueError, match=match):
        PredictorSH(nb201, **args)


def test_predictor_sh_bad_features_name_the_problem(nb201, feats):
    ids, x = feats
    with pytest.raises(ValueError, match=r"one row per id, got 5 ids and shape \(4, 30\)"):
        PredictorSH(nb201, (ids[:5], x[:4]))
    with pytest.raises(ValueError, match=r"twice: \['0'\]"):
        PredictorSH(nb201, (["0", "0", "1"], x[:3]), k_init=2)
    with pytest.raises(ValueError, match="k_init 6 exceeds the 5 cells"):
        PredictorSH(nb201, (ids[:5], x[:5]), k_init=6)
    with pytest.raises(ValueError, match="encoding='adjacency' applies only"):
        PredictorSH(nb201, feats, encoding="adjacency")
    strings = [nb201.format(nb201.resolve(i)) for i in ids[:10]]  # not the backend's ids
    with pytest.raises(ValueError, match="not among the feature ids"):
        PredictorSH(nb201, (strings, x[:10]), k_init=3).step()


# -- Rounds -------------------------------------------------------------------------------------


def test_rounds_repeats_a_finite_search(nb101):
    def make(backend, rng):
        return SuccessiveHalving(backend, n=9, eta=3, seed=rng)

    rounds = Rounds(nb101, make, seed=7, max_rounds=3, label="SH x3")
    h = rounds.run()
    rng = np.random.default_rng(7)  # the hand-run: the same rounds on the same generator
    parts, evals, last = [], [], None
    for r in range(3):
        last = make(nb101, rng)
        last.run()
        parts.append(last.history.assign(round=r))
        evals += last.evaluations
    hand = pd.concat(parts, ignore_index=True)
    keep = [c for c in h.columns if c not in RENUMBERED]  # the SH columns and round
    pd.testing.assert_frame_equal(h[keep], hand[keep])
    assert rounds.evaluations == evals
    assert h["eval"].tolist() == list(range(len(h)))
    assert h["iteration"].tolist() == (hand["iteration"] + 4 * hand["round"]).tolist()
    np.testing.assert_allclose(h["cum_cost"], np.cumsum(hand["cost"]))
    assert rounds.done and rounds.n_steps == 3 * last.n_rungs and rounds.label == "SH x3"
    pd.testing.assert_frame_equal(rounds.table(), last.table())


def test_rounds_without_max_rounds_needs_a_budget(nb101):
    rounds = get_search("rounds", backend=nb101,
                        make=lambda b, rng: SuccessiveHalving(b, n=3, seed=rng))
    assert isinstance(rounds, Rounds) and not rounds.finite
    with pytest.raises(ValueError, match="never finishes"):
        rounds.run()
    rounds.run(max_cost=50_000)
    assert rounds.total_cost >= 50_000 and rounds.history["round"].max() >= 1
    assert {"rounds", "predictor_sh"} <= set(list_searches())
    assert isinstance(get_search("predictor_sh", backend=nb101, k_init=3, n=3), PredictorSH)


def test_rounds_bad_arguments_name_the_value(nb101):
    with pytest.raises(ValueError, match=r"make must be a callable .*got 3"):
        Rounds(nb101, 3)
    with pytest.raises(ValueError, match="max_rounds must be None or an int >= 1, got -1"):
        Rounds(nb101, lambda b, rng: SuccessiveHalving(b, n=3, seed=rng), max_rounds=-1)
    endless = Rounds(nb101, lambda b, rng: RandomSearch(b, seed=rng))
    with pytest.raises(ValueError, match=r"a round must be a finite .*RandomSearch"):
        endless.step()


# -- handing over an inner search's evaluations -------------------------------------------------


def test_step_rows_are_the_step_frame_with_its_evaluations(nb101):
    a, b = SuccessiveHalving(nb101, n=9, seed=1), SuccessiveHalving(nb101, n=9, seed=1)
    while not a.done:
        frame = a.step()
        rows = b.step_rows()
        pd.testing.assert_frame_equal(pd.DataFrame([r for r, _ in rows], columns=frame.columns),
                                      frame)
        assert [e for _, e in rows] == b.evaluations[-len(rows):]
        rows[0][0]["score"] = -1.0  # a copy: the inner history is untouched
        assert b.history["score"].iloc[-len(rows)] != -1.0


def test_hyperband_history_is_its_brackets_run_one_after_the_other(nb101):
    hb = Hyperband(nb101, min_budget=4, max_budget=108, eta=3, seed=3, repeats=2)
    h = hb.run()
    rng = np.random.default_rng(3)  # the hand-run: every bracket as a plain SH, in order
    parts, evals, offset = [], [], 0
    brackets = hyperband_brackets(4, 108, 3)
    for _ in range(2):
        for b in brackets.itertuples():
            sh = SuccessiveHalving(nb101, n=b.n, min_budget=b.r, max_budget=108, eta=3, seed=rng)
            sh.run()
            part = sh.history.assign(bracket=b.bracket)
            part["iteration"] += offset  # Hyperband numbers its steps over all brackets
            parts.append(part)
            evals += sh.evaluations
            offset += sh.n_rungs
    hand = pd.concat(parts, ignore_index=True)
    cols = [c for c in h.columns if c not in ("eval", "cum_cost")]  # with bracket, rung, rank
    pd.testing.assert_frame_equal(h[cols], hand[cols])
    assert hb.evaluations == evals and hb.n_steps == offset
    assert h["eval"].tolist() == list(range(len(h)))
    np.testing.assert_allclose(h["cum_cost"], np.cumsum(hand["cost"]))
    sizes = h.groupby("bracket", sort=False).size().tolist()
    assert sizes == [2 * sum(n) for n in brackets["n_per_rung"]]  # each bracket twice


# -- BatchRanker --------------------------------------------------------------------------------


def test_batch_ranker_scores_a_whole_rung_at_once(nb101):
    calls = []

    def spread(cells, results):
        calls.append(len(results))
        s = np.array([r.score for r in results])
        return s - s.mean()

    sh = SuccessiveHalving(nb101, n=27, seed=0, ranker=BatchRanker(spread, "spread"))
    h = sh.run()
    assert calls == sh.schedule()["n"].tolist()
    for _, g in h.groupby("rung"):
        np.testing.assert_allclose(g["ranker_score"], g["score"] - g["score"].mean())
    assert repr(sh.ranker) == "BatchRanker('spread')"
    with pytest.raises(ValueError, match="batch ranker function must be callable, got 3"):
        BatchRanker(3)
