"""Shared widget plumbing: the guarded ipywidgets import, figures in Output areas, display."""

from __future__ import annotations

import importlib
import json
from types import ModuleType
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

_MISSING = ("workbench.widgets needs ipywidgets >= 8 (and JupyterLab to see them): "
            "pip install 'nas-workbench[lab]' or pip install 'ipywidgets>=8'")


def ipywidgets() -> ModuleType:
    """The ipywidgets module, or an ImportError saying how to install it (the ``lab`` extra)."""
    try:
        return importlib.import_module("ipywidgets")
    except ImportError as err:
        raise ImportError(_MISSING) from err


def show_figure(output: Any, fig: go.Figure) -> None:
    """Make ``output`` (an ipywidgets.Output) show ``fig`` and nothing else.

    The outputs are set directly as a plotly mime bundle, which JupyterLab renders; this works
    from a background thread and without a running kernel (nothing is printed then).
    """
    # The plotly mime bundle, built without importing plotly.io's renderers (they import
    # nbformat and jsonschema: seconds) and JSON-safe (no numpy arrays) for the widget comm.
    bundle = {"application/vnd.plotly.v1+json": json.loads(
        pio.to_json(fig, validate=False, remove_uids=False))}
    bundle["text/plain"] = f"<plotly figure: {fig.layout.title.text or 'untitled'}>"
    output.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)


class WidgetView:
    """Base of the workbench widgets: ``.widget`` is the ipywidgets box; the object displays as
    it in a notebook (``panel`` as the last line of a cell shows the panel)."""

    widget: Any

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
