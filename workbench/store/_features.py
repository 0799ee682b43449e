"""Stacking per-run feature arrays of unequal shapes into padded batch arrays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class FeatureSet:
    """Per-run arrays stacked along a new leading run axis, padded to the largest shape.

    ``arrays[k]`` has shape ``[n_runs, *max_shape]``; entries beyond a run's own shape hold the
    fill value (NaN for floats, 0/False otherwise). ``shapes[k]`` (int64 ``[n_runs, ndim]``) holds
    each run's original shape, ``runs`` the runs' rows in the same order.
    """

    arrays: dict[str, np.ndarray]
    shapes: dict[str, np.ndarray]
    runs: pd.DataFrame

    @property
    def run_ids(self) -> list[str]:
        """The run ids, in row order."""
        return list(self.runs["run_id"])

    @property
    def n_snapshots(self) -> np.ndarray:
        """Per-run snapshot counts: the leading length of ``steps`` (else of the first array)."""
        key = "steps" if "steps" in self.shapes else next(iter(self.shapes))
        shape = self.shapes[key]
        if shape.shape[1] == 0:
            raise ValueError(f"array {key!r} is 0-dimensional and has no snapshot axis")
        return shape[:, 0].copy()

    def valid(self, name: str) -> np.ndarray:
        """Boolean mask shaped like ``arrays[name]``: True where a run has real (unpadded) data."""
        arr, shapes = self.arrays[name], self.shapes[name]
        mask = np.zeros(arr.shape, dtype=bool)
        for i, shp in enumerate(shapes):
            idx: tuple[int | slice, ...] = (i, *(slice(0, int(n)) for n in shp))
            mask[idx] = True
        return mask


def _fill_value(dtype: np.dtype, fill: float) -> object:
    """``fill`` for inexact dtypes; the dtype's zero otherwise."""
    return fill if np.issubdtype(dtype, np.inexact) else np.zeros((), dtype=dtype)[()]


def stack_features(
    run_ids: Sequence[str],
    per_run: Sequence[dict[str, np.ndarray]],
    runs: pd.DataFrame,
    fill: float,
) -> FeatureSet:
    """Stack ``per_run`` dicts (all with the same names, ndims and dtypes) into a FeatureSet."""
    names = sorted(per_run[0])
    for rid, arrays in zip(run_ids, per_run, strict=True):
        if sorted(arrays) != names:
            raise ValueError(
                f"run {rid} stores arrays {sorted(arrays)} but run {run_ids[0]} stores {names}; "
                "all runs must store the same arrays"
            )
    stacked: dict[str, np.ndarray] = {}
    shapes: dict[str, np.ndarray] = {}
    for name in names:
        first = per_run[0][name]
        for rid, arrays in zip(run_ids, per_run, strict=True):
            arr = arrays[name]
            if arr.ndim != first.ndim or arr.dtype != first.dtype:
                raise ValueError(
                    f"array {name!r} of run {rid} is {arr.dtype}{list(arr.shape)} but run "
                    f"{run_ids[0]} has {first.dtype}{list(first.shape)}; ndim and dtype must match"
                )
        shp = np.array([arrays[name].shape for arrays in per_run], dtype=np.int64)
        shp = shp.reshape(len(per_run), first.ndim)
        out = np.full(
            (len(per_run), *shp.max(axis=0)), _fill_value(first.dtype, fill), dtype=first.dtype
        )
        for i, arrays in enumerate(per_run):
            arr = arrays[name]
            idx: tuple[int | slice, ...] = (i, *(slice(0, n) for n in arr.shape))
            out[idx] = arr
        stacked[name], shapes[name] = out, shp
    return FeatureSet(arrays=stacked, shapes=shapes, runs=runs)
