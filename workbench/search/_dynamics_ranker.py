"""Rankers that read what a search's evaluations carry: training dynamics (NAP2), and a
fitted architecture predictor (e.g. the GCN) scoring the cells themselves."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from workbench._checks import check_int
from workbench.features import FEATURE_SCHEMA_VERSION
from workbench.predictors import (
    default_dynamics_predictor,
    dynamics_inputs,
    graphs_from_cells,
    load_predictor,
    snapshot_maps,
)
from workbench.search._base import Evaluation, Ranker
from workbench.spaces import SearchSpace, get_space


def _as_predictor(p: Any) -> Any:
    if isinstance(p, (str, os.PathLike)):
        return load_predictor(p)
    if not callable(getattr(p, "predict", None)):
        raise ValueError(f"predictor must be a fitted dynamics predictor (with predict) or a "
                         f"predictor file, got {p!r}")
    return p


def _meta(predictor: Any) -> dict[str, Any]:
    meta = getattr(predictor, "metadata_", None)
    return dict(meta) if isinstance(meta, Mapping) else {}


def _cadence(meta: Mapping[str, Any]) -> int | None:
    every = meta.get("snapshot_every")
    if every is None and isinstance(meta.get("train"), Mapping):
        every = meta["train"].get("snapshot_every")
    return None if every is None else int(every)


def _run_name(ev: Evaluation) -> str:
    rid = ev.info.get("run_id") if isinstance(ev.info, Mapping) else None
    return f"run {rid} ({ev.cell_id})" if rid else f"candidate {ev.cell_id}"


class DynamicsRanker(Ranker):
    """Scores a rung's candidates by a dynamics predictor's predicted final accuracy from the
    snapshots of their current evaluation (NAP2 inside Successive Halving).

    ``predictor``: a fitted dynamics predictor, a predictor file, or ``{step: predictor}`` (at
    each rung the one with the largest step the rung has reached); default: the bundled one.
    ``step`` (single predictor only): the mini-batch whose snapshots it reads, default its
    ``metadata_["step"]``. Each call is one ``predict`` over the whole rung. A predictor made for
    another feature schema, network preset or snapshot interval than the runs, or a rung shorter
    than its step, is refused with a ValueError naming both sides (a different schedule length
    only warns: the dynamics shift, but may still rank). A candidate whose snapshots
    hold NaN/inf, or whose run diverged, scores NaN (ranks last) with a warning naming its run.
    """

    name = "dynamics"

    def __init__(self, predictor: Any = None, step: int | None = None, *,
                 name: str = "dynamics") -> None:
        if isinstance(predictor, Mapping):
            if step is not None:
                raise ValueError("step= applies to a single predictor; a {step: predictor} "
                                 f"mapping names its own steps, got step={step!r}")
            if not predictor:
                raise ValueError("the {step: predictor} mapping must not be empty")
            self.predictors = {check_int("a mapping key (step)", k, minimum=1): _as_predictor(v)
                               for k, v in sorted(predictor.items())}
            for k, p in self.predictors.items():
                s = _meta(p).get("step")
                if s is not None and int(s) != k:
                    raise ValueError(f"the predictor under step {k} was fitted on snapshots up "
                                     f"to mini-batch {s}")
        else:
            p = default_dynamics_predictor() if predictor is None else _as_predictor(predictor)
            fitted = _meta(p).get("step")
            if step is None and fitted is None:
                raise ValueError("the predictor's metadata_ names no step: pass step= (the "
                                 "mini-batch whose snapshots it was fitted on)")
            s = check_int("step", step if step is not None else fitted, minimum=1)
            if fitted is not None and int(fitted) != s:
                raise ValueError(f"step={s} does not match the predictor, fitted on snapshots "
                                 f"up to mini-batch {int(fitted)}")
            self.predictors = {s: p}
        self.step = min(self.predictors)
        self.name = name
        self._warned = False

    def __repr__(self) -> str:
        return f"DynamicsRanker(steps={list(self.predictors)})"

    def _pick(self, steps: int) -> tuple[int, Any]:
        usable = [s for s in self.predictors if s <= steps]
        if not usable:
            raise ValueError(f"the rung has {steps} mini-batches but the dynamics predictor "
                             f"reads snapshots up to mini-batch {self.step}: start SH at a "
                             f"budget of at least {self.step} mini-batches")
        s = max(usable)
        return s, self.predictors[s]

    def _check(self, ev: Evaluation, step: int, predictor: Any) -> None:
        """ValueError when the evaluation's run does not match what the predictor expects."""
        if ev.snapshots is None:
            raise ValueError(f"{_run_name(ev)} has no snapshots: DynamicsRanker needs a "
                             "TrainingBackend whose recipe records them (snapshot_every)")
        meta = _meta(predictor)
        recipe = ev.info.get("recipe", {}) if isinstance(ev.info, Mapping) else {}
        theirs = int(getattr(predictor, "feature_schema_version_", FEATURE_SCHEMA_VERSION))
        if int(ev.snapshots.schema_version) != theirs:
            raise ValueError(f"{_run_name(ev)} has feature schema {ev.snapshots.schema_version}, "
                             f"the predictor was fitted on schema {theirs}")
        want = meta.get("model_preset")
        have = recipe.get("model_preset")
        if want is not None and have != want:
            raise ValueError(f"{_run_name(ev)} uses network preset {have!r}, the predictor was "
                             f"fitted on preset {want!r}")
        train = meta.get("train")
        if not isinstance(train, Mapping):
            train = {}
        planned = train.get("max_steps", train.get("steps"))
        if planned is not None and recipe.get("max_steps") not in (None, planned) \
                and not self._warned:
            self._warned = True
            warnings.warn(f"the predictor was fitted on runs whose learning-rate schedule spans "
                          f"{planned} mini-batches, these runs' spans {recipe['max_steps']}: "
                          "their early dynamics differ, expect a weaker ranking", RuntimeWarning,
                          stacklevel=3)
        every = _cadence(meta)
        expected = None if every is None else np.arange(every, step + 1, every)
        got = ev.snapshots.truncate(step).steps
        if expected is not None and not np.array_equal(np.asarray(got), expected):
            raise ValueError(f"{_run_name(ev)} has snapshots at mini-batches "
                             f"{np.asarray(got).tolist()[:6]}... up to {step}; the predictor "
                             f"expects one every {every} ({expected.tolist()[:6]}...)")

    def __call__(self, cells: Sequence[Any], results: Sequence[Evaluation]) -> np.ndarray:
        out = np.full(len(results), math.nan)
        if not results:
            return out
        steps = min(int(r.info.get("steps", 0)) for r in results)
        step, predictor = self._pick(steps)
        maps, keep = [], []
        for i, ev in enumerate(results):
            self._check(ev, step, predictor)
            m = snapshot_maps(ev.snapshots, step)
            status = ev.info.get("status") if isinstance(ev.info, Mapping) else None
            if status == "diverged" or not np.isfinite(m).all():
                why = "diverged" if status == "diverged" else "has NaN/inf snapshots"
                warnings.warn(f"{_run_name(ev)} {why}: it ranks last", RuntimeWarning,
                              stacklevel=2)
                continue
            maps.append(m)
            keep.append(i)
        if keep:
            scores = np.asarray(predictor.predict(dynamics_inputs(np.stack(maps))), dtype=float)
            out[keep] = scores.ravel()
        return out


class GraphRanker(Ranker):
    """Scores cells with a fitted architecture predictor on their graphs (e.g. the GCN), one
    ``predict`` per batch, cached per cell (it ignores the budget: no training signal)."""

    name = "gcn"

    def __init__(self, predictor: Any, space: str | SearchSpace, *, name: str = "gcn") -> None:
        self.predictor = _as_predictor(predictor)
        self.space = get_space(space) if isinstance(space, str) else space
        if not isinstance(self.space, SearchSpace):
            raise ValueError(f"space must be a space name or SearchSpace, got {space!r}")
        self.name = name
        self._cache: dict[str, float] = {}

    def __call__(self, cells: Sequence[Any], results: Sequence[Evaluation]) -> np.ndarray:
        todo = [(r.cell_id, c) for c, r in zip(cells, results, strict=True)
                if r.cell_id not in self._cache]
        if todo:
            graphs = graphs_from_cells(self.space.name, [c for _, c in todo])
            for (cid, _), s in zip(todo, np.asarray(self.predictor.predict(graphs), float),
                                   strict=True):
                self._cache[cid] = float(s)
        return np.array([self._cache[r.cell_id] for r in results], dtype=float)
