"""Benchmark: sample-size curves of the architecture predictors (issue #13, item 5).

Kendall tau and Spearman rho against the number N of training cells, judged on every other
distinct cell of the table, 5 seeds (0-4; one seeded draw per seed, nested over N and shared by
every predictor), with each model's fit time. Sections (``--sections``, merged into
``bench/results/predictor_curves.json``):

- ``nb201-c10-test`` / ``nb201-c10-val`` / ``nb201-c100`` / ``nb201-in16``: the 9,445 distinct
  NB201 cells, N in {32, 100, 200, 1000}; labels: 200-epoch test accuracy of the dataset (the
  table's final label), and for CIFAR-10 also 200-epoch validation accuracy
  (``nb201_val200_accuracies``, from the shared data folder; skipped without it).
  Predictors: the parameter count; each of NAS-Bench-Suite-Zero's 13 published proxies alone
  (scores of untrained networks on one batch; CIFAR-100 uses the CIFAR-10 scores, none being
  published for it); the GCN; GRAF graph features with a random forest, XGBoost, and 5 XGBoost
  seeds averaged; graph features + the proxies with XGBoost (alone and x5).
- ``nb101``: the bundled NB101 table (20,001 cells), N in {32, 100, 172, 200, 1000}, 108-epoch
  validation accuracy; tau on the other table cells, the sampler-weighted tau
  (each held-out pair weighted by the product of its cells' probabilities under NAS-Bench-101's
  own sampler, ``nb101_sampler_weights``) and tau per vertex count. No published proxies.
  ``gcn x5`` (5 GCNs averaged) at N = 172; ``gcn & graf`` (``ArchitectureEnsemble``: a GCN
  and GRAF XGBoost on the same cells, mean rank) at N = 100, 172, 200. ``nb101-1k``: the same
  on the 1k table (``nb101_1k``, the table of earlier releases), N in {32, 100, 172, 200},
  without ``gcn x5`` and ``gcn & graf``.

- ``nb201-dynamics``: item 6, predictors that also read the dynamics of collected runs: the
  NB201 runs of ``bench/_dynamics_runs.py``'s store (``--store``; collect them with
  ``python bench/_dynamics_runs.py --spaces nb201``: 300 runs of the reduced CPU configuration,
  16x16 inputs, 200 mini-batches), one run per distinct cell, N in {32, 100, 200}, judged on
  the other runs; label: the table's 200-epoch CIFAR-10 test accuracy. At mini-batch 100 and
  200: the dynamics forest and GBT (snapshot maps alone), the dynamics forest and GBT on dynamics +
  GRAF graph features + the published proxies (``load_dynamics(encoding="graf",
  extra=proxies)``), GRAF + proxies XGBoost and the GCN on the same cells (architecture only),
  and the held-out accuracy the run reached at that mini-batch (the short-training baseline).

The GCN (lr 1e-3, weight decay 1e-4, rank target, ``--gcn-epochs`` 300: the best setting of
``bench/predictors.py``) is the slow one: NB201 fits it at N <= 200 (and at N = 1000 on CIFAR-10)
with seeds 0-2 only; ``gcn x5`` (5 seeds averaged, ``GCNPredictor(n_ensemble=5)``) at N = 100
on CIFAR-10 test labels only. ``--quick``: a smoke run (N 32/100, 2 seeds, short GCN) written
to ``predictor_curves_quick.json``. ``--table`` prints the README tables of the stored results.
``--only NAME ...`` runs only those predictors of the sections and keeps the section's stored
rows of the others (the draws depend only on the seeds and N, so they are the same).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
from typing import Any

import numpy as np
import pandas as pd
import torch
from _common import RESULTS, write_results
from _dynamics_runs import DEFAULT_STORE as DYNAMICS_STORE

from workbench.benchmarks import get_benchmark, nb101_sampler_weights, nb201_val200_accuracies
from workbench.evaluation import CurvePredictor, curve_table, sample_size_curves, summarize_curves
from workbench.predictors import (
    ArchitectureEnsemble,
    DynamicsForest,
    DynamicsGBT,
    GCNPredictor,
    GraphFeatureRegressor,
    benchmark_graphs,
    graph_features,
    graphs_from_cells,
    load_dynamics,
    split_inputs,
)
from workbench.store import RunStore

#: section -> (space, dataset, label split)
SECTIONS = {"nb201-c10-test": ("nb201", "cifar10", "test"),
            "nb201-c10-val": ("nb201", "cifar10", "val"),
            "nb201-c100": ("nb201", "cifar100", "test"),
            "nb201-in16": ("nb201", "ImageNet16-120", "test"),
            "nb101": ("nb101", "cifar10", "val"),
            "nb101-1k": ("nb101_1k", "cifar10", "val"),
            "nb201-dynamics": ("nb201", "cifar10", "dynamics")}
#: mini-batches at which the dynamics section reads the runs
DYNAMICS_STEPS = (100, 200)
#: which published proxy scores stand beside each NB201 dataset
PROXY_SOURCE = {"cifar10": "cifar10", "cifar100": "cifar10", "ImageNet16-120": "ImageNet16-120"}
GCN_KW = {"lr": 1e-3, "weight_decay": 1e-4, "target": "rank"}
#: goals of issue #13: best predictor's mean tau at N
GOALS = {"nb201/cifar10": {100: 0.81, 200: 0.84, 1000: 0.88},
         "nb101/table": {172: 0.75}, "nb101/sampler": {172: 0.65},
         "nb201/dynamics@100": {100: 0.87, 200: 0.87}}


def _graf(space: str, n_ensemble: int = 1) -> Any:
    return lambda seed: GraphFeatureRegressor(space, model="xgb", n_ensemble=n_ensemble,
                                              random_state=seed)


def _warm_up(graphs: np.ndarray) -> None:
    """One tiny GCN fit, so that torch's one-off start-up is not timed as the first fit."""
    GCNPredictor(epochs=1).fit(graphs[:10], np.arange(10.0))


