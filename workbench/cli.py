"""Command line: ``train``, ``collect``, ``runs``, ``verify``, ``search``, ``demo``, ``info``."""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_STORE = "runs/store"


def _train_config(args: argparse.Namespace) -> Any:
    from workbench.training import TrainConfig

    budget = {"epochs": args.epochs} if args.epochs is not None else {"steps": args.steps}
    return TrainConfig(**budget, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
                       snapshot_every=args.snapshot_every, resize=args.resize, seed=args.seed,
                       device=args.device, eval_every=args.eval_every,
                       curve_every=args.curve_every)


def _add_train_args(p: argparse.ArgumentParser) -> None:
    from workbench.spaces import list_spaces

    p.add_argument("--space", choices=list_spaces(), default="nb201")
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--source", default=None, help="'bundled' (default) or 'shared' (full set)")
    p.add_argument("--data-root", default=None, help="official CIFAR python folder or JPEG npz")
    p.add_argument("--model", default="small", help="model preset: paper, small, tiny")
    p.add_argument("--steps", type=int, default=200, help="mini-batches (default 200)")
    p.add_argument("--epochs", type=float, default=None, help="epochs instead of --steps")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--optimizer", default="sgd")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--snapshot-every", type=int, default=20)
    p.add_argument("--curve-every", type=int, default=10)
    p.add_argument("--eval-every", type=int, default=None)
    p.add_argument("--resize", type=int, default=16, help="input side (16 for fast CPU runs)")
    p.add_argument("--val-size", type=int, default=1000)
    p.add_argument("--train-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--store", default=DEFAULT_STORE)


def _data_config(args: argparse.Namespace) -> dict[str, Any]:
    data: dict[str, Any] = {"val_size": args.val_size}
    if args.source:
        data["source"] = args.source
    if args.data_root:
        data["root"] = args.data_root
    if args.train_size:
        data["train_size"] = args.train_size
    return data


def cmd_collect(args: argparse.Namespace) -> int:
    """Train many cells with snapshots into a store (resumable)."""
    from workbench.collect import collect

    if args.cells_file:
        path = Path(args.cells_file)
        if not path.is_file():
            raise ValueError(f"--cells-file {args.cells_file}: no such file")
        cells: Any = [ln.strip() for ln in path.read_text().splitlines()
                      if ln.strip() and not ln.startswith("#")]
    elif args.cells:
        cells = args.cells
    else:
        cells = args.n
    rows = collect(cells, space=args.space, store=args.store, config=_train_config(args),
                   dataset=args.dataset, model=args.model, seeds=args.seeds,
                   data=_data_config(args), sample_seed=args.sample_seed, workers=args.workers,
                   device=args.device, checkpoint=args.checkpoint,
                   retry_failed=args.retry_failed, repair=args.repair,
                   **_backend_options(args))
    return _report_rows(rows, args)


def _report_rows(rows: Any, args: argparse.Namespace) -> int:
    """Print a collection's status counts and why runs failed; 1 when any run failed."""
    print(rows["status"].value_counts().to_string())
    failed = rows[rows["status"] == "failed"]
    for _, row in failed.head(5).iterrows():
        print(f"failed {row['run_id'][:8]} ({row['cell_id']}): {_last_line(row['error'])}",
              file=sys.stderr)
    running = int((rows["status"] == "running").sum())
    if running:
        print(f"{running} runs are being trained by other processes (see `workbench runs "
              f"--store {args.store} --status running`)", file=sys.stderr)
    if len(failed):
        print(f"{len(failed)} runs failed; after fixing the cause, rerun with --retry-failed",
              file=sys.stderr)
        return 1
    return 0


def _last_line(error: Any, width: int = 100) -> str:
    """The last non-empty line of a stored traceback, shortened to ``width`` characters."""
    if not isinstance(error, str) or not error.strip():
        return ""
    line = [ln for ln in error.strip().splitlines() if ln.strip()][-1].strip()
    return line if len(line) <= width else line[: width - 3] + "..."


