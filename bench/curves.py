"""Benchmark `curves`: learning-curve extrapolation on NAS-Bench-201's 200 real learning curves.

The 200 curves (cells 0-199, CIFAR-10 ``cifar10-valid``, validation accuracy after every epoch of
the 200-epoch schedule; ``get_benchmark("nb201_curves")``) cut after t = 5, 12, 25 and 50 epochs;
``CurveExtrapolator`` (``pow``, ``exp``, ``ens``) reads each partial curve at epoch 200, beside
the "last observed value" baseline (``last``). Judged against (a) the curve's own epoch-200
validation accuracy and (b) the cell's 200-epoch test accuracy (the table's final label, ranks
only): MAE (points), Kendall tau, Spearman rho, 95 % percentile bootstrap CIs over the 200 cells
and the paired bootstrap CI of the difference to ``last``
(``workbench.evaluation.extrapolation_scores``). NB201 trains with a cosine schedule, so early
epochs sit far below the final value and saturating fits are not guaranteed to help.

    python bench/curves.py [--cutoffs 5 12 25 50] [--n-boot 1000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import write_results

from workbench.benchmarks import get_benchmark
from workbench.evaluation import extrapolation_scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cutoffs", type=int, nargs="+", default=[5, 12, 25, 50])
    ap.add_argument("--models", nargs="+", default=["last", "pow", "exp", "ens"])
    ap.add_argument("--n-boot", type=int, default=1000)
    args = ap.parse_args()
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    bench = get_benchmark("nb201_curves")
    curves = pd.DataFrame({e: bench.all_accuracies(epochs=e) for e in range(1, 201)})
    test = bench.all_accuracies()  # 200-epoch test accuracy (final label)
    out = {}
    for label, truth in (("val200", None), ("test200", test)):
        frame = extrapolation_scores(curves, truth, cutoffs=args.cutoffs, models=args.models,
                                     n_boot=args.n_boot)
        out[label] = frame.to_dict(orient="records")
        show = frame[frame["metric"].isin(["mae", "kendall_tau"])]
        print(f"-- truth {label}")
        print(show.round(3).to_string(index=False), flush=True)
    write_results("curves", {"settings": vars(args), "loadavg_before": load_before,
                             "loadavg_after": os.getloadavg(),
                             "seconds": time.perf_counter() - t0, "n_curves": len(curves),
                             "results": out})


if __name__ == "__main__":
    main()
