"""The dynamics (NAP2) predictors: final accuracy from early weight/gradient feature maps.

Two scikit-learn regressors over the inputs of :mod:`._dynamics_data`:

- :class:`DynamicsGBT`: gradient-boosted trees on per-channel summaries of the maps (over
  layers at the last snapshot, over time, and the change since the first snapshot);
  :class:`DynamicsForest` is a random forest on the same summaries (steadier on a few hundred
  runs).
- :class:`DynamicsGRU`: the NAP2 revision's sequence model: attention pooling over layers at
  each snapshot, a bidirectional GRU over the snapshots, attention pooling over time.

Targets (``target``): ``"raw"`` accuracy, per-domain ``"zscore"`` or per-domain ``"rank"``
(``fit(X, y, domains=...)``; one domain when omitted). The last two put datasets and spaces on
one scale, so a predictor trained on one can rank another (transfer); ``predict`` returns values
on the target's scale (accuracy for ``"raw"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.utils.validation import check_is_fitted
from torch import nn

from workbench._checks import check_choice, check_real
from workbench._device import resolve_device
from workbench.features import FEATURE_SCHEMA_VERSION
from workbench.predictors._dynamics_data import CHANNELS, layer_mask, split_inputs
from workbench.predictors._predictor_registry import register_predictor
from workbench.predictors._targets import check_target, transform_target
from workbench.predictors._torch_fit import (
    check_dropout,
    check_ints,
    check_reals,
    check_threads,
    torch_threads,
    train_minibatches,
)

_SUMMARIES = ("last_mean", "last_std", "last_min", "last_max", "first_mean", "delta_mean",
              "time_mean")


def summary_feature_names(encoding_dims: int = 0) -> list[str]:
    """Column names of :func:`summary_features`."""
    names = [f"{c}.{s}" for s in _SUMMARIES for c in CHANNELS] + ["n_layers"]
    return names + [f"encoding.{i}" for i in range(encoding_dims)]


def summary_features(X: Any) -> np.ndarray:
    """Per-channel summaries of each run's maps over its real layers (plus the encoding)."""
    maps, enc = split_inputs(X)
    mask = layer_mask(maps)  # [n, L]
    n_real = mask.sum(1)
    if (n_real == 0).any():
        raise ValueError(f"run {int(np.argmin(n_real))} has no real layer (all maps are zero)")
    w = mask[:, :, None].astype(np.float64)
    denom = n_real[:, None].astype(np.float64)

    def layer_stats(frame: np.ndarray) -> tuple[np.ndarray, ...]:
        f = frame.astype(np.float64)
        mean = (f * w).sum(1) / denom
        std = np.sqrt(np.maximum(((f - mean[:, None]) ** 2 * w).sum(1) / denom, 0.0))
        big = np.where(mask[:, :, None], f, np.inf).min(1)
        small = np.where(mask[:, :, None], f, -np.inf).max(1)
        return mean, std, big, small

    last_mean, last_std, last_min, last_max = layer_stats(maps[:, -1])
    first_mean = layer_stats(maps[:, 0])[0]
    time_mean = np.mean([layer_stats(maps[:, s])[0] for s in range(maps.shape[1])], axis=0)
    cols = [last_mean, last_std, last_min, last_max, first_mean, last_mean - first_mean,
            time_mean, n_real[:, None].astype(np.float64)]
    if enc is not None:
        cols.append(enc.astype(np.float64))
    return np.concatenate(cols, axis=1)


