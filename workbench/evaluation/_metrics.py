"""Rank and error metrics for judging performance predictors (scipy-backed, ties handled)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def _paired(pred: np.ndarray | pd.Series, true: np.ndarray | pd.Series
            ) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=float).ravel()
    t = np.asarray(true, dtype=float).ravel()
    if p.shape != t.shape:
        raise ValueError(f"predictions and truth differ in length: {p.size} vs {t.size}")
    if p.size < 2:
        raise ValueError(f"need at least 2 pairs to rank, got {p.size}")
    if not (np.isfinite(p).all() and np.isfinite(t).all()):
        raise ValueError("predictions and truth must be finite (found NaN or inf)")
    return p, t


def kendall_tau(pred: np.ndarray | pd.Series, true: np.ndarray | pd.Series) -> float:
    """Kendall's tau-b between predictions and truth (ties handled as scipy does)."""
    p, t = _paired(pred, true)
    return float(stats.kendalltau(p, t).statistic)


def spearman_rho(pred: np.ndarray | pd.Series, true: np.ndarray | pd.Series) -> float:
    """Spearman's rank correlation between predictions and truth."""
    p, t = _paired(pred, true)
    return float(stats.spearmanr(p, t).statistic)


def rank_correlations(signals: pd.DataFrame, truth: pd.Series | np.ndarray) -> pd.DataFrame:
    """Kendall tau and Spearman rho of every column of ``signals`` against ``truth``.

    Rows with a missing value in a column are left out for that column (``n`` says how many
    pairs were used), so a signal that is only partly available is still judged fairly.
    """
    truth = pd.Series(np.asarray(truth, dtype=float), index=signals.index)
    rows = []
    for col in signals.columns:
        ok = signals[col].notna() & truth.notna()
        p, t = signals.loc[ok, col].to_numpy(float), truth[ok].to_numpy(float)
        rows.append({"signal": col, "kendall_tau": kendall_tau(p, t),
                     "spearman_rho": spearman_rho(p, t), "n": int(ok.sum())})
    return pd.DataFrame(rows)
