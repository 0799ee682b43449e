"""What survives what: several processes on one store, kill -9 with worker processes, damaged
indexes and run files, read-only stores, damaged predictor files, divergent runs and bad
command-line arguments. Each case of issue "Reliability" reproduced and asserted."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.benchmarks import get_benchmark
from workbench.cli import main
from workbench.collect import collect
from workbench.data import process_cache
from workbench.predictors import (
    DynamicsGBT,
    PredictorFileError,
    load_dynamics,
    load_predictor,
    rank_runs,
    save_predictor,
)
from workbench.store import (
    ClaimLostError,
    RunRequest,
    RunStore,
    StoreError,
    StoreFileError,
    StoreReadOnlyError,
    default_worker,
)
from workbench.training import TrainConfig, Trainer, build_trainer

CFG = TrainConfig(steps=6, batch_size=32, resize=16, snapshot_every=2, curve_every=2,
                  device="cpu", snapshot_sample=128)
DATA = {"val_size": 64, "train_size": 256}
REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def req(i: int) -> RunRequest:
    return RunRequest(space="nb201", cell_id=str(i), dataset="cifar10", seed=0,
                      config={"train": {"steps": 1}})


# -- ownership: leases, heartbeats, claims checked on finish ----------------------------------


def test_only_runs_whose_owner_is_gone_are_requeued(tmp_path):
    store = RunStore(tmp_path)
    live, dead, away, expired = store.add_runs([req(i) for i in range(4)])
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout.strip()
    host = socket.gethostname()
    assert store.claim(live)  # this live process
    assert store.claim(dead, f"{host}:{dead_pid}")  # a process of this host that has exited
    assert store.claim(away, "other-host:1", lease=3600)  # elsewhere, lease still running
    assert store.claim(expired, "other-host:2", lease=1e-3)  # elsewhere, lease ran out
    time.sleep(0.01)
    assert sorted(store.stale()) == sorted([dead, expired])
    assert store.reset_unfinished() == 2
    status = store.runs().set_index("run_id")["status"]
    assert status[live] == status[away] == "running"
    assert status[dead] == status[expired] == "pending"
    # A renewed lease holds; the owner's name is checked when a run finishes.
    assert store.renew("other-host:1") == 1
    with pytest.raises(ClaimLostError, match="no longer held"):
        store.mark_done(away, {"val_acc": 1.0}, worker="intruder:7",
                        arrays={"curves": {"x": np.ones(2)}})
    assert not store.run_dir(away).exists()  # nothing written
    store.mark_done(away, {"val_acc": 1.0}, worker="other-host:1",
                    arrays={"curves": {"x": np.ones(2)}})
    assert store.get(away)["files"] == '["curves.npz"]'
    # A finished run's files are final: neither a late writer nor save_arrays rewrites them.
    with pytest.raises(ClaimLostError, match="already 'done'"):
        store.mark_done(away, {"val_acc": 2.0}, worker="other-host:1")
    with pytest.raises(ClaimLostError, match="final"):
        store.save_arrays(away, "curves", {"x": np.zeros(2)})
    np.testing.assert_array_equal(store.load_arrays(away, "curves")["x"], np.ones(2))
    assert store.release(default_worker()) == 1 and store.get(live)["status"] == "pending"


_CONCURRENT = textwrap.dedent("""
    import os, sys
    from workbench.collect import collect
    from workbench.training import Callback, TrainConfig

    class Log(Callback):
        def on_end(self, trainer, result):
            with open(sys.argv[2], "a") as fh:
                fh.write(f"{os.getpid()} {trainer.step}\\n")

    cfg = TrainConfig(steps=6, batch_size=32, resize=16, snapshot_every=2, curve_every=2,
                      device="cpu", snapshot_sample=128)
    rows = collect([str(i) for i in range(4)], space="nb201", store=sys.argv[1], config=cfg,
                   model="tiny", data={"val_size": 64, "train_size": 256}, progress=False,
                   callbacks=[Log()])
    print(sorted(rows["status"]))