class _TreeEnsemble:
    """Boosted regression trees as plain arrays: ``init + rate * sum(tree values)``.

    Built from a fitted ``GradientBoostingRegressor`` through its public ``tree_`` attributes,
    so a fitted predictor can be saved as arrays and loaded without pickle.
    """

    def __init__(self, init: float, rate: float, feature: np.ndarray, threshold: np.ndarray,
                 left: np.ndarray, right: np.ndarray, value: np.ndarray) -> None:
        self.init, self.rate = float(init), float(rate)
        self.feature, self.threshold = feature.astype(np.int64), threshold.astype(np.float64)
        self.left, self.right = left.astype(np.int64), right.astype(np.int64)
        self.value = value.astype(np.float64)  # [n_trees, max_nodes]

    @classmethod
    def from_sklearn(cls, model: GradientBoostingRegressor | RandomForestRegressor
                     ) -> _TreeEnsemble:
        """Arrays of a fitted boosting model (init + rate * sum) or forest (mean of trees)."""
        forest = isinstance(model, RandomForestRegressor)
        trees = [e.tree_ for e in model.estimators_] if forest else [
            e[0].tree_ for e in model.estimators_]
        size = max(t.node_count for t in trees)

        def pad(get: Any, fill: float, dtype: Any) -> np.ndarray:
            out = np.full((len(trees), size), fill, dtype=dtype)
            for i, t in enumerate(trees):
                out[i, :t.node_count] = get(t)
            return out

        if forest:
            init, rate = 0.0, 1.0 / len(trees)
        else:
            init = float(np.ravel(model.init_.predict(np.zeros((1, model.n_features_in_))))[0])
            rate = model.learning_rate
        return cls(init, rate, pad(lambda t: t.feature, -2, np.int64),
                   pad(lambda t: t.threshold, 0.0, np.float64),
                   pad(lambda t: t.children_left, -1, np.int64),
                   pad(lambda t: t.children_right, -1, np.int64),
                   pad(lambda t: t.value[:, 0, 0], 0.0, np.float64))

    def predict(self, F: np.ndarray) -> np.ndarray:
        # sklearn trees compare float32 inputs against float64 thresholds: do the same.
        F = np.asarray(F, dtype=np.float32).astype(np.float64)
        n, out = F.shape[0], np.full(F.shape[0], self.init)
        rows = np.arange(n)
        for t in range(self.value.shape[0]):
            node = np.zeros(n, dtype=np.int64)
            for _ in range(self.value.shape[1] + 1):  # children come later: depth < nodes
                leaf = self.left[t, node] < 0
                if leaf.all():
                    break
                feat = np.where(leaf, 0, self.feature[t, node])
                go_left = F[rows, feat] <= self.threshold[t, node]
                nxt = np.where(go_left, self.left[t, node], self.right[t, node])
                node = np.where(leaf, node, nxt)
            out += self.rate * self.value[t, node]
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {"feature": self.feature, "threshold": self.threshold, "left": self.left,
                "right": self.right, "value": self.value,
                "init_rate": np.array([self.init, self.rate])}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> _TreeEnsemble:
        """Trees from stored arrays, checked: same shapes, and every internal node's children
        lie after it (as sklearn numbers them), so no file can make prediction loop."""
        init, rate = (float(v) for v in np.asarray(a["init_rate"], dtype=np.float64))
        shape = np.shape(a["left"])
        if len(shape) != 2 or any(np.shape(a[k]) != shape
                                  for k in ("feature", "threshold", "right", "value")):
            raise ValueError(f"tree arrays differ in shape: "
                             f"{ {k: np.shape(a[k]) for k in ('feature', 'left', 'right')} }")
        left, right = np.asarray(a["left"], np.int64), np.asarray(a["right"], np.int64)
        nodes = np.arange(shape[1])[None, :]
        internal = left >= 0
        ok = ((~internal & (right < 0))
              | (internal & (left > nodes) & (right > nodes)
                 & (left < shape[1]) & (right < shape[1])))
        if not ok.all():
            t, n = (int(v[0]) for v in np.nonzero(~ok))
            raise ValueError(f"tree {t} node {n} has children ({left[t, n]}, {right[t, n]}) "
                             f"that are not later nodes of its tree: damaged tree arrays")
        return cls(init, rate, a["feature"], a["threshold"], left, right, a["value"])


