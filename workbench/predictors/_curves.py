"""Learning-curve extrapolation: read a partial validation curve at the final budget.

Models: ``"last"`` (the last observed value, the trivial baseline), ``"pow"`` (a - b·t^(-c)),
``"exp"`` (a - b·e^(-c·t)) and ``"ens"`` (the least-squares convex combination of the two fits).
Fits use ``scipy.optimize.curve_fit`` with bounds and several starts; when a fit is impossible
(fewer than 3 points, a flat curve, no convergence) the last value is used instead.

Estimators take ``X`` = partial curves, shape ``[n, len(steps)]``: ``X[i, j]`` is the value
after budget ``steps[j]`` (default grid: 1, 2, ..., n_columns, e.g. epochs); trailing NaNs mark
curves observed for fewer steps.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from workbench.predictors._predictor_registry import register_predictor


def power_law(t: np.ndarray | float, a: float, b: float, c: float) -> np.ndarray | float:
    """a - b·t^(-c): saturates at ``a`` as t grows (t > 0)."""
    return a - b * np.power(t, -c)


def exponential(t: np.ndarray | float, a: float, b: float, c: float) -> np.ndarray | float:
    """a - b·exp(-c·t): saturates at ``a`` as t grows."""
    return a - b * np.exp(-c * t)


_FORMS: dict[str, Callable[..., Any]] = {"pow": power_law, "exp": exponential}
#: Extrapolation models accepted by :func:`extrapolate` and :class:`CurveExtrapolator`.
CURVE_MODELS = ("last", "pow", "exp", "ens")


@dataclass(frozen=True)
class CurveFit:
    """A fitted curve in the caller's step units: ``model``, ``params`` (a, b, c), ``rmse``.

    ``params`` is empty for ``last``; ``weight`` is the power law's share in ``ens``.
    ``fallback`` says the fit failed and the last observed value stands in.
    """

    model: str
    params: tuple[float, ...]
    rmse: float
    last: float
    weight: float = 1.0
    fallback: bool = False
    exp_params: tuple[float, ...] = ()

    def __call__(self, step: float | np.ndarray) -> float | np.ndarray:
        """The fitted curve at ``step`` (a constant for ``last`` or a fallback)."""
        s = np.asarray(step, dtype=float)
        if self.model == "last" or self.fallback:
            return np.full_like(s, self.last) if s.ndim else self.last
        if self.model == "ens":
            out = (self.weight * power_law(s, *self.params)
                   + (1 - self.weight) * exponential(s, *self.exp_params))
        else:
            out = _FORMS[self.model](s, *self.params)
        return out if s.ndim else float(out)


def _clean(steps: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(steps, dtype=float).ravel()
    v = np.asarray(values, dtype=float).ravel()
    if s.size != v.size:
        raise ValueError(f"steps and values differ in length: {s.size} vs {v.size}")
    keep = ~np.isnan(v)
    s, v = s[keep], v[keep]
    if v.size == 0:
        raise ValueError("the curve has no observed value")
    if not (np.isfinite(s).all() and np.isfinite(v).all()):
        raise ValueError("steps and values must be finite (NaN values mark missing points)")
    if (s <= 0).any():
        raise ValueError("steps must be > 0 (the power law needs t > 0)")
    if (np.diff(s) <= 0).any():
        raise ValueError("steps must be strictly increasing")
    return s, v


def _fit_form(form: str, s: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Best (params in normalised time u = s / s_max, sse) over several starts, or None."""
    u = s / s[-1]
    span = float(np.ptp(v)) or 1.0
    lo_a, hi_a = float(v.min()) - 10 * span, float(v.max()) + 10 * span
    c_hi = 10.0 if form == "pow" else 50.0
    bounds = ([lo_a, -100 * span, 1e-3], [hi_a, 100 * span, c_hi])
    rise = float(v[-1] - v[0])
    best: tuple[np.ndarray, float] | None = None
    for c0 in (0.3, 1.0, 3.0):
        a0 = float(np.clip(v[-1] + 0.1 * rise, lo_a, hi_a))
        b0 = float(np.clip(rise if rise else span, -99 * span, 99 * span))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                with np.errstate(all="ignore"):
                    params, _ = curve_fit(_FORMS[form], u, v, p0=[a0, b0, c0], bounds=bounds,
                                          maxfev=2000)
        except (RuntimeError, ValueError):
            continue
        sse = float(np.sum((_FORMS[form](u, *params) - v) ** 2))
        if np.isfinite(sse) and (best is None or sse < best[1]):
            best = (params, sse)
    return best


def _to_steps(form: str, params: np.ndarray, s_max: float) -> tuple[float, float, float]:
    """Parameters fitted in u = t / s_max expressed in the caller's step units."""
    a, b, c = (float(x) for x in params)
    return (a, float(b * s_max ** c), c) if form == "pow" else (a, b, float(c / s_max))


