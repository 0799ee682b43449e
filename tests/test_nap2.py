"""The NAP2 pieces of workbench.search: evaluations shared through a backend and its run store,
the dynamics ranker deciding SH rungs on real (tiny) training, combined and graph rankers,
candidate pools, and the experiment's analysis helpers. Tiny NB201 networks, 8x8 inputs."""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from workbench.benchmarks import CellNotInTableError
from workbench.predictors import DynamicsForest, GCNPredictor, dynamics_inputs, save_predictor
from workbench.search import (
    CombinedRanker,
    DynamicsRanker,
    Evaluation,
    GraphRanker,
    PoolBackend,
    PredictorRanker,
    Ranker,
    SubsetPool,
    SuccessiveHalving,
    TabularBackend,
    TrainingBackend,
    nap2_methods,
    normalised_ranks,
    offline_phase,
    regret_at,
    run_online,
    rung_correlations,
    search_curve,
    selection_order,
    selection_precision,
    sh_cost,
    zscores,
)
from workbench.store import RunStore
from workbench.training import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")

EVERY = 1
RECIPE = TrainConfig(steps=9, batch_size=16, resize=8, snapshot_every=EVERY, curve_every=1,
                     eval_at=(3, 9), device="cpu")


def make(**kw) -> TrainingBackend:
    args = {"space": "nb201", "model": "tiny", "train_size": 96, "val_size": 64,
            "config": RECIPE, "max_budget": 9, "min_budget": 3, "charge": "steps", **kw}
    return TrainingBackend(**args)


def _maps(ev: Evaluation, step: int) -> np.ndarray:
    cut = ev.snapshots.truncate(step)
    return np.concatenate([cut.weights, cut.grads], axis=-1)


@pytest.fixture(scope="module")
def backend():
    with make() as b:
        yield b


@pytest.fixture(scope="module")
def fitted(backend):
    """A dynamics forest fitted on 6 tiny runs at step 3, with the metadata a ranker checks."""
    cells = backend.sample(6, 123)
    evs = [backend.evaluate(c, 3) for c in cells]
    est = DynamicsForest(n_estimators=10, min_samples_leaf=1, random_state=0).fit(
        dynamics_inputs(np.stack([_maps(ev, 3) for ev in evs])), [ev.final for ev in evs])
    est.metadata_ = {"step": 3, "model_preset": "tiny", "snapshot_every": EVERY}
    return est


# -- evaluations shared through the backend -------------------------------------------------


def test_known_evaluations_are_reused_and_charged_alone(backend):
    cell = backend.sample(1, 5)[0]
    before = backend.trained_steps
    a = backend.evaluate(cell, 3)
    assert backend.trained_steps - before == 3 and a.cost == 3 and a.full_cost == 3
    b = backend.evaluate(cell, 3)  # a second search asking the same: nothing trained
    assert backend.trained_steps - before == 3 and b.cost == 3 and b.info.get("reused")
    assert b.score == a.score and np.array_equal(_maps(b, 3), _maps(a, 3))
    c = backend.evaluate(cell, 9, previous=a)  # promotion: only the 6 extra are charged
    assert backend.trained_steps - before == 9 and c.cost == 6 and c.resumed_from == 3
    d = backend.evaluate(cell, 9)  # from scratch: charged in full, not trained again
    assert backend.trained_steps - before == 9 and d.cost == 9 and d.score == c.score


def test_store_answers_after_a_restart_and_keeps_the_longer_run(tmp_path):
    store = RunStore(tmp_path / "s")
    with make(checkpoints=store) as first:
        cell = first.sample(1, 9)[0]
        short = first.evaluate(cell, 3)
        long = first.evaluate(cell, 9, previous=short)
    with make(checkpoints=RunStore(tmp_path / "s")) as again:  # a new process, same store
        s2 = again.evaluate(cell, 3)
        l2 = again.evaluate(cell, 9, previous=s2)
        assert again.trained_steps == 0
        assert s2.score == short.score and l2.score == long.score and l2.cost == 6
        assert np.array_equal(_maps(l2, 9), _maps(long, 9))
        assert np.array_equal(_maps(s2, 3), _maps(short, 3))
        # a step with no stored evaluation trains beside the stored run, not over it
        mid = again.evaluate(cell, 5)
        assert again.trained_steps == 5 and mid.info["steps"] == 5
    state, _ = RunStore(tmp_path / "s").load_checkpoint(long.info["run_id"])
    assert int(state["step"]) == 9


