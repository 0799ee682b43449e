"""Zero-cost proxy scores of many cells: one seeded batch and a resumable, cached loop (issue #18).

>>> batch = proxy_batch("cifar10", 64, seed=0, resize=16)     # one CPU batch, seeded draw
>>> scores = score_cells("nb201", cells, ["synflow", "nwot"], batch=batch, cache="p.csv")

``score_cells`` builds each network under ``seeded(seed)`` at a model preset, scores it with
:func:`compute_proxies` and returns one row per cell. With ``cache`` the scores go to a CSV
(never pickle) keyed by space, cell id, proxy, model, seed and the batch's description, so a
rerun, or a larger request, computes only what is missing.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from workbench._checks import check_int
from workbench._io import atomic_write
from workbench.data import DeviceLoader, load_dataset, num_classes
from workbench.predictors._proxies import _select, compute_proxies
from workbench.spaces import SearchSpace, get_space
from workbench.training import seeded

#: Columns of a ``score_cells`` cache file; all but ``score`` and ``seconds`` form the key.
CACHE_COLUMNS = ("space", "cell_id", "proxy", "model", "seed", "batch", "score", "seconds")
_KEY = ("space", "cell_id", "proxy", "model", "seed", "batch")
_FLUSH_EVERY = 10  # cells between cache writes (so an interrupted run resumes)


@dataclass(frozen=True, eq=False)
class ProxyBatch:
    """One batch ``(x, y)`` for zero-cost proxies, with the dataset it came from (the networks'
    class count) and a description (part of the cache key). Unpacks as ``x, y = batch``."""

    x: torch.Tensor
    y: torch.Tensor
    dataset: str
    description: str

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter((self.x, self.y))

    @property
    def num_classes(self) -> int:
        """Classes of the batch's dataset: what each scored network outputs."""
        return num_classes(self.dataset)


def proxy_batch(dataset: str = "cifar10", n: int = 64, *, seed: int = 0, resize: int | None = 16,
                source: str | None = None, root: str | os.PathLike[str] | None = None
                ) -> ProxyBatch:
    """``n`` training images of ``dataset`` drawn with ``seed``, prepared on CPU as a run's
    evaluation loader prepares them (``DeviceLoader(train=False, resize=resize)``: area resize,
    CIFAR normalisation, no augmentation). ``source``/``root`` as in :func:`load_dataset`."""
    n = check_int("n", n, minimum=2)
    seed = check_int("seed", seed, minimum=0)
    ds = load_dataset(dataset, "train", source=source, root=root)
    if n > len(ds.labels):
        raise ValueError(f"n={n} exceeds the {len(ds.labels)} training images of {dataset}")
    idx = np.random.default_rng(seed).choice(len(ds.labels), n, replace=False)
    loader = DeviceLoader(ds.subset(idx), batch_size=n, device="cpu", train=False, resize=resize)
    x, y = next(iter(loader))
    where = f"root={Path(root).name}" if root is not None else (source or "default")
    description = (f"{dataset} train ({where}) n={n} seed={seed} "
                   f"resize={'none' if resize is None else resize}")
    return ProxyBatch(x=x, y=y, dataset=dataset, description=description)


def _space(space: str | SearchSpace) -> SearchSpace:
    if isinstance(space, SearchSpace):
        return space
    if not isinstance(space, str):
        raise ValueError(f"space must be a space name or a SearchSpace, got "
                         f"{type(space).__name__}")
    return get_space(space)  # ValueError naming the registered spaces


def _model_key(model: str | dict[str, Any]) -> str:
    return model if isinstance(model, str) else json.dumps(model, sort_keys=True)


def _read_cache(path: Path) -> pd.DataFrame:
    """The cache's rows (empty frame if the file does not exist); ValueError if it is not one."""
    if not path.is_file():
        return pd.DataFrame(columns=list(CACHE_COLUMNS))
    df = pd.read_csv(path, dtype={"space": str, "cell_id": str, "proxy": str, "model": str,
                                  "batch": str})
    missing = [c for c in CACHE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path} is not a score_cells cache: it lacks columns {missing} "
                         f"(expected {list(CACHE_COLUMNS)})")
    return df[list(CACHE_COLUMNS)]