""")


def test_two_concurrent_collects_train_each_run_once(tmp_path):
    store_dir, log = tmp_path / "store", tmp_path / "trained.log"
    procs = [subprocess.Popen([sys.executable, "-c", _CONCURRENT, str(store_dir), str(log)],
                              env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
        assert "Traceback" not in err and "dropped" not in err
    runs = RunStore(store_dir).runs()
    assert len(runs) == 4 and (runs["status"] == "done").all()
    trained = log.read_text().split("\n")[:-1]
    assert len(trained) == 4  # each run trained exactly once, by one of the two processes
    for _, row in runs.iterrows():  # files landed with the status, never after it
        path = RunStore(store_dir).run_dir(row["run_id"]) / "snapshots.npz"
        assert path.stat().st_mtime <= row["finished"].timestamp() + 1e-3


_WORKERS = textwrap.dedent("""
    import sys
    from workbench.collect import collect
    from workbench.training import TrainConfig

    cfg = TrainConfig(steps=150, batch_size=32, resize=16, snapshot_every=50, device="cpu",
                      snapshot_sample=128)
    collect(["20", "21", "22", "23"], space="nb201", store=sys.argv[1], config=cfg,
            model="tiny", data={"val_size": 64, "train_size": 256}, workers=2, progress=False)
""")


def _spawned_children(pid: int) -> list[int]:
    """Pids of multiprocessing-spawned processes whose parent is ``pid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"spawn_main" in cmd:
            out.append(int(entry.name))
    return out


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find the workers")
def test_kill_9_with_workers_leaves_no_orphans_and_a_rerun_finishes(tmp_path):
    store_dir = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-c", _WORKERS, str(store_dir)], env=ENV)
    try:
        deadline = time.monotonic() + 180
        children: list[int] = []
        while time.monotonic() < deadline:
            if (store_dir / "index.sqlite").exists():
                children = _spawned_children(proc.pid)
                if children and RunStore(store_dir).counts()["running"] >= 1:
                    break
            assert proc.poll() is None, "the collection ended before it could be killed"
            time.sleep(0.1)
        else:
            pytest.fail("the collection never had a worker training a run")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 60
    while any(Path(f"/proc/{c}").exists() and "Z" not in _state(c) for c in children):
        assert time.monotonic() < deadline, f"workers {children} outlived their parent"
        time.sleep(0.1)
    store = RunStore(store_dir)
    before = store.runs()
    finished = before.loc[before["status"] == "done", ["run_id", "finished"]]
    cfg = TrainConfig(steps=150, batch_size=32, resize=16, snapshot_every=50, device="cpu",
                      snapshot_sample=128)
    rows = collect(["20", "21", "22", "23"], space="nb201", store=store_dir, config=cfg,
                   model="tiny", data=DATA, progress=False)
    assert rows["status"].tolist() == ["done"] * 4 and rows["key"].is_unique
    kept = store.runs().set_index("run_id").loc[finished["run_id"], "finished"]
    assert (kept.to_numpy() == finished["finished"].to_numpy()).all()  # not retrained


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


_CREATE = """
import sys, time
from workbench.store import RunStore
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # all start together
RunStore(sys.argv[1]).counts()
"""


def test_a_store_being_created_is_never_seen_half_made(tmp_path):
    """A new index appears complete (made aside, then linked into place), so a process that
    opens the store while others create it never sees the empty file a damaged index is."""
    root = tmp_path / "store"
    start = time.time() + 2.0
    procs = [subprocess.Popen([sys.executable, "-c", _CREATE, str(root), str(start)])
             for _ in range(4)]
    seen_empty, opened = 0, 0
    while any(p.poll() is None for p in procs) or opened == 0:
        index = root / "index.sqlite"
        if index.is_file():
            seen_empty += index.stat().st_size == 0
            RunStore(root).counts()  # would raise on a zero-length index
            opened += 1
        time.sleep(0.001)
    assert [p.wait(60) for p in procs] == [0, 0, 0, 0]
    assert seen_empty == 0 and opened >= 1
    assert sorted(q.name for q in root.iterdir() if q.name.startswith(".")) == []  # no temp left
    assert set(RunStore(root).counts().values()) == {0}


# -- damaged, foreign and read-only indexes -------------------------------------------------------


def _foreign_sqlite(path: Path) -> None:
    path.unlink()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (x TEXT)")
    conn.commit()
    conn.close()


