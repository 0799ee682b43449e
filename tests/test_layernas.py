"""LayerNAS: bucket ranges, the paper's worked example, exactness on separable objectives,
determinism, configuration errors, NAS-Bench-201 topology and the channel space's costs, and
LayerNAS as a Search (history, best, step after the end, tabular backends, simulate)."""

from __future__ import annotations

import itertools
from functools import partial

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from workbench.search import (
    RandomSearch,
    Search,
    TabularBackend,
    get_search,
    list_searches,
    search_curve,
    simulate,
)
from workbench.search._base import BASE_COLUMNS
from workbench.search._layernas import (
    LayerNAS,
    LayerwiseSpace,
    ProblemBackend,
    brute_force,
    independence_violations,
)
from workbench.search._layernas_spaces import (
    PAPER_ACCURACIES,
    PAPER_TRACE,
    channel_space,
    nb201_topology,
    paper_example,
    paper_oracle,
)
from workbench.viz import layernas_buckets_data


@pytest.fixture(scope="module")
def paper():
    return paper_example()


@pytest.fixture(scope="module")
def nb201():
    return nb201_topology(cost="params", epochs=12)


def separable(n_layers: int = 6, n_options: int = 4, seed: int = 0):
    """An additive objective over integer option costs 1..n_options (no ties)."""
    rng = np.random.default_rng(seed)
    gains = rng.normal(size=(n_layers, n_options))
    space = LayerwiseSpace([tuple(range(1, n_options + 1))] * n_layers, lambda c: sum(c),
                           name="separable")

    def score(c):
        return float(sum(gains[i, o - 1] for i, o in enumerate(c)))

    return space, score


# -- the paper's example ----------------------------------------------------------------------


def test_paper_bucket_ranges(paper):
    nas = paper.search()
    ranges = nas.range_table()
    assert ranges[["lo", "hi"]].to_numpy().tolist() == [[9, 12], [6, 12], [8, 9]]
    assert ranges["buckets"].tolist() == ["[9] [10] [11] [12]", "[6-7] [8] [9-10] [11-12]",
                                          "[8] [-] [-] [9]"]
    assert [nas.bucket_of(2, c) for c in range(5, 14)] == [None, 0, 0, 1, 2, 2, 3, 3, None]
    # The exact rule: AAD (6) and ABD (7) cannot reach 8 M by changing layer 3.
    exact = paper.search(range_rule="exact")
    assert exact.ranges == [(9, 12), (8, 12), (8, 9)]


def test_paper_two_sweeps_end_at_cad(paper):
    """The paper's "Result: CAD (8 M, 0.40); 12 trained" is the state of its example when it
    stops after two sweeps, not the answer of a finished search (see the next test): two sweeps
    train 12 candidates, and with the seed chosen for the example (the paper's random picks
    cannot be recovered: its trace is not consistent with any single order) they end at CAD."""
    nas = paper.search()
    nas.run(max_sweeps=2)
    best = nas.found()
    assert (best.name, best.cost, best.score) == ("CAD", 8.0, 0.40)
    assert nas.best() == (("C", "A", "D"), 0.40)
    assert nas.n_evaluations == 12 and not nas.done
    h = nas.history
    trained = list(h.loc[h.trained, "child"])
    assert trained[:2] == ["ADD", "CDD"]  # the paper's first iteration
    assert len(set(trained) & set(PAPER_ACCURACIES)) >= 8
    assert (h.groupby("iteration")["trained"].sum() <= 2).all()
    table3 = nas.bucket_table(3)
    assert table3["members"].tolist() == ["CAD 0.40, CDA 0.37", "", "", "CDB 0.40, DDA 0.37"]