def nb201_section(dataset: str, split: str, cfg: argparse.Namespace) -> dict[str, Any] | None:
    bench = get_benchmark("nb201")
    ids = bench.distinct_ids()
    if split == "val":
        try:
            y = nb201_val200_accuracies(bench).loc[ids]
        except FileNotFoundError as err:
            print(f"skipping nb201/{dataset}/val: {err}")
            return None
        labels = "200-epoch CIFAR-10 validation accuracy (cifar10-valid, shared data file)"
    else:
        y = bench.all_accuracies(dataset=dataset).loc[ids]
        labels = f"200-epoch {dataset} test accuracy (the table's final label)"
    table = bench.table().set_index("cell_id").loc[ids]
    cells = [bench.cell(i) for i in ids]
    feats = graph_features("nb201", cells)
    zc = bench.proxies(dataset=PROXY_SOURCE[dataset], distinct_only=True).loc[ids]
    with_zc = feats.join(zc.add_prefix("zc.").set_axis(feats.index))
    graphs = benchmark_graphs(bench, ids)
    gcn_ns = tuple(n for n in cfg.ns201 if n <= 200 or (dataset == "cifar10" and n == 1000))
    preds: dict[str, Any] = {"params": table["params"].to_numpy(float)}
    preds |= {f"zc:{c}": zc[c].to_numpy(float) for c in zc.columns}
    preds["gcn"] = CurvePredictor(
        lambda s: GCNPredictor(epochs=cfg.gcn_epochs, random_state=s, **GCN_KW), X=graphs,
        ns=gcn_ns, seeds=cfg.gcn_seeds)
    notes = [f"proxies: NAS-Bench-Suite-Zero's published {PROXY_SOURCE[dataset]} scores"
             + (" (none are published for CIFAR-100)" if dataset == "cifar100" else ""),
             f"gcn: {cfg.gcn_epochs} epochs, {GCN_KW}, seeds {list(cfg.gcn_seeds)}, "
             f"N in {list(gcn_ns)}"]
    if dataset == "cifar10" and split == "test":
        if "n_ensemble" in inspect.signature(GCNPredictor).parameters:
            preds["gcn x5"] = CurvePredictor(
                lambda s: GCNPredictor(epochs=cfg.gcn_epochs, random_state=s, n_ensemble=5,
                                       **GCN_KW), X=graphs, ns=(100,), seeds=cfg.gcn_seeds)
            notes.append("gcn x5: N = 100 only, same seeds as gcn")
        else:
            notes.append("gcn x5 skipped: GCNPredictor has no n_ensemble")
    preds |= {"graf rf": CurvePredictor(lambda s: GraphFeatureRegressor(
                  "nb201", model="rf", random_state=s), X=feats),
              "graf xgb": CurvePredictor(_graf("nb201"), X=feats),
              "graf xgb x5": CurvePredictor(_graf("nb201", 5), X=feats),
              "graf+zc xgb": CurvePredictor(_graf("nb201"), X=with_zc),
              "graf+zc xgb x5": CurvePredictor(_graf("nb201", 5), X=with_zc)}
    if cfg.only:
        preds = {k: v for k, v in preds.items() if k in cfg.only}
    _warm_up(graphs)
    rows = sample_size_curves(preds, y, ns=cfg.ns201, seeds=cfg.seeds, progress=True,
                              desc=f"nb201/{dataset}/{split}")
    return {"space": "nb201", "dataset": dataset, "split": split, "labels": labels,
            "n_cells": len(ids), "ns": list(cfg.ns201), "seeds": list(cfg.seeds),
            "notes": notes, "rows": rows.round(6).to_dict(orient="records")}


