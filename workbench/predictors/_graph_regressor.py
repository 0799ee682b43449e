"""GRAF as a predictor: gradient-boosted trees (XGBoost) or a random forest on the neural graph
features of :mod:`._graph_features`, optionally with extra columns such as zero-cost proxies.

Kadlecova et al. (ICML 2024) show that these few dozen interpretable numbers, fitted by trees in
about a second on a CPU, rank NAS-Bench-201 cells as well as learned graph encoders do.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import RandomForestRegressor
from sklearn.utils.validation import check_is_fitted

from workbench._checks import check_choice, check_int, check_real
from workbench.predictors._dynamics import _TreeEnsemble
from workbench.predictors._graph_features import (
    GRAPH_FEATURE_VERSION,
    _resolve_space,
    graph_feature_names,
    graph_features,
)
from workbench.predictors._predictor_registry import register_predictor
from workbench.predictors._targets import transform_target

MODELS = ("xgb", "rf")
_GRAF_TARGETS = ("raw", "rank")
_XGB_DEPTH = 4  # XGBoost's tree depth when max_depth is None


class _Booster:
    """A fitted XGBoost booster behind a plain ``predict(F)`` (also after loading from bytes)."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def predict(self, F: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.inplace_predict(F), dtype=np.float64)

    def raw(self) -> np.ndarray:
        return np.frombuffer(bytes(self.booster.save_raw("json")), dtype=np.uint8).copy()

    @classmethod
    def from_raw(cls, raw: np.ndarray) -> _Booster:
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(bytearray(np.asarray(raw, dtype=np.uint8).tobytes()))
        return cls(booster)


