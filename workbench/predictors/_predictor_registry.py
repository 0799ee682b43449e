"""The registry of performance predictors (scikit-learn regressors) and its facade.

Names are short keys (``"gcn"``, ``"dynamics_gbt"``, ...); predictor files keep naming the
class (``"GCNPredictor"``), which :func:`predictor_classes` maps back to the registered class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workbench._registry import Registry

PREDICTORS: Registry[Any] = Registry("predictor")


def register_predictor(name: str) -> Callable[[type], type]:
    """Class decorator adding a scikit-learn predictor under ``name``:
    ``@register_predictor("gcn")``."""
    return PREDICTORS.register(name)


def list_predictors() -> list[str]:
    """Names of the registered predictors, sorted (each one :func:`get_predictor` builds)."""
    return PREDICTORS.names()


def get_predictor(name: str, **params: Any) -> Any:
    """A new, unfitted predictor ``name`` with constructor ``params`` (e.g.
    ``get_predictor("gcn", epochs=50)``); ValueError naming the registered predictors."""
    return PREDICTORS.create(name, **params)


def predictor_classes() -> dict[str, type]:
    """Every registered predictor class by its class name (what predictor files record)."""
    return {cls.__name__: cls for cls in map(PREDICTORS.get, PREDICTORS.names())
            if isinstance(cls, type)}
