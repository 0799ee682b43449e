"""Tests of ``workbench.store``: idempotent adds, status model, atomic files, several processes."""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import pickle
import sqlite3
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.store import (
    RUN_STATUSES,
    SCHEMA_VERSION,
    RunRequest,
    RunStore,
    StoreError,
    StoreVersionError,
    UnknownRunError,
    default_worker,
    run_key,
)

FAST = settings(max_examples=40, deadline=None)


def req(i: int = 0, *, dataset: str = "cifar10", seed: int = 0, **kw: object) -> dict:
    """A valid run request for cell ``i``."""
    return {
        "space": "nb201",
        "cell_id": i,
        "dataset": dataset,
        "config": {"lr": 0.1, "epochs": 2, "opt": {"momentum": 0.9}},
        "seed": seed,
        "cell": f"|cell{i}|",
        **kw,
    }


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "store")


@pytest.fixture(scope="module")
def module_store(tmp_path_factory: pytest.TempPathFactory) -> RunStore:
    return RunStore(tmp_path_factory.mktemp("store"))


# -- adding runs ---------------------------------------------------------------------------------


def test_add_is_idempotent_by_key(store: RunStore) -> None:
    ids = store.add_runs([req(0), req(1), req(0, seed=1)])
    assert len(set(ids)) == 3
    same = dict(req(0), config={"opt": {"momentum": 0.9}, "epochs": 2.0, "lr": 0.1})
    again = store.add_runs([req(1), same, same, req(0, label=99.0, label_name="x"), req(2)])
    assert again[:4] == [ids[1], ids[0], ids[0], ids[0]]
    assert again[4] not in ids
    df = store.runs()
    assert len(df) == 4 and df["key"].is_unique and df["run_id"].is_unique
    assert list(df["run_id"]) == [*ids, again[4]]  # insertion order
    assert math.isnan(store.runs()["label"].iloc[0])  # the existing run is untouched
    assert (df["status"] == "pending").all()
    assert df["config.opt.momentum"].tolist() == [0.9] * 4
    assert store.get(ids[0])["config"] == {"lr": 0.1, "epochs": 2, "opt": {"momentum": 0.9}}


def test_request_key_and_fields() -> None:
    r = RunRequest(**req(7, seed=3))
    assert r.cell_id == "7" and r.key == f"nb201/7/cifar10/{r.key.split('/')[3]}/3"
    assert RunRequest.coerce(r) is r
    with pytest.raises(ValueError, match=r"unknown run request fields.*'colour'"):
        RunRequest.coerce(dict(req(), colour="red"))
    with pytest.raises(ValueError, match=r"lacks required fields.*dataset"):
        RunRequest.coerce({"space": "nb101", "cell_id": "abc"})


# -- status model --------------------------------------------------------------------------------


def test_status_transitions(store: RunStore) -> None:
    a, b, c, d = store.add_runs([req(i) for i in range(4)])
    assert store.claim(a, "w1") is True
    assert store.claim(a, "w2") is False  # only from pending
    assert store.get(a)["worker"] == "w1" and store.get(a)["status"] == "running"
    store.update_progress(a, 50)
    store.mark_done(a, {"train_loss": 0.25, "val_acc": 0.8, "curve": [1.0, 0.5]}, 93.5, "test_acc")
    assert store.claim(a) is False
    row = store.get(a)
    assert row["status"] == "done" and row["steps_done"] == 50 and row["wall_seconds"] >= 0
    assert (row["final_train_loss"], row["final_val_acc"], row["label"]) == (0.25, 0.8, 93.5)
    with pytest.raises(ValueError, match="already 'done'"):
        store.mark_failed(a, "late")
    with pytest.raises(ValueError, match="progress"):
        store.update_progress(a, 60)

    assert store.claim_next("w3") == b
    store.mark_diverged(b, {"train_loss": math.inf, "val_acc": math.nan})
    assert store.get(b)["metrics"]["train_loss"] == math.inf
    assert store.claim(c)
    try:
        raise RuntimeError("boom")
    except RuntimeError as err:
        store.mark_failed(c, err)
    assert "RuntimeError: boom" in store.get(c)["error"]
    assert store.claim(d)  # held by this live process: a restarting collection leaves it
    assert store.counts() == {"pending": 0, "running": 1, "done": 1, "diverged": 1, "failed": 1}
    assert store.reset_unfinished() == 0 and store.holds(d, default_worker())
    assert store.reset_unfinished(force=True) == 1  # every claim, live or not
    assert store.get(d)["status"] == "pending" and store.get(d)["worker"] is None
    assert list(store.pending()["run_id"]) == [d]
    assert store.reset_unfinished() == 0
    store.requeue(c)
    assert store.get(c)["status"] == "pending" and store.get(c)["error"] is None
    with pytest.raises(ValueError, match="only failed or diverged"):
        store.requeue(a)
    assert list(store.runs(["diverged", "done"])["run_id"]) == [a, b]
    assert store.claim_next(dataset="svhn") is None


