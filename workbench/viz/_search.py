"""Figures of search traces: regret against cumulative cost with bands over seeds, any search's
scores against cost with its incumbent, and the rung diagram of Successive Halving (candidates
x budget, kept/dropped)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from workbench.viz._theme import PAPER_TEMPLATE, apply_theme


def plot_regret(agg: pd.DataFrame, *, band: tuple[str, str] | str = ("q25", "q75"),
                log_x: bool = True, title: str | None = None) -> go.Figure:
    """Drawing step for ``workbench.search.aggregate_curves``: mean regret per method against
    simulated cost, with a shaded band over seeds (default: the inter-quartile range; ``"std"``:
    mean ± one standard deviation; or any two columns, e.g. ``("q05", "q95")``)."""
    cols = ("std",) if band == "std" else tuple(band)
    if band != "std" and len(cols) != 2:
        raise ValueError(f"band must be 'std' or two column names, got {band!r}")
    missing = {"method", "cost", "mean", *cols} - set(agg.columns)
    if missing:
        raise ValueError(f"aggregated curves lack columns {sorted(missing)}; "
                         "pass the output of workbench.search.aggregate_curves")
    colors = PAPER_TEMPLATE.layout.colorway
    fig = go.Figure()
    for i, (method, d) in enumerate(agg.groupby("method", sort=False)):
        d = d[d["cost"] > 0] if log_x else d
        if band == "std":
            sd = d["std"].fillna(0.0)
            lo, hi = d["mean"] - sd, d["mean"] + sd
        else:
            lo, hi = d[cols[0]], d[cols[1]]
        color = colors[i % len(colors)]
        fig.add_trace(go.Scatter(x=list(d["cost"]) + list(d["cost"])[::-1],
                                 y=list(hi) + list(lo)[::-1], fill="toself",
                                 line=dict(width=0), fillcolor=color, opacity=0.15,
                                 hoverinfo="skip", showlegend=False, legendgroup=str(method)))
        fig.add_trace(go.Scatter(x=d["cost"], y=d["mean"], mode="lines", name=str(method),
                                 line=dict(color=color, width=2), legendgroup=str(method)))
    fig.update_xaxes(title="cumulative training cost (simulated seconds)",
                     type="log" if log_x else "linear")
    fig.update_yaxes(title="regret (accuracy points)")
    return apply_theme(fig, title)


# -- Successive Halving: the rung diagram ---------------------------------------------------------

SH_RUNG_COLUMNS = ["rung", "budget", "candidate", "cell", "score", "ranker_score", "rank",
                   "decision", "final", "reached", "order"]
#: Marker colour and symbol of each SH decision.
DECISION_STYLE = {"kept": ("#2ca02c", "circle"), "dropped": ("#d62728", "x"),
                  "pending": ("#999999", "circle-open")}


def _sh_rows(search: Any) -> pd.DataFrame:
    """Evaluated rows of an SH (or its history), plus pending rows for the next rung."""
    if isinstance(search, pd.DataFrame):
        hist = search
        missing = {"rung", "candidate", "budget", "decision"} - set(hist.columns)
        if missing:
            raise ValueError(f"history lacks columns {sorted(missing)}; pass a "
                             "SuccessiveHalving or its history")
        if "bracket" in hist.columns and hist["bracket"].nunique() > 1:
            raise ValueError("history holds several Hyperband brackets; select one bracket")
        return hist.copy()
    if not all(hasattr(search, a) for a in ("history", "schedule", "table", "done")):
        raise ValueError(f"expected a SuccessiveHalving or its history, got "
                         f"{type(search).__name__}")
    hist = search.history
    if hist.empty:
        return search.table()
    if not search.done:
        last = int(hist["rung"].max())
        plan = search.schedule().set_index("rung")
        kept = hist[(hist["rung"] == last) & (hist["decision"] == "kept")]
        pending = kept.assign(rung=last + 1, budget=float(plan.loc[last + 1, "budget"]),
                              score=np.nan, ranker_score=np.nan, rank=pd.NA, final=np.nan,
                              decision="pending")
        hist = pd.concat([hist, pending], ignore_index=True)
    return hist


def sh_rungs_data(search: Any) -> pd.DataFrame:
    """Data step: one row per (rung, candidate) of a Successive Halving run: budget, scores,
    rank and decision (kept / dropped; the next rung's survivors as pending), with ``reached``
    (the last rung evaluated) and ``order`` (0 = the furthest, best-ranked candidate).

    Takes a ``SuccessiveHalving`` (before its first step: every candidate pending at rung 0)
    or its ``history``.
    """
    rows = _sh_rows(search)
    for col in SH_RUNG_COLUMNS:
        if col not in rows.columns and col not in ("reached", "order"):
            rows[col] = np.nan
    rows = rows.reset_index(drop=True)
    rows["candidate"] = rows["candidate"].astype(str)
    evaluated = rows[rows["decision"] != "pending"]
    first = {c: i for i, c in reversed(list(enumerate(rows["candidate"])))}
    if evaluated.empty:
        reached = {c: -1 for c in first}
        last_rank = {c: 0.0 for c in first}
    else:
        top = evaluated.sort_values("rung").groupby("candidate").tail(1).set_index("candidate")
        reached = top["rung"].astype(int).to_dict()
        last_rank = pd.to_numeric(top["rank"], errors="coerce").to_dict()
    key = sorted(first, key=lambda c: (-reached.get(c, -1), last_rank.get(c, np.inf), first[c]))
    order = {c: i for i, c in enumerate(key)}
    rows["reached"] = rows["candidate"].map(lambda c: reached.get(c, -1)).astype(int)
    rows["order"] = rows["candidate"].map(order).astype(int)
    return rows[SH_RUNG_COLUMNS].sort_values(["rung", "order"]).reset_index(drop=True)


def sh_decisions_data(search: Any) -> pd.DataFrame:
    """Data step: one row per evaluated rung: budget, candidates, kept, dropped, the best by
    the ranker (id and observed score), the rung's cost and the cost so far."""
    hist = search if isinstance(search, pd.DataFrame) else search.history
    cols = ["rung", "budget", "evaluated", "kept", "dropped", "best", "best_score", "cost",
            "cum_cost"]
    if hist.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for rung, d in hist.groupby("rung", sort=True):
        best = d.sort_values("rank").iloc[0]
        rows.append({"rung": int(rung), "budget": float(d["budget"].iloc[0]),
                     "evaluated": len(d), "kept": int((d["decision"] == "kept").sum()),
                     "dropped": int((d["decision"] == "dropped").sum()),
                     "best": str(best["candidate"]), "best_score": float(best["score"]),
                     "cost": float(d["cost"].sum()) if "cost" in d else np.nan,
                     "cum_cost": float(d["cum_cost"].max()) if "cum_cost" in d else np.nan})
    return pd.DataFrame(rows, columns=cols)


def plot_sh_rungs(data: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Drawing step: candidates (rows, best at the top) x rungs (columns, with their budgets);
    each candidate's path in grey, markers kept (green), dropped (red x) or pending (grey)."""
    missing = {"rung", "budget", "candidate", "decision", "order"} - set(data.columns)
    if missing:
        raise ValueError(f"data lacks columns {sorted(missing)}; use sh_rungs_data")
    fig = go.Figure()
    labels = (data.drop_duplicates("candidate").sort_values("order")["candidate"]
              .astype(str).tolist())
    xs: list[Any] = []
    ys: list[Any] = []
    for cand, d in data.sort_values("rung").groupby("candidate", sort=False):
        if len(d) > 1:
            xs += [*d["rung"].tolist(), None]
            ys += [*[str(cand)] * len(d), None]
    if xs:
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#ccc", width=1),
                                 hoverinfo="skip", showlegend=False))
    for decision, (color, symbol) in DECISION_STYLE.items():
        d = data[data["decision"] == decision]
        if d.empty:
            continue
        score = pd.to_numeric(d["score"], errors="coerce") if "score" in d else None
        fig.add_trace(go.Scatter(
            x=d["rung"], y=d["candidate"].astype(str), mode="markers", name=decision,
            marker=dict(color=color, symbol=symbol, size=9, line=dict(width=1.5, color=color)),
            customdata=np.column_stack([d.get("cell", d["candidate"]).astype(str),
                                        score if score is not None else np.full(len(d), np.nan),
                                        d["budget"]]),
            hovertemplate="%{y} @ %{customdata[2]:g} ep<br>%{customdata[0]}<br>"
                          "score %{customdata[1]:.2f}<extra>" + decision + "</extra>"))
    rungs = data.drop_duplicates("rung").sort_values("rung")
    fig.update_xaxes(title="rung (budget in epochs)", tickvals=rungs["rung"].tolist(),
                     ticktext=[f"{int(r)}: {b:g}" for r, b in zip(rungs["rung"],
                                                                  rungs["budget"], strict=True)],
                     range=[-0.5, float(rungs["rung"].max()) + 0.5])
    fig.update_yaxes(title="candidate", type="category", categoryorder="array",
                     categoryarray=labels[::-1], showticklabels=len(labels) <= 40)
    fig.update_layout(height=int(min(1200, max(320, 14 * len(labels) + 120))))
    return apply_theme(fig, title)


