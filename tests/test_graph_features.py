"""GRAF neural graph features and the GraphFeatureRegressor: hand-counted cells, invariance under
NB101 isomorphism and NB201 dead-edge pruning, random cells, and the estimator contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from workbench.benchmarks import get_benchmark
from workbench.predictors import (
    GRAPH_FEATURE_VERSION,
    GraphFeatureRegressor,
    GraphFeatures,
    get_predictor,
    graph_feature_names,
    graph_features,
    load_predictor,
    read_header,
    save_predictor,
)
from workbench.spaces import NB201_EDGES, NB201_OPS, NB101Cell, NB201Cell, get_space

C1, C3, MP = "conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3"
SKIP, CONV1, CONV3, POOL = "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"
ALL201 = f"{SKIP}+{CONV1}+{CONV3}+{POOL}"


def _row(space: str, cell) -> pd.Series:
    return graph_features(space, [cell]).iloc[0]


# -- feature list --------------------------------------------------------------------------------

def test_feature_names_are_unique_and_sized_by_the_op_subsets():
    for space, n_types in (("nb201", 4), ("nb101", 3)):
        names = graph_feature_names(space)
        subsets = 2 ** n_types - 1
        assert len(names) == len(set(names)) == 2 + 6 * subsets + 4 * n_types + 2
    assert f"min_path.{SKIP}" in graph_feature_names("nb201")
    assert "none" not in " ".join(graph_feature_names("nb201"))
    assert GRAPH_FEATURE_VERSION == 1


# -- hand-counted cells --------------------------------------------------------------------------

def test_nb201_all_skip_cell():
    f = _row("nb201", NB201Cell([SKIP] * 6))
    # op nodes a=0->1, b=0->2, c=1->2, d=0->3, e=1->3, f=2->3; input feeds a, b, d; a feeds c, e;
    # b and c feed f; d, e, f feed the output: 3 + 2 + 2 + 3 = 10 edges.
    assert f["n_edges"] == 10 and f["input_output_edge"] == 0
    assert f[f"count.{SKIP}"] == 6 and f[f"count.{CONV3}"] == 0 and f[f"count.{ALL201}"] == 6
    assert f[f"min_path.{SKIP}"] == 1 and f[f"has_path.{SKIP}"] == 1
    assert f[f"max_on_path.{SKIP}"] == 3  # 0 -> 1 -> 2 -> 3
    assert f[f"min_path.{CONV3}"] == 7 and f[f"has_path.{CONV3}"] == 0  # sentinel: 8 nodes - 1
    assert f[f"max_on_path.{CONV3}"] == 0
    assert f[f"input_out.{SKIP}"] == 3 and f[f"output_in.{SKIP}"] == 3
    assert f[f"in_max.{SKIP}"] == 2 and f[f"out_max.{SKIP}"] == 2
    assert f[f"in_mean.{SKIP}"] == pytest.approx(7 / 6) == f["in_mean"]
    assert f[f"out_mean.{SKIP}"] == pytest.approx(7 / 6) == f["out_mean"]


def test_nb201_single_conv_chain():
    cell = NB201Cell([CONV3, "none", CONV3, "none", "none", CONV3])  # 0 -> 1 -> 2 -> 3
    f = _row("nb201", cell)
    assert f["n_edges"] == 4 and f[f"count.{CONV3}"] == 3
    assert f[f"min_path.{CONV3}"] == 3 and f[f"max_on_path.{CONV3}"] == 3
    assert f[f"min_path.{SKIP}+{CONV3}"] == 3 and f[f"max_on_path.{SKIP}+{CONV3}"] == 3
    assert f[f"min_path.{SKIP}"] == 7 and f[f"has_path.{SKIP}"] == 0
    assert f[f"input_out.{CONV3}"] == 1 and f[f"output_in.{CONV3}"] == 1
    assert f[f"in_mean.{CONV3}"] == 1 and f[f"out_max.{CONV3}"] == 1
    assert f[f"count.{SKIP}"] == 0 and f[f"in_mean.{SKIP}"] == 0


def test_nb201_cell_without_a_path_has_empty_features():
    f = _row("nb201", NB201Cell([CONV3, CONV1, POOL, "none", "none", "none"]))
    assert f["n_edges"] == 0 and f[f"count.{ALL201}"] == 0
    assert f[f"has_path.{ALL201}"] == 0 and f[f"min_path.{ALL201}"] == 7
    assert f[f"max_on_path.{ALL201}"] == 0


def test_nb101_conv_chain_and_direct_edge():
    chain = NB101Cell([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", C3, "output"])
    f = _row("nb101", chain)
    assert f["n_edges"] == 2 and f["input_output_edge"] == 0 and f[f"count.{C3}"] == 1
    assert f[f"min_path.{C3}"] == 1 and f[f"max_on_path.{C3}"] == 1
    assert f[f"min_path.{C1}"] == 6 and f[f"has_path.{C1}"] == 0  # sentinel: 7 nodes - 1
    assert f[f"input_out.{C3}"] == 1 and f[f"output_in.{C3}"] == 1
    skip = NB101Cell([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", MP, "output"])
    g = _row("nb101", skip)
    assert g["input_output_edge"] == 1 and g[f"min_path.{C1}"] == 0  # the direct edge counts
    assert g[f"has_path.{C1}"] == 1 and g[f"max_on_path.{MP}"] == 1 and g["n_edges"] == 3


# -- invariances ---------------------------------------------------------------------------------

def _permuted(cell: NB101Cell, perm: list[int]) -> NB101Cell | None:
    """``cell`` with intermediate vertices relabelled by ``perm`` (None if not upper-triangular)."""
    n = cell.num_vertices
    order = [0, *[1 + p for p in perm], n - 1]  # new vertex k is old vertex order[k]
    m = cell.matrix[np.ix_(order, order)]
    if np.tril(m).any():
        return None
    return NB101Cell(m, [cell.ops[i] for i in order])


def _random_topological_order(cell: NB101Cell, rng: np.random.Generator) -> list[int]:
    """A random topological order of the intermediate vertices, as 0-based intermediate indices
    (so relabelling by it keeps the matrix upper-triangular)."""
    m, n = cell.matrix, cell.num_vertices
    indeg = m.sum(0)
    indeg[1:] -= m[0, 1:]  # the input comes first
    ready = [v for v in range(1, n - 1) if indeg[v] == 0]
    order = []
    while ready:
        v = ready.pop(int(rng.integers(len(ready))))
        order.append(v - 1)
        for w in np.flatnonzero(m[v]):
            indeg[w] -= 1
            if indeg[w] == 0 and w != n - 1:
                ready.append(int(w))
    return order


def test_nb101_isomorphic_cells_have_the_same_features():
    # input feeds two parallel branches (conv3x3, maxpool) that meet in a conv1x1.
    m = [[0, 1, 1, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    a = NB101Cell(m, ["input", C3, MP, C1, "output"])
    b = _permuted(a, [1, 0, 2])
    assert b is not None and b != a and b.hash == a.hash
    pd.testing.assert_frame_equal(graph_features("nb101", [a]).reset_index(drop=True),
                                  graph_features("nb101", [b]).reset_index(drop=True))
    space, rng, checked = get_space("nb101"), np.random.default_rng(0), 0
    for _ in range(40):
        cell = space.sample(rng)
        twin = _permuted(cell, _random_topological_order(cell, rng))
        if twin is None or twin == cell:
            continue
        assert twin.hash == cell.hash
        np.testing.assert_array_equal(graph_features("nb101", [cell]).to_numpy(),
                                      graph_features("nb101", [twin]).to_numpy())
        checked += 1
    assert checked >= 5


def _without_dead_edges(cell: NB201Cell) -> NB201Cell:
    """``cell`` with every edge on no node-0 -> node-3 path of non-none edges set to none."""
    live = [op != "none" for op in cell.ops]
    fwd, bwd = {0}, {3}
    for _ in range(3):
        fwd |= {d for (s, d), ok in zip(NB201_EDGES, live, strict=True) if ok and s in fwd}
        bwd |= {s for (s, d), ok in zip(NB201_EDGES, live, strict=True) if ok and d in bwd}
    ops = [op if ok and s in fwd and d in bwd else "none"
           for (s, d), op, ok in zip(NB201_EDGES, cell.ops, live, strict=True)]
    return NB201Cell(ops)


ops201 = st.lists(st.sampled_from(NB201_OPS), min_size=6, max_size=6)


@given(ops201)
@settings(max_examples=60, deadline=None)
def test_nb201_features_ignore_dead_edges_and_are_finite(ops):
    cell = NB201Cell(ops)
    f = graph_features("nb201", [cell, _without_dead_edges(cell)])
    assert f.shape == (2, len(graph_feature_names("nb201")))
    assert np.isfinite(f.to_numpy()).all() and (f.to_numpy() >= 0).all()
    np.testing.assert_array_equal(f.iloc[0].to_numpy(), f.iloc[1].to_numpy())
    mins = f.filter(like="min_path.").to_numpy()
    has = f.filter(like="has_path.").to_numpy()
    assert ((has == 1) == (mins < 7)).all()


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=25, deadline=None)
def test_random_nb101_cells_have_finite_fixed_length_features(seed):
    cell = get_space("nb101").sample(seed)
    f = graph_features("nb101", [cell])
    assert f.shape == (1, len(graph_feature_names("nb101"))) and f.index[0] == cell.hash
    assert np.isfinite(f.to_numpy()).all()
    assert f.iloc[0][f"count.{C1}+{C3}+{MP}"] == cell.prune().num_vertices - 2


def test_features_follow_cell_order_and_ids_and_accept_strings():
    space = get_space("nb201")
    cells = [space.sample(i) for i in range(5)]
    frame = graph_features("nb201", [str(c) for c in cells])
    assert list(frame.index) == [space.cell_id(c) for c in cells]
    assert frame.dtypes.eq(np.float64).all()
    np.testing.assert_array_equal(frame.to_numpy(), graph_features(space, cells).to_numpy())


def test_feature_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"unknown search space 'nb999'; available"):
        graph_features("nb999", [])
    with pytest.raises(ValueError, match="sequence of cells"):
        graph_features("nb201", "|skip_connect~0|")
    with pytest.raises(ValueError, match="unknown op"):
        graph_features("nb201", ["|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|"])
    assert graph_features("nb201", []).shape == (0, len(graph_feature_names("nb201")))


# -- the transformer -----------------------------------------------------------------------------

def test_graph_features_transformer_appends_proxy_columns():
    space = get_space("nb201")
    cells = [space.sample(i) for i in range(6)]
    ids = [space.cell_id(c) for c in cells]
    proxies = pd.DataFrame({"synflow": np.arange(6.0), "note": list("abcdef")},
                           index=[int(i) for i in ids])
    gf = GraphFeatures("nb201", proxies=proxies)
    assert clone(gf).get_params()["space"] == "nb201"
    out = gf.fit().transform(cells)
    names = graph_feature_names("nb201")
    assert list(gf.get_feature_names_out()) == [*names, "synflow"] == list(out.columns)
    np.testing.assert_array_equal(out["synflow"].to_numpy(), np.arange(6.0))
    plain = GraphFeatures().fit(cells)
    assert list(plain.get_feature_names_out()) == names
    other = next(c for c in map(space.sample, range(10, 99)) if space.cell_id(c) not in ids)
    with pytest.raises(ValueError, match="no row for cell ids"):
        gf.transform([other])
    with pytest.raises(ValueError, match="DataFrame indexed by cell id"):
        GraphFeatures(proxies=[1, 2]).fit()


# -- the regressor -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nb201_data():
    bench, rng = get_benchmark("nb201"), np.random.default_rng(1)
    ids = bench.sample_ids(60, rng)
    cells = [bench.cell(i) for i in ids]
    return cells, np.array([bench.final_accuracy(c) for c in cells])


@pytest.mark.parametrize("model", ["xgb", "rf"])
def test_regressor_fits_predicts_clones_saves_and_loads(model, nb201_data, tmp_path):
    cells, y = nb201_data
    est = GraphFeatureRegressor(model=model, n_estimators=30, n_ensemble=2, random_state=3)
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    pred = est.fit(cells[:40], y[:40]).predict(cells[40:])
    assert pred.shape == (20,) and np.isfinite(pred).all()
    assert len(est.models_) == 2 and est.n_features_in_ == len(graph_feature_names("nb201"))
    assert est.feature_importances_.shape == (est.n_features_in_,)
    np.testing.assert_array_equal(twin.fit(cells[:40], y[:40]).predict(cells[40:]), pred)
    train = est.predict(cells[:40])
    assert np.corrcoef(train, y[:40])[0, 1] > 0.5
    path = save_predictor(est, tmp_path / f"graf_{model}.npz", metadata={"n": 40})
    back = load_predictor(path)
    assert isinstance(back, GraphFeatureRegressor) and back.get_params() == est.get_params()
    np.testing.assert_allclose(back.predict(cells[40:]), pred, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(back.feature_importances_, est.feature_importances_)
    assert read_header(path)["metadata"] == {"n": 40}


def test_regressor_seeds_rank_target_and_registry(nb201_data):
    cells, y = nb201_data
    a = GraphFeatureRegressor(n_estimators=30, random_state=0).fit(cells, y).predict(cells)
    b = GraphFeatureRegressor(n_estimators=30, random_state=1).fit(cells, y).predict(cells)
    assert not np.array_equal(a, b)  # row and column subsampling follow the seed
    r = GraphFeatureRegressor(n_estimators=30, target="rank").fit(cells, y).predict(cells)
    assert 0 <= r.min() and r.max() <= 1
    assert isinstance(get_predictor("graf", n_estimators=5), GraphFeatureRegressor)


def test_regressor_passes_extra_columns_through(nb201_data):
    cells, y = nb201_data
    frame = graph_features("nb201", cells)
    frame["oracle"] = y  # an extra "proxy" column that is the label itself
    est = GraphFeatureRegressor(n_estimators=50, colsample=1.0).fit(frame, y)
    assert est.feature_names_in_[-1] == "oracle"
    assert est.feature_importances_[-1] > 0
    moved = frame.assign(oracle=frame["oracle"].to_numpy()[::-1])
    assert not np.allclose(est.predict(moved), est.predict(frame))  # the trees read it
    np.testing.assert_array_equal(est.predict(frame), est.predict(frame[::-1])[::-1])
    with pytest.raises(ValueError, match=r"extra columns \['oracle'\]"):
        est.predict(cells)
    with pytest.raises(ValueError, match=r"lacks the columns \['oracle'\]"):
        est.predict(frame.drop(columns="oracle"))
    with pytest.raises(ValueError, match="lacks graph feature columns"):
        GraphFeatureRegressor().fit(frame[["oracle"]], y)


@pytest.mark.parametrize(("params", "match"), [
    ({"space": "nb999"}, r"unknown search space 'nb999'; available"),
    ({"model": "svm"}, r"model must be one of \('xgb', 'rf'\), got 'svm'"),
    ({"target": "zscore"}, r"target must be one of \('raw', 'rank'\)"),
    ({"n_ensemble": 0}, "n_ensemble must be"),
    ({"subsample": 1.5}, "subsample must be"),
])
def test_regressor_rejects_bad_parameters(params, match, nb201_data):
    cells, y = nb201_data
    with pytest.raises(ValueError, match=match):
        GraphFeatureRegressor(**params).fit(cells[:5], y[:5])


def test_regressor_rejects_bad_labels_and_inputs(nb201_data):
    cells, y = nb201_data
    bad = y[:10].copy()
    bad[[2, 7]] = np.nan
    ids = [get_space("nb201").cell_id(cells[i]) for i in (2, 7)]
    with pytest.raises(ValueError, match=rf"2 NaN or inf labels, at cells \['{ids[0]}', "
                                         rf"'{ids[1]}'\]"):
        GraphFeatureRegressor().fit(cells[:10], bad)
    with pytest.raises(ValueError, match="X has 10 cells but y has 9"):
        GraphFeatureRegressor().fit(cells[:10], y[:9])
    with pytest.raises(ValueError, match="not a numeric array"):
        GraphFeatureRegressor().fit(np.zeros((10, 3)), y[:10])


def test_regressor_on_nb101_cells():
    space = get_space("nb101")
    cells = [space.sample(s) for s in range(30)]
    y = np.array([float(c.prune().num_vertices) for c in cells])
    est = GraphFeatureRegressor("nb101", n_estimators=40, learning_rate=0.3).fit(cells, y)
    assert np.corrcoef(est.predict(cells), y)[0, 1] > 0.9


def test_every_graph_feature_subset_name_is_in_op_order():
    ops = [SKIP, CONV1, CONV3, POOL]
    for name in graph_feature_names("nb201"):
        if "." in name:
            parts = name.split(".", 1)[1].split("+")
            assert parts == sorted(parts, key=ops.index)
    assert f"count.{SKIP}+{POOL}" in graph_feature_names("nb201")
