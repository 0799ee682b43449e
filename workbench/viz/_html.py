"""DataFrames as small styled HTML tables (widgets and reports), rows coloured by a status."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

#: Row background per status value (SH decisions, LayerNAS events).
STATUS_COLORS: dict[str, str] = {
    "kept": "#e6f4e6", "added": "#d5f0d5", "dropped": "#fbe3e3", "evicted": "#fbe3e3",
    "rejected": "#eeeeee", "pending": "#f6f6f6", "empty": "#ffffff",
}

_TABLE = ("border-collapse:collapse;font-size:12px;font-family:Helvetica,Arial,sans-serif;"
          "margin:4px 0")
_CELL = "border:1px solid #ddd;padding:2px 6px;text-align:{align}"


def _fmt(value: object, float_format: str) -> str:
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        return float_format.format(value)
    return html.escape(str(value))


def _align(value: object) -> str:
    """Numbers right-aligned, everything else left."""
    number = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    return "right" if number else "left"


def frame_html(df: pd.DataFrame, *, status: str | None = None,
               colors: Mapping[str, str] | None = None, float_format: str = "{:.3f}",
               max_rows: int = 200, caption: str = "") -> str:
    """``df`` as an HTML table (text escaped), each row's background picked by its ``status``
    column value (see :data:`STATUS_COLORS`); at most ``max_rows`` rows, the rest counted."""
    colors = {**STATUS_COLORS, **(colors or {})}
    if status is not None and status not in df.columns:
        raise ValueError(f"status column {status!r} is not in {list(df.columns)}")
    head = "".join(f"<th style='{_CELL.format(align='left')};background:#f4f4f4'>"
                   f"{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for _, row in df.head(max_rows).iterrows():
        bg = colors.get(str(row[status]), "#ffffff") if status is not None else "#ffffff"
        cells = "".join(f"<td style='{_CELL.format(align=_align(v))}'>"
                        f"{_fmt(v, float_format)}</td>" for v in row.tolist())
        body.append(f"<tr style='background:{bg}'>{cells}</tr>")
    more = (f"<div style='color:#777;font-size:11px'>... {len(df) - max_rows} more rows</div>"
            if len(df) > max_rows else "")
    cap = (f"<caption style='caption-side:top;text-align:left;font-weight:bold'>"
           f"{html.escape(caption)}</caption>" if caption else "")
    return (f"<table style='{_TABLE}'>{cap}<thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>{more}")
