"""The bundled default dynamics predictor, how it is refitted, and a one-call ranking of stored
runs with it."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench._paths import bundled_path
from workbench.predictors._dynamics_data import load_dynamics
from workbench.predictors._persist import load_predictor, save_predictor
from workbench.predictors._predictor_registry import get_predictor

#: File name (in the bundled data) of the default dynamics predictor, fitted on NB201 CIFAR-10
#: runs by :func:`refit_default_predictor` (``tools/refit_default_predictor.py``; see its
#: ``metadata_``).
DEFAULT_DYNAMICS_FILE = "dynamics_default.npz"

#: Which tree model the default is (the better one at 100 mini-batches in ``bench/predictors.py``).
DEFAULT_DYNAMICS_MODELS = ("dynamics_forest", "dynamics_gbt")
#: The run-config fields the default predictor's metadata records under ``train``.
_TRAIN_FIELDS = ("steps", "batch_size", "optimizer", "lr", "schedule", "snapshot_every", "resize")
_DATASET_LABELS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}


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
    A predictor whose ``metadata_`` records what it was fitted on (space, network preset,
    training config: the bundled default and :func:`refit_default_predictor`'s files) warns
    when the runs differ from that: its scores then rank them less well, or not at all.
    """
    if predictor is None:
        predictor = load_predictor(path) if path is not None else default_dynamics_predictor()
    if step is None:
        step = int(getattr(predictor, "metadata_", {}).get("step", 100))
    data = load_dynamics(store, run_ids, step=step, space=space, dataset=dataset,
                         require_label=False)
    score = np.asarray(predictor.predict(data.X), dtype=float)
    _warn_on_mismatch(store, data.runs, predictor)
    cols = [c for c in ("run_id", "space", "cell_id", "cell", "dataset", "seed", "label")
            if c in data.runs.columns]
    out = data.runs[cols].copy()
    out["score"] = score
    if data.skipped is not None and len(data.skipped):  # non-finite snapshots: ranked last
        bad = data.skipped[[c for c in cols if c in data.skipped.columns]].copy()
        bad["score"] = np.nan
        out = pd.concat([out, bad], ignore_index=True)
    out["rank"] = out["score"].rank(ascending=False, method="min",
                                    na_option="bottom").astype(int)
    return out.sort_values(["rank", "run_id"]).reset_index(drop=True)


def _run_differences(config: dict[str, Any], space: str, meta: dict[str, Any]) -> list[str]:
    """How one run's config differs from what a predictor's metadata says it was fitted on."""
    from workbench.spaces import get_space

    out = []
    fitted_space = str(meta.get("label", "")).split(" ")[0].lower()
    if fitted_space and fitted_space != space:
        return [f"space {space} (fitted on {fitted_space})"]
    preset = meta.get("model_preset")
    if preset is not None:
        presets = get_space(space).model_presets
        want = presets.get(preset, preset) if isinstance(preset, str) else preset
        if config.get("model", {}) != want:
            have = next((n for n, kw in presets.items() if kw == config.get("model")),
                        config.get("model"))
            out.append(f"network {have!r} (fitted on {preset!r})")
    train = config.get("train", {})
    out += [f"{k}={train[k]!r} (fitted on {v!r})" for k, v in meta.get("train", {}).items()
            if k in train and train[k] != v]
    return out


def fitted_on_differences(store: Any, predictor: Any = None,
                          run_ids: Sequence[str] | None = None, *, step: int | None = None
                          ) -> pd.DataFrame:
    """How stored runs differ from the runs a dynamics predictor was fitted on, as its
    ``metadata_`` records them (space, network preset, training config, and with ``step`` the
    mini-batch its snapshots are read at): one row per run and difference (``run_id``,
    ``difference``), empty when they match or the predictor records nothing. ``predictor``:
    the bundled default when None; ``run_ids``: the store's done runs when None. What
    :func:`rank_runs` warns about, for a notebook to check before it ranks."""
    from workbench.store import RunStore

    if predictor is None:
        predictor = default_dynamics_predictor()
    meta = getattr(predictor, "metadata_", None) or {}
    rs = store if isinstance(store, RunStore) else RunStore(store, readonly=True)
    ids = rs.runs("done")["run_id"].tolist() if run_ids is None else list(run_ids)
    rows = []
    for rid in ids:
        run = rs.get(str(rid))
        diff = _run_differences(run["config"], str(run["space"]), meta) if meta else []
        if step is not None and meta.get("step") is not None and int(step) != int(meta["step"]):
            diff.append(f"read at mini-batch {int(step)} (fitted at {int(meta['step'])})")
        rows += [{"run_id": str(rid), "difference": d} for d in diff]
    return pd.DataFrame(rows, columns=["run_id", "difference"])


