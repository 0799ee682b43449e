"""Widgets driven from Python: set values, click buttons, check the wrapped objects and what is
shown (tables, figures, logs) change together."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from workbench.benchmarks import get_benchmark
from workbench.features import FEATURE_NAMES, Snapshots
from workbench.search import (
    Hyperband,
    LayerNAS,
    LocalSearch,
    OptunaSearch,
    RandomSearch,
    RegularizedEvolution,
    SuccessiveHalving,
    paper_example,
)
from workbench.spaces import get_space
from workbench.store import RunRequest, RunStore
from workbench.viz import STATUS_COLORS, feature_evolution_data, sh_decisions_data
from workbench.widgets import (
    EmbeddingView,
    FeatureExplorer,
    SearchStepper,
    TrainingPanel,
    fresh_copy,
    pick_cell,
)
from workbench.widgets._common import ipywidgets
from workbench.widgets._search import LayerNASView, SearchView, SHView

PLOTLY = "application/vnd.plotly.v1+json"


def shown(output) -> dict:
    """The plotly figure an Output widget shows."""
    assert len(output.outputs) == 1
    return output.outputs[0]["data"][PLOTLY]


# -- without ipywidgets ---------------------------------------------------------------------------

def test_missing_ipywidgets_is_explained(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    with pytest.raises(ImportError, match=r"nas-workbench\[lab\]"):
        ipywidgets()
    with pytest.raises(ImportError, match="ipywidgets"):
        SearchStepper(paper_example())
    assert pick_cell("nb201", 0) is not None  # the plain helpers still work


# -- cells ----------------------------------------------------------------------------------------

def test_pick_cell_by_index_id_string_or_random():
    nb201, nb101 = get_benchmark("nb201"), get_benchmark("nb101")
    space = get_space("nb201")
    assert pick_cell("nb201", 7) == pick_cell("nb201", "7") == nb201.cell("7")
    text = space.format(nb201.cell("7"))
    assert pick_cell("nb201", text) == nb201.cell("7")
    first = nb101.table()["cell_id"].iloc[3]
    assert pick_cell("nb101", 3) == pick_cell("nb101", first) == nb101.cell(first)
    assert pick_cell("nb201", "random", seed=5) == pick_cell("nb201", "random", seed=5)
    with pytest.raises(ValueError, match="15624"):
        pick_cell("nb201", 15625)


# -- training panel -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def panel(one_thread):
    p = TrainingPanel("nb201", 3, steps=5, snapshot_every=1, model="tiny", val_size=100,
                      batch_size=32, background=False, device="cpu", redraw_seconds=0.0)
    p.train_button.click()
    return p


def test_train_five_minibatches_draws_curves_and_heatmap(panel):
    assert panel.result is not None and panel.result.status == "done"
    assert panel.trainer.step == 5 and panel.progress.value == 5
    assert panel.cell == get_benchmark("nb201").cell("3")
    loss = panel.data[panel.data["metric"] == "train_loss"]
    assert list(loss["step"]) == [1, 2, 3, 4, 5]
    assert set(panel.data["metric"]) >= {"train_loss", "train_acc", "val_acc"}
    assert set(panel.data["name"]) == {"nb201:3"}
    fig = shown(panel.curve_out)
    assert fig["layout"]["title"]["text"] == "nb201:3"
    assert {t["name"] for t in fig["data"]} >= {"train_loss", "val_acc"}
    assert len(panel.curve_figure.data[0].x) == 5
    snaps = panel.snapshots
    assert len(snaps) == 5
    assert panel.heatmap_figure.data[0].z.shape == (snaps.n_layers, 5)
    assert "done" in panel.status.value
    assert not panel.train_button.disabled and panel.stop_button.disabled


def test_heatmap_follows_the_statistic_picker(panel):
    panel.feature_picker.value = "mean"
    panel.source_picker.value = "weights"
    expected = feature_evolution_data(panel.snapshots, "mean", "weights")
    z = panel.heatmap_figure.data[0].z
    np.testing.assert_allclose(z, np.log10(np.abs(expected.to_numpy())), atol=1e-6)
    assert "weights: mean" in panel.heatmap_figure.layout.title.text


def test_random_cell_and_bad_cell(panel):
    value = panel.random_cell()
    assert value.isdigit() and panel.cell_box.value == value
    panel.space_picker.value = "nb101"
    assert panel.model_picker.value == "tiny"
    panel.space_picker.value = "nb201"
    panel.cell_box.value = "not a cell"
    before = panel.result
    panel.train_button.click()  # a click reports bad input in the panel, never raises
    assert "color:#c00" in panel.status.value and isinstance(panel.error, ValueError)
    assert panel.result is before and not panel.train_button.disabled
    with pytest.raises(ValueError):
        panel.wait()  # code asking for the result hears about it
    panel.cell_box.value = "3"


def test_panel_names_runs_by_table_id(one_thread):
    nb201 = TrainingPanel("nb201", 3, steps=2, model="tiny", val_size=0, background=False,
                          device="cpu")
    nb201.cell = pick_cell("nb201", 3)
    assert nb201._name() == "nb201:3"
    nb101 = TrainingPanel("nb101", 0, steps=2, model="tiny", val_size=0, background=False,
                          device="cpu")
    nb101.cell = pick_cell("nb101", 0)
    key = get_benchmark("nb101").table()["cell_id"].iloc[0]
    assert nb101._name() == f"nb101:{key}"[:28] and "NB101Cell" not in nb101._name()


def test_stop_ends_a_background_run(one_thread):
    p = TrainingPanel("nb201", 3, steps=100_000, snapshot_every=50, model="tiny", val_size=100,
                      batch_size=32, background=True, device="cpu")
    p.train_button.click()
    p.stop_button.click()  # may come before the loop starts: repeated at the next callback
    result = p.wait(timeout=120)
    assert result.status == "stopped" and result.steps < 100_000  # 0 when Stop beat the loop
    assert not p.running and not p.train_button.disabled


# -- stored runs ----------------------------------------------------------------------------------

def snapshots(n_snap: int, n_layers: int, scale: float) -> Snapshots:
    """Synthetic snapshots growing with the step, scaled per run."""
    w = np.zeros((n_snap, 4, len(FEATURE_NAMES)), np.float32)
    w[:, :n_layers] = scale * np.arange(1, n_snap + 1)[:, None, None] * np.linspace(
        1, 2, n_layers * len(FEATURE_NAMES)).reshape(n_layers, -1)
    return Snapshots(weights=w, grads=w / 7, mask=np.arange(4) < n_layers,
                     steps=10 * np.arange(1, n_snap + 1),
                     layer_names=tuple(f"l{i}" for i in range(n_layers)),
                     layer_kinds=("conv",) * n_layers, snapshot_every=10, sample_size=64)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Six finished runs with snapshots (the first has 3, the others 4)."""
    s = RunStore(tmp_path_factory.mktemp("runs"))
    ids = s.add_runs([RunRequest(space="nb201", cell_id=str(i), dataset="cifar10",
                                 label=80.0 + i) for i in range(6)])
    for i, rid in enumerate(ids):
        s.claim(rid, "test")
        s.save_arrays(rid, "snapshots", snapshots(3 if i == 0 else 4, 2 + i % 2,
                                                  1.0 + i).to_arrays())
        s.mark_done(rid, {"val_acc": 20.0 + i})
    return s


