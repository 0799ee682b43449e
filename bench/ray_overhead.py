"""Benchmark `ray`: what collecting on Ray costs against the local backend, and how it scales.

One process times the same 16-run collection (NB201 `tiny` networks, 16x16 inputs, ~50
mini-batches each, the bundled CIFAR-10 sample) three ways, each into a fresh store: the local
backend in this process (workers=0), the local backend with 2 worker processes, and Ray on a local
2-CPU instance (one task per run, 1 CPU each; started before the timing, its start-up reported
apart). Ray's own cost per task is measured with no-op tasks (one at a time: latency; 16 at once:
throughput), and the driver's cost of writing one run's outcome into the store is timed.

A simulation then schedules the measured per-run durations (claim to finish in the workers=0
collection) plus the per-task overhead onto N identical workers (list scheduling in submission
order; the driver writes results one at a time, so it caps the rate) for N in 1, 2, 4, 8, 16,
64: for these 16 runs, and for a 1,024-run collection whose durations are drawn (seeded) from
the measured ones.

    OMP_NUM_THREADS=1 python bench/ray_overhead.py [--runs 16] [--steps 50] [--workers 2]
"""

from __future__ import annotations

import argparse
import heapq
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray
from _common import write_results

from workbench.collect import collect
from workbench.store import RunStore
from workbench.training import TrainConfig

SIM_WORKERS = (1, 2, 4, 8, 16, 64)
BIG = 1024  # runs in the simulated large collection


def _timed_collect(root: Path, args: argparse.Namespace, **kwargs: Any) -> tuple[float, Any]:
    """Wall seconds of one collection into a fresh store under ``root``, and its rows."""
    cfg = TrainConfig(steps=args.steps, batch_size=64, resize=16, snapshot_every=10,
                      curve_every=10, device="cpu")
    start = time.perf_counter()
    rows = collect(args.runs, space="nb201", store=root, config=cfg, model="tiny",
                   data={"val_size": 500}, sample_seed=0, progress=False, **kwargs)
    seconds = time.perf_counter() - start
    if not (rows["status"] == "done").all():
        raise RuntimeError(f"collection into {root} did not finish: {rows['status'].tolist()}")
    return seconds, rows


@ray.remote(num_cpus=1)
def _noop(x: int) -> int:
    """A task that does nothing: what remains is Ray's scheduling and transfer cost."""
    return x


def _task_overhead(n: int) -> dict[str, float]:
    """Seconds per no-op task, one at a time (latency) and ``n`` at once (per task)."""
    ray.get([_noop.remote(i) for i in range(4)])  # warm the workers
    start = time.perf_counter()
    for i in range(n):
        ray.get(_noop.remote(i))
    serial = (time.perf_counter() - start) / n
    start = time.perf_counter()
    ray.get([_noop.remote(i) for i in range(n)])
    batch = (time.perf_counter() - start) / n
    return {"noop_latency_s": serial, "noop_batch_s_per_task": batch}


def _write_cost(source: RunStore, run_id: str, root: Path, repeats: int = 8) -> float:
    """Seconds the driver spends storing one run's arrays and final status."""
    arrays = {name: source.load_arrays(run_id, name) for name in source.array_names(run_id)}
    row = source.get(run_id)
    store = RunStore(root)
    from workbench.store import RunRequest

    ids = store.add_runs([RunRequest(space="nb201", cell_id=str(i), dataset="cifar10", seed=0,
                                     cell=row["cell"], config={"i": i}) for i in range(repeats)])
    start = time.perf_counter()
    for rid in ids:
        store.claim(rid, "bench")
        for name, a in arrays.items():
            store.save_arrays(rid, name, a)
        store.mark_done(rid, row["metrics"], steps=row["steps_done"],
                        wall_seconds=row["wall_seconds"])
    return (time.perf_counter() - start) / repeats