def nb101_section(cfg: argparse.Namespace, table: str = "nb101") -> dict[str, Any]:
    bench = get_benchmark(table)
    ns = cfg.ns101 if table == "nb101" else tuple(n for n in cfg.ns101 if n < 1000)
    ids = bench.table()["cell_id"].astype(str).tolist()
    cells = [bench.cell(i) for i in ids]
    y = bench.all_accuracies().loc[ids]
    weights = nb101_sampler_weights(bench).loc[ids]
    vertices = np.array([len(c.ops) for c in cells])
    feats = graph_features("nb101", cells)
    preds: dict[str, Any] = {
        "params": bench.table()["params"].to_numpy(float),
        "gcn": CurvePredictor(lambda s: GCNPredictor(epochs=cfg.gcn_epochs, random_state=s,
                                                     **GCN_KW), X=benchmark_graphs(bench, ids)),
        "graf rf": CurvePredictor(lambda s: GraphFeatureRegressor(
            "nb101", model="rf", random_state=s), X=feats),
        "graf xgb": CurvePredictor(_graf("nb101"), X=feats),
        "graf xgb x5": CurvePredictor(_graf("nb101", 5), X=feats)}
    if table == "nb101":
        preds["gcn x5"] = CurvePredictor(
            lambda s: GCNPredictor(epochs=cfg.gcn_epochs, random_state=s, n_ensemble=5,
                                   **GCN_KW), X=preds["gcn"].X, ns=(172,))
        preds["gcn & graf"] = CurvePredictor(
            lambda s: ArchitectureEnsemble("nb101", members=(
                ("gcn", {"epochs": cfg.gcn_epochs, **GCN_KW}), ("graf", {})), random_state=s),
            X=cells, ns=(100, 172, 200))
    graphs = preds["gcn"].X
    if cfg.only:
        preds = {k: v for k, v in preds.items() if k in cfg.only}
    _warm_up(graphs)
    rows = sample_size_curves(preds, y, ns=ns, seeds=cfg.seeds, weights=weights,
                              groups=vertices, progress=True, desc=table)
    return {"space": "nb101", "table": table, "dataset": "cifar10", "split": "val",
            "labels": "108-epoch CIFAR-10 validation accuracy (the table's final label)",
            "n_cells": len(ids), "ns": list(ns), "seeds": list(cfg.seeds),
            "vertex_counts": {str(k): int(v) for k, v in
                              zip(*np.unique(vertices, return_counts=True), strict=True)},
            "sampler_weight_by_vertices": {str(k): float(weights[vertices == k].sum())
                                           for k in np.unique(vertices)},
            "sampler_effective_size": float(1 / (weights ** 2).sum()),
            "notes": [("gcn x5: N = 172 only" if table == "nb101" else
                       "N = 1000 is impossible on the 1k table (no test cells would be left)"),
                      f"gcn: {cfg.gcn_epochs} epochs, {GCN_KW}, all seeds",
                      "weighted_kendall_tau: pairs of held-out cells weighted by w_i * w_j, "
                      "w = NAS-Bench-101 sampler probability"],
            "rows": rows.round(6).to_dict(orient="records")}