class _DynamicsTrees(RegressorMixin, BaseEstimator):
    """Shared fit/predict/file logic of the tree models on :func:`summary_features`."""

    def _model(self) -> GradientBoostingRegressor | RandomForestRegressor:
        raise NotImplementedError

    def fit(self, X: Any, y: Any, domains: Any = None) -> _DynamicsTrees:
        """Fit the trees on summaries of ``X`` and the transformed targets."""
        check_target(self)
        model = self._model()
        F = summary_features(X)
        t = transform_target(y, self.target, domains)
        if t.size != F.shape[0]:
            raise ValueError(f"X has {F.shape[0]} runs but y has {t.size} values")
        model.fit(F, t)
        self.ensemble_ = _TreeEnsemble.from_sklearn(model)
        self.feature_importances_ = model.feature_importances_
        self.n_features_in_ = F.shape[1]
        self.feature_schema_version_ = FEATURE_SCHEMA_VERSION
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted final accuracy (``"raw"``) or score on the target's scale."""
        check_is_fitted(self)
        F = summary_features(X)
        if F.shape[1] != self.n_features_in_:
            raise ValueError(f"X gives {F.shape[1]} summary features; the model was fitted on "
                             f"{self.n_features_in_} (different channels or encoding size)")
        return self.ensemble_.predict(F)

    def _export(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        arrays = {f"ensemble.{k}": v for k, v in self.ensemble_.arrays().items()}
        arrays["feature_importances"] = np.asarray(self.feature_importances_)
        return {"n_features_in_": int(self.n_features_in_)}, arrays

    def _import(self, attrs: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.ensemble_ = _TreeEnsemble.from_arrays(
            {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("ensemble.")})
        self.feature_importances_ = arrays["feature_importances"]
        self.n_features_in_ = int(attrs["n_features_in_"])
        self.feature_schema_version_ = FEATURE_SCHEMA_VERSION


def _check_fraction(name: str, value: Any) -> None:
    """ValueError unless ``value`` is a fraction in (0, 1] (sklearn's float ``max_features``)."""
    check_real(name, value, minimum=0, maximum=1, inclusive="right")


#: Boosting losses DynamicsGBT accepts (scikit-learn's, less "quantile", which fits a quantile).
GBT_LOSSES = ("huber", "squared_error", "absolute_error")


@register_predictor("dynamics_gbt")
class DynamicsGBT(_DynamicsTrees):
    """Gradient-boosted trees on summary features of the snapshot maps (NAP2, tabular form).

    ``X``: dynamics inputs (see :func:`load_dynamics`); ``target``: raw / zscore / rank (module
    doc). Trees see :func:`summary_features`, so runs with different snapshot counts or depths
    are comparable; ``feature_importances_`` is indexed like :func:`summary_feature_names`.
    ``max_features``: the fraction of summaries each split considers (decorrelates trees when
    features outnumber runs). ``loss``: scikit-learn's boosting loss; the default ``"huber"``
    keeps the few runs that barely learn (NB201 cells far below the rest) from steering every
    tree, which made squared error unstable from seed to seed with few runs.
    """

    def __init__(self, target: str = "zscore", n_estimators: int = 300,
                 learning_rate: float = 0.05, max_depth: int = 3, min_samples_leaf: int = 5,
                 subsample: float = 0.8, max_features: float = 0.2, loss: str = "huber",
                 random_state: int = 0) -> None:
        self.target = target
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.subsample = subsample
        self.max_features = max_features
        self.loss = loss
        self.random_state = random_state

    def _model(self) -> GradientBoostingRegressor:
        check_ints(n_estimators=self.n_estimators, max_depth=self.max_depth,
                    min_samples_leaf=self.min_samples_leaf)
        check_reals(learning_rate=self.learning_rate)
        _check_fraction("subsample", self.subsample)
        _check_fraction("max_features", self.max_features)
        check_choice("loss", self.loss, GBT_LOSSES)
        return GradientBoostingRegressor(
            loss=self.loss, n_estimators=self.n_estimators, learning_rate=self.learning_rate,
            max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf,
            subsample=self.subsample, max_features=self.max_features,
            random_state=self.random_state)


@register_predictor("dynamics_forest")
class DynamicsForest(_DynamicsTrees):
    """A random forest on the same summary features as :class:`DynamicsGBT` (same inputs,
    targets and files); averaging many decorrelated trees is steadier with few runs."""

    def __init__(self, target: str = "zscore", n_estimators: int = 300,
                 max_features: float = 0.3, min_samples_leaf: int = 3,
                 random_state: int = 0) -> None:
        self.target = target
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state

    def _model(self) -> RandomForestRegressor:
        check_ints(n_estimators=self.n_estimators, min_samples_leaf=self.min_samples_leaf)
        _check_fraction("max_features", self.max_features)
        return RandomForestRegressor(
            n_estimators=self.n_estimators, max_features=self.max_features,
            min_samples_leaf=self.min_samples_leaf, random_state=self.random_state, n_jobs=1)


def _signed_log(x: np.ndarray) -> np.ndarray:
    """sign(x) log(1 + |x|): tames norms spanning orders of magnitude, keeps zero at zero."""
    return np.sign(x) * np.log1p(np.abs(x))


class _DynamicsNet(nn.Module):
    """Attention pooling over layers per snapshot, a bi-GRU over snapshots, attention pooling
    over time, MLP head (plus an encoding branch)."""

    def __init__(self, channels: int, max_layers: int, hidden: int, num_layers: int,
                 enc_dims: int, dropout: float) -> None:
        super().__init__()
        self.inp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden))
        self.layer_pos = nn.Embedding(max_layers, hidden)
        self.layer_att = nn.Linear(hidden, 1)
        self.gru = nn.GRU(hidden, hidden, num_layers, batch_first=True, bidirectional=True,
                          dropout=dropout if num_layers > 1 else 0.0)
        self.time_att = nn.Linear(2 * hidden, 1)
        self.enc = nn.Linear(enc_dims, hidden) if enc_dims else None
        width = 2 * hidden + (hidden if enc_dims else 0)
        self.head = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor,
                enc: torch.Tensor | None) -> torch.Tensor:
        n_layers = x.shape[2]
        h = torch.relu(self.inp(x) + self.layer_pos.weight[:n_layers])  # [B, S, L, H]
        score = self.layer_att(h).squeeze(-1).masked_fill(~mask[:, None, :], float("-inf"))
        per_snapshot = (torch.softmax(score, dim=2).unsqueeze(-1) * h).sum(2)  # [B, S, H]
        out, _ = self.gru(per_snapshot)  # [B, S, 2H]
        weight = torch.softmax(self.time_att(torch.tanh(out)).squeeze(-1), dim=1)
        pooled = (weight.unsqueeze(-1) * out).sum(1)
        if self.enc is not None and enc is not None:
            pooled = torch.cat([pooled, torch.relu(self.enc(enc))], dim=1)
        return self.head(pooled).squeeze(-1)


