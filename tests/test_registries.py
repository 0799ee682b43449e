"""timm-style smoke test of every registry: each registered name of spaces, benchmarks, proxies,
searches, predictors and figures is built through its facade (``get_X``) with default
arguments or the small recipe below, and run once. A newly registered item fails here until it
gets a recipe (where its defaults are too big for a smoke test)."""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch
from sklearn.base import clone

import workbench.benchmarks
import workbench.predictors
import workbench.search
import workbench.spaces
import workbench.viz
from workbench._registry import Registry
from workbench.benchmarks import get_benchmark, list_benchmarks
from workbench.features import FEATURE_NAMES, Snapshots
from workbench.predictors import (
    CHANNELS,
    get_predictor,
    get_proxy,
    graphs_from_cells,
    list_predictors,
    list_proxies,
    load_predictor,
    save_predictor,
)
from workbench.predictors._persist import _classes as savable_classes
from workbench.search import (
    Search,
    SuccessiveHalving,
    get_search,
    list_searches,
    paper_example,
    search_curve,
)
from workbench.search._base import BASE_COLUMNS
from workbench.spaces import get_space, list_spaces
from workbench.store import RunRequest, RunStore
from workbench.viz import get_figure, list_figures

#: (package, kind): every registry's facade is ``register_<kind>``, ``list_<kind>s`` and
#: ``get_<kind>`` in that public package.
FACADES: dict[str, tuple[ModuleType, str]] = {
    "spaces": (workbench.spaces, "space"),
    "benchmarks": (workbench.benchmarks, "benchmark"),
    "proxies": (workbench.predictors, "prox"),
    "searches": (workbench.search, "search"),
    "predictors": (workbench.predictors, "predictor"),
    "figures": (workbench.viz, "figure"),
}


def _facade(package: ModuleType, kind: str) -> tuple[Callable[..., Any], ...]:
    plural = {"prox": "proxies", "search": "searches"}.get(kind, f"{kind}s")
    single = "proxy" if kind == "prox" else kind
    return (getattr(package, f"register_{single}"), getattr(package, f"list_{plural}"),
            getattr(package, f"get_{single}"))


# -- the registry and the facades --------------------------------------------------------------

def test_registry_rejects_duplicates_mismatched_names_and_names_unknowns():
    reg: Registry[Any] = Registry("widget")
    reg.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(lambda: 2)
    assert reg.create("a") == 1 and "a" in reg and reg.names() == ["a"] and len(reg) == 1
    assert reg.get("a")() == 1 and [] not in reg
    with pytest.raises(ValueError, match=r"unknown widget 'b'; available: \['a'\]"):
        reg.create("b")
    with pytest.raises(ValueError, match=r"unknown widget 'b'; available: \['a'\]"):
        reg.get("b")

    class Named:
        name = "x"

    with pytest.raises(ValueError, match=r"Named.name is 'x' but it is registered as widget 'y'"):
        reg.register("y")(Named)
    reg.register("x")(Named)
    with pytest.raises(ValueError, match="non-empty string"):
        reg.register("")


@pytest.mark.parametrize("registry", sorted(FACADES))
def test_every_registry_has_the_same_facade(registry):
    register, names, get = _facade(*FACADES[registry])
    listed = names()
    assert listed and listed == sorted(listed) and all(isinstance(n, str) for n in listed)
    for fn in (register, names, get):
        assert callable(fn) and fn.__doc__, f"{registry}: {fn} needs a docstring"
    with pytest.raises(ValueError, match=r"unknown .*'bogus'; available: \["):
        get("bogus")


def test_a_registered_name_is_the_items_name():
    for name in list_spaces():
        assert get_space(name).name == name
    for name in list_proxies():
        assert get_proxy(name).name == name
    for name in list_searches():
        assert workbench.search.SEARCHES.get(name).name == name
    assert workbench.search.SuccessiveHalving.name == "sh"
    assert workbench.search.SuccessiveHalving.label == "SH"


# -- spaces ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list_spaces())
def test_every_space_samples_formats_and_builds(name):
    space = get_space(name)
    rng = np.random.default_rng(0)
    cell = space.sample(rng)
    assert space.parse(space.format(cell)) == cell
    child = space.mutate(cell, rng)
    assert child != cell and space.cell_id(child) != space.cell_id(cell)
    for kind in space.encodings:
        a, b = space.encode(cell, kind), space.encode(child, kind)
        assert a.shape == b.shape and a.ndim == 1
    with pytest.raises(ValueError, match="bogus"):
        space.encode(cell, "bogus")
    net = space.build(cell, **space.model_kwargs("tiny"))
    out = net(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 10)


