"""Benchmark `optuna_pruner`: inside real Optuna studies, does `DynamicsPruner` (the bundled NB201
dynamics predictor deciding Successive-Halving rungs) find better NB201 cells for the same total
mini-batches than Optuna's `SuccessiveHalvingPruner` and `HyperbandPruner` on the reported
held-out accuracy, or than no pruning?

* Pool: ``--pool`` NB201 table cells (none among the 300 the bundled predictor was fitted on),
  each trained once to the predictor's recipe (the reduced ``small`` network, 16x16 CIFAR-10
  from ``../shared/data``, 200 mini-batches of 64, SGD 0.05, cosine; snapshots every 10;
  held-out accuracy on 1,000 images every 25 mini-batches) into a run store (resumable).
* Studies: per seed, one Optuna study per pruner; trial k trains the k-th cell of a seeded
  permutation of the pool (the same order for every pruner), reporting the held-out accuracy
  every 25 mini-batches (and, for the dynamics pruner, its snapshots) and asking
  ``should_prune``. Training is *replayed* from the stored runs: continued training is
  deterministic, so a trial stopped at mini-batch b is the stored run's prefix and costs b
  mini-batches. A study starts trials until ``--budget`` mini-batches are spent (the last
  trial may overshoot; the spent budget is reported).
* Pruners: SH (``min_resource=25``, eta 3: rungs 25, 75), HB (25..200, eta 3), dynamics (the
  bundled predictor, snapshots up to 100, eta 3: rung 100), none (every trial runs to 200).
* Judged by the table (200-epoch CIFAR-10 test accuracy): regret of the incumbent (the
  completed trial with the best objective, i.e. held-out accuracy at 200) = pool best - its
  table accuracy; and the regret of the best completed trial by table accuracy (how good the
  set a pruner lets finish is). Mean ± 95% t-interval over ``--seeds`` seeds.

    python bench/optuna_pruner.py [--pool 40] [--seeds 10] [--budget 2000]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from _common import write_results
from _dynamics_runs import CONFIG, DATA, MODELS, SAMPLE_SEED
from scipy import stats

from workbench.benchmarks import get_benchmark
from workbench.collect import collect, make_requests
from workbench.features import Snapshots
from workbench.integrations.optuna import DynamicsPruner, report_snapshots
from workbench.predictors import default_dynamics_predictor
from workbench.store import RunStore

STORE = Path(__file__).resolve().parent / ".runs" / "optuna"
POOL_SEED = 19_000
REPORT_EVERY = 25
RECIPE = CONFIG.replace(eval_at=tuple(range(REPORT_EVERY, CONFIG.steps + 1, REPORT_EVERY)))
ETA = 3


def pool_cells(n: int) -> list[str]:
    """``n`` NB201 table ids, none among the bundled predictor's 300 training cells."""
    bench = get_benchmark("nb201")
    trained = {r.cell_id for r in make_requests(300, space="nb201", config=CONFIG,
                                                model=MODELS["nb201"], data=DATA,
                                                sample_seed=SAMPLE_SEED)}
    ids = bench.sample_ids(n + 100, rng=POOL_SEED)
    return [i for i in ids if bench.cell_id(bench.cell(i)) not in trained][:n]


def collect_pool(n: int, store: Path, device: str = "auto") -> Any:
    """Train (or resume) the pool's runs to the full recipe; return their rows."""
    return collect(pool_cells(n), space="nb201", store=store,
                   config=RECIPE.replace(device=device), model=MODELS["nb201"], data=DATA,
                   workers=0, device=device)


def load_pool(store: RunStore, rows: Any) -> list[dict[str, Any]]:
    """Per pool run: table label, held-out accuracy by step, snapshots."""
    out = []
    for _, r in rows.iterrows():
        ev = store.load_arrays(r["run_id"], "evals")
        out.append({"cell_id": str(r["cell_id"]), "label": float(r["label"]),
                    "acc": dict(zip(ev["step"].tolist(), ev["val_acc"].tolist(), strict=True)),
                    "snaps": Snapshots.from_arrays(store.load_arrays(r["run_id"], "snapshots"))})
    return out


def pruners(predictor: Any) -> dict[str, Any]:
    """A fresh pruner per method (pruners keep per-study state)."""
    return {
        "none": optuna.pruners.NopPruner(),
        "SH": optuna.pruners.SuccessiveHalvingPruner(min_resource=REPORT_EVERY,
                                                     reduction_factor=ETA),
        "HB": optuna.pruners.HyperbandPruner(min_resource=REPORT_EVERY,
                                             max_resource=CONFIG.steps, reduction_factor=ETA),
        "dynamics": DynamicsPruner(predictor, reduction_factor=ETA),
    }


