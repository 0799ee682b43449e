"""Target scales shared by the predictors: raw accuracy, per-domain z-score, per-domain rank.

Z-scores and ranks put datasets and spaces on one scale (transfer); ranks also stop the long tail
of failed cells (about 10 % accuracy) from dominating a squared-error fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata

TARGETS = ("raw", "zscore", "rank")


def transform_target(y: Any, target: str, domains: Any = None) -> np.ndarray:
    """``y`` on the ``target`` scale: raw, z-score or normalised rank within each domain."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    t = np.asarray(y, dtype=np.float64).ravel()
    if not np.isfinite(t).all():
        raise ValueError(f"y must be finite: found {int((~np.isfinite(t)).sum())} NaN or inf")
    if target == "raw":
        return t
    dom = np.zeros(t.size, dtype=int) if domains is None else np.asarray(domains).ravel()
    if dom.size != t.size:
        raise ValueError(f"domains has {dom.size} entries but y has {t.size}")
    out = np.empty_like(t)
    for d in np.unique(dom):
        sel = dom == d
        v = t[sel]
        if target == "zscore":
            sd = v.std()
            out[sel] = (v - v.mean()) / (sd if sd > 0 else 1.0)
        else:
            out[sel] = (rankdata(v) - 0.5) / v.size
    return out


def check_target(est: Any) -> None:
    """Raise ValueError when an estimator's ``target`` parameter is not one of :data:`TARGETS`."""
    if est.target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {est.target!r}")
