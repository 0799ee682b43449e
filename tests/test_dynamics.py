"""Dynamics (NAP2) predictors, their inputs from a run store, and predictor files."""

from __future__ import annotations

import json
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import kendalltau
from sklearn.base import clone
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from workbench.benchmarks import get_benchmark
from workbench.collect import collect
from workbench.features import FEATURE_NAMES
from workbench.predictors import (
    CHANNELS,
    GRAPH_SCHEMA_VERSION,
    DynamicsForest,
    DynamicsGBT,
    DynamicsGRU,
    GCNPredictor,
    dynamics_inputs,
    fitted_on_differences,
    graph_features,
    graphs_from_cells,
    load_dynamics,
    load_predictor,
    rank_runs,
    read_header,
    save_predictor,
    split_inputs,
    summary_feature_names,
    summary_features,
    transform_target,
)
from workbench.store import RunStore
from workbench.training import TrainConfig

C = len(CHANNELS)


def synthetic(n: int = 60, s: int = 4, layers: int = 12, seed: int = 0):
    """Maps carrying a per-run latent quality along a fixed channel direction (plus noise),
    the target a noisy linear function of it; a varying number of real layers, the rest
    zero-padded as in stored snapshots."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=n)
    direction = rng.normal(size=C)
    maps = (rng.normal(scale=0.7, size=(n, s, layers, C))
            + latent[:, None, None, None] * direction).astype(np.float32)
    depth = rng.integers(4, layers + 1, size=n)
    for i, d in enumerate(depth):
        maps[i, :, d:] = 0.0
    y = 80 + 5 * latent + rng.normal(scale=0.5, size=n)
    return maps, y


GRU_FAST = {"hidden": 16, "num_layers": 1, "epochs": 25, "batch_size": 20}


def test_channels_are_weight_then_gradient_features():
    assert len(CHANNELS) == 2 * len(FEATURE_NAMES)
    assert CHANNELS[0] == f"weights.{FEATURE_NAMES[0]}"
    assert CHANNELS[len(FEATURE_NAMES)] == f"grads.{FEATURE_NAMES[0]}"


def test_transform_target_by_hand():
    y = [70.0, 90.0, 80.0, 10.0, 30.0, 20.0]
    dom = ["a", "a", "a", "b", "b", "b"]
    assert transform_target(y, "raw").tolist() == y
    z = transform_target(y, "zscore", dom)
    sd = np.std([70, 90, 80])
    np.testing.assert_allclose(z, [-10 / sd, 10 / sd, 0, -10 / sd, 10 / sd, 0])
    r = transform_target(y, "rank", dom)
    np.testing.assert_allclose(r, [0.5 / 3, 2.5 / 3, 1.5 / 3] * 2)
    # ties share the average rank: (1.5 - 0.5) / 3 each
    np.testing.assert_allclose(transform_target([1, 1, 2], "rank"), [1 / 3, 1 / 3, 2.5 / 3])
    with pytest.raises(ValueError, match="target must be one of"):
        transform_target(y, "log")
    with pytest.raises(ValueError, match="NaN"):
        transform_target([1.0, np.nan], "zscore")
    with pytest.raises(ValueError, match="domains has 2 entries"):
        transform_target(y, "zscore", ["a", "b"])


def test_summary_features_ignore_padding_and_count_layers():
    maps, _ = synthetic(n=3, layers=8)
    F = summary_features(maps)
    names = summary_feature_names()
    assert F.shape == (3, len(names))
    depth = (maps != 0).any(axis=(1, 3)).sum(1)
    assert F[:, names.index("n_layers")].tolist() == depth.tolist()
    col = names.index(f"{CHANNELS[3]}.last_mean")
    np.testing.assert_allclose(F[:, col], [maps[i, -1, :d, 3].mean() for i, d in
                                           enumerate(depth)], rtol=1e-5)
    # extra zero padding (65 layers instead of 8) changes nothing
    padded = np.zeros((3, maps.shape[1], 65, C), np.float32)
    padded[:, :, :8] = maps
    np.testing.assert_allclose(summary_features(padded), F)
    enc = np.arange(6, dtype=np.float32).reshape(3, 2)
    Fe = summary_features(dynamics_inputs(maps, enc))
    assert Fe.shape == (3, len(summary_feature_names(2)))
    np.testing.assert_array_equal(Fe[:, -2:], enc)


def test_structured_inputs_index_like_arrays():
    maps, _ = synthetic(n=5)
    enc = np.ones((5, 3))
    X = dynamics_inputs(maps, enc)
    assert X.shape == (5,)
    sub_maps, sub_enc = split_inputs(X[[0, 2]])
    np.testing.assert_array_equal(sub_maps, maps[[0, 2]])
    assert sub_enc.shape == (2, 3)
    with pytest.raises(ValueError, match="encoding must have shape"):
        dynamics_inputs(maps, np.ones((4, 3)))


@pytest.mark.parametrize(("make", "cheap"), [
    (lambda: DynamicsGBT(n_estimators=60), {"n_estimators": 5}),
    (lambda: DynamicsForest(n_estimators=60), {"n_estimators": 5}),
    (lambda: DynamicsGRU(**GRU_FAST), {"epochs": 2}),
], ids=["gbt", "forest", "gru"])
def test_estimators_learn_a_rank_signal_and_follow_sklearn(make, cheap, one_thread):
    maps, y = synthetic(n=80)
    est = make()
    fresh = clone(est)
    assert fresh.get_params() == est.get_params()
    est.fit(maps[:60], y[:60])
    tau = kendalltau(est.predict(maps[60:]), y[60:])[0]
    assert tau > 0.5, tau
    # same seed, same predictions; cloning drops the fitted state
    again = clone(est).fit(maps[:60], y[:60])
    np.testing.assert_array_equal(again.predict(maps[60:]), est.predict(maps[60:]))
    assert not any(k.endswith("_") and not k.startswith("_") for k in vars(clone(est)))
    scores = cross_val_score(make().set_params(**cheap), maps, y, groups=np.arange(80) % 20,
                             cv=GroupKFold(4), scoring="r2")
    assert scores.shape == (4,)


def test_raw_target_predicts_on_the_accuracy_scale_and_rank_target_in_unit_interval(one_thread):
    maps, y = synthetic(n=50)
    raw = DynamicsGBT(target="raw", n_estimators=50).fit(maps, y).predict(maps)
    assert abs(raw.mean() - y.mean()) < 1.0
    rank = DynamicsGBT(target="rank", n_estimators=50).fit(maps, y).predict(maps)
    assert rank.min() > -0.2 and rank.max() < 1.2


def test_transfer_across_domains_with_zscore_target(one_thread):
    """Two 'datasets' on different accuracy scales: a z-score fit on both ranks within each."""
    maps, y = synthetic(n=80, seed=1)
    shifted = np.where(np.arange(80) < 40, y, y - 30)  # second domain 30 points lower
    dom = np.arange(80) < 40
    est = DynamicsGBT(n_estimators=80).fit(maps[:60], shifted[:60], domains=dom[:60])
    pred = est.predict(maps[60:])
    assert kendalltau(pred, y[60:])[0] > 0.5


def test_gru_uses_an_encoding_branch(one_thread):
    maps, y = synthetic(n=40)
    enc = np.random.default_rng(0).normal(size=(40, 5))
    est = DynamicsGRU(**GRU_FAST).fit(dynamics_inputs(maps, enc), y)
    assert est.encoding_dims_ == 5
    assert est.predict(dynamics_inputs(maps, enc)).shape == (40,)
    with pytest.raises(ValueError, match="encoding of 0 dims"):
        est.predict(maps)


def test_malformed_inputs_raise_value_errors():
    maps, y = synthetic(n=10)
    with pytest.raises(ValueError, match="shape"):
        DynamicsGBT().fit(maps[:, 0], y)
    with pytest.raises(ValueError, match="10 runs but y has 9"):
        DynamicsGBT(n_estimators=5).fit(maps, y[:9])
    bad = y.copy()
    bad[2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        DynamicsGRU(**GRU_FAST).fit(maps, bad)
    nan_maps = maps.copy()
    nan_maps[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        DynamicsGBT().fit(nan_maps, y)
    with pytest.raises(ValueError, match="target must be one of"):
        DynamicsGBT(target="percent").fit(maps, y)
    with pytest.raises(ValueError, match=r"loss must be one of .*'huber'.*got 'quantile'"):
        DynamicsGBT(loss="quantile").fit(maps, y)
    with pytest.raises(ValueError, match="hidden must be an int >= 1"):
        DynamicsGRU(hidden=0).fit(maps, y)
    with pytest.raises(ValueError,
                       match=r"max_features must be a finite number in \(0, 1\], got 1.5"):
        DynamicsForest(max_features=1.5).fit(maps, y)
    fitted = DynamicsGBT(n_estimators=5).fit(maps, y)
    with pytest.raises(ValueError, match="summary features"):
        fitted.predict(dynamics_inputs(maps, np.ones((10, 2))))


@pytest.mark.parametrize("make", [lambda: DynamicsGBT(n_estimators=30),
                                  lambda: DynamicsForest(n_estimators=30),
                                  lambda: DynamicsGRU(**GRU_FAST)], ids=["gbt", "forest", "gru"])
def test_predictor_files_round_trip_without_pickle(make, tmp_path, one_thread):
    maps, y = synthetic(n=40)
    est = make().fit(maps, y)
    path = save_predictor(est, tmp_path / "p.npz", metadata={"step": 100, "note": "test"})
    with zipfile.ZipFile(path) as z:  # plain npy members only: no pickled objects
        assert all(n.endswith(".npy") for n in z.namelist())
    loaded = load_predictor(path)
    assert type(loaded) is type(est) and loaded.get_params() == est.get_params()
    np.testing.assert_array_equal(loaded.predict(maps), est.predict(maps))
    assert loaded.metadata_ == {"step": 100, "note": "test"}
    assert read_header(path)["feature_schema_version"] == 1


def test_gcn_predictor_files_round_trip(tmp_path, one_thread):
    X = graphs_from_cells("nb201", [f"|nor_conv_3x3~0|+|skip_connect~0|{op}~1|+"
                                    "|none~0|none~1|avg_pool_3x3~2|"
                                    for op in ("nor_conv_1x1", "none", "skip_connect")])
    est = GCNPredictor(epochs=3, hidden=8, fc=8).fit(X, [70.0, 60.0, 65.0])
    path = save_predictor(est, tmp_path / "g.npz")
    loaded = load_predictor(path)
    np.testing.assert_allclose(loaded.predict(X), est.predict(X))
    assert read_header(path)["graph_schema_version"] == GRAPH_SCHEMA_VERSION == 2
    # A GCN saved before NB201 graphs were pruned (no version in the header) is refused.
    _rewrite_header(path, tmp_path / "old.npz", graph_schema_version=None)
    with pytest.raises(ValueError, match=r"graph encoding version 1.*builds version 2"):
        load_predictor(tmp_path / "old.npz")
    # A GCN saved when its seed parameter was called ``seed`` loads as ``random_state``.
    with np.load(path, allow_pickle=False) as z:
        params = json.loads(str(z["__header__"]))["params"]
    params["seed"] = params.pop("random_state")
    _rewrite_header(path, tmp_path / "seed.npz", params=params)
    assert load_predictor(tmp_path / "seed.npz").get_params() == est.get_params()


def _rewrite_header(src, dst, **changes):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(str(arrays["__header__"])) | changes
    arrays["__header__"] = np.asarray(json.dumps(header))
    np.savez(dst, **arrays)


def test_a_gbt_file_from_before_the_loss_parameter_loads_as_squared_error(tmp_path):
    maps, y = synthetic(n=20)
    est = DynamicsGBT(n_estimators=20, loss="squared_error").fit(maps, y)
    path = save_predictor(est, tmp_path / "p.npz")
    with np.load(path, allow_pickle=False) as z:
        params = json.loads(str(z["__header__"]))["params"]
    del params["loss"]
    _rewrite_header(path, tmp_path / "old.npz", params=params)
    old = load_predictor(tmp_path / "old.npz")
    assert old.loss == "squared_error" and DynamicsGBT().loss == "huber"
    np.testing.assert_allclose(old.predict(maps), est.predict(maps))
    assert load_predictor(path).get_params() == est.get_params()


def test_loading_a_predictor_for_another_schema_fails_clearly(tmp_path):
    maps, y = synthetic(n=20)
    path = save_predictor(DynamicsGBT(n_estimators=5).fit(maps, y), tmp_path / "p.npz")
    _rewrite_header(path, tmp_path / "old.npz", feature_schema_version=0)
    with pytest.raises(ValueError, match=r"feature schema version 0.*computes version 1"):
        load_predictor(tmp_path / "old.npz")
    _rewrite_header(path, tmp_path / "names.npz", feature_names=["mean"])
    with pytest.raises(ValueError, match="fitted on features"):
        load_predictor(tmp_path / "names.npz")
    _rewrite_header(path, tmp_path / "fmt.npz", format_version=99)
    with pytest.raises(ValueError, match="version 99"):
        load_predictor(tmp_path / "fmt.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable predictor file"):
        load_predictor(tmp_path / "junk.npz")
    with pytest.raises(ValueError, match="not fitted"):
        save_predictor(DynamicsGBT(), tmp_path / "unfitted.npz")
    with pytest.raises(ValueError, match="cannot save a Pipeline"):
        save_predictor(make_pipeline(DynamicsGBT()), tmp_path / "pipe.npz")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=2,
                max_size=12), st.sampled_from(["raw", "zscore", "rank"]))
def test_transform_target_is_finite_or_refuses(values, target):
    if not np.isfinite(values).all():
        with pytest.raises(ValueError):
            transform_target(values, target)
        return
    out = transform_target(values, target)
    assert np.isfinite(out).all() and out.shape == (len(values),)
    # every target keeps the order of the values (ties may merge)
    order = np.argsort(values, kind="stable")
    assert (np.diff(out[order]) >= -1e-9).all()


def test_load_dynamics_and_rank_runs_from_a_store(tmp_path, one_thread):
    cfg = TrainConfig(steps=6, batch_size=32, resize=16, snapshot_every=2, curve_every=2,
                      device="cpu", snapshot_sample=128)
    rows = collect(4, space="nb201", store=tmp_path, config=cfg, model="tiny",
                   data={"val_size": 64, "train_size": 256}, progress=False)
    data = load_dynamics(tmp_path, step=4, encoding="onehot")
    maps, enc = split_inputs(data.X)
    assert maps.shape[:2] == (4, 2) and maps.shape[3] == C
    assert data.steps.tolist() == [2, 4]
    assert enc is not None and enc.shape[0] == 4
    np.testing.assert_allclose(data.y, rows["label"].to_numpy())
    assert all(g.startswith("nb201:") for g in data.groups)
    est = DynamicsGBT(n_estimators=5, min_samples_leaf=1).fit(load_dynamics(tmp_path).X,
                                                               data.y)
    ranked = rank_runs(tmp_path, predictor=est, step=6)
    assert sorted(ranked["run_id"]) == sorted(rows["run_id"])
    assert ranked["rank"].iloc[0] == 1 and ranked["score"].is_monotonic_decreasing
    with pytest.raises(ValueError, match="no snapshot at or before mini-batch 1"):
        load_dynamics(tmp_path, step=1)
    with pytest.raises(ValueError, match="step must be an int >= 1"):
        load_dynamics(tmp_path, step=0)
    with pytest.raises(ValueError, match="runs not found"):
        load_dynamics(tmp_path, ["nope"])
    # dynamics + graph features + published proxies in one X, in the runs' order
    proxies = get_benchmark("nb201").proxies()
    both = load_dynamics(tmp_path, step=4, encoding="graf", extra=proxies)
    _, enc = split_inputs(both.X)
    cells = both.runs["cell"].tolist()
    expect = np.concatenate([graph_features("nb201", cells).to_numpy(),
                             proxies.loc[both.runs["cell_id"].astype(str)].to_numpy()], axis=1)
    np.testing.assert_allclose(enc, expect.astype(np.float32))
    assert DynamicsForest(n_estimators=5).fit(both.X, both.y).n_features_in_ == \
        len(summary_feature_names(expect.shape[1]))
    with pytest.raises(ValueError, match="extra has no row for cell ids"):
        load_dynamics(tmp_path, step=4, extra=proxies.iloc[:3])
    holed = proxies.copy()
    holed.loc[str(both.runs["cell_id"].iloc[0]), "synflow"] = np.nan
    with pytest.raises(ValueError, match="NaN or inf values for cell ids"):
        load_dynamics(tmp_path, step=4, extra=holed)
    with pytest.raises(ValueError, match="extra must be a DataFrame"):
        load_dynamics(tmp_path, step=4, extra=[1, 2])


def test_bundled_default_predictor_loads_and_ranks_new_runs(tmp_path, one_thread):
    from workbench.predictors import default_dynamics_predictor

    est = default_dynamics_predictor(device="cpu")
    assert isinstance(est, (DynamicsGBT, DynamicsForest))
    assert est.metadata_["step"] >= 1 and "NB201" in est.metadata_["trained_on"]
    cfg = TrainConfig(steps=4, batch_size=32, resize=16, snapshot_every=2, curve_every=2,
                      device="cpu", snapshot_sample=128)
    collect(2, space="nb101", store=tmp_path, config=cfg, model="tiny",
            data={"val_size": 64, "train_size": 256}, progress=False)
    with pytest.warns(UserWarning, match=r"2 of 2 runs differ .*space nb101 \(fitted on nb201\)"):
        ranked = rank_runs(tmp_path, step=4)  # the default predictor, on another space
    assert len(ranked) == 2 and np.isfinite(ranked["score"]).all()
    assert sorted(ranked["rank"]) in ([1, 2], [1, 1])


def test_refit_default_predictor_writes_the_bundled_metadata(tmp_path, one_thread):
    from workbench.predictors import (
        default_dynamics_predictor,
        load_predictor,
        refit_default_predictor,
    )

    cfg = TrainConfig(steps=6, batch_size=32, resize=16, snapshot_every=2, curve_every=2,
                      device="cpu", snapshot_sample=128)
    collect(4, space="nb201", store=tmp_path / "runs", config=cfg, model="tiny",
            data={"val_size": 64, "train_size": 256}, progress=False)
    out = tmp_path / "default.npz"
    est = refit_default_predictor(tmp_path / "runs", out, step=4, source="a test")
    meta = est.metadata_
    assert set(meta) == set(default_dynamics_predictor().metadata_)  # the same keys as shipped
    assert meta["trained_on"] == "4 NB201 CIFAR-10 runs from a test" and meta["step"] == 4
    assert meta["model_preset"] == "tiny" and meta["label"] == "NB201 200-epoch CIFAR-10 test acc"
    assert meta["train"] == {"steps": 6, "batch_size": 32, "optimizer": "sgd", "lr": cfg.lr,
                             "schedule": cfg.schedule, "snapshot_every": 2, "resize": 16}
    loaded = load_predictor(out)
    assert isinstance(loaded, DynamicsForest) and loaded.metadata_ == meta
    X = load_dynamics(tmp_path / "runs", step=4).X
    np.testing.assert_allclose(loaded.predict(X), est.predict(X))
    with warnings.catch_warnings():  # the runs it was fitted on: nothing to warn about
        warnings.simplefilter("error")
        assert len(rank_runs(tmp_path / "runs", path=out)) == 4
    other = cfg.replace(snapshot_every=1)
    collect(2, space="nb201", store=tmp_path / "other", config=other, model="small",
            data={"val_size": 64, "train_size": 256}, progress=False, sample_seed=9)
    with pytest.warns(UserWarning, match=r"2 of 2 runs differ .*network 'small' \(fitted on "
                                         r"'tiny'\); snapshot_every=1 \(fitted on 2\)"):
        rank_runs(tmp_path / "other", path=out, step=4)
    # the same check as a table, for a notebook to read before it ranks
    same = fitted_on_differences(tmp_path / "runs", est)
    assert list(same.columns) == ["run_id", "difference"] and same.empty
    late = fitted_on_differences(tmp_path / "runs", est, step=6)
    assert len(late) == 4 and set(late["difference"]) == {"read at mini-batch 6 (fitted at 4)"}
    other_ids = RunStore(tmp_path / "other", readonly=True).runs("done")["run_id"].tolist()
    diff = fitted_on_differences(tmp_path / "other", loaded, other_ids[:1])
    assert diff["run_id"].tolist() == other_ids[:1] * 2
    assert diff["difference"].tolist() == ["network 'small' (fitted on 'tiny')",
                                           "snapshot_every=1 (fitted on 2)"]
    assert fitted_on_differences(tmp_path / "other", DynamicsForest()).empty  # no metadata
    with pytest.raises(ValueError, match=r"'gcn'.*allowed"):
        refit_default_predictor(tmp_path / "runs", out, model="gcn")
