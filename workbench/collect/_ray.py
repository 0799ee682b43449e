"""Collecting on a Ray cluster: one Ray task per run, the driver owns the run store; and the
Ray helpers every Ray user in the workbench shares (exported by ``workbench.collect``: the
import with an install hint, connecting, task resources, threads, devices, CPU copies).

Workers train and *return* each run's outcome (curves, snapshots, evals, metrics, optional
checkpoint); the driver writes it into the store. Only the driver needs the store's filesystem,
so a multi-node cluster without a shared filesystem works. Ray is imported only here, lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from workbench._checks import check_int, check_real
from workbench.collect._worker import RunOutcome, record_outcome, train_run
from workbench.store import Heartbeat, RunStore, default_worker
from workbench.training import Callback

INSTALL_HINT = "pip install -e .[ray]"
#: The store columns a worker needs to train a run (the rest stays on the driver).
TASK_FIELDS = ("space", "cell", "dataset", "config")


def import_ray(what: str = "backend='ray'") -> ModuleType:
    """The ``ray`` module, or an ImportError saying how to install it (the core needs no Ray)."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"{what} needs Ray, which is not installed here: "
                          f"{INSTALL_HINT} (or pip install 'nas-workbench[ray]')") from exc
    return ray


def init_ray(address: str | None = None) -> ModuleType:
    """Ray, connected: an already initialised Ray is used as it is (``address`` is then
    ignored); otherwise ``ray.init(address=address)``: a cluster's address (``"auto"``, a
    ``host:port`` or ``ray://host:10001``), or None for ``$RAY_ADDRESS`` or a new local one."""
    ray = import_ray()
    if not ray.is_initialized():
        ray.init(address=address)
    return ray


def check_resources(num_cpus: Any, num_gpus: Any, max_retries: Any) -> None:
    """ValueError unless CPUs > 0, GPUs >= 0 or None (fractions allowed), retries an int >= 0."""
    check_real("num_cpus (CPUs per run)", num_cpus, minimum=0, inclusive="neither")
    check_real("num_gpus (GPUs per run; fractions share a GPU)", num_gpus, minimum=0,
               allow_none=True)
    check_int("max_retries", max_retries, minimum=0)


def default_gpus(ray: ModuleType, num_gpus: float | None) -> float:
    """GPUs per task: ``num_gpus``, or one when the cluster has GPUs now and zero otherwise."""
    if num_gpus is not None:
        return float(num_gpus)
    return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def task_device(device: str) -> str:
    """The device a Ray task trains on: ``"auto"`` is the GPU Ray reserved for the task (Ray
    points ``CUDA_VISIBLE_DEVICES`` at it), else MPS or the CPU, never an unreserved GPU."""
    if device != "auto":
        return device
    import ray

    from workbench._device import resolve_device

    if ray.get_gpu_ids():
        return "cuda"
    return "mps" if resolve_device("auto").type == "mps" else "cpu"


def remote_options(ray: ModuleType, num_cpus: float, num_gpus: float | None,
                   max_retries: int) -> dict[str, Any]:
    """``ray.remote`` options of one training task: its resources and system-failure retries
    (a Python exception is never retried: it is the run's or the candidate's own failure)."""
    return {"num_cpus": num_cpus, "num_gpus": default_gpus(ray, num_gpus),
            "max_retries": max_retries, "retry_exceptions": False}


def threads_for(num_cpus: float) -> int:
    """Torch threads of a task reserving ``num_cpus`` CPUs (at least one)."""
    return max(1, int(num_cpus))


def to_cpu(obj: Any) -> Any:
    """``obj`` with every tensor inside (dicts, lists, tuples) moved to the CPU, so a state made
    on a worker's GPU unpickles on a driver without one."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def _train_task(rec: dict[str, Any], device: str, checkpoint: bool,
                callbacks: Sequence[Callback], threads: int) -> RunOutcome:
    """The body of a run's Ray task: train with this worker's cached data, return the outcome."""
    import torch

    torch.set_num_threads(threads)
    outcome = train_run(rec, device=task_device(device), checkpoint=checkpoint,
                        callbacks=callbacks)
    if outcome.checkpoint is not None:
        outcome.checkpoint = to_cpu(outcome.checkpoint)
    return outcome


def collect_on_ray(store: RunStore, todo: Sequence[str], *, device: str, checkpoint: bool,
                   callbacks: Sequence[Callback], num_cpus: float, num_gpus: float | None,
                   max_retries: int, address: str | None, bar: Any) -> None:
    """Train the pending runs ``todo`` as Ray tasks and store each outcome as it arrives.

    The driver claims every run before submitting it and writes each result exactly once,
    keyed by run id. A task whose worker dies is retried by Ray up to ``max_retries`` times,
    then its run is marked ``failed`` with Ray's error. Interrupted (Ctrl-C, an error here):
    the tasks are cancelled and the runs put back to ``pending`` for the next collect().
    """
    ray = init_ray(address)
    task = ray.remote(**remote_options(ray, num_cpus, num_gpus, max_retries))(_train_task)
    me = f"ray:{default_worker()}"
    shared = ray.put(list(callbacks))
    threads = threads_for(num_cpus)
    owner: dict[Any, str] = {}  # object ref -> run id
    beat = Heartbeat(store, me).__enter__()  # the driver holds every claim of its tasks
    try:
        for rid in todo:
            if not store.claim(rid, me):  # taken by another collector meanwhile
                bar.update(1)
                continue
            rec = store.get(rid)
            ref = task.remote({k: rec[k] for k in TASK_FIELDS}, device, checkpoint, shared,
                              threads)
            owner[ref] = rid
        waiting = list(owner)
        while waiting:  # in batches: one wait per result is quadratic in a long collection
            ready, waiting = ray.wait(waiting, num_returns=min(len(waiting), 64), timeout=1.0)
            for ref in ready:
                _store_result(ray, store, owner.pop(ref), ref, max_retries, me)
                bar.update(1)
    except BaseException:
        for ref in owner:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # already finished or gone: nothing to stop
                pass
        store.release(me)  # interrupted: its runs are redone on the next collect()
        raise
    finally:
        beat.__exit__()


def _store_result(ray: ModuleType, store: RunStore, rid: str, ref: Any, max_retries: int,
                  me: str) -> None:
    """Write the outcome behind ``ref`` as run ``rid``; a task Ray gave up on marks it failed.
    A run this driver no longer holds is left alone (see ``record_outcome``)."""
    try:
        outcome = ray.get(ref)
    except ray.exceptions.RayError as exc:
        outcome = RunOutcome(status="failed", error=(
            f"Ray gave up on this run's task (worker deaths are retried up to "
            f"max_retries={max_retries} times): {type(exc).__name__}: {exc}"))
    try:
        record_outcome(store, rid, outcome, worker=me)
    except Exception as exc:  # the store refused the result: the run's failure, not ours
        if store.holds(rid, me):
            store.mark_failed(rid, exc, worker=me)
