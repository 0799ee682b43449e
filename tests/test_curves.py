"""Sample-size curves: the item-weighted Kendall tau, the curve rows and their summaries, the
NB201 validation labels and the figure."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from sklearn.linear_model import LinearRegression

from workbench._paths import shared_data_dir
from workbench.benchmarks import NB201_VAL200_FILE, get_benchmark, nb201_val200_accuracies
from workbench.evaluation import (
    CURVE_COLUMNS,
    CurvePredictor,
    curve_table,
    kendall_tau,
    sample_size_curves,
    sample_weighted_tau,
    summarize_curves,
    training_rows,
)
from workbench.viz import (
    CURVE_DATA_COLUMNS,
    get_figure,
    plot_sample_size_curves,
    sample_size_curve_data,
)

# -- the item-weighted Kendall tau -------------------------------------------------------------


def test_sample_weighted_tau_is_tau_b_with_equal_weights_and_on_repeated_items():
    rng = np.random.default_rng(0)
    p, t = rng.normal(size=40).round(1), rng.normal(size=40).round(1)  # with ties
    assert sample_weighted_tau(p, t, np.full(40, 3.0)) == pytest.approx(kendall_tau(p, t))
    w = rng.integers(1, 4, size=40)
    rep = np.repeat(np.arange(40), w)
    assert sample_weighted_tau(p, t, w) == pytest.approx(kendall_tau(p[rep], t[rep]))
    w0 = np.where(np.arange(40) < 10, 0.0, 1.0)  # zero weight = left out
    assert sample_weighted_tau(p, t, w0) == pytest.approx(kendall_tau(p[10:], t[10:]))
    big = rng.normal(size=2500)  # more rows than one block
    assert sample_weighted_tau(big, -big, np.ones(2500)) == pytest.approx(-1.0)


def test_sample_weighted_tau_validates_and_is_nan_when_all_weighted_pairs_tie():
    assert math.isnan(sample_weighted_tau([1, 1, 2], [1, 2, 3], [1, 1, 0]))
    with pytest.raises(ValueError, match="differ in length"):
        sample_weighted_tau([1, 2, 3], [1, 2, 3], [1, 1])
    for bad in ([1, -1, 1], [0, 0, 0], [1, np.nan, 1]):
        with pytest.raises(ValueError, match="finite and >= 0"):
            sample_weighted_tau([1, 2, 3], [1, 2, 3], bad)


# -- curve rows --------------------------------------------------------------------------------

def _data(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, X @ np.array([1.0, 0.5, 0.0]) + 0.3 * rng.normal(size=n)


def test_sample_size_curves_rows_columns_and_side_by_side_draws():
    X, y = _data()
    rows = sample_size_curves(
        {"lin": lambda seed: LinearRegression(), "x0": X[:, 0],
         "slow": CurvePredictor(lambda seed: LinearRegression(), X=X[:, :1], ns=[20],
                                seeds=[1])},
        y, X=X, ns=[10, 20], seeds=[0, 1])
    assert list(rows.columns) == list(CURVE_COLUMNS)
    assert len(rows) == 2 * 2 * 2 + 1
    assert set(rows.loc[rows["predictor"] == "slow", ["n", "seed"]].itertuples(index=False)) \
        == {(20, 1)}
    assert (rows["n_test"] == 60 - rows["n"]).all()
    fixed = rows[rows["predictor"] == "x0"]
    assert (fixed["fit_seconds"] == 0).all() and (rows.loc[rows["predictor"] == "lin",
                                                           "fit_seconds"] > 0).all()
    # the fixed score is judged on exactly the cells left out of the draw
    train = training_rows(np.arange(60), 10, 0)
    test = np.setdiff1d(np.arange(60), train)
    got = fixed[(fixed["n"] == 10) & (fixed["seed"] == 0)]["kendall_tau"].item()
    assert got == pytest.approx(kendall_tau(X[test, 0], y[test]))
    lin = rows[rows["predictor"] == "lin"]
    assert (lin["kendall_tau"] > 0.5).all() and (lin["spearman_rho"] > 0.6).all()
    # nested: for one seed the smaller training set is inside the larger
    assert set(training_rows(np.arange(60), 10, 3)) <= set(training_rows(np.arange(60), 20, 3))
    again = sample_size_curves({"lin": lambda seed: LinearRegression()}, y, X=X, ns=[10],
                               seeds=[0])
    assert again["kendall_tau"].item() == pytest.approx(
        lin[(lin["n"] == 10) & (lin["seed"] == 0)]["kendall_tau"].item())


def test_sample_size_curves_weights_groups_pool_and_frames():
    X, y = _data()
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    groups = np.where(np.arange(60) % 3 == 0, "small", "big")
    rows = sample_size_curves({"lin": lambda seed: LinearRegression()}, pd.Series(y), X=frame,
                              ns=[15], seeds=[0], weights=np.linspace(0, 1, 60), groups=groups,
                              pool=np.arange(30))
    row = rows.iloc[0]
    assert {"weighted_kendall_tau", "kendall_tau[big]", "kendall_tau[small]",
            "n_test[small]"} <= set(rows.columns)
    assert row["n_test[small]"] + row["n_test[big]"] == row["n_test"] == 45
    assert -1 <= row["weighted_kendall_tau"] <= 1
    assert set(training_rows(np.arange(30), 15, 0)) <= set(range(30))
    cells = [f"c{i}" for i in range(60)]  # a plain sequence of inputs
    seq = sample_size_curves({"first": CurvePredictor(lambda s: _Index(X[:, 0]), X=cells)}, y,
                             ns=[10], seeds=[0])
    assert seq["kendall_tau"].item() > 0.3


class _Index:
    """A toy estimator over cell names 'c<i>': predicts a fixed column by index."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def fit(self, X: list[str], y: np.ndarray) -> _Index:
        assert isinstance(X, list) and len(X) == len(y)
        return self

    def predict(self, X: list[str]) -> np.ndarray:
        return self.values[[int(c[1:]) for c in X]]