def test_continuing_the_stored_state_equals_training_straight(tmp_path):
    with make(checkpoints=RunStore(tmp_path / "a")) as a, make(reuse=False) as b:
        cell = a.sample(1, 11)[0]
        a.evaluate(cell, 3)
        cont = a.evaluate(cell, 9)  # no previous: continues the stored 3-step state
        assert a.trained_steps == 9
        straight = b.evaluate(cell, 9)
        assert cont.score == straight.score
        assert np.array_equal(_maps(cont, 9), _maps(straight, 9))


def test_bad_backend_options_are_refused():
    with pytest.raises(ValueError, match="charge must be one of"):
        make(charge="minutes")
    with pytest.raises(ValueError, match="reuse must be True or False"):
        make(reuse="yes")


# -- the dynamics ranker ------------------------------------------------------------------


class Reversed:
    """Wraps a predictor and negates it: the ranking must follow the predictor."""

    def __init__(self, p):
        self.p, self.metadata_ = p, p.metadata_
        self.feature_schema_version_ = p.feature_schema_version_

    def predict(self, X):
        return -self.p.predict(X)


def test_dynamics_ranker_decides_sh_rungs(backend, fitted):
    sh = SuccessiveHalving(backend, n=6, eta=3, seed=0, ranker=DynamicsRanker(fitted))
    rung = sh.step()
    evs = sh.evaluations
    expected = fitted.predict(dynamics_inputs(np.stack([_maps(ev, 3) for ev in evs])))
    np.testing.assert_allclose(rung["ranker_score"], expected)
    assert len(set(np.round(expected, 9))) >= 5  # the order is the predictor's, not a tie
    kept = set(rung.loc[rung["decision"] == "kept", "candidate"])
    assert kept == set(rung.loc[np.argsort(-expected)[:2], "candidate"])
    rev = SuccessiveHalving(backend, n=6, eta=3, seed=0, ranker=DynamicsRanker(Reversed(fitted)))
    rung_rev = rev.step()
    kept_rev = set(rung_rev.loc[rung_rev["decision"] == "kept", "candidate"])
    assert kept_rev != kept and kept_rev == set(rung.loc[np.argsort(expected)[:2], "candidate"])
    sh.run()
    assert sh.done and sh.best()[0] in sh.candidates
    assert set(sh.rung_table()["final"].round(6)) <= set(np.round([e.final for e in evs], 6))


def test_dynamics_ranker_calls_predict_once_per_rung(backend, fitted):
    calls = []

    class Counting(Reversed):
        def predict(self, X):
            calls.append(len(X))
            return self.p.predict(X)

    sh = SuccessiveHalving(backend, n=6, eta=3, seed=1, ranker=DynamicsRanker(Counting(fitted)))
    sh.run()
    assert calls == [6, 2]