def test_paper_full_run_finds_cbd(paper):
    """Decision: the implementation follows the reference algorithm (sweep until no candidate
    has unexplored children, answer = best of layer L's table), and run to completion it
    returns CBD (9 M, 0.42) for every seed: listed by the paper, within the target, better than
    the paper's CAD and the brute-force optimum of the example. Its two-sweep trace never
    expands CBD at layer 3; nothing in [9-10] of layer 2 or [9] of layer 3 outranks 0.42, so
    any complete run must return it."""
    brute = paper.brute_force()
    assert brute.loc[0, "name"] == "CBD" and brute.loc[0, "score"] == 0.42
    for seed in range(20):
        nas = paper.search(seed=seed)
        nas.run()
        found = nas.found()
        assert (found.name, found.cost, found.score) == ("CBD", 9.0, 0.42)
    nas = paper.search()
    nas.run()
    assert nas.done
    assert nas.found().name == "CBD" and nas.best() == (("C", "B", "D"), PAPER_ACCURACIES["CBD"])
    assert nas.n_evaluations < 64 // 2
    assert all(nas.found().score >= v for k, v in PAPER_TRACE
               if 8 <= sum(map(" ABCD".index, k)) <= 9)
    # Bucket [8] of layer 2 ends as in the paper: ACD is outranked by CAD and BBD.
    assert nas.bucket_table(2).loc[1, "members"] == "CAD 0.40 [x], BBD 0.32 [x]"
    assert nas.tables()["members"].str.contains("[x]", regex=False).sum() == 8


def test_paper_oracle_completion():
    assert paper_oracle(("C", "A", "D")) == 0.40
    assert paper_oracle(("A", "A", "A")) == pytest.approx(0.08)
    assert max(paper_oracle(c) for c in itertools.product("ABCD", repeat=3)
               if "".join(c) not in PAPER_ACCURACIES) < min(PAPER_ACCURACIES.values())


def test_children_outside_the_range_are_dropped(paper):
    nas = paper.search()
    h = nas.run()
    lo = h["layer"].map(lambda i: nas.ranges[i - 1][0])
    hi = h["layer"].map(lambda i: nas.ranges[i - 1][1])
    outside = (h["model_cost"] < lo) | (h["model_cost"] > hi)
    assert (outside == (h["decision"] == "dropped")).all()
    assert (h.loc[outside, "cost"] == 0).all() and h.loc[outside, "final"].isna().all()
    assert h.loc[outside, "score"].isna().all() and not h.loc[outside, "trained"].any()
    assert ((h["child"] == "CDD") & (h["layer"] == 3) & (h["decision"] == "dropped")).any()
    kept = nas.tables(long=True)
    assert all(nas.ranges[r.layer - 1][0] <= r.cost <= nas.ranges[r.layer - 1][1]
               for r in kept.itertuples())


def test_eviction_keeps_the_best_h():
    scores = {"A": 0.2, "B": 0.5, "C": 0.1, "D": 0.9, "E": 0.5}
    space = LayerwiseSpace([tuple(scores)], lambda c: 1.0, default=("A",), name="flat")
    nas = LayerNAS(space, lambda c: scores[c[0]], (1, 1), buckets_per_layer=1, capacity_H=2,
                   candidates_per_iter=5, seed=3)
    nas.run()
    table = nas.bucket_table(1, long=True)
    assert table["name"].tolist() == ["D", "B"] or table["name"].tolist() == ["D", "E"]
    # Of the equal scores 0.5, the earlier evaluation wins.
    order = [c for c in nas.history["child"] if c in ("B", "E")]
    assert table["name"].tolist()[1] == order[0]
    events = nas.history["decision"]
    assert events.str.startswith("evicted").any() or (events == "rejected-full").any()
    assert nas.n_evaluations == 5 and nas.found().name == "D" and nas.best() == (("D",), 0.9)


def test_same_seed_same_trace_and_step_equals_run(paper):
    a = paper.search(seed=5).run()
    b = paper.search(seed=5).run()
    pd.testing.assert_frame_equal(a, b)
    stepped = paper.search(seed=5)
    parts = []
    while not stepped.done:
        parts.append(stepped.step())
    with pytest.raises(RuntimeError, match="done"):
        stepped.step()
    pd.testing.assert_frame_equal(stepped.history, a)
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), a, check_dtype=False)
    assert stepped.iteration == a["iteration"].max()