def test_sample_size_curves_rejects_bad_inputs():
    X, y = _data()
    lin = {"lin": lambda seed: LinearRegression()}
    with pytest.raises(ValueError, match="needs inputs"):
        sample_size_curves(lin, y, ns=[10], seeds=[0])
    with pytest.raises(ValueError, match="have 59 rows but y has 60"):
        sample_size_curves(lin, y, X=X[:59], ns=[10], seeds=[0])
    with pytest.raises(ValueError, match="test rows"):
        sample_size_curves(lin, y, X=X, ns=[59], seeds=[0])
    with pytest.raises(ValueError, match="n must be"):
        sample_size_curves(lin, y, X=X, ns=[100], seeds=[0])
    with pytest.raises(ValueError, match="exactly one of make"):
        CurvePredictor()
    with pytest.raises(ValueError, match="must be finite"):
        sample_size_curves(lin, np.r_[y[:-1], np.nan], X=X, ns=[10], seeds=[0])
    with pytest.raises(ValueError, match="weights must be"):
        sample_size_curves(lin, y, X=X, ns=[10], seeds=[0], weights=np.ones(3))
    with pytest.raises(ValueError, match=r"predictor 'nan' at n=10, seed=0"):
        sample_size_curves({"nan": np.full(60, np.nan)}, y, ns=[10], seeds=[0])


