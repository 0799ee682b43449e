"""The NAP2 figures: data steps on a small results dict shaped like ``bench/results/nap2.json``
(built here), rung taus from rung_correlations frames and searches, one SH rung's table, and
the drawing steps' traces."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from scipy import stats

from workbench.benchmarks import get_benchmark
from workbench.evaluation import kendall_tau
from workbench.search import (
    CombinedRanker,
    ProxyRanker,
    SuccessiveHalving,
    TabularBackend,
    rung_correlations,
)
from workbench.viz import (
    nap2_precision_frame,
    nap2_results_frame,
    plot_nap2_precision,
    plot_nap2_regret,
    plot_rung_scores,
    plot_rung_taus,
    rung_table_data,
    rung_table_html,
    rung_taus_frame,
)

FRACTIONS = ("0.25", "0.5", "0.75", "1.0")


def ci(mean: float, half: float = 0.5, n: int = 3) -> dict[str, float]:
    return {"mean": mean, "ci95": half, "n": n}


def method(regret: float, *, offline: bool, prec: bool = True, taus: bool = True,
           ranker_shift: float = 0.0) -> dict:
    """One method's aggregate as bench/nap2.py writes it; regret falls with the fraction."""
    row = {"regret_at_budget": ci(regret),
           "regret_at_fraction": {f: ci(regret + 3 * (1 - float(f)), 0.1 * i, 3)
                                  for i, f in enumerate(FRACTIONS)},
           "final_regret": ci(regret), "cost": ci(126.0, 0.0), "new_minibatches": 300.0,
           "uses_offline": offline}
    if prec:
        row["top3_precision"] = ci(0.5 if offline else 0.25, 0.1)
        row["top5_precision"] = ci(0.6 if offline else 0.4, math.nan, 1)
    if taus:
        row["rung_tau"] = {str(r): {"ranker": ci(0.1 * r + ranker_shift),
                                    "observed": ci(0.1 * r)} for r in range(2)}
        row["rung_tau"]["2"] = {"ranker": ci(math.nan, math.nan, 0),
                                "observed": ci(math.nan, math.nan, 0)}
    return row


@pytest.fixture
def results() -> dict:
    def section(shift: float) -> dict:
        return {"space": "x", "rungs": [6, 18, 54], "online_minibatches": 126.0,
                "methods": {"SH": method(3.0 + shift, offline=False),
                            "SH+dynamics": method(1.0 + shift, offline=True, ranker_shift=0.3),
                            "HB": {**method(2.0 + shift, offline=False, taus=False),
                                   "rung_tau": {}},
                            "RE": method(2.5 + shift, offline=False, prec=False, taus=False)}}
    return {"benchmark": "nap2", "spaces": {"nb201": section(0.0), "nb101": section(1.0),
                                            "empty": {}}}


def test_results_frame_is_tidy_and_reads_files(results, tmp_path):
    f = nap2_results_frame(results)
    assert list(f.columns) == ["space", "method", "fraction", "minibatches", "regret", "ci95",
                               "n", "uses_offline"]
    assert len(f) == 2 * 4 * 4  # the empty section (not aggregated yet) is left out
    assert list(dict.fromkeys(f["space"])) == ["nb201", "nb101"]
    sh = f[(f["space"] == "nb201") & (f["method"] == "SH")]
    assert sh["fraction"].tolist() == [0.25, 0.5, 0.75, 1.0]
    assert sh["minibatches"].tolist() == [31.5, 63.0, 94.5, 126.0]
    assert sh["regret"].tolist() == pytest.approx([5.25, 4.5, 3.75, 3.0])
    assert sh["ci95"].tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert f.groupby("method")["uses_offline"].all().to_dict() == {
        "HB": False, "RE": False, "SH": False, "SH+dynamics": True}
    path = tmp_path / "nap2.json"
    path.write_text(json.dumps(results))
    pd.testing.assert_frame_equal(nap2_results_frame(path), f)
    pd.testing.assert_frame_equal(nap2_results_frame(str(path)), f)
    with pytest.raises(ValueError, match="spaces"):
        nap2_results_frame({"methods": {}})


