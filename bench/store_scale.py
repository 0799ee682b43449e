"""Benchmark `store_scale`: how the run store's costs grow with the number of runs it holds.

For each size N a fresh store gets N pending runs (one ``add_runs`` call), then at that size:
``claim`` and ``mark_done`` (with the arrays of a real run: curves, evals and snapshots of NB201
`small`'s real shape, 20 snapshots x 65 layers) of a sample of K runs, one at a time;
``claim_next``; ``runs()`` listing all N; ``counts()``; ``load_features`` of the K finished runs.
Only the K sampled runs get array files (writing 100k snapshot files would take tens of GB and
hours on the 2-core machine); the other runs stay pending rows, which is what the listing and
index lookups scale with. Reports each step's cost per run (per call, or per listed row) and
its growth factor between sizes: flat per-run cost means the step is linear in N.

    python bench/store_scale.py [--sizes 1000 10000 100000] [--sample 100]
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from workbench.features import FEATURE_NAMES, SnapshotRecorder, Snapshots
from workbench.spaces import get_space, parameterised_layers
from workbench.store import RunRequest, RunStore

SNAPSHOTS = 20  # steps=200 with snapshot_every=10, as bench/_dynamics_runs.py collects
MAX_LAYERS = 65  # TrainConfig.snapshot_layers
CONFIG = {"steps": 200, "batch_size": 64, "lr": 0.05, "snapshot_every": 10, "seed": 0}


def run_arrays(seed: int = 0, snapshots: int = SNAPSHOTS,
               max_layers: int = MAX_LAYERS) -> dict[str, dict[str, np.ndarray]]:
    """Synthetic arrays of one run with the real names and shapes (NB201 `small` layers)."""
    import torch

    space = get_space("nb201")
    net = space.build(space.sample(np.random.default_rng(seed)), **space.model_kwargs("small"))
    layers = parameterised_layers(net, torch.zeros(1, 3, 32, 32))
    rec = SnapshotRecorder(layers, snapshot_every=10, max_layers=max_layers, sample_size=1024,
                           seed=seed)
    n_real = len(rec.layer_names)
    rng = np.random.default_rng(seed)
    n_feat = len(FEATURE_NAMES)
    data = rng.standard_normal((2, snapshots, max_layers, n_feat)).astype(np.float32)
    data[:, :, n_real:] = 0
    snaps = Snapshots(weights=data[0], grads=data[1], mask=np.arange(max_layers) < n_real,
                      steps=np.arange(1, snapshots + 1, dtype=np.int64) * 10,
                      layer_names=rec.layer_names, layer_kinds=rec.layer_kinds,
                      snapshot_every=10, sample_size=1024)
    steps = np.arange(10, 10 * snapshots + 1, 10, dtype=np.int64)
    curves = {"step": steps, "loss": rng.random(len(steps)), "acc": rng.random(len(steps)),
              "lr": np.full(len(steps), 0.05)}
    evals = {"step": np.array([100, 200], np.int64), "val_loss": rng.random(2),
             "val_acc": rng.random(2)}
    return {"curves": curves, "evals": evals, "snapshots": snaps.to_arrays()}


def requests(n: int) -> list[RunRequest]:
    """``n`` distinct NB201 run requests (cell ids are table-style integers)."""
    return [RunRequest(space="nb201", cell_id=str(i), dataset="cifar10", config=CONFIG,
                       seed=0, cell=f"cell-{i}") for i in range(n)]


def _per(seconds: float, count: int) -> float:
    return seconds / max(1, count)


def measure(root: Path, n: int, sample: int, arrays: dict[str, dict[str, np.ndarray]]
            ) -> dict[str, Any]:
    """Seconds (total and per run) of each store step on a fresh store of ``n`` runs."""
    store = RunStore(root)
    t = time.perf_counter()
    ids = store.add_runs(requests(n))
    add = time.perf_counter() - t
    pick = [ids[int(i)] for i in np.linspace(0, n - 1, min(sample, n))]
    t = time.perf_counter()
    claimed = sum(store.claim(rid, "bench:1") for rid in pick)
    claim = time.perf_counter() - t
    t = time.perf_counter()
    for rid in pick:
        store.mark_done(rid, {"train_loss": 1.0, "val_acc": 0.5}, steps=200, worker="bench:1",
                        arrays=arrays)
    finish = time.perf_counter() - t
    next_calls = min(10, n - len(pick))
    t = time.perf_counter()
    for _ in range(next_calls):
        store.claim_next("bench:2")
    claim_next = time.perf_counter() - t
    t = time.perf_counter()
    listed = store.runs()
    runs = time.perf_counter() - t
    t = time.perf_counter()
    counts = store.counts()
    count = time.perf_counter() - t
    t = time.perf_counter()
    feats = store.load_features(pick)
    features = time.perf_counter() - t
    assert claimed == len(pick) and len(listed) == n and counts["done"] == len(pick)
    assert len(feats.run_ids) == len(pick)
    return {
        "runs": n, "sampled": len(pick),
        "seconds": {"add_runs": add, "claim": claim, "mark_done": finish,
                    "claim_next": claim_next, "runs": runs, "counts": count,
                    "load_features": features},
        "per_run_ms": {"add_runs": 1e3 * _per(add, n), "claim": 1e3 * _per(claim, len(pick)),
                       "mark_done": 1e3 * _per(finish, len(pick)),
                       "claim_next": 1e3 * _per(claim_next, next_calls),
                       "runs": 1e3 * _per(runs, n), "counts": 1e3 * count,
                       "load_features": 1e3 * _per(features, len(pick))},
        "store_mb": sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 2**20,
    }


def growth(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-run cost ratio between consecutive sizes (1: linear; ~10 per 10x size: quadratic)."""
    out = []
    for a, b in itertools.pairwise(rows):
        out.append({"from": a["runs"], "to": b["runs"],
                    **{k: b["per_run_ms"][k] / a["per_run_ms"][k] if a["per_run_ms"][k] else None
                       for k in a["per_run_ms"]}})
    return out


def main() -> None:
    from _common import write_results

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--sample", type=int, default=100)
    ap.add_argument("--root", type=Path, default=None, help="where to build the stores")
    args = ap.parse_args()
    arrays = run_arrays()
    load_before = os.getloadavg()
    rows = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(dir=args.root) as folder:
            rows.append(measure(Path(folder), n, args.sample, arrays))
        r = rows[-1]
        print(f"N={n}: " + ", ".join(f"{k} {v:.3f} ms/run" for k, v in r["per_run_ms"].items())
              + f"; runs() {r['seconds']['runs']:.2f} s", flush=True)
    path = write_results("store_scale", {
        "sizes": args.sizes, "sample": args.sample,
        "snapshot_shape": list(arrays["snapshots"]["weights"].shape),
        "note": "array files only for the sampled runs; the rest are pending rows",
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "rows": rows,
        "growth": growth(rows),
        "goal": "per-run cost flat in N; runs() of 100k runs < 1 s"})
    steps = list(rows[0]["per_run_ms"])
    print("| runs | " + " | ".join(f"{s} ms" for s in steps) + " | runs() s |")
    print("|---|" + "---|" * (len(steps) + 1))
    for r in rows:
        print(f"| {r['runs']} | " + " | ".join(f"{r['per_run_ms'][s]:.3f}" for s in steps)
              + f" | {r['seconds']['runs']:.2f} |")
    print(f"written {path}")


if __name__ == "__main__":
    main()
