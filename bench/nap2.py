"""Benchmark `nap2`: does a dynamics predictor trained offline, deciding Successive Halving rungs
on real training, find better cells for the same online compute than SH on observed accuracy,
Hyperband, random search or regularized evolution?

Per space (NB201 and NB101, CIFAR-10, real training of the reduced networks at 16x16):

* Offline: ``--offline`` cells drawn from the table (disjoint from every search pool) are
  trained to the middle rung; a DynamicsForest is fitted on their snapshots at each rung below
  the last (labels: the table's final accuracy), and a rank-target GCN on their graphs. Its
  cost (mini-batches, wall seconds, fit seconds) is recorded.
* Online, for every seed: a pool of ``--n`` cells (not offline) drawn from the table; SH
  (observed), SH+dynamics, SH+gcn, SH+dynamics&gcn (mean normalised rank), Hyperband and
  random search and regularized evolution (mutants outside the pool become random pool
  cells) draw from the pool. The
  budget unit is the mini-batch for every method; RS and RE get as many evaluations as one SH
  run's mini-batches buy. Every evaluation (cell, mini-batches) is trained once and shared
  through one run store (continued training is deterministic), so the methods of a seed cost
  little more than one; the benchmark resumes where it stopped.
* Judged by the table's final accuracy: regret (table best - final of the incumbent) at equal
  online mini-batches, top-3/top-5 precision within the pool, Kendall tau of every rung's
  ranking, and the cost again with the offline phase charged. Transfer: the NB201 predictors
  rank the NB101 candidates; the CIFAR-10 predictors against CIFAR-100 / ImageNet16-120 labels.

    python bench/nap2.py [--spaces nb201,nb101] [--seeds 10] [--n 27] [--offline 100]
                         [--min-steps 30] [--max-steps 270] [--model small|paper]

With CUDA the default network preset is the paper's size (``--model paper``); on a CPU the
reduced ``small`` one. The recorded results say which (``model`` in each space's section).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import RESULTS, machine
from scipy import stats

from workbench.benchmarks import get_benchmark
from workbench.evaluation import kendall_tau
from workbench.predictors import dynamics_inputs, load_predictor, save_predictor, snapshot_maps
from workbench.search import (
    DynamicsRanker,
    TrainingBackend,
    nap2_methods,
    offline_phase,
    regret_at,
    run_online,
    rung_correlations,
    sh_cost,
)
from workbench.store import RunStore
from workbench.training import TrainConfig

STORE = Path(__file__).resolve().parent / ".runs" / "nap2"
OFFLINE_SEED = 10_000  # the offline cells are the first --offline of 150 drawn with this seed
OFFLINE_DRAW = 150
POOL_STREAM = 20_000  # pools come from rng (POOL_STREAM, seed): unrelated to the methods' seeds


def backend_for(space: str, args: argparse.Namespace) -> TrainingBackend:
    """The one training backend every method of ``space`` shares (costs in mini-batches)."""
    rungs = []
    b = args.min_steps
    while b < args.max_steps:
        rungs.append(b)
        b *= args.eta
    config = TrainConfig(steps=args.max_steps, batch_size=64, lr=0.05, resize=16,
                         snapshot_every=args.snapshot_every, curve_every=10,
                         eval_at=(*rungs, args.max_steps), device=args.device)
    store = RunStore(args.store / space)
    store.reset_unfinished()  # one benchmark process per space at a time
    return TrainingBackend(space, max_budget=args.max_steps, min_budget=args.min_steps,
                           model=args.model, config=config, source=args.source,
                           val_size=args.val_size, checkpoints=store, charge="steps")


def _ci(values: list[float]) -> dict[str, float]:
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if v.size == 0:
        return {"mean": math.nan, "ci95": math.nan, "n": 0}
    half = float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)) \
        if v.size > 1 else math.nan
    return {"mean": float(v.mean()), "ci95": half, "n": int(v.size)}


def run_space(space: str, args: argparse.Namespace, out: dict[str, Any]) -> dict[str, Any]:
    """The offline phase, then every seed (resumable), aggregated; written after each seed."""
    bench = get_benchmark(space)
    backend = backend_for(space, args)
    table = bench.table()
    finals = dict(zip(table["cell_id"].astype(str),
                      bench.all_accuracies(dataset="cifar10").to_numpy(float), strict=True))
    steps = [s for s in (args.min_steps * args.eta ** i for i in range(10))
             if s < args.max_steps]
    offline_cells = backend.sample(OFFLINE_DRAW, OFFLINE_SEED)[:args.offline]
    t0 = time.perf_counter()
    off = offline_phase(backend, offline_cells, steps, progress=True)
    off_wall = time.perf_counter() - t0
    for s, p in off.predictors.items():
        save_predictor(p, args.store / space / f"dynamics_step{s}.npz", metadata=p.metadata_)
    budget = sh_cost(args.n, args.min_steps, args.max_steps, args.eta)
    methods = nap2_methods(off, n=args.n, eta=args.eta, min_budget=args.min_steps,
                           max_budget=args.max_steps)
    section: dict[str, Any] = {
        "space": space, "dataset": "cifar10", "model": args.model, "n": args.n,
        "eta": args.eta, "rungs": [*steps, args.max_steps], "online_minibatches": budget,
        "snapshot_every": args.snapshot_every, "val_size": args.val_size,
        "source": args.source, "best_final": backend.best_final(),
        "offline": {"cells": len(offline_cells), "dropped": len(off.dropped),
                    "minibatches": off.minibatches, "train_seconds": off.train_seconds,
                    "fit_seconds": off.fit_seconds, "wall_seconds_this_process": off_wall,
                    "predictor_steps": steps},
        "seeds": {},
    }
    excluded = set(off.cell_ids)
    summaries, curves, taus = [], [], []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        pool = backend.sample(args.n, np.random.default_rng((POOL_STREAM, seed)),
                              exclude=excluded)
        pool_finals = {backend.cell_id(c): finals[backend.cell_id(c)] for c in pool}
        t1 = time.perf_counter()
        trained_before = backend.trained_steps
        curve, summary, searches = run_online(
            backend, pool, methods, seed, exclude=offline_cells, finals=pool_finals,
            at_cost=budget, progress=True)
        summary["pool_best_final"] = max(pool_finals.values())
        summaries.append(summary)
        curves.append(curve)
        for name, search in searches.items():
            if "rung" in search.history.columns:
                rc = rung_correlations(search.history)
                rc.insert(0, "method", name)
                rc.insert(1, "seed", seed)
                taus.append(rc)
        section["seeds"][str(seed)] = {
            "seconds": time.perf_counter() - t1,
            "new_minibatches": backend.trained_steps - trained_before,
            "pool": sorted(pool_finals)}
        print(f"{space} seed {seed}: {time.perf_counter() - t1:.0f} s, "
              f"{backend.trained_steps - trained_before} new mini-batches", flush=True)
        section.update(_aggregate(pd.concat(summaries), pd.concat(curves), pd.concat(taus),
                                  budget, off.minibatches, args.seeds))
        out["spaces"][space] = section
        _write(out)
    section["transfer_cifar"] = _transfer_datasets(bench, off, backend, args.store / space)
    if space == "nb101":
        section["transfer_from_nb201"] = _transfer_spaces(backend, args.store)
    section["trained_minibatches_this_process"] = backend.trained_steps
    section["trained_in_all"] = _trained_in_all(args.store / space, off.minibatches,
                                                section["methods"])
    out["spaces"][space] = section
    _write(out)
    return section


def _aggregate(summary: pd.DataFrame, curves: pd.DataFrame, taus: pd.DataFrame,
               budget: float, offline: float, n_seeds: int) -> dict[str, Any]:
    """Mean regret +- 95% CI at fractions of the online budget, precision, rung taus."""
    grid = [0.25, 0.5, 0.75, 1.0]
    methods: dict[str, Any] = {}
    for m, g in summary.groupby("method", sort=False):
        c = curves[curves["method"] == m]
        at = {}
        for f in grid:
            at[str(f)] = _ci([regret_at(cs, f * budget) for _, cs in c.groupby("seed")])
        uses = m.startswith("SH+")
        online = float(g["cost"].mean())
        row = {"regret_at_budget": _ci(g["regret"].tolist()), "regret_at_fraction": at,
               "final_regret": _ci(g["final_regret"].tolist()),
               "cost": _ci(g["cost"].tolist()),
               "new_minibatches": float(g["new_minibatches"].sum()),
               "uses_offline": uses,
               # the NAP2 reviewers' objection: the offline phase is training compute too
               "cost_with_offline": online + (offline if uses else 0.0),
               "cost_with_offline_amortised": online + (offline / n_seeds if uses else 0.0)}
        for k in (3, 5):
            col = f"top{k}_precision"
            if col in g and g[col].notna().any():
                row[col] = _ci(g[col].tolist())
        t = taus[taus["method"] == m] if len(taus) else taus
        if len(t):  # SH's rungs (Hyperband's rungs belong to brackets: not averaged here)
            sh_rungs = "bracket" not in t or t["bracket"].isna().all()
            row["rung_tau"] = {str(int(r)): {"ranker": _ci(tr["tau_ranker"].tolist()),
                                             "observed": _ci(tr["tau_observed"].tolist())}
                               for r, tr in t.groupby("rung")} if sh_rungs else {}
        methods[m] = row
    goal: dict[str, Any] = {}
    if "SH" in methods and "SH+dynamics" in methods:
        a, b = methods["SH+dynamics"]["regret_at_budget"], methods["SH"]["regret_at_budget"]
        goal = {"sh_dynamics": a, "sh_observed": b,
                "lower_mean": bool(a["mean"] < b["mean"]),
                "met": bool(a["mean"] + a["ci95"] < b["mean"] - b["ci95"])}
    return {"methods": methods, "goal": goal,
            "offline_in_online_budgets": offline / budget}


def _transfer_datasets(bench: Any, off: Any, backend: Any, store: Path) -> dict[str, Any]:
    """Kendall tau of the CIFAR-10 rung-0 predictor on every online run's rung-0 snapshots
    against each dataset's final accuracy (NB201 has three), beside the parameter count."""
    runs = RunStore(store).runs()
    runs = runs[~runs["cell_id"].astype(str).isin(set(off.cell_ids))]  # rung 0 of every search
    out: dict[str, Any] = {}
    step = min(off.predictors)
    evs = [backend.evaluate(c, step) for c in runs["cell_id"]]  # answered from the store
    table = bench.table().set_index(bench.table()["cell_id"].astype(str))
    ids = [ev.cell_id for ev in evs]
    ok = [i for i, ev in enumerate(evs) if np.isfinite(snapshot_maps(ev.snapshots, step)).all()]
    pred = np.asarray(off.predictors[step].predict(
        dynamics_inputs(np.stack([snapshot_maps(evs[i].snapshots, step) for i in ok]))), float)
    params = table.loc[[ids[i] for i in ok], "params"].to_numpy(float)
    for ds in bench.datasets:
        y = bench.all_accuracies(dataset=ds).set_axis(table.index).loc[[ids[i] for i in ok]]
        out[ds] = {"n": len(ok), "step": step,
                   "tau_dynamics": kendall_tau(pred, y.to_numpy(float)),
                   "tau_params": kendall_tau(params, y.to_numpy(float))}
    return out


