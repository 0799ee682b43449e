"""Figures of the NAP2 experiment (``bench/nap2.py``, notebook 07): regret at fractions of the
online budget, top-k precision and every rung's Kendall tau from the benchmark's results, and
one Successive Halving rung with predicted beside observed and final accuracy."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy import stats

from workbench.evaluation import kendall_tau
from workbench.viz._html import frame_html
from workbench.viz._theme import PAPER_TEMPLATE, apply_theme

RESULTS_COLUMNS = ["space", "method", "fraction", "minibatches", "regret", "ci95", "n",
                   "uses_offline"]
PRECISION_COLUMNS = ["space", "method", "k", "precision", "ci95", "n", "uses_offline"]
RUNG_TAU_COLUMNS = ["space", "method", "rung", "budget", "signal", "tau", "ci95", "n"]
RUNG_TABLE_COLUMNS = ["rung", "budget", "candidate", "cell", "ranker_score", "rank", "score",
                      "observed_rank", "final", "final_rank", "decision"]


# -- reading the benchmark's results -----------------------------------------------------------

def _results(results: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
    """The results dict of ``bench/nap2.py`` (given, or read from its JSON file)."""
    if isinstance(results, (str, os.PathLike)):
        results = json.loads(Path(results).read_text())
    if not isinstance(results, Mapping) or not isinstance(results.get("spaces"), Mapping):
        raise ValueError("expected the results of bench/nap2.py (a dict with 'spaces') or the "
                         "path of its nap2.json")
    return dict(results)


def _sections(results: Mapping[str, Any] | str | os.PathLike[str]
              ) -> list[tuple[str, Mapping[str, Any]]]:
    """(space, section) for every space that has aggregated methods yet."""
    return [(str(s), sec) for s, sec in _results(results)["spaces"].items()
            if isinstance(sec, Mapping) and sec.get("methods")]


def _num(d: Mapping[str, Any] | None, key: str) -> float:
    v = (d or {}).get(key)
    return math.nan if v is None else float(v)


def _ci95(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, half-width of the 95% t interval (NaN below two values) and n of the finite
    values (the benchmark's aggregation)."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan, 0
    half = (float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
            if v.size > 1 else math.nan)
    return float(v.mean()), half, int(v.size)


def nap2_results_frame(results: Mapping[str, Any] | str | os.PathLike[str]) -> pd.DataFrame:
    """Data step: one row per (space, method, fraction of the online budget) with the mean
    regret over seeds, its 95% CI half-width, n and whether the method uses the offline phase.

    ``results``: the dict of ``bench/results/nap2.json`` or that file's path."""
    rows = []
    for space, sec in _sections(results):
        budget = float(sec.get("online_minibatches", math.nan))
        for method, m in sec["methods"].items():
            for frac, ci in sorted((m.get("regret_at_fraction") or {}).items(),
                                   key=lambda kv: float(kv[0])):
                rows.append({"space": space, "method": str(method), "fraction": float(frac),
                             "minibatches": float(frac) * budget, "regret": _num(ci, "mean"),
                             "ci95": _num(ci, "ci95"), "n": int(_num(ci, "n") or 0),
                             "uses_offline": bool(m.get("uses_offline", False))})
    return pd.DataFrame(rows, columns=RESULTS_COLUMNS)


def nap2_precision_frame(results: Mapping[str, Any] | str | os.PathLike[str]) -> pd.DataFrame:
    """Data step: one row per (space, method, k) with the mean top-k precision within the pool
    over seeds, its 95% CI, n; methods without one (RE searching beyond the pool) are left
    out."""
    rows = []
    for space, sec in _sections(results):
        for method, m in sec["methods"].items():
            for k in (3, 5):
                ci = m.get(f"top{k}_precision")
                if not ci:
                    continue
                rows.append({"space": space, "method": str(method), "k": k,
                             "precision": _num(ci, "mean"), "ci95": _num(ci, "ci95"),
                             "n": int(_num(ci, "n") or 0),
                             "uses_offline": bool(m.get("uses_offline", False))})
    return pd.DataFrame(rows, columns=PRECISION_COLUMNS)


