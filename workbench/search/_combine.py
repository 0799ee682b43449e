"""Combining rankers: one score from several signals (dynamics, a GCN, a proxy, the observed
accuracy), computed within each batch so that signals on different scales can be mixed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from workbench.search._base import Evaluation, Ranker, RankerLike, as_ranker

COMBINE = ("rank", "zscore")


def normalised_ranks(scores: Any) -> np.ndarray:
    """Ranks scaled to [0, 1] within the batch (best = 1, ties averaged); NaN counts as the
    worst; a batch of one gets 0.5."""
    s = np.asarray(scores, dtype=float).ravel()
    if s.size <= 1:
        return np.full(s.size, 0.5)
    key = np.where(np.isnan(s), -np.inf, s)
    return (rankdata(key, method="average") - 1.0) / (s.size - 1.0)


def zscores(scores: Any) -> np.ndarray:
    """(s - mean) / std over the finite scores (std 0 -> 1); NaN gets the lowest z minus 1."""
    s = np.asarray(scores, dtype=float).ravel()
    ok = np.isfinite(s)
    z = np.zeros(s.size)
    if ok.any():
        v = s[ok]
        z[ok] = (v - v.mean()) / (v.std() or 1.0)
        z[~ok] = z[ok].min() - 1.0
    return z


class CombinedRanker(Ranker):
    """The weighted mean of several rankers' normalised ranks (``how="rank"``) or z-scores
    (``how="zscore"``) within each batch; ``components_`` holds the last batch's raw scores.

    >>> CombinedRanker([DynamicsRanker(p), GraphRanker(gcn, "nb201")])   # NAP2 + graph
    >>> CombinedRanker(["observed", GraphRanker(gcn, "nb201")], how="zscore")
    """

    def __init__(self, rankers: Sequence[RankerLike], weights: Sequence[float] | None = None,
                 *, how: str = "rank", name: str | None = None) -> None:
        if isinstance(rankers, (str, Ranker)) or not isinstance(rankers, Sequence):
            raise ValueError(f"rankers must be a list of rankers, got {rankers!r}")
        if len(rankers) < 1:
            raise ValueError("rankers must hold at least one ranker")
        if how not in COMBINE:
            raise ValueError(f"how must be one of {COMBINE}, got {how!r}")
        self.rankers = [as_ranker(r) for r in rankers]
        if weights is None:
            weights = [1.0] * len(self.rankers)
        w = [float(x) for x in weights]
        if len(w) != len(self.rankers) or not all(math.isfinite(x) and x >= 0 for x in w) \
                or sum(w) <= 0:
            raise ValueError(f"weights must be {len(self.rankers)} finite numbers >= 0 with a "
                             f"positive sum, got {list(weights)!r}")
        self.weights = w
        self.how = how
        self.uses_oracle = any(r.uses_oracle for r in self.rankers)
        self.name = name or ("+".join(r.name for r in self.rankers))
        self.components_: pd.DataFrame | None = None

    def __repr__(self) -> str:
        return f"CombinedRanker({[r.name for r in self.rankers]}, how={self.how!r})"

    def __call__(self, cells: Sequence[Any], results: Sequence[Evaluation]) -> np.ndarray:
        norm = normalised_ranks if self.how == "rank" else zscores
        raw = {}
        total = np.zeros(len(results))
        for r, w in zip(self.rankers, self.weights, strict=True):
            s = np.asarray(r(cells, results), dtype=float).ravel()
            if s.shape != (len(results),):
                raise ValueError(f"ranker {r!r} returned {s.size} scores for {len(results)} "
                                 "candidates")
            key = r.name
            while key in raw:
                key += "'"
            raw[key] = s
            total += w * norm(s)
        self.components_ = pd.DataFrame(raw, index=[r.cell_id for r in results])
        return total / sum(self.weights)
