"""Learning-curve extrapolation judged on real curves: each model's reading at the final epoch
from the first t epochs, against the "last observed value" baseline, with bootstrap CIs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from workbench._checks import check_int
from workbench.evaluation._metrics import bootstrap_samples, kendall_tau, mae, spearman_rho
from workbench.predictors import CURVE_MODELS, CurveExtrapolator

EXTRAPOLATION_COLUMNS = ["cutoff", "model", "metric", "value", "ci_low", "ci_high",
                         "diff_vs_last", "diff_ci_low", "diff_ci_high", "n"]


def extrapolation_scores(curves: pd.DataFrame, truth: pd.Series | None = None, *,
                         cutoffs: Sequence[int] = (5, 12, 25, 50),
                         models: Sequence[str] = ("last", "pow", "exp", "ens"),
                         final_epoch: int | None = None, n_boot: int = 1000,
                         level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Each ``model`` read at ``final_epoch`` from the first ``cutoff`` epochs of ``curves``
    (rows = cells, columns = epochs 1..E, values in percent), judged against ``truth`` (default:
    the curves' value at ``final_epoch``, default E): MAE (points), Kendall tau and Spearman rho,
    with percentile bootstrap CIs over cells and the paired difference to ``"last"`` (negative
    MAE difference / positive tau difference = better than the last observed value).

    Returns the tidy frame of :data:`EXTRAPOLATION_COLUMNS`; ``attrs["predictions"]`` holds the
    predictions (cutoff, model -> array)."""
    arr = curves.to_numpy(dtype=float)
    n, E = arr.shape
    final = E if final_epoch is None else check_int("final_epoch", final_epoch, minimum=1)
    y = (arr[:, final - 1] if truth is None
         else np.asarray(pd.Series(truth).reindex(curves.index), dtype=float))
    if np.isnan(y).any():
        raise ValueError("truth is missing for some curves (index must match curves')")
    bad = [m for m in models if m not in CURVE_MODELS]
    if bad:
        raise ValueError(f"unknown curve models {bad}; available: {list(CURVE_MODELS)}")
    metrics = {"mae": mae, "kendall_tau": kendall_tau, "spearman_rho": spearman_rho}
    boots = bootstrap_samples(n, n_boot, seed)
    tail = 50.0 * (1.0 - level)
    rows, preds = [], {}
    for t in cutoffs:
        t = check_int("cutoff", t, minimum=1, maximum=E)
        X = arr[:, :t]
        out = {m: CurveExtrapolator(model=m, final_step=float(final), clip=(0.0, 100.0))
               .fit(X).predict(X) for m in dict.fromkeys(["last", *models])}
        for m in models:
            preds[(t, m)] = out[m]
            for name, fn in metrics.items():
                value = float(fn(out[m], y))
                b = np.array([fn(out[m][i], y[i]) for i in boots])
                d = b - np.array([fn(out["last"][i], y[i]) for i in boots])
                lo, hi = np.nanpercentile(b, [tail, 100 - tail])
                dlo, dhi = np.nanpercentile(d, [tail, 100 - tail])
                rows.append({"cutoff": t, "model": m, "metric": name, "value": value,
                             "ci_low": float(lo), "ci_high": float(hi),
                             "diff_vs_last": value - float(fn(out["last"], y)),
                             "diff_ci_low": float(dlo), "diff_ci_high": float(dhi), "n": n})
    frame = pd.DataFrame(rows, columns=EXTRAPOLATION_COLUMNS)
    frame.attrs["predictions"] = preds
    return frame
