"""The bundled default dynamics predictor and a one-call ranking of stored runs with it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench._paths import bundled_path
from workbench.predictors._dynamics_data import load_dynamics
from workbench.predictors._persist import load_predictor

#: File name (in the bundled data) of the default dynamics predictor fitted by
#: ``bench/predictors.py`` on NB201 CIFAR-10 runs (see its ``metadata_``).
DEFAULT_DYNAMICS_FILE = "dynamics_default.npz"


def default_dynamics_predictor(device: str | None = None) -> Any:
    """The fitted dynamics predictor shipped with the workbench (``metadata_`` says on what)."""
    return load_predictor(bundled_path(DEFAULT_DYNAMICS_FILE), device=device)


def rank_runs(store: Any, run_ids: Sequence[str] | None = None, *, predictor: Any = None,
              step: int | None = None, space: str | None = None,
              dataset: str | None = None, path: str | os.PathLike | None = None
              ) -> pd.DataFrame:
    """Score stored runs by predicted final accuracy from their snapshots up to ``step``.

    ``predictor``: a fitted dynamics predictor, or a file (``path``); the bundled default when
    neither is given. ``step`` defaults to the predictor's training step (its metadata). Returns
    one row per run, best first, with ``score`` (on the predictor's target scale) and ``rank``.
    """
    if predictor is None:
        predictor = load_predictor(path) if path is not None else default_dynamics_predictor()
    if step is None:
        step = int(getattr(predictor, "metadata_", {}).get("step", 100))
    data = load_dynamics(store, run_ids, step=step, space=space, dataset=dataset,
                         require_label=False)
    score = np.asarray(predictor.predict(data.X), dtype=float)
    cols = [c for c in ("run_id", "space", "cell_id", "cell", "dataset", "seed", "label")
            if c in data.runs.columns]
    out = data.runs[cols].copy()
    out["score"] = score
    out["rank"] = out["score"].rank(ascending=False, method="min").astype(int)
    return out.sort_values(["rank", "run_id"]).reset_index(drop=True)