@register_predictor("graf")
class GraphFeatureRegressor(RegressorMixin, BaseEstimator):
    """Trees on neural graph features (GRAF): accuracy from the cell's graph alone, in a second.

    ``X``: cells (or cell strings) of ``space``, or a DataFrame with the graph feature columns
    (:func:`graph_features`) plus any extra numeric columns (e.g. zero-cost proxies), which pass
    through to the trees; predict with the same columns. ``model``: ``"xgb"``
    (``xgboost.XGBRegressor``, ``tree_method="hist"``) or ``"rf"`` (scikit-learn random forest;
    ``learning_rate`` and ``subsample`` do not apply). ``max_depth``: None is 4 for XGBoost and
    full-depth trees for the forest. ``colsample``: the fraction of columns per XGBoost tree or
    per forest split. ``target``: ``"raw"`` accuracy, or ``"rank"`` (normalised ranks of ``y``;
    predictions are then on the rank scale).

    ``n_ensemble`` members differ only by seed (``random_state + i``), each fitted on all rows:
    their randomness is XGBoost's row and column sampling (or the forest's bootstrap and split
    features), and averaging their predictions cuts seed-to-seed spread.
    ``feature_importances_`` (mean over members; XGBoost's gain, the forest's impurity drop) is
    indexed like ``feature_names_in_``. Defaults were chosen on NB201 CIFAR-10 with 100-200
    training cells. Both models save to predictor files (XGBoost as its JSON model, forests as
    tree arrays).
    """

    def __init__(self, space: str = "nb201", *, model: str = "xgb", n_estimators: int = 500,
                 max_depth: int | None = None, learning_rate: float = 0.03, subsample: float = 0.8,
                 colsample: float = 0.6, n_ensemble: int = 1, target: str = "raw",
                 random_state: int = 0, n_jobs: int = 1) -> None:
        self.space = space
        self.model = model
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample = colsample
        self.n_ensemble = n_ensemble
        self.target = target
        self.random_state = random_state
        self.n_jobs = n_jobs

    # -- inputs ----------------------------------------------------------------------------------

    def _check_params(self) -> None:
        _resolve_space(self.space)
        check_choice("model", self.model, MODELS)
        check_choice("target", self.target, _GRAF_TARGETS)
        check_int("n_estimators", self.n_estimators, minimum=1)
        check_int("max_depth", self.max_depth, minimum=1, allow_none=True)
        check_real("learning_rate", self.learning_rate, minimum=0, inclusive="right")
        check_real("subsample", self.subsample, minimum=0, maximum=1, inclusive="right")
        check_real("colsample", self.colsample, minimum=0, maximum=1, inclusive="right")
        check_int("n_ensemble", self.n_ensemble, minimum=1)
        check_int("random_state", self.random_state, minimum=0)
        check_int("n_jobs", self.n_jobs, minimum=1)

    def _features(self, X: Any) -> pd.DataFrame:
        """``X`` as a float feature table: graph features of cells, or the given DataFrame."""
        graph_cols = graph_feature_names(self.space)
        if isinstance(X, pd.DataFrame):
            missing = [c for c in graph_cols if c not in X.columns]
            if missing:
                raise ValueError(f"X lacks graph feature columns {missing[:5]}"
                                 f"{' ...' if len(missing) > 5 else ''}; build them with "
                                 f"graph_features({self.space!r}, cells)")
            bad = [str(c) for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
            if bad:
                raise ValueError(f"X columns must be numeric; not numeric: {bad}")
            return X.astype(np.float64)
        if isinstance(X, np.ndarray) and X.dtype.kind in "fiu":
            raise ValueError("X must be cells, cell strings or a DataFrame of graph features, "
                             f"not a numeric array of shape {X.shape}")
        return graph_features(self.space, X)

    def _make(self, seed: int) -> Any:
        if self.model == "rf":
            return RandomForestRegressor(
                n_estimators=self.n_estimators, max_depth=self.max_depth,
                max_features=self.colsample, random_state=seed, n_jobs=self.n_jobs)
        import xgboost

        return xgboost.XGBRegressor(
            n_estimators=self.n_estimators,
            max_depth=_XGB_DEPTH if self.max_depth is None else self.max_depth,
            learning_rate=self.learning_rate, subsample=self.subsample,
            colsample_bytree=self.colsample, tree_method="hist", random_state=seed,
            n_jobs=self.n_jobs)

    # -- fit / predict ---------------------------------------------------------------------------

    def fit(self, X: Any, y: Any) -> GraphFeatureRegressor:
        """Fit ``n_ensemble`` tree models on the features of ``X`` and the labels ``y``."""
        self._check_params()
        frame = self._features(X)
        t = np.asarray(y, dtype=np.float64).ravel()
        if t.size != len(frame):
            raise ValueError(f"X has {len(frame)} cells but y has {t.size} values")
        if t.size < 2:
            raise ValueError(f"need at least 2 cells to fit, got {t.size}")
        bad = np.flatnonzero(~np.isfinite(t))
        if bad.size:
            ids = [str(frame.index[i]) for i in bad[:10]]
            raise ValueError(f"y has {bad.size} NaN or inf labels, at cells {ids}"
                             f"{' ...' if bad.size > 10 else ''}")
        F = frame.to_numpy(dtype=np.float64)
        target = transform_target(t, self.target)
        members, importances = [], []
        for i in range(self.n_ensemble):
            est = self._make(self.random_state + i).fit(F, target)
            importances.append(np.asarray(est.feature_importances_, dtype=np.float64))
            members.append(_Booster(est.get_booster()) if self.model == "xgb" else est)
        self.models_ = members
        self.feature_importances_ = np.mean(importances, axis=0)
        self.feature_names_in_ = np.asarray([str(c) for c in frame.columns], dtype=object)
        self.n_features_in_ = F.shape[1]
        self.graph_feature_version_ = GRAPH_FEATURE_VERSION
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted accuracy (``target="raw"``) or rank score of each cell of ``X``."""
        check_is_fitted(self)
        names = list(self.feature_names_in_)
        if not isinstance(X, pd.DataFrame) and len(names) != len(graph_feature_names(self.space)):
            extra = names[len(graph_feature_names(self.space)):]
            raise ValueError(f"the model was fitted with extra columns {extra}: predict on a "
                             "DataFrame that has them")
        frame = self._features(X)
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise ValueError(f"X lacks the columns {missing} the model was fitted on")
        F = frame[names].to_numpy(dtype=np.float64)
        return np.mean([m.predict(F) for m in self.models_], axis=0)

    # -- predictor files -------------------------------------------------------------------------

    def _export(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        attrs = {"feature_names_in_": list(self.feature_names_in_),
                 "graph_feature_version_": int(self.graph_feature_version_),
                 "n_members": len(self.models_)}
        arrays: dict[str, np.ndarray] = {"feature_importances": self.feature_importances_}
        for i, m in enumerate(self.models_):
            if isinstance(m, _Booster):
                arrays[f"m{i}.xgb"] = m.raw()
            else:  # a fitted forest, or one loaded as arrays
                trees = m if isinstance(m, _TreeEnsemble) else _TreeEnsemble.from_sklearn(m)
                arrays.update({f"m{i}.{k}": v for k, v in trees.arrays().items()})
        return attrs, arrays

    def _import(self, attrs: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        version = int(attrs["graph_feature_version_"])
        if version != GRAPH_FEATURE_VERSION:
            raise ValueError(f"this GraphFeatureRegressor was fitted on graph feature version "
                             f"{version}, but this workbench computes version "
                             f"{GRAPH_FEATURE_VERSION}: refit it")
        names = [str(n) for n in attrs["feature_names_in_"]]
        graph_cols = graph_feature_names(self.space)
        if names[:len(graph_cols)] != graph_cols:
            raise ValueError("this GraphFeatureRegressor was fitted on other graph feature "
                             "columns than this workbench computes: refit it")
        members: list[Any] = []
        for i in range(int(attrs["n_members"])):
            if f"m{i}.xgb" in arrays:
                members.append(_Booster.from_raw(arrays[f"m{i}.xgb"]))
            else:
                prefix = f"m{i}."
                members.append(_TreeEnsemble.from_arrays(
                    {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}))
        self.models_ = members
        self.feature_importances_ = np.asarray(arrays["feature_importances"], dtype=np.float64)
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
        self.graph_feature_version_ = version