def test_feature_explorer_follows_its_controls(store):
    ex = FeatureExplorer(store)
    ids = list(store.runs()["run_id"])
    assert ex.run_id == ids[0] and ex.snapshot_slider.max == 2
    assert ex.heatmap_figure.layout.shapes[0].x0 == 30  # the last snapshot is marked
    ex.feature_picker.value = "std"
    assert ex.data.equals(feature_evolution_data(ex.snapshots, "std", "grads"))
    assert "grads: std" in ex.heatmap_figure.layout.title.text
    ex.run_picker.value = ids[1]
    assert ex.snapshot_slider.max == 3 and ex.snapshot_slider.value == 3
    assert len(ex.layer_picker.options) == 1 + 3
    ex.layer_picker.value = 2
    assert list(ex.table.index) == list(FEATURE_NAMES)
    assert len(ex.lines_figure.data) == 2  # one layer, weights and gradients
    ex.snapshot_slider.value = 0
    assert ex.table.columns.name == "step 10"
    assert ex.heatmap_figure.layout.shapes[0].x0 == 10
    assert "at mini-batch 10" in ex.table_html.value
    np.testing.assert_allclose(ex.table["weights"], ex.snapshots.weights[0, 2])


def test_embedding_view_recomputes_per_snapshot(store):
    view = EmbeddingView(store, perplexity=5)
    assert view.snapshot_slider.max == 3
    assert len(view.data) == 5  # run 0 has no 4th snapshot
    assert "5 runs" in view.status.value and shown(view.out)
    view.snapshot_slider.value = 0
    first = view.data
    assert len(first) == 6 and set(first["step"]) == {10}
    assert view.data is first  # cached
    view.source_picker.value = "weights"
    assert view.data is not first and len(view.data) == 6
    pre = EmbeddingView(store.load_features(list(store.runs()["run_id"])), perplexity=5,
                        precompute=True)
    assert len(pre._cache) == 4


