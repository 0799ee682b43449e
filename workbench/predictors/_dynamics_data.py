"""Inputs of the dynamics (NAP2) predictors: runs' snapshot feature maps up to a mini-batch.

``X`` is either a float array ``[n, S, L, C]`` (S snapshots, L = 65 padded layers, C = weight
features followed by gradient features) or a structured array of length n with fields
``maps`` (that array per run) and ``encoding`` (a per-run architecture encoding), which
:func:`dynamics_inputs` builds. Both index along the first axis, so they work with
scikit-learn's splitters, ``cross_val_score`` and ``clone``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench._checks import check_int
from workbench.features import FEATURE_NAMES, FEATURE_SCHEMA_VERSION, FEATURE_SOURCES, Snapshots
from workbench.predictors._graph_features import graph_features

#: Channel names of the last axis of the maps: ``weights.mean`` ... ``grads.cosine``.
CHANNELS: tuple[str, ...] = tuple(f"{s}.{f}" for s in FEATURE_SOURCES for f in FEATURE_NAMES)


@dataclass(frozen=True)
class DynamicsData:
    """What :func:`load_dynamics` returns: inputs, targets, CV groups and the runs' rows."""

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    runs: pd.DataFrame
    steps: np.ndarray
    step: int
    schema_version: int = FEATURE_SCHEMA_VERSION
    #: Runs left out because their snapshot maps up to ``step`` hold NaN or inf (divergence
    #: recorded as done by an older workbench): their rows.
    skipped: pd.DataFrame | None = None


def dynamics_inputs(maps: Any, encoding: Any = None) -> np.ndarray:
    """``X`` for the dynamics predictors: the maps alone, or maps + encoding as a structured
    array (fields ``maps`` and ``encoding``)."""
    arr = np.asarray(maps, dtype=np.float32)
    if arr.ndim != 4 or arr.shape[0] == 0:
        raise ValueError(f"maps must have shape [n, snapshots, layers, channels] with n >= 1, "
                         f"got {arr.shape}")
    if encoding is None:
        return arr
    enc = np.asarray(encoding, dtype=np.float32)
    if enc.ndim != 2 or enc.shape[0] != arr.shape[0]:
        raise ValueError(f"encoding must have shape [n={arr.shape[0]}, dims], got {enc.shape}")
    dtype = np.dtype([("maps", np.float32, arr.shape[1:]), ("encoding", np.float32, enc.shape[1:])])
    out = np.empty(arr.shape[0], dtype=dtype)
    out["maps"], out["encoding"] = arr, enc
    return out


