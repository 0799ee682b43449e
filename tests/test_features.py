"""Tests of workbench.features: NAP2 per-layer weight/gradient snapshot statistics."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

from workbench.features import (
    FEATURE_NAMES,
    FEATURE_SCHEMA_VERSION,
    NEAR_ZERO_REL,
    QUANTILES,
    SnapshotRecorder,
    Snapshots,
    check_schema,
    layer_kind,
)

F = {name: i for i, name in enumerate(FEATURE_NAMES)}
KINDS = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)


def topo_layers(model: nn.Module, example: torch.Tensor) -> list[tuple[str, nn.Module]]:
    """Conv/BN/linear layers in the order a forward pass reaches them (test-local helper)."""
    names = {module: name for name, module in model.named_modules()}
    order: list[nn.Module] = []
    hooks = [
        m.register_forward_pre_hook(lambda mod, _: order.append(mod) if mod not in order else None)
        for m in model.modules()
        if isinstance(m, KINDS)
    ]
    with torch.no_grad():
        model(example)
    for hook in hooks:
        hook.remove()
    return [(names[m], m) for m in order]


def small_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    )


def train(model: nn.Module, recorder: SnapshotRecorder, steps: int, seed: int = 0) -> None:
    """A few plain SGD steps on random data, recording via ``maybe_record``.

    (Hand-written update: the first ``torch.optim`` import costs seconds.)
    """
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    for step in range(1, steps + 1):
        x = torch.randn(4, 3, 6, 6, generator=gen)
        y = torch.randint(0, 5, (4,), generator=gen)
        nn.functional.cross_entropy(model(x), y).backward()
        recorder.maybe_record(step)
        with torch.no_grad():
            for p in params:
                p -= 0.1 * p.grad
                p.grad = None


def linear_with(weight: np.ndarray, grad: np.ndarray | None = None) -> nn.Linear:
    """A bias-free linear layer holding ``weight`` (and ``grad``)."""
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight))
    if grad is not None:
        layer.weight.grad = torch.as_tensor(grad, dtype=torch.float32)
    return layer


def expected_stats(x: np.ndarray) -> dict[str, float]:
    """Reference values of the sample features with the documented conventions."""
    x = x.ravel().astype(np.float64)
    rms = np.sqrt(np.mean(x**2))
    out = {
        "mean": x.mean(),
        "std": x.std(),
        "min": x.min(),
        "max": x.max(),
        "abs_mean": np.abs(x).mean(),
        "l2_norm": np.linalg.norm(x),
        "frac_near_zero": np.mean(np.abs(x) <= NEAR_ZERO_REL * rms),
        "skew": scipy.stats.skew(x),
        "kurtosis": scipy.stats.kurtosis(x),
    }
    for q, value in zip(QUANTILES, np.quantile(x, QUANTILES), strict=True):
        out[f"q{round(q * 100):02d}"] = value
    return out


def test_stats_match_numpy_and_scipy() -> None:
    rng = np.random.default_rng(1)
    weight = rng.exponential(size=(9, 13)).astype(np.float32) - 0.7  # skewed
    grad = rng.standard_t(3, size=(9, 13)).astype(np.float32)  # heavy tails
    rec = SnapshotRecorder([("fc", linear_with(weight, grad))], sample_size=4096)
    rec.record(1)
    snaps = rec.snapshots()
    for source, x in (("weights", weight), ("grads", grad)):
        got = getattr(snaps, source)[0, 0]
        for name, value in expected_stats(x).items():
            assert got[F[name]] == pytest.approx(value, rel=1e-4, abs=1e-5), (source, name)


def test_conventions_on_constant_and_zero_tensors() -> None:
    const = np.full((4, 5), 0.3, dtype=np.float32)
    zero = np.zeros((4, 5), dtype=np.float32)
    rec = SnapshotRecorder([("c", linear_with(const, zero))])
    rec.record(1)
    w, g = rec.snapshots().weights[0, 0], rec.snapshots().grads[0, 0]
    assert w[F["std"]] == 0 and w[F["skew"]] == 0 and w[F["kurtosis"]] == 0
    assert w[F["frac_near_zero"]] == 0 and w[F["q50"]] == pytest.approx(0.3)
    assert g[F["frac_near_zero"]] == 1 and g[F["l2_norm"]] == 0
    assert np.all(np.isfinite(w)) and np.all(np.isfinite(g))


def test_large_layer_is_sampled_within_range() -> None:
    weight = np.random.default_rng(2).normal(size=(200, 100)).astype(np.float32)
    rec = SnapshotRecorder([("big", linear_with(weight))], sample_size=500)
    rec.record(1)
    w = rec.snapshots().weights[0, 0]
    assert weight.min() <= w[F["min"]] < w[F["q50"]] < w[F["max"]] <= weight.max()
    assert w[F["std"]] == pytest.approx(1.0, abs=0.15)
    assert w[F["l2_norm"]] == pytest.approx(np.linalg.norm(weight), rel=1e-5)  # full tensor


def test_change_features() -> None:
    weight = np.random.default_rng(3).normal(size=(6, 7)).astype(np.float32)
    layer = linear_with(weight)
    rec = SnapshotRecorder([("fc", layer)])
    rec.record(1)
    rec.record(2)  # unchanged
    with torch.no_grad():
        layer.weight.mul_(1.5)
    rec.record(3)
    with torch.no_grad():
        layer.weight.neg_()
    rec.record(4)
    w = rec.snapshots().weights[:, 0]
    change = [F["diff_norm"], F["rel_change"], F["cosine"]]
    np.testing.assert_array_equal(w[0, change], 0)  # first snapshot: no previous
    assert w[1, F["diff_norm"]] == 0 and w[1, F["rel_change"]] == 0
    assert w[1, F["cosine"]] == pytest.approx(1.0)
    assert w[2, F["rel_change"]] == pytest.approx(0.5, rel=1e-5)
    assert w[2, F["diff_norm"]] == pytest.approx(0.5 * np.linalg.norm(weight), rel=1e-5)
    assert w[2, F["cosine"]] == pytest.approx(1.0)
    assert w[3, F["cosine"]] == pytest.approx(-1.0) and w[3, F["rel_change"]] == pytest.approx(2)


def test_gradient_change_compares_successive_gradients() -> None:
    layer = linear_with(np.ones((2, 3), dtype=np.float32), np.ones((2, 3), dtype=np.float32))
    rec = SnapshotRecorder([("fc", layer)])
    rec.record(1)
    layer.weight.grad = -2 * torch.ones(2, 3)
    rec.record(2)
    g = rec.snapshots().grads[1, 0]
    assert g[F["cosine"]] == pytest.approx(-1.0) and g[F["rel_change"]] == pytest.approx(3.0)


def test_determinism_and_seed() -> None:
    def run(seed: int) -> Snapshots:
        torch.manual_seed(0)
        model = small_cnn()
        rec = SnapshotRecorder(
            topo_layers(model, torch.zeros(1, 3, 6, 6)), snapshot_every=2, sample_size=16, seed=seed
        )
        train(model, rec, steps=6)
        return rec.snapshots()

    a, b, c = run(0), run(0), run(1)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.grads, b.grads)
    assert not np.array_equal(a.weights, c.weights)  # another sample of the larger layers
    np.testing.assert_array_equal(a.steps, [2, 4, 6])


def test_topological_order_kinds_and_schema_shapes() -> None:
    model = small_cnn()
    rec = SnapshotRecorder(topo_layers(model, torch.zeros(1, 3, 6, 6)), snapshot_every=1)
    train(model, rec, steps=2)
    snaps = rec.snapshots()
    assert snaps.layer_names == ("0", "1", "3", "4", "8")
    assert snaps.layer_kinds == ("conv", "bn", "conv", "bn", "linear")
    assert snaps.weights.shape == snaps.grads.shape == (2, 65, len(FEATURE_NAMES))
    assert snaps.weights.dtype == snaps.grads.dtype == np.float32
    assert snaps.steps.dtype == np.int64 and snaps.mask.dtype == bool
    assert snaps.schema_version == FEATURE_SCHEMA_VERSION and snaps.feature_names == FEATURE_NAMES
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert np.all(np.isfinite(snaps.weights)) and np.all(np.isfinite(snaps.grads))


def test_padding_truncation_and_mask() -> None:
    model = small_cnn()
    layers = topo_layers(model, torch.zeros(1, 3, 6, 6))
    padded = SnapshotRecorder(layers, snapshot_every=1, max_layers=8)
    cut = SnapshotRecorder(layers, snapshot_every=1, max_layers=2)
    model(torch.randn(2, 3, 6, 6)).sum().backward()
    padded.record(1)
    cut.record(1)
    p, c = padded.snapshots(), cut.snapshots()
    np.testing.assert_array_equal(p.mask, [True] * 5 + [False] * 3)
    assert not p.weights[:, 5:].any() and not p.grads[:, 5:].any()
    assert p.weights[:, :5].any(axis=-1).all()
    np.testing.assert_array_equal(c.mask, [True, True])
    assert c.layer_names == ("0", "1") and c.weights.shape == (1, 2, len(FEATURE_NAMES))
    # the padded sample width differs, so reductions may round differently
    np.testing.assert_allclose(c.weights, p.weights[:, :2], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(c.grads, p.grads[:, :2], rtol=1e-5, atol=1e-7)


def test_missing_gradient_gives_zeros_and_no_history() -> None:
    model = small_cnn()
    model[3].weight.requires_grad_(False)  # this layer never gets a gradient
    rec = SnapshotRecorder(topo_layers(model, torch.zeros(1, 3, 6, 6)))
    rec.record(0)  # before any backward: every grad is None
    train(model, rec, steps=2)  # snapshot_every=100: nothing recorded here
    model(torch.randn(2, 3, 6, 6)).sum().backward()
    rec.record(3)
    model(torch.randn(2, 3, 6, 6)).sum().backward()
    rec.record(4)
    snaps = rec.snapshots()
    assert not snaps.grads[0].any() and snaps.weights[0, :5].any()
    assert not snaps.grads[:, 2].any()  # the frozen layer
    change = [F["diff_norm"], F["rel_change"], F["cosine"]]
    assert not snaps.grads[1, :, change].any()  # previous gradient was missing
    assert snaps.grads[2, [0, 1, 3, 4]][:, F["cosine"]].all()


def test_arrays_round_trip_through_npz() -> None:
    model = small_cnn()
    rec = SnapshotRecorder(topo_layers(model, torch.zeros(1, 3, 6, 6)), snapshot_every=1)
    train(model, rec, steps=3)
    snaps = rec.snapshots()
    arrays = snaps.to_arrays(prefix="features/")
    assert all(a.dtype != object for a in arrays.values())
    assert arrays["features/layer_names"].dtype.kind == "U"
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as loaded:
        back = Snapshots.from_arrays(loaded, prefix="features/")
    for name in ("weights", "grads", "mask", "steps"):
        np.testing.assert_array_equal(getattr(back, name), getattr(snaps, name))
    for name in ("layer_names", "layer_kinds", "feature_names", "schema_version", "sample_size"):
        assert getattr(back, name) == getattr(snaps, name)


def test_schema_check_rejects_other_versions() -> None:
    check_schema(FEATURE_SCHEMA_VERSION, FEATURE_NAMES)
    with pytest.raises(ValueError, match="schema version 999"):
        check_schema(999)
    with pytest.raises(ValueError, match="feature names"):
        check_schema(FEATURE_SCHEMA_VERSION, FEATURE_NAMES[::-1])
    rec = SnapshotRecorder([("fc", nn.Linear(2, 2))])
    rec.record(1)
    arrays = rec.snapshots().to_arrays()
    arrays["schema_version"] = np.asarray(FEATURE_SCHEMA_VERSION + 1)
    with pytest.raises(ValueError, match="schema version"):
        Snapshots.from_arrays(arrays)
    with pytest.raises(ValueError, match="missing"):
        Snapshots.from_arrays({"weights": arrays["weights"]})


def test_to_frame_and_truncate() -> None:
    model = small_cnn()
    rec = SnapshotRecorder(
        topo_layers(model, torch.zeros(1, 3, 6, 6)), snapshot_every=2, max_layers=10
    )
    train(model, rec, steps=7)
    snaps = rec.snapshots()
    frame = snaps.to_frame()
    assert len(frame) == len(snaps) * snaps.n_layers * len(FEATURE_NAMES) * 2
    columns = ["step", "layer", "layer_name", "kind", "source", "feature", "value"]
    assert list(frame.columns) == columns
    row = frame.query("step == 4 and layer == 3 and source == 'grads' and feature == 'std'")
    assert row.value.item() == pytest.approx(snaps.grads[1, 3, F["std"]])
    assert set(frame.kind) == {"conv", "bn", "linear"}
    short = snaps.truncate(5)
    np.testing.assert_array_equal(short.steps, [2, 4])
    np.testing.assert_array_equal(short.weights, snaps.weights[:2])
    assert len(snaps.truncate(1)) == 0 and len(snaps.truncate(1).to_frame()) == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"snapshot_every": 0},
        {"snapshot_every": -5},
        {"snapshot_every": 2.5},
        {"snapshot_every": True},
        {"max_layers": 0},
        {"sample_size": 0},
    ],
)
def test_bad_arguments_raise(kwargs: dict) -> None:
    name, value = next(iter(kwargs.items()))
    with pytest.raises(ValueError, match=rf"{name}.*{value!r}"):
        SnapshotRecorder([("fc", nn.Linear(2, 2))], **kwargs)


def test_bad_layers_and_steps_raise() -> None:
    with pytest.raises(ValueError, match="empty"):
        SnapshotRecorder([])
    with pytest.raises(ValueError, match="ReLU"):
        SnapshotRecorder([("act", nn.ReLU())])
    with pytest.raises(ValueError, match=r"no .*weight"):
        SnapshotRecorder([("bn", nn.BatchNorm2d(3, affine=False))])
    assert layer_kind(nn.Conv1d(1, 1, 1)) == "conv" and layer_kind(nn.BatchNorm1d(2)) == "bn"
    rec = SnapshotRecorder([("fc", nn.Linear(2, 2))], snapshot_every=3)
    recorded = [rec.maybe_record(s) for s in range(7)]
    assert recorded == [False, False, False, True, False, False, True]
    with pytest.raises(ValueError, match="increasing"):
        rec.record(6)
    with pytest.raises(ValueError, match="increasing"):
        rec.record(-1)


def test_one_host_transfer_per_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    model = small_cnn()
    rec = SnapshotRecorder(topo_layers(model, torch.zeros(1, 3, 6, 6)), sample_size=32)
    model(torch.randn(2, 3, 6, 6)).sum().backward()
    rec.record(1)  # warm up (builds the device index)
    calls = {"cpu": 0, "item": 0, "tolist": 0, "bool": 0, "float": 0}

    def counting(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return original(self, *args, **kwargs)

        return wrapper

    patched = {"cpu": "cpu", "item": "item", "tolist": "tolist", "bool": "__bool__"}
    patched["float"] = "__float__"
    for name, attr in patched.items():
        monkeypatch.setattr(torch.Tensor, attr, counting(name, getattr(torch.Tensor, attr)))
    rec.record(2)
    monkeypatch.undo()
    assert calls == {"cpu": 1, "item": 0, "tolist": 0, "bool": 0, "float": 0}