def test_summaries_and_tables_keep_the_order_and_format():
    X, y = _data()
    rows = sample_size_curves({"lin": lambda seed: LinearRegression(), "x0": X[:, 0]}, y, X=X,
                              ns=[20, 10], seeds=[0, 1, 2])
    agg = summarize_curves(rows)
    assert list(agg["predictor"]) == ["lin", "lin", "x0", "x0"] and list(agg["n"]) == [10, 20] * 2
    assert (agg["count"] == 3).all() and (agg["metric"] == "kendall_tau").all()
    one = rows[(rows["predictor"] == "lin") & (rows["n"] == 10)]["kendall_tau"]
    assert agg.loc[0, "mean"] == pytest.approx(one.mean())
    assert agg.loc[0, "sd"] == pytest.approx(one.std(ddof=1))
    table = curve_table(rows)
    assert list(table.columns) == ["N=10", "N=20"] and list(table.index) == ["lin", "x0"]
    assert " ± " in table.loc["lin", "N=10"]
    assert " ± " not in curve_table(rows, "fit_seconds", sd=False).loc["lin", "N=10"]
    assert curve_table(rows[~((rows["predictor"] == "x0") & (rows["n"] == 20))]).loc[
        "x0", "N=20"] == "-"
    with pytest.raises(ValueError, match="lacks columns"):
        summarize_curves(rows, "bogus")


# -- NB201 validation labels -------------------------------------------------------------------

@pytest.mark.skipif(shared_data_dir() is None
                    or not (shared_data_dir() / NB201_VAL200_FILE).is_file(),
                    reason="no shared NB201 validation file")
def test_nb201_val200_accuracies_cover_the_distinct_cells(tmp_path):
    bench = get_benchmark("nb201")
    val = nb201_val200_accuracies(bench)
    assert list(val.index) == bench.distinct_ids() and val.between(0, 100).all()
    test = bench.all_accuracies().loc[val.index]
    assert 0.95 < val.corr(test, method="spearman") < 0.99
    raw = pd.read_csv(shared_data_dir() / NB201_VAL200_FILE)
    raw.iloc[:-1].to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(ValueError, match="distinct"):
        nb201_val200_accuracies(bench, path=tmp_path / "short.csv")
    with pytest.raises(FileNotFoundError):
        nb201_val200_accuracies(bench, path=tmp_path / "missing.csv")


def test_nb201_val200_accuracies_is_for_nb201_only():
    with pytest.raises(ValueError, match="nb201 only"):
        nb201_val200_accuracies(get_benchmark("nb101"))


# -- the figure --------------------------------------------------------------------------------

def test_curve_figure_from_rows_results_and_json(tmp_path):
    X, y = _data()
    rows = sample_size_curves({"lin": lambda seed: LinearRegression(), "x0": X[:, 0]}, y, X=X,
                              ns=[10, 20], seeds=[0, 1])
    data = sample_size_curve_data(rows)
    assert list(data.columns) == CURVE_DATA_COLUMNS and set(data["label_set"]) == {""}
    assert dict(zip(data["predictor"], data["fitted"], strict=True)) == {"lin": True,
                                                                        "x0": False}
    results = {"sections": {"a/b": {"rows": rows.to_dict(orient="records")},
                            "c/d": {"rows": rows.to_dict(orient="records")}, "e": {}}}
    path = tmp_path / "curves.json"
    path.write_text(json.dumps(results))
    both = sample_size_curve_data(path, metric="spearman_rho", predictors=["x0"])
    assert list(dict.fromkeys(both["label_set"])) == ["a/b", "c/d"]
    assert set(both["predictor"]) == {"x0"} and (both["metric"] == "spearman_rho").all()
    fig = plot_sample_size_curves(sample_size_curve_data(results), title="t")
    assert isinstance(fig, go.Figure) and fig.layout.title.text == "t"
    assert len(fig.data) == 4 and sum(tr.showlegend for tr in fig.data) == 2
    assert {tr.line.dash for tr in fig.data} == {"solid", "dot"}
    fig2 = get_figure("sample_size_curves", log_x=False)(results, label_sets=["c/d"])
    assert len(fig2.data) == 2
    with pytest.raises(ValueError, match="unknown label sets"):
        sample_size_curve_data(results, label_sets=["x"])
    with pytest.raises(ValueError, match="no metric"):
        sample_size_curve_data(rows, metric="bogus")
    with pytest.raises(ValueError, match="expected rows"):
        sample_size_curve_data({"x": 1})
    with pytest.raises(ValueError, match="lacks columns"):
        plot_sample_size_curves(rows)
