"""LayerNAS bucket tables as in the paper's worked example: per layer, each cost bucket's
candidates, with the latest iteration's additions, evictions, rejections and drops marked."""

from __future__ import annotations

import html
import math
import re
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench._checks import check_int
from workbench.viz._theme import apply_theme

BUCKET_COLUMNS = ["layer", "bucket", "range", "rank", "name", "cost", "score", "done", "status",
                  "note", "iteration"]
#: Order of statuses inside a bucket (members first, then what left or never entered).
STATUS_ORDER = {"added": 0, "kept": 0, "evicted": 1, "rejected": 2, "dropped": 3, "empty": 4}
_COLOR = {"added": "#2ca02c", "evicted": "#d62728", "rejected": "#888888",
          "dropped": "#d62728"}


def _score_text(x: float) -> str:
    """A score as the paper prints them (0.40, 93.21)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{x:.2f}" if x == 0 or abs(x) >= 0.01 else f"{x:.3g}"


def layernas_buckets_data(nas: Any) -> pd.DataFrame:
    """Data step: every layer's buckets with their members (``status`` kept, or added in the
    latest iteration; ``done`` = the paper's [x]: all children generated), empty buckets, and
    the latest iteration's evicted, rejected (bucket full) and dropped (cost outside the layer's
    range) candidates, each with a ``note`` (who evicted it, where it came from).

    Takes a ``workbench.search.LayerNAS``; reads only its public tables and history.
    """
    if not all(hasattr(nas, a) for a in ("bucket_table", "history", "space", "bucket_of")):
        raise ValueError(f"expected a workbench.search.LayerNAS, got {type(nas).__name__}")
    it = int(nas.iteration)
    hist = nas.history
    now = hist[hist["iteration"] == it] if it > 0 else hist.iloc[0:0]
    known = {(int(r.layer), str(r.child)): (float(r.model_cost), float(r.score), str(r.parent))
             for r in hist.itertuples()}
    added: dict[tuple[int, str], str] = {}
    rows: list[dict[str, Any]] = []
    for r in now.itertuples():
        layer, child = int(r.layer), str(r.child)
        if r.decision == "dropped":
            lo, hi = nas.ranges[layer - 1]
            rows.append({"layer": layer, "bucket": pd.NA, "range": "outside", "name": child,
                         "cost": float(r.model_cost), "score": np.nan, "status": "dropped",
                         "note": f"cost {r.model_cost:g} outside {lo:g}-{hi:g} "
                                 f"(from {r.parent})"})
            continue
        value = (nas.bucket_value(layer, r.options) if hasattr(nas, "bucket_value")
                 else float(r.model_cost))
        bucket = nas.bucket_of(layer, value)
        label = nas.bucket_label(layer, bucket) if bucket is not None else str(r.bucket)
        if r.decision == "rejected-full":
            rows.append({"layer": layer, "bucket": bucket, "range": label, "name": child,
                         "cost": float(r.model_cost), "score": float(r.score),
                         "status": "rejected",
                         "note": f"bucket full, worse than its members (from {r.parent})"})
            continue
        added[(layer, child)] = f"from {r.parent}" + ("" if r.trained else " (no training)")
        if str(r.decision).startswith("evicted "):
            gone = str(r.decision)[len("evicted "):]
            cost, score, _ = known.get((layer, gone), (np.nan, np.nan, ""))
            rows.append({"layer": layer, "bucket": bucket, "range": label, "name": gone,
                         "cost": cost, "score": score, "status": "evicted",
                         "note": f"evicted by {child}"})
    for layer in range(1, nas.space.n_layers + 1):
        table = nas.bucket_table(layer, long=True)
        for b in range(nas.buckets_per_layer):
            members = table[table["bucket"] == b]
            if members.empty:
                rows.append({"layer": layer, "bucket": b, "range": nas.bucket_label(layer, b),
                             "name": "", "cost": np.nan, "score": np.nan, "status": "empty",
                             "note": ""})
            for m in members.itertuples():
                key = (layer, str(m.name))
                rows.append({"layer": layer, "bucket": b, "range": str(m.range),
                             "rank": int(m.rank), "name": str(m.name), "cost": float(m.cost),
                             "score": float(m.score), "done": bool(m.done),
                             "status": "added" if key in added else "kept",
                             "note": added.get(key, "")})
    out = pd.DataFrame(rows, columns=BUCKET_COLUMNS)
    out["iteration"] = it
    # which layer of the searched space each search layer is (they differ under layer_order)
    order = tuple(getattr(nas, "search_order", range(1, nas.space.n_layers + 1)))
    out.insert(1, "space_layer", out["layer"].map(lambda k: order[int(k) - 1]))
    out["done"] = out["done"].astype(object).fillna(False).astype(bool)
    out["rank"] = pd.array(out["rank"], dtype="Int64")
    out["bucket"] = pd.array(out["bucket"], dtype="Int64")
    out["_order"] = out["status"].map(STATUS_ORDER)
    out = out.sort_values(["layer", "bucket", "_order", "rank"], na_position="last",
                          kind="stable")
    return out.drop(columns="_order").reset_index(drop=True)


def _member_text(r: Any, markup: str) -> str:
    """'CAD 0.40 [x]' with the status shown in ``markup`` ('html' or 'plotly')."""
    text = f"{r.name} {_score_text(r.score)}".strip() + (" [x]" if r.done else "")
    text = html.escape(text)
    color = _COLOR.get(r.status)
    if r.status == "added":
        text = f"<b>+{text}</b>"
    elif r.status in ("evicted", "rejected", "dropped"):
        text = f"<s>{text}</s>" if markup == "html" else f"✗ {text}"
    if color is None:
        return text
    return f"<span style='color:{color}'>{text}</span>"


def _layer_title(data: pd.DataFrame, layer: int) -> str:
    """'layer 2', or 'layer 2 (space layer 5)' when the search reordered the layers."""
    if "space_layer" in data.columns:
        own = data.loc[data["layer"] == layer, "space_layer"]
        if len(own) and int(own.iloc[0]) != layer:
            return f"layer {layer} (space layer {int(own.iloc[0])})"
    return f"layer {layer}"


def layernas_tables_html(data: pd.DataFrame) -> str:
    """:func:`layernas_buckets_data` as one HTML table per layer (bucket | candidates): new
    members bold green, evicted and rejected struck through, drops listed under the table."""
    missing = set(BUCKET_COLUMNS) - set(data.columns)
    if missing:
        raise ValueError(f"data lacks columns {sorted(missing)}; use layernas_buckets_data")
    cell = "border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top"
    parts = []
    for layer, d in data.groupby("layer", sort=True):
        rows = []
        for _, members in d[d["bucket"].notna()].groupby("bucket", sort=True):
            shown = members[members["status"] != "empty"]
            text = ", ".join(_member_text(r, "html") for r in shown.itertuples())
            notes = "; ".join(html.escape(n) for n in shown["note"] if n)
            rows.append(f"<tr><td style='{cell}'>[{html.escape(str(members['range'].iloc[0]))}]"
                        f"</td><td style='{cell}'>{text}</td>"
                        f"<td style='{cell};color:#777'>{notes}</td></tr>")
        dropped = d[d["status"] == "dropped"]
        drop = ("<div style='font-size:11px;color:#a33'>dropped: " + ", ".join(
            f"{html.escape(str(r.name))} ({r.cost:g})" for r in dropped.itertuples())
            + "</div>") if len(dropped) else ""
        parts.append(
            f"<div style='display:inline-block;vertical-align:top;margin:0 14px 10px 0'>"
            f"<table style='border-collapse:collapse;font-size:12px;"
            f"font-family:Helvetica,Arial,sans-serif'>"
            f"<caption style='caption-side:top;text-align:left;font-weight:bold'>"
            f"{html.escape(_layer_title(data, int(layer)))}"
            f"</caption><thead><tr><th style='{cell}'>bucket</th><th style='{cell}'>"
            f"candidates</th><th style='{cell}'>notes</th></tr></thead><tbody>{''.join(rows)}"
            f"</tbody></table>{drop}</div>")
    it = int(data["iteration"].iloc[0]) if len(data) else 0
    head = (f"<div style='font-size:12px;color:#555'>after iteration {it}: "
            "<b style='color:#2ca02c'>+new</b>, <s>evicted / rejected</s>, [x] = all children "
            "generated</div>")
    return head + "".join(parts)


#: Pixel sizes of the plotly tables (13 px text): one text line, a cell's top + bottom padding,
#: the shortest row, the header, and the gap between two layers' tables (room for a title).
_LINE_PX, _PAD_PX, _ROW_PX, _HEADER_PX, _GAP_PX = 17, 16, 28, 30, 46
_TAG = re.compile(r"<[^>]*>")


def _visible_length(markup: str) -> int:
    """Characters ``markup`` shows (tags dropped, entities counted once)."""
    return len(html.unescape(_TAG.sub("", markup)))


def _wrap_members(parts: list[str], width: int) -> list[str]:
    """``parts`` joined by ', ' into lines of at most ``width`` shown characters (a part longer
    than that gets a line of its own): the table wraps at members, never inside one."""
    lines: list[str] = []
    line: list[str] = []
    used = 0
    for part in parts:
        n = _visible_length(part)
        if line and used + 2 + n > width:
            lines.append(", ".join(line) + ",")
            line, used = [], 0
        used += n + (2 if line else 0)
        line.append(part)
    if line:
        lines.append(", ".join(line))
    return lines or [""]


def _cell_markup(lines: list[str]) -> str:
    """The lines joined by ``<br>``; always with one, because plotly re-wraps a cell without a
    ``<br>`` at its spaces, including the one inside ``<span style=...>`` (issue 14)."""
    return "<br>".join(lines) + ("<br>" if len(lines) == 1 else "")


def _table_rows(data: pd.DataFrame, layer: int, *, wrap: int = 64
                        ) -> tuple[list[str], list[str], list[str], list[int]]:
    """One layer's table as the figure draws it: (bucket labels, candidate markup, fill colours,
    text lines per row); every bucket in order, then a ``dropped`` row when there are drops."""
    d = data[data["layer"] == layer]
    ranges: list[str] = []
    texts: list[str] = []
    fills: list[str] = []
    lines: list[int] = []
    for _, members in d[d["bucket"].notna()].groupby("bucket", sort=True):
        shown = members[members["status"] != "empty"]
        wrapped = _wrap_members([_member_text(r, "plotly") for r in shown.itertuples()], wrap)
        ranges.append(_cell_markup([f"[{html.escape(str(members['range'].iloc[0]))}]"]))
        texts.append(_cell_markup(wrapped))
        lines.append(len(wrapped))
        status = set(shown["status"])
        fills.append("#e9f6e9" if "added" in status else
                     "#fbeaea" if status & {"evicted", "rejected"} else "white")
    dropped = d[d["status"] == "dropped"]
    if len(dropped):
        wrapped = _wrap_members([_member_text(r, "plotly") for r in dropped.itertuples()], wrap)
        ranges.append(_cell_markup(["dropped"]))
        texts.append(_cell_markup(wrapped))
        lines.append(len(wrapped))
        fills.append("#fbeaea")
    return ranges, texts, fills, lines


def plot_layernas_buckets(data: pd.DataFrame, *, title: str | None = None, wrap: int = 64
                          ) -> go.Figure:
    """Drawing step: one table per layer (rows: buckets; candidates with the latest additions
    in bold green and evictions/rejections marked ✗; drops in the last row). Candidates wrap
    at ``wrap`` characters; every table gets the height of its rows, so none scrolls."""
    missing = set(BUCKET_COLUMNS) - set(data.columns)
    if missing:
        raise ValueError(f"data lacks columns {sorted(missing)}; use layernas_buckets_data")
    check_int("wrap", wrap, minimum=8)
    layers = [int(k) for k in sorted(data["layer"].unique())]
    tables = [_table_rows(data, k, wrap=wrap) for k in layers]
    heights = [_HEADER_PX + sum(max(_ROW_PX, n * _LINE_PX + _PAD_PX) for n in t[3]) + 4
               for t in tables]
    body = sum(heights) + _GAP_PX * (len(layers) - 1)
    range_chars = max([_visible_length(r) for t in tables for r in t[0]] + [8])
    fig = make_subplots(rows=len(layers), cols=1, specs=[[{"type": "table"}]] * len(layers),
                        subplot_titles=[_layer_title(data, k) for k in layers],
                        row_heights=[h / sum(heights) for h in heights],
                        vertical_spacing=_GAP_PX / body if len(layers) > 1 else 0.0)
    for row, (ranges, texts, fills, _) in enumerate(tables, start=1):
        fig.add_trace(go.Table(
            columnwidth=[range_chars, wrap],
            header=dict(values=["<b>bucket</b>", "<b>candidates</b>"], fill_color="#f4f4f4",
                        align="left", line_color="#ccc", height=_HEADER_PX),
            cells=dict(values=[ranges, texts], align="left", fill_color=[fills, fills],
                       line_color="#ddd", height=_ROW_PX)), row=row, col=1)
    top = 70 if title else 40
    fig.update_layout(height=int(body + top + 10), margin=dict(l=10, r=10, t=top, b=10))
    return apply_theme(fig, title)
