"""workbench.search on the training backend: continuing promoted runs from their checkpoints,
Successive Halving / Hyperband / random search / evolution / LayerNAS on real (tiny) training,
determinism and configuration errors. Tiny NB201 networks, 8x8 inputs, a few mini-batches."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from workbench.search import (
    BackendEvaluator,
    Hyperband,
    LayerNAS,
    RandomSearch,
    RegularizedEvolution,
    SuccessiveHalving,
    TabularBackend,
    TrainingBackend,
    nb201_topology,
)
from workbench.spaces import NB201Cell, get_space
from workbench.store import RunStore
from workbench.training import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")

RECIPE = TrainConfig(steps=1, batch_size=16, resize=8, snapshot_every=1, curve_every=1,
                     device="cpu")
CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|none~1|avg_pool_3x3~2|"
# Budgets that cross an epoch boundary (96 training images / 16 = 6 mini-batches per epoch).
SMALL = {"max_budget": 9, "min_budget": 3}


def make(**kw) -> TrainingBackend:
    args = {"space": "nb201", "model": "tiny", "train_size": 96, "val_size": 64,
            "config": RECIPE, **SMALL, **kw}
    return TrainingBackend(**args)


@pytest.fixture(scope="module")
def backend():
    with make() as b:
        yield b


def _weights(path: str) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


# -- continuing from the checkpoint ------------------------------------------------------------


def test_promoted_candidate_continues_from_its_checkpoint(backend):
    first = backend.evaluate(CELL, 3)
    assert first.info["steps"] == 3 and first.resumed_from is None
    assert first.cost == first.full_cost > 0 and 0 <= first.score <= 100
    cont = backend.evaluate(CELL, 9, previous=first)
    # The mini-batch count accumulates and only the extra mini-batches are charged.
    assert cont.info["steps"] == 9 and cont.resumed_from == 3 and cont.fidelity == 9
    assert cont.full_cost == pytest.approx(first.cost + cont.cost)
    assert cont.info["curves"]["step"].tolist() == list(range(1, 10))
    assert cont.snapshots.steps.tolist() == list(range(1, 10))
    # The same cell trained straight to 9 mini-batches (a fresh run, no previous) is the
    # same run: the cosine schedule spans the largest budget in both, the loader is a pure
    # function of (seed, epoch) and the trainer state (weights, momentum, scheduler,
    # snapshot history) round-trips exactly.
    straight = backend.evaluate(CELL, 9)
    assert straight.resumed_from is None and straight.info["checkpoint"] != first.info[
        "checkpoint"]
    a, b = _weights(cont.info["checkpoint"]), _weights(straight.info["checkpoint"])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert cont.score == straight.score
    pd.testing.assert_frame_equal(cont.info["curves"], straight.info["curves"])
    np.testing.assert_array_equal(cont.snapshots.weights, straight.snapshots.weights)
    np.testing.assert_array_equal(cont.snapshots.grads, straight.snapshots.grads)
    # The learning rate follows one cosine over 9 mini-batches, not one restarted at 3.
    lrs = cont.info["curves"]["lr"].to_numpy()
    assert np.all(np.diff(lrs) < 0) and lrs[3] == pytest.approx(
        RECIPE.lr * 0.5 * (1 + math.cos(math.pi * 3 / 9)))


def test_checkpoints_are_files_loaded_weights_only(tmp_path):
    b = make(checkpoints=tmp_path / "ckpt")
    ev = b.evaluate(CELL, 3)
    path = tmp_path / "ckpt" / ev.info["checkpoint"].rsplit("/", 1)[-1]
    assert path.is_file() and path.name.endswith("-3.pt")
    assert [p.name for p in (tmp_path / "ckpt").iterdir()] == [path.name]  # written atomically
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert state["step"] == 3
    path.unlink()
    with pytest.raises(ValueError, match="is gone"):
        b.evaluate(CELL, 9, previous=ev)


def test_epoch_budgets_are_converted_with_the_dataset_size():
    b = make(unit="epochs", max_budget=1.5, min_budget=0.5)
    assert b.batches_per_epoch == 6 and b.max_steps == 9
    assert b.steps(0.5) == 3 and b.fidelity(0.5) == 0.5 and b.fidelity(0.4) == 0.5
    assert b.config.steps == 9
    with pytest.raises(ValueError, match=r"budget 2 epochs exceeds the largest budget 1\.5 epochs"):
        b.steps(2)


# -- searches on the training backend ------------------------------------------------------------


def test_sh_two_rungs_runs_to_completion(backend):
    seen: list[int] = []

    def dynamics(cell, result):  # a ranker reading the run's snapshots (gradient norm proxy)
        seen.append(len(result.snapshots.steps))
        return result.score - 1e-3 * float(np.nanmean(result.snapshots.grads[-1]))

    sh = SuccessiveHalving(backend, n=3, eta=3, seed=1, ranker=dynamics)
    assert sh.schedule()["budget"].tolist() == [3, 9] and (sh.table().decision == "pending").all()
    first = sh.step()
    assert len(first) == 3 and (first["budget"] == 3).all() and seen == [3, 3, 3]
    assert sh.table()["decision"].value_counts().to_dict() == {"dropped": 2, "kept": 1}
    sh.run(progress=False)
    h = sh.history
    assert sh.done and len(h) == 4 == sh.n_evaluations and h["eval"].tolist() == [0, 1, 2, 3]
    assert h.groupby("rung").size().tolist() == [3, 1] and seen[-1] == 9
    assert h["budget"].tolist() == [3, 3, 3, 9] and h["fidelity"].max() == 9
    assert np.allclose(h["cum_cost"], h["cost"].cumsum()) and (h["cost"] > 0).all()
    assert sh.total_cost == pytest.approx(h["cost"].sum())
    kept = h.loc[(h.rung == 0) & (h.decision == "kept"), "candidate"].item()
    assert h["candidate"].iloc[3] == kept and sh.table()["candidate"].item() == kept
    last = sh.evaluations[-1]
    assert last.info["steps"] == 9 and last.resumed_from == 3
    assert last.full_cost == pytest.approx(h.loc[h.candidate == kept, "cost"].sum())
    assert h["final"].notna().all()  # table labels, for analysis only
    assert sh.best()[1] == h["score"].iloc[3]


def test_same_seed_same_trace():
    def trace(seed):
        with make() as b:
            sh = SuccessiveHalving(b, n=3, eta=3, seed=seed)
            sh.run(progress=False)
            return sh.history.drop(columns=["cost", "cum_cost"])

    a, b = trace(4), trace(4)
    pd.testing.assert_frame_equal(a, b)
    assert not trace(5)["candidate"].equals(a["candidate"])


def test_hyperband_random_search_and_evolution_run(backend):
    hb = Hyperband(backend, eta=3, seed=0)
    assert hb.brackets()["n"].tolist() == [3, 2]
    hb.run(progress=False)
    h = hb.history
    assert len(h) == 6 and set(h["bracket"]) == {1, 0}
    assert hb.evaluations[3].resumed_from == 3  # the bracket-1 survivor continued
    rs = RandomSearch(backend, budget=3, seed=0, max_evaluations=2).run(progress=False)
    assert len(rs) == 2 and rs["candidate"].is_unique
    re_ = RegularizedEvolution(backend, population=2, sample_size=2, budget=3, seed=0,
                               max_evaluations=3).run(progress=False)
    assert re_["decision"].tolist()[:2] == ["initial", "initial"] and len(re_) == 3


def test_layernas_through_a_backend_evaluator(backend):
    problem = nb201_topology(cost="params", epochs=12)
    table = BackendEvaluator(TabularBackend("nb201"), 12, to_cell=NB201Cell)
    cand = ("nor_conv_3x3", "none", "skip_connect", "nor_conv_1x1", "avg_pool_3x3", "none")
    assert table(cand) == pytest.approx(problem.evaluator(cand))
    assert table.seconds(cand) == pytest.approx(problem.eval_seconds(cand))
    trained = BackendEvaluator(backend, 3, to_cell=NB201Cell)
    nas = LayerNAS(problem.space, trained, (0.3, 0.4), seed=0, eval_seconds=trained.seconds)
    nas.run(max_evaluations=2)
    h = nas.history[nas.history.trained]
    assert len(h) == 2 and (h["cost"] > 0).all()
    assert h["score"].tolist() == [trained.evaluations[c].score for c in h["options"]]
    # LayerNAS straight on the training backend: the same topology, evaluated by the backend
    direct = LayerNAS(backend, target=(0.3, 0.4), seed=0, budget=3)
    d = direct.run(max_evaluations=2)
    assert d.loc[d.trained, "options"].tolist() == h["options"].tolist()
    assert (d.loc[d.trained, "cost"] > 0).all() and direct.n_evaluations == 2
    assert (d["budget"] == 3).all() and direct.total_cost == d["cost"].sum()


def test_run_store_keeps_runs_and_their_snapshots(tmp_path):
    store = RunStore(tmp_path / "store")
    with make(checkpoints=store) as b:
        sh = SuccessiveHalving(b, n=3, eta=3, seed=2)
        sh.run(progress=False)
    runs = store.runs()
    assert len(runs) == 3
    # the two dropped at the first rung are handed back when the backend closes
    assert runs["status"].value_counts().to_dict() == {"pending": 2, "done": 1}
    assert sorted(runs["steps_done"].tolist()) == [3, 3, 9]
    done = runs.loc[runs.status == "done", "run_id"].item()
    state, extra = store.load_checkpoint(done)
    assert state["step"] == 9 and extra == {"steps": 9}
    feats = store.load_features(runs["run_id"].tolist())
    assert sorted(feats.n_snapshots.tolist()) == [3, 3, 9]
    # Labelled as collect() labels its runs: one convention in one store.
    from workbench.collect import make_requests

    cells = runs["cell"].tolist()
    collected = make_requests(cells, space="nb201", config=RECIPE)
    assert runs["label_name"].tolist() == [r.label_name for r in collected]
    assert runs["label"].tolist() == [r.label for r in collected]
    assert set(runs["label_name"]) == {"nb201:cifar10/test@200"}


# -- configuration errors ----------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, match", [
    ({"unit": "minutes"}, "minutes"),
    ({"dataset": "ImageNet16-120"}, "ImageNet16-120"),
    ({"dataset": "cifar100"}, "'cifar100' has no bundled copy"),
    ({"pool": "all"}, "'all'"),
    ({"max_budget": 0}, "max_budget.*0"),
    ({"max_budget": math.nan}, "max_budget.*nan"),
    ({"min_budget": 12}, "min_budget 12 must not exceed max_budget 9"),
    ({"min_budget": -1}, "min_budget.*-1"),
    ({"model": "huge"}, "huge"),
    ({"train_size": 0}, "train_size.*0"),
    ({"train_size": 8}, "train_size 8 .*batch of 16"),
    ({"val_size": 0}, "val_size.*0"),
    ({"device": "tpu"}, "tpu"),
    ({"config": {"steps": 3}}, "config"),
    ({"checkpoints": 3}, "checkpoints.*3"),
    ({"space": "nb999"}, "nb999"),
])
def test_bad_configurations_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(**kwargs)


def test_bad_evaluations_raise(backend):
    # A mini-batch budget is named in mini-batches, not epochs.
    with pytest.raises(ValueError, match=r"budget 10 mini-batches exceeds the largest budget 9 "
                                         r"mini-batches"):
        backend.evaluate(CELL, 10)
    with pytest.raises(ValueError, match=r"budget.*-3"):
        backend.evaluate(CELL, -3)
    with pytest.raises(ValueError, match="budget 10"):
        SuccessiveHalving(backend, n=3, min_budget=3, max_budget=10)
    ev = backend.evaluate(CELL, 3)
    other = backend.sample(1, 0)[0]
    with pytest.raises(ValueError, match="cannot continue the run of"):
        backend.evaluate(other, 9, previous=ev)
    longer = backend.evaluate(CELL, 9, previous=ev)
    with pytest.raises(ValueError, match="fewer mini-batches"):
        backend.evaluate(CELL, 3, previous=longer)
    tabular = TabularBackend("nb201").evaluate(CELL, 12)
    with pytest.raises(ValueError, match="no checkpoint"):
        backend.evaluate(CELL, 9, previous=tabular)
    with pytest.raises(ValueError, match="budget"):
        BackendEvaluator(backend, 12)


def test_space_pool_samples_the_whole_space():
    with make(pool="space") as b:
        cells = b.sample(3, 0, exclude={"0"})
        assert len({b.cell_id(c) for c in cells}) == 3 and b.contains(CELL)
        assert not b.contains("|bogus~0|")
        ev = b.evaluate(b.format(cells[0]), 3)
        assert ev.info["steps"] == 3 and math.isfinite(ev.final)  # NB201 labels every cell
        assert b.best_final() == TabularBackend("nb201").best_final()


def test_candidates_and_checkpoints_are_chosen_once(tmp_path):
    from workbench.search import PooledBackend, SpacePool, TablePool
    from workbench.search._checkpoints import FolderCheckpoints, StoreCheckpoints

    with make() as table, make(pool="space", checkpoints=RunStore(tmp_path / "s")) as space:
        assert isinstance(table.candidates, TablePool) and len(table.candidates) == 15625
        assert isinstance(space.candidates, SpacePool)
        # the table the candidates come from: where a cost constraint reads its costs
        assert table.benchmark.name == "nb201" and space.benchmark is None
        assert isinstance(table.checkpoints, FolderCheckpoints)
        assert isinstance(space.checkpoints, StoreCheckpoints)
        tabular = TabularBackend("nb201")
        assert isinstance(tabular, PooledBackend) and isinstance(tabular.candidates, TablePool)
        # The table pool and the tabular backend draw the same cells for a seed.
        assert [table.cell_id(c) for c in table.sample(4, 7)] == [
            tabular.cell_id(c) for c in tabular.sample(4, 7)]
        folder = table.checkpoints.folder
        assert folder.is_dir() and "temporary" in table.describe().set_index(
            "setting").loc["checkpoints", "value"]
    assert not folder.exists()  # closed: the temporary folder is gone
    with pytest.raises(ValueError, match="n must be an int >= 0"):
        SpacePool(get_space("nb201")).sample(-1)
    with pytest.raises(ValueError, match="space must be a SearchSpace"):
        SpacePool("nb201")