def dynamics_section(cfg: argparse.Namespace, step: int) -> dict[str, Any] | None:
    """Item 6: sample-size curves on collected NB201 runs, dynamics read up to ``step``."""
    store = RunStore(cfg.store)
    if len(store.runs("done", space="nb201")) < 40:
        print(f"skipping nb201 dynamics: fewer than 40 done NB201 runs in {cfg.store} "
              "(python bench/_dynamics_runs.py --spaces nb201 collects them)")
        return None
    bench = get_benchmark("nb201")
    zc = bench.proxies(dataset="cifar10").add_prefix("zc.")
    data = load_dynamics(store, step=step, space="nb201", encoding="graf", extra=zc)
    # one run per distinct cell (NB201 duplicates are the same network after pruning)
    reps = bench.representatives().loc[data.runs["cell_id"].astype(str)]
    keep = ~reps.duplicated().to_numpy()
    runs = data.runs[keep].reset_index(drop=True)
    X, y = data.X[keep], data.y[keep]
    maps, _ = split_inputs(X)
    cells = runs["cell"].tolist()
    feats = graph_features("nb201", cells)
    with_zc = feats.join(zc.loc[runs["cell_id"].astype(str)].set_axis(feats.index))
    held_out = []
    for rid in runs["run_id"]:
        ev = store.load_arrays(rid, "evals")
        at = np.flatnonzero(ev["step"] == step)
        held_out.append(float(ev["val_acc"][at[0]]) if at.size else np.nan)
    graphs = graphs_from_cells("nb201", cells)
    preds: dict[str, Any] = {
        "params": bench.table().set_index("cell_id").loc[runs["cell_id"].astype(str),
                                                          "params"].to_numpy(float),
        "gcn": CurvePredictor(lambda s: GCNPredictor(epochs=cfg.gcn_epochs, random_state=s,
                                                     **GCN_KW), X=graphs),
        "graf+zc xgb": CurvePredictor(_graf("nb201"), X=with_zc),
        "dynamics forest": CurvePredictor(lambda s: DynamicsForest(random_state=s), X=maps),
        "dynamics gbt": CurvePredictor(lambda s: DynamicsGBT(random_state=s), X=maps),
        "dynamics+graf+zc forest": CurvePredictor(lambda s: DynamicsForest(random_state=s), X=X),
        "dynamics+graf+zc gbt": CurvePredictor(lambda s: DynamicsGBT(random_state=s), X=X)}
    if np.isfinite(held_out).all():
        preds[f"held-out acc @{step}"] = np.asarray(held_out)
    if cfg.only:
        preds = {k: v for k, v in preds.items() if k in cfg.only}
    ns = tuple(n for n in cfg.ns_dynamics if len(y) - n >= 20)
    _warm_up(graphs)
    rows = sample_size_curves(preds, y, ns=ns, seeds=cfg.seeds, progress=True,
                              desc=f"nb201 dynamics@{step}")
    return {"space": "nb201", "dataset": "cifar10", "split": f"dynamics@{step}",
            "labels": "200-epoch CIFAR-10 test accuracy (the table's final label) of the "
                      "collected runs' cells",
            "n_cells": len(y), "n_runs": len(data.y), "ns": list(ns),
            "seeds": list(cfg.seeds), "step": step,
            "runs": {"store": str(cfg.store), "model": "nb201 small",
                     "config": "bench/_dynamics_runs.py CONFIG (16x16 inputs, 200 mini-batches "
                               "of 64, lr 0.05 cosine, snapshots every 10)",
                     "mean_run_seconds": float(runs["wall_seconds"].mean())},
            "notes": ["one run per distinct cell; tau on the other collected runs",
                      "zc: NAS-Bench-Suite-Zero's published CIFAR-10 scores",
                      f"gcn: {cfg.gcn_epochs} epochs, {GCN_KW}, all seeds"],
            "rows": rows.round(6).to_dict(orient="records")}


# ----------------------------------------------------------------------------- reporting
def _best(rows: pd.DataFrame, metric: str, n: int) -> tuple[str, float]:
    agg = summarize_curves(rows[rows["n"] == n], metric)
    top = agg.loc[agg["mean"].idxmax()]
    return str(top["predictor"]), float(top["mean"])


