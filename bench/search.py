"""Benchmark `search`: regret against simulated training cost on the bundled tables.

NAS-Bench-201 (CIFAR-10, CIFAR-100, ImageNet16-120) and the NAS-Bench-101 table (the 20k cells of
``get_benchmark("nb101")``), every method
run with every seed through ``workbench.search.simulate`` on a ``TabularBackend`` (scores and
costs looked up; regret = table best final accuracy - final accuracy of the best incumbent so
far, in points). Methods, all with eta = 3 and the table's smallest and largest fidelity:

* RS: random search at the largest fidelity.
* RE: regularized evolution (population 20, tournament 5; a mutant not in the table is
  re-drawn twice, then replaced by a random table cell: NB201 holds every mutant, the NB101
  20k table few of them, so there RE is close to random search). RE-unique: the same with
  ``unique=True`` (a cell already trained is re-drawn like a mutant outside the table, so no
  full training is paid twice).
* LS: local search (White et al. 2021; ``workbench.search.LocalSearch``): the best of 10
  random cells, then every one-edit neighbour in the table at the largest fidelity, move to
  the best neighbour while it improves, restart from a random cell at a local optimum (on the
  NB101 20k table few neighbours are in the table, so LS restarts often there).
* TPE (NB201 only): ``OptunaSearch``, Optuna's TPE sampler over the six edge ops at the
  largest fidelity (on NB101 nearly every proposal is off the 20k table).
* SH: Successive Halving with n = 81 on the observed accuracy, repeated with fresh cells
  (``workbench.search.Rounds``).
* HB: Hyperband (Li et al. brackets), repeated.
* SH+RF: Successive Halving with a predictor (``workbench.search.PredictorSH``). A random
  forest on the cell encoding is fit on ``--k-init`` random cells trained to the largest
  fidelity (their full cost is charged and they count as evaluations); it ranks every not yet
  evaluated table cell (prediction is not charged, like every ranker here) and the top ``--n``
  enter SH, whose rungs below the largest fidelity keep the top 1/eta by
  z(observed accuracy) + z(predicted final accuracy). After each SH run the forest is refit
  on every cell trained to the largest fidelity so far; at most ``--rounds`` SH runs (the
  incumbent is kept afterwards).
* LayerNAS (NAS-Bench-201 only, through ``simulate`` like the others; ``LayerNAS(backend)``
  builds the topology from the table): the 6 edges as search layers, cost = parameters, target =
  the whole parameter range (unconstrained) with exact layer ranges, B = 4 buckets, H = 2,
  2 trainings per iteration, scored by 12-epoch validation accuracy; its answer is not trained
  to 200 epochs (add one full training). Also reported for a small-model target (0.2-0.4 M).

Goals: (a) SH + predictor reaches mean regret <= 0.3 points on NB201 CIFAR-10 with at most 1/5
of the cost random search needs for the same mean regret; (b) LayerNAS finds a top-1% cell.

SH+RF's settings (k-init 30, n 27, 8 rounds) were chosen on NB201 CIFAR-10 with seeds 1000-1029
(``--first-seed 1000 --seeds 30``), not on the reported seeds 0-99.

Section ``neural_predictor``: the Neural Predictor's search (Wen et al., ECCV 2020;
``workbench.search.NeuralPredictorSearch``) against RS, RE, LS and, on NB201, TPE
(``OptunaSearch``: Optuna's TPE sampler over the six edge ops) by the NUMBER OF FULLY TRAINED
CELLS (not seconds), on NB201 CIFAR-10 (200 epochs) and the NB101 20k table (108 epochs): train
N random cells, fit GRAF (``GraphFeatureRegressor(space, model="xgb")``, defaults) on them,
train the K not yet trained table cells it predicts best, refit on every trained cell, repeat
(``NP_CONFIGS``, 150 trained cells each); all other table cells are the candidates. Optionally
the GCN Neural Predictor (paper defaults, 300 epochs) on NB101 in one round, with fewer seeds
(``--gcn-seeds``, 0: skip). Regret at 50/100/150 trained cells (mean ± s.e. over seeds) and the
trained cells each method needs for a mean regret <= RE's (and RE-unique's) at 150.

    python bench/search.py [--sections regret neural_predictor] [--seeds 100] [--budget 500]
                           [--k-init 30] [--n 27] [--rounds 8] [--np-seeds 100] [--gcn-seeds 20]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from _common import RESULTS, machine, write_results

from workbench.search import (
    Backend,
    Hyperband,
    LayerNAS,
    LocalSearch,
    NeuralPredictorSearch,
    OptunaSearch,
    PredictorSH,
    RandomSearch,
    RegularizedEvolution,
    Rounds,
    Search,
    SuccessiveHalving,
    TabularBackend,
    aggregate_curves,
    simulate,
    table_features,
    table_inputs,
)

TABLES = [("nb201", "cifar10"), ("nb201", "cifar100"), ("nb201", "ImageNet16-120"),
          ("nb101", "cifar10")]
CHECKPOINTS = (10, 25, 50, 100, 200, 500)  # in mean full trainings
SMALL_TARGET = (0.2, 0.4)  # M parameters
SECTIONS = ("regret", "neural_predictor")
#: The Neural Predictor's (N random cells, K predicted per round, rounds): 150 trained cells each.
NP_CONFIGS = ((20, 10, 13), (50, 25, 4), (100, 50, 1))
NP_TABLES = (("nb201", "cifar10"), ("nb101", "cifar10"))
TRAINED = (50, 100, 150)  # trained cells at which regret is reported


# -- LayerNAS ---------------------------------------------------------------------------------

#: LayerNAS as described above, a factory ``f(backend, seed=..., target=...)`` for ``simulate``:
#: the NB201 topology from the backend's table (cost = M params), scored at 12 epochs.
LAYERNAS = partial(LayerNAS, buckets_per_layer=4, capacity_H=2, candidates_per_iter=2,
                   range_rule="exact", budget=12)


def layernas_summary(curves: pd.DataFrame, finals: np.ndarray, in_target: np.ndarray
                     ) -> pd.DataFrame:
    """Each seed's answer (its last curve row): evaluations, cost, final accuracy and its
    top-percent rank among all cells and among the cells within the target."""
    last = curves.groupby("seed", sort=False).tail(1)
    found = last["incumbent_final"].to_numpy(float)[:, None]
    return pd.DataFrame({
        "seed": last["seed"].to_numpy(), "evaluations": last["evaluations"].to_numpy(),
        "cost": last["cost"].to_numpy(float), "final": found[:, 0],
        "top_pct": 100.0 * (np.sum(finals > found, axis=1) + 1) / len(finals),
        "top_pct_in_target": 100.0 * (np.sum(finals[in_target] > found, axis=1) + 1)
        / int(in_target.sum())})


# -- the benchmark ---------------------------------------------------------------------------


def methods(backend: TabularBackend, args: argparse.Namespace
            ) -> dict[str, Callable[..., Search]]:
    """The search factories ``f(backend, seed=...)`` compared on one table."""
    feats = table_features(backend)  # the space's default encoding, shared by the seeds
    tpe: dict[str, Callable[..., Search]] = (
        {"TPE": partial(OptunaSearch)} if backend.space.name == "nb201" else {})
    return {
        "RS": partial(RandomSearch),
        "RE": partial(RegularizedEvolution, population=20, sample_size=5, max_attempts=2),
        "RE-unique": partial(RegularizedEvolution, population=20, sample_size=5, max_attempts=2,
                             unique=True),
        "LS": partial(LocalSearch, n_init=10),
        **tpe,
        "SH": lambda b, seed: Rounds(b, partial(_sh_round, n=81), seed=seed, label="SH"),
        "HB": partial(Hyperband, repeats=None),
        "SH+RF": lambda b, seed: PredictorSH(b, feats, seed=seed, k_init=args.k_init,
                                             n=args.n, eta=3, max_rounds=args.rounds,
                                             label="SH+RF"),
    }


def _sh_round(backend: Backend, rng: Any, n: int) -> Search:
    """One SH run of ``n`` fresh random cells on the observed accuracy."""
    return SuccessiveHalving(backend, n=n, eta=3, seed=rng)


def first_cost(agg: pd.DataFrame, method: str, regret: float) -> float:
    """The smallest grid cost at which ``method``'s mean regret is <= ``regret`` (inf: never)."""
    g = agg[(agg["method"] == method) & (agg["mean"] <= regret + 1e-12)]
    return float(g["cost"].min()) if len(g) else math.inf