# -- search steppers ------------------------------------------------------------------------------

def test_sh_stepper_step_run_reset(nb201_backend):
    sh = SuccessiveHalving(nb201_backend, n=9, min_budget=12, max_budget=200, eta=3, seed=0)
    st = SearchStepper(sh)
    assert isinstance(st.view, SHView)
    assert "pending" in st.table_html.value and st.search.rung == 0
    st.step_button.click()
    assert st.search is sh and sh.rung == 1
    kept = st.table[st.table["decision"] == "kept"]
    assert len(kept) == 3
    html = st.table_html.value
    assert all(f">{c}<" in html for c in kept["candidate"])
    assert html.count(STATUS_COLORS["kept"]) == 3 and html.count(STATUS_COLORS["dropped"]) == 6
    assert st.log[0].startswith("rung 0 @ 12 epochs: kept 3 of 9")
    assert set(st.data[st.data["decision"] == "pending"]["candidate"]) == set(kept["candidate"])
    assert {t["name"] for t in shown(st.diagram_out)["data"] if t.get("name")} == \
        {"kept", "dropped", "pending"}
    st.run_button.click()
    assert sh.done and st.step_button.disabled and st.run_button.disabled
    assert "done" in st.status.value and len(sh_decisions_data(st.search)) == 4
    assert [line.split(":")[0] for line in st.log if line.startswith("rung")] == \
        ["rung 0 @ 12 epochs", "rung 1 @ 36 epochs", "rung 2 @ 108 epochs",
         "rung 3 @ 200 epochs"]
    st.step()
    assert st.log[-1].startswith("(done")
    st.reset_button.click()
    assert st.search.rung == 0 and st.search.n_evaluations == 0 and st.log == []
    assert st.search.backend is nb201_backend and not st.step_button.disabled
    st.step()
    assert st.table.equals(sh.rung_table(0))  # same seed, same first rung


def test_sh_stepper_from_a_factory_with_another_ranker(nb201_backend):
    st = SearchStepper(lambda: SuccessiveHalving(nb201_backend, n=9, min_budget=12,
                                                 max_budget=200, ranker="oracle", seed=0),
                       show_final=True)
    st.run()
    assert "oracle" in st.status.value and ">final<" in st.table_html.value
    first = st.search
    st.reset()
    assert st.search is not first and st.search.n_evaluations == 0


def test_layernas_stepper_reproduces_the_paper_tables():
    st = SearchStepper(paper_example())
    assert isinstance(st.view, LayerNASView) and isinstance(st.search, LayerNAS)
    assert st.search.iteration == 0 and "layer 3" in st.table_html.value
    st.step_button.click()
    assert st.search.iteration == 1
    assert "+ADD 0.30" in st.table_html.value and "+CDD 0.45" in st.table_html.value
    assert len(st.log) == 2 and "DDD -> ADD" in st.log[0]
    for _ in range(5):
        st.step()
    # the paper's two sweeps end with CAD, CDA in bucket [8] and CDB, DDA in bucket [9]
    layer3 = st.data[(st.data["layer"] == 3) & st.data["status"].isin(["kept", "added"])]
    assert sorted(layer3["name"]) == ["CAD", "CDA", "CDB", "DDA"]
    assert "best so far <b>CAD</b>" in st.status.value
    st.run_button.click()
    assert st.search.done and st.step_button.disabled and "CBD" in st.status.value
    assert st.search.best() == (("C", "B", "D"), 0.42) and st.table.equals(st.search.tables())
    last = st.history.iloc[-1]
    assert f">{last['child']}<" in st.history_html.value and ">model_cost<" in st.history_html.value
    assert st.history_html.value.count("<tr") == 1 + 8  # header and the latest rows
    history = st.history
    st.reset_button.click()
    assert st.search.iteration == 0 and st.log == []
    st.run()
    assert st.history.equals(history)