@register_predictor("dynamics_gru")
class DynamicsGRU(RegressorMixin, BaseEstimator):
    """NAP2's sequence model: per snapshot, attention pooling over the layers' embedded features
    (with a learned layer-position embedding); a bidirectional GRU over the snapshots; attention
    pooling over time; an MLP head (plus an encoding branch when ``X`` carries one).

    Inputs are signed-log transformed and standardised per channel on the training runs;
    targets as in :class:`DynamicsGBT`. Deterministic for a ``random_state`` on CPU; the global
    torch RNG is left as it was.
    """

    def __init__(self, target: str = "zscore", hidden: int = 64, num_layers: int = 2,
                 epochs: int = 100, batch_size: int = 32, lr: float = 2e-3,
                 weight_decay: float = 1e-4, dropout: float = 0.1, random_state: int = 0,
                 device: str = "auto", n_threads: int | None = 1) -> None:
        self.target = target
        self.hidden = hidden
        self.num_layers = num_layers
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads

    def _check(self) -> None:
        check_target(self)
        check_ints(hidden=self.hidden, num_layers=self.num_layers, epochs=self.epochs,
                    batch_size=self.batch_size)
        check_reals(lr=self.lr, weight_decay=self.weight_decay)
        check_dropout(self.dropout)
        check_threads(self.n_threads)

    def _prepare(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        maps, enc = split_inputs(X)
        mask = layer_mask(maps)
        if not mask.any(axis=1).all():
            raise ValueError(f"run {int(np.argmin(mask.any(axis=1)))} has no real layer")
        z = (_signed_log(maps.astype(np.float64)) - self.channel_mean_) / self.channel_std_
        z = np.where(mask[:, None, :, None], z, 0.0).astype(np.float32)
        if enc is not None:
            enc = ((enc - self.enc_mean_) / self.enc_std_).astype(np.float32)
        return z, mask, enc

    def _net(self) -> _DynamicsNet:
        return _DynamicsNet(self.n_channels_, self.max_layers_, self.hidden, self.num_layers,
                            self.encoding_dims_, self.dropout)

    def fit(self, X: Any, y: Any, domains: Any = None) -> DynamicsGRU:
        """Standardise the maps, then train a fresh network on the transformed targets."""
        self._check()
        maps, enc = split_inputs(X)
        t = transform_target(y, self.target, domains)
        if t.size != maps.shape[0]:
            raise ValueError(f"X has {maps.shape[0]} runs but y has {t.size} values")
        mask = layer_mask(maps)
        logged = _signed_log(maps.astype(np.float64))[np.broadcast_to(
            mask[:, None, :], maps.shape[:3])]  # [real entries, C]
        self.channel_mean_ = logged.mean(0)
        sd = logged.std(0)
        self.channel_std_ = np.where(sd > 0, sd, 1.0)
        self.encoding_dims_ = 0 if enc is None else int(enc.shape[1])
        if enc is not None:
            self.enc_mean_ = enc.mean(0).astype(np.float64)
            esd = enc.std(0)
            self.enc_std_ = np.where(esd > 0, esd, 1.0).astype(np.float64)
        self.n_channels_, self.max_layers_ = int(maps.shape[3]), int(maps.shape[2])
        self.y_mean_, self.y_std_ = float(t.mean()), float(t.std()) if t.std() > 0 else 1.0
        z, mask, enc_z = self._prepare(X)
        device = resolve_device(self.device)
        data = [torch.from_numpy(z).to(device), torch.from_numpy(mask).to(device)]
        enc_t = None if enc_z is None else torch.from_numpy(enc_z).to(device)
        target = torch.as_tensor((t - self.y_mean_) / self.y_std_, dtype=torch.float32,
                                 device=device)
        n, bs = t.size, int(self.batch_size)
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch_threads(self.n_threads):
            torch.manual_seed(int(self.random_state))
            model = self._net().to(device).train()
            opt = torch.optim.AdamW(model.parameters(), lr=self.lr,
                                    weight_decay=self.weight_decay)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(
                opt, T_max=int(self.epochs) * -(-n // bs))
            gen = torch.Generator().manual_seed(int(self.random_state))

            def loss_of(idx: torch.Tensor) -> torch.Tensor:
                used = int(data[1][idx].any(0).nonzero().max()) + 1  # trim padded layers
                pred = model(data[0][idx][:, :, :used], data[1][idx][:, :used],
                             None if enc_t is None else enc_t[idx])
                return nn.functional.mse_loss(pred, target[idx])

            losses = train_minibatches(loss_of, opt, sched, n=n, batch_size=bs,
                                       epochs=int(self.epochs), generator=gen, device=device)
        self.model_ = model.eval()
        self.device_ = str(device)
        self.loss_curve_ = losses
        self.feature_schema_version_ = FEATURE_SCHEMA_VERSION
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted final accuracy (``"raw"``) or score on the target's scale."""
        check_is_fitted(self)
        maps, enc = split_inputs(X)
        if maps.shape[3] != self.n_channels_ or maps.shape[2] > self.max_layers_:
            raise ValueError(f"X maps have {maps.shape[3]} channels and {maps.shape[2]} layers; "
                             f"the model takes {self.n_channels_} channels and at most "
                             f"{self.max_layers_} layers")
        if (0 if enc is None else enc.shape[1]) != self.encoding_dims_:
            raise ValueError(f"X carries an encoding of {0 if enc is None else enc.shape[1]} "
                             f"dims; the model was fitted with {self.encoding_dims_}")
        z, mask, enc_z = self._prepare(X)
        device = torch.device(self.device_)
        out = []
        with torch.no_grad(), torch_threads(self.n_threads):
            for start in range(0, z.shape[0], 256):
                sl = slice(start, start + 256)
                m = mask[sl]
                used = int(m.any(0).nonzero()[0].max()) + 1
                e = None if enc_z is None else torch.from_numpy(enc_z[sl]).to(device)
                pred = self.model_(torch.from_numpy(z[sl, :, :used]).to(device),
                                   torch.from_numpy(m[:, :used]).to(device), e)
                out.append(pred.cpu().numpy())
        return np.concatenate(out).astype(np.float64) * self.y_std_ + self.y_mean_

    def _export(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        attrs = {k: getattr(self, k) for k in ("n_channels_", "max_layers_", "encoding_dims_",
                                               "y_mean_", "y_std_", "loss_curve_")}
        arrays = {f"state.{k}": v.detach().cpu().numpy()
                  for k, v in self.model_.state_dict().items()}
        arrays |= {"channel_mean": self.channel_mean_, "channel_std": self.channel_std_}
        if self.encoding_dims_:
            arrays |= {"enc_mean": self.enc_mean_, "enc_std": self.enc_std_}
        return attrs, arrays

    def _import(self, attrs: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        for k, v in attrs.items():
            setattr(self, k, v)
        self.channel_mean_, self.channel_std_ = arrays["channel_mean"], arrays["channel_std"]
        if self.encoding_dims_:
            self.enc_mean_, self.enc_std_ = arrays["enc_mean"], arrays["enc_std"]
        device = resolve_device(self.device)
        model = self._net()
        model.load_state_dict({k.split(".", 1)[1]: torch.from_numpy(np.array(v))
                               for k, v in arrays.items() if k.startswith("state.")})
        self.model_ = model.to(device).eval()
        self.device_ = str(device)
        self.feature_schema_version_ = FEATURE_SCHEMA_VERSION