def rung_taus_frame(source: Any, *, space: str = "") -> pd.DataFrame:
    """Data step: per (space, method, rung) the Kendall tau against the table's final accuracy
    of the ranker's scores (``signal="ranker"``) and of the observed accuracy
    (``"observed"``), mean over seeds with a 95% CI (``n``: the seeds with a tau).

    ``source``: the benchmark's results (dict or path), a ``rung_correlations`` DataFrame
    (optionally with ``method`` and ``seed`` columns, several seeds are averaged), or a
    Successive Halving search (its history); ``space`` labels the last two."""
    if isinstance(source, (str, os.PathLike)) or (isinstance(source, Mapping)
                                                   and "spaces" in source):
        rows = []
        for sp, sec in _sections(source):
            rungs = list(sec.get("rungs") or [])
            for method, m in sec["methods"].items():
                for rung, d in sorted((m.get("rung_tau") or {}).items(),
                                      key=lambda kv: int(kv[0])):
                    r = int(rung)
                    for signal in ("ranker", "observed"):
                        ci = d.get(signal)
                        rows.append({"space": sp, "method": str(method), "rung": r,
                                     "budget": float(rungs[r]) if r < len(rungs) else math.nan,
                                     "signal": signal, "tau": _num(ci, "mean"),
                                     "ci95": _num(ci, "ci95"), "n": int(_num(ci, "n") or 0)})
        return pd.DataFrame(rows, columns=RUNG_TAU_COLUMNS)
    if hasattr(source, "history") and not isinstance(source, pd.DataFrame):
        from workbench.search import rung_correlations  # viz does not import search at load

        name = str(getattr(source, "label", "search"))
        ranker = getattr(getattr(source, "ranker", None), "name", None)
        source = rung_correlations(source.history).assign(
            method=f"{name} ({ranker})" if ranker else name)
    if not isinstance(source, pd.DataFrame):
        raise ValueError(f"expected nap2 results, a rung_correlations DataFrame or a search, "
                         f"got {type(source).__name__}")
    missing = {"rung", "budget", "tau_ranker", "tau_observed"} - set(source.columns)
    if missing:
        raise ValueError(f"the frame lacks columns {sorted(missing)}; pass the output of "
                         "workbench.search.rung_correlations")
    df = source.copy()
    if "method" not in df.columns:
        df["method"] = "search"
    if "bracket" in df.columns:
        b = pd.to_numeric(df["bracket"], errors="coerce")
        df["method"] = [f"{m} (bracket {int(x)})" if math.isfinite(x) else str(m)
                        for m, x in zip(df["method"], b, strict=True)]
    rows = []
    for (method, rung), g in df.groupby(["method", "rung"], sort=False):
        for signal in ("ranker", "observed"):
            mean, half, n = _ci95(pd.to_numeric(g[f"tau_{signal}"], errors="coerce").tolist())
            rows.append({"space": space, "method": str(method), "rung": int(rung),
                         "budget": float(g["budget"].iloc[0]), "signal": signal, "tau": mean,
                         "ci95": half, "n": n})
    out = pd.DataFrame(rows, columns=RUNG_TAU_COLUMNS)
    order = {m: i for i, m in enumerate(dict.fromkeys(out["method"]))}  # as first seen
    return (out.sort_values(["method", "rung"], key=lambda c: c.map(order) if c.name == "method"
                            else c, kind="stable").reset_index(drop=True))


# -- drawing -----------------------------------------------------------------------------------

def _colors(methods: Sequence[str]) -> dict[str, str]:
    way = PAPER_TEMPLATE.layout.colorway
    return {m: way[i % len(way)] for i, m in enumerate(dict.fromkeys(methods))}


def _err(values: pd.Series) -> dict[str, Any]:
    arr = [None if not math.isfinite(v) else float(v) for v in values.astype(float)]
    return dict(type="data", array=arr, visible=True, thickness=1.2, width=3)