def _backend_options(args: argparse.Namespace) -> dict[str, Any]:
    """collect()'s backend keywords from ``--backend``/``--ray-*`` (absent for ``train``)."""
    backend = getattr(args, "backend", "local")
    if backend == "local":
        return {}
    from workbench.collect import import_ray

    try:
        import_ray("--backend ray")
    except ImportError as exc:  # a missing extra is a usage error here: one line, no traceback
        raise ValueError(str(exc)) from None
    return {"backend": backend, "ray_address": args.ray_address, "num_cpus": args.ray_cpus,
            "num_gpus": args.ray_gpus, "max_retries": args.ray_retries}


def cmd_train(args: argparse.Namespace) -> int:
    """Train one cell (by string, table id, or 'random') and store it."""
    from workbench.benchmarks import get_benchmark

    cell = args.cell
    if cell == "random":
        cell = get_benchmark(args.space).sample_ids(1, rng=args.seed)[0]
    args.cells, args.cells_file, args.n = [cell], None, None
    args.seeds, args.sample_seed, args.workers = [args.seed], 0, 0
    args.checkpoint, args.repair = True, False
    return cmd_collect(args)


def cmd_runs_export(args: argparse.Namespace) -> int:
    """``runs export --tensorboard DIR``: write the store's runs as TensorBoard event files."""
    from workbench.integrations import export_tensorboard

    if not args.tensorboard:
        raise ValueError("runs export needs a target: --tensorboard DIR")
    done = export_tensorboard(args.store, args.tensorboard, status=args.status or "done",
                              progress=False)
    print(f"{len(done)} runs ({int(done['scalars'].sum())} scalars) written to "
          f"{args.tensorboard}; view them with: tensorboard --logdir {args.tensorboard}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """List the runs of a store (or ``runs export --tensorboard DIR`` them)."""
    import pandas as pd

    from workbench.store import RunStore

    if not (Path(args.store) / "index.sqlite").exists():
        print(f"no run store at {args.store}", file=sys.stderr)
        return 1
    if args.action == "export":
        return cmd_runs_export(args)
    df = RunStore(args.store, readonly=True).runs(status=args.status)
    if len(df):
        df["error"] = [_last_line(e, 60) for e in df["error"]]
    cols = [c for c in ("run_id", "space", "cell_id", "dataset", "seed", "status", "steps_done",
                        "wall_seconds", "final_val_acc", "label", "error") if c in df.columns]
    if len(df) and not df["error"].astype(bool).any():
        cols.remove("error")
    with pd.option_context("display.width", 250, "display.max_rows", args.limit,
                           "display.max_colwidth", 60):
        print(df[cols].tail(args.limit).to_string(index=False) if len(df) else "no runs")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Check that every finished run's files exist and read back; --repair requeues the bad."""
    from workbench.store import RunStore

    store = RunStore(args.store, readonly=not args.repair)
    bad = store.verify(deep=not args.shallow, repair=args.repair)
    counts = store.counts()
    checked = counts["done"] + counts["diverged"]
    if not len(bad):
        print(f"{checked} finished runs checked in {args.store}: all files present and readable")
        return 0
    for _, row in bad.iterrows():
        print(f"{row['run_id']} ({row['status']}): {row['problem']}")
    if args.repair:
        print(f"{len(bad)} of {checked} finished runs requeued; their files were moved to "
              "runs/<id>/.damaged-*; run the same collect again to retrain them")
        return 0
    print(f"{len(bad)} of {checked} finished runs are damaged; `workbench verify --store "
          f"{args.store} --repair` requeues them", file=sys.stderr)
    return 1


def cmd_demo(args: argparse.Namespace) -> int:
    """The README's main job: collect a few cells, write an HTML report."""
    from workbench.demo import run_demo

    path = run_demo(Path(args.out), quick=args.quick, device=args.device)
    print(f"report written to {path}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Versions, devices, spaces, benchmarks and data locations."""
    import torch

    from workbench import __version__
    from workbench._device import resolve_device
    from workbench._paths import shared_data_dir
    from workbench.benchmarks import get_benchmark, list_benchmarks
    from workbench.spaces import list_spaces

    info = {
        "workbench": __version__, "torch": torch.__version__,
        "device(auto)": str(resolve_device("auto")), "spaces": list_spaces(),
        "benchmarks": {n: len(get_benchmark(n)) for n in list_benchmarks()},
        "shared_data": str(shared_data_dir()),
    }
    print(json.dumps(info, indent=2))
    return 0


#: The registered searches (``workbench.search.list_searches()`` names) the CLI can run.
SEARCH_METHODS = ("sh", "hyperband", "random", "evolution", "local_search", "optuna",
                  "layernas")
#: ``as_ranker`` names (observed, dynamics) and the GCN rankers the CLI fits itself.
SEARCH_RANKERS = ("observed", "dynamics", "combined", "gcn")
RANKED_METHODS = ("sh", "hyperband", "layernas")  # methods whose decisions a ranker makes here
#: they run --evaluations evaluations
BUDGETED_METHODS = ("random", "evolution", "local_search", "optuna", "layernas")
GCN_SEED = 10_000  # the GCN's table cells are drawn with this seed, whatever --seed is
SEARCH_HELP = """Run a search on real training: every evaluation (cell, mini-batches) is trained
once into --store and answered from it afterwards, so after Ctrl-C the same command replays
what was done and continues; run again after it finished, it trains nothing.

--ranker dynamics uses the bundled predictor (fitted on `small` NB201 networks, snapshots
every 10 mini-batches, read at mini-batch 100) unless --predictor names a file; the model,
snapshot interval and first rung must match it (checked before anything trains).
--ranker gcn / combined first fit a rank-target GCN on --gcn-cells random table cells whose
labels are the table's final accuracy on --dataset (no training; well under a minute on
a CPU); those cells are kept out of the search's candidates.
--cost latency:pixel3 --max-cost 6.4 holds the search to a cost target read from the table
(HW-NAS-Bench latency in ms or energy in mJ on a device of NB201, or params in millions): every
method trains and returns only cells within it; LayerNAS buckets by that cost (16 buckets per
layer, exact layer ranges: bench/hardware.py's setting), and its tables hold costlier prefixes
on the way.

  workbench search --method sh --ranker dynamics --n 27 --store runs/search
  workbench search --method layernas --cost latency:pixel3 --max-cost 6.4 --store runs/hw
"""


def _at_least(flag: str, value: Any, minimum: float) -> None:
    if value is not None and value < minimum:
        raise ValueError(f"{flag} must be >= {minimum:g}, got {value!r}")


def _steps_of(budget: float) -> int:
    """Whole mini-batches of a budget, rounded up as ``TrainingBackend.steps`` does."""
    return max(1, math.ceil(budget * (1 - 1e-9)))


def _rung_steps(min_budget: int, max_budget: int, eta: float) -> list[int]:
    """Mini-batches of every rung SH or Hyperband asks for with these budgets (``eval_at``;
    the same for every method, so their runs share the store)."""
    from workbench.search import hyperband_brackets, sh_schedule

    budgets = set(sh_schedule(1, min_budget, max_budget, eta)["budget"])
    for rung in hyperband_brackets(min_budget, max_budget, eta)["budgets"]:
        budgets.update(rung)
    return sorted({_steps_of(b) for b in budgets})


def _search_plan(args: argparse.Namespace, eta: float) -> dict[str, Any]:
    """Per method: the budget its ranker first scores at, its evaluations and their budget."""
    from workbench.search import hyperband_brackets, sh_cost, sh_schedule

    lo, hi = args.min_budget, args.max_budget
    if args.method not in BUDGETED_METHODS:
        if args.evaluations is not None:
            raise ValueError(f"--evaluations applies to {', '.join(BUDGETED_METHODS)}; "
                             f"{args.method} spends what its rungs need")
        if args.method == "sh":
            sched = sh_schedule(args.n, lo, hi, eta)
            return {"first": lo, "planned": int(sched["n"].sum()), "budget": None}
        brackets = hyperband_brackets(lo, hi, eta)
        return {"first": float(brackets["r"].min()), "budget": None,
                "planned": int(sum(sum(n) for n in brackets["n_per_rung"]))}
    budget = {"random": hi, "evolution": min(hi, lo * eta), "local_search": min(hi, lo * eta),
              "optuna": min(hi, lo * eta), "layernas": lo}[args.method]
    evals = args.evaluations
    if evals is None:  # as many as one SH run of --n candidates buys
        evals = max(1, int(sh_cost(args.n, lo, hi, eta) // _steps_of(budget)))
    return {"first": budget, "planned": evals, "budget": budget}


def _dynamics_predictor(args: argparse.Namespace, first: int) -> Any:
    """The dynamics predictor (file or bundled), checked against this search's recipe."""
    from workbench.predictors import default_dynamics_predictor, load_predictor

    if args.predictor is None:
        p, where, space = default_dynamics_predictor(), "the bundled dynamics predictor", "nb201"
    else:
        where = f"--predictor {args.predictor}"
        if not Path(args.predictor).is_file():
            raise ValueError(f"{where}: no such file")
        try:
            p = load_predictor(args.predictor, device="cpu")
        except ValueError:
            raise
        except Exception as exc:  # not a predictor file at all (zip, JSON or key errors)
            raise ValueError(f"{where}: cannot read it as a predictor file "
                             f"({type(exc).__name__}: {exc})") from None
        space = None
    meta = dict(getattr(p, "metadata_", None) or {})
    train = meta.get("train")
    if not isinstance(train, dict):
        train = {}
    space = meta.get("space") or space
    if space is not None and space != args.space:
        raise ValueError(f"{where} was fitted on {space} runs, not --space {args.space}")
    if meta.get("step") is None:
        raise ValueError(f"{where} names no step in its metadata (the mini-batch whose "
                         "snapshots it reads): save it with metadata={'step': ...}")
    step = int(meta["step"])
    if step > first:
        raise ValueError(f"{where} reads snapshots up to mini-batch {step}, but the first "
                         f"rung ranked is {first} mini-batches (--min-budget "
                         f"{args.min_budget}); allowed: --min-budget >= {step}")
    preset = meta.get("model_preset")
    if preset is not None and preset != args.model:
        raise ValueError(f"--model {args.model!r} does not match {where}, fitted on "
                         f"{preset!r} networks; allowed: --model {preset}")
    every = meta.get("snapshot_every", train.get("snapshot_every"))
    if every is not None and int(every) != args.snapshot_every:
        raise ValueError(f"--snapshot-every {args.snapshot_every} does not match {where}, "
                         f"fitted on snapshots every {int(every)} mini-batches; allowed: "
                         f"--snapshot-every {int(every)}")
    resize = train.get("resize")
    if resize is not None and int(resize) != args.resize:
        raise ValueError(f"--resize {args.resize} does not match {where}, fitted on "
                         f"{int(resize)}x{int(resize)} inputs; allowed: --resize {int(resize)}")
    return p


def _fit_gcn(backend: Any, args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """A rank-target GCN fitted on ``--gcn-cells`` table cells (table labels, no training)."""
    from workbench.benchmarks import get_benchmark
    from workbench.predictors import GCNPredictor, graphs_from_cells

    bench = get_benchmark(args.space)
    if args.dataset not in bench.datasets:
        raise ValueError(f"--ranker {args.ranker} needs the {args.space} table's final "
                         f"accuracy on --dataset {args.dataset!r}; the table has "
                         f"{list(bench.datasets)}")
    cells = backend.sample(args.gcn_cells, rng=GCN_SEED)
    y = [bench.final_accuracy(c, dataset=args.dataset) for c in cells]
    print(f"fitting the GCN on {len(cells)} {args.space} table cells (table labels, no "
          "training); they are kept out of the search", file=sys.stderr)
    gcn = GCNPredictor(epochs=150, lr=1e-3, weight_decay=1e-4, target="rank", device="cpu")
    return gcn.fit(graphs_from_cells(args.space, cells), y), cells


def _search_view(backend: Any, exclude: Sequence[Any], bar: Any) -> Any:
    """``backend`` without the ``exclude`` cells, ticking ``bar`` once per evaluation."""
    from workbench.search import PoolBackend

    class _View(PoolBackend):
        def __init__(self) -> None:
            super().__init__(backend, None, exclude=exclude)
            self.dataset = backend.dataset  # LayerNAS reads it for its cost table
            self.count = 0
            self.reused = 0

        def evaluate(self, cell: Any, budget: float, previous: Any = None) -> Any:
            ev = self.backend.evaluate(cell, budget, previous=previous)
            self.count += 1
            self.reused += bool(ev.info.get("reused"))
            if bar.total is not None and bar.n >= bar.total:  # LayerNAS may overshoot by one
                bar.total = bar.n + 1
            bar.set_postfix(trained=backend.trained_steps, stored=self.reused, refresh=False)
            bar.update(1)
            return ev

        def evaluate_many(self, requests: Sequence[tuple[Any, float, Any]]) -> list[Any]:
            return [self.evaluate(c, b, p) for c, b, p in requests]

    return _View()


def _cost_target(args: argparse.Namespace) -> tuple[Any, float, str] | None:
    """``(cost, max, unit)`` of ``--cost METRIC[:DEVICE] --max-cost X`` (cost: "params" or
    ``(metric, device)``), None without them; ``ValueError`` naming a bad value."""
    from workbench.benchmarks import get_benchmark

    if args.cost is None and args.max_cost is None:
        return None
    if args.cost is None or args.max_cost is None:
        raise ValueError("--cost and --max-cost go together (e.g. --cost latency:pixel3 "
                         f"--max-cost 6.4), got --cost {args.cost!r} --max-cost {args.max_cost!r}")
    if not math.isfinite(args.max_cost):
        raise ValueError(f"--max-cost must be a finite number, got {args.max_cost!r}")
    metric, _, device = str(args.cost).partition(":")
    cost: Any = metric if not device else (metric, device)
    known = get_benchmark(args.space).cost_metrics(dataset=args.dataset)
    pairs = list(zip(known["metric"], known["device"], strict=True))
    if (metric, device or "-") not in pairs:
        allowed = [m if d == "-" else f"{m}:{d}" for m, d in pairs]
        raise ValueError(f"unknown --cost {args.cost!r} for {args.space} on {args.dataset}; "
                         f"allowed: {', '.join(allowed)}")
    unit = str(known["unit"].iloc[pairs.index((metric, device or "-"))])
    return cost, float(args.max_cost), unit


def _write_csv(frame: Any, path: Path) -> None:
    """Write ``frame`` to ``path`` as CSV atomically (temp file, fsync, ``os.replace``)."""
    from workbench._io import atomic_write

    atomic_write(path, frame.to_csv(index=False))


def cmd_search(args: argparse.Namespace) -> int:
    """Run a search on real training into a run store (Ctrl-C, rerun: resumes)."""
    from tqdm.auto import tqdm

    from workbench.search import (
        CombinedRanker,
        CostConstraint,
        DynamicsRanker,
        GraphRanker,
        TrainingBackend,
        get_search,
    )
    from workbench.store import RunStore
    from workbench.training import TrainConfig

    for flag, value, low in (("--n", args.n, 1), ("--eta", args.eta, 2),
                             ("--min-budget", args.min_budget, 1),
                             ("--max-budget", args.max_budget, 1),
                             ("--snapshot-every", args.snapshot_every, 1),
                             ("--gcn-cells", args.gcn_cells, 2), ("--seed", args.seed, 0),
                             ("--train-seed", args.train_seed, 0),
                             ("--evaluations", args.evaluations, 1),
                             ("--resize", args.resize, 1), ("--val-size", args.val_size, 1)):
        _at_least(flag, value, low)
    if not math.isfinite(args.eta):
        raise ValueError(f"--eta must be a finite number >= 2, got {args.eta!r}")
    if args.min_budget > args.max_budget:
        raise ValueError(f"--min-budget {args.min_budget} must not exceed --max-budget "
                         f"{args.max_budget}")
    if args.ranker != "observed" and args.method not in RANKED_METHODS:
        raise ValueError(f"--ranker {args.ranker!r} does not apply to --method {args.method} "
                         f"(it ranks by the observed accuracy); allowed with "
                         f"{', '.join(RANKED_METHODS)}")
    if args.method == "layernas" and args.ranker in ("combined", "gcn"):
        raise ValueError(f"--ranker {args.ranker!r} does not apply to --method layernas: it "
                         "makes its own candidates and cannot keep out the GCN's training "
                         "cells; allowed: observed, dynamics")
    if args.method == "layernas" and args.space != "nb201":
        raise ValueError(f"--method layernas searches nb201 only, got --space {args.space}")
    if args.predictor is not None and args.ranker not in ("dynamics", "combined"):
        raise ValueError(f"--predictor applies to --ranker dynamics or combined, not "
                         f"{args.ranker!r}")
    target = _cost_target(args)
    eta = int(args.eta) if float(args.eta).is_integer() else float(args.eta)
    plan = _search_plan(args, eta)
    predictor = (_dynamics_predictor(args, _steps_of(plan["first"]))
                 if args.ranker in ("dynamics", "combined") else None)
    rungs = _rung_steps(args.min_budget, args.max_budget, eta)
    config = TrainConfig(steps=args.max_budget, resize=args.resize,
                         snapshot_every=args.snapshot_every, seed=args.train_seed,
                         device=args.device, eval_at=tuple(rungs))
    data = _data_config(args)
    store = RunStore(args.store)
    backend = TrainingBackend(args.space, max_budget=args.max_budget,
                              min_budget=args.min_budget, dataset=args.dataset,
                              source=data.get("source", "bundled"), root=data.get("root"),
                              train_size=data.get("train_size"), val_size=args.val_size,
                              model=args.model, config=config, checkpoints=store,
                              charge=args.charge)
    gcn, held_out = (_fit_gcn(backend, args) if args.ranker in ("combined", "gcn")
                     else (None, []))
    ranker: Any = "observed"
    if args.ranker == "dynamics":
        ranker = DynamicsRanker(predictor)
    elif args.ranker == "gcn":
        ranker = GraphRanker(gcn, args.space)
    elif args.ranker == "combined":
        ranker = CombinedRanker([DynamicsRanker(predictor), GraphRanker(gcn, args.space)],
                                how="rank", name="dynamics&gcn")
    bar = tqdm(total=plan["planned"], desc=f"{args.method} {args.ranker}", unit="eval",
               file=sys.stderr)
    view = _search_view(backend, held_out, bar)
    kwargs: dict[str, Any] = {"backend": view, "seed": args.seed}
    if args.method == "sh":
        kwargs.update(n=args.n, min_budget=args.min_budget, max_budget=args.max_budget,
                      eta=eta, ranker=ranker)
    elif args.method == "hyperband":
        kwargs.update(min_budget=args.min_budget, max_budget=args.max_budget, eta=eta,
                      ranker=ranker, repeats=1)
    elif args.method == "random":
        kwargs.update(budget=plan["budget"])
    elif args.method == "evolution":
        kwargs.update(population=10, sample_size=3, budget=plan["budget"], max_attempts=20)
    elif args.method in ("local_search", "optuna"):
        kwargs.update(budget=plan["budget"])
    else:
        kwargs.update(budget=plan["budget"], ranker=ranker)
    if target is not None and args.method == "layernas":  # bench/hardware.py's setting
        kwargs.update(cost=target[0], target=target[1], range_rule="exact",
                      buckets_per_layer=16)
    elif target is not None:
        kwargs["constraint"] = CostConstraint(target[0], max_value=target[1])
    try:
        search = get_search(args.method, **kwargs)
        search.run(max_evaluations=plan["planned"] if args.method in BUDGETED_METHODS
                   else None, progress=False)
    except KeyboardInterrupt:
        bar.close()
        print(f"\ninterrupted after {view.count} evaluations; the finished ones are kept in "
              f"{args.store}. Resume with the same command:\n  workbench "
              f"{shlex.join(args.argv)}", file=sys.stderr)
        return 130
    finally:
        bar.close()
    history = search.history
    out = Path(args.out) if args.out else (
        Path(args.store) / f"history-{args.method}-{args.ranker}-{args.seed}.csv")
    _write_csv(history, out)
    unit = "mini-batches" if args.charge == "steps" else "s"
    try:
        cell, score = search.best()
    except RuntimeError:  # LayerNAS stopped before its last layer's table had a member
        print(f"no best cell: the last layer's table is still empty after {view.count} "
              "evaluations; give more --evaluations")
    else:
        print(f"best cell: {view.format(cell)} (id {view.cell_id(cell)})")
        print(f"score: {score:.2f} (held-out accuracy, %)")
        if target is not None:
            costs = CostConstraint(target[0], max_value=target[1]).values(backend)
            print(f"{args.cost}: {costs.loc[str(view.cell_id(cell))]:.4g} {target[2]} "
                  f"(--max-cost {target[1]:g})")
        final = search.incumbent_final()
        if math.isfinite(final):
            print(f"table final accuracy ({args.dataset}): {final:.2f}")
    print(f"total cost: {search.total_cost:.1f} {unit} over {view.count} evaluations "
          f"({view.reused} answered from the store, {backend.trained_steps} new mini-batches "
          "trained)")
    print(f"history: {out} ({len(history)} rows)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``workbench`` command."""
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help=cmd_train.__doc__)
    _add_train_args(p)
    p.add_argument("--retry-failed", action="store_true",
                   help="retrain the cell if its run failed or diverged before")
    p.add_argument("cell", help="cell string, table id (NB101 hash / NB201 index) or 'random'")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("collect", help=cmd_collect.__doc__)
    _add_train_args(p)
    p.add_argument("--n", type=int, default=8, help="cells to sample from the table")
    p.add_argument("--cells", nargs="*", default=None, help="cell strings or table ids")
    p.add_argument("--cells-file", default=None, help="file with one cell or id per line")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--sample-seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="0 = in this process")
    p.add_argument("--checkpoint", action="store_true", help="keep final checkpoints")
    p.add_argument("--retry-failed", action="store_true",
                   help="retrain runs that failed or diverged before")
    p.add_argument("--repair", action="store_true",
                   help="retrain finished runs whose files are missing or damaged")
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="local: this process or --workers processes; ray: one Ray task per run "
                        "(pip install -e .[ray])")
    p.add_argument("--ray-address", default=None,
                   help="Ray cluster to join ('auto', host:port, ray://host:10001); "
                        "default: $RAY_ADDRESS or a new local Ray")
    p.add_argument("--ray-cpus", type=float, default=1, help="CPUs per run on Ray (default 1)")
    p.add_argument("--ray-gpus", type=float, default=None,
                   help="GPUs per run on Ray, fractions share a GPU (default: 1 if the cluster "
                        "has GPUs, else 0)")
    p.add_argument("--ray-retries", type=int, default=3,
                   help="retries of a run whose Ray worker died (default 3)")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("runs", help=cmd_runs.__doc__)
    p.add_argument("action", nargs="?", choices=["list", "export"], default="list",
                   help="list the runs (default) or export them (--tensorboard DIR)")
    p.add_argument("--store", default=DEFAULT_STORE)
    p.add_argument("--status", default=None)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--tensorboard", metavar="DIR", default=None,
                   help="with export: write TensorBoard event files of the runs to DIR")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("verify", help=cmd_verify.__doc__)
    p.add_argument("--store", default=DEFAULT_STORE)
    p.add_argument("--repair", action="store_true",
                   help="requeue damaged runs (their files are moved aside, not deleted)")
    p.add_argument("--shallow", action="store_true",
                   help="check that files exist and open, without reading every byte")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("search", help=cmd_search.__doc__, description=SEARCH_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    from workbench.spaces import list_spaces

    p.add_argument("--space", choices=list_spaces(), default="nb201")
    p.add_argument("--method", choices=list(SEARCH_METHODS), default="sh",
                   help="a registered search (workbench.search.list_searches()): sh: "
                        "Successive Halving, hyperband: one pass of its brackets, random: "
                        "random search, evolution: regularized evolution, local_search: local "
                        "search, optuna: Optuna's TPE sampler, layernas: LayerNAS (nb201)")
    p.add_argument("--ranker", choices=list(SEARCH_RANKERS), default="observed",
                   help="what decides the rungs (sh, hyperband) or the tables (layernas; "
                        "observed or dynamics): observed held-out accuracy, dynamics "
                        "predictor, gcn, or combined = mean normalised rank of dynamics and "
                        "gcn; random, evolution, local_search and optuna take observed only")
    p.add_argument("--n", type=int, default=27,
                   help="SH candidates (default 27); for random, evolution, local_search, "
                        "optuna and layernas it sizes the default --evaluations; hyperband "
                        "ignores it")
    p.add_argument("--eta", type=float, default=3, help="rung ratio (default 3)")
    p.add_argument("--min-budget", type=int, default=100,
                   help="first rung, mini-batches (default 100: the bundled dynamics "
                        "predictor reads snapshots up to mini-batch 100)")
    p.add_argument("--max-budget", type=int, default=900,
                   help="last rung, mini-batches (default 900); the learning-rate schedule "
                        "spans it")
    p.add_argument("--evaluations", type=int, default=None,
                   help="random, evolution, local_search, optuna, layernas: evaluations "
                        "(default: as many as one SH run of --n costs in mini-batches; random "
                        "trains each to --max-budget, evolution, local_search and optuna to "
                        "the second rung, --min-budget x eta, layernas to --min-budget)")
    p.add_argument("--model", default="small", help="model preset: paper, small, tiny")
    p.add_argument("--snapshot-every", type=int, default=10,
                   help="snapshot interval in mini-batches (default 10, as the bundled "
                        "dynamics predictor)")
    p.add_argument("--resize", type=int, default=16, help="input side (default 16)")
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--source", default=None, help="'bundled' (default) or 'shared' (full set)")
    p.add_argument("--data-root", default=None, help="official CIFAR python folder or JPEG npz")
    p.add_argument("--val-size", type=int, default=1000, help="held-out images (default 1000)")
    p.add_argument("--train-size", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0, help="search seed: candidates, mutations")
    p.add_argument("--train-seed", type=int, default=0,
                   help="training seed (default 0; runs are shared by every --seed)")
    p.add_argument("--store", required=True, help="run store folder (resumes from it)")
    p.add_argument("--out", default=None,
                   help="history CSV (default STORE/history-METHOD-RANKER-SEED.csv)")
    p.add_argument("--predictor", default=None,
                   help="dynamics predictor file (save_predictor) instead of the bundled one")
    p.add_argument("--gcn-cells", type=int, default=172,
                   help="gcn, combined: random table cells the GCN is fitted on (default "
                        "172), kept out of the search")
    p.add_argument("--charge", choices=["steps", "seconds"], default="steps",
                   help="cost unit: mini-batches (default; load-independent) or wall seconds")
    p.add_argument("--cost", default=None, metavar="METRIC[:DEVICE]",
                   help="a cost from the table to hold the search to, with --max-cost: "
                        "params (millions) or, on nb201, a device's latency (ms) or energy "
                        "(mJ), e.g. latency:pixel3, energy:fpga (HW-NAS-Bench's edgegpu, "
                        "raspi4, edgetpu, pixel3, eyeriss, fpga, and more measured "
                        "latencies; a wrong name lists them)")
    p.add_argument("--max-cost", type=float, default=None,
                   help="the largest allowed --cost (LayerNAS: its target)")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("demo", help=cmd_demo.__doc__)
    p.add_argument("--out", default="out/demo")
    p.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke run)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("info", help=cmd_info.__doc__)
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``workbench`` / ``python -m workbench``; returns the exit status."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the resume hint
    from workbench._tables import CellNotInTableError
    from workbench.store import StoreError

    try:
        return int(args.func(args))
    except (ValueError, StoreError, CellNotInTableError, OSError, ImportError) as exc:
        # bad input, a damaged store, a missing file or extra: one line, no traceback
        text = " ".join(str(exc).split()) or type(exc).__name__
        print(f"workbench {args.command}: error: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