def test_unknown_and_malformed_run_ids(store: RunStore) -> None:
    (rid,) = store.add_runs([req()])
    missing = "0" * 32
    for call in (
        lambda: store.get(missing),
        lambda: store.claim(missing),
        lambda: store.mark_done(missing, {}),
        lambda: store.load_arrays(missing, "x"),
        lambda: store.delete(missing),
        lambda: store.load_features([rid, missing]),
    ):
        with pytest.raises(KeyError, match=missing) as info:
            call()
        assert isinstance(info.value, UnknownRunError)
    with pytest.raises(ValueError, match="run_id must be 32 lowercase hex"):
        store.get("../etc")


def test_delete_removes_row_and_files(store: RunStore) -> None:
    rid, keep = store.add_runs([req(0), req(1)])
    store.save_arrays(rid, "curves", {"loss": np.ones(3)})
    store.delete(rid)
    assert not store.run_dir(rid).exists()
    with pytest.raises(KeyError):
        store.get(rid)
    assert list(store.runs()["run_id"]) == [keep]
    (new,) = store.add_runs([req(0)])
    assert new != rid and store.get(new)["status"] == "pending"


# -- arrays --------------------------------------------------------------------------------------


def test_arrays_round_trip_exactly(store: RunStore) -> None:
    (rid,) = store.add_runs([req()])
    rng = np.random.default_rng(0)
    arrays = {
        "weights": rng.standard_normal((4, 3, 5)).astype(np.float32),
        "half": np.array([np.nan, -np.inf, 1.5], dtype=np.float16),
        "f64": np.asfortranarray(rng.standard_normal((3, 2))),
        "i8": np.array([-128, 0, 127], dtype=np.int8),
        "u64": np.array([2**64 - 1], dtype=np.uint64),
        "mask": np.array([True, False]),
        "c64": np.array([1 + 2j], dtype=np.complex64),
        "names": np.array(["conv", "pool"]),
        "scalar": np.float64(3.25),
        "empty": np.zeros((0, 7), dtype=np.int32),
        "file": np.arange(3),  # would clash with np.savez_compressed(file, ...)
    }
    store.save_arrays(rid, "snapshots", arrays)
    back = store.load_arrays(rid, "snapshots")
    assert sorted(back) == sorted(arrays)
    for name, value in arrays.items():
        value = np.asarray(value)
        assert back[name].dtype == value.dtype and back[name].shape == value.shape, name
        assert np.array_equal(back[name], value, equal_nan=value.dtype.kind in "fc"), name
    assert store.array_names(rid) == ["snapshots"]
    with pytest.raises(FileNotFoundError, match="curves"):
        store.load_arrays(rid, "curves")


@pytest.mark.parametrize(
    "bad",
    [
        np.array([{"a": 1}, None], dtype=object),
        np.zeros(2, dtype=[("x", "f4"), ("o", "O")]),
        [[1, 2], [3]],  # ragged -> would need an object array
    ],
    ids=["object", "struct-with-object", "ragged"],
)
def test_object_arrays_refused(store: RunStore, bad: object) -> None:
    (rid,) = store.add_runs([req()])
    store.save_arrays(rid, "feat", {"x": np.arange(3)})
    with pytest.raises(ValueError):
        store.save_arrays(rid, "feat", {"x": np.arange(4), "bad": bad})
    assert np.array_equal(store.load_arrays(rid, "feat")["x"], np.arange(3))