@pytest.mark.parametrize("rule", ["paper", "exact"])
def test_separable_objective_gives_the_exact_optimum(rule):
    space, score = separable()
    target = (14, 15)
    brute = brute_force(space, score, target)
    nas = LayerNAS(space, score, target, buckets_per_layer=10, capacity_H=1,
                   candidates_per_iter=4, range_rule=rule)
    nas.run()
    assert nas.found().candidate == brute.loc[0, "candidate"]
    assert nas.best()[1] == pytest.approx(brute.loc[0, "score"])
    assert nas.n_evaluations < len(brute) < space.size
    ind = independence_violations(space, score, target, seeds=(0, 1), buckets_per_layer=10,
                                  capacity_H=1, range_rule=rule)
    assert not ind["violated"].any() and (ind["regret"] == 0).all()


def test_independence_violations_reports_broken_chains(paper):
    ind = independence_violations(paper.space, paper.evaluator, [(8, 9), (6, 7)], seeds=(0, 1),
                                  buckets_per_layer=1, capacity_H=1)
    assert len(ind) == 4 and {"broken_at", "reason", "regret", "found_rank"} <= set(ind.columns)
    assert (ind["regret"] >= 0).all()
    broken = ind[ind["violated"]]
    assert broken["broken_at"].notna().all() and (broken["reason"] != "").all()


def test_explain_follows_prefixes(paper):
    nas = paper.search()
    nas.run(max_sweeps=2)
    ex = nas.explain("CBD")
    assert ex["prefix"].tolist() == ["CDD", "CBD", "CBD"]
    assert ex.loc[0, "fate"] == "kept" and ex.loc[1, "fate"] == "not generated"


@pytest.mark.parametrize("kwargs, match", [
    ({"target": (30, 40)}, r"\(30, 40\)"),
    ({"target": (8.2, 8.6)}, r"8\.2"),
    ({"target": (9, 8)}, r"\(9, 8\)"),
    ({"capacity_H": 0}, "capacity_H.*0"),
    ({"buckets_per_layer": 0}, "buckets_per_layer.*0"),
    ({"candidates_per_iter": -1}, "candidates_per_iter.*-1"),
    ({"range_rule": "loose"}, "loose"),
    ({"seed": -2}, "seed.*-2"),
])
def test_bad_configurations_raise(paper, kwargs, match):
    args = {"target": (8, 9), **kwargs}
    with pytest.raises(ValueError, match=match):
        LayerNAS(paper.space, paper.evaluator, **args)


@pytest.mark.parametrize("layers, match", [
    ([], r"\[\]"), ([("A", "B"), ()], r"layer 2.*\(\)"), ([("A", "A")], "repeated")])
def test_bad_spaces_raise(layers, match):
    with pytest.raises(ValueError, match=match):
        LayerwiseSpace(layers, lambda c: 1.0)


def test_space_basics(paper):
    space = paper.space
    assert space.default == ("D", "D", "D") and space.size == 64 and space.integer_costs
    assert space.cost("CAD") == 8 and space.format(("C", "A", "D")) == "CAD"
    with pytest.raises(ValueError, match="'E'"):
        space.check(("A", "B", "E"))
    with pytest.raises(RuntimeError, match="empty"):
        LayerNAS(space, paper.evaluator, (8, 9)).best()


# -- NAS-Bench-201 and the channel space ------------------------------------------------------


def test_nb201_topology_run_stays_in_target(nb201):
    target = (0.3, 0.4)
    nas = nb201.search(target=target, seed=0)
    nas.run()
    best = nas.found()
    assert nas.done and target[0] <= best.cost <= target[1]
    assert best.score == pytest.approx(nb201.evaluator(best.candidate))
    n_in_target = len(brute_force(nb201.space, nb201.evaluator, target))
    assert nas.n_evaluations < n_in_target / 10
    assert nas.total_cost > 0 and nas.history["cost"].sum() == pytest.approx(nas.total_cost)
    assert nas.incumbent_final() == nb201.truth(best.candidate)
    assert nb201.space.default == ("nor_conv_3x3",) * 6
    assert nb201.space.format(nb201.space.default) == "333333"


