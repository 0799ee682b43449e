"""Figure data steps (tested without rendering) and the drawing steps' argument checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.benchmarks import get_benchmark
from workbench.features import FEATURE_NAMES, Snapshots
from workbench.report import HtmlReport
from workbench.viz import (
    export_figure,
    feature_evolution_data,
    plot_feature_heatmap,
    plot_predicted_vs_true,
    plot_regret,
    plot_signal_scatter,
    predicted_vs_true_data,
    signal_correlations,
    signal_data,
)


def _snapshots(n_snap=3, n_layers=2, max_layers=4):
    rng = np.random.default_rng(0)
    w = np.zeros((n_snap, max_layers, len(FEATURE_NAMES)), np.float32)
    w[:, :n_layers] = rng.normal(size=(n_snap, n_layers, len(FEATURE_NAMES)))
    return Snapshots(weights=w, grads=w * 2, mask=np.arange(max_layers) < n_layers,
                     steps=np.array([10, 20, 30][:n_snap]), layer_names=("conv", "fc"),
                     layer_kinds=("conv", "linear"), snapshot_every=10, sample_size=64)


def test_feature_evolution_data_is_layer_by_snapshot():
    snaps = _snapshots()
    d = feature_evolution_data(snaps, "l2_norm", "grads")
    assert d.shape == (2, 3) and list(d.columns) == [10, 20, 30]
    expected = snaps.grads[:, :2, FEATURE_NAMES.index("l2_norm")].T
    np.testing.assert_array_equal(d.to_numpy(), expected)
    fig = plot_feature_heatmap(d)
    assert fig.data[0].z.shape == (2, 3)
    with pytest.raises(ValueError, match="bogus"):
        feature_evolution_data(snaps, "bogus")
    with pytest.raises(ValueError, match="activations"):
        feature_evolution_data(snaps, "mean", "activations")


def test_signal_data_and_correlations_reproduce_the_reference_taus():
    data = signal_data(get_benchmark("nb101_1k"))  # the reference taus are the 1k table's
    corr = signal_correlations(data).set_index("signal")
    # ../shared/reference/proxies_and_baselines.md, measured on the same table.
    assert corr.loc["params", "kendall_tau"] == pytest.approx(0.343, abs=0.001)
    assert corr.loc["acc@36", "kendall_tau"] == pytest.approx(0.697, abs=0.001)
    with pytest.raises(ValueError, match="flops"):
        plot_signal_scatter(data, "flops")


def test_regret_plot_checks_its_input_and_draws_bands():
    agg = pd.DataFrame({"method": ["a", "a", "b", "b"], "cost": [1.0, 2.0, 1.0, 2.0],
                        "mean": [2.0, 1.0, 3.0, 0.5], "q25": [1.5, 0.5, 2.0, 0.2],
                        "q75": [2.5, 1.5, 4.0, 0.9]})
    fig = plot_regret(agg)
    assert [t.name for t in fig.data if t.showlegend is not False] == ["a", "b"]
    with pytest.raises(ValueError, match="q75"):
        plot_regret(agg.drop(columns="q75"))


def test_export_html_and_report(tmp_path):
    fig = plot_feature_heatmap(feature_evolution_data(_snapshots()))
    path = export_figure(fig, tmp_path / "f.html")
    assert "plotly" in path.read_text()[:100_000].lower()
    with pytest.raises(ValueError, match="gif"):
        export_figure(fig, tmp_path / "f.gif")
    rep = HtmlReport("t").heading("h").text("<b>x</b>").table(pd.DataFrame({"a": [1.0]}))
    html = rep.figure(fig).figure(fig).write(tmp_path / "r.html").read_text()
    assert "&lt;b&gt;x&lt;/b&gt;" in html and html.count("<h2>") == 1


def test_predicted_vs_true_data_and_figure():
    rng = np.random.default_rng(0)
    true = rng.normal(90, 2, 60)
    pred = true + rng.normal(0, 1.5, 60)
    data = predicted_vs_true_data({"a": pred, "b": -pred}, true)
    assert list(data.columns) == ["predictor", "cell_id", "predicted", "true"]
    assert len(data) == 2 * true.size
    fig = plot_predicted_vs_true(predicted_vs_true_data(pred, true, name="mine"), title="t")
    assert fig.data[0].name.startswith("mine (τ=") and fig.data[-1].name == "y = x"
    with pytest.raises(ValueError, match="length"):
        predicted_vs_true_data(pred[:-1], true)
    with pytest.raises(ValueError, match="predicted_vs_true_data"):
        plot_predicted_vs_true(pd.DataFrame({"x": [1.0]}))
