"""Train/held-out splits described by a run's data config, decoded once per process.

A data config is the plain dict a run store keeps with every run (``config["data"]``):
``val_size`` (held-out images, 0: none), ``split_seed``, ``train_size`` (None: the rest),
``source`` and ``root`` (where :func:`~workbench.data.load_dataset` reads from).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.data._cifar import load_dataset
from workbench.data._dataset import ImageDataset, train_val_split

#: The keys of a data config, with the value a missing key means.
DATA_DEFAULTS: dict[str, Any] = {"val_size": 0, "split_seed": 0, "train_size": None,
                                 "source": None, "root": None}

Splits = tuple[ImageDataset, ImageDataset | None]


def _key(dataset: str, data: Mapping[str, Any]) -> tuple[Any, ...]:
    """The cache key of a data config: its known fields with defaults filled in, so that two
    configs describing the same splits (one spelling out a default) share one entry."""
    if not isinstance(data, Mapping):
        raise ValueError(f"data must be a mapping of {sorted(DATA_DEFAULTS)}, got {data!r}")
    full = {**DATA_DEFAULTS, **data}
    size = full["train_size"]
    return (dataset, int(full["val_size"]), int(full["split_seed"]),
            None if size is None else int(size), full["source"],
            None if full["root"] is None else str(full["root"]))


class DataCache:
    """(train, held-out) splits this process has built, keyed by dataset and data config."""

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, ...], Splits] = {}

    def get(self, dataset: str, data: Mapping[str, Any] | None = None) -> Splits:
        """(train, held-out or None) splits of ``dataset``'s training set as ``data`` says."""
        key = _key(dataset, data or {})
        if key not in self._cache:
            _, val_size, seed, size, source, root = key
            full = load_dataset(dataset, "train", root=root, source=source)
            train, val = (train_val_split(full, val_size=val_size, seed=seed) if val_size
                          else (full, None))
            if size is not None and size < len(train):
                train, _ = train_val_split(train, val_size=len(train) - size, seed=seed)
            self._cache[key] = (train, val)
        return self._cache[key]

    def clear(self) -> None:
        """Forget every split (their memory is freed once nothing else holds them)."""
        self._cache.clear()


_PROCESS_CACHE = DataCache()


def process_cache() -> DataCache:
    """The ``DataCache`` of this process, shared by everything in it so that a long-lived worker
    (a Ray worker, a search backend, a notebook) decodes each dataset only once."""
    return _PROCESS_CACHE
