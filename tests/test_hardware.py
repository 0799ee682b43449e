"""Hardware costs, the NB101 20k table, NB201 validation labels and learning curves, and
cost-constrained search (issue #16)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench._paths import shared_data_dir
from workbench._tables import read_table
from workbench.benchmarks import device_transfer, get_benchmark, nb201_val200_accuracies
from workbench.evaluation import EXTRAPOLATION_COLUMNS, extrapolation_scores
from workbench.search import (
    CostConstraint,
    Hyperband,
    LayerNAS,
    LocalSearch,
    NeuralPredictorSearch,
    OptunaSearch,
    PredictorSH,
    RandomSearch,
    RegularizedEvolution,
    SuccessiveHalving,
    TabularBackend,
    pareto_front,
    pareto_mask,
)
from workbench.spaces import get_space

SHARED = shared_data_dir()


@pytest.fixture(scope="module")
def nb201():
    return get_benchmark("nb201")


@pytest.fixture(scope="module")
def backend(nb201):
    return TabularBackend(nb201)


# -- costs -------------------------------------------------------------------------------------

def _shared(name):
    if SHARED is None or not (SHARED / name).is_file():
        pytest.skip(f"no shared {name}")
    return pd.read_csv(SHARED / name)


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "ImageNet16-120"])
def test_cost_lookups_equal_the_hw_nas_bench_csv(nb201, dataset):
    raw = _shared(f"nasbench201_hw_{dataset}.csv.gz").set_index("index")
    for index in (0, 1, 77, 15624):
        assert nb201.cell(str(index)).to_string() == raw.loc[index, "arch"]
        for dev, metric in (("edgegpu", "latency"), ("edgegpu", "energy"), ("raspi4", "latency"),
                            ("edgetpu", "latency"), ("pixel3", "latency"),
                            ("eyeriss", "energy"), ("fpga", "latency"), ("fpga", "energy")):
            got = nb201.cost(index, metric=metric, device=dev, dataset=dataset)
            assert got == raw.loc[index, f"{dev}_{metric}"]
    if dataset == "cifar10":  # HW-NAS-Bench's README example
        assert nb201.cost(0, metric="latency", device="edgegpu") == pytest.approx(5.807,
                                                                                 abs=1e-3)


def test_help_latencies_equal_the_csv_and_by_cell_string(nb201):
    raw = _shared("nasbench201_latency.csv.gz").set_index("index")
    for index in (3, 500, 9000):
        arch = raw.loc[index, "arch"]
        for dev in ("titan_rtx_256", "gold_6226", "pixel2", "1080ti_1"):
            assert nb201.cost(arch, metric="latency", device=dev) == raw.loc[
                index, f"latency_ms_{dev}"]


def test_tidy_costs_hold_every_metric_of_every_cell(nb201):
    metrics = nb201.cost_metrics()
    assert {"edgegpu", "raspi4", "edgetpu", "pixel3", "eyeriss", "fpga"} <= set(metrics["device"])
    costs = nb201.costs(dataset="cifar100")
    n_metrics = len(nb201.cost_metrics(dataset="cifar100"))
    assert len(costs) == len(nb201) * n_metrics
    assert set(costs["dataset"]) == {"cifar100"}
    one = costs[(costs["device"] == "fpga") & (costs["metric"] == "energy")]
    np.testing.assert_array_equal(
        one["value"].to_numpy(),
        nb201.all_costs("energy", "fpga", dataset="cifar100").to_numpy())
    assert (costs.loc[costs["metric"] == "latency", "unit"] == "ms").all()
    assert nb201.cost(5, metric="params") == pytest.approx(nb201.table()["params"][5] / 1e6)


def test_cost_errors_name_what_is_allowed(nb201):
    with pytest.raises(ValueError, match=r"needs a device.*pixel3"):
        nb201.cost(0, metric="latency")
    with pytest.raises(ValueError, match=r"available \(metric, device\).*edgegpu"):
        nb201.cost(0, metric="latency", device="gameboy")
    with pytest.raises(ValueError, match=r"available \(metric, device\)"):  # HELP's: CIFAR-10 only
        nb201.cost(0, metric="latency", device="titanx_1", dataset="cifar100")
    with pytest.raises(ValueError, match="epochs"):
        nb201.cost(0)
    with pytest.raises(ValueError, match="epochs=12 goes with training seconds"):
        nb201.cost(0, epochs=12, metric="latency", device="pixel3")
    with pytest.raises(ValueError, match=r"available \(metric, device\).*params"):
        get_benchmark("nb101").cost(get_benchmark("nb101").table()["cell_id"][0],
                                    metric="latency", device="pixel3")


# -- NB101 20k -----------------------------------------------------------------------------------

def _check_hashes(table):
    space = get_space("nb101")
    for row in table.itertuples(index=False):
        assert space.parse(f"{row.matrix}|{row.ops}").hash == row.hash


def test_nb101_20k_hashes_equal_the_hashes_of_a_sample_of_its_graphs():
    table = read_table("nb101")
    assert len(table) == 20_001 and table["hash"].is_unique
    _check_hashes(table.sample(1500, random_state=0))


@pytest.mark.slow
def test_nb101_20k_hashes_equal_the_hashes_of_all_its_graphs():
    _check_hashes(read_table("nb101"))


def test_nb101_serves_20k_and_the_1k_stays_reachable():
    big, small = get_benchmark("nb101"), get_benchmark("nb101_1k")
    assert len(big) == 20_001 and len(small) == 1000
    pd.testing.assert_frame_equal(big.raw.iloc[:1000].reset_index(drop=True),
                                  small.raw.reset_index(drop=True), check_dtype=False)
    cid = small.table()["cell_id"][17]
    assert big.final_accuracy(cid) == small.final_accuracy(cid)


# -- NB201 validation labels and learning curves ------------------------------------------------

def test_nb201_searches_observe_val200_and_are_judged_on_test(nb201, backend):
    val = nb201_val200_accuracies(nb201)
    table = nb201.table().set_index("cell_id")
    np.testing.assert_allclose(table.loc[val.index, "cifar10/val@200"], val)
    ev = backend.evaluate("1", 200)
    assert ev.score == pytest.approx(val.loc["1"]) and ev.score != ev.final
    assert ev.final == pytest.approx(table.loc["1", "cifar10/test@200"])
    dup = next(i for i, r in nb201.representatives().items() if i != r)  # a duplicate cell
    assert table.loc[dup, "cifar10/val@200"] == val.loc[nb201.representative(dup)]


def test_curve_fidelity_lookups_return_the_stored_epoch():
    raw = read_table("nb201_curves")
    bench = get_benchmark("nb201_curves")
    assert len(bench) == 200 and bench.epochs() == list(range(1, 201))
    back = TabularBackend(bench)
    for index, epoch in ((0, 1), (3, 7), (150, 55), (199, 200)):
        row = raw[(raw["index"] == index) & (raw["epoch"] == epoch)].iloc[0]
        assert bench.accuracy(index, epochs=epoch) == row["val_acc"]
        assert back.evaluate(str(index), epoch).score == row["val_acc"]
        assert bench.train_curve(index)[epoch] == row["train_acc"]
    assert back.fidelity(7.5) == 8  # any epoch is measured: the next one up
    assert bench.final_accuracy(3) == get_benchmark("nb201").final_accuracy(3)


def test_hyperband_on_the_curves_runs_real_brackets():
    back = TabularBackend("nb201_curves")
    hb = Hyperband(back, min_budget=200 / 27, max_budget=200, seed=0)
    h = hb.run()
    assert h["fidelity"].nunique() >= 4 and set(h["fidelity"]) - {12, 200}
    assert set(h["fidelity"]) <= set(range(1, 201))


# -- cost-constrained search -----------------------------------------------------------------------

LATENCY = ("latency", "pixel3")


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(q=st.floats(0.01, 0.9), seed=st.integers(0, 2**16))
def test_constrained_searches_never_return_an_infeasible_cell(backend, nb201, q, seed):
    lat = nb201.all_costs(*LATENCY)
    limit = float(np.quantile(lat, q))
    c = CostConstraint(LATENCY, max_value=limit)
    searches = [RandomSearch(backend, budget=12, max_evaluations=20, seed=seed, constraint=c),
                RegularizedEvolution(backend, population=5, sample_size=2, budget=12,
                                     max_evaluations=25, seed=seed, constraint=c),
                SuccessiveHalving(backend, n=9, min_budget=12, max_budget=200, seed=seed,
                                  constraint=c),
                LocalSearch(backend, budget=12, n_init=3, max_evaluations=40, seed=seed,
                            constraint=c),
                OptunaSearch(backend, budget=12, max_evaluations=20, seed=seed, constraint=c),
                NeuralPredictorSearch(backend, n=10, k=5, rounds=2, m=60, budget=12, seed=seed,
                                      constraint=c),
                PredictorSH(backend, k_init=6, n=9, min_budget=12, max_budget=200,
                            max_rounds=1, seed=seed, constraint=c)]
    for s in searches:
        h = s.run()
        assert (lat.loc[h["candidate"].astype(str)] <= limit).all()
        cell, _ = s.best()
        assert lat.loc[backend.cell_id(cell)] <= limit


def test_neural_predictor_pool_is_the_feasible_cells(backend, nb201):
    lat = nb201.all_costs(*LATENCY)
    limit = float(lat.quantile(0.2))
    c = CostConstraint(LATENCY, max_value=limit)
    feasible = set(c.feasible_ids(backend))
    whole = NeuralPredictorSearch(backend, n=10, k=5, budget=12, seed=0, constraint=c)
    assert set(whole.ids) == feasible  # every feasible table cell, no other
    ids = [str(i) for i in nb201.table()["cell_id"]]
    x = pd.DataFrame({"lat": lat.loc[ids].to_numpy()}, index=ids)
    given = NeuralPredictorSearch(backend, "graf", n=10, k=5, budget=12, seed=0,
                                  features=(ids, x), m=40, constraint=c)
    assert len(given.ids) == 50 and set(given.ids) <= feasible
    assert list(given.x.index) == given.ids  # the inputs' rows follow their ids
    with pytest.raises(ValueError, match="costs range over"):
        NeuralPredictorSearch(backend, n=10, k=5, budget=12,
                              constraint=CostConstraint(LATENCY, max_value=-1.0))
    few = CostConstraint(LATENCY, max_value=float(lat.nsmallest(12).max()))
    with pytest.raises(ValueError, match="fewer than n"):
        NeuralPredictorSearch(backend, n=10, k=5, budget=12, constraint=few)


def test_layernas_under_a_latency_target_stays_within_it(backend, nb201):
    lat = nb201.all_costs(*LATENCY)
    limit = float(np.quantile(lat, 0.3))
    nas = LayerNAS(backend, target=limit, cost=LATENCY, budget=12, seed=0)
    nas.run(max_evaluations=60)
    found = nas.found()
    assert found.cost <= limit
    assert lat.loc[backend.cell_id(nas.best()[0])] == pytest.approx(found.cost)


def test_a_target_no_cell_meets_names_the_feasible_range(backend):
    with pytest.raises(ValueError, match=r"costs range over 0\.003.*\.\.36\.77"):
        RandomSearch(backend, budget=12, constraint=CostConstraint(LATENCY, max_value=-1.0))
    with pytest.raises(ValueError, match=r"unreachable.*span"):
        LayerNAS(backend, target=(50.0, 60.0), cost=LATENCY)
    with pytest.raises(ValueError, match="max_value"):
        CostConstraint(LATENCY, max_value=float("nan"))
    with pytest.raises(ValueError, match=r"min_value 2\.0 exceeds"):
        CostConstraint(LATENCY, max_value=1.0, min_value=2.0)


def test_a_cost_function_constrains_like_a_table_column():
    back = TabularBackend("nb101_1k")
    params = back.benchmark.table().set_index("cell_id")["params"]
    limit = float(params.median())

    def n_params(cell):
        return float(params.loc[back.cell_id(cell)])

    c = CostConstraint(n_params, max_value=limit)
    h = RandomSearch(back, budget=12, max_evaluations=30, seed=1, constraint=c).run()
    assert (params.loc[h["candidate"].astype(str)] <= limit).all()
    c2 = CostConstraint("params", max_value=limit / 1e6)
    assert c2.feasible_ids(back) == c.feasible_ids(back)


# -- Pareto front ---------------------------------------------------------------------------------

def test_pareto_front_of_a_hand_made_table():
    t = pd.DataFrame({"name": list("abcdefgh"),
                      "cost": [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, np.nan],
                      "score": [5.0, 4.0, 7.0, 7.0, 7.0, 6.0, 9.0, 10.0]})
    front = pareto_front(t)
    # b: same cost as a, worse; e: same score as c/d at more cost; f worse; h has no cost.
    assert list(front["name"]) == ["a", "c", "d", "g"]
    assert pareto_mask([1, 1], [2, 2]).all()  # exact ties are kept
    with pytest.raises(ValueError, match="column 'acc'"):
        pareto_front(t, score="acc")


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=30))
def test_pareto_mask_matches_the_definition(points):
    c = np.array([p[0] for p in points], float)
    s = np.array([p[1] for p in points], float)
    mask = pareto_mask(c, s)
    for i in range(len(points)):
        dominated = np.any((c <= c[i]) & (s >= s[i]) & ((c < c[i]) | (s > s[i])))
        assert mask[i] == (not dominated)


# -- device transfer and curve extrapolation ------------------------------------------------------

def test_device_transfer_by_hand(nb201):
    devices = ["edgegpu", "fpga"]
    t = device_transfer(nb201, devices, quantile=0.3).set_index(["source", "target"])
    final = nb201.all_accuracies()
    for src in devices:
        lat = nb201.all_costs("latency", src)
        feas = lat.index[lat <= lat.quantile(0.3)]
        assert t.loc[(src, src), "cell_id"] == final.loc[feas].idxmax()
        assert t.loc[(src, src), "feasible"] and t.loc[(src, src), "percentile"] == 100.0
    cid = t.loc[("edgegpu", "fpga"), "cell_id"]
    fpga = nb201.all_costs("latency", "fpga")
    assert t.loc[("edgegpu", "fpga"), "feasible"] == (fpga[cid] <= fpga.quantile(0.3))
    with pytest.raises(ValueError, match="quantile"):
        device_transfer(nb201, devices, quantile=0)


def test_extrapolation_scores_beat_last_value_on_power_law_curves():
    rng = np.random.default_rng(0)
    epochs = np.arange(1, 201, dtype=float)
    a = rng.uniform(80, 95, 40)
    curves = pd.DataFrame([ai - 40 * epochs ** -0.7 for ai in a])
    scores = extrapolation_scores(curves, cutoffs=(12, 50), models=("last", "pow"), n_boot=50)
    assert list(scores.columns) == list(EXTRAPOLATION_COLUMNS)
    mae_ = scores[scores["metric"] == "mae"].set_index(["cutoff", "model"])
    for t in (12, 50):
        assert mae_.loc[(t, "pow"), "value"] < 0.1 < mae_.loc[(t, "last"), "value"]
        assert mae_.loc[(t, "pow"), "diff_ci_high"] < 0
        assert mae_.loc[(t, "last"), "diff_vs_last"] == 0
    assert mae_.loc[(12, "last"), "value"] > mae_.loc[(50, "last"), "value"]
    np.testing.assert_allclose(scores.attrs["predictions"][(12, "last")], curves[11])
    with pytest.raises(ValueError, match="unknown curve models"):
        extrapolation_scores(curves, models=("spline",))


def test_the_readme_shows_the_stored_hardware_table():
    import json
    from pathlib import Path

    from conftest import bench_module

    root = Path(__file__).resolve().parents[1]
    rows = json.loads((root / "bench" / "results" / "hardware.json").read_text())["rows"]
    with bench_module("hardware") as m:
        table = m.markdown(rows).split("\n")
    readme = (root / "README.md").read_text().split("\n")
    assert table[0] in readme, "README has no hardware table (python bench/hardware.py --table)"
    start = readme.index(table[0])
    assert readme[start:start + len(table)] == table, "rerun python bench/hardware.py --table"
    assert len(table) == 2 + len(rows) and all(r["LS"]["top1_rate"] >= 0 for r in rows)


def test_constraint_violation_by_hand():
    upper = CostConstraint(LATENCY, max_value=4.0)
    np.testing.assert_allclose(upper.violation([2.0, 4.0, 5.0, 8.0, np.nan]),
                               [0.0, 0.0, 0.25, 1.0, np.inf])
    band = CostConstraint("params", min_value=1.0, max_value=2.0)
    np.testing.assert_allclose(band.violation([0.5, 1.5, 3.0]), [0.5, 0.0, 0.5])
    assert (band.violation([0.5, 1.5, 3.0]) == 0).tolist() == band.mask([0.5, 1.5, 3.0]).tolist()