def test_crash_before_replace_keeps_old_file(
    store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    (rid,) = store.add_runs([req()])
    store.save_arrays(rid, "feat", {"x": np.arange(3)})

    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("workbench._io.os.replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.save_arrays(rid, "feat", {"x": np.arange(100)})
    assert np.array_equal(store.load_arrays(rid, "feat")["x"], np.arange(3))
    assert sorted(os.listdir(store.run_dir(rid))) == ["feat.npz"]  # the temp file is cleaned up


def _die_before_replace(store: RunStore, run_id: str) -> None:
    """Child process: die (``os._exit``) inside an open write transaction and just before the
    rename of new arrays."""
    import workbench._io as files

    conn = sqlite3.connect(store.index_path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE runs SET status = 'done' WHERE run_id = ?", (run_id,))
    files.os.replace = lambda src, dst: os._exit(9)  # type: ignore[assignment]
    store.save_arrays(run_id, "feat", {"x": np.arange(1000)})


def test_hard_kill_before_replace_leaves_no_partial_file(store: RunStore) -> None:
    (rid,) = store.add_runs([req()])
    store.save_arrays(rid, "feat", {"x": np.arange(3)})
    proc = mp.get_context("spawn").Process(target=_die_before_replace, args=(store, rid))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 9
    files = sorted(os.listdir(store.run_dir(rid)))
    assert files[-1] == "feat.npz" and len(files) == 2
    assert files[0].startswith(".feat.npz.") and files[0].endswith(".tmp")  # orphan, hidden
    assert np.array_equal(store.load_arrays(rid, "feat")["x"], np.arange(3))
    assert store.array_names(rid) == ["feat"]
    assert store.get(rid)["status"] == "pending"  # the uncommitted write is rolled back
    assert store.claim(rid)  # and its lock released


# -- features ------------------------------------------------------------------------------------


def test_load_features_pads_snapshots(store: RunStore) -> None:
    ids = store.add_runs([req(i) for i in range(3)])
    for rid, n in zip(ids, (2, 4, 3), strict=True):
        store.save_arrays(
            rid,
            "snapshots",
            {
                "weights": np.full((n, 3, 5), n, dtype=np.float32),
                "grads": np.ones((n, 3, 5), dtype=np.float32),
                "layer_mask": np.array([True, True, n > 2]),
                "steps": np.arange(n, dtype=np.int64) * 10,
            },
        )
    order = [ids[2], ids[0], ids[1]]
    feats = store.load_features(order)
    assert feats.run_ids == order and list(feats.runs["cell_id"]) == ["2", "0", "1"]
    w = feats.arrays["weights"]
    assert w.shape == (3, 4, 3, 5) and w.dtype == np.float32
    assert feats.n_snapshots.tolist() == [3, 2, 4]
    assert np.isnan(w[1, 2:]).all() and (w[1, :2] == 2).all()
    assert feats.arrays["steps"][1].tolist() == [0, 10, 0, 0]
    assert feats.valid("weights").sum() == (3 + 2 + 4) * 15
    assert feats.arrays["layer_mask"].tolist()[1] == [True, True, False]

    store.save_arrays(ids[0], "snapshots", {"weights": np.ones((2, 3, 5), np.float32)})
    with pytest.raises(ValueError, match="same arrays"):
        store.load_features(ids)
    with pytest.raises(ValueError, match="more than once"):
        store.load_features([ids[1], ids[1]])
    with pytest.raises(FileNotFoundError, match=ids[1]):
        store.load_features(ids[1:], name="other")


# -- checkpoints ---------------------------------------------------------------------------------


class Opaque:
    """A picklable object that ``torch.load(weights_only=True)`` refuses."""


def test_checkpoint_round_trip_weights_only(store: RunStore) -> None:
    import torch

    (rid,) = store.add_runs([req()])
    assert not store.has_checkpoint(rid)
    model = torch.nn.Linear(4, 2)
    # An optimizer-style state (int keys, nested tensors); torch.optim itself is slow to warm up.
    opt = {"state": {0: {"momentum_buffer": torch.randn(2, 4)}}, "param_groups": [{"lr": 0.1}]}
    extra = {"epoch": 3, "opt": opt, "rng": torch.get_rng_state(), "hist": [0.5], "f": 1e-3}
    store.save_checkpoint(rid, model.state_dict(), extra)
    state, back = store.load_checkpoint(rid, map_location="cpu")
    assert state.keys() == model.state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert back["epoch"] == 3 and back["hist"] == [0.5] and torch.equal(back["rng"], extra["rng"])
    assert back["opt"]["param_groups"] == [{"lr": 0.1}] and back["f"] == 1e-3
    assert torch.equal(
        back["opt"]["state"][0]["momentum_buffer"], opt["state"][0]["momentum_buffer"]
    )

    class Local:
        pass

    for bad in (Opaque(), Local(), np.ones(2)):
        with pytest.raises(ValueError, match="weights_only"):
            store.save_checkpoint(rid, {"w": torch.zeros(1)}, {"obj": bad})
    assert store.load_checkpoint(rid)[1]["epoch"] == 3  # the old checkpoint survives
    assert [p for p in os.listdir(store.run_dir(rid)) if p.endswith(".tmp")] == []


# -- several processes ---------------------------------------------------------------------------


def _worker(store: RunStore, wid: int, barrier: object, n: int, n_shared: int) -> None:
    """Child process: add and finish ``n`` own runs one by one, and race for the shared runs."""
    barrier.wait()  # type: ignore[attr-defined]
    worker = f"w{wid}"
    for i in range(n):
        (rid,) = store.add_runs([req(i, dataset=f"own{wid}", seed=wid)])
        (shared,) = store.add_runs([req(i % n_shared, dataset="shared")])
        assert store.claim(rid, worker)
        if i % 3 == 0:
            store.mark_done(rid, {"val_acc": i / n}, label=float(i))
        elif i % 3 == 1:
            store.mark_diverged(rid, {"train_loss": math.nan})
        else:
            store.mark_failed(rid, f"error {i}")
        if shared_id := store.claim_next(worker, dataset="shared"):
            store.mark_done(shared_id, {"val_acc": 1.0})
        assert shared


def test_two_processes_lose_and_duplicate_nothing(store: RunStore) -> None:
    n, n_shared = 100, 20
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_worker, args=(store, w, barrier, n, n_shared)) for w in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]

    df = store.runs()
    assert len(df) == 2 * n + n_shared
    assert df["key"].is_unique and df["run_id"].is_unique
    for wid in (0, 1):
        own = store.runs(dataset=f"own{wid}").sort_values("cell_id", key=lambda s: s.astype(int))
        assert own["cell_id"].tolist() == [str(i) for i in range(n)]
        expected = [("done", "diverged", "failed")[i % 3] for i in range(n)]
        assert own["status"].tolist() == expected
        assert (own["worker"] == f"w{wid}").all()
    shared = store.runs(dataset="shared")
    assert (shared["status"] == "done").all() and set(shared["worker"]) <= {"w0", "w1"}


# -- versions, bad input -------------------------------------------------------------------------


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "s")
    store.add_runs([req()])
    with sqlite3.connect(store.index_path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreVersionError, match=f"schema version {SCHEMA_VERSION + 1}"):
        RunStore(tmp_path / "s")
    with pytest.raises(StoreVersionError):
        store.runs()  # an already-open store notices too
    foreign = tmp_path / "f"
    foreign.mkdir()
    with sqlite3.connect(foreign / "index.sqlite") as conn:
        conn.execute("CREATE TABLE other (x)")
    with pytest.raises(StoreError, match="not a run store"):
        RunStore(foreign)


