"""TensorBoard export of stored runs: curves and held-out evaluations as scalars, per-layer
weight/gradient statistics as scalars and their distributions as histograms over steps."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from workbench.features import FEATURE_NAMES, FEATURE_SOURCES, QUANTILES, Snapshots
from workbench.store import RunStore

INSTALL_HINT = "TensorBoard export needs the tensorboard package: pip install -e '.[tensorboard]'"
# Histogram buckets from the recorded order statistics: min, q05 ... q95, max.
_EDGES = ("min", *(f"q{round(q * 100):02d}" for q in QUANTILES), "max")
_MASS = np.diff(np.concatenate([[0.0], QUANTILES, [1.0]]))  # fraction between two edges


def _writer_class() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:  # torch raises this when tensorboard is missing
        raise ImportError(f"{INSTALL_HINT} ({err})") from None
    return SummaryWriter


def _tag(text: str) -> str:
    """A layer name usable in a TensorBoard tag (no slashes or spaces)."""
    return text.replace("/", "_").replace(" ", "_") or "model"


def _histogram(writer: Any, tag: str, row: np.ndarray, count: int, step: int) -> None:
    """One layer's value distribution at one snapshot, rebuilt from its recorded quantiles."""
    f = {name: float(row[i]) for i, name in enumerate(FEATURE_NAMES)}
    edges = np.array([f[e] for e in _EDGES], dtype=np.float64)
    edges = np.maximum.accumulate(edges)  # guard against float noise
    counts = _MASS * count
    std, mean = f["std"], f["mean"]
    writer.add_histogram_raw(tag, min=edges[0], max=edges[-1], num=count,
                             sum=mean * count, sum_squares=(std * std + mean * mean) * count,
                             bucket_limits=edges[1:].tolist(), bucket_counts=counts.tolist(),
                             global_step=step)


def write_run(writer: Any, curves: pd.DataFrame | None, evals: pd.DataFrame | None,
              snapshots: Snapshots | None, *, features: Sequence[str] = FEATURE_NAMES,
              histograms: bool = True) -> int:
    """Write one run's data to an open ``SummaryWriter``; returns the number of scalars."""
    n = 0
    for group, frame in (("curves", curves), ("evals", evals)):
        if frame is None or frame.empty or "step" not in frame:
            continue
        for col in frame.columns:
            if col == "step":
                continue
            for step, value in zip(frame["step"], frame[col], strict=True):
                if np.isfinite(value):
                    writer.add_scalar(f"{group}/{col}", float(value), int(step))
                    n += 1
    if snapshots is not None and len(snapshots):
        index = [FEATURE_NAMES.index(f) for f in features]
        names = [f"{i:02d}_{_tag(name)}" for i, name in enumerate(snapshots.layer_names)]
        count = int(snapshots.sample_size)
        for source in FEATURE_SOURCES:
            data = getattr(snapshots, source)
            for s, step in enumerate(snapshots.steps.tolist()):
                for layer, name in enumerate(names):
                    row = data[s, layer]
                    for i in index:
                        writer.add_scalar(f"{source}/{FEATURE_NAMES[i]}/{name}", float(row[i]),
                                          step)
                        n += 1
                    if histograms and row.any():
                        _histogram(writer, f"{source}_hist/{name}", row, count, step)
    return n


def export_tensorboard(store: RunStore | str | os.PathLike[str], out: str | os.PathLike[str],
                       run_ids: Sequence[str] | None = None, *, status: str | None = "done",
                       features: Sequence[str] = FEATURE_NAMES, histograms: bool = True,
                       progress: bool = True) -> pd.DataFrame:
    """Write TensorBoard event files of stored runs to ``out/<run_id>/`` (``tensorboard
    --logdir out``): curves and evaluations as scalars (``curves/loss``, ``evals/val_acc``),
    every recorded per-layer statistic as a scalar (``weights/l2_norm/03_cells.0.conv``) and
    each layer's weight and gradient distribution as a histogram over steps, rebuilt from the
    recorded min / quantiles / max (``weights_hist/03_...``); the run's config as text.

    ``run_ids``: default every run with ``status`` (None: any status). ``features``: which of
    ``FEATURE_NAMES`` to write as scalars. Returns one row per run: run_id, path, scalars.
    """
    bad = [f for f in features if f not in FEATURE_NAMES]
    if bad:
        raise ValueError(f"unknown features {bad}; choose from {list(FEATURE_NAMES)}")
    writer_class = _writer_class()
    if not isinstance(store, RunStore):
        if not Path(store).is_dir():
            raise FileNotFoundError(f"no run store at {store}")
        store = RunStore(store, readonly=True)
    rows = store.runs(status)
    if run_ids is not None:
        missing = sorted(set(run_ids) - set(rows["run_id"]))
        if missing:
            raise ValueError(f"runs not in the store{f' with status {status!r}' if status else ''}"
                             f": {missing[:5]}")
        rows = rows.set_index("run_id").loc[list(run_ids)].reset_index()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for rid in tqdm(rows["run_id"], desc="tensorboard", disable=not progress, leave=False):
        names = set(store.array_names(rid))
        frames = {name: pd.DataFrame(store.load_arrays(rid, name)) if name in names else None
                  for name in ("curves", "evals")}
        snaps = (Snapshots.from_arrays(store.load_arrays(rid, "snapshots"))
                 if "snapshots" in names else None)
        path = out / str(rid)
        writer = writer_class(log_dir=str(path))
        try:
            row = store.get(rid)
            writer.add_text("config", "```\n" + json.dumps(row.get("config", {}), indent=2,
                                                           sort_keys=True, default=str) + "\n```")
            n = write_run(writer, frames["curves"], frames["evals"], snaps, features=features,
                          histograms=histograms)
        finally:
            writer.close()
        written.append({"run_id": str(rid), "path": str(path), "scalars": n})
    return pd.DataFrame(written, columns=["run_id", "path", "scalars"])