def test_nb201_flops_cost():
    from workbench.benchmarks import nb201_macs

    prob = nb201_topology(cost="flops")
    cell = ("nor_conv_3x3", "none", "skip_connect", "nor_conv_1x1", "avg_pool_3x3", "none")
    assert prob.space.cost(cell) == pytest.approx(nb201_macs(cell) / 1e6)
    with pytest.raises(ValueError, match="epochs"):
        nb201_topology(epochs=7)


def _count_madds(model: nn.Module, shape: tuple[int, ...]) -> int:
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            total += out[0].numel() * k
        elif isinstance(mod, nn.Linear):
            total += mod.in_features * mod.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, *shape))
    for h in handles:
        h.remove()
    return total


@pytest.mark.parametrize("cand", [(64,) * 5, (8, 16, 24, 32, 40), (56, 8, 64, 16, 48)])
def test_channel_space_costs_match_the_built_model(cand):
    params, madds = channel_space(cost="params"), channel_space(cost="madds")
    model = params.build(cand)
    assert params.cost(cand) == sum(p.numel() for p in model.parameters())
    assert madds.cost(cand) == _count_madds(model, (3, 32, 32))
    assert params.default == (64,) * 5


def test_channel_space_search_runs():
    space = channel_space(widths=(8, 16, 32), n_layers=4, cost="madds")
    score = {w: np.log(w) for w in space.widths}
    target = (0.5 * space.cost((32,) * 4), 0.6 * space.cost((32,) * 4))
    nas = LayerNAS(space, lambda c: float(sum(score[w] for w in c)), target,
                   buckets_per_layer=6, capacity_H=2)
    nas.run()
    assert target[0] <= nas.found().cost <= target[1]
    with pytest.raises(ValueError, match="widths"):
        channel_space(widths=())


@pytest.mark.slow
def test_channel_train_evaluator_trains():
    space = channel_space(widths=(8, 16), n_layers=2)
    evaluate = space.train_evaluator(steps=3, batch_size=16, val_size=200, device="cpu")
    acc = evaluate((8, 16))
    assert 0.0 <= acc <= 100.0


def test_nb201_exact_ranges_avoid_dead_ends(nb201):
    """NAS-Bench-201 params come in clusters: with "paper" ranges a kept candidate of layer 5
    can have no child within the target (the last table may end empty); "exact" ranges drop
    such dead ends and find the optimum of this narrow target with few evaluations."""
    target = (0.7, 0.8)
    brute = brute_force(nb201.space, nb201.evaluator, target)
    exact = nb201.search(target=target, range_rule="exact", seed=0)
    exact.run()
    assert exact.found().candidate == brute.loc[0, "candidate"]
    assert exact.n_evaluations < 2 * len(brute)
    empty = 0
    for seed in range(8):
        nas = nb201.search(target=target, seed=seed)
        nas.run()
        try:
            nas.best()
        except RuntimeError:
            empty += 1
            assert search_curve(nas)["incumbent"].isna().all()  # no answer, no regret
    assert empty >= 1


# -- LayerNAS as a Search ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def nb201_table():
    return TabularBackend("nb201", "cifar10")


def test_layernas_follows_the_search_protocol(paper):
    nas = paper.search()
    assert isinstance(nas, Search) and "layernas" in list_searches()
    with pytest.raises(RuntimeError, match="empty"):
        nas.best()
    first = nas.step()
    assert list(first.columns) == [*BASE_COLUMNS, *LayerNAS.extra_columns]
    assert first["child"].tolist() == ["ADD", "CDD"] and first["iteration"].eq(1).all()
    h = nas.run()
    assert isinstance(h, pd.DataFrame) and h.equals(nas.history) and nas.done
    assert set(BASE_COLUMNS) <= set(h.columns)
    assert nas.n_evaluations == int(h["trained"].sum()) == 24 < len(h)
    assert h["eval"].tolist() == list(range(len(h)))
    assert h.loc[h["trained"], "candidate"].is_unique  # each candidate evaluated once
    cell, score = nas.best()
    assert cell == ("C", "B", "D") and isinstance(score, float) and score == 0.42
    assert nas.backend.resolve(cell) == cell and nas.backend.cell_id(cell) == "CBD"
    assert nas.table().equals(nas.tables())
    with pytest.raises(RuntimeError, match="done"):
        nas.step()
    evaluated, answer = nas.incumbent_trace()
    assert evaluated[-1] == 24 and h.loc[answer[-1], "child"] == "CBD"
    assert (answer[:2] == -1).all()  # nothing in layer 3's table yet


