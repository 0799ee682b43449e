"""The Ray backends on a local 2-CPU Ray instance: a collection and a two-rung Successive Halving
give the local backends' results for the same seeds, a worker killed mid-run is retried (or, with
no retries left, fails only its run) and every run is stored exactly once; without Ray installed
every module still imports and the Ray paths say how to install it. Tiny NB201 networks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from workbench.cli import main
from workbench.collect import collect, make_requests
from workbench.search import RayTrainingBackend, SuccessiveHalving, TrainingBackend
from workbench.store import RunStore
from workbench.training import Callback, TrainConfig

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("one_thread")]

CFG = TrainConfig(steps=6, batch_size=32, resize=16, snapshot_every=2, curve_every=2,
                  device="cpu", snapshot_sample=128)
DATA = {"val_size": 64, "train_size": 256}
CELLS = ["3", "5"]
SEEDS = (0, 1)
ARRAYS = ("curves", "evals", "snapshots")


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray instance with 2 CPUs for the whole module (starting one takes seconds).

    On a busy machine the raylet may miss Ray's fixed 30 s start-up wait ("The current node
    timed out during startup"): start afresh until $WORKBENCH_RAY_START_TIMEOUT seconds
    (default 300) have passed, then fail with Ray's error (a real failure is not hidden).
    """
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e .[ray]")
    if ray.is_initialized():
        ray.shutdown()
    deadline = time.monotonic() + float(os.environ.get("WORKBENCH_RAY_START_TIMEOUT", "300"))
    attempt = 0
    while True:
        attempt += 1
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception as err:
            ray.shutdown()
            if time.monotonic() > deadline:
                raise RuntimeError(f"a local Ray did not start in {attempt} attempts") from err
            time.sleep(min(2.0 * attempt, 10.0))  # let the machine's load pass
    yield ray
    ray.shutdown()


def _by_key(store: RunStore) -> pd.DataFrame:
    return store.runs().set_index("key").sort_index()


def test_collection_matches_the_local_backend_and_resumes(tmp_path, ray_local):
    local = RunStore(tmp_path / "local")
    collect(CELLS, space="nb201", store=local, config=CFG, model="tiny", data=DATA,
            seeds=SEEDS, progress=False)
    remote = RunStore(tmp_path / "ray")
    first = collect(CELLS[:1], space="nb201", store=remote, config=CFG, model="tiny", data=DATA,
                    seeds=SEEDS, backend="ray", progress=False)
    assert first["status"].tolist() == ["done", "done"]
    # A driver that died mid-collection left one run claimed ("running"): it is redone.
    reqs = make_requests(CELLS, space="nb201", config=CFG, model="tiny", data=DATA, seeds=SEEDS)
    orphan = remote.add_runs(reqs)[2]
    assert remote.claim(orphan, "ray:gone-host:1", lease=1e-3)  # a driver on another host
    time.sleep(0.01)  # ... whose lease has run out
    rows = collect(CELLS, space="nb201", store=remote, config=CFG, model="tiny", data=DATA,
                   seeds=SEEDS, backend="ray", num_cpus=1, num_gpus=0, progress=False)
    assert rows["status"].tolist() == ["done"] * 4 and rows["key"].is_unique
    assert rows["worker"].str.startswith("ray:").all()
    a, b = _by_key(local), _by_key(remote)
    assert len(b) == 4 and list(a.index) == list(b.index)  # each run exactly once
    kept = b.loc[first["key"], "finished"].to_numpy()
    assert (kept == first.set_index("key")["finished"].to_numpy()).all()  # not retrained
    # Same seeds, same results: metrics and every stored array, bit for bit.
    metric_cols = [c for c in a.columns if c.startswith(("metrics.", "final_"))]
    pd.testing.assert_frame_equal(a[metric_cols], b[metric_cols])
    assert (a["steps_done"] == b["steps_done"]).all()
    for key in a.index:
        for name in ARRAYS:
            x = local.load_arrays(a.loc[key, "run_id"], name)
            y = remote.load_arrays(b.loc[key, "run_id"], name)
            assert x.keys() == y.keys()
            for k in x:
                if k == "wall_seconds":  # a clock reading, the same only by chance
                    assert np.isfinite(x[k]).all() and np.isfinite(y[k]).all()
                    continue
                np.testing.assert_array_equal(x[k], y[k], err_msg=f"{key} {name}/{k}")


# -- Successive Halving ---------------------------------------------------------------------------

RECIPE = TrainConfig(steps=1, batch_size=16, resize=8, snapshot_every=1, curve_every=1,
                     device="cpu")
SH_ARGS = {"space": "nb201", "model": "tiny", "train_size": 96, "val_size": 64,
           "config": RECIPE, "max_budget": 9, "min_budget": 3}
TIME_COLUMNS = ("cost", "cum_cost")