DAMAGES = {
    "zero-length": lambda p: p.write_bytes(b""),
    "random bytes": lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)),
    "foreign sqlite": _foreign_sqlite,
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_or_foreign_index_is_refused_and_left_untouched(tmp_path, capsys, damage):
    root = tmp_path / "store"
    store = RunStore(root)
    rid = store.add_runs([req(0)])[0]
    store.run_dir(rid).mkdir(parents=True)
    index = root / "index.sqlite"
    for extra in ("index.sqlite-wal", "index.sqlite-shm"):
        (root / extra).unlink(missing_ok=True)
    DAMAGES[damage](index)
    before = index.read_bytes()
    with pytest.raises(StoreError, match=str(index).replace("\\", "\\\\")):
        RunStore(root)
    with pytest.raises(StoreError):
        RunStore(root, readonly=True)
    assert main(["runs", "--store", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(index) in err
    assert index.read_bytes() == before  # never reinitialised
    assert store.run_dir(rid).is_dir()


def test_run_folders_without_an_index_are_not_a_new_store(tmp_path):
    root = tmp_path / "store"
    store = RunStore(root)
    rid = store.add_runs([req(0)])[0]
    store.run_dir(rid).mkdir(parents=True)
    for name in ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm"):
        (root / name).unlink(missing_ok=True)
    with pytest.raises(StoreError, match="holds run folders"):
        RunStore(root)
    assert not (root / "index.sqlite").exists()


def test_read_only_store_reads_without_writing_even_while_another_writes(tmp_path, capsys):
    root = tmp_path / "store"
    writer = RunStore(root)
    ids = writer.add_runs([req(i) for i in range(3)])
    writer.claim(ids[0])
    writer.mark_done(ids[0], {"val_acc": 50.0}, worker=default_worker(),
                     arrays={"curves": {"x": np.arange(3.0)}})
    def listing_now() -> dict[Path, int]:  # SQLite's own -wal/-shm lock files aside
        return {p: p.stat().st_mtime_ns for p in root.rglob("*")
                if not p.name.endswith(("-wal", "-shm"))}

    listing = listing_now()
    ro = RunStore(root, readonly=True)
    assert len(ro.runs()) == 3 and ro.load_arrays(ids[0], "curves")["x"].tolist() == [0, 1, 2]
    for write in (lambda: ro.add_runs([req(9)]), lambda: ro.claim(ids[1]),
                  lambda: ro.reset_unfinished(), lambda: ro.save_arrays(ids[1], "x", {"a": [1]})):
        with pytest.raises(StoreReadOnlyError, match="read-only"):
            write()
    assert listing_now() == listing
    with pytest.raises(StoreError, match="no run store"):
        RunStore(tmp_path / "absent", readonly=True)
    assert not (tmp_path / "absent").exists()
    # Another process holds the write lock: listing the runs still answers (WAL readers).
    conn = sqlite3.connect(root / "index.sqlite", isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        assert main(["runs", "--store", str(root)]) == 0
        assert ids[2] in capsys.readouterr().out
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def test_an_older_store_is_migrated_in_place(tmp_path):
    root = tmp_path / "store"
    store = RunStore(root)
    rid = store.add_runs([req(0)])[0]
    conn = sqlite3.connect(root / "index.sqlite")
    conn.execute("ALTER TABLE runs DROP COLUMN lease_until")
    conn.execute("ALTER TABLE runs DROP COLUMN files")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    again = RunStore(root)
    assert again.claim(rid) and again.get(rid)["lease_until"] > time.time()


# -- damaged run files ------------------------------------------------------------------------


def test_damaged_run_files_are_named_found_and_repaired(tmp_path):
    root = tmp_path / "store"
    rows = collect(["0", "1", "2"], space="nb201", store=root, config=CFG, model="tiny",
                   data=DATA, progress=False)
    store = RunStore(root)
    truncated, scrambled, deleted = rows["run_id"]
    snap = store.run_dir(truncated) / "snapshots.npz"
    snap.write_bytes(snap.read_bytes()[: snap.stat().st_size // 2])
    curves = store.run_dir(scrambled) / "curves.npz"
    np.save(curves.with_suffix(".tmp.npy"), np.array([{"x": 1}], dtype=object),
            allow_pickle=True)  # a pickled array under the store's name
    os.replace(curves.with_suffix(".tmp.npy"), curves)
    (store.run_dir(deleted) / "evals.npz").unlink()
    with pytest.raises(StoreFileError, match=r"snapshots\.npz"):
        store.load_arrays(truncated, "snapshots")
    with pytest.raises(StoreFileError, match="refused") as err:
        store.load_arrays(scrambled, "curves")
    assert "allow_pickle=True" not in str(err.value)
    bad = store.verify()
    assert sorted(bad["run_id"]) == sorted([truncated, scrambled, deleted])
    assert "missing evals.npz" in bad.set_index("run_id").loc[deleted, "problem"]
    with pytest.warns(UserWarning, match="3 finished runs have missing or damaged files"):
        collect(["0", "1", "2"], space="nb201", store=root, config=CFG, model="tiny",
                data=DATA, progress=False)
    assert main(["verify", "--store", str(root)]) == 1
    assert main(["verify", "--store", str(root), "--repair"]) == 0
    assert store.counts()["pending"] == 3
    assert list(store.run_dir(truncated).glob(".damaged-*/snapshots.npz"))  # kept aside
    again = collect(["0", "1", "2"], space="nb201", store=root, config=CFG, model="tiny",
                    data=DATA, progress=False)
    assert again["status"].tolist() == ["done"] * 3 and not len(store.verify())
    assert store.load_arrays(truncated, "snapshots")


# -- predictor files -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def predictor_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 3, 4, 10)).astype(np.float32)
    model = DynamicsGBT(n_estimators=5, max_depth=2, random_state=0).fit(X, rng.normal(size=24))
    path = tmp_path_factory.mktemp("pred") / "gbt.npz"
    save_predictor(model, path)
    return path, X


def _rewrite(path: Path, out: Path, header=None, arrays=None) -> None:
    with np.load(path, allow_pickle=False) as z:
        content = {k: z[k] for k in z.files}
    if header is not None:
        content["__header__"] = np.array(json.dumps(header))
    content.update(arrays or {})
    np.savez(out, **content)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False)
                    | st.text(max_size=4), lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["class", "params", "attrs", "format_version",
                            "feature_schema_version", "feature_names", "metadata"]),
       value=JSON)
def test_edited_predictor_headers_fail_with_one_error_type(predictor_file, tmp_path, key, value):
    path, X = predictor_file
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(str(z["__header__"]))
    header[key] = value
    out = tmp_path / "edited.npz"
    _rewrite(path, out, header=header)
    try:
        model = load_predictor(out)
    except PredictorFileError as err:
        assert str(out) in str(err)
    else:  # a harmless edit (e.g. metadata): the model still predicts
        assert np.isfinite(model.predict(X)).all()


@pytest.mark.parametrize("cut", [0, 10, 200, -50])
def test_truncated_or_random_predictor_files_name_the_path(predictor_file, tmp_path, cut):
    path, _ = predictor_file
    out = tmp_path / "cut.npz"
    data = path.read_bytes()
    out.write_bytes(np.random.default_rng(1).bytes(300) if cut == 0 else data[:cut])
    with pytest.raises(PredictorFileError, match=r"cut\.npz") as err:
        load_predictor(out)
    assert "allow_pickle" not in str(err.value)


def test_tree_arrays_with_a_cycle_are_refused_not_looped(predictor_file, tmp_path):
    path, _ = predictor_file
    with np.load(path, allow_pickle=False) as z:
        name = next(k for k in z.files if k.endswith("left"))
        left = z[name].copy()
    left[0, 1] = 0  # node 1 points back at the root
    out = tmp_path / "cycle.npz"
    _rewrite(path, out, arrays={name: left})
    with pytest.raises(PredictorFileError, match="not later nodes"):
        load_predictor(out)


# -- divergence --------------------------------------------------------------------------------


def test_loss_explosion_counts_as_divergence_with_its_reason():
    cell = get_benchmark("nb201").cell(0)
    trainer = build_trainer("nb201", cell, CFG, data=DATA, model="tiny")
    trainer.diverge_loss = 1e-3  # any real loss exceeds it
    result = trainer.run()
    assert result.status == "diverged" and "training loss" in result.reason
    assert result.steps == CFG.curve_every  # stopped at the first curve point
    train, _ = process_cache().get("cifar10", DATA)
    with pytest.raises(ValueError, match="diverge_loss must be positive"):
        Trainer(trainer.model, train, CFG, diverge_loss=-1)


def test_runs_with_non_finite_snapshots_are_skipped_and_ranked_last(tmp_path):
    rows = collect(["0", "1", "2"], space="nb201", store=tmp_path, config=CFG, model="tiny",
                   data=DATA, progress=False)
    store = RunStore(tmp_path)
    bad = rows["run_id"][1]
    path = store.run_dir(bad) / "snapshots.npz"  # as an older workbench stored such runs
    arrays = store.load_arrays(bad, "snapshots")
    arrays["weights"] = arrays["weights"].copy()
    arrays["weights"][0, 0, 0] = math.inf
    np.savez(path, **arrays)
    with pytest.warns(UserWarning, match=bad):
        data = load_dynamics(store, step=6)
    assert bad not in set(data.runs["run_id"]) and data.skipped["run_id"].tolist() == [bad]

    class MeanOfMaps:
        def predict(self, X):
            return np.asarray(X, dtype=float).mean(axis=(1, 2, 3))

    with pytest.warns(UserWarning, match=bad):
        ranked = rank_runs(store, predictor=MeanOfMaps(), step=6)
    assert ranked["run_id"].iloc[-1] == bad and math.isnan(ranked["score"].iloc[-1])
    assert ranked["rank"].iloc[-1] == 3


# -- the command line --------------------------------------------------------------------------


def _cli_cases(tmp_path: Path) -> dict[str, list[str]]:
    afile = tmp_path / "a-file"
    afile.write_text("x")
    store = str(tmp_path / "s")
    train = ["train", "--store", store, "--model", "tiny", "--steps", "2"]
    return {
        "unknown device": [*train, "--device", "gpu", "0"],
        "absent cuda": [*train, "--device", "cuda:7", "0"],
        "dataset without data": [*train, "--dataset", "cifar100", "0"],
        "unknown source": [*train, "--source", "foo", "0"],
        "missing data root": [*train, "--data-root", str(tmp_path / "nope"), "0"],
        "negative val size": [*train, "--val-size", "-5", "0"],
        "huge val size": [*train, "--val-size", "1000000000", "0"],
        "negative train size": [*train, "--train-size", "-3", "0"],
        "empty store path": ["train", "--store", "", "--model", "tiny", "0"],
        "store under a file": ["train", "--store", str(afile / "s"), "--model", "tiny", "0"],
        "unknown table id": [*train, "99999"],
        "missing cells file": ["collect", "--store", store, "--cells-file", str(afile) + "x"],
        "demo out under a file": ["demo", "--quick", "--out", str(afile / "out")],
        "verify without a store": ["verify", "--store", store],
    }


def test_cli_errors_are_one_line_exit_2_and_store_nothing(tmp_path, capsys):
    for name, argv in _cli_cases(tmp_path).items():
        assert main(argv) == 2, name
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"workbench {argv[0]}: error:"), (name, err)
        assert err.count("\n") == 0 and "Traceback" not in err, (name, err)
        assert not (tmp_path / "s" / "index.sqlite").exists(), name  # no run row written


def test_cli_shows_why_runs_failed_exits_1_and_retries(tmp_path, capsys):
    store = str(tmp_path / "s")
    argv = ["train", "--store", store, "--model", "tiny", "--steps", "2", "--train-size", "100",
            "--val-size", "64"]
    assert main([*argv, "--batch-size", "5000", "0"]) == 1
    err = capsys.readouterr().err
    assert "failed" in err and "batch_size 5000 exceeds" in err and "--retry-failed" in err
    assert main(["runs", "--store", store]) == 0
    assert "batch_size 5000 exceeds" in capsys.readouterr().out
    assert main([*argv, "--batch-size", "5000", "0"]) == 1  # failed runs are kept, not retried
    assert main([*argv, "--batch-size", "5000", "--retry-failed", "0"]) == 1  # retried: fails


@given(st.one_of(st.text(max_size=5), st.integers(), st.none(), st.floats()))
def test_train_config_flags_take_only_booleans(value):
    for name in ("nesterov", "augment", "amp", "channels_last"):
        with pytest.raises(ValueError, match=f"{name} must be True or False"):
            TrainConfig(steps=1, **{name: value})


def test_zip_member_checksums_are_checked(tmp_path):
    root = tmp_path / "store"
    store = RunStore(root)
    rid = store.add_runs([req(0)])[0]
    store.claim(rid)
    store.mark_done(rid, {}, worker=default_worker(),
                    arrays={"curves": {"x": np.arange(5000.0)}})
    path = store.run_dir(rid) / "curves.npz"
    with zipfile.ZipFile(path) as zf:
        info = zf.infolist()[0]
    raw = bytearray(path.read_bytes())
    name_len, extra_len = (int.from_bytes(raw[info.header_offset + k:info.header_offset + k + 2],
                                          "little") for k in (26, 28))
    start = info.header_offset + 30 + name_len + extra_len  # the member's compressed data
    raw[start + info.compress_size // 2] ^= 0xFF  # flip one data byte
    path.write_bytes(bytes(raw))
    assert len(store.verify(deep=True)) == 1


def test_a_search_hands_back_the_runs_it_dropped(tmp_path):
    from workbench.search import SuccessiveHalving, TrainingBackend

    recipe = TrainConfig(steps=1, batch_size=16, resize=8, snapshot_every=1, curve_every=1,
                         device="cpu")
    store = RunStore(tmp_path)
    with TrainingBackend("nb201", model="tiny", train_size=96, val_size=64, config=recipe,
                         max_budget=9, min_budget=3, checkpoints=store) as backend:
        SuccessiveHalving(backend, n=3, eta=3, seed=0).run(progress=False)
        assert (store.runs()["status"] == "running").sum() == 2  # dropped at the first rung
    runs = store.runs()
    assert sorted(runs["status"]) == ["done", "pending", "pending"]
    for rid in runs.loc[runs["status"] == "pending", "run_id"]:
        assert store.has_checkpoint(rid)  # kept: a later search continues from it