def goals(sections: dict[str, Any]) -> dict[str, Any]:
    """Each goal of issue #13: the best predictor's mean at N, against the target."""
    out: dict[str, Any] = {}
    checks = [("nb201/cifar10/test", "nb201/cifar10", "kendall_tau"),
              ("nb201/cifar10/val", "nb201/cifar10", "kendall_tau"),
              ("nb101/cifar10/val", "nb101/table", "kendall_tau"),
              ("nb101/cifar10/val", "nb101/sampler", "weighted_kendall_tau"),
              ("nb201/cifar10/dynamics@100", "nb201/dynamics@100", "kendall_tau")]
    for key, goal, metric in checks:
        if key not in sections:
            continue
        rows = pd.DataFrame.from_records(sections[key]["rows"])
        for n, target in GOALS[goal].items():
            if n in set(rows["n"]):
                name, value = _best(rows, metric, n)
                out[f"{key} {metric} N={n}"] = {"target": target, "best": name,
                                                "value": value, "met": value >= target}
    return out


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|---|" + "---|" * (len(header) - 1),
            *["| " + " | ".join(r) + " |" for r in body], ""]


def _fitted_table(rows: pd.DataFrame, metric: str, sd: bool = True,
                  fit: bool = True) -> list[str]:
    """Params and the fitted predictors: metric per N, then (``fit``) fit seconds per N."""
    fitted = rows.groupby("predictor", sort=False)["fit_seconds"].max() > 0
    fixed = [p for p in fitted.index if p == "params" or p.startswith("held-out")]
    keep = rows[rows["predictor"].isin([*fixed, *fitted[fitted].index])]
    wide = curve_table(keep, metric, sd=sd)
    secs = curve_table(keep, "fit_seconds", digits=2, sd=False)
    body = [[p, *wide.loc[p], *([" / ".join(secs.loc[p]) if fitted[p] else "-"] if fit else [])]
            for p in wide.index]
    return _table(["predictor", *wide.columns, *(["fit s per N"] if fit else [])], body)


