"""The newer figures' data steps (checked without rendering) and their drawing steps' inputs:
feature lines, snapshot values, t-SNE, correlation tables with CIs, the SH rung diagram,
LayerNAS bucket tables, regret bands and export."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.evaluation import bootstrap_ci, kendall_tau
from workbench.features import FEATURE_NAMES, Snapshots
from workbench.search import SuccessiveHalving, paper_example
from workbench.store import RunRequest, RunStore
from workbench.viz import (
    correlation_table_data,
    export_figure,
    export_figures,
    feature_evolution_data,
    feature_lines_data,
    feature_matrix,
    frame_html,
    layernas_buckets_data,
    layernas_tables_html,
    plot_correlation_table,
    plot_feature_heatmap,
    plot_feature_lines,
    plot_layernas_buckets,
    plot_regret,
    plot_run_curves,
    plot_search_progress,
    plot_sh_rungs,
    plot_tsne,
    result_curves_data,
    search_progress_data,
    sh_decisions_data,
    sh_rungs_data,
    snapshot_values_data,
    static_export_available,
    tsne_data,
    tsne_frames,
)
from workbench.viz._export import find_chrome


def snapshots(n_snap: int = 4, n_layers: int = 3, max_layers: int = 5, seed: int = 0,
              scale: float = 1.0) -> Snapshots:
    """Synthetic snapshots: positive values that grow with the step, ``scale`` per run."""
    rng = np.random.default_rng(seed)
    w = np.zeros((n_snap, max_layers, len(FEATURE_NAMES)), np.float32)
    w[:, :n_layers] = scale * (1 + rng.random((n_snap, n_layers, len(FEATURE_NAMES))))
    w[:, :n_layers] *= np.arange(1, n_snap + 1)[:, None, None]
    return Snapshots(weights=w, grads=-w / 10, mask=np.arange(max_layers) < n_layers,
                     steps=10 * np.arange(1, n_snap + 1),
                     layer_names=tuple(f"l{i}" for i in range(n_layers)),
                     layer_kinds=("conv",) * n_layers, snapshot_every=10, sample_size=64)


def fake_store(root, n_runs: int = 6, n_snap: int = 4) -> RunStore:
    """A store of finished runs with synthetic snapshots; labels grow with the feature scale,
    run 0 has one snapshot fewer and one run has no snapshots at all."""
    store = RunStore(root)
    reqs = [RunRequest(space="nb201", cell_id=str(i), dataset="cifar10", seed=0,
                       label=80.0 + i, label_name="t") for i in range(n_runs + 1)]
    ids = store.add_runs(reqs)
    for i, rid in enumerate(ids):
        assert store.claim(rid, "test")
        if i < n_runs:
            snaps = snapshots(n_snap - (i == 0), 2 + i % 2, seed=i, scale=1.0 + i)
            store.save_arrays(rid, "snapshots", snaps.to_arrays())
        store.mark_done(rid, {"val_acc": 10.0 + i}, steps=40)
    return store


# -- training figures -----------------------------------------------------------------------------

def test_feature_lines_hold_every_layer_and_source():
    snaps = snapshots()
    d = feature_lines_data(snaps, "l2_norm")
    assert len(d) == 2 * 3 * 4  # sources x layers x snapshots
    f = FEATURE_NAMES.index("l2_norm")
    g = d[(d["source"] == "grads") & (d["layer"] == 1)]
    np.testing.assert_allclose(g["value"], snaps.grads[:, 1, f])
    assert list(g["step"]) == [10, 20, 30, 40]
    one = feature_lines_data(snaps, "mean", layers=[2], sources=["weights"])
    assert set(one["layer"]) == {2} and set(one["source"]) == {"weights"}
    fig = plot_feature_lines(d)
    assert len(fig.data) == 6 and fig.layout.yaxis.type == "log"
    with pytest.raises(ValueError, match="layers"):
        feature_lines_data(snaps, layers=[3])
    with pytest.raises(ValueError, match="bogus"):
        feature_lines_data(snaps, "bogus")
    with pytest.raises(ValueError, match="activations"):
        feature_lines_data(snaps, sources=["activations"])


def test_snapshot_values_by_layer_or_by_feature():
    snaps = snapshots()
    by_layer = snapshot_values_data(snaps, 1, layer=2)
    assert list(by_layer.index) == list(FEATURE_NAMES)
    np.testing.assert_allclose(by_layer["weights"], snaps.weights[1, 2])
    assert by_layer.columns.name == "step 20"
    by_feature = snapshot_values_data(snaps, -1, feature="max")
    assert len(by_feature) == 3
    np.testing.assert_allclose(by_feature["grads"],
                               snaps.grads[-1, :3, FEATURE_NAMES.index("max")])
    with pytest.raises(ValueError, match="snapshot"):
        snapshot_values_data(snaps, 4)


def test_result_curves_data_matches_the_store_layout():
    from workbench.training import TrainResult

    curves = pd.DataFrame({"step": [10, 20], "epoch": [0.1, 0.2], "lr": [0.1, 0.1],
                           "train_loss": [2.0, 1.5], "train_acc": [20.0, 30.0]})
    evals = pd.DataFrame({"step": [20], "val_loss": [1.7], "val_acc": [25.0]})
    result = TrainResult("done", 20, 20, 1.0, curves, evals, None)
    d = result_curves_data(result, name="me", run_id="r1")
    assert list(d.columns) == ["run_id", "name", "step", "metric", "value"]
    assert d.groupby("metric").size().to_dict() == {"train_acc": 2, "train_loss": 2,
                                                    "val_acc": 1, "val_loss": 1}
    assert set(d["name"]) == {"me"} and set(d["run_id"]) == {"r1"}
    empty = TrainResult("running", 0, 20, 0.0, curves.iloc[:0], evals.iloc[:0], None)
    assert result_curves_data(empty).empty


def test_log_scales_leave_zeros_out():
    snaps = snapshots()
    d = feature_evolution_data(snaps, "rel_change", "weights")
    d.iloc[:, 0] = 0.0  # a change statistic at the first snapshot (no previous one)
    z = plot_feature_heatmap(d).data[0].z
    assert np.isnan(z[:, 0]).all() and np.isfinite(z[:, 1:]).all()
    assert np.nanmin(z) == pytest.approx(np.log10(np.abs(d.iloc[:, 1:].to_numpy()).min()))
    lines = feature_lines_data(snaps, "rel_change")
    lines.loc[lines["step"] == lines["step"].min(), "value"] = 0.0
    for trace in plot_feature_lines(lines).data:
        y = np.asarray(trace.y, dtype=float)
        assert np.isnan(y[0]) and (y[1:] > 0).all() and trace.connectgaps is False
    linear = plot_feature_lines(lines, log=False).data[0]
    assert np.asarray(linear.y, dtype=float)[0] == 0.0


def test_heatmap_marks_a_step_and_run_curves_split_loss_and_accuracy():
    from workbench.viz import feature_evolution_data

    fig = plot_feature_heatmap(feature_evolution_data(snapshots()), mark_step=20)
    assert fig.layout.shapes[0].x0 == 20
    data = pd.DataFrame({"step": [1, 2, 2, 2], "metric": ["train_loss", "train_loss",
                                                         "val_acc", "train_acc"],
                         "value": [2.0, 1.5, 30.0, 25.0]})
    fig = plot_run_curves(data)
    assert sorted(t.name for t in fig.data) == ["train_acc", "train_loss", "val_acc"]


# -- t-SNE ----------------------------------------------------------------------------------------

def test_feature_matrix_picks_each_runs_snapshot(tmp_path):
    store = fake_store(tmp_path / "s")
    feats = store.load_features([r for r in store.runs()["run_id"]
                                 if "snapshots" in store.array_names(r)])
    x, rows = feature_matrix(feats, -1)
    assert x.shape == (6, 2 * 5 * len(FEATURE_NAMES))
    assert list(rows["snapshot"]) == [2, 3, 3, 3, 3, 3]  # run 0 has 3 snapshots
    assert np.isfinite(x).all()
    _, rows3 = feature_matrix(feats, 3)
    assert len(rows3) == 5 and "0" not in set(rows3["cell_id"])
    _, rows_s = feature_matrix(feats, step=25)
    assert list(rows_s["step"]) == [20] * 6
    w_only, _ = feature_matrix(feats, 0, sources=["weights"])
    assert w_only.shape[1] == x.shape[1] // 2


def test_tsne_is_reproducible_labelled_and_clips_perplexity(tmp_path):
    store = fake_store(tmp_path / "s")
    d = tsne_data(store, snapshot=-1, perplexity=30)  # 6 runs: perplexity clipped to 5
    assert list(d.columns) == ["run_id", "space", "cell_id", "seed", "label", "snapshot", "step",
                               "x", "y"]
    assert len(d) == 6 and np.isfinite(d[["x", "y"]].to_numpy()).all()
    assert list(d["label"]) == [80.0 + i for i in range(6)]
    again = tsne_data(store, snapshot=-1, perplexity=30)
    np.testing.assert_allclose(d[["x", "y"]], again[["x", "y"]])
    two = tsne_data(store, snapshot=0, run_ids=list(d["run_id"][:2]))
    assert len(two) == 2
    fig = plot_tsne(d)
    assert fig.data[0].marker.showscale
    with pytest.raises(ValueError, match="at least 2"):
        tsne_data(store, snapshot=0, run_ids=list(d["run_id"][:1]))
    with pytest.raises(ValueError, match="no finished runs"):
        tsne_data(RunStore(tmp_path / "empty"))


def test_tsne_frames_stack_snapshots(tmp_path):
    store = fake_store(tmp_path / "s")
    frames = tsne_frames(store, [0, -1], perplexity=3)
    assert list(frames.groupby("position").size()) == [6, 6]
    first = frames[frames["position"] == 0]
    np.testing.assert_allclose(first[["x", "y"]], tsne_data(store, 0, perplexity=3)[["x", "y"]])


def test_tsne_falls_back_to_held_out_accuracy_without_labels(tmp_path):
    store = RunStore(tmp_path / "s")
    ids = store.add_runs([RunRequest(space="nb101", cell_id=f"c{i}", dataset="cifar10")
                          for i in range(3)])
    for i, rid in enumerate(ids):
        store.claim(rid, "t")
        store.save_arrays(rid, "snapshots", snapshots(seed=i, scale=1 + i).to_arrays())
        store.mark_done(rid, {"val_acc": 50.0 + i})
    d = tsne_data(store)
    assert list(d["label"]) == [50.0, 51.0, 52.0]


# -- correlation table ----------------------------------------------------------------------------

def test_correlation_table_matches_bootstrap_helpers():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=60)
    signals = pd.DataFrame({"good": truth + 0.3 * rng.normal(size=60),
                            "noise": rng.normal(size=60), "final": truth})
    signals.loc[3, "noise"] = np.nan
    d = correlation_table_data(signals, "final", n_boot=50, seed=1).set_index("signal")
    assert list(d.index) == ["good", "noise"]
    assert d.loc["good", "n"] == 60 and d.loc["noise", "n"] == 59
    assert d.loc["good", "kendall_tau"] == pytest.approx(kendall_tau(signals["good"], truth))
    lo, hi = bootstrap_ci(kendall_tau, signals["good"], truth, n_boot=50, seed=1)
    assert (d.loc["good", "kendall_tau_low"], d.loc["good", "kendall_tau_high"]) == \
        pytest.approx((lo, hi))
    assert d.loc["good", "kendall_tau_low"] <= d.loc["good", "kendall_tau"] <= \
        d.loc["good", "kendall_tau_high"]
    vec = correlation_table_data(signals[["good"]], truth, metrics=["spearman_rho"], n_boot=20)
    assert list(vec.columns) == ["signal", "n", "spearman_rho", "spearman_rho_low",
                                 "spearman_rho_high"]
    fig = plot_correlation_table(d.reset_index())
    cells = fig.data[0].cells.values
    assert list(cells[0]) == ["good", "noise"] and cells[2][0].startswith("<b>")
    with pytest.raises(ValueError, match="truth"):
        correlation_table_data(signals, "missing")
    with pytest.raises(ValueError, match="bogus"):
        correlation_table_data(signals, "final", metrics=["bogus"])


# -- search figures -------------------------------------------------------------------------------

def test_sh_rung_data_follows_the_search(nb201_backend):
    sh = SuccessiveHalving(nb201_backend, n=9, min_budget=12, max_budget=200, eta=3, seed=0)
    before = sh_rungs_data(sh)
    assert len(before) == 9 and set(before["decision"]) == {"pending"}
    sh.step()
    d = sh_rungs_data(sh)
    rung0 = d[d["rung"] == 0]
    assert (rung0["decision"] == "kept").sum() == 3 and len(rung0) == 9
    pending = d[d["decision"] == "pending"]
    assert set(pending["candidate"]) == set(rung0[rung0["decision"] == "kept"]["candidate"])
    assert set(pending["rung"]) == {1} and set(pending["budget"]) == {36.0}
    top = d.sort_values("order").iloc[0]
    assert top["rank"] == 1  # best-ranked survivor on top
    sh.run()
    d = sh_rungs_data(sh)
    assert "pending" not in set(d["decision"]) and d["rung"].max() == 3
    winner = d[d["order"] == 0]
    assert list(winner["rung"]) == [0, 1, 2, 3] and (winner["reached"] == 3).all()
    assert str(winner["candidate"].iloc[0]) == nb201_backend.cell_id(sh.best()[0])
    fig = plot_sh_rungs(d)
    assert {t.name for t in fig.data if t.name} == {"kept", "dropped"}
    assert list(fig.layout.xaxis.tickvals) == [0, 1, 2, 3]
    dec = sh_decisions_data(sh)
    assert list(dec["evaluated"]) == [9, 3, 1, 1] and list(dec["kept"]) == [3, 1, 1, 1]
    assert dec["cum_cost"].iloc[-1] == pytest.approx(sh.total_cost)
    assert sh_rungs_data(sh.history).equals(d)
    with pytest.raises(ValueError, match="SuccessiveHalving"):
        sh_rungs_data(object())


def test_regret_bands_from_std_or_quantiles():
    agg = pd.DataFrame({"method": ["a", "a"], "cost": [1.0, 2.0], "mean": [2.0, 1.0],
                        "std": [0.5, np.nan], "q05": [1.0, 0.5], "q95": [3.0, 1.5]})
    band = plot_regret(agg, band="std").data[0]
    assert list(band.y) == [2.5, 1.0, 1.0, 1.5]  # mean + std, then mean - std reversed
    band = plot_regret(agg, band=("q05", "q95")).data[0]
    assert list(band.y) == [3.0, 1.5, 0.5, 1.0]
    with pytest.raises(ValueError, match="band"):
        plot_regret(agg, band=("q05",))


def test_layernas_bucket_data_marks_the_latest_iteration():
    nas = paper_example().search()
    empty = layernas_buckets_data(nas)
    assert len(empty) == 12 and set(empty["status"]) == {"empty"}
    nas.step()
    d = layernas_buckets_data(nas)
    added = d[d["status"] == "added"]
    assert sorted(added["name"]) == ["ADD", "CDD"] and set(added["layer"]) == {1}
    assert (added["note"] == "from DDD").all() and (d["iteration"] == 1).all()
    nas.step()
    nas.step()  # iteration 3: layer 3 drops children whose cost is outside 8-9
    d = layernas_buckets_data(nas)
    dropped = d[d["status"] == "dropped"]
    assert len(dropped) and dropped["bucket"].isna().all() and (dropped["layer"] == 3).all()
    assert set(d[d["status"] == "added"]["layer"]) == {3}
    old = d[(d["layer"] == 1) & (d["status"] != "empty")]
    assert set(old["status"]) == {"kept"}
    nas.run(max_sweeps=2)
    d = layernas_buckets_data(nas)
    layer2 = d[(d["layer"] == 2) & (d["status"] == "kept")]
    assert bool(layer2.set_index("name").loc["CAD", "done"])  # the paper's [x]
    assert (d["status"] == "rejected").any()
    members = d[d["status"].isin(["kept", "added"])]
    tables = nas.tables(long=True)
    assert sorted(members["name"]) == sorted(tables["name"])
    html = layernas_tables_html(d)
    assert html.count("<table") == 3 and "CAD 0.40 [x]" in html and "<s>" in html
    fig = plot_layernas_buckets(d)
    assert len(fig.data) == 3
    assert (d["space_layer"] == d["layer"]).all()
    assert "(space layer" not in html and "(space layer" not in str(fig.layout.annotations)


def test_layernas_bucket_tables_name_the_space_layer_when_reordered():
    problem = paper_example()
    nas = problem.search(layer_order=(3, 1, 2))
    nas.run(max_sweeps=1)
    d = layernas_buckets_data(nas)
    assert dict(zip(d["layer"], d["space_layer"], strict=True)) == {1: 3, 2: 1, 3: 2}
    kept = d[d["status"].isin(["kept", "added"])]
    assert set(kept["name"]) == set(nas.tables(long=True)["name"])
    assert all(problem.space.cost(n) == c for n, c in zip(kept["name"], kept["cost"],
                                                         strict=True))
    html = layernas_tables_html(d)
    assert "layer 1 (space layer 3)" in html and "layer 3 (space layer 2)" in html
    titles = [a.text for a in plot_layernas_buckets(d).layout.annotations]
    assert titles == ["layer 1 (space layer 3)", "layer 2 (space layer 1)",
                      "layer 3 (space layer 2)"]


def _shown_lines(markup: str) -> list[str]:
    """The lines a table cell shows: tags dropped, split at <br>."""
    return [re.sub(r"<[^>]*>", "", line) for line in markup.split("<br>")]


@pytest.mark.parametrize("wrap", [16, 64])
def test_layernas_figure_wraps_itself_and_fits_every_row(wrap):
    nas = paper_example().search()
    nas.run(max_sweeps=2)
    d = layernas_buckets_data(nas)
    fig = plot_layernas_buckets(d, wrap=wrap)
    total_lines = 0
    for table in fig.data:
        for column in table.cells.values:
            for text in column:
                # with a <br> plotly keeps the text as it is; without one it re-wraps at
                # spaces, breaking <span style=...> into literal text (issue 14, item 1)
                assert "<br>" in text
                lines = [x for x in _shown_lines(text) if x]
                assert all(len(x) <= max(wrap, 8) for x in lines[:-1] or [""])
        total_lines += sum(max(1, len([x for x in _shown_lines(t) if x]))
                           for t in table.cells.values[1])
    layer3 = fig.data[2]
    assert layer3.cells.values[0][-1].startswith("dropped")
    dropped = d[d["status"] == "dropped"]
    shown = " ".join(" ".join(_shown_lines(t)) for t in layer3.cells.values[1])
    assert all(f"✗ {n}" in shown for n in dropped["name"])  # no row cut off
    assert "<spanstyle" not in shown and "span" not in shown
    # every table's domain holds its header and all its rows, the dropped row and wrapped lines
    plot_px = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    for table in fig.data:
        rows = [max(1, len([x for x in _shown_lines(t) if x])) for t in table.cells.values[1]]
        need = table.header.height + sum(max(table.cells.height, 17 * n + 16) for n in rows)
        lo, hi = table.domain.y
        assert (hi - lo) * plot_px >= need - 1
    narrow = plot_layernas_buckets(d, wrap=16)
    wide = plot_layernas_buckets(d, wrap=64)
    assert narrow.layout.height > wide.layout.height and total_lines > 0
    with pytest.raises(ValueError, match="wrap"):
        plot_layernas_buckets(d, wrap=2)


def test_search_progress_follows_the_incumbent(nb201_backend):
    sh = SuccessiveHalving(nb201_backend, n=9, min_budget=12, max_budget=200, seed=0)
    assert search_progress_data(sh).empty
    sh.run()
    d = search_progress_data(sh)
    assert len(d) == len(sh.history) and d["cum_cost"].is_monotonic_increasing
    assert d["incumbent"].iloc[-1] == nb201_backend.cell_id(sh.best()[0])
    assert d["incumbent_score"].iloc[-1] == sh.best()[1]
    fig = plot_search_progress(d, title="SH")
    assert [t.name for t in fig.data] == ["budget 12", "budget 36", "budget 108", "budget 200",
                                          "incumbent"]
    nas = paper_example().search()
    nas.step()
    d = search_progress_data(nas)
    assert d["incumbent"].isna().all()  # layer 3's table is still empty: no answer yet
    with pytest.raises(ValueError, match="search_progress_data"):
        plot_search_progress(d.drop(columns="incumbent"))


def test_layernas_evictions_name_who_evicted():
    nas = paper_example().search(seed=0)
    while not nas.done:
        nas.step()
        d = layernas_buckets_data(nas)
        ev = d[d["status"] == "evicted"]
        if len(ev):
            assert ev["note"].str.startswith("evicted by ").all()
            by = ev["note"].str.removeprefix("evicted by ")
            members = set(d[d["status"] == "added"]["name"])
            assert set(by) <= members
            return
    pytest.fail("no eviction in a full run of the paper example")


def test_frame_html_escapes_and_colours_rows():
    df = pd.DataFrame({"name": ["<a>", "b"], "score": [1.23456, np.nan],
                       "decision": ["kept", "dropped"]})
    html = frame_html(df, status="decision")
    assert "&lt;a&gt;" in html and "1.235" in html
    assert "#e6f4e6" in html and "#fbe3e3" in html
    with pytest.raises(ValueError, match="status"):
        frame_html(df, status="missing")


# -- export ---------------------------------------------------------------------------------------

def test_export_figures_writes_html_and_names_static_problems(tmp_path, monkeypatch):
    fig = plot_feature_lines(feature_lines_data(snapshots()))
    table = export_figures({"lines": fig, "again": fig}, tmp_path / "figs")
    assert list(table["format"]) == ["html", "html"]
    assert (tmp_path / "figs" / "lines.html").is_file()
    bundle = tmp_path / "figs" / "plotly.min.js"  # one plotly.js for the folder
    assert bundle.stat().st_size > 1_000_000 > table["bytes"].max()
    assert 'src="plotly.min.js"' in (tmp_path / "figs" / "again.html").read_text()
    bundle.write_text("stale")
    export_figures({"lines": fig}, tmp_path / "figs")
    assert bundle.stat().st_size > 1_000_000  # a stale bundle is replaced
    inline = export_figure(fig, tmp_path / "alone" / "f.html", plotlyjs="inline")
    assert inline.stat().st_size > 1_000_000 and not (tmp_path / "alone" / "plotly.min.js").exists()
    with pytest.raises(ValueError, match="plotlyjs"):
        export_figure(fig, tmp_path / "f.html", plotlyjs="yes")
    with pytest.raises(ValueError, match="gif"):
        export_figures({"lines": fig}, tmp_path, formats=["gif"])
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-chrome"))
    assert find_chrome() is None and not static_export_available()
    with pytest.raises(RuntimeError, match="BROWSER_PATH"):
        export_figure(fig, tmp_path / "f.png")


@pytest.mark.skipif(not static_export_available(), reason="needs kaleido>=1 and a Chrome")
@pytest.mark.timeout(300)
def test_static_export_with_chrome(tmp_path):
    fig = plot_feature_lines(feature_lines_data(snapshots()))
    table = export_figures({"lines": fig}, tmp_path, formats=["png", "svg", "pdf"])
    data = {fmt: Path(p).read_bytes() for fmt, p in zip(table["format"], table["path"],
                                                         strict=True)}
    assert data["png"].startswith(b"\x89PNG") and data["pdf"].startswith(b"%PDF-")
    assert b"<svg" in data["svg"][:1000]
