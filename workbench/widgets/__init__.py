"""Widgets for notebooks: a training panel, a feature explorer, a t-SNE view of stored runs and
one Step / Run / Reset stepper for every search (ipywidgets; install the ``lab`` extra).

Each widget wraps the package's own objects and exposes them (``.trainer``, ``.search``,
``.store``) with the DataFrame it shows (``.data`` / ``.table``); no result exists only in a
widget. ``ipywidgets`` is imported when a widget is first used, so ``import workbench`` and the
plain helpers below work without it.

>>> from workbench.widgets import TrainingPanel, SearchStepper
>>> TrainingPanel(space="nb201", cell="random", steps=300)      # in a notebook cell
>>> SearchStepper(SuccessiveHalving(TabularBackend("nb201"), n=27))   # or LayerNAS, ...
"""

from __future__ import annotations

import importlib
from typing import Any

from workbench.widgets._session import (
    BackgroundRun,
    LiveCallback,
    fresh_copy,
    layernas_lines,
    load_splits,
    make_trainer,
    pick_cell,
    search_lines,
    sh_rung_lines,
)

_WIDGETS = {
    "TrainingPanel": "workbench.widgets._training",
    "FeatureExplorer": "workbench.widgets._explorer",
    "EmbeddingView": "workbench.widgets._explorer",
    "SearchStepper": "workbench.widgets._search",
    "SearchView": "workbench.widgets._search",
    "view_for": "workbench.widgets._search",
}

__all__ = [
    "BackgroundRun",
    "EmbeddingView",
    "FeatureExplorer",
    "LiveCallback",
    "SearchStepper",
    "SearchView",
    "TrainingPanel",
    "fresh_copy",
    "layernas_lines",
    "load_splits",
    "make_trainer",
    "pick_cell",
    "search_lines",
    "sh_rung_lines",
    "view_for",
]


def __getattr__(name: str) -> Any:
    """Import a widget class (and with it ipywidgets) only when it is asked for."""
    if name in _WIDGETS:
        return getattr(importlib.import_module(_WIDGETS[name]), name)
    raise AttributeError(f"module 'workbench.widgets' has no attribute {name!r}")