def test_dynamics_ranker_refuses_mismatches(backend, fitted):
    evs = [backend.evaluate(c, 3) for c in backend.sample(2, 7)]
    cells = [ev.cell for ev in evs]
    other = copy.copy(fitted)
    other.metadata_ = {**fitted.metadata_, "model_preset": "small"}
    with pytest.raises(ValueError, match=r"preset 'tiny'.*preset 'small'"):
        DynamicsRanker(other)(cells, evs)
    other.metadata_ = {**fitted.metadata_, "snapshot_every": 2}
    with pytest.raises(ValueError, match="one every 2"):
        DynamicsRanker(other)(cells, evs)
    other.metadata_ = dict(fitted.metadata_)
    other.feature_schema_version_ = 99
    with pytest.raises(ValueError, match=r"schema 1.*schema 99"):
        DynamicsRanker(other)(cells, evs)
    with pytest.raises(ValueError, match=r"step=5 does not match.*mini-batch 3"):
        DynamicsRanker(fitted, step=5)
    late = copy.copy(fitted)
    late.metadata_ = {**fitted.metadata_, "step": 6}
    with pytest.raises(ValueError, match=r"rung has 3 mini-batches.*up to mini-batch 6"):
        DynamicsRanker(late)(cells, evs)
    with pytest.raises(ValueError, match="has no snapshots"):
        DynamicsRanker(fitted)(cells, [replace(evs[0], snapshots=None), evs[1]])
    bare = DynamicsForest()
    with pytest.raises(ValueError, match="names no step"):
        DynamicsRanker(bare)
    with pytest.raises(ValueError, match="must be a fitted dynamics predictor"):
        DynamicsRanker(object())


def test_non_finite_snapshots_rank_last_with_a_warning(backend, fitted):
    evs = [backend.evaluate(c, 3) for c in backend.sample(3, 8)]
    bad_snaps = replace(evs[1].snapshots, grads=np.full_like(evs[1].snapshots.grads, np.nan))
    evs[1] = replace(evs[1], snapshots=bad_snaps)
    with pytest.warns(RuntimeWarning, match=f"{evs[1].cell_id}.*NaN/inf"):
        scores = DynamicsRanker(fitted)([ev.cell for ev in evs], evs)
    assert np.isnan(scores[1]) and np.isfinite(scores[[0, 2]]).all()


