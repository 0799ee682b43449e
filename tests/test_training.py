"""The training engine: determinism, divergence, resuming, curves/evals and argument checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from workbench.data import load_dataset, train_val_split
from workbench.spaces import get_space
from workbench.training import Callback, TrainConfig, Trainer, seeded

CELL = ("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+"
        "|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|")


@pytest.fixture(scope="module")
def data():
    full = load_dataset("cifar10", "train")
    small, _ = train_val_split(full, val_size=len(full) - 640, seed=0)
    return train_val_split(small, val_size=128, seed=0)


def _model(seed: int = 0):
    space = get_space("nb201")
    with seeded(seed):
        return space.build(space.parse(CELL), **space.model_kwargs("tiny"))


def _cfg(**kw):
    base = dict(steps=12, batch_size=32, resize=16, snapshot_every=3, curve_every=2,
                device="cpu", snapshot_sample=256)
    base.update(kw)
    return TrainConfig(**base)


def test_same_seed_gives_identical_snapshots_and_curves(data):
    train, val = data
    a = Trainer(_model(), train, _cfg(), val=val).run()
    b = Trainer(_model(), train, _cfg(), val=val).run()
    assert a.status == "done" and a.steps == 12
    np.testing.assert_array_equal(a.snapshots.weights, b.snapshots.weights)
    np.testing.assert_array_equal(a.snapshots.grads, b.snapshots.grads)
    assert a.curves.equals(b.curves)
    assert a.snapshots.steps.tolist() == [3, 6, 9, 12]
    c = Trainer(_model(1), train, _cfg(seed=1), val=val).run()
    assert not np.array_equal(a.snapshots.weights, c.snapshots.weights)


def test_curves_evals_and_metrics(data):
    train, val = data
    res = Trainer(_model(), train, _cfg(eval_every=6), val=val).run()
    assert res.curves["step"].tolist() == [2, 4, 6, 8, 10, 12]
    assert res.evals["step"].tolist() == [6, 12]
    assert (res.curves["lr"].diff().dropna() <= 0).all()  # cosine decays
    assert 0 <= res.metrics["val_acc"] <= 100
    assert res.metrics["train_loss"] == pytest.approx(res.curves["train_loss"].iloc[-1])


def test_the_thread_count_is_recorded(data, monkeypatch):
    """CPU reruns are bit-identical only with the same thread count: each result says it."""
    train, val = data
    before = torch.get_num_threads()
    monkeypatch.setenv("WORKBENCH_THREADS", "2")
    res = Trainer(_model(), train, _cfg(), val=val).run()
    assert res.metrics["threads"] == 2 and torch.get_num_threads() == before  # restored


def test_huge_learning_rate_diverges_keeping_partial_snapshots(data):
    train, _ = data
    res = Trainer(_model(), train, _cfg(lr=1e6, grad_clip=None, momentum=0.0, steps=40,
                                        snapshot_every=1)).run()
    assert res.status == "diverged"
    assert 1 <= res.steps < 40
    assert len(res.snapshots) == res.steps  # every step before divergence was recorded
    assert np.isfinite(res.snapshots.weights[0]).all()


def test_resume_from_checkpoint_matches_uninterrupted_training(data, tmp_path):
    train, val = data
    full = Trainer(_model(), train, _cfg(), val=val)
    r_full = full.run()

    first = Trainer(_model(), train, _cfg(), val=val)
    first.run(until=5)
    path = tmp_path / "ckpt.pt"
    torch.save(first.state_dict(), path)
    state = torch.load(path, weights_only=True)
    second = Trainer(_model(7), train, _cfg(), val=val)  # different init: state must override
    second.load_state_dict(state)
    r_resumed = second.run()
    assert r_resumed.steps == 12 and r_resumed.status == "done"
    for (k, v), (_, w) in zip(full.model.state_dict().items(), second.model.state_dict().items(),
                              strict=True):
        torch.testing.assert_close(v, w, rtol=0, atol=0, msg=k)
    np.testing.assert_array_equal(r_full.snapshots.weights, r_resumed.snapshots.weights)
    np.testing.assert_array_equal(r_full.snapshots.grads, r_resumed.snapshots.grads)
    assert r_full.curves.equals(r_resumed.curves)


def test_callbacks_and_stop(data):
    train, _ = data
    seen = {"curve": 0, "snap": 0, "end": None}

    class Stopper(Callback):
        def on_curve(self, trainer, row):
            seen["curve"] += 1
            if row["step"] == 4:
                trainer.request_stop()

        def on_snapshot(self, trainer, step):
            seen["snap"] += 1

        def on_end(self, trainer, result):
            seen["end"] = result.status

    t = Trainer(_model(), train, _cfg(), callbacks=[Stopper()])
    res = t.run()
    assert res.status == "stopped" and res.steps == 4
    assert seen == {"curve": 2, "snap": 1, "end": "stopped"}
    assert t.run().status == "done"  # continue to the end of the budget
    assert seen["curve"] == 6 and seen["end"] == "done"


def test_mismatched_checkpoint_is_refused(data):
    train, _ = data
    t = Trainer(_model(), train, _cfg(snapshot_every=None))
    t.run(until=2)
    other = Trainer(_model(), train, _cfg(snapshot_every=None, batch_size=16))
    with pytest.raises(ValueError, match="batch_size"):
        other.load_state_dict(t.state_dict())


@pytest.mark.parametrize(("kw", "needle"), [
    ({"optimizer": "lbfgs"}, "lbfgs"),
    ({"steps": 0}, "steps"),
    ({"steps": -3}, "-3"),
    ({"snapshot_every": 0}, "snapshot_every"),
    ({"lr": 0.0}, "lr"),
    ({"schedule": "step"}, "step"),
    ({"steps": None, "epochs": None}, "exactly one"),
    ({"steps": 5, "epochs": 1.0}, "exactly one"),
    ({"batch_size": 2.5}, "batch_size"),
])
def test_bad_config_names_the_value(kw, needle):
    base = dict(steps=10)
    base.update(kw)
    with pytest.raises(ValueError, match=needle):
        TrainConfig(**base)


@given(st.integers(max_value=0))
def test_non_positive_snapshot_interval_always_rejected(k):
    with pytest.raises(ValueError, match="snapshot_every"):
        TrainConfig(steps=10, snapshot_every=k)


def test_config_round_trips_and_epochs_budget(data):
    cfg = _cfg(eval_at=(5, 3))
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.eval_at == (3, 5)
    with pytest.raises(ValueError, match="bogus"):
        TrainConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    train, _ = data
    t = Trainer(_model(), train, _cfg(steps=None, epochs=0.5, snapshot_every=None))
    assert t.total_steps == round(0.5 * (len(train) // 32))


def test_unknown_dataset_and_device_are_named():
    with pytest.raises(ValueError, match="svhn"):
        load_dataset("svhn")
    with pytest.raises(ValueError, match="tpu"):
        Trainer(_model(), load_dataset("cifar10", "test"), _cfg(device="tpu"))


# -- one cell's trainer, its data and its stored arrays ----------------------------------------

SPLIT = {"val_size": 128, "split_seed": 0, "train_size": 256}


def test_data_cache_shares_equal_configs_and_one_cache_per_process():
    from workbench.data import DataCache, process_cache

    cache = DataCache()
    train, val = cache.get("cifar10", SPLIT)
    assert len(train) == 256 and len(val) == 128
    # Spelling out a default describes the same splits: the same objects come back.
    same = cache.get("cifar10", {**SPLIT, "source": None, "root": None})
    assert same[0] is train and same[1] is val
    whole, none = cache.get("cifar10", {})
    assert none is None and len(whole) > len(train)
    assert process_cache() is process_cache()
    with pytest.raises(ValueError, match="data must be a mapping"):
        cache.get("cifar10", [("val_size", 1)])


def test_data_cache_forgets_the_least_recently_used_beyond_max_entries():
    from workbench.data import DataCache

    cache = DataCache(max_entries=2)
    a = cache.get("cifar10", {**SPLIT, "train_size": 64})
    b = cache.get("cifar10", {**SPLIT, "train_size": 96})
    assert cache.get("cifar10", {**SPLIT, "train_size": 64})[0] is a[0]  # a is now the newest
    cache.get("cifar10", {**SPLIT, "train_size": 128})  # evicts b, the least recently used
    assert len(cache) == 2
    assert cache.get("cifar10", {**SPLIT, "train_size": 64})[0] is a[0]
    assert cache.get("cifar10", {**SPLIT, "train_size": 96})[0] is not b[0]  # built again
    assert DataCache().max_entries == 4
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="max_entries must be an int >= 1"):
            DataCache(max_entries=bad)


def test_build_trainer_is_the_seeded_network_on_the_cached_splits():
    from workbench.data import DataCache
    from workbench.training import build_trainer

    cfg, cache = _cfg(seed=3), DataCache()
    a = build_trainer("nb201", CELL, cfg, data=SPLIT, model="tiny", cache=cache)
    b = build_trainer(get_space("nb201"), get_space("nb201").parse(CELL), cfg, data=SPLIT,
                      model={"channels": 8, "cells_per_stage": 1}, cache=cache)
    ref = _model(seed=3)
    for net in (a.model, b.model):
        assert all(torch.equal(p.cpu(), q) for p, q in
                   zip(net.state_dict().values(), ref.state_dict().values(), strict=True))
    assert a.loader.num_samples == b.loader.num_samples == 256 and a.val_loader is not None
    # Any object with build(cell) works too (a LayerNAS channel space builds its own nets).
    c = build_trainer(_Builder(), "ignored", cfg, data=SPLIT, cache=cache)
    assert isinstance(c.model, torch.nn.Sequential)
    with pytest.raises(ValueError, match=r"model='tiny'.*SearchSpace"):
        build_trainer(_Builder(), "ignored", cfg, data=SPLIT, model="tiny", cache=cache)
    with pytest.raises(ValueError, match="config must be a TrainConfig"):
        build_trainer("nb201", CELL, {"steps": 3})
    with pytest.raises(ValueError, match="space must be"):
        build_trainer(3, CELL, cfg)


class _Builder:
    def build(self, cell):
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 10))


def test_result_arrays_are_what_a_store_keeps(data):
    train, val = data
    result = Trainer(_model(), train, _cfg(steps=4, eval_every=2), val=val).run()
    arrays = result.arrays()
    assert set(arrays) == {"curves", "evals", "snapshots"}
    assert arrays["curves"]["step"].dtype == np.int64
    assert arrays["evals"]["val_acc"].dtype == np.float64
    assert arrays["evals"]["step"].tolist() == [2, 4]
    np.testing.assert_array_equal(arrays["curves"]["train_loss"], result.curves["train_loss"])
