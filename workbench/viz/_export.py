"""Export figures: HTML always; PNG/SVG/PDF through kaleido >= 1 when a Chrome is available."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import plotly.graph_objects as go

STATIC_FORMATS = ("png", "svg", "pdf")


def export_figure(fig: go.Figure, path: str | Path, *, width: int = 700, height: int = 450,
                  scale: float = 2.0) -> Path:
    """Write ``fig`` to ``path``; the suffix picks the format (.html, .png, .svg, .pdf)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "html":
        fig.write_html(path, include_plotlyjs=True, full_html=True)
        return path
    if fmt not in STATIC_FORMATS:
        raise ValueError(f"unknown figure format {fmt!r} in {path}; allowed: html, "
                         f"{', '.join(STATIC_FORMATS)}")
    if importlib.util.find_spec("kaleido") is None:
        raise RuntimeError(
            f"static export to {fmt} needs kaleido>=1 and a Chrome/Chromium: "
            "`pip install 'kaleido>=1'` and set BROWSER_PATH (e.g. Debian's "
            "chromium-headless-shell). HTML export works without them."
        )
    fig.write_image(path, format=fmt, width=width, height=height, scale=scale)
    return path
