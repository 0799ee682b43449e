"""Refit the bundled default dynamics predictor (``data/dynamics_default.npz``) from a run store.

Run by maintainers after re-collecting the benchmark's runs (``python bench/_dynamics_runs.py``)::

    python tools/refit_default_predictor.py [--store bench/.runs/dynamics] [--model dynamics_forest]

The model is the one ``bench/predictors.py`` ranks best at 100 mini-batches on NB201 (its
``dynamics`` section); the logic is :func:`workbench.predictors.refit_default_predictor`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from workbench.predictors import (
    DEFAULT_DYNAMICS_FILE,
    DEFAULT_DYNAMICS_MODELS,
    refit_default_predictor,
)

ROOT = Path(__file__).resolve().parents[1]
BENCH_STORE = ROOT / "bench" / ".runs" / "dynamics"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default=str(BENCH_STORE), help="run store to fit on")
    ap.add_argument("--out", default=str(ROOT / "data" / DEFAULT_DYNAMICS_FILE))
    ap.add_argument("--model", default="dynamics_forest", choices=DEFAULT_DYNAMICS_MODELS)
    ap.add_argument("--step", type=int, default=100, help="mini-batch the snapshots stop at")
    ap.add_argument("--source", default=None,
                    help="where the runs came from (default: bench/_dynamics_runs.py for the "
                         "benchmark's store, else the store path)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    store = Path(args.store)
    source = args.source or ("bench/_dynamics_runs.py" if store.resolve() == BENCH_STORE
                             else str(store))
    est = refit_default_predictor(store, args.out, model=args.model, step=args.step,
                                  source=source)
    out = Path(args.out)
    print(f"wrote {out} ({type(est).__name__}, {out.stat().st_size / 1024:.0f} KB)")
    print(json.dumps(est.metadata_, indent=2))


if __name__ == "__main__":
    main()