# -- benchmarks --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list_benchmarks())
def test_every_benchmark_gives_a_table_and_a_final_accuracy(name):
    bench = get_benchmark(name)
    table = bench.table()
    assert isinstance(table, pd.DataFrame) and len(table) == len(bench) > 0
    cell_id = table["cell_id"].iloc[0]
    acc = bench.final_accuracy(cell_id)
    assert isinstance(acc, float) and 0 <= acc <= 100
    assert bench.space.name == bench.space_name


# -- proxies -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_model_and_batch():
    space = get_space("nb201")
    model = space.build(space.sample(0), **space.model_kwargs("tiny"))
    gen = torch.Generator().manual_seed(0)
    return model, (torch.randn(4, 3, 16, 16, generator=gen),
                   torch.randint(0, 10, (4,), generator=gen))


@pytest.mark.parametrize("name", list_proxies())
def test_every_proxy_scores_a_tiny_model(name, tiny_model_and_batch, one_thread):
    model, batch = tiny_model_and_batch
    score = get_proxy(name)(model, batch)
    assert isinstance(score, float) and math.isfinite(score)


# -- searches ----------------------------------------------------------------------------------

def _sh_round(backend: Any, rng: Any) -> Search:
    """One small SH run (the round of ``rounds``)."""
    return SuccessiveHalving(backend, n=3, min_budget=12, max_budget=200, seed=rng)


#: Small, finite kwargs per search on ``TabularBackend("nb201")`` (the ``nb201_backend``
#: fixture); ``get_search(name, backend=..., seed=..., **SEARCH_RECIPES[name])``.
SEARCH_RECIPES: dict[str, dict[str, Any]] = {
    "sh": {"n": 9, "min_budget": 12, "max_budget": 200},
    "hyperband": {"min_budget": 12, "max_budget": 200},
    "random": {"max_evaluations": 6},
    "evolution": {"population": 3, "sample_size": 2, "max_evaluations": 6},
    "local_search": {"n_init": 2, "max_evaluations": 8},
    "optuna": {"max_evaluations": 6},
    "layernas": {"target": (0.3, 0.4), "buckets_per_layer": 2, "capacity_H": 1},
    "rounds": {"make": _sh_round, "max_rounds": 2},
    "predictor_sh": {"k_init": 6, "n": 3, "max_rounds": 2},
    "neural_predictor": {"n": 6, "k": 3, "rounds": 2, "m": 30},
}


def build_search(name: str, backend: Any, seed: int = 0) -> Search:
    """Search ``name`` from the registry with its recipe (fails the test without one)."""
    if name not in SEARCH_RECIPES:
        pytest.fail(f"search {name!r} is registered but has no recipe in "
                    f"tests/test_registries.py: add its small kwargs to SEARCH_RECIPES")
    return get_search(name, backend=backend, seed=seed, **SEARCH_RECIPES[name])


@pytest.mark.parametrize("name", list_searches())
def test_every_search_runs_to_its_end_on_the_table(name, nb201_backend):
    search = build_search(name, nb201_backend)
    assert isinstance(search, Search) and search.name == name and not search.done
    assert search.finite and isinstance(search.label, str) and search.label
    with pytest.raises(RuntimeError):
        search.best()  # nothing evaluated yet
    first = search.step()
    assert isinstance(first, pd.DataFrame) and set(BASE_COLUMNS) <= set(first.columns)
    part = search.run(max_steps=2)
    assert isinstance(part, pd.DataFrame) and len(part) >= len(first) and search.n_steps <= 3
    h = search.run()
    assert search.done and h.equals(search.history)
    assert list(h.columns[:len(BASE_COLUMNS)]) == list(BASE_COLUMNS)
    assert 0 < search.n_evaluations <= len(h)
    assert h["cum_cost"].is_monotonic_increasing
    assert search.total_cost == pytest.approx(h["cost"].sum())
    cell, score = search.best()
    assert isinstance(score, float) and np.isfinite(score)
    assert nb201_backend.resolve(cell) == cell
    assert nb201_backend.cell_id(cell) in set(h["candidate"])
    assert np.isfinite(search.incumbent_final())
    assert isinstance(search.table(), pd.DataFrame)
    with pytest.raises(RuntimeError):
        search.step()
    curve = search_curve(search)
    assert len(curve) == len(h) and curve["evaluations"].iloc[-1] == search.n_evaluations
    assert curve["regret"].iloc[-1] >= 0 and set(curve["method"]) == {search.label}


@pytest.mark.parametrize("name", list_searches())
def test_same_seed_same_history_and_steps_equal_run(name, nb201_backend):
    a, b = build_search(name, nb201_backend, 5), build_search(name, nb201_backend, 5)
    other = build_search(name, nb201_backend, 6)
    a.run()
    while not b.done:
        b.step()
    other.run()
    pd.testing.assert_frame_equal(a.history, b.history)
    assert not a.history["candidate"].equals(other.history["candidate"])
    assert a.best()[1] == b.best()[1]


