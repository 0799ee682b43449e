"""Executing one stored run request: build the cell, train it with snapshots, store the results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.data import ImageDataset, load_dataset, train_val_split
from workbench.spaces import get_space
from workbench.store import RunStore
from workbench.training import TrainConfig, Trainer, TrainResult, seeded

NUM_CLASSES = {"cifar10": 10, "cifar100": 100}


@dataclass
class DataCache:
    """Datasets a worker has loaded, keyed by their data config (decode once per process)."""

    _cache: dict[str, tuple[ImageDataset, ImageDataset | None]] = field(default_factory=dict)

    def get(self, dataset: str, data: dict[str, Any]) -> tuple[ImageDataset, ImageDataset | None]:
        """(train, validation) splits for ``dataset`` as described by a run's data config."""
        key = f"{dataset}|{sorted(data.items())}"
        if key not in self._cache:
            full = load_dataset(dataset, "train", root=data.get("root"),
                                source=data.get("source"))
            val_size = int(data.get("val_size", 0))
            if val_size:
                train, val = train_val_split(full, val_size=val_size,
                                             seed=int(data.get("split_seed", 0)))
            else:
                train, val = full, None
            size = data.get("train_size")
            if size is not None and size < len(train):
                train, _ = train_val_split(train, val_size=len(train) - int(size),
                                           seed=int(data.get("split_seed", 0)))
            self._cache[key] = (train, val)
        return self._cache[key]


def result_arrays(result: TrainResult) -> dict[str, dict[str, np.ndarray]]:
    """The arrays of a training result as the run store keeps them (name -> arrays)."""
    out = {
        name: {c: frame[c].to_numpy(dtype=np.int64 if c == "step" else np.float64)
               for c in frame.columns}
        for name, frame in (("curves", result.curves), ("evals", result.evals))
    }
    if result.snapshots is not None:
        out["snapshots"] = result.snapshots.to_arrays()
    return out


def execute_run(store: RunStore, run_id: str, *, device: str = "auto",
                cache: DataCache | None = None, checkpoint: bool = False) -> str:
    """Train the claimed run ``run_id`` and record its outcome; returns the final status.

    Any exception marks the run ``failed`` with the traceback (and is not re-raised), so one bad
    architecture never stops a collection; a non-finite loss marks it ``diverged``, keeping the
    snapshots recorded so far.
    """
    try:
        rec = store.get(run_id)
        space = get_space(rec["space"])
        cell = space.parse(rec["cell"])
        conf = rec["config"]
        cfg = TrainConfig.from_dict({**conf["train"], "device": device})
        train, val = (cache or DataCache()).get(rec["dataset"], conf.get("data", {}))
        with seeded(cfg.seed):
            model = space.build(cell, num_classes=NUM_CLASSES.get(rec["dataset"], 10),
                                **conf.get("model", {}))
        trainer = Trainer(model, train, cfg, val=val)
        result = trainer.run()
        for name, arrays in result_arrays(result).items():
            store.save_arrays(run_id, name, arrays)
        if checkpoint:
            store.save_checkpoint(run_id, trainer.state_dict())
        metrics = dict(result.metrics)
        if result.status == "diverged":
            store.mark_diverged(run_id, metrics, steps=result.steps,
                                wall_seconds=result.wall_seconds)
        else:
            store.mark_done(run_id, metrics, steps=result.steps, wall_seconds=result.wall_seconds)
        return result.status
    except Exception as exc:  # recorded as the run's failure, never lost
        store.mark_failed(run_id, exc)
        return "failed"