def run_table(space: str, dataset: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every method on one table: curves aggregated on a cost grid, checkpoints and goals."""
    t0 = time.perf_counter()
    backend = TabularBackend(space, dataset)
    unit = float(np.mean([backend.benchmark.cost(c, dataset=dataset, epochs=backend.max_budget)
                          for c in backend.sample(200, 0)]))
    budget = args.budget * unit
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    curves = [simulate(methods(backend, args), backend, seeds, max_cost=budget, progress=False)]
    layernas: dict[str, Any] = {}
    if space == "nb201":
        params = backend.benchmark.table()["params"].to_numpy() / 1e6
        finals = backend.benchmark.all_accuracies(dataset=dataset).to_numpy(float)
        for label, target in (("unconstrained", None), ("small", SMALL_TARGET)):
            # target None: LayerNAS's default, the whole parameter range of the table
            lo, hi = (float(params.min()), float(params.max())) if target is None else target
            inside = (params >= lo - 1e-9) & (params <= hi + 1e-9)
            ln_curves = simulate({"LayerNAS": partial(LAYERNAS, target=target)}, backend, seeds,
                                 progress=False)
            summ = layernas_summary(ln_curves, finals, inside)
            layernas[label] = {
                "target_m_params": [lo, hi], "cells_in_target": int(inside.sum()),
                "fraction_top1pct": float((summ["top_pct"] <= 1.0).mean()),
                "median_top_pct": float(summ["top_pct"].median()),
                "mean_top_pct": float(summ["top_pct"].mean()),
                "worst_top_pct": float(summ["top_pct"].max()),
                "median_top_pct_in_target": float(summ["top_pct_in_target"].median()),
                "mean_evaluations": float(summ["evaluations"].mean()),
                "mean_cost_s": float(summ["cost"].mean()),
                "mean_regret": float((backend.best_final() - summ["final"]).mean()),
            }
            if label == "unconstrained":
                curves.append(ln_curves)
    curves_df = pd.concat(curves, ignore_index=True)
    ks = [k for k in CHECKPOINTS if k <= args.budget]
    grid = np.unique(np.concatenate([np.geomspace(unit, budget, 400), np.array(ks) * unit]))
    agg = aggregate_curves(curves_df, grid)
    agg["ci95"] = 1.96 * agg["std"] / np.sqrt(agg["n"])
    checkpoints = {}
    for m in agg["method"].unique():
        row = {}
        for k in ks:
            a = agg[(agg["method"] == m) & np.isclose(agg["cost"], k * unit)].iloc[0]
            row[str(k)] = {"mean": float(a["mean"]), "ci95": float(a["ci95"]), "n": int(a["n"])}
        checkpoints[m] = row
    last = curves_df.groupby(["method", "seed"]).tail(1)
    per_method = {m: {"mean_final_regret": float(g["regret"].mean()),
                      "mean_evaluations": float(g["evaluations"].mean()),
                      "mean_cost_units": float(g["cost"].mean() / unit)}
                  for m, g in last.groupby("method")}
    out: dict[str, Any] = {"space": space, "dataset": dataset, "unit_s": unit,
                           "budget_units": args.budget, "best_final": backend.best_final(),
                           "checkpoints": checkpoints, "per_method": per_method,
                           "seconds": time.perf_counter() - t0}
    pred = agg[agg["method"] == "SH+RF"]
    reached = float(pred["mean"].min())
    for label, r in (("regret_0.3", 0.3), ("regret_reached", reached)):
        c_pred, c_rs = first_cost(agg, "SH+RF", r), first_cost(agg, "RS", r)
        out[label] = {"regret": r, "cost_sh_rf_units": c_pred / unit,
                      "cost_rs_units": c_rs / unit,
                      "ratio": c_pred / c_rs if math.isfinite(c_rs) else None}
    if layernas:
        out["layernas"] = layernas
    return out


# -- the Neural Predictor's search, by trained cells ---------------------------------------------


def np_methods(backend: TabularBackend) -> dict[str, Callable[..., Search]]:
    """RS, RE, RE-unique, LS, TPE (NB201 only) and the Neural Predictor configurations, each
    ending at 150 trained cells."""
    inputs = table_inputs(backend)  # GRAF's graph features of every table cell, for all seeds
    out: dict[str, Callable[..., Search]] = {
        "RS": partial(RandomSearch),
        "RE": partial(RegularizedEvolution, population=20, sample_size=5, max_attempts=2),
        "RE-unique": partial(RegularizedEvolution, population=20, sample_size=5, max_attempts=2,
                             unique=True),
        "LS": partial(LocalSearch, n_init=10)}
    if backend.space.name == "nb201":  # on NB101 nearly every TPE proposal is off the table
        out["TPE"] = partial(OptunaSearch)
    for n, k, rounds in NP_CONFIGS:
        label = f"NP-GRAF {n}+{k}x{rounds}"
        out[label] = partial(NeuralPredictorSearch, features=inputs, n=n, k=k, rounds=rounds,
                             label=label)
    return out


def run_np_table(space: str, dataset: str, args: argparse.Namespace) -> dict[str, Any]:
    """Regret by trained cells of RS, RE and the Neural Predictor on one table."""
    t0 = time.perf_counter()
    backend = TabularBackend(space, dataset)
    top = max(TRAINED)
    seeds = range(args.first_seed, args.first_seed + args.np_seeds)
    parts = [simulate(np_methods(backend), backend, seeds, max_evaluations=top, progress=False)]
    n_seeds = {m: args.np_seeds for m in parts[0]["method"].unique()}
    if space == "nb101" and args.gcn_seeds > 0:
        graphs = table_inputs(backend, "gcn")
        label = "NP-GCN 100+50x1"
        parts.append(simulate({label: partial(NeuralPredictorSearch, predictor="gcn",
                                              features=graphs, n=100, k=50, rounds=1,
                                              label=label)},
                              backend, range(args.first_seed, args.first_seed + args.gcn_seeds),
                              max_evaluations=top, progress=False))
        n_seeds[label] = args.gcn_seeds
    curves = pd.concat(parts, ignore_index=True)
    # every evaluation is one full training: read the curves on the trained-cell count
    agg = aggregate_curves(curves.assign(cost=curves["evaluations"]), np.arange(1, top + 1))
    re_top, reu_top = (float(agg[(agg["method"] == m) & (agg["cost"] == top)]["mean"].iloc[0])
                       for m in ("RE", "RE-unique"))
    methods_out = {}
    for m in agg["method"].unique():
        rows = agg[agg["method"] == m].set_index("cost")
        reach, reach_u = first_cost(agg, m, re_top), first_cost(agg, m, reu_top)
        methods_out[m] = {
            "seeds": n_seeds[m],
            "regret": {str(t): {"mean": float(rows.loc[t, "mean"]),
                                "sd": float(rows.loc[t, "std"]),
                                "se": float(rows.loc[t, "std"] / np.sqrt(rows.loc[t, "n"])),
                                "n": int(rows.loc[t, "n"])} for t in TRAINED},
            "cells_to_re_at_150": reach if math.isfinite(reach) else None,
            "cells_to_re_unique_at_150": reach_u if math.isfinite(reach_u) else None}
    return {"space": space, "dataset": dataset, "best_final": backend.best_final(),
            "table_cells": len(backend.candidates), "re_regret_at_150": re_top,
            "re_unique_regret_at_150": reu_top,
            "methods": methods_out, "seconds": time.perf_counter() - t0}


def run_neural_predictor(args: argparse.Namespace) -> dict[str, Any]:
    """The neural_predictor section on both tables, with its command, machine and load."""
    t0 = time.perf_counter()
    load_before = os.getloadavg()
    tables = []
    for space, dataset in NP_TABLES:
        res = run_np_table(space, dataset, args)
        tables.append(res)
        print(f"neural_predictor {space}/{dataset}: {res['seconds']:.0f} s", flush=True)
    return {"command": "python " + " ".join(["bench/search.py", *sys.argv[1:]]),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
            "load_average_1min": {"start": load_before[0], "end": os.getloadavg()[0]},
            "seeds": args.np_seeds, "first_seed": args.first_seed, "gcn_seeds": args.gcn_seeds,
            "configs": [{"n": n, "k": k, "rounds": r} for n, k, r in NP_CONFIGS],
            "trained": list(TRAINED), "predictor": "GraphFeatureRegressor(space, model='xgb')",
            "tables": tables, "seconds": time.perf_counter() - t0}


def _print_np(res: dict[str, Any]) -> None:
    """Markdown: regret ± s.e. at the trained-cell counts, and the cells to reach RE at 150."""
    ts = res["trained"]
    print("\nmean regret (points) ± s.e. after t fully trained cells\n")
    print("| table | method | seeds | " + " | ".join(f"t={t}" for t in ts)
          + " | cells to RE's regret at 150 | to RE-unique's |")
    print("|---|---|---|" + "---|" * (len(ts) + 2))
    for r in res["tables"]:
        for m, row in r["methods"].items():
            cells = [f"{row['regret'][str(t)]['mean']:.2f} ± {row['regret'][str(t)]['se']:.2f}"
                     for t in ts]
            reach = [row.get(k) for k in ("cells_to_re_at_150", "cells_to_re_unique_at_150")]
            print(f"| {_label(r)} | {m} | {row['seeds']} | " + " | ".join(cells) + " | "
                  + " | ".join("> 150" if c is None else f"{c:.0f}" for c in reach) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="seeds are first-seed .. first-seed + seeds - 1")
    ap.add_argument("--budget", type=float, default=500,
                    help="cost budget per run, in mean full trainings of the table")
    ap.add_argument("--k-init", type=int, default=30)
    ap.add_argument("--n", type=int, default=27)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--tables", default=",".join(f"{s}/{d}" for s, d in TABLES))
    ap.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS,
                    help="run only these (the others' results stay in search.json)")
    ap.add_argument("--np-seeds", type=int, default=100,
                    help="seeds of the neural_predictor section's GRAF, RS and RE runs")
    ap.add_argument("--gcn-seeds", type=int, default=20,
                    help="seeds of the GCN Neural Predictor on NB101 (0: skip it)")
    args = ap.parse_args()
    if args.gcn_seeds < 0:
        ap.error(f"--gcn-seeds must be >= 0, got {args.gcn_seeds}")
    for name, v in (("seeds", args.seeds), ("k-init", args.k_init), ("n", args.n),
                    ("rounds", args.rounds), ("np-seeds", args.np_seeds)):
        if v < 1:
            ap.error(f"--{name} must be >= 1, got {v}")
    if args.first_seed < 0:
        ap.error(f"--first-seed must be >= 0, got {args.first_seed}")
    if args.budget <= 0:
        ap.error(f"--budget must be > 0, got {args.budget}")
    t0 = time.perf_counter()
    path = RESULTS / "search.json"
    # the sections not run keep their results (and the top level its command, date and machine,
    # which describe the regret section)
    payload = json.loads(path.read_text()) if path.is_file() else {}
    payload.pop("benchmark", None)
    if "regret" in args.sections:
        tables = [tuple(t.split("/", 1)) for t in args.tables.split(",")]
        results = []
        for space, dataset in tables:
            res = run_table(space, dataset, args)
            results.append(res)
            print(f"{space}/{dataset}: {res['seconds']:.0f} s", flush=True)
        goals = _goals(results)
        for key in ("command", "date", "machine"):
            payload.pop(key, None)  # written afresh for this run
        payload.update({
            "seeds": args.seeds, "first_seed": args.first_seed, "budget_units": args.budget,
            "k_init": args.k_init, "n": args.n, "rounds": args.rounds,
            "checkpoint_units": list(CHECKPOINTS), "tables": results,
            "goals": goals, "seconds": time.perf_counter() - t0,
            "goal": "(a) SH+predictor mean regret <= 0.3 on NB201 CIFAR-10 at <= 1/5 of the "
                    "cost random search needs; (b) LayerNAS finds a top-1% cell"})
        _print(results, goals)
    if "neural_predictor" in args.sections:
        payload["neural_predictor"] = run_neural_predictor(args)
        _print_np(payload["neural_predictor"])
    path = write_results("search", payload)
    print(f"written {path} in {time.perf_counter() - t0:.0f} s")


def _goals(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The two goals, read from the NB201 CIFAR-10 results."""
    c10 = next((r for r in results if r["space"] == "nb201" and r["dataset"] == "cifar10"),
               None)
    if c10 is None:
        return {}
    a = c10["regret_0.3"]
    b = c10["layernas"]["unconstrained"]
    return {"a_met": bool(a["ratio"] is not None and a["ratio"] <= 0.2
                          and math.isfinite(a["cost_sh_rf_units"])),
            "a": a, "a_reached": c10["regret_reached"],
            "b_met": b["fraction_top1pct"] >= 0.5, "b": b}


def _print(results: list[dict[str, Any]], goals: dict[str, Any]) -> None:
    """Markdown: mean regret +- 95% CI at the checkpoints, then the goals."""
    ks = [int(k) for k in results[0]["checkpoints"]["RS"]] if results else []
    print("\nmean regret (points) ± 95% CI after a cost of k mean full trainings\n")
    print("| table | method | " + " | ".join(f"k={k}" for k in ks) + " |")
    print("|---|---|" + "---|" * len(ks))
    for r in results:
        for m, row in r["checkpoints"].items():
            cells = [f"{row[str(k)]['mean']:.2f} ± {row[str(k)]['ci95']:.2f}"
                     if math.isfinite(row[str(k)]["mean"]) else "—" for k in ks]
            print(f"| {_label(r)} | {m} | " + " | ".join(cells) + " |")
    print()
    for r in results:
        for key in ("regret_0.3", "regret_reached"):
            g = r[key]
            rs = (f"{g['cost_rs_units']:.0f}" if math.isfinite(g["cost_rs_units"])
                  else f"> {r['budget_units']:g}")
            ratio = "n/a" if g["ratio"] is None else f"{g['ratio']:.3f}"
            sp = (f"{g['cost_sh_rf_units']:.0f}" if math.isfinite(g["cost_sh_rf_units"])
                  else "never")
            print(f"{_label(r)}: mean regret <= {g['regret']:.2f}: SH+RF after {sp}, RS after "
                  f"{rs} full trainings (ratio {ratio})")
        for label, ln in r.get("layernas", {}).items():
            print(f"{_label(r)}: LayerNAS {label} {ln['target_m_params']}: top-1% in "
                  f"{ln['fraction_top1pct']:.0%} of seeds, median top "
                  f"{ln['median_top_pct']:.2f}% (worst {ln['worst_top_pct']:.2f}%; in target "
                  f"{ln['median_top_pct_in_target']:.2f}%), {ln['mean_evaluations']:.0f} "
                  f"evaluations, "
                  f"{ln['mean_cost_s'] / r['unit_s']:.1f} full trainings")
    if goals:
        print(f"goal (a) met: {goals['a_met']}; goal (b) met: {goals['b_met']}")


def _label(r: dict[str, Any]) -> str:
    return f"{'NB201' if r['space'] == 'nb201' else 'NB101 20k'} {r['dataset']}"


if __name__ == "__main__":
    main()