def fit_curve(steps: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray,
              model: str = "pow") -> CurveFit:
    """Fit one model to a partial curve (NaN values ignored); falls back to the last value."""
    if model not in CURVE_MODELS:
        raise ValueError(f"unknown curve model {model!r}; available: {list(CURVE_MODELS)}")
    s, v = _clean(steps, values)
    last = float(v[-1])
    fallback = CurveFit(model, (), float("nan"), last, fallback=model != "last")
    if model == "last" or v.size < 3 or np.ptp(v) == 0:
        return fallback if model != "last" else CurveFit("last", (), float("nan"), last)
    fits: dict[str, tuple[np.ndarray, float]] = {}
    for f in ("pow", "exp") if model == "ens" else (model,):
        fit = _fit_form(f, s, v)
        if fit is None:
            return fallback
        fits[f] = fit
    u = s / s[-1]
    if model != "ens":
        params, sse = fits[model]
        return CurveFit(model, _to_steps(model, params, s[-1]), math.sqrt(sse / v.size), last)
    f_pow = np.asarray(power_law(u, *fits["pow"][0]))
    f_exp = np.asarray(exponential(u, *fits["exp"][0]))
    diff = f_pow - f_exp
    denom = float(diff @ diff)
    w = 0.5 if denom == 0 else float(np.clip((v - f_exp) @ diff / denom, 0.0, 1.0))
    rmse = math.sqrt(float(np.mean((w * f_pow + (1 - w) * f_exp - v) ** 2)))
    return CurveFit("ens", _to_steps("pow", fits["pow"][0], s[-1]), rmse, last, weight=w,
                    exp_params=_to_steps("exp", fits["exp"][0], s[-1]))


def extrapolate(steps: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray,
                final_step: float, model: str = "pow",
                clip: tuple[float, float] | None = None) -> float:
    """The partial curve read at ``final_step`` under ``model``; ``clip`` bounds the answer.

    A non-finite reading (a diverging fit) falls back to the last observed value.
    """
    if not (isinstance(final_step, (int, float, np.number)) and final_step > 0):
        raise ValueError(f"final_step must be a number > 0, got {final_step!r}")
    fit = fit_curve(steps, values, model)
    out = float(fit(float(final_step)))
    if not math.isfinite(out):
        out = fit.last
    if clip is not None:
        out = float(np.clip(out, *clip))
    return out


def _curves(X: Any) -> np.ndarray:
    try:
        arr = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"X must be numeric partial curves [n, steps]: {err}") from None
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"X must have shape [n, len(steps)] with n >= 1, got {arr.shape}")
    if np.isinf(arr).any():
        raise ValueError("X has inf entries (use NaN for unobserved steps)")
    if np.isnan(arr[:, 0]).any():
        raise ValueError("every curve needs its first step observed (X[:, 0] has NaN)")
    return arr


class _CurveBase(RegressorMixin, BaseEstimator):
    """Shared fit: check the grid and curves; nothing is learned from ``y``."""

    steps: Sequence[float] | None

    def _grid(self, n_cols: int) -> np.ndarray:
        grid = np.arange(1, n_cols + 1, dtype=float) if self.steps is None else np.asarray(
            self.steps, dtype=float).ravel()
        if grid.size != n_cols:
            raise ValueError(f"X has {n_cols} columns but steps has {grid.size}")
        return grid

    def fit(self, X: Any, y: Any = None) -> _CurveBase:
        """Validate ``X`` (and ``y`` when given); extrapolation itself needs no training."""
        arr = _curves(X)
        self._grid(arr.shape[1])
        if y is not None:
            t = np.asarray(y, dtype=float).ravel()
            if t.size != arr.shape[0]:
                raise ValueError(f"X has {arr.shape[0]} curves but y has {t.size} values")
        self.n_features_in_ = arr.shape[1]
        return self

    def _check(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        arr = _curves(X)
        if arr.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {arr.shape[1]} columns; fitted on {self.n_features_in_}")
        return arr


@register_predictor("last_value")
class LastValue(_CurveBase):
    """Predicts each curve's last observed value (the trivial extrapolation baseline)."""

    def __init__(self, steps: Sequence[float] | None = None) -> None:
        self.steps = steps

    def predict(self, X: Any) -> np.ndarray:
        """The last non-NaN entry of every row."""
        arr = self._check(X)
        last = arr.shape[1] - 1 - np.argmax(~np.isnan(arr[:, ::-1]), axis=1)
        return arr[np.arange(arr.shape[0]), last]


@register_predictor("curve")
class CurveExtrapolator(_CurveBase):
    """Fits ``model`` (pow, exp, ens or last) to each partial curve and reads it at ``final_step``.

    ``steps`` is the budget grid of X's columns (default 1..n_columns); ``clip`` bounds the
    predictions (e.g. (0, 100) for accuracy in percent).
    """

    def __init__(self, model: str = "pow", final_step: float = 200.0,
                 steps: Sequence[float] | None = None,
                 clip: tuple[float, float] | None = None) -> None:
        self.model = model
        self.final_step = final_step
        self.steps = steps
        self.clip = clip

    def fit(self, X: Any, y: Any = None) -> CurveExtrapolator:
        """Validate the settings and curves (nothing is learned)."""
        if self.model not in CURVE_MODELS:
            raise ValueError(f"unknown curve model {self.model!r}; available: "
                             f"{list(CURVE_MODELS)}")
        super().fit(X, y)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Extrapolated value at ``final_step`` of every curve."""
        arr = self._check(X)
        grid = self._grid(arr.shape[1])
        return np.array([extrapolate(grid, row, self.final_step, self.model, self.clip)
                         for row in arr])