def markdown(results: dict[str, Any]) -> str:
    """README tables of the stored sections (``--table``)."""
    sections = results.get("sections", {})
    frames = {k: pd.DataFrame.from_records(sec["rows"]) for k, sec in sections.items()}
    lines: list[str] = []
    nb201 = [k for k in frames if k.startswith("nb201") and "/dynamics@" not in k]
    for key in nb201:
        lines += [f"**{key}**, labels: {sections[key]['labels']}; Kendall tau, mean ± sd over "
                  "seeds", ""]
        lines += _fitted_table(frames[key], "kendall_tau")
    if "nb201/cifar10/test" in frames:
        lines += ["**nb201/cifar10/test**: Spearman rho, mean over seeds", ""]
        lines += _fitted_table(frames["nb201/cifar10/test"], "spearman_rho", sd=False, fit=False)
    if nb201:  # fixed scores do not depend on N: their mean over every draw
        proxies = [p for p in frames[nb201[0]]["predictor"].unique()
                   if p == "params" or p.startswith("zc:")]
        body = [[p, *[f"{frames[k].loc[frames[k]['predictor'] == p, 'kendall_tau'].mean():.3f}"
                      for k in nb201]] for p in proxies]
        lines += ["**Fixed scores** (no fit): Kendall tau on the held-out cells, mean over "
                  "every draw", "", *_table(["score", *nb201], body)]
    for key in (k for k in frames if "/dynamics@" in k):
        sec = sections[key]
        lines += [f"**{key}**: {sec['n_cells']} collected runs of distinct cells, read up to "
                  f"mini-batch {sec['step']}; Kendall tau on the other runs, mean ± sd over "
                  "seeds", ""]
        lines += _fitted_table(frames[key], "kendall_tau")
    if "nb101_1k/cifar10/val" in frames:
        lines += ["**nb101_1k/cifar10/val** (the 1k table): Kendall tau on the other table "
                  "cells", ""]
        lines += _fitted_table(frames["nb101_1k/cifar10/val"], "kendall_tau")
    if "nb101/cifar10/val" in frames:
        rows = frames["nb101/cifar10/val"]
        lines += [f"**nb101/cifar10/val** ({sections['nb101/cifar10/val']['n_cells']:,} cells): "
                  "Kendall tau on the other table cells", ""]
        lines += _fitted_table(rows, "kendall_tau")
        lines += ["**nb101/cifar10/val**: sampler-weighted Kendall tau", ""]
        lines += _fitted_table(rows, "weighted_kendall_tau")
        at = rows[rows["n"] == 172]
        if not at.empty:
            cols = [("kendall_tau", "all"), ("weighted_kendall_tau", "sampler-weighted")] + [
                (f"kendall_tau[{v}]", f"{v} vertices (n≈{at[f'n_test[{v}]'].mean():.0f})")
                for v in (5, 6, 7) if f"kendall_tau[{v}]" in at]
            body = [[p, *[f"{d[c].mean():.3f} ± {d[c].std(ddof=1):.3f}" for c, _ in cols]]
                    for p, d in at.groupby("predictor", sort=False)]
            lines += ["**nb101/cifar10/val**, N = 172: Kendall tau on the held-out cells, "
                      "overall, sampler-weighted and per vertex count", ""]
            lines += _table(["predictor", *[name for _, name in cols]], body)
    for name, g in results.get("goals", {}).items():
        lines.append(f"- {name} >= {g['target']}: {'**met**' if g['met'] else '**missed**'} "
                     f"({g['best']} {g['value']:.3f})")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    ap.add_argument("--gcn-epochs", type=int, default=300)
    ap.add_argument("--quick", action="store_true", help="smoke run, own results file")
    ap.add_argument("--table", action="store_true", help="print the README tables and exit")
    ap.add_argument("--store", default=str(DYNAMICS_STORE),
                    help="run store of the nb201-dynamics section")
    ap.add_argument("--only", nargs="+", default=None,
                    help="run only these predictors; keep the stored rows of the others")
    cfg = ap.parse_args()
    torch.set_num_threads(1)
    name = "predictor_curves_quick" if cfg.quick else "predictor_curves"
    path = RESULTS / f"{name}.json"
    if cfg.table:
        print(markdown(json.loads(path.read_text())))
        return
    cfg.seeds = (0, 1) if cfg.quick else (0, 1, 2, 3, 4)
    cfg.gcn_seeds = (0,) if cfg.quick else (0, 1, 2)
    cfg.ns201 = (32, 100) if cfg.quick else (32, 100, 200, 1000)
    cfg.ns101 = (32, 100) if cfg.quick else (32, 100, 172, 200, 1000)
    cfg.ns_dynamics = (32,) if cfg.quick else (32, 100, 200)
    if cfg.quick:
        cfg.gcn_epochs = min(cfg.gcn_epochs, 10)
    t_all = time.perf_counter()
    for section in cfg.sections:
        space, dataset, split = SECTIONS[section]
        load0, t0 = os.getloadavg(), time.perf_counter()
        if split == "dynamics":
            for step in DYNAMICS_STEPS:
                _store_section(dynamics_section(cfg, step), cfg, name, path, load0, t0)
                load0, t0 = os.getloadavg(), time.perf_counter()
            continue
        res = (nb201_section(dataset, split, cfg) if space == "nb201"
               else nb101_section(cfg, space))
        _store_section(res, cfg, name, path, load0, t0)
    print(f"total {time.perf_counter() - t_all:.0f} s")
    print(markdown(json.loads(path.read_text())))


def _store_section(res: dict[str, Any] | None, cfg: argparse.Namespace, name: str, path: Any,
                   load0: tuple[float, ...], t0: float) -> None:
    """Merge one section's results into the results file (``--only``: keep other rows)."""
    if res is None:
        return
    res |= {"seconds": time.perf_counter() - t0, "load_start": list(load0),
            "load_end": list(os.getloadavg()),
            "command": "python " + " ".join(["bench/predictor_curves.py", *sys.argv[1:]])}
    # re-read before writing: another invocation may have written other sections meanwhile
    old = json.loads(path.read_text()).get("sections", {}) if path.is_file() else {}
    key = f"{res['space']}/{res['dataset']}/{res['split']}"
    if cfg.only and key in old:  # same draws (seeded): keep the other predictors' rows
        kept = [r for r in old[key]["rows"] if r["predictor"] not in cfg.only]
        res = {**old[key], "rows": kept + res["rows"],
               "only_runs": [*old[key].get("only_runs", []),
                             {k: res[k] for k in ("command", "seconds", "load_start",
                                                  "load_end")}]}
    old[key] = res
    write_results(name, {"sections": old, "goals": goals(old)})
    print(f"{key}: {res['seconds']:.0f} s, load {load0[0]:.2f} -> {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