def _transfer_spaces(backend: Any, root: Path) -> dict[str, Any]:
    """The NB201 predictors ranking the NB101 online runs (tau vs NB101 final accuracy)."""
    out: dict[str, Any] = {}
    st = RunStore(root / "nb101")
    runs = st.runs()
    for path in sorted((root / "nb201").glob("dynamics_step*.npz")):
        p = load_predictor(path)
        step = int(p.metadata_["step"])
        ranker = DynamicsRanker(p)
        reached = [c for c, r in zip(runs["cell_id"], runs["run_id"], strict=True)
                   if step in st.load_arrays(r, "evals")["step"]]  # nothing new is trained
        evs = [backend.evaluate(c, step) for c in reached]
        evs = [ev for ev in evs if math.isfinite(ev.final)]
        try:
            scores = ranker([ev.cell for ev in evs], evs)
        except ValueError as err:  # a recipe mismatch is a finding too
            out[str(step)] = {"error": str(err)}
            continue
        ok = np.isfinite(scores)
        out[str(step)] = {"n": int(ok.sum()),
                          "tau": kendall_tau(scores[ok], np.array([ev.final for ev in evs])[ok])}
    return out


def _trained_in_all(root: Path, offline: float, methods: dict[str, Any]) -> dict[str, Any]:
    """What the store's runs really trained, over every process that resumed (each run's
    furthest step and its recorded wall seconds), against what the methods were charged."""
    st = RunStore(root)
    steps, wall = 0, 0.0
    for rid in st.runs()["run_id"]:
        ev = st.load_arrays(rid, "evals")
        steps += int(np.max(ev["step"]))
        wall += float(np.max(ev["wall_seconds"]))
    charged = sum(m["cost"]["mean"] * m["cost"]["n"] for m in methods.values())
    online = steps - offline
    return {"runs": len(st.runs()), "minibatches": steps, "wall_seconds": wall,
            "online_minibatches": online, "charged_online_minibatches": charged,
            "saved_by_sharing": 1.0 - online / charged if charged else math.nan}


