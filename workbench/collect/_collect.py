"""Collect many training runs with snapshots into a run store, resumably and in parallel."""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import threading
import time
import warnings
from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from workbench._checks import check_int, is_int
from workbench._device import resolve_device
from workbench._threads import threads_for_runs
from workbench.benchmarks import get_benchmark
from workbench.collect._labels import run_label
from workbench.collect._ray import check_resources, collect_on_ray, import_ray
from workbench.collect._worker import execute_run
from workbench.data import process_cache
from workbench.spaces import as_rng, get_space
from workbench.store import Heartbeat, RunRequest, RunStore, default_worker
from workbench.training import Callback, TrainConfig

FINISHED = ("done", "diverged", "failed")
BACKENDS = ("local", "ray")


def make_requests(cells: Sequence[Any] | int, *, space: str, config: TrainConfig,
                  dataset: str = "cifar10", model: str | dict[str, Any] = "small",
                  seeds: Sequence[int] = (0,), data: dict[str, Any] | None = None,
                  sample_seed: int = 0) -> list[RunRequest]:
    """Run requests for ``cells`` (cell objects, strings or table ids; or an int: that many
    cells drawn from the space's benchmark table, so every run gets its table label)."""
    sp = get_space(space)
    bench = get_benchmark(space)
    if isinstance(cells, bool):
        raise ValueError(f"cells must be a list of cells or a count of cells, got {cells!r}")
    if isinstance(cells, int):
        cells = [bench.cell(i) for i in bench.sample_ids(cells, rng=as_rng(sample_seed))]
    cell_objs = [_to_cell(sp, bench, c) for c in cells]
    if not cell_objs:
        raise ValueError("no cells to collect: pass a non-empty list or a positive count")
    if not seeds or any(not is_int(s) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of ints >= 0, got {seeds!r}")
    kwargs = sp.model_kwargs(model)
    data = {"val_size": 1000, "split_seed": 0, **(data or {})}
    out = []
    for cell in cell_objs:
        label, label_name = run_label(bench, cell, dataset)
        for seed in seeds:
            train = config.replace(seed=int(seed)).to_dict()
            train.pop("device")  # where a run executes is not part of what it is
            out.append(RunRequest(
                space=space, cell_id=sp.cell_id(cell), dataset=dataset, seed=int(seed),
                cell=sp.format(cell), config={"train": train, "model": kwargs, "data": data},
                label=label, label_name=label_name,
            ))
    return out


def _to_cell(sp: Any, bench: Any, c: Any) -> Any:
    """A cell object from a cell, a cell string or a table id (ids must be in the table)."""
    if not isinstance(c, (str, int)) or isinstance(c, bool):
        return c
    if isinstance(c, str) and not re.fullmatch(bench.id_pattern, c.strip()):
        return sp.parse(c)
    return bench.cell(bench.cell_id(c))  # raises CellNotInTableError naming an unknown id


def _die_with_parent() -> None:
    """In a worker process: exit at once when the parent process ends (even by ``kill -9``),
    so no orphan keeps claiming runs; the parent's sentinel becomes ready when it is gone."""
    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        from multiprocessing.connection import wait

        wait([parent.sentinel])
        os._exit(3)

    threading.Thread(target=watch, name="parent watchdog", daemon=True).start()


def _worker_main(root: str, run_ids: list[str], device: str, threads: int, name: str,
                 checkpoint: bool, callbacks: Sequence[Callback] = (),
                 lease: float | None = None) -> None:
    """Worker process: claim runs of this collection one at a time until none is left."""
    _die_with_parent()
    torch.set_num_threads(threads)
    store = RunStore(root) if lease is None else RunStore(root, lease=lease)
    with Heartbeat(store, name):
        for rid in run_ids:
            if store.claim(rid, name):
                execute_run(store, rid, device=device, checkpoint=checkpoint,
                            callbacks=callbacks, worker=name)


def check_runtime(*, dataset: str, data: dict[str, Any] | None, device: str,
                  backend: str = "local") -> None:
    """Check the arguments that only matter when runs train (device, data) before any run is
    stored, so a typo never leaves failed runs behind: ``ValueError`` naming the value."""
    if backend == "local":
        try:
            resolve_device(device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"device {device!r}: {err}") from None
        try:
            process_cache().get(dataset, {"val_size": 1000, "split_seed": 0, **(data or {})})
        except ValueError:
            raise
        except (OSError, KeyError, RuntimeError) as err:
            raise ValueError(f"dataset {dataset!r} with data {data or {}}: "
                             f"{type(err).__name__}: {err}") from None


def collect(cells: Sequence[Any] | int, *, space: str, store: RunStore | str | os.PathLike,
            config: TrainConfig, dataset: str = "cifar10", model: str | dict[str, Any] = "small",
            seeds: Sequence[int] = (0,), data: dict[str, Any] | None = None,
            sample_seed: int = 0, workers: int = 0, device: str = "auto",
            checkpoint: bool = False, retry_failed: bool = False, repair: bool = False,
            progress: bool = True, backend: str = "local", ray_address: str | None = None,
            num_cpus: float = 1, num_gpus: float | None = None, max_retries: int = 3,
            callbacks: Sequence[Callback] = ()) -> pd.DataFrame:
    """Train every requested run not yet finished in ``store``; return their rows.

    Restartable and safe with any number of processes on one store: finished runs
    (done/diverged/failed) are kept, runs left ``running`` by a process that is gone (its lease
    expired, or a dead process on this host) are redone, runs another live process trains are
    left to it (their rows come back ``running``), and no request is ever stored twice. Device
    and data are checked before anything is written. Finished runs whose files are missing or
    damaged are reported with a warning; ``repair=True`` retrains them (see
    :meth:`~workbench.store.RunStore.verify`); ``retry_failed=True`` retrains failed and
    diverged runs.

    ``backend="local"`` (default): ``workers=0`` trains in this process; ``workers=N`` in N
    spawned processes (on CUDA, spread over the visible GPUs; several small networks per GPU are
    fine). A worker process that dies marks its run ``failed``.

    ``backend="ray"`` (needs ``pip install -e .[ray]``): every run is a Ray task reserving
    ``num_cpus`` CPUs and ``num_gpus`` GPUs (fractions let several small networks share a GPU;
    None: one GPU per run if the cluster has GPUs, else none). It uses an already initialised
    Ray, else ``ray.init(address=ray_address)`` (a running cluster's address, or None: a local
    instance). Workers train and *return* the run's arrays, metrics (and checkpoint) to this
    process, which alone writes the store: a cluster needs no shared filesystem, only
    ``workbench`` and the data on every node. A task whose worker dies (killed process, lost
    node) is retried by Ray up to ``max_retries`` times, then its run is marked ``failed``;
    each result is written exactly once, keyed by run id. ``device="auto"`` on Ray means the GPU
    the task reserved, else the CPU. ``workers`` is ignored there.

    ``callbacks``: :class:`~workbench.training.Callback` objects given to every run's trainer
    (they must pickle for worker processes and Ray; each run sees its own copy there).
    """
    workers = check_int("workers", workers, minimum=0)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "ray":
        check_resources(num_cpus, num_gpus, max_retries)
        import_ray()  # a clear error before anything is written
    callbacks = list(callbacks)
    requests = make_requests(cells, space=space, config=config, dataset=dataset, model=model,
                             seeds=seeds, data=data, sample_seed=sample_seed)
    check_runtime(dataset=dataset, data=data, device=device, backend=backend)
    store = store if isinstance(store, RunStore) else RunStore(store)
    ids = list(dict.fromkeys(store.add_runs(requests)))
    store.reset_unfinished()  # runs of a process that is gone are redone; live ones are not
    damaged = store.verify(ids, deep=False, repair=repair)
    if len(damaged) and not repair:
        warnings.warn(
            f"{len(damaged)} finished runs have missing or damaged files (e.g. run "
            f"{damaged['run_id'].iloc[0]}: {damaged['problem'].iloc[0]}); they count as "
            "finished until repaired: collect(..., repair=True) or `workbench verify --store "
            f"{store.root} --repair`", stacklevel=2)
    if retry_failed:
        for rid in _with_status(store, ids, ("failed", "diverged")):
            store.requeue(rid)
    todo = _with_status(store, ids, ("pending",))
    bar = tqdm(total=len(ids), initial=len(ids) - len(todo),
               desc=f"collect {space}" + (" (ray)" if backend == "ray" else ""),
               disable=not progress)
    try:
        if backend == "ray":
            if todo:
                collect_on_ray(store, todo, device=device, checkpoint=checkpoint,
                               callbacks=callbacks, num_cpus=num_cpus, num_gpus=num_gpus,
                               max_retries=max_retries, address=ray_address, bar=bar)
        elif workers == 0:
            me = default_worker()
            try:
                with Heartbeat(store, me):
                    for rid in todo:
                        if store.claim(rid, me):
                            execute_run(store, rid, device=device, checkpoint=checkpoint,
                                        callbacks=callbacks, worker=me)
                        bar.update(1)
            except BaseException:
                store.release(me)  # interrupted: its run is redone by the next collect()
                raise
        else:
            _run_pool(store, todo, workers, device, checkpoint, bar, callbacks)
    finally:
        bar.close()
    rows = store.runs()
    return rows[rows["run_id"].isin(ids)].reset_index(drop=True)


def _with_status(store: RunStore, ids: Sequence[str], statuses: Sequence[str]) -> list[str]:
    """The ids among ``ids`` whose run currently has one of ``statuses`` (one query)."""
    rows = store.runs(status=list(statuses))
    wanted = set(rows["run_id"])
    return [r for r in ids if r in wanted]


def _devices(device: str, workers: int) -> list[str]:
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None:
        n = torch.cuda.device_count()
        return [f"cuda:{i % n}" for i in range(workers)]
    return [str(dev)] * workers


def _run_pool(store: RunStore, todo: list[str], workers: int, device: str, checkpoint: bool,
              bar: tqdm, callbacks: Sequence[Callback] = ()) -> None:
    ctx = mp.get_context("spawn")
    devices = _devices(device, workers)
    threads = threads_for_runs(workers)  # affinity, cgroup quota, env, load
    procs: dict[str, mp.process.BaseProcess] = {}
    serial = 0

    def start(slot: int) -> None:
        nonlocal serial
        serial += 1
        name = f"{default_worker()}/w{slot}.{serial}"
        p = ctx.Process(target=_worker_main, args=(str(store.root), todo, devices[slot],
                                                   threads, name, checkpoint, callbacks,
                                                   store.lease),
                        daemon=True)
        p.start()
        procs[name] = p

    for slot in range(min(workers, len(todo))):
        start(slot)
    done_before = 0
    try:
        while procs:
            time.sleep(0.5)
            for name, p in list(procs.items()):
                if p.is_alive():
                    continue
                del procs[name]
                if p.exitcode:  # crashed: fail the run it held, keep the collection going
                    held = store.runs(status="running")
                    for rid in held.loc[held["worker"] == name, "run_id"]:
                        store.mark_failed(rid, f"worker process {name} exited with code "
                                               f"{p.exitcode} while training this run",
                                          worker=name)
                    if _with_status(store, todo, ("pending",)):
                        start(int(name.rsplit("/w", 1)[1].split(".")[0]))
            finished = len(_with_status(store, todo, FINISHED))
            bar.update(finished - done_before)
            done_before = finished
    except BaseException:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            p.join(5)
        store.release(default_worker())  # interrupted: its workers' runs are redone next time
        raise