def list_schedule(durations: list[float], workers: int, overhead: float, write: float) -> float:
    """Makespan of running ``durations`` in order on ``workers`` identical workers, each run
    costing ``overhead`` more, with the driver storing finished runs one at a time."""
    free = [0.0] * workers
    finish = []
    for d in durations:
        start = heapq.heappop(free)
        end = start + overhead + d
        heapq.heappush(free, end)
        finish.append(end)
    driver = 0.0
    for end in sorted(finish):  # results are written in the order they arrive
        driver = max(driver, end) + write
    return driver


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2, help="local worker processes and Ray CPUs")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))

    start = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - start
    overhead = _task_overhead(args.runs)

    # Warm-up: decode the data and build a network once in this process (as a worker does).
    _timed_collect(tmp / "warm", argparse.Namespace(runs=1, steps=2))
    local0, rows0 = _timed_collect(tmp / "local0", args)
    local_n, rows_n = _timed_collect(tmp / "localN", args, workers=args.workers)
    on_ray, rows_ray = _timed_collect(tmp / "ray", args, backend="ray", num_cpus=1, num_gpus=0)
    ray.shutdown()

    durations = (rows0["finished"] - rows0["started"]).dt.total_seconds().tolist()
    train_s = rows0["wall_seconds"].tolist()
    write_s = _write_cost(RunStore(tmp / "local0"), rows0["run_id"].iloc[0], tmp / "write")
    per_task = overhead["noop_latency_s"]
    same = bool(np.array_equal(rows0["final_val_acc"].to_numpy(),
                               rows_ray["final_val_acc"].to_numpy()))
    big = np.random.default_rng(0).choice(durations, size=BIG).tolist()
    base, big_base = (list_schedule(d, 1, 0.0, write_s) for d in (durations, big))
    sim = []
    for n in SIM_WORKERS:
        wall, big_wall = (list_schedule(d, n, per_task, write_s) for d in (durations, big))
        sim.append({"workers": n, "wall_s": wall, "speedup": base / wall,
                    "big_wall_s": big_wall, "big_speedup": big_base / big_wall,
                    "big_driver_busy": BIG * write_s / big_wall,
                    "overhead_share": args.runs * per_task / (n * wall)})
    measured = [
        {"backend": "local, in this process (workers=0)", "processes": 1, "wall_s": local0,
         "mean_train_s": float(rows0["wall_seconds"].mean())},
        {"backend": f"local, {args.workers} worker processes", "processes": args.workers,
         "wall_s": local_n, "mean_train_s": float(rows_n["wall_seconds"].mean())},
        {"backend": f"ray, local instance with {args.workers} CPUs (1 CPU per run)",
         "processes": args.workers, "wall_s": on_ray,
         "mean_train_s": float(rows_ray["wall_seconds"].mean())},
    ]
    for m in measured:
        m["runs_per_min"] = 60 * args.runs / m["wall_s"]
        m["vs_workers0"] = local0 / m["wall_s"]
    predicted = list_schedule(durations, args.workers, per_task, write_s)
    path = write_results("ray", {
        "runs": args.runs, "steps": args.steps, "model": "nb201 tiny, 16x16, batch 64",
        "ray_version": ray.__version__, "ray_start_s": ray_start, **overhead,
        "driver_write_s_per_run": write_s, "run_seconds": durations,
        "train_seconds": train_s, "mean_run_s": float(np.mean(durations)),
        "ray_matches_local": same, "measured": measured,
        "predicted_ray_wall_s": predicted, "simulation": sim,
    })

    print(f"{args.runs} runs x {args.steps} mini-batches (NB201 tiny, 16x16), mean run "
          f"{np.mean(durations):.2f} s; Ray start {ray_start:.1f} s (not in the walls below)\n")
    print("| backend | processes | wall (s) | runs/min | speed-up vs workers=0 | "
          "training s/run |")
    print("|---|---|---|---|---|---|")
    for m in measured:
        print(f"| {m['backend']} | {m['processes']} | {m['wall_s']:.1f} | "
              f"{m['runs_per_min']:.1f} | {m['vs_workers0']:.2f}x | {m['mean_train_s']:.2f} |")
    print(f"\nRay per task: {overhead['noop_latency_s'] * 1e3:.1f} ms latency (one at a time), "
          f"{overhead['noop_batch_s_per_task'] * 1e3:.1f} ms each in a batch; driver write "
          f"{write_s * 1e3:.1f} ms per run; model at {args.workers} workers: {predicted:.1f} s "
          f"(measured {on_ray:.1f} s); same accuracies as local: {same}\n")
    print(f"| workers | {args.runs} runs: wall (s) | speed-up | {BIG} runs: wall (s) | "
          "speed-up | driver busy |")
    print("|---|---|---|---|---|---|")
    for r in sim:
        print(f"| {r['workers']} | {r['wall_s']:.1f} | {r['speedup']:.2f}x | "
              f"{r['big_wall_s']:.0f} | {r['big_speedup']:.1f}x | "
              f"{100 * r['big_driver_busy']:.0f}% |")
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
