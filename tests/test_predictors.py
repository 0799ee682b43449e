"""Predictors as scikit-learn estimators: GCN Neural Predictor, baselines, curve extrapolation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from workbench.benchmarks import get_benchmark
from workbench.evaluation import kendall_tau
from workbench.predictors import (
    CurveExtrapolator,
    FeaturePredictor,
    GCNPredictor,
    LastValue,
    MeanPredictor,
    benchmark_graphs,
    extrapolate,
    fit_curve,
    graphs_from_cells,
    load_predictor,
    power_law,
    save_predictor,
    split_graphs,
)
from workbench.spaces import NB101Cell, get_space

TINY = dict(hidden=8, layers=2, fc=8, epochs=3, lr=1e-2, batch_size=8, device="cpu")


@pytest.fixture(scope="module")
def nb201_data():
    table = get_benchmark("nb201").table()
    idx = np.random.default_rng(0).choice(len(table), 300, replace=False)
    X = graphs_from_cells("nb201", table["cell"].to_numpy()[idx])
    return X, table["cifar10/test@200"].to_numpy()[idx]


def _curves(n: int = 6) -> np.ndarray:
    t = np.arange(1, 11, dtype=float)
    rng = np.random.default_rng(1)
    return np.stack([90 - rng.uniform(20, 40) * t ** -rng.uniform(0.4, 0.9) for _ in range(n)])


def _cases(nb201_data):
    X, y = nb201_data
    curves = _curves(12)
    table = pd.DataFrame({"params": np.arange(1.0, 13.0), "other": np.ones(12)})
    return [
        (MeanPredictor(), X[:12], y[:12]),
        (FeaturePredictor("params", log=True), table, curves[:, -1]),
        (FeaturePredictor(0, calibrate=False), curves, curves[:, -1]),
        (GCNPredictor(**TINY), X[:40], y[:40]),
        (LastValue(), curves, curves[:, -1] + 1),
        (CurveExtrapolator("pow", final_step=50), curves, curves[:, -1] + 1),
    ]


# -- shared estimator contract -------------------------------------------------------------------

def test_estimators_clone_fit_predict_deterministic(nb201_data):
    for est, X, y in _cases(nb201_data):
        twin = clone(est)
        assert twin is not est and twin.get_params() == est.get_params()
        with pytest.raises(NotFittedError):
            twin.predict(X)
        pred = est.fit(X, y).predict(X)
        assert pred.shape == (len(y),) and np.isfinite(pred).all(), type(est).__name__
        assert np.array_equal(pred, twin.fit(X, y).predict(X)), type(est).__name__
        assert all(k.endswith("_") for k in vars(est) if k not in est.get_params()), vars(est)


def test_baselines_by_hand():
    X = pd.DataFrame({"params": [10.0, 100.0, 1000.0]})
    assert MeanPredictor().fit(X, [1, 2, 6]).predict(np.zeros((2, 5))).tolist() == [3.0, 3.0]
    fp = FeaturePredictor("params", log=True).fit(X, [1.0, 2.0, 3.0])
    assert fp.coef_ == pytest.approx(1.0) and fp.intercept_ == pytest.approx(0.0)
    assert FeaturePredictor("params", calibrate=False).fit(X, [0, 0, 0]).predict(X)[2] == 1000
    with pytest.raises(ValueError, match="nope"):
        FeaturePredictor("nope").fit(X, [1, 2, 3])
    with pytest.raises(ValueError, match="finite"):
        MeanPredictor().fit(X, [1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="samples"):
        MeanPredictor().fit(X, [1.0, 2.0])


# -- graphs --------------------------------------------------------------------------------------

def test_nb201_graphs_follow_to_graph():
    space = get_space("nb201")
    cells = [space.cell(i) for i in (0, 1, 15624)]
    X = graphs_from_cells("nb201", cells)
    n, n_ops = space.graph_nodes, len(space.graph_ops)
    assert X.shape == (3, n, n + n_ops) and X.dtype == np.float32
    adj, ops, mask = split_graphs(X)
    for i, cell in enumerate(cells):
        ref_adj, labels = space.to_graph(cell)
        k = len(labels)
        assert mask[i].sum() == k and np.array_equal(adj[i, :k, :k], ref_adj)
        assert [space.graph_ops[j] for j in ops[i, :k].argmax(1)] == labels
        assert not adj[i, k:].any() and not ops[i, k:].any()


def test_nb101_graphs_are_pruned_and_padded():
    bench = get_benchmark("nb101")
    ids = bench.table()["cell_id"].iloc[:20].tolist()
    X = benchmark_graphs(bench, ids)
    assert X.shape == (20, 7, 7 + len(get_space("nb101").graph_ops))
    adj, ops, mask = split_graphs(X)
    for i, cid in enumerate(ids):
        pruned = bench.cell(cid).prune()
        k = pruned.num_vertices
        assert mask[i].sum() == k and np.array_equal(adj[i, :k, :k], pruned.matrix)
        assert ops[i, 0, 0] == 1 and ops[i, k - 1, -1] == 1  # input first, output last
    small = NB101Cell([[0, 1], [0, 0]], ["input", "output"])
    assert split_graphs(graphs_from_cells("nb101", [small]))[2].sum() == 2
    with pytest.raises(ValueError, match="space"):
        graphs_from_cells("nb999", [small])


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2, 3, 3)), "shape"),
    (np.zeros((2, 3, 5)), "no node"),
    (np.full((1, 2, 4), np.nan), "NaN"),
    ([["a"]], "numeric"),
])
def test_graph_validation(bad, match):
    with pytest.raises(ValueError, match=match):
        split_graphs(bad)


# -- GCN -----------------------------------------------------------------------------------------

def test_gcn_defaults_are_the_papers():
    p = GCNPredictor().get_params()
    assert (p["hidden"], p["layers"], p["fc"], p["epochs"], p["batch_size"]) == (144, 3, 128,
                                                                                 300, 10)
    assert (p["lr"], p["weight_decay"], p["dropout"]) == (1e-4, 1e-3, 0.1)


def test_gcn_learns_a_ranking_on_nb201(nb201_data):
    X, y = nb201_data
    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    model = GCNPredictor(hidden=16, layers=2, fc=16, epochs=5, lr=1e-2, batch_size=20,
                         device="cpu").fit(X[:100], y[:100])
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    assert torch.get_num_threads() == threads
    pred = model.predict(X[100:])
    assert np.isfinite(pred).all() and kendall_tau(pred, y[100:]) > 0
    assert model.y_mean_ == pytest.approx(y[:100].mean()) and len(model.loss_curve_) == 5
    other = GCNPredictor(**{**TINY, "random_state": 1}).fit(X[:40], y[:40]).predict(X[:5])
    assert not np.array_equal(other, GCNPredictor(**TINY).fit(X[:40], y[:40]).predict(X[:5]))


def test_gcn_rank_target_sees_only_the_order_of_the_labels(nb201_data):
    X, y = nb201_data
    model = GCNPredictor(**{**TINY, "target": "rank"}).fit(X[:40], y[:40])
    # Any increasing transform of the labels gives the same ranks, hence the same model.
    warped = GCNPredictor(**{**TINY, "target": "rank"}).fit(X[:40], np.exp(y[:40] / 10.0))
    np.testing.assert_array_equal(model.predict(X[40:60]), warped.predict(X[40:60]))
    raw = GCNPredictor(**TINY).fit(X[:40], np.exp(y[:40] / 10.0))
    assert not np.allclose(raw.predict(X[40:60]), warped.predict(X[40:60]))
    assert model.y_mean_ == pytest.approx(0.5)  # normalised ranks (r - 0.5) / n average 0.5
    with pytest.raises(ValueError, match=r"target must be one of \('raw', 'zscore', 'rank'\), "
                                         r"got 'ranks'"):
        GCNPredictor(**{**TINY, "target": "ranks"}).fit(X[:10], y[:10])


def test_gcn_in_sklearn_tools(nb201_data):
    X, y = nb201_data
    scores = cross_val_score(GCNPredictor(**{**TINY, "epochs": 1}), X[:30], y[:30],
                             cv=GroupKFold(3), groups=np.arange(30) % 10)
    assert scores.shape == (3,) and np.isfinite(scores).all()
    pipe = Pipeline([("id", FunctionTransformer()), ("gcn", GCNPredictor(**TINY))])
    assert pipe.fit(X[:20], y[:20]).predict(X[:3]).shape == (3,)
    assert clone(pipe).get_params()["gcn__hidden"] == 8


def test_gcn_rejects_bad_input(nb201_data):
    X, y = nb201_data
    with pytest.raises(ValueError, match="y has"):
        GCNPredictor(**TINY).fit(X[:10], y[:9])
    with pytest.raises(ValueError, match="finite"):
        GCNPredictor(**TINY).fit(X[:3], [1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="epochs"):
        GCNPredictor(**{**TINY, "epochs": 0}).fit(X[:10], y[:10])
    with pytest.raises(ValueError, match="n_threads"):
        GCNPredictor(**{**TINY, "n_threads": 0}).fit(X[:10], y[:10])
    model = GCNPredictor(**{**TINY, "epochs": 1}).fit(X[:10], y[:10])
    with pytest.raises(ValueError, match="nodes"):
        model.predict(np.zeros((1, 7, 12)) + np.eye(7, 12, 7))
    with pytest.raises(ValueError, match="n_ensemble"):
        GCNPredictor(**{**TINY, "n_ensemble": 0}).fit(X[:10], y[:10])


def test_gcn_ensemble_averages_members_seeded_in_turn(nb201_data):
    X, y = nb201_data
    kw = {**TINY, "target": "rank"}
    ens = GCNPredictor(**kw, n_ensemble=3, random_state=4).fit(X[:40], y[:40])
    assert len(ens.models_) == 3 and len(ens.loss_curve_) == TINY["epochs"]
    assert clone(ens).get_params()["n_ensemble"] == 3
    # Deterministic for a seed, and the mean of single networks seeded random_state + i.
    again = GCNPredictor(**kw, n_ensemble=3, random_state=4).fit(X[:40], y[:40])
    np.testing.assert_array_equal(ens.predict(X[40:60]), again.predict(X[40:60]))
    singles = [GCNPredictor(**kw, random_state=s).fit(X[:40], y[:40]) for s in (4, 5, 6)]
    np.testing.assert_allclose(ens.predict(X[40:60]),
                               np.mean([m.predict(X[40:60]) for m in singles], axis=0),
                               rtol=1e-6, atol=1e-9)
    assert not np.allclose(ens.predict(X[40:60]), singles[0].predict(X[40:60]))
    np.testing.assert_allclose(ens.loss_curve_,
                               np.mean([m.loss_curve_ for m in singles], axis=0), rtol=1e-6)


def test_gcn_ensemble_files_round_trip_and_old_files_load(nb201_data, tmp_path):
    X, y = nb201_data
    ens = GCNPredictor(**TINY, n_ensemble=3).fit(X[:30], y[:30])
    loaded = load_predictor(save_predictor(ens, tmp_path / "ens.npz"))
    assert loaded.get_params() == ens.get_params() and len(loaded.models_) == 3
    np.testing.assert_array_equal(loaded.predict(X[30:50]), ens.predict(X[30:50]))
    # One network keeps the layout of files from before ensembles (weights as ``state.*``), so a
    # file without n_ensemble or n_members, as those were written, loads as a single network.
    single = GCNPredictor(**TINY).fit(X[:30], y[:30])
    path = save_predictor(single, tmp_path / "one.npz")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    assert all(k.startswith("a.state.") for k in arrays if k != "__header__")
    header = json.loads(str(arrays["__header__"]))
    del header["params"]["n_ensemble"], header["attrs"]["n_members"]
    arrays["__header__"] = np.asarray(json.dumps(header))
    np.savez(tmp_path / "old.npz", **arrays)
    old = load_predictor(tmp_path / "old.npz")
    assert old.n_ensemble == 1 and len(old.models_) == 1
    np.testing.assert_array_equal(old.predict(X[30:50]), single.predict(X[30:50]))


# -- learning curves -----------------------------------------------------------------------------

def test_power_law_parameters_are_recovered():
    t = np.arange(1, 21, dtype=float)
    fit = fit_curve(t, power_law(t, 92.0, 35.0, 0.6), "pow")
    assert fit.params == pytest.approx((92.0, 35.0, 0.6), rel=1e-4)
    assert extrapolate(t, power_law(t, 92.0, 35.0, 0.6), 200) == pytest.approx(
        power_law(200.0, 92.0, 35.0, 0.6), abs=1e-3)
    t3 = t * 3.0  # steps in other units: same curve family, parameters in those units
    assert fit_curve(t3, power_law(t3, 92.0, 35.0, 0.6), "pow").params[1] == pytest.approx(35.0,
                                                                                         rel=1e-3)


def test_exponential_and_ensemble():
    t = np.arange(1, 16, dtype=float)
    v = 88.0 - 30.0 * np.exp(-0.3 * t)
    assert fit_curve(t, v, "exp").params == pytest.approx((88.0, 30.0, 0.3), rel=1e-4)
    assert extrapolate(t, v, 100, "ens") == pytest.approx(88.0, abs=0.5)
    noisy = v + np.random.default_rng(0).normal(0, 0.2, t.size)
    last_error = abs(extrapolate(t, noisy, 100, "last") - 88.0)
    for model in ("exp", "ens"):
        assert abs(extrapolate(t, noisy, 100, model, clip=(0, 100)) - 88.0) < last_error


def test_curve_fallbacks_and_grid():
    assert extrapolate([1, 2], [50.0, 60.0], 100) == 60.0  # too few points: last value
    assert fit_curve([1, 2, 3], [5.0, 5.0, 5.0], "exp").fallback
    curves = _curves(3)
    curves[0, 6:] = np.nan  # observed for 6 steps only
    assert LastValue().fit(curves).predict(curves)[0] == curves[0, 5]
    grid = np.arange(1, 11) * 2.0
    est = CurveExtrapolator("pow", final_step=40, steps=grid).fit(curves)
    assert est.predict(curves).shape == (3,)
    with pytest.raises(ValueError, match="steps"):
        CurveExtrapolator(steps=[1, 2]).fit(curves)
    with pytest.raises(ValueError, match="model"):
        CurveExtrapolator("spline").fit(curves)


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=8),
       pos=st.integers(0, 7), kind=st.sampled_from(["order", "length", "nonpositive"]))
def test_curve_validators(values, pos, kind):
    steps = np.arange(1.0, len(values) + 1)
    if kind == "length":
        steps = np.arange(1.0, len(values) + 2)
    elif kind == "order":
        steps = steps[::-1].copy() if len(values) > 1 else np.array([1.0, 0.5])
    else:
        steps[pos % len(values)] = 0.0
    with pytest.raises(ValueError, match="steps"):
        extrapolate(steps, values, 100)