def _write_cache(path: Path, new_rows: list[dict[str, Any]]) -> None:
    """Merge ``new_rows`` into the cache file (re-read first: another run may have added rows)."""
    if not new_rows:
        return
    merged = pd.concat([_read_cache(path), pd.DataFrame(new_rows, columns=list(CACHE_COLUMNS))],
                       ignore_index=True).drop_duplicates(list(_KEY), keep="last")
    text = io.StringIO()
    merged.to_csv(text, index=False)
    atomic_write(path, text.getvalue())


def score_cells(space: str | SearchSpace, cells: Iterable[Any],
                names: str | Iterable[str] | None = None, *, batch: ProxyBatch,
                model: str | dict[str, Any] = "small", seed: int = 0,
                cache: str | os.PathLike[str] | None = None, progress: bool = True,
                seconds: bool = False) -> pd.DataFrame:
    """Proxy scores of ``cells`` (cell objects or their strings): index cell ids, one column per
    proxy in ``names`` (default: all), in the order given.

    Each network is built under ``seeded(seed)`` with ``space.model_kwargs(model)`` and the
    batch's class count, on CPU. ``cache``: a CSV of computed scores, read first and extended
    atomically every few cells, so only missing (cell, proxy) pairs are computed. ``seconds``
    adds a ``seconds`` column: each cell's proxy compute time (building excluded), as recorded.
    """
    sp = _space(space)
    selected = _select(names)
    if not isinstance(batch, ProxyBatch):
        raise ValueError(f"batch must be a ProxyBatch (see proxy_batch), got "
                         f"{type(batch).__name__}")
    seed = check_int("seed", seed, minimum=0)
    kwargs = {**sp.model_kwargs(model), "num_classes": batch.num_classes}
    parsed = [sp.parse(c) if isinstance(c, str) else c for c in cells]
    ids = [sp.cell_id(c) for c in parsed]
    key = {"space": sp.name, "model": _model_key(model), "seed": seed,
           "batch": batch.description}
    path = None if cache is None else Path(cache)

    known: dict[tuple[str, str], tuple[float, float]] = {}  # (cell id, proxy) -> score, seconds
    if path is not None:
        df = _read_cache(path)
        mine = df[(df["space"] == key["space"]) & (df["model"] == key["model"])
                  & (df["seed"] == seed) & (df["batch"] == key["batch"])]
        known = {(c, p): (float(s), float(t)) for c, p, s, t in
                 zip(mine["cell_id"], mine["proxy"], mine["score"], mine["seconds"], strict=True)}
    todo = list(dict.fromkeys(i for i in ids if any((i, p) not in known for p in selected)))
    cell_of = dict(zip(ids, parsed, strict=True))
    pending: list[dict[str, Any]] = []
    for done, cid in enumerate(tqdm(todo, desc=f"proxies {sp.name}", disable=not progress), 1):
        with seeded(seed):
            net = sp.build(cell_of[cid], **kwargs)
        for proxy in (p for p in selected if (cid, p) not in known):
            t0 = time.perf_counter()
            score = compute_proxies(net, (batch.x, batch.y), [proxy])[proxy]
            known[cid, proxy] = (float(score), time.perf_counter() - t0)
            pending.append({**key, "cell_id": cid, "proxy": proxy, "score": known[cid, proxy][0],
                            "seconds": known[cid, proxy][1]})
        if path is not None and (done % _FLUSH_EVERY == 0 or done == len(todo)):
            _write_cache(path, pending)
            pending = []
    out = pd.DataFrame([[known[i, p][0] for p in selected] for i in ids],
                       index=pd.Index(ids, name="cell_id"), columns=selected, dtype=float)
    if seconds:
        out["seconds"] = [sum(known[i, p][1] for p in selected) for i in ids]
    return out
