"""The collection behind the dynamics-predictor benchmark: which runs, at which size, where.

Kept in one place so ``bench/predictors.py`` and a stand-alone collection
(``python bench/_dynamics_runs.py``) request exactly the same runs; the run store then
reuses every finished run instead of training it again.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from workbench.collect import collect
from workbench.training import TrainConfig

#: Where the benchmark keeps its runs (gitignored; a few hundred MB of snapshot arrays).
DEFAULT_STORE = Path(__file__).resolve().parent / ".runs" / "dynamics"

#: Reduced CPU configuration (stated in the results): 16x16 inputs, 200 mini-batches of 64,
#: snapshots every 10 mini-batches, held-out accuracy at 100 and 200 (the short-training
#: baseline at equal compute). NB201 uses the 'small' preset (C=16, one cell per stage),
#: NB101 the 'tiny' one (stem 8, one cell per stack) to fit the 2-core budget.
CONFIG = TrainConfig(steps=200, batch_size=64, lr=0.05, resize=16, snapshot_every=10,
                     curve_every=10, eval_at=(100, 200))
MODELS = {"nb201": "small", "nb101": "tiny"}
DATA = {"val_size": 1000, "source": "shared"}
SAMPLE_SEED = 7


def collect_dynamics(space: str, n: int, store: str | os.PathLike = DEFAULT_STORE,
                     workers: int = 0, device: str = "auto"):
    """Collect (or resume) the benchmark's ``n`` runs of ``space``; return their rows."""
    return collect(n, space=space, store=store, config=CONFIG.replace(device=device),
                   model=MODELS[space], data=DATA, sample_seed=SAMPLE_SEED,
                   workers=workers, device=device)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--spaces", nargs="+", default=["nb201", "nb101"])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--store", default=str(DEFAULT_STORE))
    ap.add_argument("--workers", type=int, default=0)
    args = ap.parse_args()
    for sp in args.spaces:
        rows = collect_dynamics(sp, args.n, args.store, args.workers)
        print(sp, rows["status"].value_counts().to_dict())
