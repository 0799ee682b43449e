"""bench/store_scale.py's code paths on small stores: every step runs on the public RunStore API,
the synthetic arrays have a real run's layout, and the report is complete (no timing checked)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import bench_module

from workbench.features import FEATURE_NAMES, Snapshots
from workbench.store import RunStore


@pytest.fixture(scope="module")
def store_scale():
    with bench_module("store_scale") as module:
        yield module


def test_synthetic_arrays_have_a_real_runs_layout(store_scale) -> None:
    arrays = store_scale.run_arrays(snapshots=3, max_layers=40)
    snaps = Snapshots.from_arrays(arrays["snapshots"])
    assert snaps.weights.shape == (3, 40, len(FEATURE_NAMES)) and len(snaps) == 3
    assert 0 < snaps.n_layers <= 40 and not snaps.weights[:, snaps.n_layers:].any()
    assert arrays["curves"]["step"].dtype == np.int64


def test_measure_runs_every_step_on_small_stores(store_scale, tmp_path: Path) -> None:
    arrays = store_scale.run_arrays(snapshots=2, max_layers=30)
    rows = []
    for n in (12, 30):
        root = tmp_path / f"s{n}"
        rows.append(store_scale.measure(root, n, 4, arrays))
        store = RunStore(root, readonly=True)
        counts = store.counts()
        assert counts["done"] == 4 and counts["running"] == min(10, n - 4)
        assert sum(counts.values()) == n
        done = store.runs(status="done")["run_id"].tolist()
        feats = store.load_features(done)
        np.testing.assert_array_equal(feats.n_snapshots, [2] * 4)
    steps = {"add_runs", "claim", "mark_done", "claim_next", "runs", "counts", "load_features"}
    for row, n in zip(rows, (12, 30), strict=True):
        assert row["runs"] == n and row["sampled"] == 4
        assert set(row["seconds"]) == steps == set(row["per_run_ms"])
        assert all(v >= 0 for v in row["seconds"].values()) and row["store_mb"] > 0
    (g,) = store_scale.growth(rows)
    assert g["from"] == 12 and g["to"] == 30 and steps <= set(g)