def test_layernas_on_a_tabular_backend_searches_the_nb201_topology(nb201, nb201_table):
    """On a TabularBackend LayerNAS builds the topology from the table and evaluates through
    the backend: the same run as on the problem, with table cells and the backend's costs."""
    target = (0.3, 0.4)
    nas = LayerNAS(nb201_table, target=target, range_rule="exact", seed=3)
    h = nas.run()
    ref = nb201.search(target=target, range_rule="exact", seed=3)
    r = ref.run()
    assert h["options"].tolist() == r["options"].tolist()
    assert h["score"].equals(r["score"]) and h["decision"].equals(r["decision"])
    assert nas.total_cost == ref.total_cost and nas.n_evaluations == ref.n_evaluations
    scored = h[h["decision"] != "dropped"]
    assert scored["final"].tolist() == [nb201.truth(c) for c in scored["options"]]
    assert h.loc[h["decision"] == "dropped", "final"].isna().all()
    cell, score = nas.best()
    assert nb201_table.resolve(cell) == cell and score == ref.best()[1]
    assert nb201_table.format(cell) == h.loc[nas.incumbent_trace()[1][-1], "cell"]
    assert nas.found().name == ref.found().name and nas.budget == 12.0
    assert (h["budget"] == 12).all() and (h["fidelity"] == 12).all()
    whole = LayerNAS(nb201_table)  # default target: the whole parameter range
    params = nb201_table.benchmark.table()["params"] / 1e6
    assert whole.target == (params.min(), params.max())
    assert whole.space is nas.space  # one space per table, its cost caches shared


def test_layernas_needs_a_layerwise_view_of_the_backend(paper, nb201_table):
    nb101 = TabularBackend("nb101")
    with pytest.raises(ValueError, match="problem="):
        LayerNAS(nb101)
    nas = get_search("layernas", backend=nb101, problem=paper, seed=18)
    nas.run(max_sweeps=2)
    assert nas.found().name == "CAD" and isinstance(nas.backend, ProblemBackend)
    with pytest.raises(ValueError, match="200"):
        LayerNAS(nb201_table, budget=500)
    with pytest.raises(ValueError, match="evaluator"):
        LayerNAS(nb201_table, evaluator=paper.evaluator)
    with pytest.raises(ValueError, match="evaluator"):
        LayerNAS(paper.space)


def test_layernas_in_simulate_over_seeds(nb201_table):
    searches: list[LayerNAS] = []

    def make(backend, seed):
        searches.append(LayerNAS(backend, target=(0.3, 0.4), range_rule="exact", seed=seed))
        return searches[-1]

    curves = simulate({"LayerNAS": make}, nb201_table, seeds=range(3), progress=False)
    assert set(curves["seed"]) == {0, 1, 2} and set(curves["method"]) == {"LayerNAS"}
    for nas, (seed, c) in zip(searches, curves.groupby("seed"), strict=True):
        assert nas.seed == seed and nas.done and len(c) == len(nas.history)
        last = c.iloc[-1]
        assert last["evaluations"] == nas.n_evaluations and last["cost"] == nas.total_cost
        assert last["incumbent"] == nas.backend.cell_id(nas.best()[0])
        assert last["incumbent_final"] == nas.incumbent_final()
        assert pd.isna(c["incumbent"].iloc[0]) and np.isnan(c["incumbent_final"].iloc[0])
        assert (c["regret"].dropna() >= 0).all()
        assert c["best_final"].dropna().is_monotonic_increasing
    again = simulate(partial(LayerNAS, target=(0.3, 0.4), range_rule="exact"), nb201_table,
                     seeds=[1], progress=False)
    pd.testing.assert_frame_equal(again.drop(columns="method").reset_index(drop=True),
                                  curves[curves["seed"] == 1].drop(columns="method")
                                  .reset_index(drop=True))


