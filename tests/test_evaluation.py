"""Metrics, bootstrap intervals, grouped CV, baselines and the one-call comparison."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from workbench.benchmarks import get_benchmark
from workbench.evaluation import (
    METRICS,
    TIDY_COLUMNS,
    Cost,
    Stopwatch,
    bootstrap_ci,
    compare_predictors,
    evaluate_predictions,
    grouped_cross_validate,
    grouped_folds,
    kendall_tau,
    mae,
    mean_baseline_errors,
    metrics_table,
    mse,
    paired_arrays,
    point_metrics,
    r2,
    rank_correlations,
    regret_at_1,
    resolve_k,
    spearman_rho,
    top_k_precision,
    weighted_tau,
)
from workbench.predictors import MeanPredictor

RNG = np.random.default_rng(0)
TRUE = RNG.normal(90, 2, 60)
PRED = TRUE + RNG.normal(0, 1.5, 60)


# -- rank correlations ---------------------------------------------------------------------------

def test_kendall_tau_b_by_hand_with_ties():
    # pairs: (0,1) tied in pred, (0,2) and (1,2) concordant -> 2 / sqrt((3-1) * 3)
    assert kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


@pytest.mark.parametrize("pred, true", [
    ([1, 2, 2, 3, 5, 5], [2, 1, 3, 3, 4, 6]),
    (PRED, TRUE),
    (np.round(PRED), np.round(TRUE)),
])
def test_rank_metrics_match_scipy(pred, true):
    assert kendall_tau(pred, true) == pytest.approx(stats.kendalltau(pred, true).statistic)
    assert spearman_rho(pred, true) == pytest.approx(stats.spearmanr(pred, true).statistic)
    assert weighted_tau(pred, true) == pytest.approx(stats.weightedtau(pred, true).statistic)
    assert weighted_tau(pred, true) == pytest.approx(weighted_tau(true, pred))


def test_spearman_by_hand_and_constant_gives_nan():
    assert spearman_rho([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))


def test_rank_correlations_skips_missing_rows():
    signals = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0], "b": [4.0, 3.0, 2.0, 1.0]})
    out = rank_correlations(signals, [1, 2, 3, 4]).set_index("signal")
    assert out.loc["a", "n"] == 3 and out.loc["a", "kendall_tau"] == pytest.approx(1.0)
    assert out.loc["b", "kendall_tau"] == pytest.approx(-1.0)


# -- selection -----------------------------------------------------------------------------------

def test_top_k_precision_by_hand():
    true = [10, 9, 8, 1, 2, 3]
    pred = [6, 5, 1, 4, 3, 2]  # picks 0, 1, 3; the best three are 0, 1, 2
    assert top_k_precision(pred, true, 3) == pytest.approx(2 / 3)
    assert top_k_precision(pred, true, 1) == 1.0
    assert top_k_precision(pred, true, 6) == 1.0


def test_top_k_precision_ties():
    # all predictions tied: the expected hits of a random order
    assert top_k_precision([1, 1, 1, 1], [1, 2, 3, 4], 1) == pytest.approx(0.25)
    assert top_k_precision([1, 1, 1, 1], [1, 2, 3, 4], 2) == pytest.approx(0.5)
    # a pick tied with the true k-th best counts as a hit
    assert top_k_precision([4, 1, 3, 2], [3, 2, 2, 1], 2) == 1.0


def test_top_k_fraction():
    assert resolve_k(0.05, 40) == 2 and resolve_k(0.05, 10) == 1 and resolve_k(3, 5) == 3
    true = np.arange(40.0)
    assert top_k_precision(true, true, 0.05) == 1.0
    assert top_k_precision(-true, true, 0.05) == 0.0
    for bad in (0, 41, 1.5, -0.1, True, "3"):
        with pytest.raises(ValueError, match="k"):
            resolve_k(bad, 40)


def test_regret_at_1_by_hand():
    assert regret_at_1([1, 3, 2], [5, 4, 6]) == pytest.approx(2.0)
    assert regret_at_1([1, 2, 3], [5, 4, 6]) == 0.0
    assert regret_at_1([2, 2, 1], [5, 4, 6]) == pytest.approx(1.5)  # tie: expected regret


# -- errors and the mean baseline ----------------------------------------------------------------

def test_errors_match_sklearn():
    assert mse(PRED, TRUE) == pytest.approx(mean_squared_error(TRUE, PRED))
    assert mae(PRED, TRUE) == pytest.approx(mean_absolute_error(TRUE, PRED))
    assert r2(PRED, TRUE) == pytest.approx(r2_score(TRUE, PRED))
    assert math.isnan(r2([1, 2], [3, 3]))


def test_mean_baseline_is_computed():
    base = mean_baseline_errors(TRUE)
    assert base["mse"] == pytest.approx(np.var(TRUE))
    assert base["mae"] == pytest.approx(np.mean(np.abs(TRUE - TRUE.mean())))
    shifted = mean_baseline_errors(TRUE, mean=TRUE.mean() + 1.0)
    assert shifted["mse"] == pytest.approx(np.var(TRUE) + 1.0)


def test_point_metrics_names_and_small_n():
    out = point_metrics([4, 3, 2, 1], [1, 2, 4, 3])
    assert list(out) == list(METRICS)
    assert math.isnan(out["top5_precision"]) and math.isnan(out["top10_precision"])
    assert out["top3_precision"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="unknown metric"):
        point_metrics([1, 2], [1, 2], ["nope"])


# -- bootstrap -----------------------------------------------------------------------------------

def test_bootstrap_ci_contains_estimate_and_is_seeded():
    lo, hi = bootstrap_ci(kendall_tau, PRED, TRUE, n_boot=100, seed=3)
    assert lo <= kendall_tau(PRED, TRUE) <= hi and lo < hi
    assert bootstrap_ci(kendall_tau, PRED, TRUE, n_boot=100, seed=3) == (lo, hi)
    assert bootstrap_ci(kendall_tau, PRED, TRUE, n_boot=100, seed=4) != (lo, hi)
    wide = bootstrap_ci(kendall_tau, PRED, TRUE, n_boot=100, seed=3, level=0.99)
    assert wide[0] <= lo and wide[1] >= hi


def test_bootstrap_rejects_bad_settings():
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci(mse, PRED, TRUE, n_boot=0)
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(mse, PRED, TRUE, level=1.5)


# -- one-call evaluation -------------------------------------------------------------------------

def test_evaluate_predictions_is_tidy():
    df = evaluate_predictions(PRED, TRUE, name="mine", baselines={"noise": TRUE[::-1]},
                              n_boot=50, costs={"mine": Cost(1.0, 2.0, 0.5)})
    assert tuple(df.columns) == TIDY_COLUMNS
    wide = metrics_table(df)
    assert list(wide.index) == ["mine", "noise"]
    assert wide.loc["mine", "kendall_tau"] == pytest.approx(kendall_tau(PRED, TRUE))
    assert wide.loc["mine", "mse_mean_baseline"] == pytest.approx(np.var(TRUE))
    assert wide.loc["mine", "total_s"] == 3.5 and math.isnan(wide.loc["noise", "total_s"])
    tau = df[(df.predictor == "mine") & (df.metric == "kendall_tau")].iloc[0]
    assert tau.ci_low <= tau.value <= tau.ci_high and tau.n == TRUE.size
    no_ci = evaluate_predictions(PRED, TRUE, ci=False, metrics=["mse"])
    assert set(no_ci.metric) == {"mse", "mse_mean_baseline", "mae_mean_baseline"}
    assert no_ci.ci_low.isna().all()


def test_compare_predictors_adds_benchmark_baselines():
    bench = get_benchmark("nb101")
    ids = bench.table()["cell_id"].iloc[:80].tolist()
    true = bench.all_accuracies().loc[ids].to_numpy()
    df = compare_predictors({"oracle": true + 0.1}, bench=bench, cells=ids, n_boot=20)
    wide = metrics_table(df)
    assert list(wide.index) == ["oracle", "params", "acc@4", "acc@12", "acc@36", "mean"]
    assert wide.loc["oracle", "kendall_tau"] == pytest.approx(1.0)
    assert wide.loc["acc@36", "features_s"] > wide.loc["acc@4", "features_s"] > 0
    assert math.isnan(wide.loc["params", "mse"])  # params is a rank signal, not an accuracy
    assert wide.loc["mean", "mse"] == pytest.approx(np.var(true))
    with pytest.raises(ValueError, match="clash"):
        compare_predictors({"params": true}, bench=bench, cells=ids, ci=False)
    only_mean = compare_predictors({"x": true}, true, ci=False)
    assert set(only_mean.predictor) == {"x", "mean"}


@pytest.mark.parametrize("pred, true, match", [
    ([1.0, 2.0], [1.0, 2.0, 3.0], "length"),
    ([1.0, 2.0, 3.0], [1.0, np.nan, 3.0], "truth"),
    ([1.0, np.inf, 3.0], [1.0, 2.0, 3.0], "predictions"),
    ([1.0], [1.0], "at least 2"),
])
def test_malformed_inputs_are_named(pred, true, match):
    with pytest.raises(ValueError, match=match):
        evaluate_predictions(pred, true, ci=False)
    with pytest.raises(ValueError, match=match):
        kendall_tau(pred, true)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 30), extra=st.integers(1, 3), data=st.data())
def test_validators_reject_bad_input(n, extra, data):
    good = np.arange(n, dtype=float)
    fns = [kendall_tau, spearman_rho, weighted_tau, mse, mae, r2, regret_at_1]
    with pytest.raises(ValueError, match="length"):
        data.draw(st.sampled_from(fns))(good, np.arange(n + extra, dtype=float))
    bad = good.copy()
    bad[data.draw(st.integers(0, n - 1))] = data.draw(st.sampled_from([np.nan, np.inf]))
    with pytest.raises(ValueError, match="finite"):
        data.draw(st.sampled_from(fns))(good, bad)
    with pytest.raises(ValueError, match="finite"):
        top_k_precision(bad, good, 1)


# -- grouped cross-validation --------------------------------------------------------------------

def test_grouped_folds_never_split_a_group():
    groups = np.repeat(np.arange(17), 3)  # 17 cells x 3 seeds
    folds = grouped_folds(groups, 4, seed=1)
    assert len(folds) == 4
    seen = np.concatenate([te for _, te in folds])
    assert np.array_equal(np.sort(seen), np.arange(groups.size))
    for tr, te in folds:
        assert not set(groups[tr]) & set(groups[te])
    with pytest.raises(ValueError, match="groups"):
        grouped_folds(groups, 18)


def test_grouped_cross_validate_returns_per_fold_metrics():
    groups = np.repeat(np.arange(20), 2)
    X = np.column_stack([np.repeat(np.arange(20.0), 2), RNG.normal(size=40)])
    y = 2.0 * X[:, 0] + RNG.normal(0, 0.1, 40)
    out = grouped_cross_validate(LinearRegression(), X, y, groups, n_splits=4, features_s=8.0)
    assert len(out) == 4 and out.n_test.sum() == 40
    assert (out.kendall_tau > 0.8).all() and (out.mse < out.mse_mean_baseline).all()
    assert out.features_s.sum() == pytest.approx(8.0) and (out.fit_s >= 0).all()
    mean = grouped_cross_validate(MeanPredictor(), X, y, groups, n_splits=4)
    assert np.allclose(mean.mse, mean.mse_mean_baseline)
    with pytest.raises(ValueError, match="length"):
        grouped_cross_validate(LinearRegression(), X, y[:-1], groups)


# -- cost and figure -----------------------------------------------------------------------------

def test_cost_record():
    total = Cost(1.0, 2.0) + Cost(predict_s=0.5)
    assert total.total_s == 3.5 and total.as_dict()["fit_s"] == 2.0
    with pytest.raises(ValueError, match="fit_s"):
        Cost(fit_s=-1.0)
    with Stopwatch() as sw:
        sum(range(1000))
    assert sw.seconds >= 0


def test_paired_arrays_validates_like_every_metric():
    p, t = paired_arrays([1, 2, 3], np.array([[3.0], [2.0], [1.0]]))
    assert p.dtype == t.dtype == float and p.shape == t.shape == (3,)
    with pytest.raises(ValueError, match="differ in length: 2 vs 3"):
        paired_arrays([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least 2 pairs"):
        paired_arrays([1], [1])
    with pytest.raises(ValueError, match="predictions must be finite"):
        paired_arrays([1, np.nan], [1, 2])


def test_evaluation_holds_no_plotting():
    import workbench.evaluation as ev

    assert not [n for n in ev.__all__ if n.startswith("plot")]
