"""Rank ensembles of architecture predictors: a GCN and GRAF trees fitted on the same cells.

The two read a cell differently (learned message passing over the graph against hand-made path
and degree features) and their errors are only partly shared, so the mean of their prediction
*ranks* ranks cells better than either (NB101 table, 172 training cells: about 0.73 each,
0.755 together; ``bench/predictor_curves.py``). Ranks, not values, are averaged because the
members predict on different scales (the GCN's rank target, GRAF's accuracy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from workbench.predictors._gcn import GRAPH_SCHEMA_VERSION, graphs_from_cells
from workbench.predictors._graph_features import _resolve_space
from workbench.predictors._predictor_registry import get_predictor, register_predictor

#: Registered predictors an ensemble member may be, and what each reads from the cells.
MEMBER_KINDS = ("gcn", "graf")


@register_predictor("arch_ensemble")
class ArchitectureEnsemble(RegressorMixin, BaseEstimator):
    """Architecture predictors fitted on the same cells, combined by their mean rank.

    ``X``: cells (or cell strings) of ``space``. ``members``: ``(name, params)`` pairs, name in
    :data:`MEMBER_KINDS`: ``"gcn"`` (:class:`GCNPredictor`, fed ``graphs_from_cells``) and
    ``"graf"`` (:class:`GraphFeatureRegressor` of ``space``, fed the cells); member i without a
    ``random_state`` in its params gets ``random_state + i``. ``weights``: one per member (None:
    equal). ``predict`` returns the weighted mean of each member's normalised ranks (0-1] among
    the cells predicted together: a score for ranking those cells, not an accuracy.
    Fitted: ``members_`` (the fitted member estimators). Saves with ``save_predictor``.
    """

    def __init__(self, space: str = "nb201",
                 members: Sequence[Sequence[Any]] = (("gcn", {}), ("graf", {})),
                 weights: Sequence[float] | None = None, random_state: int = 0) -> None:
        self.space = space
        self.members = members
        self.weights = weights
        self.random_state = random_state

    # -- configuration ---------------------------------------------------------------------------

    def _specs(self) -> list[tuple[str, dict[str, Any]]]:
        """The members as (kind, constructor params), checked; ValueError naming a bad one."""
        _resolve_space(self.space)
        if isinstance(self.members, (str, bytes)) or not isinstance(self.members, Sequence) \
                or not self.members:
            raise ValueError(f"members must be a non-empty list of (name, params) pairs, got "
                             f"{self.members!r}")
        specs = []
        for i, m in enumerate(self.members):
            if (isinstance(m, (str, bytes)) or not isinstance(m, Sequence) or len(m) != 2
                    or not isinstance(m[1], dict)):
                raise ValueError(f"member {i} must be a (name, params dict) pair, got {m!r}")
            kind, params = m[0], dict(m[1])
            if kind not in MEMBER_KINDS:
                raise ValueError(f"member {i} is {kind!r}; allowed: {list(MEMBER_KINDS)}")
            if kind == "graf":
                if params.setdefault("space", self.space) != self.space:
                    raise ValueError(f"member {i} reads space {params['space']!r}, the "
                                     f"ensemble {self.space!r}")
            params.setdefault("random_state", int(self.random_state) + i)
            specs.append((str(kind), params))
        return specs

    def _weights(self, n: int) -> np.ndarray:
        if self.weights is None:
            return np.full(n, 1.0 / n)
        w = np.asarray(self.weights, dtype=float)
        if w.shape != (n,) or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"weights must be {n} finite non-negative numbers, not all zero, "
                             f"one per member; got {self.weights!r}")
        return w / w.sum()

    def _inputs(self, kinds: Sequence[str], cells: list[Any]) -> dict[str, Any]:
        """What each member kind reads from ``cells``, built once per call (GCN graphs)."""
        return {kind: graphs_from_cells(self.space, cells) if kind == "gcn" else cells
                for kind in dict.fromkeys(kinds)}

    # -- estimator -------------------------------------------------------------------------------

    def fit(self, X: Any, y: Any) -> ArchitectureEnsemble:
        """Fit every member on the same cells ``X`` and labels ``y``."""
        specs = self._specs()
        self._weights(len(specs))
        inputs = self._inputs([kind for kind, _ in specs], list(X))
        self.members_ = [get_predictor(kind, **params).fit(inputs[kind], y)
                         for kind, params in specs]
        self.kinds_ = [kind for kind, _ in specs]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Weighted mean of the members' normalised ranks over the cells of ``X``."""
        check_is_fitted(self, "members_")
        cells = list(X)
        w = self._weights(len(self.members_))
        inputs = self._inputs(self.kinds_, cells)
        out = np.zeros(len(cells))
        for weight, kind, member in zip(w, self.kinds_, self.members_, strict=True):
            pred = np.asarray(member.predict(inputs[kind]), dtype=float)
            out += weight * rankdata(pred) / max(1, len(pred))
        return out

    # -- predictor files ---------------------------------------------------------------------------

    def _export(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        attrs: dict[str, Any] = {"kinds_": list(self.kinds_),
                                 "graph_schema_version_": GRAPH_SCHEMA_VERSION}
        arrays: dict[str, np.ndarray] = {}
        for i, member in enumerate(self.members_):
            a, arr = member._export()
            attrs[f"m{i}"] = a  # save_predictor makes nested numpy values JSON
            arrays.update({f"m{i}.{k}": v for k, v in arr.items()})
        return attrs, arrays

    def _import(self, attrs: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        version = int(attrs["graph_schema_version_"])
        if version != GRAPH_SCHEMA_VERSION:
            raise ValueError(f"this ensemble's GCN was fitted on graph encoding version "
                             f"{version}, this workbench builds version {GRAPH_SCHEMA_VERSION}: "
                             "refit it")
        specs = self._specs()
        kinds = [str(k) for k in attrs["kinds_"]]
        if kinds != [k for k, _ in specs]:
            raise ValueError(f"the file's members {kinds} do not match the parameters' "
                             f"{[k for k, _ in specs]}")
        members = []
        for i, (kind, params) in enumerate(specs):
            member = get_predictor(kind, **params)
            prefix = f"m{i}."
            member._import(attrs[f"m{i}"], {k[len(prefix):]: v for k, v in arrays.items()
                                            if k.startswith(prefix)})
            members.append(member)
        self.members_, self.kinds_ = members, kinds