# -- predictors --------------------------------------------------------------------------------

def _graphs(n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Graphs of ``n`` random NB201 cells and their table accuracies."""
    bench, rng = get_benchmark("nb201"), np.random.default_rng(0)
    cells = [bench.space.sample(rng) for _ in range(n)]
    return graphs_from_cells("nb201", cells), np.array([bench.final_accuracy(c) for c in cells])


def _cells(n: int = 24) -> tuple[list[Any], np.ndarray]:
    """``n`` random NB201 cells and their table accuracies (GRAF reads cells directly)."""
    bench, rng = get_benchmark("nb201"), np.random.default_rng(0)
    cells = [bench.space.sample(rng) for _ in range(n)]
    return cells, np.array([bench.final_accuracy(c) for c in cells])


def _maps(n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Snapshot maps [n, 2 snapshots, 6 layers, channels] whose scale carries the label."""
    rng = np.random.default_rng(0)
    latent = rng.normal(size=n)
    maps = rng.normal(scale=0.5, size=(n, 2, 6, len(CHANNELS))) + latent[:, None, None, None]
    return maps.astype(np.float32), 80 + 5 * latent


def _curves(n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Rising learning curves at steps 1..5, one NaN (unobserved) tail, and their final value."""
    rng = np.random.default_rng(0)
    top = rng.uniform(60, 90, size=n)
    x = top[:, None] * (1 - 0.5 / np.arange(1, 6))
    x[0, -1] = np.nan
    return x, top


def _table(n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """A 2-column feature matrix whose first column is the label plus noise."""
    rng = np.random.default_rng(0)
    y = rng.uniform(60, 90, size=n)
    return np.column_stack([y + rng.normal(size=n), rng.normal(size=n)]), y


#: Per predictor: (its data, small constructor params).
PREDICTOR_RECIPES: dict[str, tuple[Callable[[], tuple[Any, np.ndarray]], dict[str, Any]]] = {
    "gcn": (_graphs, {"hidden": 8, "fc": 8, "epochs": 3, "device": "cpu"}),
    "dynamics_gbt": (_maps, {"n_estimators": 10, "min_samples_leaf": 2}),
    "dynamics_forest": (_maps, {"n_estimators": 10}),
    "dynamics_gru": (_maps, {"hidden": 8, "num_layers": 1, "epochs": 2, "batch_size": 10,
                             "device": "cpu"}),
    "mean": (_table, {}),
    "feature": (_table, {"column": 0}),
    "last_value": (_curves, {}),
    "curve": (_curves, {"final_step": 10.0}),
    "graf": (_cells, {"n_estimators": 20}),
    "arch_ensemble": (_cells, {"members": (("gcn", {"hidden": 8, "fc": 8, "epochs": 3,
                                                    "device": "cpu"}),
                                           ("graf", {"n_estimators": 20}))}),
}


@pytest.mark.parametrize("name", list_predictors())
def test_every_predictor_fits_predicts_clones_and_saves(name, one_thread, tmp_path):
    if name not in PREDICTOR_RECIPES:
        pytest.fail(f"predictor {name!r} is registered but has no recipe in "
                    f"tests/test_registries.py: add its data and params to PREDICTOR_RECIPES")
    data, params = PREDICTOR_RECIPES[name]
    X, y = data()
    est = get_predictor(name, **params)
    twin = clone(est)
    assert type(twin) is type(est) and twin.get_params() == est.get_params()
    pred = est.fit(X, y).predict(X)
    assert pred.shape == (len(y),) and np.isfinite(pred).all()
    if type(est).__name__ in savable_classes():  # a predictor file names the class
        back = load_predictor(save_predictor(est, tmp_path / f"{name}.npz"))
        assert type(back) is type(est)
        np.testing.assert_allclose(back.predict(X), pred, rtol=1e-5, atol=1e-6)


def test_predictor_files_know_every_savable_registered_class():
    assert set(savable_classes()) == {"ArchitectureEnsemble", "DynamicsForest", "DynamicsGBT",
                                      "DynamicsGRU", "GCNPredictor", "GraphFeatureRegressor"}


# -- figures -----------------------------------------------------------------------------------

def _snapshots(seed: int = 0, n_snap: int = 3, n_layers: int = 3) -> Snapshots:
    """Synthetic snapshots of a 3-layer network, positive and growing with the step."""
    rng = np.random.default_rng(seed)
    w = (1 + rng.random((n_snap, n_layers, len(FEATURE_NAMES)))).astype(np.float32)
    w *= np.arange(1, n_snap + 1)[:, None, None]
    return Snapshots(weights=w, grads=-w / 10, mask=np.ones(n_layers, bool),
                     steps=10 * np.arange(1, n_snap + 1),
                     layer_names=tuple(f"l{i}" for i in range(n_layers)),
                     layer_kinds=("conv",) * n_layers, snapshot_every=10, sample_size=64)


def _curve_frames(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    curves = pd.DataFrame({"step": [10, 20, 30], "train_loss": 2 - rng.random(3).cumsum() / 3,
                           "train_acc": 20 + 10 * rng.random(3).cumsum()})
    evals = pd.DataFrame({"step": [30], "val_loss": [1.5], "val_acc": [30.0 + seed]})
    return curves, evals


@pytest.fixture(scope="module")
def figure_inputs(tmp_path_factory, nb201_backend) -> dict[str, Any]:
    """Small inputs of the figures' data steps: a store of 4 finished runs (curves, evals,
    snapshots), a finished SH, a LayerNAS on the paper example, a NAP2-shaped results dict."""
    from workbench.training import TrainResult

    store = RunStore(tmp_path_factory.mktemp("figures") / "store")
    ids = store.add_runs([RunRequest(space="nb201", cell_id=str(i), dataset="cifar10",
                                     label=80.0 + i, label_name="t") for i in range(4)])
    for i, rid in enumerate(ids):
        assert store.claim(rid, "test")
        curves, evals = _curve_frames(i)
        store.save_arrays(rid, "curves", {c: curves[c].to_numpy() for c in curves})
        store.save_arrays(rid, "evals", {c: evals[c].to_numpy() for c in evals})
        store.save_arrays(rid, "snapshots", _snapshots(i).to_arrays())
        store.mark_done(rid, {"val_acc": 30.0 + i}, steps=30)
    sh = SuccessiveHalving(nb201_backend, n=9, min_budget=12, max_budget=200, seed=0)
    sh.run()
    nas = paper_example().search()
    nas.run(max_sweeps=1)
    ci = {"mean": 0.5, "ci95": 0.1, "n": 3}
    method = {"regret_at_fraction": {f: ci for f in ("0.5", "1.0")}, "uses_offline": False,
              "top3_precision": ci, "rung_tau": {"0": {"ranker": ci, "observed": ci}}}
    results = {"spaces": {"nb201": {"space": "nb201", "rungs": [6, 18],
                                    "methods": {"SH": method}}}}
    rng = np.random.default_rng(0)
    curves, evals = _curve_frames(0)
    return {
        "signal_scatter": (get_benchmark("nb101"),),
        "correlation_table": (pd.DataFrame({"a": rng.random(12), "b": rng.random(12),
                                            "truth": rng.random(12)}), "truth"),
        "learning_curves": (store, ids),
        "run_curves": (TrainResult("done", 30, 30, 1.0, curves, evals, None),),
        "feature_heatmap": (_snapshots(),),
        "feature_lines": (_snapshots(),),
        "tsne": (store,),
        "predicted_vs_true": (rng.random(10), rng.random(10)),
        "regret": (search_curve(sh),),
        "sh_rungs": (sh,),
        "search_progress": (sh,),
        "layernas_buckets": (nas,),
        "pareto": (nb201_backend.benchmark, "latency", "pixel3", {"SH": sh}),
        "rung_scores": (sh,),
        "rung_taus": (sh,),
        "nap2_regret": (results,),
        "nap2_precision": (results,),
        "sample_size_curves": (pd.DataFrame({
            "n": [10, 10, 20, 20] * 2, "seed": [0, 1] * 4, "predictor": ["a"] * 4 + ["b"] * 4,
            "kendall_tau": rng.random(8), "fit_seconds": [0.1] * 4 + [0.0] * 4}),),
    }


@pytest.mark.parametrize("name", list_figures())
def test_every_figure_builds_from_small_data(name, figure_inputs):
    if name not in figure_inputs:
        pytest.fail(f"figure {name!r} is registered but has no inputs in the figure_inputs "
                    "fixture of tests/test_registries.py")
    recipe = get_figure(name, title=f"smoke: {name}")
    assert recipe.name == name
    fig = recipe(*figure_inputs[name])
    assert isinstance(fig, go.Figure) and fig.layout.title.text == f"smoke: {name}"
    frame = recipe.data(*figure_inputs[name])
    assert isinstance(frame, pd.DataFrame) and isinstance(recipe.draw(frame), go.Figure)


def test_a_figure_names_the_plot_options_it_takes():
    with pytest.raises(ValueError, match=r"figure 'regret' \(plot_regret\) takes no options "
                                         r"\['colour'\]; allowed: \['band', 'log_x', 'title'\]"):
        get_figure("regret", colour="red")