def test_precision_frame_leaves_out_methods_beyond_the_pool(results):
    p = nap2_precision_frame(results)
    assert set(p["method"]) == {"SH", "SH+dynamics", "HB"}  # RE searches the whole table
    assert len(p) == 2 * 3 * 2
    row = p[(p["space"] == "nb201") & (p["method"] == "SH+dynamics")].set_index("k")
    assert row.loc[3, "precision"] == 0.5 and row.loc[5, "precision"] == 0.6
    assert math.isnan(row.loc[5, "ci95"]) and row.loc[5, "n"] == 1


def test_rung_taus_from_results_name_budgets_and_skip_brackets(results):
    t = rung_taus_frame(results)
    assert set(t["method"]) == {"SH", "SH+dynamics"}  # HB has no per-rung taus
    d = t[(t["space"] == "nb101") & (t["method"] == "SH+dynamics")]
    assert d["budget"].tolist() == [6.0, 6.0, 18.0, 18.0, 54.0, 54.0]
    ranker = d[d["signal"] == "ranker"].set_index("rung")["tau"]
    observed = d[d["signal"] == "observed"].set_index("rung")["tau"]
    assert ranker.loc[0] == pytest.approx(0.3) and observed.loc[1] == pytest.approx(0.1)
    assert math.isnan(ranker.loc[2]) and d[d["rung"] == 2]["n"].tolist() == [0, 0]


def test_rung_taus_average_seeds_of_rung_correlations():
    rc = pd.DataFrame({"method": ["A"] * 4, "seed": [0, 0, 1, 1], "rung": [0, 1, 0, 1],
                       "budget": [6.0, 18.0, 6.0, 18.0], "n": [9, 3, 9, 3],
                       "tau_ranker": [0.2, 0.4, 0.6, math.nan],
                       "tau_observed": [0.0, 0.1, 0.2, 0.3]})
    t = rung_taus_frame(rc, space="nb201").set_index(["rung", "signal"])
    assert (t["space"] == "nb201").all()
    half = stats.t.ppf(0.975, 1) * np.std([0.2, 0.6], ddof=1) / math.sqrt(2)
    assert t.loc[(0, "ranker"), "tau"] == pytest.approx(0.4)
    assert t.loc[(0, "ranker"), "ci95"] == pytest.approx(half)
    assert t.loc[(1, "ranker"), "n"] == 1 and math.isnan(t.loc[(1, "ranker"), "ci95"])
    assert t.loc[(1, "observed"), "tau"] == pytest.approx(0.2)
    two = rung_taus_frame(pd.concat([rc.assign(method="Z"), rc.assign(method="A")]))
    assert list(dict.fromkeys(two["method"])) == ["Z", "A"]  # the order given, not sorted
    assert two["rung"].tolist()[:4] == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="rung_correlations"):
        rung_taus_frame(rc.drop(columns="tau_observed"))
    with pytest.raises(ValueError, match="expected"):
        rung_taus_frame([1, 2])


@pytest.fixture(scope="module")
def tabular_sh():
    """A finished SH on the NB201 table ranked by observed accuracy and params combined."""
    bench = get_benchmark("nb201")
    params = bench.table().set_index("cell_id")["params"]
    ranker = CombinedRanker(["observed", ProxyRanker(lambda c: params[bench.cell_id(c)],
                                                     name="params")])
    sh = SuccessiveHalving(TabularBackend("nb201", dataset="cifar10"), n=27, min_budget=12,
                           max_budget=200, eta=3, seed=0, ranker=ranker)
    return sh


def test_rung_taus_of_a_search_match_rung_correlations(tabular_sh):
    sh = tabular_sh
    if sh.rung == 0:
        sh.run(progress=False)
    t = rung_taus_frame(sh)
    rc = rung_correlations(sh.history)
    assert t["method"].unique().tolist() == ["SH (observed+params)"]
    got = t[t["signal"] == "ranker"].set_index("rung")["tau"]
    np.testing.assert_allclose(got.to_numpy(), rc["tau_ranker"].to_numpy())
    assert (t[t["signal"] == "ranker"]["n"] <= 1).all()  # one search: one value per rung


