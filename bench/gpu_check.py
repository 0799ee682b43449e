"""GPU check `gpu`: every CUDA path of the package, run once, with throughput against the CPU.

Sections (each reported as ``ok`` with its numbers, or with the error it raised, so one broken
path does not hide the others):

* ``training``: bf16 autocast + channels_last training (the Trainer's CUDA defaults) of NB201
  and NB101 `small` and `paper`, in mini-batches/s, against fp32 without channels_last on the
  GPU and against the CPU path;
* ``snapshots``: snapshot overhead at paper size (every 10 mini-batches, and every one), and
  the device-to-host copies per snapshot counted by the torch profiler;
* ``packed``: several small runs at once on one GPU (``collect(workers=N, device="cuda")``)
  against one after another;
* ``proxies``: every zero-cost proxy on paper-size networks and full-resolution images, GPU
  against CPU;
* ``gcn`` and ``dynamics``: GCN and DynamicsGRU fits on the GPU against the CPU;
* ``ray``: a Ray collection with fractional GPUs (``num_gpus=0.25``), when Ray is installed.

Writes ``bench/results/gpu.json``. Without CUDA it says so and exits 0.

    python bench/gpu_check.py [--sections training snapshots ...] [--batches 50]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

SECTIONS = ("training", "snapshots", "packed", "proxies", "gcn", "dynamics", "ray")
CELLS = {
    "nb101": ("0100110/0010000/0001001/0000010/0000010/0000001/0000000|input,conv3x3-bn-relu,"
              "maxpool3x3,conv3x3-bn-relu,conv3x3-bn-relu,conv1x1-bn-relu,output"),
    "nb201": ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
              "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"),
}


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    _sync()
    start = time.perf_counter()
    out = fn()
    _sync()
    return time.perf_counter() - start, out


def _trainer(space_name: str, preset: str, device: str, batches: int, **config: Any) -> Any:
    from workbench.spaces import get_space
    from workbench.training import TrainConfig, build_trainer

    space = get_space(space_name)
    cfg = TrainConfig(steps=batches + 2, batch_size=config.pop("batch_size", 128),
                      device=device, **{"snapshot_every": None, **config})
    return build_trainer(space, space.parse(CELLS[space_name]), cfg, model=preset)


def _batches_per_s(space_name: str, preset: str, device: str, batches: int,
                   **config: Any) -> float:
    """Mini-batches/s of the Trainer after two warm-up mini-batches."""
    trainer = _trainer(space_name, preset, device, batches, **config)
    trainer.run(until=2)
    seconds, _ = _timed(trainer.run)
    return batches / seconds


def section_training(args: argparse.Namespace) -> dict[str, Any]:
    """bf16 + channels_last on the GPU vs fp32 NCHW on the GPU vs the CPU path."""
    rows = []
    for name in ("nb201:small", "nb101:small", f"nb201:{args.paper}", f"nb101:{args.paper}"):
        space_name, preset = name.split(":")
        cpu_batches = max(1, args.batches // (10 if preset == args.paper else 4))
        gpu = _batches_per_s(space_name, preset, args.device, args.batches)
        fp32 = _batches_per_s(space_name, preset, args.device, args.batches, amp=False,
                              channels_last=False)
        cpu = _batches_per_s(space_name, preset, "cpu", cpu_batches)
        rows.append({"model": name, "batch_size": 128, "gpu_bf16_cl_batches_per_s": gpu,
                     "gpu_fp32_batches_per_s": fp32, "cpu_batches_per_s": cpu,
                     "gpu_over_cpu": gpu / cpu, "bf16_cl_over_fp32": gpu / fp32})
        print(f"  {name}: gpu {gpu:.1f}/s (fp32 {fp32:.1f}/s), cpu {cpu:.2f}/s", flush=True)
    return {"rows": rows}


def _host_copies(trainer: Any, steps: int) -> int:
    """Device-to-host copies the profiler sees while ``trainer`` trains ``steps`` mini-batches."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        trainer.run(until=trainer.step + steps)
        _sync()
    return sum(int(e.count) for e in prof.key_averages()
               if "memcpy" in e.key.lower() and "dtoh" in e.key.lower().replace(" ", ""))