def test_store_is_picklable_and_reopens(store: RunStore) -> None:
    ids = store.add_runs([req()])
    clone = pickle.loads(pickle.dumps(store))
    assert clone.runs()["run_id"].tolist() == ids
    assert RunStore(store.root).add_runs([req()]) == ids
    with sqlite3.connect(store.index_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (dict(req(), space="nb 201"), "space"),
        (dict(req(), dataset=""), "dataset"),
        (dict(req(), cell_id="a/b"), "cell_id"),
        (dict(req(), cell_id=-1), "cell_id"),
        (dict(req(), seed=-1), "seed"),
        (dict(req(), seed=True), "seed"),
        (dict(req(), seed=1.0), "seed"),
        (dict(req(), config={"lr": math.nan}), r"config\['lr'\]"),
        (dict(req(), config={"lr": np.ones(2)}), r"config\['lr'\]"),
        (dict(req(), config={1: 2}), "keys must be strings"),
        (dict(req(), config=[1]), "config must be a mapping"),
        (dict(req(), label="high"), "label"),
        (dict(req(), label=math.inf), "label"),
        ("nb201", "RunRequest or a mapping"),
    ],
)
def test_bad_requests_raise_and_write_nothing(store: RunStore, bad: object, match: str) -> None:
    ids = store.add_runs([req(0)])
    with pytest.raises(ValueError, match=match):
        store.add_runs([req(1), bad, req(2)])
    assert store.runs()["run_id"].tolist() == ids