def test_rung_table_puts_predicted_beside_observed_and_final():
    bench = get_benchmark("nb201")
    params = bench.table().set_index("cell_id")["params"]
    ranker = CombinedRanker(["observed", ProxyRanker(lambda c: params[bench.cell_id(c)],
                                                     name="params")])
    sh = SuccessiveHalving(TabularBackend("nb201", dataset="cifar10"), n=9, min_budget=12,
                           max_budget=200, eta=3, seed=1, ranker=ranker)
    before = rung_table_data(sh)
    assert len(before) == 9 and (before["decision"] == "pending").all()
    assert before["observed_rank"].isna().all() and before["score"].isna().all()
    with pytest.raises(ValueError, match="not been evaluated"):
        rung_table_data(sh, rung=0)
    sh.step()
    t = rung_table_data(sh)
    assert t["rank"].tolist() == list(range(1, 10))  # best ranked first
    assert {"ranker_observed", "ranker_params"} <= set(t.columns)  # the components
    assert t.columns.get_loc("ranker_params") < t.columns.get_loc("rank")
    hist = sh.history.set_index("candidate")
    np.testing.assert_allclose(t["final"], hist.loc[t["candidate"], "final"])
    np.testing.assert_allclose(t["ranker_observed"], t["score"])
    assert t["observed_rank"].tolist() == (-t["score"]).rank(method="first").astype(int).tolist()
    assert t.loc[t["final"].idxmax(), "final_rank"] == 1
    assert (t["decision"] == "kept").sum() == 3 and (t.head(3)["decision"] == "kept").all()
    sh.step()
    old = rung_table_data(sh, rung=0)
    assert len(old) == 9 and "ranker_params" not in old.columns  # components: latest only
    assert len(rung_table_data(sh)) == 3
    html = rung_table_html(t)
    tau_r = kendall_tau(t["ranker_score"], t["final"])
    assert f"ranker {tau_r:.2f}" in html and "#e6f4e6" in html and "#fbe3e3" in html
    assert "final_rank" not in rung_table_html(t, show_final=False)
    fig = plot_rung_scores(t, title="rung 0")
    assert isinstance(fig, go.Figure)
    assert [tr.name for tr in fig.data] == ["kept", "dropped", "kept", "dropped"]
    assert sum(len(tr.x) for tr in fig.data) == 18
    assert f"τ {tau_r:.2f}" in fig.layout.annotations[0].text


def test_regret_plot_has_one_line_per_method_and_space(results):
    fig = plot_nap2_regret(nap2_results_frame(results), title="regret")
    assert isinstance(fig, go.Figure) and len(fig.data) == 2 * 4
    assert [tr.name for tr in fig.data if tr.showlegend] == ["SH", "SH+dynamics", "HB", "RE"]
    dyn = [tr for tr in fig.data if tr.name == "SH+dynamics"]
    assert {tr.xaxis for tr in dyn} == {"x", "x2"}
    assert dyn[0].line.dash == "solid" and fig.data[0].line.dash == "dash"
    assert list(dyn[0].y) == pytest.approx([3.25, 2.5, 1.75, 1.0])
    assert list(dyn[0].error_y.array) == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert dyn[0].line.color == dyn[1].line.color
    assert [a.text for a in fig.layout.annotations] == ["NB201", "NB101"]
    with pytest.raises(ValueError, match="nap2_results_frame"):
        plot_nap2_regret(pd.DataFrame({"space": []}))


def test_precision_and_tau_plots(results):
    fig = plot_nap2_precision(nap2_precision_frame(results))
    assert [tr.type for tr in fig.data] == ["bar"] * 4
    assert [tr.name for tr in fig.data] == ["top-3", "top-5"] * 2
    assert list(fig.data[0].x) == ["SH", "SH+dynamics", "HB"]
    assert fig.data[1].error_y.array[0] is None  # a CI of one seed is not drawn
    taus = plot_rung_taus(rung_taus_frame(results))
    # plain SH's ranker is its observed accuracy: drawn once; SH+dynamics: both
    names = [tr.name for tr in taus.data if tr.showlegend]
    assert names == ["SH: observed", "SH+dynamics: ranker", "SH+dynamics: observed"]
    assert len(taus.data) == 2 * 3
    assert list(taus.layout.xaxis.ticktext) == ["0: 6", "1: 18", "2: 54"]
    only = plot_rung_taus(rung_taus_frame(results), signals=("ranker",))
    assert len(only.data) == 2 * 2
    with pytest.raises(ValueError, match="signals"):
        plot_rung_taus(rung_taus_frame(results), signals=("params",))