def _facets(spaces: Sequence[str], **kw: Any) -> go.Figure:
    spaces = list(spaces) or [""]
    return make_subplots(rows=1, cols=len(spaces), subplot_titles=[s.upper() for s in spaces],
                         horizontal_spacing=0.08, **kw)


def plot_nap2_regret(frame: pd.DataFrame, *, dodge: float = 0.012,
                     title: str | None = None) -> go.Figure:
    """Drawing step for :func:`nap2_results_frame`: mean regret ± 95% CI against the fraction of
    the online budget, one line per method (solid: uses the offline predictors), one panel
    per space; ``dodge`` shifts the methods sideways so their error bars stay apart."""
    missing = {"space", "method", "fraction", "regret", "ci95", "uses_offline"} - set(frame)
    if missing:
        raise ValueError(f"frame lacks columns {sorted(missing)}; use nap2_results_frame")
    spaces = list(dict.fromkeys(frame["space"]))
    methods = list(dict.fromkeys(frame["method"]))
    colors = _colors(methods)
    fig = _facets(spaces)
    for col, space in enumerate(spaces, start=1):
        for i, method in enumerate(methods):
            d = frame[(frame["space"] == space) & (frame["method"] == method)]
            if d.empty:
                continue
            d = d.sort_values("fraction")
            shift = (i - (len(methods) - 1) / 2) * dodge
            fig.add_trace(go.Scatter(
                x=d["fraction"] + shift, y=d["regret"], error_y=_err(d["ci95"]),
                mode="lines+markers", name=method, legendgroup=method, showlegend=col == 1,
                line=dict(color=colors[method], width=2,
                          dash="solid" if bool(d["uses_offline"].iloc[0]) else "dash"),
                marker=dict(size=6), customdata=np.column_stack([d["fraction"], d["n"]]),
                hovertemplate=method + " @ %{customdata[0]:.0%}: %{y:.2f}"
                              " (n=%{customdata[1]})<extra></extra>"), row=1, col=col)
        fig.update_xaxes(title="online budget (fraction of one SH run)", tickformat=".0%",
                         row=1, col=col)
    fig.update_yaxes(title="regret (accuracy points)", row=1, col=1)
    fig.update_layout(height=420)
    return apply_theme(fig, title)