def test_bad_arguments_raise_value_error(store: RunStore) -> None:
    (rid,) = store.add_runs([req()])
    store.claim(rid)
    store.save_arrays(rid, "feat", {"x": np.arange(2)})
    calls = {
        "single request": lambda: store.add_runs(req()),  # type: ignore[arg-type]
        "status": lambda: store.runs(status="finished"),
        "empty status": lambda: store.runs(status=[]),
        "space filter": lambda: store.runs(space="nb/201"),
        "name": lambda: store.save_arrays(rid, "../feat", {"x": np.arange(2)}),
        "tmp name": lambda: store.save_arrays(rid, "feat.tmp", {"x": np.arange(2)}),
        "array name": lambda: store.save_arrays(rid, "feat", {"a/b": np.arange(2)}),
        "no arrays": lambda: store.save_arrays(rid, "feat", {}),
        "steps": lambda: store.update_progress(rid, -1),
        "metrics": lambda: store.mark_done(rid, [("val_acc", 1.0)]),  # type: ignore[arg-type]
        "metric type": lambda: store.mark_done(rid, {"val_acc": "high"}),
        "metric value": lambda: store.mark_done(rid, {"x": object()}),
        "error": lambda: store.mark_failed(rid, ""),
        "worker": lambda: store.claim(rid, ""),
        "state_dict": lambda: store.save_checkpoint(rid, [1, 2]),  # type: ignore[arg-type]
        "features": lambda: store.load_features(rid),
        "no features": lambda: store.load_features([]),
        "timeout": lambda: RunStore(store.root, timeout=0),
    }
    for what, call in calls.items():
        with pytest.raises(ValueError):
            call()
            pytest.fail(f"{what} did not raise")
    row = store.get(rid)
    assert row["status"] == "running" and row["metrics"] is None
    assert np.array_equal(store.load_arrays(rid, "feat")["x"], np.arange(2))


# -- property-based checks -----------------------------------------------------------------------

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
configs = st.dictionaries(
    st.text(string.ascii_lowercase, min_size=1, max_size=6),
    st.one_of(json_leaf, st.lists(json_leaf, max_size=3)),
    max_size=6,
)
names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)


@FAST
@given(config=configs, space=names, dataset=names, seed=st.integers(0, 2**63 - 1))
def test_key_is_canonical(config: dict, space: str, dataset: str, seed: int) -> None:
    key = run_key(space, "c1", dataset, config, seed)
    reordered = dict(reversed(list(config.items())))
    floats = {k: float(v) if type(v) is int and abs(v) < 2**52 else v for k, v in config.items()}
    assert run_key(space, "c1", dataset, reordered, seed) == key
    assert run_key(space, "c1", dataset, floats, seed) == key
    assert run_key(space, "c1", dataset, config, seed ^ 1) != key
    assert run_key(space, "c2", dataset, config, seed) != key
    assert key.split("/")[0] == space and key.split("/")[-1] == str(seed)


@FAST
@given(space=st.text(max_size=8), seed=st.one_of(st.integers(), st.floats(), st.booleans()))
def test_request_validation(module_store: RunStore, space: str, seed: object) -> None:
    import re

    ok_space = re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", space) is not None
    ok_seed = type(seed) is int and 0 <= seed < 2**63
    before = len(module_store.runs())
    request = dict(req(), space=space, seed=seed)
    if ok_space and ok_seed:
        (rid,) = module_store.add_runs([request])
        assert module_store.get(rid)["space"] == space
        assert module_store.add_runs([request]) == [rid]
    else:
        with pytest.raises(ValueError, match="space" if not ok_space else "seed"):
            module_store.add_runs([req(), request])
        assert len(module_store.runs()) == before


@FAST
@given(status=st.one_of(st.text(max_size=10), st.lists(st.sampled_from([*RUN_STATUSES, "x"]))))
def test_status_filter_validation(module_store: RunStore, status: object) -> None:
    values = [status] if isinstance(status, str) else status
    if values and all(v in RUN_STATUSES for v in values):
        assert set(module_store.runs(status).get("status", [])) <= set(values)
    else:
        with pytest.raises(ValueError, match="status must"):
            module_store.runs(status)
