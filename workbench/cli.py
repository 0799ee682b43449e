"""Command-line interface: ``train``, ``collect``, ``runs``, ``demo`` and ``info``."""

from __future__ import annotations

import argparse
import json
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
    p.add_argument("--space", choices=["nb101", "nb201"], default="nb201")
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
        cells: Any = [ln.strip() for ln in Path(args.cells_file).read_text().splitlines()
                      if ln.strip() and not ln.startswith("#")]
    elif args.cells:
        cells = args.cells
    else:
        cells = args.n
    rows = collect(cells, space=args.space, store=args.store, config=_train_config(args),
                   dataset=args.dataset, model=args.model, seeds=args.seeds,
                   data=_data_config(args), sample_seed=args.sample_seed, workers=args.workers,
                   device=args.device, checkpoint=args.checkpoint,
                   retry_failed=args.retry_failed, **_backend_options(args))
    print(rows["status"].value_counts().to_string())
    return 0


def _backend_options(args: argparse.Namespace) -> dict[str, Any]:
    """collect()'s backend keywords from ``--backend``/``--ray-*`` (absent for ``train``)."""
    backend = getattr(args, "backend", "local")
    if backend == "local":
        return {}
    from workbench.collect._ray import import_ray

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
    args.checkpoint, args.retry_failed = True, False
    return cmd_collect(args)


def cmd_runs(args: argparse.Namespace) -> int:
    """List the runs of a store."""
    import pandas as pd

    from workbench.store import RunStore

    if not (Path(args.store) / "index.sqlite").exists():
        print(f"no run store at {args.store}", file=sys.stderr)
        return 1
    df = RunStore(args.store).runs(status=args.status)
    cols = [c for c in ("run_id", "space", "cell_id", "dataset", "seed", "status", "steps_done",
                        "wall_seconds", "final_val_acc", "label") if c in df.columns]
    with pd.option_context("display.width", 200, "display.max_rows", args.limit):
        print(df[cols].tail(args.limit).to_string(index=False) if len(df) else "no runs")
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``workbench`` command."""
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help=cmd_train.__doc__)
    _add_train_args(p)
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
    p.add_argument("--retry-failed", action="store_true")
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
    p.add_argument("--store", default=DEFAULT_STORE)
    p.add_argument("--status", default=None)
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_runs)

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
    try:
        return int(args.func(args))
    except ValueError as exc:  # bad input: a clear message, no traceback
        print(f"workbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