def plot_nap2_precision(frame: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Drawing step for :func:`nap2_precision_frame`: top-k precision ± 95% CI per method, one
    bar per k, one panel per space."""
    missing = {"space", "method", "k", "precision", "ci95"} - set(frame.columns)
    if missing:
        raise ValueError(f"frame lacks columns {sorted(missing)}; use nap2_precision_frame")
    spaces = list(dict.fromkeys(frame["space"]))
    ks = sorted(set(frame["k"].astype(int)))
    way = PAPER_TEMPLATE.layout.colorway
    fig = _facets(spaces, shared_yaxes=True)
    for col, space in enumerate(spaces, start=1):
        for j, k in enumerate(ks):
            d = frame[(frame["space"] == space) & (frame["k"].astype(int) == k)]
            fig.add_trace(go.Bar(x=d["method"], y=d["precision"], error_y=_err(d["ci95"]),
                                 name=f"top-{k}", legendgroup=f"top-{k}", showlegend=col == 1,
                                 marker_color=way[j % len(way)],
                                 hovertemplate="%{x}: %{y:.2f}<extra>top-" + str(k)
                                               + "</extra>"), row=1, col=col)
    fig.update_yaxes(title="precision in the pool", range=[0, 1.05], row=1, col=1)
    fig.update_layout(barmode="group", height=420)
    return apply_theme(fig, title)


def plot_rung_taus(frame: pd.DataFrame, *, signals: Sequence[str] = ("ranker", "observed"),
                   title: str | None = None) -> go.Figure:
    """Drawing step for :func:`rung_taus_frame`: per rung, the Kendall tau (± 95% CI) of each
    method's ranker scores (solid) and of the observed accuracy (dotted) against the table's
    final accuracy; one panel per space. A ranker that is the observed accuracy (plain SH)
    is drawn once, as observed."""
    missing = set(RUNG_TAU_COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"frame lacks columns {sorted(missing)}; use rung_taus_frame")
    unknown = set(signals) - {"ranker", "observed"}
    if unknown or not signals:
        raise ValueError(f"signals must be among ('ranker', 'observed'), got {list(signals)}")
    spaces = list(dict.fromkeys(frame["space"]))
    methods = list(dict.fromkeys(frame["method"]))
    colors = _colors(methods)
    fig = _facets(spaces, shared_yaxes=True)
    for col, space in enumerate(spaces, start=1):
        for method in methods:
            own = frame[(frame["space"] == space) & (frame["method"] == method)]
            for signal in signals:
                d = own[own["signal"] == signal].sort_values("rung")
                if d.empty or (signal == "ranker" and "observed" in signals
                               and _same(d, own[own["signal"] == "observed"])):
                    continue
                label = f"{method}: {signal}"
                fig.add_trace(go.Scatter(
                    x=d["rung"], y=d["tau"], error_y=_err(d["ci95"]), mode="lines+markers",
                    name=label, legendgroup=label, showlegend=col == 1,
                    line=dict(color=colors[method], width=2,
                              dash="solid" if signal == "ranker" else "dot"),
                    marker=dict(symbol="circle" if signal == "ranker" else "circle-open",
                                size=7),
                    customdata=np.column_stack([d["budget"], d["n"]]),
                    hovertemplate=label + ", rung %{x} (%{customdata[0]:g} mini-batches): "
                                  "τ %{y:.2f} (n=%{customdata[1]})<extra></extra>"),
                    row=1, col=col)
        rungs = frame[frame["space"] == space].drop_duplicates("rung").sort_values("rung")
        fig.update_xaxes(title="rung (mini-batches)", tickvals=rungs["rung"].tolist(),
                         ticktext=[f"{int(r)}" if not math.isfinite(b) else f"{int(r)}: {b:g}"
                                   for r, b in zip(rungs["rung"], rungs["budget"].astype(float),
                                                   strict=True)], row=1, col=col)
    fig.update_yaxes(title="Kendall τ vs final accuracy", row=1, col=1)
    fig.update_layout(height=420)
    return apply_theme(fig, title)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether two signals' rows hold the same taus rung by rung (NaN equal to NaN)."""
    x, y = a.sort_values("rung"), b.sort_values("rung")
    return (x["rung"].tolist() == y["rung"].tolist()
            and np.allclose(x["tau"].to_numpy(float), y["tau"].to_numpy(float), equal_nan=True))


# -- one rung of a stepped Successive Halving --------------------------------------------------

def _rank_desc(values: pd.Series) -> pd.Series:
    """1 = highest; NaN last (after every finite value), ties by order."""
    v = pd.to_numeric(values, errors="coerce").astype(float)
    return v.fillna(-np.inf).rank(ascending=False, method="first").astype(int)


def rung_table_data(search: Any, rung: int | None = None) -> pd.DataFrame:
    """Data step: one rung of a Successive Halving run (default: the latest evaluated; before
    the first step: the pending candidates), best ranked first: the ranker's score and rank,
    the observed accuracy and its rank, the table's final accuracy and its rank (analysis
    only: never used by the search) and the decision. With a ``CombinedRanker`` the latest
    rung also gets each component's raw score (``ranker_<name>``)."""
    if not all(hasattr(search, a) for a in ("rung_table", "table")):
        raise ValueError(f"expected a SuccessiveHalving, got {type(search).__name__}")
    hist = search.history
    if rung is not None and hist.empty:
        raise ValueError(f"rung {rung!r} has not been evaluated yet")
    t = search.rung_table(rung) if len(hist) else search.table()
    t = t.reset_index(drop=True)
    for col in ("ranker_score", "score", "final", "rank", "cell"):
        if col not in t.columns:
            t[col] = np.nan
    pending = (t["decision"] == "pending").all()
    t["candidate"] = t["candidate"].astype(str)
    none = pd.Series(pd.NA, index=t.index, dtype="Int64")
    t["rank"] = pd.to_numeric(t["rank"], errors="coerce").astype("Int64")
    t["observed_rank"] = none if pending else _rank_desc(t["score"]).astype("Int64")
    t["final_rank"] = _rank_desc(t["final"]).astype("Int64") if t["final"].notna().any() else none
    cols = list(RUNG_TABLE_COLUMNS)
    comps = getattr(getattr(search, "ranker", None), "components_", None)
    latest = rung is None or (len(hist) > 0 and rung == int(hist["rung"].max()))
    if isinstance(comps, pd.DataFrame) and latest and not pending \
            and set(comps.index.astype(str)) == set(t["candidate"]):
        comps = comps.set_axis(comps.index.astype(str))
        for name in comps.columns:
            t[f"ranker_{name}"] = t["candidate"].map(comps[name]).astype(float)
            cols.insert(cols.index("rank"), f"ranker_{name}")
    return t[cols].sort_values(["rank", "final_rank"] if not pending else ["final_rank"],
                               na_position="last", kind="stable").reset_index(drop=True)


def rung_table_html(data: pd.DataFrame, *, show_final: bool = True,
                    caption: str | None = None) -> str:
    """Drawing step for :func:`rung_table_data`: an HTML table, kept rows green and dropped red,
    with the rung's Kendall tau of the ranker and of the observed accuracy vs the final one."""
    if "decision" not in data.columns:
        raise ValueError("data lacks a decision column; use rung_table_data")
    shown = data if show_final else data.drop(columns=[c for c in ("final", "final_rank")
                                                       if c in data.columns])
    if caption is None and len(data):
        caption = f"rung {int(data['rung'].iloc[0])}, budget {float(data['budget'].iloc[0]):g}"
        taus = _rung_taus(data)
        if show_final and taus:
            caption += ": τ vs final, " + ", ".join(f"{k} {v:.2f}" for k, v in taus.items())
    return frame_html(shown, status="decision", float_format="{:.2f}", caption=caption or "")


def _rung_taus(data: pd.DataFrame) -> dict[str, float]:
    out = {}
    final = pd.to_numeric(data["final"], errors="coerce").to_numpy(float)
    for name, col in (("ranker", "ranker_score"), ("observed", "score")):
        s = pd.to_numeric(data[col], errors="coerce").to_numpy(float)
        ok = np.isfinite(s) & np.isfinite(final)
        if ok.sum() >= 3:
            out[name] = kendall_tau(s[ok], final[ok])
    return out


def plot_rung_scores(data: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Drawing step for :func:`rung_table_data`: the ranker's score and the observed accuracy
    of each candidate against its final accuracy in the table (two panels, kept vs dropped
    markers, Kendall tau in the panel titles)."""
    missing = {"candidate", "ranker_score", "score", "final", "decision"} - set(data.columns)
    if missing:
        raise ValueError(f"data lacks columns {sorted(missing)}; use rung_table_data")
    from workbench.viz._search import DECISION_STYLE

    taus = _rung_taus(data)
    names = [("ranker_score", "ranker score (predicted)", "ranker"),
             ("score", "observed accuracy", "observed")]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=[
        label + (f" — τ {taus[key]:.2f}" if key in taus else "") for _, label, key in names])
    for col, (column, label, _) in enumerate(names, start=1):
        for decision, (color, symbol) in DECISION_STYLE.items():
            d = data[data["decision"] == decision]
            if d.empty:
                continue
            fig.add_trace(go.Scatter(
                x=d["final"], y=d[column], mode="markers", name=decision, legendgroup=decision,
                showlegend=col == 1, text=d["candidate"].astype(str),
                marker=dict(color=color, symbol=symbol, size=9,
                            line=dict(width=1.5, color=color)),
                hovertemplate="%{text}: final %{x:.2f}, " + label + " %{y:.2f}<extra>"
                              + decision + "</extra>"), row=1, col=col)
        fig.update_xaxes(title="final accuracy in the table (%)", row=1, col=col)
        fig.update_yaxes(title=label, row=1, col=col)
    fig.update_layout(height=400)
    return apply_theme(fig, title)