def test_problem_backend_runs_any_search(paper):
    backend = ProblemBackend(paper)
    rs = RandomSearch(backend, seed=0, max_evaluations=70)
    h = rs.run()
    assert len(h) == 64 and h["candidate"].is_unique and rs.done  # every candidate once
    assert backend.resolve("CAD") == ("C", "A", "D") and backend.contains("CBD")
    assert not backend.contains("CBE") and np.isnan(backend.best_final())
    assert rs.best() == (("D", "D", "D"), 0.50)
    with pytest.raises(ValueError, match="NaN"):
        ProblemBackend(paper_example().__class__(paper.space, lambda c: float("nan"))).evaluate(
            "CAD", 1)


def test_layernas_ranks_by_its_ranker(nb201_table):
    """Bucket tables rank by the ranker's score: with the oracle (final accuracy, teaching
    only) the answer is the best final accuracy that ever entered layer L's table."""
    nas = LayerNAS(nb201_table, target=(0.3, 0.4), ranker="oracle", seed=0)
    h = nas.run()
    trained = h[h["trained"]]
    assert (trained["ranker_score"] == trained["final"]).all()
    entered = h[(h["layer"] == 6) & ~h["decision"].isin(["dropped", "rejected-full"])]
    assert nas.incumbent_final() == entered["final"].max()
    assert nas.best()[1] == h.loc[nas.incumbent_trace()[1][-1], "score"]
    dropped = [e for e, d in zip(nas.evaluations, h["decision"], strict=True) if d == "dropped"]
    assert dropped and all(e.info["dropped"] and e.cost == 0 for e in dropped)


# -- bucketing alternatives for costs far from additive ---------------------------------------


def skewed(n_layers: int = 3, n_options: int = 4):
    """Distinct, strongly skewed costs (a few huge ones), a score favouring option 2."""
    weights = [1.0, 1.7, 2.9, 4.1][:n_layers]

    def cost(c):
        return float(np.exp(sum(w * o for w, o in zip(weights, c, strict=True))))

    space = LayerwiseSpace([tuple(range(n_options))] * n_layers, cost, name="skewed")

    def score(c):
        return float(-sum((o - 2) ** 2 for o in c))

    return space, score


