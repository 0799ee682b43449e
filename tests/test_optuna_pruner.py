"""DynamicsPruner in real Optuna studies on tiny NB201 runs trained by a plain user loop with a
SnapshotRecorder: it prunes, its decisions follow the predictor's scores, it works on SQLite
storage from several processes, and it refuses what it cannot judge."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from torch import nn

optuna = pytest.importorskip("optuna")

from workbench.benchmarks import get_benchmark  # noqa: E402
from workbench.data import process_cache  # noqa: E402
from workbench.features import SnapshotRecorder, Snapshots  # noqa: E402
from workbench.integrations.optuna import (  # noqa: E402
    DynamicsPruner,
    decode_snapshots,
    encode_snapshots,
    report_snapshots,
    score_key,
    study_dynamics,
    study_to_store,
    trial_snapshots,
)
from workbench.predictors import (  # noqa: E402  # noqa: E402
    DynamicsForest,
    dynamics_inputs,
    load_predictor,
    save_predictor,
    snapshot_maps,
)
from workbench.spaces import get_space  # noqa: E402
from workbench.store import RunStore  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
optuna.logging.set_verbosity(optuna.logging.WARNING)

STEPS, EVERY, STEP = 8, 2, 4  # mini-batches per trial, snapshot cadence, predictor step
DATA = {"train_size": 128, "val_size": 64}
BENCH = get_benchmark("nb201")
IDS = BENCH.sample_ids(16, rng=3)
OFFLINE, ONLINE = IDS[:8], IDS[8:]


def batches() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """8x8 CIFAR images (train and held-out), normalised, as float tensors."""
    train, val = process_cache().get("cifar10", DATA)
    assert val is not None

    def prep(ds):  # type: ignore[no-untyped-def]
        x = torch.from_numpy(np.array(ds.images)).float() / 255.0
        return nn.functional.avg_pool2d(x - 0.5, 4), torch.from_numpy(np.array(ds.labels))

    return (*prep(train), *prep(val))


def train_cell(cell_id: str, trial=None) -> tuple[float, Snapshots]:  # type: ignore[no-untyped-def]
    """Train one tiny NB201 network in a user loop; report to ``trial`` every 2 mini-batches."""
    space = get_space("nb201")
    torch.manual_seed(0)
    net = space.build(BENCH.cell(cell_id), num_classes=10, **space.model_kwargs("tiny"))
    rec = SnapshotRecorder(net, every=EVERY)
    x, y, xv, yv = batches()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    acc = 0.0
    for step in range(1, STEPS + 1):
        idx = slice((step - 1) * 16 % 128, (step - 1) * 16 % 128 + 16)
        nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
        rec.maybe_record()
        opt.step()
        opt.zero_grad()
        if step % 2 == 0:
            with torch.no_grad():
                acc = float((net(xv).argmax(1) == yv).float().mean())
            if trial is not None:
                trial.report(acc, step)
                report_snapshots(trial, rec)
                if trial.should_prune():
                    raise optuna.TrialPruned()
    return acc, rec.snapshots()


@pytest.fixture(scope="module")
def forest() -> DynamicsForest:
    """A dynamics forest fitted offline on 8 other cells' tiny runs (labels: the table)."""
    maps = [snapshot_maps(train_cell(c)[1], STEP) for c in OFFLINE]
    labels = [BENCH.final_accuracy(BENCH.cell(c)) for c in OFFLINE]
    return DynamicsForest(n_estimators=20, min_samples_leaf=1).fit(
        dynamics_inputs(np.stack(maps)), labels)


def objective(trial) -> float:  # type: ignore[no-untyped-def]
    return train_cell(trial.suggest_categorical("cell", ONLINE), trial)[0]


def by_number(trial) -> float:  # type: ignore[no-untyped-def]
    """The cell is the trial number's (enqueued trials race between parallel workers)."""
    return train_cell(ONLINE[trial.number % len(ONLINE)], trial)[0]


