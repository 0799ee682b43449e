"""What the widgets drive, without ipywidgets: picking a cell, building a trainer for one cell,
live callbacks, resettable copies of searches and the text of their decision logs.

Everything here is plain Python so that it can be used (and tested) without a notebook.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from workbench.benchmarks import get_benchmark
from workbench.data import ImageDataset, process_cache
from workbench.spaces import get_space, list_spaces
from workbench.training import Callback, TrainConfig, Trainer, TrainResult, build_trainer

SPACES = tuple(list_spaces())
DATASETS = ("cifar10", "cifar100")


def pick_cell(space: str, spec: Any = "random", *, seed: int | None = None) -> Any:
    """A cell of ``space`` from a table position (int or digits: the row of the bundled table),
    a table id, a cell string, ``"random"`` (drawn from the table, seeded by ``seed``) or a cell.
    """
    bench = get_benchmark(space)
    sp = get_space(space)
    if isinstance(spec, str):
        spec = spec.strip()
        if spec.lower() == "random":
            return bench.cell(bench.sample_ids(1, rng=np.random.default_rng(seed))[0])
        if re.fullmatch(r"[0-9]{1,9}", spec):
            spec = int(spec)
        elif re.fullmatch(bench.id_pattern, spec):
            return bench.cell(spec)
        else:
            return sp.parse(spec)
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        ids = bench.table()["cell_id"]
        if not 0 <= int(spec) < len(ids):
            raise ValueError(f"{space} table index must be in [0, {len(ids) - 1}], got {spec}")
        return bench.cell(ids.iloc[int(spec)])
    return spec


def _data(val_size: int, train_size: int | None, seed: int = 0) -> dict[str, Any]:
    """The data config of a widget's run: ``val_size`` held-out images split off with ``seed``."""
    return {"val_size": int(val_size), "split_seed": int(seed),
            "train_size": None if train_size is None else int(train_size)}


def load_splits(dataset: str = "cifar10", val_size: int = 1000, train_size: int | None = None,
                seed: int = 0) -> tuple[ImageDataset, ImageDataset | None]:
    """(train, held-out) splits of ``dataset``, decoded once per process (it takes seconds)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; allowed: {DATASETS}")
    return process_cache().get(dataset, _data(val_size, train_size, seed))


def make_trainer(space: str, cell: Any, *, dataset: str = "cifar10", steps: int = 300,
                 snapshot_every: int | None = 20, model: str | dict[str, Any] = "small",
                 resize: int | None = 16, batch_size: int = 64, val_size: int = 1000,
                 train_size: int | None = None, seed: int = 0, device: str = "auto",
                 callbacks: Sequence[Callback] = ()) -> Trainer:
    """A ready :class:`Trainer` for one cell (built under ``seeded(seed)``): curve points about
    every steps/50 mini-batches and five held-out evaluations when ``val_size`` > 0."""
    if space not in SPACES:
        raise ValueError(f"unknown space {space!r}; allowed: {SPACES}")
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; allowed: {DATASETS}")
    cfg = TrainConfig(steps=steps, batch_size=batch_size, resize=resize,
                      snapshot_every=snapshot_every, curve_every=max(1, steps // 50),
                      eval_every=max(1, steps // 5) if val_size else None, seed=seed,
                      device=device)
    return build_trainer(space, cell, cfg, dataset=dataset, data=_data(val_size, train_size),
                         model=model, callbacks=callbacks)


class LiveCallback(Callback):
    """Forwards every trainer event to ``fn(event, trainer)`` (event: 'curve', 'eval',
    'snapshot' or 'end'), so that a panel can redraw while training runs."""

    def __init__(self, fn: Callable[[str, Trainer], None]) -> None:
        self.fn = fn

    def on_curve(self, trainer: Trainer, row: dict[str, float]) -> None:
        """A curve point: progress and the learning curve."""
        self.fn("curve", trainer)

    def on_eval(self, trainer: Trainer, row: dict[str, float]) -> None:
        """A held-out evaluation."""
        self.fn("eval", trainer)

    def on_snapshot(self, trainer: Trainer, step: int) -> None:
        """A snapshot: the feature heatmap."""
        self.fn("snapshot", trainer)

    def on_end(self, trainer: Trainer, result: TrainResult) -> None:
        """The run stopped."""
        self.fn("end", trainer)


class BackgroundRun:
    """``fn()`` in a daemon thread (so a notebook's Stop button stays responsive); the result
    or the exception is kept for :meth:`wait`."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, args=(fn,), daemon=True)
        self._thread.start()

    def _main(self, fn: Callable[[], Any]) -> None:
        try:
            self.result = fn()
        except BaseException as exc:  # kept and re-raised in wait()
            self.error = exc

    @property
    def running(self) -> bool:
        """Whether the thread is still working."""
        return self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> Any:
        """Join the thread; re-raise its exception; return its result."""
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.result


# -- searches -------------------------------------------------------------------------------------

def fresh_copy(search: Any) -> Any:
    """A copy of ``search`` in its current state that shares its backend, space, ranker and
    evaluators (tables, datasets and models are not copied): what a Reset button restores."""
    memo: dict[int, Any] = {}
    for name in ("backend", "ranker", "space", "problem", "evaluator", "eval_seconds"):
        obj = getattr(search, name, None)
        if obj is not None:
            memo[id(obj)] = obj
    return copy.deepcopy(search, memo)


def sh_rung_lines(table: pd.DataFrame, unit: str = "epochs") -> list[str]:
    """Decision log of one SH rung table: how many were kept and who, who was dropped."""
    if table.empty or (table["decision"] == "pending").all():
        return [f"{len(table)} candidates pending at rung 0"]
    rung, budget = int(table["rung"].iloc[0]), float(table["budget"].iloc[0])
    kept = table[table["decision"] == "kept"].sort_values("rank")
    dropped = table[table["decision"] == "dropped"].sort_values("rank")

    def fmt(d: pd.DataFrame) -> str:
        """'id (ranker score), ...' of the rows of ``d``."""
        return ", ".join(f"{c} ({s:.2f})" for c, s in
                         zip(d["candidate"], d["ranker_score"], strict=True))

    lines = [f"rung {rung} @ {budget:g} {unit}: kept {len(kept)} of {len(table)}: {fmt(kept)}"]
    if len(dropped):
        lines.append(f"  dropped: {fmt(dropped.head(12))}"
                     + (f" ... (+{len(dropped) - 12})" if len(dropped) > 12 else ""))
    return lines


def layernas_lines(rows: pd.DataFrame) -> list[str]:
    """Decision log of LayerNAS history rows: one line per generated child and its fate."""
    out = []
    for r in rows.itertuples():
        score = "" if pd.isna(r.score) else f" score {r.score:.2f}"
        where = "" if pd.isna(r.bucket) else f" -> bucket [{r.bucket}]"
        train = " (trained)" if r.trained else ""
        out.append(f"it {r.iteration} L{r.layer}: {r.parent} -> {r.child} cost "
                   f"{r.model_cost:g}{score}{where}: {r.decision}{train}")
    return out


def search_lines(rows: pd.DataFrame) -> list[str]:
    """Decision log of any search's history rows: one line per evaluation."""
    out = []
    for r in rows.itertuples():
        score = "no score" if pd.isna(r.score) else f"score {r.score:.2f}"
        rank = ("" if pd.isna(r.ranker_score) or r.ranker_score == r.score
                else f", ranker {r.ranker_score:.3g}")
        out.append(f"step {r.iteration}: {r.candidate} @ {r.budget:g}: {score}{rank}, "
                   f"cost {r.cost:,.0f} s: {r.decision}")
    return out
