"""TensorBoard export of stored runs, read back from the event files it writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)

from workbench.cli import main
from workbench.collect import collect
from workbench.features import FEATURE_NAMES, Snapshots
from workbench.integrations import export_tensorboard
from workbench.store import RunStore
from workbench.training import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")

CFG = TrainConfig(steps=4, batch_size=16, resize=8, snapshot_every=2, curve_every=1,
                  eval_at=(2, 4), device="cpu", snapshot_sample=64)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> RunStore:
    root = tmp_path_factory.mktemp("tb") / "store"
    collect(2, space="nb201", store=root, config=CFG, model="tiny",
            data={"val_size": 32, "train_size": 64}, progress=False)
    return RunStore(root)


def read(path: Path) -> EventAccumulator:
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "histograms": 0,
                                                     "tensors": 0})
    return acc.Reload()


def test_curves_statistics_and_histograms_read_back(store: RunStore, tmp_path: Path) -> None:
    out = export_tensorboard(store, tmp_path / "tb", progress=False)
    rows = store.runs("done")
    assert out["run_id"].tolist() == rows["run_id"].tolist()
    rid = rows["run_id"].iloc[0]
    acc = read(tmp_path / "tb" / rid)
    tags = set(acc.Tags()["scalars"])
    curves = store.load_arrays(rid, "curves")
    for col in curves:
        if col == "step":
            continue
        events = acc.Scalars(f"curves/{col}")
        assert [e.step for e in events] == curves["step"].tolist()
        np.testing.assert_allclose([e.value for e in events], curves[col], rtol=1e-6)
    evals = store.load_arrays(rid, "evals")
    val_col = next(c for c in evals if c != "step")
    assert [e.step for e in acc.Scalars(f"evals/{val_col}")] == [2, 4]
    snaps = Snapshots.from_arrays(store.load_arrays(rid, "snapshots"))
    layer = f"00_{snaps.layer_names[0]}"
    for source in ("weights", "grads"):
        for f, name in enumerate(FEATURE_NAMES):
            events = acc.Scalars(f"{source}/{name}/{layer}")
            assert [e.step for e in events] == snaps.steps.tolist()
            np.testing.assert_allclose([e.value for e in events],
                                       getattr(snaps, source)[:, 0, f], rtol=1e-5, atol=1e-7)
    n_layers = snaps.n_layers
    assert sum(t.startswith("weights/l2_norm/") for t in tags) == n_layers
    hists = acc.Tags()["histograms"]
    assert f"weights_hist/{layer}" in hists and f"grads_hist/{layer}" in hists
    h = acc.Histograms(f"weights_hist/{layer}")
    assert [e.step for e in h] == snaps.steps.tolist()
    w = snaps.weights[0, 0]
    first = h[0].histogram_value
    assert first.min == pytest.approx(w[FEATURE_NAMES.index("min")], rel=1e-5)
    assert first.max == pytest.approx(w[FEATURE_NAMES.index("max")], rel=1e-5)
    assert first.num == snaps.sample_size and sum(first.bucket) == pytest.approx(first.num)
    assert out.loc[0, "scalars"] == sum(len(acc.Scalars(t)) for t in tags)
    assert "config" in " ".join(acc.Tags()["tensors"])


def test_selected_features_and_bad_input(store: RunStore, tmp_path: Path) -> None:
    rid = store.runs("done")["run_id"].iloc[1]
    out = export_tensorboard(store.root, tmp_path / "few", [rid], features=["l2_norm"],
                             histograms=False, progress=False)
    acc = read(tmp_path / "few" / rid)
    stats = [t for t in acc.Tags()["scalars"] if t.startswith(("weights/", "grads/"))]
    assert stats and all("/l2_norm/" in t for t in stats) and not acc.Tags()["histograms"]
    assert out["run_id"].tolist() == [rid]
    with pytest.raises(ValueError, match=r"unknown features \['l3_norm'\]"):
        export_tensorboard(store, tmp_path / "x", features=["l3_norm"])
    with pytest.raises(ValueError, match="runs not in the store"):
        export_tensorboard(store, tmp_path / "x", ["nope"])
    with pytest.raises(FileNotFoundError, match="no run store"):
        export_tensorboard(tmp_path / "missing", tmp_path / "x")


def test_cli_runs_export(store: RunStore, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "cli"
    assert main(["runs", "export", "--store", str(store.root), "--tensorboard", str(target)]) == 0
    assert "2 runs" in capsys.readouterr().out
    assert sorted(p.name for p in target.iterdir()) == sorted(store.runs("done")["run_id"])
    assert any(target.glob("*/events.out.tfevents.*"))
    assert main(["runs", "export", "--store", str(store.root)]) == 2
    assert "--tensorboard DIR" in capsys.readouterr().err