def _write(out: dict[str, Any]) -> None:
    """Merge this run's sections into bench/results/nap2.json (other spaces are kept)."""
    path = RESULTS / "nap2.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    merged = {**old, **{k: v for k, v in out.items() if k != "spaces"}}
    merged["spaces"] = {**old.get("spaces", {}), **out["spaces"]}
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(merged, indent=2, default=float) + "\n")


def table(path: Path = RESULTS / "nap2.json") -> str:
    """The README table from the recorded results."""
    res = json.loads(path.read_text())

    def f(d: dict[str, float] | None) -> str:
        return "-" if not d or not math.isfinite(d["mean"]) else \
            f"{d['mean']:.2f} ± {d['ci95']:.2f}"

    lines = ["| space | method | regret @ 1/2 budget | regret @ equal budget | top-3 prec. | "
             "top-5 prec. | tau rung 0 | tau rung 1 | online mini-batches | with offline "
             "(amortised over the seeds) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for space, sec in res["spaces"].items():
        for m, row in sec.get("methods", {}).items():
            taus = row.get("rung_tau", {})
            extra = (f"{row['cost_with_offline']:.0f} ({row['cost_with_offline_amortised']:.0f})"
                     if row.get("uses_offline") and "cost_with_offline" in row else "-")
            lines.append(
                f"| {space} | {m} | {f(row['regret_at_fraction']['0.5'])} | "
                f"{f(row['regret_at_budget'])} | {f(row.get('top3_precision'))} | "
                f"{f(row.get('top5_precision'))} | {f(taus.get('0', {}).get('ranker'))} | "
                f"{f(taus.get('1', {}).get('ranker'))} | {row['cost']['mean']:.0f} | {extra} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spaces", default="nb201,nb101")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=27)
    ap.add_argument("--eta", type=int, default=3)
    ap.add_argument("--offline", type=int, default=100)
    ap.add_argument("--min-steps", type=int, default=30)
    ap.add_argument("--max-steps", type=int, default=270)
    ap.add_argument("--snapshot-every", type=int, default=5)
    ap.add_argument("--model", default=None,
                    help="network preset (default: 'paper' when CUDA is available, else 'small')")
    ap.add_argument("--val-size", type=int, default=500)
    ap.add_argument("--source", default="shared", choices=["shared", "bundled"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--store", type=Path, default=STORE,
                    help="run store root (one store per space below it; gitignored)")
    ap.add_argument("--table", action="store_true", help="print the README table and stop")
    args = ap.parse_args()
    if args.model is None:
        import torch

        args.model = "paper" if torch.cuda.is_available() else "small"
    if args.table:
        print(table())
        return
    for name in ("seeds", "n", "offline", "min_steps", "max_steps", "snapshot_every"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.eta < 2 or args.min_steps >= args.max_steps:
        ap.error("need --eta >= 2 and --min-steps < --max-steps")
    out: dict[str, Any] = {"benchmark": "nap2", "machine": machine(),
                           "command": "python bench/nap2.py " + " ".join(sys.argv[1:]),
                           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                           "args": {k: str(v) if isinstance(v, Path) else v
                                    for k, v in vars(args).items()}, "spaces": {}}
    for space in args.spaces.split(","):
        t0 = time.perf_counter()
        out["spaces"][space] = {}
        sec = run_space(space, args, out)
        sec["seconds"] = time.perf_counter() - t0
        _write(out)
    print(table())


if __name__ == "__main__":
    main()