def test_quantile_edges_give_each_bucket_as_many_prefixes():
    space, score = skewed()
    grid = space.cost_grid()
    full = (float(grid.min()), float(grid.max()))
    equal = LayerNAS(space, score, full, buckets_per_layer=4)
    quant = LayerNAS(space, score, full, buckets_per_layer=4, bucket_edges="quantile")
    assert quant.ranges == equal.ranges
    d = space.default
    for layer, n in ((1, 4), (2, 16)):
        prefixes = [p + d[layer:] for p in itertools.product(range(4), repeat=layer)]
        counts_q = np.bincount([quant.bucket_of(layer, space.cost(p)) for p in prefixes],
                               minlength=4)
        counts_e = np.bincount([equal.bucket_of(layer, space.cost(p)) for p in prefixes],
                               minlength=4)
        assert counts_q.tolist() == [n // 4] * 4  # equally many per bucket
        assert counts_e.max() > n // 4  # the equal split crowds the cheap end
    lows = [lo for lo, _ in quant.bucket_bounds(2)]
    assert lows == sorted(lows) and quant.bucket_bounds(2)[-1][1] == equal.ranges[1][1]


@pytest.mark.parametrize("edges", ["equal", "quantile"])
def test_floor_buckets_by_the_cheapest_completion(edges):
    space, score = skewed()
    grid = space.cost_grid()
    target = (float(np.quantile(grid, 0.1)), float(np.quantile(grid, 0.4)))
    nas = LayerNAS(space, score, target, buckets_per_layer=3, bucket_cost="floor",
                   bucket_edges=edges, range_rule="exact")
    for cand in [(0, 3, 1), (3, 0, 0), (2, 2, 2)]:
        for layer in (1, 2, 3):
            completions = [cand[:layer] + rest
                           for rest in itertools.product(range(4), repeat=3 - layer)]
            assert nas.bucket_value(layer, cand) == pytest.approx(
                min(space.cost(c) for c in completions))
    nas.run()
    best, _ = nas.best()
    assert target[0] - 1e-9 <= space.cost(best) <= target[1] + 1e-9
    # only prefixes whose cheapest completion fits can enter a table
    for layer in (1, 2, 3):
        for m in nas.bucket_table(layer, long=True)["candidate"]:
            assert nas.bucket_value(layer, m) <= target[1] + 1e-9
    data = layernas_buckets_data(nas)  # the step-through figure reads the same buckets
    assert set(data["layer"]) == {1, 2, 3}


@pytest.mark.parametrize("kwargs, match", [
    ({"bucket_edges": "log"},  r"bucket_edges.*'log'.*allowed"),
    ({"bucket_cost": "mean"}, r"bucket_cost.*'mean'.*allowed"),
])
def test_bad_bucketing_rules_raise(paper, kwargs, match):
    with pytest.raises(ValueError, match=match):
        LayerNAS(paper.space, paper.evaluator, (8, 9), **kwargs)


def test_bucketing_alternatives_need_an_enumerable_space():
    space = LayerwiseSpace([(1, 2, 3)] * 4, lambda c: float(sum(c)), enumerate_limit=10)
    with pytest.raises(ValueError, match=r"enumerable.*81 candidates"):
        LayerNAS(space, lambda c: 0.0, (6, 8), bucket_edges="quantile")


# -- layer order ------------------------------------------------------------------------------


def weighted(weights=(1.0, 2.0, 10.0), labels="ABCD"):
    """Options A-D worth 0-3, cost = sum of weight x worth (layer 3 moves it most), score
    favouring C on every layer but layer 2's B."""
    space = LayerwiseSpace([tuple(labels)] * len(weights),
                           lambda c: sum(w * labels.index(o) for w, o in zip(weights, c,
                                                                             strict=True)),
                           name="weighted")

    def score(c):
        return float(-sum((labels.index(o) - (1 if i == 1 else 2)) ** 2
                          for i, o in enumerate(c)))

    return space, score


def test_reordered_space_holds_the_same_candidates():
    space, _ = weighted()
    r = space.reordered((3, 1, 2))
    assert r.layers == (space.layers[2], space.layers[0], space.layers[1])
    assert r.order == (3, 1, 2) and r.base is space and r.default == ("D", "D", "D")
    for cand in space.candidates():
        mine = r.arrange(cand)
        assert mine == (cand[2], cand[0], cand[1]) and r.restore(mine) == cand
        assert r.cost(mine) == space.cost(cand) and r.format(mine) == space.format(cand)
    assert np.array_equal(r.cost_grid(), np.transpose(space.cost_grid(), (2, 0, 1)))
    assert space.reordered((3, 1, 2)) is r  # cached
    assert space.reordered((1, 2, 3)) is space
    rr = r.reordered((2, 3, 1))  # a reordering of a reordering: relative to r
    assert rr.base is r and rr.layers == space.layers
    assert rr.restore(("A", "B", "C")) == ("C", "A", "B") == r.arrange(("A", "B", "C"))
    assert rr.cost(("A", "B", "C")) == space.cost(("A", "B", "C"))
    assert space.cost_order() == (3, 2, 1)
    assert space.cost_spread() == pytest.approx([3.0, 6.0, 30.0])


@given(st.permutations([1, 2, 3, 4]), st.tuples(*[st.sampled_from("ABCD")] * 4))
def test_reordering_round_trips(order, cand):
    space, _ = weighted((1.0, 3.0, 0.5, 2.0))
    r = space.reordered(order)
    assert r.restore(r.arrange(cand)) == cand
    assert r.cost(r.arrange(cand)) == space.cost(cand)
    inv = r.reordered(np.argsort(order) + 1)  # the inverse order: the base's layers again
    assert inv.layers == space.layers and inv.cost(cand) == space.cost(cand)
    assert inv.restore(cand) == r.arrange(cand)


@pytest.mark.parametrize("order", [(1, 2, 0), (1, 1, 2), (1, 2), "123", (1.5, 2, 3)])
def test_bad_layer_orders_raise(order):
    space, _ = weighted()
    with pytest.raises(ValueError, match=r"layer order must list the layer numbers 1\.\.3"):
        space.reordered(order)


def test_layer_order_searches_the_costliest_layer_first():
    space, score = weighted()
    target = (20.0, 26.0)
    brute = brute_force(space, score, target)
    nas = LayerNAS(space, score, target, buckets_per_layer=8, capacity_H=2,
                   range_rule="exact", layer_order="cost")
    assert nas.range_table()["space_layer"].tolist() == [3, 2, 1]
    nas.run()
    hist = nas.history
    first = hist[hist["layer"] == 1]
    # search layer 1 is the space's layer 3: its children change only the last option
    assert all(o[:2] == ("D", "D") for o in first["options"])
    assert {o[2] for o in first["options"]} > {"D"}
    for row in hist.itertuples():  # candidates, labels and costs stay in the space's order
        assert space.cost(row.options) == row.model_cost
        assert row.child == space.format(row.options)
    found = nas.found()
    assert found.candidate == brute.loc[0, "candidate"]  # additive: exact in any order
    assert target[0] <= space.cost(found.candidate) <= target[1]
    assert nas.best()[0] == found.candidate
    ex = nas.explain(found.candidate)
    assert ex["space_layer"].tolist() == [3, 2, 1]
    assert ex["prefix_candidate"].iloc[-1] == found.candidate
    assert ex["prefix"].iloc[0] == "DD" + found.name[2]
    assert "order=(3, 2, 1)" in repr(nas)
    given = LayerNAS(space, score, target, buckets_per_layer=8, capacity_H=2,
                     range_rule="exact")
    assert given.range_table()["space_layer"].tolist() == [1, 2, 3]
    assert "order=" not in repr(given)
    explicit = LayerNAS(space, score, target, buckets_per_layer=8, capacity_H=2,
                        range_rule="exact", layer_order=[3, 2, 1])
    explicit.run()
    assert explicit.history["options"].tolist() == hist["options"].tolist()


@pytest.mark.parametrize("order, match", [
    ("random", r"layer_order 'random'.*allowed.*given.*cost"),
    ((1, 2), r"layer numbers 1\.\.3.*\(1, 2\)")])
def test_bad_layer_order_raises(order, match):
    space, score = weighted()
    with pytest.raises(ValueError, match=match):
        LayerNAS(space, score, (20.0, 26.0), layer_order=order)


def test_layer_order_on_nb201_latency_keeps_cells_and_target(nb201_table):
    bench = nb201_table.benchmark
    lat = bench.all_costs("latency", "pixel3")
    limit = float(lat.quantile(0.25))
    nas = LayerNAS(nb201_table, target=limit, cost=("latency", "pixel3"), budget=12,
                   buckets_per_layer=8, range_rule="exact", bucket_cost="floor",
                   layer_order="cost", seed=3)
    nas.run(max_evaluations=60)
    assert nas.space.order[0] == 6  # the last edge moves Pixel 3's latency most
    cell, score = nas.best()
    cid = str(nb201_table.cell_id(cell))
    assert lat[cid] <= limit and score == pytest.approx(
        bench.all_accuracies(epochs=12, split="val")[cid])
    for row in nas.history.itertuples():
        assert row.cell == nb201_table.format(nb201_table.resolve(row.cell))
        assert row.model_cost == pytest.approx(bench.cost(row.cell, metric="latency",
                                                          device="pixel3"))


def test_layer_order_of_a_reordered_space_is_relative_to_it():
    space, score = weighted()
    target = (20.0, 26.0)
    optimum = brute_force(space, score, target).loc[0, "candidate"]
    r = space.reordered((3, 1, 2))
    for order in ("given", "cost", (2, 3, 1)):
        nas = LayerNAS(r, lambda c: score(r.restore(c)), target, buckets_per_layer=8,
                       range_rule="exact", layer_order=order)
        nas.run()
        assert nas.found().candidate == r.arrange(optimum)  # in r's own order
        assert all(r.cost(o) == c for o, c in
                   zip(nas.history["options"], nas.history["model_cost"], strict=True))
    assert nas.range_table()["space_layer"].tolist() == [2, 3, 1]
