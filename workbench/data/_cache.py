"""Train/held-out splits described by a run's data config, decoded once per process.

A data config is the plain dict a run store keeps with every run (``config["data"]``):
``val_size`` (held-out images, 0: none), ``split_seed``, ``train_size`` (None: the rest),
``source`` and ``root`` (where :func:`~workbench.data.load_dataset` reads from).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from workbench._checks import check_int
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
    """(train, held-out) splits this process has built, keyed by dataset and data config.

    At most ``max_entries`` configs are kept (default 4, a few splits of a CIFAR training set):
    building one more forgets the least recently used, so that a notebook trying many split
    sizes does not keep every decoded copy alive.
    """

    def __init__(self, max_entries: int = 4) -> None:
        self.max_entries = check_int("max_entries", max_entries, minimum=1)
        self._cache: OrderedDict[tuple[Any, ...], Splits] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cache)

    def __repr__(self) -> str:
        return f"DataCache({len(self)} of max_entries={self.max_entries})"

    def get(self, dataset: str, data: Mapping[str, Any] | None = None) -> Splits:
        """(train, held-out or None) splits of ``dataset``'s training set as ``data`` says."""
        key = _key(dataset, data or {})
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        _, val_size, seed, size, source, root = key
        full = load_dataset(dataset, "train", root=root, source=source)
        train, val = (train_val_split(full, val_size=val_size, seed=seed) if val_size
                      else (full, None))
        if size is not None and size < len(train):
            train, _ = train_val_split(train, val_size=len(train) - size, seed=seed)
        self._cache[key] = (train, val)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)  # the least recently used
        return train, val

    def clear(self) -> None:
        """Forget every split (their memory is freed once nothing else holds them)."""
        self._cache.clear()


_PROCESS_CACHE = DataCache()


def process_cache() -> DataCache:
    """The ``DataCache`` of this process, shared by everything in it so that a long-lived worker
    (a Ray worker, a search backend, a notebook) decodes each dataset only once."""
    return _PROCESS_CACHE
