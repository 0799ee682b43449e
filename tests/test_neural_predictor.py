"""The Neural Predictor's search (Wen et al. 2020): N random cells, a predictor fit on them,
the predicted top K trained, in rounds; on the bundled tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestRegressor

from workbench.predictors import GCNPredictor, GraphFeatureRegressor
from workbench.search import (
    NeuralPredictorSearch,
    PoolBackend,
    get_search,
    table_inputs,
)
from workbench.search._neural_predictor import TABLE_COLUMNS, as_predictor


@pytest.fixture(scope="module")
def nb201(nb201_backend):
    return nb201_backend


@pytest.fixture(scope="module")
def nb101(nb101_backend):
    return nb101_backend


@pytest.fixture(scope="module")
def inputs101(nb101):
    return table_inputs(nb101)  # GRAF features of the 1k table, shared by the seeds


def _np(backend, **kw):
    args = {"n": 10, "k": 5, "rounds": 3, "seed": 0} | kw
    return NeuralPredictorSearch(backend, **args)


def test_runs_to_the_end_on_nb201_with_exactly_n_plus_rounds_k_trainings(nb201):
    s = get_search("neural_predictor", backend=nb201, n=12, k=4, rounds=3, m=200, seed=1)
    assert isinstance(s, NeuralPredictorSearch) and s.label == "NP" and s.finite
    assert s.table().empty and list(s.table().columns) == list(TABLE_COLUMNS)
    first = s.step()
    assert len(first) == 12 and set(first["decision"]) == {"random"}
    assert first["predicted"].isna().all() and set(first["round"]) == {-1}
    steps = [s.step() for _ in range(3)]
    assert s.done and s.n_steps == 4 and s.n_evaluations == 12 + 3 * 4
    h = s.history
    assert [len(p) for p in steps] == [4, 4, 4]
    assert h.groupby("round").size().to_dict() == {-1: 12, 0: 4, 1: 4, 2: 4}
    assert h["candidate"].is_unique and (h["budget"] == nb201.max_budget).all()
    assert set(h["decision"].iloc[12:]) == {"predicted top"}
    assert h["predicted"].iloc[12:].notna().all()
    cell, score = s.best()
    assert score == h["score"].max() and nb201.cell_id(cell) == h.loc[h["score"].idxmax(),
                                                                        "candidate"]
    assert s.total_cost == pytest.approx(h["cost"].sum())
    with pytest.raises(RuntimeError):
        s.step()


def test_each_round_trains_the_top_k_of_the_latest_fit(nb101, inputs101):
    s = _np(nb101, features=inputs101)
    s.step()
    first = s.table()  # fitted on the random batch: what round 0 will choose from
    assert len(first) == 990 and (first["decision"] == "candidate").all()
    for r in range(3):
        new = s.step()  # refit on every trained cell (from round 1), then train its top k
        fit = s.table()
        assert len(fit) == 1000 - 10 - 5 * r and fit["predicted"].is_monotonic_decreasing
        assert new["candidate"].tolist() == fit["candidate"].head(5).tolist()
        np.testing.assert_allclose(new["predicted"], fit["predicted"].head(5))
        assert fit["decision"].head(5).eq("trained").all()
        assert fit["decision"].iloc[5:].eq("candidate").all()
        np.testing.assert_allclose(fit["score"].head(5), new["score"])
        assert (fit["round"].head(5) == r).all() and fit["score"].iloc[5:].isna().all()
        if r == 0:
            pd.testing.assert_series_equal(fit["candidate"], first["candidate"])
    assert s.model is not None and len(s.labels) == 10 + 2 * 5  # the last fit saw two rounds


def test_same_seed_same_history_other_seed_differs_and_features_change_nothing(nb101,
                                                                              inputs101):
    a = _np(nb101, seed=3).run()
    b = _np(nb101, seed=3, features=inputs101)
    while not b.done:
        b.step()
    pd.testing.assert_frame_equal(a, b.history)  # default inputs = the shared table_inputs
    c = _np(nb101, seed=4).run()
    assert not a["candidate"].equals(c["candidate"])
    sub_a = _np(nb101, seed=3, m=100, features=inputs101).run()
    sub_b = _np(nb101, seed=3, m=100, features=inputs101).run()
    pd.testing.assert_frame_equal(sub_a, sub_b)
    assert len(sub_a) == 25


def test_a_gcn_on_graphs_and_a_forest_on_encodings(nb101):
    gcn = GCNPredictor(hidden=8, layers=1, fc=8, epochs=3, batch_size=5)
    s = _np(nb101, predictor=gcn, n=8, k=4, rounds=2, m=60)
    h = s.run()
    assert len(h) == 16 and isinstance(s.model, GCNPredictor) and s.model is not gcn
    assert s.x.shape == (68, 7, 12)  # padded NB101 graphs of the pool
    space = nb101.space
    rf = _np(nb101, predictor=RandomForestRegressor(n_estimators=5),
             featurize=lambda cells: np.stack([space.encode(c) for c in cells]), m=50)
    assert len(rf.run()) == 25 and rf.x.shape[0] == 60
    assert isinstance(as_predictor("gcn", space), GCNPredictor)
    graf = as_predictor("graf", space)
    assert isinstance(graf, GraphFeatureRegressor) and graf.space == "nb101"
    assert as_predictor(None, space).model == "xgb"


def test_a_backend_without_a_table_samples_m_candidates(nb101):
    ids = nb101.benchmark.table()["cell_id"].astype(str).tolist()[:120]
    view = PoolBackend(nb101, ids)
    with pytest.raises(ValueError, match="no table to take every cell of: pass m="):
        _np(view)
    s = _np(view, m=60)
    h = s.run()
    assert len(h) == 25 and set(h["candidate"]) <= set(ids)


@pytest.mark.parametrize("kw, match", [
    ({"n": 1}, "n must be an int >= 2, got 1"),
    ({"k": 0}, "k must be an int >= 1, got 0"),
    ({"rounds": 0}, "rounds must be an int >= 1, got 0"),
    ({"m": 0}, "m must be None or an int >= 1, got 0"),
    ({"m": 14}, r"m=14 candidates cannot fill rounds \* k = 3 \* 5 = 15"),
    ({"n": 990}, r"the pool holds 1000 cells, fewer than n \+ rounds \* k"),
    ({"budget": 500}, "budget 500"),
    ({"predictor": object()}, "predictor must be None, a registered predictor name"),
    ({"predictor": "bogus"}, "unknown predictor 'bogus'"),
    ({"predictor": GraphFeatureRegressor("nb201")}, "made for space 'nb201'"),
    ({"featurize": "graphs"}, "featurize must be a callable"),
    ({"featurize": list, "features": (["0"], [0])}, "pass one"),
    ({"features": "graphs"}, r"features must be None or \(cell ids, inputs\)"),
    ({"features": (["0", "1"], np.zeros((3, 2)))}, r"one row per id, got 2 ids and shape"),
])
def test_bad_arguments_raise_value_errors(nb101, kw, match):
    with pytest.raises(ValueError, match=match):
        _np(nb101, **kw)
