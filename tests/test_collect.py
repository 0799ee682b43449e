"""Collection: storing runs with snapshots, resuming after SIGKILL, divergence and failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from workbench.collect import collect, make_requests
from workbench.features import Snapshots
from workbench.store import RunStore
from workbench.training import TrainConfig

CFG = TrainConfig(steps=6, batch_size=32, resize=16, snapshot_every=2, curve_every=2,
                  device="cpu", snapshot_sample=128)
DATA = {"val_size": 64, "train_size": 256}


def test_collect_stores_runs_with_snapshots_and_labels(tmp_path):
    rows = collect(3, space="nb201", store=tmp_path, config=CFG, model="tiny", data=DATA,
                   progress=False)
    assert rows["status"].tolist() == ["done"] * 3
    assert rows["key"].is_unique and rows["label"].notna().all()
    store = RunStore(tmp_path)
    snaps = Snapshots.from_arrays(store.load_arrays(rows["run_id"][0], "snapshots"))
    assert snaps.steps.tolist() == [2, 4, 6]
    feats = store.load_features(list(rows["run_id"]))
    assert feats.arrays["weights"].shape[:2] == (3, 3)
    # A second call finds everything finished: nothing is trained or stored again.
    before = store.runs()
    again = collect(3, space="nb201", store=tmp_path, config=CFG, model="tiny", data=DATA,
                    progress=False)
    assert list(again["run_id"]) == list(rows["run_id"])
    assert store.runs()["finished"].equals(before["finished"])


def test_divergence_and_failure_do_not_stop_the_collection(tmp_path):
    bad_lr = CFG.replace(lr=1e6, grad_clip=None, momentum=0.0)
    cells = ["0", "1"]
    rows = collect(cells, space="nb201", store=tmp_path, config=bad_lr, model="tiny",
                   data=DATA, progress=False)
    assert set(rows["status"]) <= {"diverged", "done"} and "diverged" in set(rows["status"])
    div = rows[rows["status"] == "diverged"].iloc[0]
    snaps = Snapshots.from_arrays(RunStore(tmp_path).load_arrays(div["run_id"], "snapshots"))
    assert len(snaps) == div["steps_done"] // 2  # the snapshots before divergence are kept
    broken = collect(cells, space="nb201", store=tmp_path, config=CFG,
                     model={"channels": 0, "cells_per_stage": 1}, data=DATA, progress=False)
    assert broken["status"].tolist() == ["failed", "failed"]
    assert all("channels" in e for e in broken["error"])
    ok = collect(cells, space="nb201", store=tmp_path, config=CFG, model="tiny", data=DATA,
                 progress=False)
    assert ok["status"].tolist() == ["done", "done"]


def test_requests_validate_and_key_runs(tmp_path):
    reqs = make_requests(["1", "2"], space="nb201", config=CFG, seeds=(0, 1), model="tiny")
    assert len({r.key for r in reqs}) == 4
    with pytest.raises(ValueError, match="seeds"):
        make_requests(["1"], space="nb201", config=CFG, seeds=(-1,))
    with pytest.raises(ValueError, match="huge"):
        make_requests(["1"], space="nb201", config=CFG, model="huge")
    with pytest.raises(ValueError, match="workers"):
        collect(["1"], space="nb201", store=tmp_path, config=CFG, workers=-1)


_SCRIPT = textwrap.dedent("""
    import sys
    from workbench.collect import collect
    from workbench.training import TrainConfig
    cfg = TrainConfig(steps=40, batch_size=32, resize=16, snapshot_every=10, device="cpu",
                      snapshot_sample=128)
    collect(["10", "11", "12", "13"], space="nb201", store=sys.argv[1], config=cfg,
            model="tiny", data={"val_size": 64, "train_size": 256}, progress=False)
""")


def test_sigkilled_collection_resumes_and_finishes_each_run_once(tmp_path):
    store_dir = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, str(store_dir)],
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # kill -9 once one run is done and one is running
            if (store_dir / "index.sqlite").exists():
                counts = RunStore(store_dir).counts()
                if counts.get("done", 0) >= 1 and counts.get("running", 0) >= 1:
                    break
            if proc.poll() is not None:
                pytest.fail("the collection finished before it could be killed")
            time.sleep(0.05)
        else:
            pytest.fail("collection made no progress")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    store = RunStore(store_dir)
    killed = store.runs()
    assert (killed["status"] == "running").sum() == 1
    done_before = killed.loc[killed["status"] == "done", ["run_id", "finished"]]
    cfg = TrainConfig(steps=40, batch_size=32, resize=16, snapshot_every=10, device="cpu",
                      snapshot_sample=128)
    rows = collect(["10", "11", "12", "13"], space="nb201", store=store_dir, config=cfg,
                   model="tiny", data=DATA, progress=False)
    assert rows["status"].tolist() == ["done"] * 4
    final = store.runs()
    assert len(final) == 4 and final["key"].is_unique  # exactly once
    kept = final.set_index("run_id").loc[done_before["run_id"], "finished"]
    assert (kept.to_numpy() == done_before["finished"].to_numpy()).all()  # not retrained


@pytest.mark.slow
def test_worker_processes_collect_in_parallel(tmp_path):
    rows = collect(4, space="nb201", store=tmp_path, config=CFG, model="tiny", data=DATA,
                   workers=2, progress=False)
    assert rows["status"].tolist() == ["done"] * 4
    assert rows["worker"].nunique() == 2


@pytest.mark.slow
def test_worker_killed_mid_run_fails_that_run_and_the_rest_finish(tmp_path):
    import multiprocessing as mp
    import threading

    cfg = CFG.replace(steps=80, snapshot_every=20)
    killed = []

    def killer():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            if (tmp_path / "index.sqlite").exists() and \
                    RunStore(tmp_path).counts().get("running", 0) >= 2:
                victim = mp.active_children()[0]
                os.kill(victim.pid, signal.SIGKILL)
                killed.append(victim.pid)
            time.sleep(0.05)

    t = threading.Thread(target=killer)
    t.start()
    rows = collect(4, space="nb201", store=tmp_path, config=cfg, model="tiny", data=DATA,
                   workers=2, progress=False)
    t.join()
    assert killed
    assert sorted(rows["status"]) == ["done", "done", "done", "failed"]
    failed = rows[rows["status"] == "failed"].iloc[0]
    assert "exited with code -9" in failed["error"]
    assert len(RunStore(tmp_path).runs()) == 4