def test_layernas_stepper_reset_restores_a_given_search():
    nas = paper_example().search()
    nas.step()
    st = SearchStepper(nas, diagram=True)
    st.run()
    assert nas.done and st.figure is not None and len(st.figure.data) == 3
    st.reset()
    assert st.search is not nas and st.search.iteration == 1
    assert st.search.space is nas.space and st.search.problem is nas.problem
    assert st.search.backend is nas.backend


def test_layernas_stepper_on_the_nb201_table(nb201_backend):
    st = SearchStepper(lambda: LayerNAS(nb201_backend, target=(0.3, 0.4), seed=0))
    st.step()
    assert len(st.log) == len(st.search.history) >= 2 and "L1: 333333 ->" in st.log[0]
    st.run()
    cell, _ = st.search.best()
    assert nb201_backend.resolve(cell) == cell and st.done
    assert "nb201-params" in st.status.value and "done" in st.status.value


@pytest.mark.parametrize("make", [
    lambda b: Hyperband(b, min_budget=12, max_budget=200, seed=0),
    lambda b: RandomSearch(b, seed=0, max_evaluations=4),
    lambda b: RegularizedEvolution(b, population=3, sample_size=2, seed=0, max_evaluations=5),
    lambda b: LocalSearch(b, budget=12, n_init=2, seed=0, max_evaluations=6),
    lambda b: OptunaSearch(b, budget=12, seed=0, max_evaluations=5),
    lambda b: RandomSearch(b, seed=0),  # never ends: Run makes run_steps steps
], ids=["hyperband", "random", "evolution", "local", "optuna", "random-unbounded"])
def test_one_stepper_serves_other_searches(nb201_backend, make):
    st = SearchStepper(make(nb201_backend), run_steps=3)
    assert type(st.view) is SearchView and st.history.empty and st.history_html.value == ""
    assert {t["name"] for t in shown(st.diagram_out)["data"]} == {"incumbent"}
    st.step_button.click()
    rows = len(st.history)
    assert rows >= 1 and len(st.log) == rows and st.log[0].startswith("step 0: ")
    assert "best so far" in st.status.value or "done" in st.status.value
    assert st.table.equals(st.search.table()) and "<table" in st.table_html.value
    assert st.history_html.value.count("<tr") == 1 + min(rows, 8)
    st.run_button.click()
    if st.search.finite:
        assert st.done and st.run_button.disabled and "<b>done</b>" in st.status.value
        with pytest.raises(RuntimeError):
            st.search.step()
        st.step()
        assert st.log[-1].startswith("(done")
    else:
        assert st.search.n_steps == 4 and st.run_button.description == "Run 3"
    fig = shown(st.diagram_out)
    assert any(t["name"].startswith("budget") for t in fig["data"])
    st.reset()
    assert st.search.n_evaluations == 0 and st.log == [] and not st.step_button.disabled


def test_fresh_copy_shares_the_backend_not_the_state(nb201_backend):
    sh = SuccessiveHalving(nb201_backend, n=9, min_budget=12, max_budget=200, seed=1)
    copy = fresh_copy(sh)
    sh.step()
    assert copy.backend is nb201_backend and copy.rung == 0 and copy.n_evaluations == 0
    copy.step()
    assert copy.history.equals(sh.history)


@pytest.mark.timeout(60)
def test_background_run_reports_errors():
    from workbench.widgets import BackgroundRun

    def boom():
        time.sleep(0.01)
        raise RuntimeError("boom")

    run = BackgroundRun(boom)
    with pytest.raises(RuntimeError, match="boom"):
        run.wait()
    assert BackgroundRun(lambda: 42).wait() == 42
