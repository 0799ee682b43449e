"""``SnapshotRecorder``: records NAP2 features of a network's layers during training, cheaply.

Per snapshot, all layers' weights (and gradients) are concatenated into one flat device vector;
per-layer full-tensor norms come from fused ``_foreach_norm`` calls, distribution statistics from
one gather of a fixed, seeded sample of each layer, and the [2, L, F] result crosses to the host
once. The previous flat vectors stay on the device for the change features.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench._checks import check_int
from workbench.features._schema import FEATURE_NAMES
from workbench.features._snapshots import Snapshots
from workbench.features._stats import norm_stats, sample_stats

DEFAULT_SAMPLE_SIZE = 1024
DEFAULT_MAX_LAYERS = 65


def layer_kind(module: nn.Module) -> str:
    """``'conv'``, ``'bn'`` or ``'linear'`` for a parameterised layer; ValueError otherwise."""
    if isinstance(module, nn.modules.conv._ConvNd):
        return "conv"
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "bn"
    if isinstance(module, nn.Linear):
        return "linear"
    raise ValueError(
        f"unsupported layer type {type(module).__name__}; expected a convolution, batch-norm or "
        "linear layer"
    )


@dataclass
class _Previous:
    """Device state of one source (weights or grads) at the previous snapshot."""

    flat: torch.Tensor
    norm: torch.Tensor
    present: torch.Tensor


@dataclass
class _DeviceIndex:
    """Index tensors of the attached layers, materialised on one device."""

    device: torch.device
    sample_index: torch.Tensor
    sample_valid: torch.Tensor
    all_present: torch.Tensor
    sqrt_numel: torch.Tensor


def _weight(module: nn.Module) -> torch.Tensor:
    """``module.weight``: a tensor for every recorded layer (checked when attaching)."""
    weight = module.weight
    assert isinstance(weight, torch.Tensor)
    return weight


class SnapshotRecorder:
    """Records weight and gradient features of ``layers`` every ``snapshot_every`` mini-batches.

    Call ``maybe_record(step)`` after ``loss.backward()`` and before ``optimizer.zero_grad()``,
    with ``step`` the 1-based number of mini-batches done; ``snapshots()`` returns the result.
    Only the first ``max_layers`` layers (topological order, as given) are recorded. Keeps one
    full copy of the weights and of the gradients on their device for the change features.
    """

    def __init__(
        self,
        layers: Sequence[tuple[str, nn.Module]],
        *,
        snapshot_every: int = 100,
        max_layers: int = DEFAULT_MAX_LAYERS,
        sample_size: int = DEFAULT_SAMPLE_SIZE,
        seed: int = 0,
    ) -> None:
        for arg, value in (
            ("snapshot_every", snapshot_every),
            ("max_layers", max_layers),
            ("sample_size", sample_size),
        ):
            check_int(arg, value, minimum=1)
        layers = list(layers)
        if not layers:
            raise ValueError("layers is empty; pass the (name, module) pairs to record")
        self.snapshot_every = int(snapshot_every)
        self.max_layers = int(max_layers)
        self.sample_size = int(sample_size)
        self.seed = int(seed)
        self.n_layers_total = len(layers)
        kept = layers[: self.max_layers]
        self.layer_names: tuple[str, ...] = tuple(str(name) for name, _ in kept)
        self.layer_kinds: tuple[str, ...] = tuple(layer_kind(module) for _, module in kept)
        self._modules: list[nn.Module] = [module for _, module in kept]
        numels = []
        for name, module in kept:
            weight = getattr(module, "weight", None)
            if not isinstance(weight, torch.Tensor) or weight.numel() == 0:
                raise ValueError(f"layer {name!r} has no (non-empty) weight parameter")
            numels.append(weight.numel())
        self._numels = np.asarray(numels, dtype=np.int64)
        self._total = int(self._numels.sum())
        self._sizes = [int(n) for n in numels]
        self._host_index = self._sample_index(self._numels, self.sample_size, self.seed)
        self._device_index: _DeviceIndex | None = None
        self._previous: dict[str, _Previous | None] = {"weights": None, "grads": None}
        self._steps: list[int] = []
        self._features: list[np.ndarray] = []

    @staticmethod
    def _sample_index(numels: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Flat indices [L, W] of each layer's sample (seeded per layer) and their validity."""
        offsets = np.concatenate([[0], np.cumsum(numels)[:-1]])
        counts = np.minimum(numels, size)
        width = int(counts.max())
        index = np.repeat(offsets[:, None], width, axis=1)
        valid = np.arange(width)[None, :] < counts[:, None]
        for layer, (numel, offset) in enumerate(zip(numels, offsets, strict=True)):
            if numel <= size:
                chosen = np.arange(numel)
            else:
                rng = np.random.default_rng([seed, layer])
                chosen = np.sort(rng.choice(numel, size=size, replace=False))
            index[layer, : len(chosen)] = offset + chosen
        return index, valid

    def _index_on(self, device: torch.device) -> _DeviceIndex:
        """Index tensors on ``device``, built once (the model moved: rebuilt, history reset)."""
        if self._device_index is None or self._device_index.device != device:
            index, valid = self._host_index
            n_layers = len(self._numels)
            self._device_index = _DeviceIndex(
                device=device,
                sample_index=torch.as_tensor(index, device=device),
                sample_valid=torch.as_tensor(valid, device=device),
                all_present=torch.ones(n_layers, dtype=torch.bool, device=device),
                sqrt_numel=torch.as_tensor(
                    np.sqrt(self._numels), dtype=torch.float32, device=device
                ),
            )
            self._previous = {"weights": None, "grads": None}
        return self._device_index

    def __len__(self) -> int:
        return len(self._steps)

    def _signature(self) -> list[int]:
        return [self.snapshot_every, self.max_layers, self.sample_size, self.seed, self._total]

    def state_dict(self) -> dict[str, Any]:
        """Snapshots so far plus the device history the change features need (for resuming)."""
        n_real = len(self.layer_names)
        feats = (np.stack(self._features) if self._features
                 else np.zeros((0, 2, n_real, len(FEATURE_NAMES)), dtype=np.float32))
        state: dict[str, Any] = {
            "signature": self._signature(),
            "steps": list(self._steps),
            "features": torch.from_numpy(feats),
        }
        for source, prev in self._previous.items():
            if prev is not None:
                state[f"previous_{source}"] = {"flat": prev.flat, "norm": prev.norm,
                                               "present": prev.present}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` of a recorder attached to the same layers."""
        if list(state["signature"]) != self._signature():
            raise ValueError(
                "recorder state was made with (snapshot_every, max_layers, sample_size, seed, "
                f"values) = {list(state['signature'])}, this recorder has {self._signature()}"
            )
        self._steps = [int(s) for s in state["steps"]]
        self._features = list(state["features"].numpy())
        index = self._index_on(_weight(self._modules[0]).device)
        self._previous = {"weights": None, "grads": None}
        for source in self._previous:
            prev = state.get(f"previous_{source}")
            if prev is not None:
                self._previous[source] = _Previous(
                    **{k: v.to(index.device) for k, v in prev.items()})

    def maybe_record(self, step: int) -> bool:
        """Record if ``step`` (1-based mini-batch count) is a multiple of ``snapshot_every``."""
        if step >= 1 and step % self.snapshot_every == 0:
            self.record(step)
            return True
        return False

    @torch.no_grad()
    def record(self, step: int) -> None:
        """Take one snapshot now (weights and current ``.grad``) labelled ``step``."""
        step = int(step)
        if step < 0 or (self._steps and step <= self._steps[-1]):
            last = self._steps[-1] if self._steps else None
            raise ValueError(f"step must be >= 0 and increasing, got {step} after {last}")
        weights = [_weight(module).detach() for module in self._modules]
        index = self._index_on(weights[0].device)
        grads = [_weight(module).grad for module in self._modules]
        if all(g is not None for g in grads):
            present = index.all_present
        else:
            present = torch.tensor([g is not None for g in grads], device=index.device)
        filled = [w if g is None else g for w, g in zip(weights, grads, strict=True)]
        stacked = torch.stack(
            [
                self._source_features("weights", weights, index.all_present, index),
                self._source_features("grads", filled, present, index),
            ]
        )
        host = stacked.cpu().numpy()  # the one device-to-host transfer per snapshot
        self._features.append(host)
        self._steps.append(step)

    def _source_features(
        self,
        source: str,
        tensors: list[torch.Tensor],
        present: torch.Tensor,
        index: _DeviceIndex,
    ) -> torch.Tensor:
        """Features [L, F] of one source; layers not ``present`` get zeros (and no history)."""
        flat = torch.cat([t.detach().reshape(-1).float() for t in tensors])
        if flat.numel() != self._total:
            raise RuntimeError("layer sizes changed since the recorder was attached")
        previous = self._previous[source]
        if previous is None:
            previous = _Previous(
                flat=torch.zeros_like(flat),
                norm=torch.zeros_like(index.sqrt_numel),
                present=torch.zeros_like(present),
            )
        norms = norm_stats(
            flat,
            previous.flat,
            previous.norm,
            previous.present & present,
            self._sizes,
        )
        samples = torch.take(flat, index.sample_index)
        dist = sample_stats(samples, index.sample_valid, norms[:, 0] / index.sqrt_numel)
        features = torch.cat([dist, norms], 1)
        features = torch.where(present[:, None], features, torch.zeros_like(features))
        self._previous[source] = _Previous(flat=flat, norm=norms[:, 0], present=present)
        return features

    def snapshots(self) -> Snapshots:
        """All snapshots so far, zero-padded (or truncated) to ``max_layers`` layers."""
        n_real, n_feat = len(self.layer_names), len(FEATURE_NAMES)
        data = np.zeros((2, len(self._steps), self.max_layers, n_feat), dtype=np.float32)
        if self._features:
            data[:, :, :n_real] = np.stack(self._features, axis=1)
        return Snapshots(
            weights=data[0],
            grads=data[1],
            mask=np.arange(self.max_layers) < n_real,
            steps=np.asarray(self._steps, dtype=np.int64),
            layer_names=self.layer_names,
            layer_kinds=self.layer_kinds,
            snapshot_every=self.snapshot_every,
            sample_size=self.sample_size,
        )
