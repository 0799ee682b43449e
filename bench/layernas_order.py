"""Benchmark `layernas_order`: how much LayerNAS's answer under a latency target depends on the
order it searches NAS-Bench-201's six edges in, a convention the paper leaves open.

Same settings as ``bench/hardware.py`` (NB201 CIFAR-10, HW-NAS-Bench latency on six devices,
target T = the q-quantile of the device's latencies, "top 1 %" of the feasible cells by
200-epoch test accuracy, ``LayerNAS(..., buckets_per_layer=16, capacity_H=2,
range_rule="exact")`` on 12-epoch validation accuracy, at most 200 trainings), for each
bucketing rule of ``hardware.py`` and each layer order:

* ``given``: the edges in cell-string order (what ``hardware.py`` runs);
* ``reversed``: the same backwards (edges into the output node first);
* ``cost``: ``layer_order="cost"``, the edge whose op moves the device's latency most first
  (:meth:`LayerwiseSpace.cost_order`; Eyeriss and FPGA cost every edge alike, so there it is
  the given order);
* ``random 1..R``: R random orders (``numpy.random.default_rng(0)``, the same for every
  setting).

Reported: the share of seeds 0-99 whose answer is top 1 %, per setting, rule and order, and for
the random orders their lowest and highest share; per configuration (rule, order), in how many
of the 12 settings it meets ``hardware.py``'s goal (>= 95 % of seeds). Nothing here chooses a
setting; the seeds are those ``hardware.py`` reports on.

    python bench/layernas_order.py [--seeds 100] [--random-orders 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import write_results
from hardware import RULES, run_layernas

from workbench.benchmarks import HW_DEVICES
from workbench.search import TabularBackend


def orders(n_random: int) -> dict[str, Any]:
    """Order name -> ``layer_order`` value (random orders drawn once, seed 0)."""
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"given": "given", "reversed": (6, 5, 4, 3, 2, 1), "cost": "cost"}
    for k in range(1, n_random + 1):
        out[f"random {k}"] = tuple(int(i) + 1 for i in rng.permutation(6))
    return out


def run_setting(backend: TabularBackend, device: str, q: float, args: argparse.Namespace
                ) -> list[dict[str, Any]]:
    bench = backend.benchmark
    lat = bench.all_costs("latency", device)
    final = bench.all_accuracies()
    limit = float(lat.quantile(q))
    top = float(np.quantile(final.loc[lat.index[lat <= limit]], 0.99))
    rows = []
    for rule in RULES:
        for name, order in orders(args.random_orders).items():
            hits = []
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                nas = run_layernas(backend, device, limit, seed, rule, args, order)
                cid = str(backend.cell_id(nas.best()[0]))
                assert lat[cid] <= limit, (device, q, rule, name, seed)
                hits.append(final[cid] >= top)
            rows.append({"device": device, "quantile": q, "rule": rule, "order_name": name,
                         "order": list(nas.search_order), "top1_rate": float(np.mean(hits))})
    return rows


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (device, q, rule): given / reversed / cost shares and the random orders' range."""
    out = []
    keys = sorted({(r["quantile"], r["device"], r["rule"]) for r in rows},
                  key=lambda k: (k[0], list(HW_DEVICES).index(k[1]), RULES.index(k[2])))
    for q, device, rule in keys:
        mine = {r["order_name"]: r["top1_rate"] for r in rows
                if (r["quantile"], r["device"], r["rule"]) == (q, device, rule)}
        rand = [v for k, v in mine.items() if k.startswith("random")]
        out.append({"quantile": q, "device": device, "rule": rule, "given": mine["given"],
                    "reversed": mine["reversed"], "cost": mine["cost"],
                    "random_min": min(rand) if rand else None,
                    "random_max": max(rand) if rand else None,
                    "spread": max(mine.values()) - min(mine.values())})
    return out


def configurations(rows: list[dict[str, Any]], goal: float = 0.95) -> list[dict[str, Any]]:
    """Per (rule, order): in how many settings it meets the goal share, and its mean share."""
    out = []
    for rule in RULES:
        for name in dict.fromkeys(r["order_name"] for r in rows):
            mine = [r["top1_rate"] for r in rows if (r["rule"], r["order_name"]) == (rule, name)]
            out.append({"rule": rule, "order_name": name, "settings": len(mine),
                        "settings_met": int(sum(v >= goal for v in mine)),
                        "mean_top1_rate": float(np.mean(mine)), "min_top1_rate": min(mine)})
    return sorted(out, key=lambda c: (-c["settings_met"], -c["mean_top1_rate"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--quantiles", type=float, nargs="+", default=[0.25, 0.5])
    ap.add_argument("--devices", nargs="+", default=list(HW_DEVICES), choices=list(HW_DEVICES))
    ap.add_argument("--buckets", type=int, default=16)
    ap.add_argument("--capacity", type=int, default=2)
    ap.add_argument("--max-trainings", type=int, default=200)
    ap.add_argument("--random-orders", type=int, default=5)
    ap.add_argument("--name", default="layernas_order")
    args = ap.parse_args()
    args.range_rule = "exact"  # hardware.py's setting (run_layernas reads it)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    backend = TabularBackend("nb201", "cifar10")
    rows: list[dict[str, Any]] = []
    for q in args.quantiles:
        for device in args.devices:
            rows += run_setting(backend, device, q, args)
            for s in summary([r for r in rows if (r["device"], r["quantile"]) == (device, q)]):
                print(f"q={q} {device:8s} {s['rule']:19s} given {s['given']:.2f}  reversed "
                      f"{s['reversed']:.2f}  cost {s['cost']:.2f}  random "
                      f"{s['random_min']:.2f}-{s['random_max']:.2f}", flush=True)
    settings = {k: v for k, v in vars(args).items() if k != "name"}
    path = write_results(args.name, {
        "settings": settings, "orders": {k: (list(v) if isinstance(v, tuple) else v)
                                         for k, v in orders(args.random_orders).items()},
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        "seconds": time.perf_counter() - t0, "summary": summary(rows),
        "configurations": configurations(rows), "rows": rows})
    best = configurations(rows)[0]
    print(f"best configuration: {best['rule']} with the {best['order_name']} order meets the "
          f"goal in {best['settings_met']} of {best['settings']} settings")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