def section_snapshots(args: argparse.Namespace) -> dict[str, Any]:
    """Snapshot overhead at paper size; device-to-host copies per snapshot."""
    rows = []
    for name in (f"nb201:{args.paper}", f"nb101:{args.paper}"):
        space_name, preset = name.split(":")
        n = args.batches
        none = _batches_per_s(space_name, preset, args.device, n)
        every10 = _batches_per_s(space_name, preset, args.device, n, snapshot_every=10)
        every1 = _batches_per_s(space_name, preset, args.device, n, snapshot_every=1)
        plain = _trainer(space_name, preset, args.device, 20)
        plain.run(until=2)
        base = _host_copies(plain, 5)
        snap = _trainer(space_name, preset, args.device, 20, snapshot_every=1)
        snap.run(until=2)
        with_snap = _host_copies(snap, 5)
        layers = snap.recorder.snapshots().n_layers if snap.recorder is not None else 0
        rows.append({"model": name, "batches_per_s_no_snapshots": none,
                     "batches_per_s_every_10": every10, "batches_per_s_every_1": every1,
                     "overhead_every_10": none / every10 - 1, "overhead_every_1": none / every1 - 1,
                     "dtoh_copies_per_step_without": base / 5,
                     "dtoh_copies_per_step_with_snapshot": with_snap / 5,
                     "extra_copies_per_snapshot": (with_snap - base) / 5, "layers": layers})
        print(f"  {name}: overhead every 10 {100 * (none / every10 - 1):.1f}%, every 1 "
              f"{100 * (none / every1 - 1):.1f}%; extra host copies per snapshot "
              f"{(with_snap - base) / 5:.1f}", flush=True)
    return {"rows": rows}


def _collect(root: Path, n: int, *, steps: int, **kwargs: Any) -> Any:
    from workbench.collect import collect
    from workbench.training import TrainConfig

    cfg = TrainConfig(steps=steps, batch_size=64, snapshot_every=10, eval_at=(steps,))
    return collect(n, space="nb201", store=root, config=cfg, data={"val_size": 1000},
                   progress=False, **kwargs)


def section_packed(args: argparse.Namespace) -> dict[str, Any]:
    """Small runs several at a time on one GPU against one after another."""
    n, steps = args.runs, args.steps
    out: dict[str, Any] = {"runs": n, "steps": steps}
    with tempfile.TemporaryDirectory() as folder:
        seq, rows = _timed(lambda: _collect(Path(folder) / "seq", n, steps=steps,
                                            device=args.device, workers=0))
        out["sequential_s"] = seq
        out["sequential_done"] = int((rows["status"] == "done").sum())
        for workers in (2, 4):
            sec, rows = _timed(lambda w=workers: _collect(Path(folder) / f"w{w}", n, steps=steps,
                                                          device=args.device, workers=w))
            out[f"workers_{workers}_s"] = sec
            out[f"workers_{workers}_done"] = int((rows["status"] == "done").sum())
            out[f"workers_{workers}_speedup"] = seq / sec
            print(f"  {n} runs: sequential {seq:.1f} s, {workers} workers {sec:.1f} s",
                  flush=True)
        if args.keep_store is not None:
            import shutil

            shutil.copytree(Path(folder) / "seq", args.keep_store, dirs_exist_ok=True)
    return out


def section_proxies(args: argparse.Namespace) -> dict[str, Any]:
    """Every proxy on paper-size networks with 32x32 images: GPU against CPU."""
    from workbench.predictors import compute_proxies, list_proxies, proxy_batch
    from workbench.spaces import get_space
    from workbench.training import seeded

    batch = proxy_batch("cifar10", 64, resize=None)
    rows = []
    for space_name in ("nb201", "nb101"):
        space = get_space(space_name)
        cell = space.parse(CELLS[space_name])
        for name in list_proxies():
            times = {}
            for key, device in (("gpu", args.device), ("cpu", "cpu")):
                with seeded(0):
                    net = space.build(cell, num_classes=batch.num_classes,
                                      **space.model_kwargs(args.paper))
                net = net.to(device)
                sec, score = _timed(lambda n=net, p=name, d=device: compute_proxies(
                    n, (batch.x, batch.y), [p], device=d))
                times[key] = (sec, float(score[name]))
            rows.append({"space": space_name, "proxy": name, "gpu_s": times["gpu"][0],
                         "cpu_s": times["cpu"][0], "gpu_over_cpu": times["cpu"][0]
                         / max(times["gpu"][0], 1e-9), "score_gpu": times["gpu"][1],
                         "score_cpu": times["cpu"][1]})
        print(f"  {space_name}: {len(list_proxies())} proxies", flush=True)
    return {"batch": 64, "model": args.paper, "rows": rows}