def run_study(pool: list[dict[str, Any]], order: np.ndarray, pruner: Any, budget: int,
              seed: int) -> dict[str, Any]:
    """One study: trials replay the pool in ``order`` until ``budget`` mini-batches are spent."""
    dynamics = isinstance(pruner, DynamicsPruner)

    def objective(trial: optuna.Trial) -> float:
        run = pool[int(order[trial.number])]
        trial.set_user_attr("cell_id", run["cell_id"])
        for step in RECIPE.eval_at:
            trial.report(run["acc"][step], step)
            if dynamics:
                report_snapshots(trial, run["snaps"].truncate(step), store=False)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(run["acc"][CONFIG.steps])

    study = optuna.create_study(direction="maximize", pruner=pruner,
                                study_name=f"seed{seed}",
                                sampler=optuna.samplers.RandomSampler(seed=seed))
    spent = 0
    while spent < budget and len(study.trials) < len(order):
        study.optimize(objective, n_trials=1)
        spent += int(study.trials[-1].last_step or 0)
    best = max(r["label"] for r in pool)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    label = {r["cell_id"]: r["label"] for r in pool}
    incumbent = max(done, key=lambda t: t.value) if done else None
    return {
        "spent": spent, "trials": len(study.trials), "completed": len(done),
        "regret": best - label[incumbent.user_attrs["cell_id"]] if incumbent else math.nan,
        "regret_best_completed": best - max(label[t.user_attrs["cell_id"]] for t in done)
        if done else math.nan,
    }


def summary(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=float)
    half = float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)) \
        if v.size > 1 else math.nan
    return {"mean": float(v.mean()), "ci95": half}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pool", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, nargs="+", default=[1000, 2000])
    ap.add_argument("--store", type=Path, default=STORE)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--collect-only", action="store_true")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    load_before = os.getloadavg()
    start = time.perf_counter()
    rows = collect_pool(args.pool, args.store, args.device)
    collect_seconds = time.perf_counter() - start
    if args.collect_only:
        print(rows["status"].value_counts().to_dict())
        return
    store = RunStore(args.store)
    pool = load_pool(store, rows[rows["status"] == "done"])
    predictor = default_dynamics_predictor()
    results: dict[str, Any] = {}
    start = time.perf_counter()
    for budget in args.budget:
        per: dict[str, list[dict[str, Any]]] = {}
        for seed in range(args.seeds):
            order = np.random.default_rng([POOL_SEED, seed]).permutation(len(pool))
            for name, pruner in pruners(predictor).items():
                per.setdefault(name, []).append(run_study(pool, order, pruner, budget, seed))
        results[str(budget)] = {
            name: {key: summary([r[key] for r in runs]) for key in runs[0]}
            for name, runs in per.items()}
    study_seconds = time.perf_counter() - start
    labels = np.array([r["label"] for r in pool])
    tau = {f"val_acc@{step}": float(stats.kendalltau([r["acc"][step] for r in pool], labels)[0])
           for step in RECIPE.eval_at}
    dyn = DynamicsPruner(predictor)
    tau["dynamics@100"] = float(stats.kendalltau([dyn.score(r["snaps"], 100) for r in pool],
                                                 labels)[0])
    path = write_results("optuna_pruner", {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "recipe": {"steps": CONFIG.steps, "batch_size": CONFIG.batch_size, "lr": CONFIG.lr,
                   "resize": CONFIG.resize, "snapshot_every": CONFIG.snapshot_every,
                   "report_every": REPORT_EVERY, "model": MODELS["nb201"], **DATA},
        "pool": {"n": len(pool), "best_label": float(labels.max()),
                 "mean_label": float(labels.mean()), "kendall_tau_vs_table": tau},
        "predictor": predictor.metadata_,
        "results": results,
        "seconds": {"collect_this_process": collect_seconds, "studies": study_seconds},
        "loadavg": {"before": list(load_before), "after": list(os.getloadavg())},
    })
    print(f"wrote {path}; Kendall tau vs the table: {tau}")
    for budget, res in results.items():
        for name, r in res.items():
            reg, best = r["regret"], r["regret_best_completed"]
            print(f"{budget:>5} {name:>9}: regret {reg['mean']:.2f} ± {reg['ci95']:.2f}, "
                  f"best completed {best['mean']:.2f} ± {best['ci95']:.2f}, "
                  f"{r['trials']['mean']:.1f} trials ({r['completed']['mean']:.1f} completed), "
                  f"{r['spent']['mean']:.0f} mini-batches")


if __name__ == "__main__":
    sys.exit(main())