def test_sh_rungs_train_in_parallel_with_the_sequential_results(tmp_path, ray_local):
    with TrainingBackend(**SH_ARGS) as seq:
        ref = SuccessiveHalving(seq, n=3, eta=3, seed=2)
        ref.run(progress=False)
    store = RunStore(tmp_path / "store")
    backend = RayTrainingBackend(**SH_ARGS, checkpoints=store, num_cpus=1, num_gpus=0)
    sh = SuccessiveHalving(backend, n=3, eta=3, seed=2)
    first = sh.step()  # one step = one rung, its three candidates trained as Ray tasks
    assert len(first) == 3 and sh.rung == 1 and not sh.done
    assert sh.step()["budget"].tolist() == [9] and sh.done
    h, r = sh.history, ref.history
    cols = [c for c in h.columns if c not in TIME_COLUMNS]
    pd.testing.assert_frame_equal(h[cols], r[cols])
    assert (h["cost"] > 0).all()
    assert sh.best()[1] == ref.best()[1]
    for ev, ev_ref in zip(sh.evaluations, ref.evaluations, strict=True):
        pd.testing.assert_frame_equal(ev.info["curves"], ev_ref.info["curves"])
        np.testing.assert_array_equal(ev.snapshots.weights, ev_ref.snapshots.weights)
        np.testing.assert_array_equal(ev.snapshots.grads, ev_ref.snapshots.grads)
    # The promoted candidate continued from the checkpoint the driver shipped to its task.
    last = sh.evaluations[-1]
    assert last.resumed_from == 3 and last.info["steps"] == 9
    assert last.info["curves"]["step"].tolist() == list(range(1, 10))
    # Checkpoints live in the driver's store: the winner's run is done at the largest budget.
    runs = store.runs()
    assert len(runs) == 3 and runs["key"].is_unique
    winner = runs.set_index("run_id").loc[last.info["run_id"]]
    assert winner["status"] == "done" and winner["steps_done"] == 9
    state, extra = store.load_checkpoint(last.info["run_id"])
    assert extra["steps"] == 9 and all(t.device.type == "cpu" for t in state["model"].values())


# -- a worker killed mid-run ----------------------------------------------------------------------


def _killer(marker: str) -> Callback:
    """A callback that SIGKILLs its own process at the first curve point of the first run to
    get there (an atomically created marker file makes it die exactly once)."""

    class DieOnce(Callback):  # defined in a function: Ray pickles it by value
        def __init__(self, path: str) -> None:
            self.path = path

        def on_curve(self, trainer, row):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)

    return DieOnce(marker)


@pytest.mark.parametrize("retries", [1, 0])
def test_killed_worker_is_retried_or_fails_only_its_run(tmp_path, ray_local, retries):
    marker = tmp_path / "died"
    rows = collect(CELLS, space="nb201", store=tmp_path / "store", config=CFG, model="tiny",
                   data=DATA, seeds=(0,), backend="ray", max_retries=retries, num_gpus=0,
                   callbacks=[_killer(str(marker))], progress=False)
    assert marker.exists()  # a worker really died
    store = RunStore(tmp_path / "store")
    assert len(store.runs()) == 2 and rows["key"].is_unique  # never a duplicated run
    if retries:
        assert rows["status"].tolist() == ["done", "done"]
    else:
        assert sorted(rows["status"]) == ["done", "failed"]
        error = rows.loc[rows["status"] == "failed", "error"].item()
        assert "max_retries=0" in error and "Error" in error


def test_cli_collects_on_ray(tmp_path, ray_local, capsys):
    code = main(["collect", "--backend", "ray", "--ray-gpus", "0", "--store", str(tmp_path),
                 "--n", "2", "--steps", "4", "--model", "tiny", "--snapshot-every", "2",
                 "--val-size", "64", "--train-size", "128", "--batch-size", "32"])
    assert code == 0 and "done" in capsys.readouterr().out
    runs = RunStore(tmp_path).runs()
    assert runs["status"].tolist() == ["done", "done"]
    assert runs["worker"].str.startswith("ray:").all()


def test_bad_ray_options_raise(tmp_path, ray_local):
    for kwargs, match in [({"num_cpus": 0}, "num_cpus"), ({"num_gpus": -1}, "num_gpus"),
                          ({"max_retries": -1}, "max_retries"), ({"backend": "dask"}, "backend")]:
        with pytest.raises(ValueError, match=match):
            collect(["1"], space="nb201", store=tmp_path, config=CFG,
                    **{"backend": "ray", **kwargs})
    with pytest.raises(ValueError, match="num_gpus"):
        RayTrainingBackend(**SH_ARGS, num_gpus="one")


# -- without Ray ----------------------------------------------------------------------------------

_NO_RAY = textwrap.dedent("""
    import importlib, pkgutil, sys
    import workbench
    names = [m.name for m in pkgutil.walk_packages(workbench.__path__, "workbench.")
             if not m.name.endswith("__main__")]
    for name in names:
        importlib.import_module(name)
    assert "ray" not in sys.modules, "a workbench module imported ray eagerly"
    sys.modules["ray"] = None  # from here on, as if Ray were not installed
    from workbench.collect import collect
    from workbench.search import RayTrainingBackend
    from workbench.training import TrainConfig
    for call in (lambda: collect(["1"], space="nb201", store=sys.argv[1],
                                 config=TrainConfig(steps=1), backend="ray"),
                 lambda: RayTrainingBackend("nb201")):
        try:
            call()
        except ImportError as exc:
            print("ImportError:", exc)
    print(len(names), "modules")
""")


def test_without_ray_every_module_imports_and_the_error_names_the_extra(tmp_path):
    out = subprocess.run([sys.executable, "-c", _NO_RAY, str(tmp_path / "store")],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    errors = [ln for ln in lines if ln.startswith("ImportError")]
    assert len(errors) == 2 and all("pip install -e .[ray]" in e for e in errors)
    assert int(lines[-1].split()[0]) > 30
    assert not (tmp_path / "store").exists()  # refused before anything was written
