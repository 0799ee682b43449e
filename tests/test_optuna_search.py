"""OptunaSearch and the spaces' categorical choices it asks a sampler for: round trips, bad
choices named, the study's bookkeeping, fallbacks, and Optuna's log level left as it was."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.search import CostConstraint, OptunaSearch, PoolBackend, TabularBackend
from workbench.spaces import NB201Space, SearchSpace, get_space

NB101 = get_space("nb101")
NB201 = get_space("nb201")


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_choices_round_trip_to_the_same_cell(seed):
    for space in (NB101, NB201):
        cell = space.sample(seed)
        params = space.to_choices(cell)
        assert set(params) == set(space.choices())
        assert all(params[k] in v for k, v in space.choices().items())
        assert space.cell_id(space.from_choices(params)) == space.cell_id(cell)


def test_nb101_choices_by_hand():
    # input -> conv1x1 -> output, written on 7 vertices: the middle vertex first, the output
    # last, the four unused vertices without edges
    cell = NB101.parse("010/001/000|input,conv1x1-bn-relu,output")
    params = NB101.to_choices(cell)
    assert {k for k, v in params.items() if k.startswith("edge") and v} == {"edge_01", "edge_16"}
    assert params["op_1"] == "conv1x1-bn-relu"
    assert len(NB101.choices()) == 5 + 21 and len(NB201.choices()) == 6


@pytest.mark.parametrize("change, match", [
    (lambda p: p.pop("op_3"), r"missing \['op_3'\]"),
    (lambda p: p.update(op_9="maxpool3x3"), r"unknown \['op_9'\]"),
    (lambda p: p.update(op_2="conv5x5"), "op_2='conv5x5' is not allowed"),
    (lambda p: p.update({k: 1 for k in p if k.startswith("edge")}), "at most 9 edges, got 21"),
    (lambda p: p.update({k: 0 for k in p if k.startswith("edge")}), "no input→output path"),
])
def test_bad_nb101_choices_are_named(change, match):
    params = NB101.to_choices(NB101.sample(0))
    change(params)
    with pytest.raises(ValueError, match=match):
        NB101.from_choices(params)


def test_bad_nb201_choices_are_named():
    params = NB201.to_choices(NB201.sample(0))
    with pytest.raises(ValueError, match="edge_12='conv' is not allowed"):
        NB201.from_choices({**params, "edge_12": "conv"})
    with pytest.raises(ValueError, match="mapping"):
        NB201.from_choices(list(params.values()))


@pytest.fixture(scope="module")
def backend():
    return TabularBackend("nb201")


def test_the_study_sees_every_proposal(backend):
    search = OptunaSearch(backend, budget=12, seed=0)
    h = search.run(max_evaluations=60)
    assert h["candidate"].is_unique and set(h["decision"]) == {"sampled"}
    states = [t.state for t in search.study.trials]
    done = optuna.trial.TrialState.COMPLETE
    assert states.count(done) == 60 + search.repeated_proposals
    assert search.repeated_proposals > 0  # TPE proposes cells it has seen: told, not trained
    # every evaluated cell is a completed trial whose parameters make that cell
    values = {backend.cell_id(NB201.from_choices(t.params)): t.value
              for t in search.study.trials if t.state == done}
    assert all(values[c] == s for c, s in zip(h["candidate"], h["ranker_score"], strict=True))


def test_proposals_outside_the_backend_fail_then_fall_back(backend):
    rng = np.random.default_rng(0)
    pool = [NB201.sample(rng) for _ in range(40)]
    search = OptunaSearch(PoolBackend(backend, pool), budget=12, seed=1, max_attempts=5,
                          sampler=optuna.samplers.RandomSampler(seed=1))
    assert search.label == "Random"
    h = search.run(max_evaluations=10)
    assert "random fallback" in set(h["decision"]) and search.failed_proposals >= 5
    assert set(h["candidate"]) <= {backend.cell_id(c) for c in pool}
    fallback = h[h["decision"] == "random fallback"]
    added = [t for t in search.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    added_ids = {backend.cell_id(NB201.from_choices(t.params)) for t in added}
    assert set(fallback["candidate"]) <= added_ids  # the sampler learns from fallbacks too
    assert (h["attempts"][h["decision"] == "random fallback"] == 5).all()


def test_optuna_log_level_is_left_as_it_was(backend):
    before = optuna.logging.get_verbosity()
    try:
        optuna.logging.set_verbosity(optuna.logging.INFO)
        OptunaSearch(backend, budget=12, seed=0).run(max_evaluations=3)
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
    finally:
        optuna.logging.set_verbosity(before)


def test_bad_arguments_are_named(backend, monkeypatch):
    with pytest.raises(ValueError, match="sampler must be an optuna sampler"):
        OptunaSearch(backend, sampler="tpe")
    with pytest.raises(ValueError, match="max_attempts"):
        OptunaSearch(backend, max_attempts=0)
    with pytest.raises(ValueError, match="budget"):
        OptunaSearch(backend, budget=-1)
    monkeypatch.setattr(NB201Space, "choices", SearchSpace.choices)
    with pytest.raises(ValueError, match="lists its choices; 'nb201'"):
        OptunaSearch(backend)


def test_a_copy_continues_as_the_original_would(backend):
    import copy

    a = OptunaSearch(backend, budget=12, seed=3)
    a.run(max_evaluations=12)
    b = copy.deepcopy(a)
    assert b.study is not a.study and len(b.study.trials) == len(a.study.trials)
    a.run(max_evaluations=30)
    b.run(max_evaluations=30)
    assert a.history.equals(b.history)


def test_constrained_tpe_is_told_how_far_infeasible_cells_are(backend):
    lat = backend.benchmark.all_costs("latency", "pixel3")
    limit = float(np.quantile(lat, 0.25))
    c = CostConstraint(("latency", "pixel3"), max_value=limit)
    search = OptunaSearch(backend, budget=12, seed=0, constraint=c)
    h = search.run(max_evaluations=40)
    assert (lat.loc[h["candidate"].astype(str)] <= limit).all()  # never trained
    assert search.failed_proposals == 0 and search.infeasible_proposals > 0
    done = optuna.trial.TrialState.COMPLETE
    told = [t for t in search.study.trials if t.constraints]
    assert len(told) == search.infeasible_proposals
    for t in told:  # a finished trial whose violation is the cell's relative excess latency
        cid = backend.cell_id(NB201.from_choices(t.params))
        assert t.state == done
        assert t.constraints["cost"] == pytest.approx((lat[cid] - limit) / limit)
    # TPE learns the feasible region: later proposals break the target less often
    first, last = (sum(bool(t.constraints) for t in part) for part in
                   (search.study.trials[:40], search.study.trials[-40:]))
    assert last < first


def test_other_samplers_are_told_infeasible_cells_failed(backend):
    lat = backend.benchmark.all_costs("latency", "pixel3")
    c = CostConstraint(("latency", "pixel3"), max_value=float(np.quantile(lat, 0.25)))
    search = OptunaSearch(backend, budget=12, seed=0, constraint=c,
                          sampler=optuna.samplers.RandomSampler(seed=0))
    search.run(max_evaluations=10)
    assert search.infeasible_proposals == 0 and search.failed_proposals > 0
    assert not any(t.constraints for t in search.study.trials)


def test_violations_below_a_minimum_and_of_unmeasured_cells(backend):
    # a lower bound: the violation is the shortfall relative to it
    params = backend.benchmark.all_costs("params")
    low = float(np.quantile(params, 0.8))
    search = OptunaSearch(backend, budget=12, seed=1,
                          constraint=CostConstraint("params", min_value=low))
    h = search.run(max_evaluations=15)
    assert (params.loc[h["candidate"].astype(str)] >= low).all()
    told = [t for t in search.study.trials if t.constraints]
    assert told
    for t in told:
        cid = backend.cell_id(NB201.from_choices(t.params))
        assert t.constraints["cost"] == pytest.approx((low - params[cid]) / low)
    # Edge TPU has no latency for a third of the cells: those rank below every measured one
    lat = backend.benchmark.all_costs("latency", "edgetpu")
    search = OptunaSearch(backend, budget=12, seed=0,
                          constraint=CostConstraint(("latency", "edgetpu"),
                                                    max_value=float(lat.quantile(0.5))))
    search.run(max_evaluations=30)
    unmeasured = [t.constraints["cost"] for t in search.study.trials if t.constraints
                  and np.isnan(lat[backend.cell_id(NB201.from_choices(t.params))])]
    assert unmeasured and set(unmeasured) == {1e300}