def section_gcn(args: argparse.Namespace) -> dict[str, Any]:
    """GCN fit of 200 NB201 table cells on the GPU against the CPU."""
    from workbench.benchmarks import get_benchmark
    from workbench.predictors import GCNPredictor, graphs_from_cells

    bench = get_benchmark("nb201")
    ids = bench.sample_ids(200, np.random.default_rng(0))
    cells = [bench.cell(i) for i in ids]
    y = np.array([bench.final_accuracy(c) for c in cells])
    X = graphs_from_cells("nb201", cells)
    out: dict[str, Any] = {"cells": len(ids), "epochs": args.epochs}
    preds = {}
    for key, device in (("gpu", args.device), ("cpu", "cpu")):
        est = GCNPredictor(epochs=args.epochs, device=device, n_threads=None)
        sec, _ = _timed(lambda e=est: e.fit(X, y))
        out[f"{key}_fit_s"] = sec
        preds[key] = est.predict(X)
    out["gpu_over_cpu"] = out["cpu_fit_s"] / out["gpu_fit_s"]
    out["prediction_corr_gpu_cpu"] = float(np.corrcoef(preds["gpu"], preds["cpu"])[0, 1])
    print(f"  GCN: gpu {out['gpu_fit_s']:.1f} s, cpu {out['cpu_fit_s']:.1f} s", flush=True)
    return out


def section_dynamics(args: argparse.Namespace) -> dict[str, Any]:
    """DynamicsGRU fit on runs collected on the GPU, GPU against CPU."""
    from workbench.predictors import DynamicsGRU, load_dynamics

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "runs"
        _collect(root, max(args.runs, 8), steps=args.steps, device=args.device, workers=0)
        data = load_dynamics(root, step=args.steps // 2)
    out: dict[str, Any] = {"runs": len(data.y), "input_shape": list(data.X.shape),
                           "epochs": args.epochs}
    for key, device in (("gpu", args.device), ("cpu", "cpu")):
        est = DynamicsGRU(epochs=args.epochs, device=device, n_threads=None)
        sec, _ = _timed(lambda e=est: e.fit(data.X, data.y))
        out[f"{key}_fit_s"] = sec
    out["gpu_over_cpu"] = out["cpu_fit_s"] / out["gpu_fit_s"]
    print(f"  GRU: gpu {out['gpu_fit_s']:.1f} s, cpu {out['cpu_fit_s']:.1f} s", flush=True)
    return out


def section_ray(args: argparse.Namespace) -> dict[str, Any]:
    """A Ray collection of small runs, each reserving a quarter of the GPU."""
    import ray

    ray.init(num_cpus=max(2, min(8, os.cpu_count() or 2)), num_gpus=1,
             include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as folder:
            sec, rows = _timed(lambda: _collect(Path(folder) / "ray", args.runs, steps=args.steps,
                                                device="auto", backend="ray", num_gpus=0.25))
    finally:
        ray.shutdown()
    done = int((rows["status"] == "done").sum())
    print(f"  Ray: {done}/{args.runs} runs done in {sec:.1f} s with num_gpus=0.25", flush=True)
    return {"runs": args.runs, "num_gpus": 0.25, "seconds": sec, "done": done}


def main(argv: list[str] | None = None) -> int:
    """Run the requested sections; 0 also when there is no CUDA (nothing to check)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    ap.add_argument("--batches", type=int, default=50, help="timed mini-batches per GPU row")
    ap.add_argument("--runs", type=int, default=8, help="runs in the packed and Ray sections")
    ap.add_argument("--epochs", type=int, default=50, help="GCN / GRU fit epochs")
    ap.add_argument("--steps", type=int, default=200, help="mini-batches of each collected run")
    ap.add_argument("--keep-store", type=Path, default=None, help=argparse.SUPPRESS)
    # --device cpu: a dry run of every code path on the CPU (nothing written), for development.
    ap.add_argument("--device", default="cuda", help=argparse.SUPPRESS)
    ap.add_argument("--paper", default="paper", help=argparse.SUPPRESS)  # the full-size preset
    args = ap.parse_args(argv)
    if args.device == "cpu":
        for name in args.sections:
            print(f"[{name}] (dry run on the CPU)", flush=True)
            globals()[f"section_{name}"](args)
        return 0
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False); "
              "nothing to check, gpu.json not written.")
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import write_results

    print(f"gpu_check on {torch.cuda.get_device_name(0)}", flush=True)
    results: dict[str, Any] = {}
    for name in args.sections:
        print(f"[{name}]", flush=True)
        start = time.perf_counter()
        try:
            results[name] = {"status": "ok", **globals()[f"section_{name}"](args)}
        except Exception as exc:
            traceback.print_exc()
            results[name] = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
        results[name]["section_seconds"] = time.perf_counter() - start
        torch.cuda.empty_cache()
    path = write_results("gpu", {"loadavg": os.getloadavg(), "sections": results})
    failed = [k for k, v in results.items() if v["status"] != "ok"]
    print(f"written {path}; sections failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