def _warn_on_mismatch(store: Any, runs: pd.DataFrame, predictor: Any) -> None:
    """Warn, naming runs and differences, when runs differ from a predictor's fitted-on runs."""
    meta = getattr(predictor, "metadata_", None)
    if not meta or not len(runs):
        return
    found = fitted_on_differences(store, predictor, runs["run_id"].tolist())
    differ: dict[str, list[str]] = {}
    for rid, diffs in found.groupby("run_id", sort=False)["difference"]:
        differ.setdefault("; ".join(diffs), []).append(str(rid))
    for what, ids in differ.items():
        warnings.warn(f"{len(ids)} of {len(runs)} runs differ from the runs this predictor was "
                      f"fitted on ({meta.get('trained_on', 'unknown')}): {what}; its scores may "
                      f"not rank them well (runs {', '.join(ids[:3])}"
                      f"{', ...' if len(ids) > 3 else ''})", stacklevel=3)


def _one(values: list[Any], what: str) -> Any:
    """The single value the runs share, else ValueError listing the distinct ones."""
    distinct = list(dict.fromkeys(json.dumps(v, sort_keys=True) for v in values))
    if len(distinct) != 1:
        raise ValueError(f"the runs differ in {what}: {distinct[:3]}; refit on runs of one "
                         "configuration")
    return values[0]


def _label_text(label_name: str) -> str:
    """``"nb201:cifar10/test@200"`` -> ``"NB201 200-epoch CIFAR-10 test acc"``."""
    space, _, column = label_name.partition(":")
    dataset, _, rest = column.partition("/")
    split, _, epochs = rest.partition("@")
    return (f"{space.upper()} {epochs}-epoch {_DATASET_LABELS.get(dataset, dataset)} "
            f"{split} acc")


def refit_default_predictor(store: Any, path: str | os.PathLike[str], *,
                            model: str = "dynamics_forest", space: str = "nb201",
                            dataset: str = "cifar10", step: int = 100,
                            source: str | None = None) -> Any:
    """Fit ``model`` on every done ``space``/``dataset`` run of ``store`` at mini-batch ``step``
    and write it to ``path`` with the metadata the bundled default carries (what it was trained
    on, step, target, network preset, training config, label). Returns the fitted predictor
    with that ``metadata_``. ``source`` says where the runs came from (for ``trained_on``).
    """
    from workbench.spaces import get_space
    from workbench.store import RunStore

    if model not in DEFAULT_DYNAMICS_MODELS:
        raise ValueError(f"unknown default model {model!r}; allowed: "
                         f"{list(DEFAULT_DYNAMICS_MODELS)}")
    if not isinstance(store, RunStore):
        if not Path(store).is_dir():  # RunStore() would create an empty store there
            raise FileNotFoundError(f"no run store at {store}")
        store = RunStore(store)
    data = load_dynamics(store, step=step, space=space, dataset=dataset)
    configs = [store.get(rid)["config"] for rid in data.runs["run_id"]]
    train = _one([{k: c["train"][k] for k in _TRAIN_FIELDS if k in c["train"]} for c in configs],
                 "training config")
    kwargs = _one([c.get("model", {}) for c in configs], "network size")
    presets = get_space(space).model_presets
    preset = next((name for name, kw in presets.items() if kw == kwargs), kwargs)
    label = _label_text(str(_one(data.runs["label_name"].tolist(), "label")))
    est = get_predictor(model).fit(data.X, data.y)
    n = len(data.y)
    metadata = {
        "trained_on": f"{n} {space.upper()} {_DATASET_LABELS.get(dataset, dataset)} runs"
                      + (f" from {source}" if source else ""),
        "step": int(step), "target": est.target, "model_preset": preset, "train": train,
        "label": label}
    save_predictor(est, path, metadata=metadata)
    est.metadata_ = metadata
    return est
