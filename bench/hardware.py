"""Benchmark `hardware`: LayerNAS under a latency target on HW-NAS-Bench's six devices, beside
constrained RE, RS, local search, TPE, the Neural Predictor and SH at equal simulated training
cost (NAS-Bench-201, CIFAR-10).

For each device (``edgegpu`` = Jetson TX2, ``raspi4``, ``edgetpu``, ``pixel3``, ``eyeriss``,
``fpga``) and each target quantile q (default 0.25 and 0.5): the latency budget T is the q-quantile
of the device's latencies over the 15,625 cells; a cell is feasible when its latency <= T.
"Top 1 %" = final accuracy (200-epoch CIFAR-10 *test*, the table's label) at or above the 99th
percentile of the feasible cells' final accuracies. Every method observes validation accuracy
(12-epoch val for trainings of 12 epochs, 200-epoch val for SH's top rung) and is judged on test.

* LayerNAS: ``LayerNAS(backend, target=T, cost=("latency", device), budget=12)``: the six
  edges as search layers, latency buckets (ms), ``--buckets`` buckets per layer, ``--capacity``
  per bucket, 2 trainings per iteration, ``range_rule=--range-rule``, at most 200 trainings of
  12 epochs (``run(max_evaluations=200)``). Goal: >= 95 % of seeds return a top-1 % feasible
  cell.
* RE / RS: ``constraint=CostConstraint(("latency", device), max_value=T)`` (only feasible
  cells are sampled and mutated into), 12-epoch trainings, run until LayerNAS's simulated cost
  of the same seed (``run(max_cost=...)``). RE-unique: RE with ``unique=True`` (a cell already
  trained is never trained again; the paper's RE re-trains repeats). Both report
  ``distinct_trainings``. LS: ``LocalSearch`` (best of 10 random feasible cells, then its
  feasible one-edit neighbours, restarts at local optima) under the same constraint, budget
  and cost. TPE: ``OptunaSearch(backend, constraint=...)``, Optuna's TPE over the six edge ops;
  a proposal that breaks the constraint is never trained but told to the study with its
  relative violation (constrained TPE), same budget and cost, on the first ``--tpe-seeds``
  (20) reported seeds only (its asks slow down as the study's trials pile up). NP: the
  Neural Predictor's search (``NeuralPredictorSearch(..., constraint=...)``) with #13's best
  predictor, XGBoost on the GRAF graph features plus NAS-Bench-Suite-Zero's published CIFAR-10
  proxies (``GraphFeatureRegressor``): ``--np-n`` (50) random feasible cells, then rounds of
  the ``--np-k`` (25) untrained feasible cells it predicts best, refitted after each, 12-epoch
  trainings, until LayerNAS's cost (a round is trained whole, so it can end up to k trainings
  past it; its cost ratio is reported).
* SH: constrained, two rungs (12 epochs, then 200 epochs for the top 1/eta, eta = ``--sh-eta``),
  with n set so that its planned cost (mean feasible per-epoch cost) matches LayerNAS's; its
  actual cost ratio is reported.
* ceiling: the feasible cell with the best 12-epoch validation accuracy (what a search that
  trained every feasible cell for 12 epochs would return): whether it is top-1 % says how far a
  12-epoch observation can go.

* top-10 by 12 epochs: of the 10 feasible cells with the best 12-epoch validation accuracy, how
  many are top 1 %, and how far apart their 12-epoch scores lie (points): where few are and the
  scores are close, which one a search returns is decided by differences a 12-epoch training
  cannot resolve.

* LayerNAS*: LayerNAS with the bucketing rule chosen for this device and target on the tuning
  seeds 1000-1019 (``--tune-seeds``) among ``--rules`` (``bucket_edges/bucket_cost``:
  equal/candidate is the default above; quantile edges and floor costs are the alternatives
  for costs far from additive), the default kept on ties; then run on the reported seeds.

LayerNAS searches the edges in cell-string order (``layer_order="given"``) throughout; how much
the answer depends on that order is ``bench/layernas_order.py``'s question.

Costs are the table's simulated seconds (``NB201CostModel``). Settings chosen on seeds
1000-1019 (``--first-seed 1000 --seeds 20``), reported on seeds 0-99.

    python bench/hardware.py [--seeds 100] [--quantiles 0.25 0.5] [--buckets 16] [--capacity 2]
    python bench/hardware.py --table     # the README table of the stored results
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import RESULTS, write_results

from workbench.benchmarks import HW_DEVICES
from workbench.predictors import GraphFeatureRegressor, graph_features
from workbench.search import (
    CostConstraint,
    LayerNAS,
    LocalSearch,
    NeuralPredictorSearch,
    OptunaSearch,
    RandomSearch,
    RegularizedEvolution,
    SuccessiveHalving,
    TabularBackend,
)

DEVICES = tuple(HW_DEVICES)
METHODS = ("LayerNAS", "LayerNAS*", "RE", "RE-unique", "RS", "LS", "TPE", "NP", "SH")
RULES = ("equal/candidate", "quantile/candidate", "equal/floor")


def _ci(values: list[float]) -> dict[str, float]:
    """Mean, its 95 % normal CI half-width and n."""
    v = np.asarray(values, dtype=float)
    half = 1.96 * v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else math.nan
    return {"mean": float(v.mean()), "ci95": float(half), "n": len(v)}


def _wilson(k: int, n: int) -> tuple[float, float]:
    """95 % Wilson interval of a proportion k / n."""
    z = 1.96
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


class Target(NamedTuple):
    """One setting's latency target: costs, final accuracies, the limit, the feasible cells and
    the top-1 % threshold among them (this benchmark's goal)."""
    lat: pd.Series
    final: pd.Series
    limit: float
    feasible: pd.Index
    top: float


def latency_target(backend: TabularBackend, device: str, q: float) -> Target:
    """The q-quantile latency limit of ``device`` on ``backend``'s dataset, its feasible cells
    (unmeasured latencies, NaN on Edge TPU, are never feasible) and their top-1 % threshold."""
    bench, ds = backend.benchmark, backend.dataset
    lat = bench.all_costs("latency", device, dataset=ds)
    final = bench.all_accuracies(dataset=ds)
    limit = float(lat.quantile(q))  # over the measured cells
    feasible = lat.index[lat <= limit]
    return Target(lat, final, limit, feasible, float(np.quantile(final.loc[feasible], 0.99)))


def run_layernas(backend: TabularBackend, device: str, limit: float, seed: int, rule: str,
                 args: argparse.Namespace, layer_order: Any = "given") -> LayerNAS:
    """LayerNAS under latency <= ``limit`` on ``device`` with bucketing ``rule``
    ("edges/cost"), this benchmark's settings (``args``), run to at most --max-trainings."""
    edges, bcost = rule.split("/")
    nas = LayerNAS(backend, target=limit, cost=("latency", device), budget=12, seed=seed,
                   buckets_per_layer=args.buckets, capacity_H=args.capacity,
                   range_rule=args.range_rule, bucket_edges=edges, bucket_cost=bcost,
                   layer_order=layer_order)
    # a step trains up to 2 cells: stop early enough never to pass --max-trainings
    nas.run(max_evaluations=args.max_trainings - 1)
    return nas


def np_features(backend: TabularBackend) -> tuple[list[str], pd.DataFrame]:
    """Every table cell's id and NP's inputs: GRAF graph features and the published proxies
    of the backend's dataset (computed once, shared by every seed and setting)."""
    bench = backend.benchmark
    ids = [str(i) for i in bench.table()["cell_id"]]
    feats = graph_features("nb201", [bench.cell(i) for i in ids])
    zc = bench.proxies(dataset=backend.dataset).loc[ids].add_prefix("zc.")
    return ids, feats.join(zc.set_axis(feats.index))


def run_device(backend: TabularBackend, device: str, q: float, args: argparse.Namespace,
               features: tuple[list[str], pd.DataFrame]) -> dict[str, Any]:
    bench = backend.benchmark
    lat, final, limit, feasible, top = latency_target(backend, device, q)
    val12 = bench.all_accuracies(dataset=backend.dataset, epochs=12, split="val")
    fin = final.loc[feasible]
    best_final = float(fin.max())
    ceiling_id = str(val12.loc[feasible].idxmax())
    # how far a 12-epoch observation separates the top: of the feasible cells with the 10 best
    # 12-epoch scores, how many are top 1 %, and the spread of those 10 scores
    by_val12 = val12.loc[feasible].sort_values(ascending=False).index[:10]
    constraint = CostConstraint(("latency", device), max_value=limit)
    view = constraint.restrict(backend)
    per_epoch = float(np.mean([bench.cost(i, dataset=backend.dataset, epochs=12) / 12
                               for i in feasible[:: max(1, len(feasible) // 300)]]))
    def layernas(seed: int, rule: str) -> LayerNAS:
        return run_layernas(backend, device, limit, seed, rule, args)

    tuning = {rule: float(np.mean([final[str(backend.cell_id(layernas(s, rule).best()[0]))]
                                   >= top for s in range(1000, 1000 + args.tune_seeds)]))
              for rule in args.rules}
    chosen = max(args.rules, key=lambda r: (tuning[r], r == args.rules[0]))
    out: dict[str, list[float]] = {f"{m}_{k}": [] for m in METHODS
                                   for k in ("top1", "regret", "cost", "trainings", "distinct",
                                             "latency")}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        nas = layernas(seed, args.rules[0])
        nas_star = layernas(seed, chosen)
        budget = float(nas.total_cost)
        re_ = RegularizedEvolution(view, population=args.population, sample_size=5, budget=12,
                                   seed=seed)
        re_.run(max_cost=budget)
        reu = RegularizedEvolution(view, population=args.population, sample_size=5, budget=12,
                                   seed=seed, unique=True)
        reu.run(max_cost=budget)
        rs = RandomSearch(view, budget=12, seed=seed)
        rs.run(max_cost=budget)
        ls = LocalSearch(view, budget=12, n_init=10, seed=seed)
        ls.run(max_cost=budget)
        runs = [("LayerNAS", nas), ("LayerNAS*", nas_star), ("RE", re_), ("RE-unique", reu),
                ("RS", rs), ("LS", ls)]
        if seed < args.first_seed + args.tpe_seeds:  # TPE's asks slow down as trials pile up
            tpe = OptunaSearch(backend, budget=12, seed=seed, constraint=constraint)
            tpe.run(max_cost=budget)
            runs.append(("TPE", tpe))
        if args.np_k:
            rounds = (len(feasible) - args.np_n) // args.np_k
            np_ = NeuralPredictorSearch(backend, GraphFeatureRegressor("nb201", model="xgb"),
                                        n=args.np_n, k=args.np_k, rounds=rounds, budget=12,
                                        features=features, seed=seed, constraint=constraint)
            np_.run(max_cost=budget)
            runs.append(("NP", np_))
        eta = args.sh_eta
        n = max(2, int(budget / (per_epoch * (12 + (200 - 12) / eta))))
        sh = SuccessiveHalving(view, n=n, min_budget=12, max_budget=200, eta=eta, seed=seed)
        sh.run()
        for name, s in (*runs, ("SH", sh)):
            cid = str(backend.cell_id(s.best()[0]))
            out[f"{name}_top1"].append(float(final[cid] >= top))
            out[f"{name}_regret"].append(best_final - float(final[cid]))
            out[f"{name}_cost"].append(float(s.total_cost) / budget)
            out[f"{name}_trainings"].append(float(s.n_evaluations))
            out[f"{name}_distinct"].append(float(  # LayerNAS's history also holds drops
                s.n_evaluations if isinstance(s, LayerNAS) else s.history["candidate"].nunique()))
            out[f"{name}_latency"].append(float(lat[cid]))
            assert lat[cid] <= limit, (name, device, cid)  # never an infeasible answer
    row: dict[str, Any] = {
        "device": device, "device_name": HW_DEVICES[device], "quantile": q,
        "target_ms": limit, "feasible_cells": len(feasible), "top1_threshold": top,
        "best_feasible_final": best_final,
        "ceiling_val12_best_is_top1": bool(final[ceiling_id] >= top),
        "ceiling_val12_best_final": float(final[ceiling_id]),
        "val12_top10_top1_count": int((final.loc[by_val12] >= top).sum()),
        "val12_top10_spread": float(val12[by_val12[0]] - val12[by_val12[-1]]),
        "rule_tuning_top1": tuning, "rule_chosen": chosen,
    }
    for m in METHODS:
        k, n = int(sum(out[f"{m}_top1"])), len(out[f"{m}_top1"])
        if n == 0:  # --tpe-seeds 0
            continue
        row[m] = {"seeds": n, "top1_rate": k / n, "top1_wilson95": _wilson(k, n),
                  "regret": _ci(out[f"{m}_regret"]),
                  "cost_vs_layernas": _ci(out[f"{m}_cost"]),
                  "trainings": _ci(out[f"{m}_trainings"]),
                  "distinct_trainings": _ci(out[f"{m}_distinct"]),
                  "max_latency_ms": max(out[f"{m}_latency"])}
    return row


#: the methods with a plain top-1 % share column in the README table, in its order
_PLAIN = ("RE", "RE-unique", "RS", "LS", "TPE")
#: the methods whose column adds their cost against LayerNAS's (they stop at a round's end)
_COSTED = ("NP", "SH")


def markdown(rows: list[dict[str, Any]]) -> str:
    """The README table of the stored rows (``--table``)."""
    def name(m: str) -> str:  # a method run on fewer seeds says so
        n = rows[0].get(m, {}).get("seeds", rows[0]["LayerNAS"].get("seeds"))
        return m if n == rows[0]["LayerNAS"].get("seeds") else f"{m} ({n} seeds)"

    head = ("| q | device | T (ms) | feasible | top-10 by 12 ep: top-1 % (spread) | LayerNAS "
            "top-1 % [95 % Wilson] | LayerNAS* [95 % Wilson] (rule) | "
            + " | ".join(name(m) for m in _PLAIN) + " | "
            + " | ".join(f"{m} (cost)" for m in _COSTED) + " |")
    lines = [head, "|" + "---|" * (7 + len(_PLAIN) + len(_COSTED))]

    def share(m: dict[str, Any]) -> str:
        lo, hi = m["top1_wilson95"]
        return f"{m['top1_rate']:.2f} [{lo:.2f}, {hi:.2f}]"

    for r in rows:
        cells = [f"{r['quantile']:g}", r["device"], f"{r['target_ms']:.3g}",
                 str(r["feasible_cells"]),
                 f"{r['val12_top10_top1_count']} ({r['val12_top10_spread']:.2f})",
                 share(r["LayerNAS"]), f"{share(r['LayerNAS*'])} ({r['rule_chosen']})",
                 *(f"{r[m]['top1_rate']:.2f}" if m in r else "-" for m in _PLAIN),
                 *(f"{r[m]['top1_rate']:.2f} ({r[m]['cost_vs_layernas']['mean']:.2f})"
                   if m in r else "-" for m in _COSTED)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--quantiles", type=float, nargs="+", default=[0.25, 0.5])
    ap.add_argument("--devices", nargs="+", default=list(DEVICES), choices=DEVICES)
    ap.add_argument("--buckets", type=int, default=16)
    ap.add_argument("--capacity", type=int, default=2)
    ap.add_argument("--range-rule", default="exact", choices=("paper", "exact"))
    ap.add_argument("--max-trainings", type=int, default=200)
    ap.add_argument("--population", type=int, default=20)
    ap.add_argument("--sh-eta", type=float, default=5.0)
    ap.add_argument("--rules", nargs="+", default=list(RULES), choices=RULES,
                    help="LayerNAS bucketing rules (edges/cost); the first is the default")
    ap.add_argument("--tune-seeds", type=int, default=20)
    ap.add_argument("--tpe-seeds", type=int, default=20,
                    help="TPE runs on the first this many of the reported seeds only: at "
                         "LayerNAS's cost it makes 1,000-2,000 trials, 5-20 s per seed")
    ap.add_argument("--np-n", type=int, default=50, help="NP's random cells")
    ap.add_argument("--np-k", type=int, default=25,
                    help="NP's cells per round (0: leave NP out)")
    ap.add_argument("--name", default="hardware")
    ap.add_argument("--table", action="store_true",
                    help="print the README table of bench/results/<name>.json and exit")
    args = ap.parse_args()
    if args.table:
        print(markdown(json.loads((RESULTS / f"{args.name}.json").read_text())["rows"]))
        return
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    backend = TabularBackend("nb201", "cifar10")
    features = np_features(backend)
    rows = []
    for q in args.quantiles:
        for device in args.devices:
            row = run_device(backend, device, q, args, features)
            rows.append(row)
            print(f"q={q} {device:8s} T={row['target_ms']:.3g} ms  feasible {row['feasible_cells']}"
                  f"  top1: " + "  ".join(f"{m} {row[m]['top1_rate']:.2f}" for m in METHODS
                                          if m in row)
                  + f"  (LayerNAS* {row['rule_chosen']})"
                  f"  LayerNAS trainings {row['LayerNAS']['trainings']['mean']:.0f}"
                  f"  ceiling {row['ceiling_val12_best_is_top1']}"
                  f"  top-10 by 12 epochs: {row['val12_top10_top1_count']} top-1 %"
                  f" within {row['val12_top10_spread']:.2f} points", flush=True)
    settings = {k: v for k, v in vars(args).items() if k != "name"}
    path = write_results(args.name, {
        "settings": settings, "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        "seconds": time.perf_counter() - t0, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