def expected_states(trials: list, eta: int) -> dict[int, str]:  # type: ignore[type-arg]
    """Replay SH by score on a sequential study: a trial is judged at each rung against the
    earlier trials that reached it (and itself); kept iff among the top max(1, n // eta)."""
    key = score_key(STEP)
    reached: dict[int, list[float]] = {4: [], 8: []}
    out = {}
    for t in sorted(trials, key=lambda t: t.number):
        score = t.user_attrs[key]
        state = "COMPLETE"
        for budget in (4, 8):
            scores = [*reached[budget], score]
            reached[budget].append(score)
            k = max(1, len(scores) // eta)
            if score < sorted(scores, reverse=True)[k - 1]:
                state = "PRUNED"
                break
        out[t.number] = state
    return out


def test_prunes_and_kept_trials_follow_the_predictor(forest: DynamicsForest,
                                                    tmp_path: Path) -> None:
    pruner = DynamicsPruner(forest, step=STEP, reduction_factor=2)
    assert pruner.min_resource == STEP and pruner.snapshot_every is None
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for cell in ONLINE:
        study.enqueue_trial({"cell": cell})
    study.optimize(objective, n_trials=len(ONLINE))
    trials = study.get_trials()
    states = {t.number: t.state.name for t in trials}
    assert "PRUNED" in states.values() and "COMPLETE" in states.values()
    assert states == expected_states(trials, eta=2)
    for t in trials:  # the stored score is the predictor's on the stored snapshots
        snaps = trial_snapshots(t)
        assert snaps is not None and snaps.steps[0] == EVERY
        want = forest.predict(dynamics_inputs(snapshot_maps(snaps, STEP)[None]))[0]
        assert t.user_attrs[score_key(STEP)] == pytest.approx(want)
        if t.state.name == "PRUNED":
            assert t.last_step in (4, 8)
    log = pruner.table()
    assert log["pruned"].sum() == sum(s == "PRUNED" for s in states.values())
    assert (log.loc[log["pruned"], "score"] < log.loc[log["pruned"], "threshold"]).all()
    assert (log.loc[~log["pruned"], "score"] >= log.loc[~log["pruned"], "threshold"]).all()
    # what a study stored is enough to fit a predictor on one's own model
    data = study_dynamics(study, step=STEP)
    assert data.X.shape == (sum(s == "COMPLETE" for s in states.values()), 2, 65, 34)
    assert data.y.tolist() == [t.value for t in trials if t.state.name == "COMPLETE"]
    # ... and to read the trials as stored runs (feature explorer, TensorBoard, rank_runs)
    store = RunStore(tmp_path / "store")
    copied = study_to_store(study, store)
    assert copied["trial"].tolist() == [t.number for t in trials]
    assert study_to_store(study, store)["run_id"].tolist() == copied["run_id"].tolist()
    runs = store.runs("done").set_index("run_id").loc[copied["run_id"]]
    assert runs["label"].tolist() == pytest.approx([t.value for t in trials], nan_ok=True)
    first = Snapshots.from_arrays(store.load_arrays(copied["run_id"][0], "snapshots"))
    np.testing.assert_array_equal(first.grads, trial_snapshots(trials[0]).grads)  # type: ignore[union-attr]


def _worker(args: tuple[str, str, int]) -> list[dict]:  # type: ignore[type-arg]
    url, path, n = args
    torch.set_num_threads(1)
    pruner = DynamicsPruner(load_predictor(path), step=STEP, reduction_factor=2)
    study = optuna.load_study(study_name="shared", storage=url, pruner=pruner)
    study.optimize(by_number, n_trials=n)
    return pruner.table().to_dict("records")


def test_sqlite_storage_with_two_workers(forest: DynamicsForest, tmp_path: Path) -> None:
    """Two worker threads on one SQLite study: every decision reads scores from the storage."""
    url = f"sqlite:///{tmp_path / 'threads.db'}"
    pruner = DynamicsPruner(forest, step=STEP, reduction_factor=2)
    study = optuna.create_study(storage=url, direction="maximize", pruner=pruner)
    study.optimize(by_number, n_trials=len(ONLINE), n_jobs=2)
    trials = optuna.load_study(study_name=study.study_name, storage=url).get_trials()
    assert {t.state.name for t in trials} == {"PRUNED", "COMPLETE"}
    assert all(score_key(STEP) in t.user_attrs and trial_snapshots(t) is not None
               for t in trials)
    log = pruner.table()
    assert len(set(log["trial"])) == len(trials) and log["competitors"].max() >= 5


@pytest.mark.slow
def test_sqlite_storage_and_several_processes(forest: DynamicsForest, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    path = tmp_path / "forest.npz"
    save_predictor(forest, path, metadata={"step": STEP})
    optuna.create_study(study_name="shared", storage=url, direction="maximize")
    ctx = multiprocessing.get_context("spawn")
    env = {"OMP_NUM_THREADS": "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with ctx.Pool(2) as pool:
            logs = pool.map(_worker, [(url, str(path), 4), (url, str(path), 4)])
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    trials = optuna.load_study(study_name="shared", storage=url).get_trials()
    assert len(trials) == 8
    assert {t.state.name for t in trials} <= {"PRUNED", "COMPLETE"}
    assert any(t.state.name == "PRUNED" for t in trials)
    assert all(score_key(STEP) in t.user_attrs for t in trials)
    mine = [{row["trial"] for row in log} for log in logs]
    assert mine[0] and mine[1] and not mine[0] & mine[1]  # each process judged its own trials
    # some decision counted trials the other process ran (read from the storage): a process
    # ran 4 trials, so more than 4 competitors at a rung includes the other's
    assert max(row["competitors"] for log in logs for row in log) > 4


def test_bad_input_raises_naming_it(forest: DynamicsForest) -> None:
    with pytest.raises(ValueError, match="DynamicsForest is not fitted"):
        DynamicsPruner(DynamicsForest(), step=STEP)
    with pytest.raises(ValueError, match="names no step"):
        DynamicsPruner(forest)
    with pytest.raises(ValueError, match="min_resource=2 is below the predictor's step 4"):
        DynamicsPruner(forest, step=STEP, min_resource=2)
    with pytest.raises(ValueError, match="reduction_factor must be an int >= 2"):
        DynamicsPruner(forest, step=STEP, reduction_factor=1)
    _, snaps = train_cell(OFFLINE[0])
    old = clone(forest).fit(dynamics_inputs(snapshot_maps(snaps, STEP)[None].repeat(2, 0)),
                            [1.0, 2.0])
    old.feature_schema_version_ = 0
    with pytest.raises(ValueError, match=r"feature schema 1, but the predictor .* schema 0"):
        DynamicsPruner(old, step=STEP).check(snaps)
    with pytest.raises(ValueError, match="every 2 mini-batches, but the predictor expects one "
                                         "every 5"):
        DynamicsPruner(forest, step=STEP, snapshot_every=5).check(snaps)
    arrays = snaps.to_arrays()
    arrays["schema_version"] = np.asarray(99)
    import base64
    import io
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    with pytest.raises(ValueError, match="schema version 99"):
        decode_snapshots(base64.b64encode(buf.getvalue()).decode())
    assert decode_snapshots(encode_snapshots(snaps)).steps.tolist() == [2, 4, 6, 8]

    def forgetful(trial) -> float:  # type: ignore[no-untyped-def]
        trial.report(0.5, STEP)
        trial.should_prune()
        return 0.5

    study = optuna.create_study(pruner=DynamicsPruner(forest, step=STEP))
    with pytest.raises(ValueError, match="call report_snapshots"):
        study.optimize(forgetful, n_trials=1)


@settings(max_examples=25, deadline=None)
@given(n_snap=st.integers(0, 4), n_layers=st.integers(1, 6), every=st.integers(1, 9),
       seed=st.integers(0, 2**16), scale=st.floats(1e-6, 1e6))
def test_encoded_snapshots_round_trip(n_snap: int, n_layers: int, every: int, seed: int,
                                      scale: float) -> None:
    rng = np.random.default_rng(seed)
    shape = (n_snap, 8, 17)
    snaps = Snapshots(weights=(rng.standard_normal(shape) * scale).astype(np.float32),
                      grads=rng.standard_normal(shape).astype(np.float32),
                      mask=np.arange(8) < n_layers,
                      steps=np.arange(1, n_snap + 1, dtype=np.int64) * every,
                      layer_names=tuple(f"l/{i} é" for i in range(n_layers)),
                      layer_kinds=("other",) * n_layers, snapshot_every=every, sample_size=64)
    text = encode_snapshots(snaps)
    assert text.isascii()
    back = decode_snapshots(text)
    np.testing.assert_array_equal(back.weights, snaps.weights)
    np.testing.assert_array_equal(back.grads, snaps.grads)
    assert back.layer_names == snaps.layer_names and back.steps.tolist() == snaps.steps.tolist()
    assert (back.snapshot_every, back.layer_kinds) == (every, snaps.layer_kinds)