# -- any search: scores against cost ---------------------------------------------------------------

PROGRESS_COLUMNS = ["eval", "candidate", "budget", "cum_cost", "score", "decision",
                    "incumbent", "incumbent_score"]


def search_progress_data(search: Any) -> pd.DataFrame:
    """Data step for any ``workbench.search.Search``: one row per history row with its
    cumulative cost, observed score, budget and decision, and the incumbent then
    (``search.incumbent_trace()``; NaN score before there is one)."""
    if not all(hasattr(search, a) for a in ("history", "incumbent_trace")):
        raise ValueError(f"expected a workbench.search Search, got {type(search).__name__}")
    h = search.history
    if h.empty:
        return pd.DataFrame(columns=PROGRESS_COLUMNS)
    _, inc = search.incumbent_trace()
    has, pos = inc >= 0, np.maximum(inc, 0)
    out = h[["eval", "candidate", "budget", "cum_cost", "score", "decision"]].copy()
    out["incumbent"] = np.where(has, h["candidate"].to_numpy(object)[pos], None)
    out["incumbent_score"] = np.where(has, h["score"].to_numpy(float)[pos], np.nan)
    return out.reset_index(drop=True)


def plot_search_progress(data: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Drawing step: every evaluation's observed score against the cumulative cost (one marker
    colour per budget) and the incumbent's score as a step line."""
    missing = set(PROGRESS_COLUMNS) - set(data.columns)
    if missing:
        raise ValueError(f"data lacks columns {sorted(missing)}; use search_progress_data")
    fig = go.Figure()
    scored = data[pd.to_numeric(data["score"], errors="coerce").notna()]
    colors = PAPER_TEMPLATE.layout.colorway
    for i, (budget, d) in enumerate(scored.groupby("budget", sort=True)):
        fig.add_trace(go.Scatter(
            x=d["cum_cost"], y=d["score"], mode="markers", name=f"budget {budget:g}",
            marker=dict(color=colors[i % len(colors)], size=7, opacity=0.7),
            customdata=np.column_stack([d["candidate"].astype(str), d["decision"].astype(str)]),
            hovertemplate="%{customdata[0]}: %{y:.2f}<br>%{customdata[1]}<extra></extra>"))
    fig.add_trace(go.Scatter(x=data["cum_cost"], y=data["incumbent_score"], mode="lines",
                             line=dict(shape="hv", color="#333", width=2), name="incumbent"))
    fig.update_xaxes(title="cumulative cost (s)")
    fig.update_yaxes(title="observed score")
    return apply_theme(fig, title)
