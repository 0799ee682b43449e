"""Trivial predictors as scikit-learn estimators: the bars any learned predictor must clear."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from workbench.predictors._predictor_registry import register_predictor


def _targets(y: Any, n: int) -> np.ndarray:
    """``y`` as a finite float vector of length ``n`` (ValueError naming the problem)."""
    arr = np.asarray(y, dtype=float).ravel()
    if arr.size != n:
        raise ValueError(f"X has {n} samples but y has {arr.size}")
    if arr.size == 0:
        raise ValueError("cannot fit on 0 samples")
    if not np.isfinite(arr).all():
        raise ValueError(f"y must be finite: found {int((~np.isfinite(arr)).sum())} NaN or inf")
    return arr


def _num_samples(X: Any) -> int:
    if hasattr(X, "shape") and len(X.shape) > 0:
        return int(X.shape[0])
    try:
        return len(X)
    except TypeError:
        raise ValueError(f"X must be array-like, got {type(X).__name__}") from None


@register_predictor("mean")
class MeanPredictor(RegressorMixin, BaseEstimator):
    """Predicts the training labels' mean for every input (X is only counted, never read)."""

    def fit(self, X: Any, y: Any) -> MeanPredictor:
        """Remember the mean of ``y``."""
        self.mean_ = float(_targets(y, _num_samples(X)).mean())
        self.n_samples_fit_ = _num_samples(X)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The training mean, once per sample of ``X``."""
        check_is_fitted(self)
        return np.full(_num_samples(X), self.mean_)


@register_predictor("feature")
class FeaturePredictor(RegressorMixin, BaseEstimator):
    """Predicts from one input feature (e.g. ``"params"``): a rank signal, optionally calibrated.

    ``column``: a DataFrame column name or an integer column index. With ``calibrate`` the
    feature (``log10`` of it when ``log``) is mapped to the label scale by a least-squares line,
    so error metrics are meaningful; without, the raw feature is returned (ranks only).
    """

    def __init__(self, column: str | int = "params", *, log: bool = False,
                 calibrate: bool = True) -> None:
        self.column = column
        self.log = log
        self.calibrate = calibrate

    def _feature(self, X: Any) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            if self.column not in X.columns:
                raise ValueError(f"column {self.column!r} not in X; columns: {list(X.columns)}")
            f = X[self.column].to_numpy(dtype=float)
        else:
            arr = np.asarray(X, dtype=float)
            if arr.ndim != 2:
                raise ValueError(f"X must be 2-D (samples x features), got shape {arr.shape}")
            if not isinstance(self.column, (int, np.integer)) or isinstance(self.column, bool):
                raise ValueError(f"column {self.column!r} needs a DataFrame; with an array "
                                 "give an integer column index")
            if not -arr.shape[1] <= self.column < arr.shape[1]:
                raise ValueError(f"column {self.column} out of range for {arr.shape[1]} features")
            f = arr[:, self.column]
        if not np.isfinite(f).all():
            raise ValueError(f"feature {self.column!r} has NaN or inf values")
        if self.log:
            if (f <= 0).any():
                raise ValueError(f"log=True needs a positive feature {self.column!r}")
            f = np.log10(f)
        return f

    def fit(self, X: Any, y: Any) -> FeaturePredictor:
        """Check the feature; with ``calibrate`` fit label ≈ intercept_ + coef_ · feature."""
        f = self._feature(X)
        t = _targets(y, f.size)
        self.n_features_in_ = X.shape[1] if hasattr(X, "shape") and len(X.shape) == 2 else 1
        if self.calibrate and f.size >= 2 and np.ptp(f) > 0:
            self.coef_, self.intercept_ = (float(v) for v in np.polyfit(f, t, 1))
        elif self.calibrate:
            self.coef_, self.intercept_ = 0.0, float(t.mean())
        else:
            self.coef_, self.intercept_ = 1.0, 0.0
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The (calibrated) feature of every sample."""
        check_is_fitted(self)
        return self.intercept_ + self.coef_ * self._feature(X)