def test_step_mapping_uses_the_latest_reached_predictor(backend, fitted, tmp_path):
    path = save_predictor(fitted, tmp_path / "p.npz", metadata=fitted.metadata_)
    ranker = DynamicsRanker({3: path})
    evs = [backend.evaluate(c, 9) for c in backend.sample(2, 4)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = ranker([ev.cell for ev in evs], evs)
    np.testing.assert_allclose(s, fitted.predict(dynamics_inputs(
        np.stack([_maps(ev, 3) for ev in evs]))))
    with pytest.raises(ValueError, match="under step 4"):
        DynamicsRanker({4: fitted})


# -- combining, graphs, pools --------------------------------------------------------------


class Fixed(Ranker):
    def __init__(self, values, name):
        self.values, self.name = np.asarray(values, float), name

    def __call__(self, cells, results):
        return self.values


def test_normalised_ranks_and_zscores():
    np.testing.assert_allclose(normalised_ranks([3.0, 1.0, 2.0]), [1.0, 0.0, 0.5])
    np.testing.assert_allclose(normalised_ranks([np.nan, 1.0, 1.0]), [0.0, 0.75, 0.75])
    assert normalised_ranks([4.0]).tolist() == [0.5]
    z = zscores([1.0, 3.0, np.nan])
    np.testing.assert_allclose(z[:2], [-1.0, 1.0])
    assert z[2] == -2.0


def test_combined_ranker_is_the_mean_of_normalised_ranks():
    evs = [Evaluation(cell=i, cell_id=str(i), budget=1, fidelity=1, score=s, cost=0,
                      full_cost=0) for i, s in enumerate([10.0, 30.0, 20.0])]
    a, b = Fixed([3, 2, 1], "a"), Fixed([1, 3, 2], "b")
    comb = CombinedRanker([a, b, "observed"], weights=[2, 1, 1])
    out = comb(list(range(3)), evs)
    expected = (2 * np.array([1, 0.5, 0]) + np.array([0, 1, 0.5]) + np.array([0, 1, 0.5])) / 4
    np.testing.assert_allclose(out, expected)
    assert list(comb.components_.columns) == ["a", "b", "observed"]
    assert comb.components_.index.tolist() == ["0", "1", "2"]
    with pytest.raises(ValueError, match="weights must be 3"):
        CombinedRanker([a, b, "observed"], weights=[1, 1])
    with pytest.raises(ValueError, match="how must be one of"):
        CombinedRanker([a], how="mean")
    with pytest.raises(ValueError, match="list of rankers"):
        CombinedRanker("observed")


def test_graph_and_predictor_rankers_take_graph_rows(nb201_backend):
    cells = nb201_backend.sample(30, 0)
    y = [nb201_backend.evaluate(c, 200).score for c in cells]
    from workbench.predictors import graphs_from_cells

    gcn = GCNPredictor(epochs=3, lr=1e-3).fit(graphs_from_cells("nb201", cells), y)
    evs = [nb201_backend.evaluate(c, 12) for c in cells[:5]]
    direct = gcn.predict(graphs_from_cells("nb201", cells[:5]))
    np.testing.assert_allclose(GraphRanker(gcn, "nb201")(cells[:5], evs), direct, rtol=1e-5)
    pr = PredictorRanker(gcn, featurize=lambda c, r: graphs_from_cells("nb201", [c])[0])
    np.testing.assert_allclose(pr(cells[:5], evs), direct, rtol=1e-5)


def test_pool_backend_samples_only_its_pool(nb201_backend):
    pool = nb201_backend.sample(5, 1)
    ids = {nb201_backend.cell_id(c) for c in pool}
    view = PoolBackend(nb201_backend, pool)
    got = view.sample(5, 0)
    assert {view.cell_id(c) for c in got} == ids
    with pytest.raises(ValueError, match="only 5 cells of the pool"):
        view.sample(6, 0)
    rest = PoolBackend(nb201_backend, None, exclude=pool)
    assert not any(rest.contains(c) for c in pool)
    assert all(rest.cell_id(c) not in ids for c in rest.sample(50, 3))
    with pytest.raises(ValueError, match="overlap"):
        PoolBackend(nb201_backend, pool, exclude=pool[:1])
    with pytest.raises(ValueError, match="duplicate"):
        PoolBackend(nb201_backend, [pool[0], pool[0]])
    # the restriction is a CandidatePool: cells outside it cannot be resolved either
    assert isinstance(view.candidates, SubsetPool) and view.candidates.base is nb201_backend
    other = rest.sample(1, 0)[0]
    with pytest.raises(CellNotInTableError, match="not one of the 5 cells of this pool"):
        view.resolve(other)
    with pytest.raises(CellNotInTableError, match="excluded from this pool"):
        rest.resolve(pool[0])
    assert view.resolve(view.format(pool[0])) == pool[0] and not view.contains(other)


def test_a_subset_pool_restricts_any_candidate_pool(nb201_backend):
    table = nb201_backend.candidates
    cells = table.sample(4, 2)
    sub = SubsetPool(table, cells[:3], exclude=cells[3:])
    assert {sub.cell_id(c) for c in sub.sample(3, 0)} == {table.cell_id(c) for c in cells[:3]}
    assert not sub.contains(cells[3]) and sub.contains(sub.format(cells[0]))
    view = PoolBackend(nb201_backend, sub)  # a ready pool, used as it is
    assert view.candidates is sub and view.sample(2, 1) == sub.sample(2, 1)
    assert isinstance(PoolBackend(nb201_backend, sub, exclude=cells[:1]).candidates, SubsetPool)
    with pytest.raises(ValueError, match="base must be a CandidatePool"):
        SubsetPool([1, 2])
    with pytest.raises(ValueError, match="pool must not be empty"):
        SubsetPool(table, [])


# -- analysis helpers ---------------------------------------------------------------------


def test_sh_cost_counts_only_the_extra_of_promotions():
    assert sh_cost(27, 30, 270, 3) == 27 * 30 + 9 * 60 + 3 * 180
    assert sh_cost(9, 1, 9, 3) == 9 + 3 * 2 + 1 * 6


def test_selection_and_precision_follow_the_search(nb201_backend):
    sh = SuccessiveHalving(nb201_backend, n=9, min_budget=12, max_budget=200, seed=3)
    sh.run()
    h = sh.history
    order = selection_order(h)
    top = h[h["budget"] == h["budget"].max()].sort_values("ranker_score", ascending=False)
    assert order[: len(top)] == top["candidate"].tolist()
    assert len(order) == 9 and order[0] == nb201_backend.cell_id(sh.best()[0])
    finals = dict(zip(h["candidate"], h["final"], strict=False))
    best3 = sorted(finals, key=lambda c: -finals[c])[:3]
    assert selection_precision(h, finals, 3) == len(set(best3) & set(order[:3])) / 3
    with pytest.raises(ValueError, match="exceeds the 9 cells"):
        selection_precision(h, finals, 10)
    rc = rung_correlations(h)
    assert rc["rung"].tolist() == list(range(sh.n_rungs))
    assert rc["n"].tolist() == sh.schedule()["n"].tolist()
    assert math.isnan(rc["tau_ranker"].iloc[-1]) and -1 <= rc["tau_ranker"].iloc[0] <= 1
    curve = search_curve(sh, "SH")
    assert math.isnan(regret_at(curve, 0))  # nothing evaluated for free
    assert regret_at(curve, math.inf) == curve["regret"].iloc[-1]
    first = curve["cost"].iloc[0]
    assert regret_at(curve, first) == curve["regret"].iloc[0]


def test_the_experiment_runs_end_to_end_in_tiny_sizes(tmp_path):
    with make(checkpoints=RunStore(tmp_path / "nap2")) as b:
        off_cells = b.sample(6, 100)
        off = offline_phase(b, off_cells, [3], gcn=GCNPredictor(epochs=5), progress=False)
        assert set(off.predictors) == {3} and off.minibatches == 6 * 3 and not off.dropped
        assert off.predictors[3].metadata_["model_preset"] == "tiny"
        methods = nap2_methods(off, n=3, eta=3, min_budget=3, max_budget=9)
        assert list(methods) == ["SH", "SH+dynamics", "SH+gcn", "SH+dynamics&gcn", "HB", "RS",
                                 "RE"]
        pool = PoolBackend(b, None, exclude=off_cells).sample(3, 1)
        finals = {b.cell_id(c): b.evaluate(c, 3).final for c in pool}
        budget = sh_cost(3, 3, 9, 3)
        curves, summary, searches = run_online(b, pool, methods, 0, exclude=off_cells,
                                               finals=finals, at_cost=budget)
        assert set(summary["method"]) == set(methods)
        pool_ids = set(finals)
        for name, s in searches.items():
            ids = set(s.history["candidate"])
            assert ids.isdisjoint(off.cell_ids)
            if name != "RE":
                assert ids <= pool_ids
        sh = summary.set_index("method")
        assert (sh.loc[["SH", "SH+dynamics"], "cost"] == budget).all()
        assert sh.loc["RS", "cost"] <= budget and sh.loc["RS", "evaluations"] == budget // 9
        assert isinstance(curves, pd.DataFrame) and curves["regret"].ge(0).all()
        # the methods share their training: SH+dynamics&gcn adds little or nothing new
        assert sh["new_minibatches"].sum() < sh["cost"].sum()


def test_a_different_schedule_length_only_warns(backend, fitted):
    other = copy.copy(fitted)
    other.metadata_ = {**fitted.metadata_, "train": {"max_steps": 200}}
    evs = [backend.evaluate(c, 3) for c in backend.sample(2, 7)]
    with pytest.warns(RuntimeWarning, match="schedule spans 200 mini-batches.*spans 9"):
        s = DynamicsRanker(other)([ev.cell for ev in evs], evs)
    assert np.isfinite(s).all()


def test_pool_views_of_a_small_table_refuse_cells_outside_it():
    with make(space="nb101", model="tiny") as b:
        pool = b.sample(3, 0)
        view = PoolBackend(b, None, exclude=pool[:1])
        space = b.space
        rng = np.random.default_rng(0)
        outside = next(m for m in (space.mutate(pool[1], rng) for _ in range(200))
                       if not TabularBackend("nb101").contains(m))
        assert not b.contains(outside) and not view.contains(outside)
        assert view.contains(pool[1]) and not view.contains(pool[0])