def split_inputs(X: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Validated (maps ``[n, S, L, C]``, encoding ``[n, E]`` or None) of a dynamics ``X``."""
    if isinstance(X, np.ndarray) and X.dtype.names is not None:
        if set(X.dtype.names) != {"maps", "encoding"} or X.ndim != 1:
            raise ValueError(f"a structured X needs exactly the fields ('maps', 'encoding') and "
                             f"one axis, got fields {X.dtype.names} and shape {X.shape}")
        maps, enc = np.asarray(X["maps"], dtype=np.float32), np.asarray(X["encoding"], np.float32)
    else:
        try:
            maps, enc = np.asarray(X, dtype=np.float32), None
        except (TypeError, ValueError) as err:
            raise ValueError(f"X must be a numeric array [n, S, L, C]: {err}") from None
    if maps.ndim != 4 or maps.shape[0] == 0 or min(maps.shape[1:]) == 0:
        raise ValueError(f"X maps must have shape [n, snapshots, layers, channels], all >= 1, "
                         f"got {maps.shape}")
    if not np.isfinite(maps).all():
        raise ValueError(f"X maps have {int((~np.isfinite(maps)).sum())} NaN or inf entries")
    if enc is not None and not np.isfinite(enc).all():
        raise ValueError("X encoding has NaN or inf entries")
    return maps, enc


def layer_mask(maps: np.ndarray) -> np.ndarray:
    """Bool ``[n, L]``: a layer is real iff some feature is non-zero (padding is all zero)."""
    return (maps != 0).any(axis=(1, 3))


def snapshot_maps(snaps: Snapshots, step: int) -> np.ndarray:
    """One run's maps ``[S, L, 2F]`` (weights then gradients) of the snapshots up to ``step``."""
    cut = snaps.truncate(step)
    if len(cut) == 0:
        raise ValueError(f"no snapshot at or before mini-batch {step} (first one at "
                         f"{int(snaps.steps[0]) if len(snaps) else 'none'})")
    return np.concatenate([cut.weights, cut.grads], axis=-1)


def _architecture_columns(rows: pd.DataFrame, encoding: str | None,
                          extra: pd.DataFrame | None) -> np.ndarray | None:
    """The per-run encoding columns: a space encoding or graph features, then ``extra``."""
    if extra is not None and not isinstance(extra, pd.DataFrame):
        raise ValueError(f"extra must be a DataFrame indexed by cell id or None, got "
                         f"{type(extra).__name__}")
    cols: list[np.ndarray] = []
    if encoding is not None:
        from workbench.spaces import get_space

        spaces = rows["space"].unique().tolist()
        if len(spaces) != 1:
            raise ValueError(f"an architecture encoding needs runs of one space, got {spaces}")
        sp = get_space(spaces[0])
        if encoding == "graf":
            cols.append(graph_features(sp, rows["cell"].tolist()).to_numpy(np.float64))
        else:
            cols.append(np.stack([sp.encode(sp.parse(c), encoding) for c in rows["cell"]]))
    if extra is not None:
        table = extra.select_dtypes("number")
        table.index = table.index.astype(str)
        ids = rows["cell_id"].astype(str)
        missing = sorted(set(ids) - set(table.index))
        if missing:
            raise ValueError(f"extra has no row for cell ids {missing[:10]}"
                             f"{' ...' if len(missing) > 10 else ''}")
        values = table.loc[ids.tolist()].to_numpy(np.float64)
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():
            raise ValueError(f"extra has NaN or inf values for cell ids "
                             f"{ids[bad].tolist()[:10]}: fill or drop them first")
        cols.append(values)
    return np.concatenate(cols, axis=1) if cols else None


def load_dynamics(store: Any, run_ids: Sequence[str] | None = None, *, step: int = 100,
                  space: str | None = None, dataset: str | None = None,
                  encoding: str | None = None, extra: pd.DataFrame | None = None,
                  require_label: bool = True) -> DynamicsData:
    """Snapshot maps of stored runs up to mini-batch ``step``, their labels and CV groups.

    ``run_ids`` default to the store's ``done`` runs (filtered by ``space``/``dataset``). Every
    run must have the same snapshot steps up to ``step`` (else their time axes would not line
    up). ``encoding`` (e.g. ``"adjacency"``) appends the space's architecture encoding; all runs
    must then come from one space. ``groups`` is the architecture (space + cell id), for
    cross-validation grouped by architecture.

    ``encoding="graf"`` appends the cells' graph features (:func:`graph_features`) instead, and
    ``extra`` (a DataFrame indexed by cell id, e.g. ``get_benchmark("nb201").proxies()``) its
    numeric columns after the encoding: dynamics, graph features and zero-cost proxies in one
    ``X`` for :class:`DynamicsForest`. ValueError for a run whose cell ``extra`` lacks or has
    non-finite values for.
    """
    from workbench.store import RunStore

    check_int("step", step, minimum=1)
    store = store if isinstance(store, RunStore) else RunStore(store)
    rows = store.runs("done", space=space, dataset=dataset)
    if run_ids is not None:
        ids = list(run_ids)
        missing = sorted(set(ids) - set(rows["run_id"]))
        if missing:
            raise ValueError(f"runs not found among done runs of the store: {missing[:5]}")
        rows = rows.set_index("run_id").loc[ids].reset_index()
    if rows.empty:
        raise ValueError(f"no done runs in {store.root} (space={space!r}, dataset={dataset!r})")
    if require_label and rows["label"].isna().any():
        bad = rows.loc[rows["label"].isna(), "run_id"].tolist()
        raise ValueError(f"{len(bad)} runs have no table label, e.g. {bad[:3]}; pass "
                         "require_label=False to load them anyway")
    maps, steps, keep = [], None, []
    for rid in rows["run_id"]:
        snaps = Snapshots.from_arrays(store.load_arrays(rid, "snapshots"))
        m = snapshot_maps(snaps, int(step))
        keep.append(bool(np.isfinite(m).all()))
        if not keep[-1]:
            continue
        s = snaps.truncate(int(step)).steps
        if steps is None:
            steps = s
        elif not np.array_equal(s, steps):
            raise ValueError(f"run {rid} has snapshots at {s.tolist()} up to {step}, others at "
                             f"{steps.tolist()}: collect with one snapshot interval")
        maps.append(m)
    keep_mask = np.asarray(keep)
    skipped = rows.loc[~keep_mask].reset_index(drop=True)
    if len(skipped):
        warnings.warn(f"{len(skipped)} runs have NaN or inf snapshot statistics up to step "
                      f"{step} and are left out: {skipped['run_id'].tolist()[:10]}",
                      stacklevel=2)
        rows = rows.loc[keep_mask].reset_index(drop=True)
        if rows.empty:
            raise ValueError(f"every selected run has NaN or inf snapshot statistics up to step "
                             f"{step}: {skipped['run_id'].tolist()[:10]}")
    enc = _architecture_columns(rows, encoding, extra)
    y = rows["label"].to_numpy(dtype=float)
    groups = (rows["space"] + ":" + rows["cell_id"].astype(str)).to_numpy()
    return DynamicsData(X=dynamics_inputs(np.stack(maps), enc), y=y, groups=groups,
                        runs=rows.reset_index(drop=True), steps=np.asarray(steps), step=int(step),
                        skipped=skipped)
