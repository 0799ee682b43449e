"""A self-contained HTML report of text, tables and plotly figures (plotly.js embedded once)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from workbench._io import atomic_write

_STYLE = """
body{font-family:Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;color:#222;
line-height:1.45;padding:0 1em}
h1{font-size:1.7em} h2{font-size:1.3em;border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:2em} table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f4f4f4} td:first-child,th:first-child{text-align:left}
.caption{color:#555;font-size:.9em;margin:.3em 0 1.2em} .meta{color:#777;font-size:.85em}
"""


@dataclass
class HtmlReport:
    """Collects sections and writes them as one offline-viewable HTML file."""

    title: str
    parts: list[str] = field(default_factory=list)
    _figures: int = 0

    def heading(self, text: str) -> HtmlReport:
        """Start a new section."""
        self.parts.append(f"<h2>{html.escape(text)}</h2>")
        return self

    def text(self, text: str) -> HtmlReport:
        """A paragraph of plain text."""
        self.parts.append(f"<p>{html.escape(text)}</p>")
        return self

    def table(self, df: pd.DataFrame, caption: str = "", float_format: str = "{:.3f}"
              ) -> HtmlReport:
        """A DataFrame as an HTML table."""
        body = df.to_html(index=False, float_format=float_format.format, border=0,
                          escape=True)
        self.parts.append(body + self._caption(caption))
        return self

    def figure(self, fig: go.Figure, caption: str = "") -> HtmlReport:
        """A plotly figure; plotly.js is embedded with the first one so the file works offline."""
        include = self._figures == 0
        self._figures += 1
        self.parts.append(pio.to_html(fig, include_plotlyjs=include, full_html=False)
                          + self._caption(caption))
        return self

    @staticmethod
    def _caption(caption: str) -> str:
        return f'<div class="caption">{html.escape(caption)}</div>' if caption else ""

    def to_html(self) -> str:
        """The whole report as an HTML string."""
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        return (f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
                f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head><body>"
                f"<h1>{html.escape(self.title)}</h1><p class='meta'>generated {stamp} by "
                f"NAS Workbench</p>{''.join(self.parts)}</body></html>")

    def write(self, path: str | Path) -> Path:
        """Write the report atomically (temp file, fsync, rename) and return its path."""
        return atomic_write(path, self.to_html())
