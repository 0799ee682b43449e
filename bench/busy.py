"""Benchmark `busy`: one short training alone, then beside CPU-bound competitor processes.

Each training is a fresh process (NB201 `small`, bundled CIFAR-10 sample, batch 64) timed from
the first to the last mini-batch. "old" leaves torch's default thread count (one per core,
``WORKBENCH_THREADS=keep``); "new" lets the Trainer choose (``workbench._threads``: affinity,
cgroup quota, running processes). Competitors are Python busy loops and torch matmul loops that
start before the training and stop after it. Reports each slowdown (with / alone) per mode.

    python bench/busy.py [--batches 20] [--competitors 2] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import write_results

HERE = Path(__file__).resolve()
CELL = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
        "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
MODES = {"old": "keep", "new": "auto"}

_SPIN = "while True:\n    pass\n"
_MATMUL = ("import torch\ntorch.set_num_threads(1)\na = torch.randn(256, 256)\n"
           "while True:\n    a = torch.tanh(a @ a)\n")


def child(batches: int) -> None:
    """Train ``batches`` mini-batches in this process; print seconds and threads as JSON."""
    import torch

    from workbench.spaces import get_space
    from workbench.training import TrainConfig, build_trainer

    space = get_space("nb201")
    cfg = TrainConfig(steps=batches + 1, batch_size=64, snapshot_every=None, device="cpu")
    trainer = build_trainer(space, space.parse(CELL), cfg)
    trainer.run(until=1)  # warm-up step: allocations, oneDNN primitive creation
    start = time.perf_counter()
    trainer.run()
    seconds = time.perf_counter() - start
    threads = trainer.threads if trainer.threads is not None else torch.get_num_threads()
    print(json.dumps({"seconds": seconds, "threads": threads}))


def _train(mode: str, batches: int) -> dict[str, float]:
    env = {**os.environ, "WORKBENCH_THREADS": MODES[mode]}
    env.pop("OMP_NUM_THREADS", None)  # torch's own default for "old"
    out = subprocess.run([sys.executable, str(HERE), "--child", "--batches", str(batches)],
                         env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _competitors(n: int) -> list[subprocess.Popen]:
    codes = [_SPIN if i % 2 == 0 else _MATMUL for i in range(n)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env) for code in codes]
    time.sleep(1.0)  # let them start and take the cores
    return procs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--competitors", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.batches)
        return
    load_before = os.getloadavg()
    alone: dict[str, list[dict]] = {m: [] for m in MODES}
    busy: dict[str, list[dict]] = {m: [] for m in MODES}
    for _ in range(args.repeats):
        for mode in MODES:
            alone[mode].append(_train(mode, args.batches))
        procs = _competitors(args.competitors)
        try:
            for mode in MODES:
                busy[mode].append(_train(mode, args.batches))
            load_busy = os.getloadavg()
        finally:
            for p in procs:
                p.kill()
                p.wait()
    rows = []
    for mode in MODES:
        a = statistics.median(r["seconds"] for r in alone[mode])
        b = statistics.median(r["seconds"] for r in busy[mode])
        rows.append({"mode": mode, "workbench_threads": MODES[mode],
                     "threads_alone": alone[mode][0]["threads"],
                     "threads_busy": busy[mode][0]["threads"],
                     "seconds_alone": a, "seconds_busy": b, "slowdown": b / a})
    path = write_results("busy", {
        "batches": args.batches, "competitors": args.competitors, "repeats": args.repeats,
        "model": "nb201:small", "loadavg_before": load_before, "loadavg_busy": load_busy,
        "rows": rows, "goal": f"slowdown <= 3x with {args.competitors} competitors (new)"})
    print(f"| threads | alone s | with {args.competitors} competitors s | slowdown |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} ({r['threads_alone']} / {r['threads_busy']} threads) | "
              f"{r['seconds_alone']:.2f} | {r['seconds_busy']:.2f} | {r['slowdown']:.1f}x |")
    print(f"load average before {load_before}, while busy {load_busy}; written {path}")


if __name__ == "__main__":
    main()
