"""``SnapshotRecorder``: records NAP2 features of a network's layers during training, cheaply.

It takes any ``nn.Module`` (every trainable non-bias parameter is one layer, see
:class:`SnapshotRecorder`) or explicit ``(name, module)`` pairs (their ``weight``). Per snapshot,
all layers' weights (and gradients) are concatenated into one flat device vector; per-layer
full-tensor norms come from fused ``_foreach_norm`` calls, distribution statistics from one
gather of a fixed, seeded sample of each layer, and the [2, L, F] result crosses to the host
once. The previous flat vectors stay on the device for the change features.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from workbench._checks import check_int
from workbench.features._schema import FEATURE_NAMES
from workbench.features._snapshots import Snapshots
from workbench.features._stats import norm_stats, sample_stats

DEFAULT_SAMPLE_SIZE = 1024
DEFAULT_MAX_LAYERS = 65
#: Layer orders of a model: registration (``named_modules``) or first use in a traced forward.
ORDERS = ("registration", "forward")
_KINDS: tuple[tuple[tuple[type[nn.Module], ...], str], ...] = (
    ((nn.modules.conv._ConvNd,), "conv"),
    ((nn.modules.batchnorm._BatchNorm,), "bn"),
    ((nn.Linear, nn.Bilinear), "linear"),
    ((nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm), "norm"),
    ((nn.MultiheadAttention,), "attention"),
    ((nn.Embedding, nn.EmbeddingBag), "embedding"),
    ((nn.RNNBase,), "recurrent"),
)


def layer_kind(module: nn.Module) -> str:
    """The kind (``LAYER_KINDS`` but ``'other'``) of a known parameterised layer type.

    ``'conv'``, ``'bn'`` (batch norm), ``'linear'``, ``'norm'`` (layer/group/instance/RMS
    norm), ``'attention'``, ``'embedding'`` or ``'recurrent'``; ValueError for other types.
    """
    for types, kind in _KINDS:
        if isinstance(module, types):
            return kind
    raise ValueError(
        f"unsupported layer type {type(module).__name__}; expected a convolution, batch-norm, "
        "linear, norm, attention, embedding or recurrent layer"
    )


def _is_bias(name: str) -> bool:
    """``bias``, ``in_proj_bias``, ``bias_ih_l0``: additive offsets, left out like a bias."""
    return "bias" in name.split("_")


class _FirstUse(TorchFunctionMode):
    """Notes the order in which the tensors in ``watch`` (by id) are first passed to torch."""

    def __init__(self, watch: set[int]) -> None:
        super().__init__()
        self.watch = watch
        self.order: dict[int, int] = {}

    def _note(self, obj: Any) -> None:
        if isinstance(obj, torch.Tensor):
            key = id(obj)
            if key in self.watch and key not in self.order:
                self.order[key] = len(self.order)
        elif isinstance(obj, (list, tuple)):
            for item in obj:
                self._note(item)
        elif isinstance(obj, dict):
            for item in obj.values():
                self._note(item)

    def __torch_function__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        self._note(args)
        self._note(kwargs)
        return func(*args, **kwargs)


def _forward_order(model: nn.Module, params: list[torch.Tensor], example_input: Any) -> list[int]:
    """Indices of ``params`` by first use in one eval-mode, no-grad forward of ``example_input``
    (tensors never used follow, in their given order); module modes are restored after."""
    mode = _FirstUse({id(p) for p in params})
    modes = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        with torch.no_grad(), mode:
            if isinstance(example_input, (tuple, list)):
                model(*example_input)
            elif isinstance(example_input, dict):
                model(**example_input)
            else:
                model(example_input)
    finally:
        for module, training in modes:
            module.training = training
    big = len(params)
    return sorted(range(len(params)), key=lambda i: (mode.order.get(id(params[i]), big), i))


def model_layers(model: nn.Module, *, order: str = "registration",
                 example_input: Any = None) -> list[tuple[str, nn.Module, str]]:
    """``(layer name, owning module, parameter name)`` of every layer the recorder sees in
    ``model``: each trainable, non-empty, non-bias parameter, a shared one once (under the first
    module owning it). ``order="registration"``: ``named_modules()`` then parameter order;
    ``"forward"``: first use in a traced forward of ``example_input``."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if (order == "forward") != (example_input is not None):
        raise ValueError("order='forward' needs example_input (the inputs of one forward "
                         "pass), and example_input is only used with order='forward'")
    seen: set[int] = set()
    found: list[tuple[str, nn.Module, str]] = []
    params: list[torch.Tensor] = []
    for prefix, module in model.named_modules():
        for pname, param in module.named_parameters(recurse=False):
            if id(param) in seen or not param.requires_grad or param.numel() == 0 \
                    or _is_bias(pname):
                continue
            seen.add(id(param))
            name = prefix if pname == "weight" and prefix else (
                f"{prefix}.{pname}" if prefix else pname)
            found.append((name, module, pname))
            params.append(param)
    if not found:
        n_params = sum(1 for _ in model.parameters())
        raise ValueError(f"model {type(model).__name__} has no trainable weight to record "
                         f"({n_params} parameters, none trainable, non-empty and not a bias)")
    if order == "forward":
        found = [found[i] for i in _forward_order(model, params, example_input)]
    return found


def _kind_of(module: nn.Module) -> str:
    try:
        return layer_kind(module)
    except ValueError:
        return "other"


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


class SnapshotRecorder:
    """Records weight and gradient features of a network's layers every ``every`` mini-batches.

    ``SnapshotRecorder(model, every=k)`` takes any ``nn.Module``: each trainable, non-empty
    parameter that is not a bias (``bias``, ``in_proj_bias``, ``bias_ih_l0``) is one layer, a
    parameter shared by several modules once; layers come in registration order
    (``named_modules()``), or with ``order="forward", example_input=x`` in the order one
    eval-mode forward of ``x`` first uses them (parameters it never uses follow). A layer is
    named after its module (``"blocks.0.attn"``), plus the parameter unless it is ``weight``.
    ``SnapshotRecorder([(name, module), ...])`` records those modules' ``weight`` in the order
    given (what ``Trainer`` passes).

    In your loop, call ``maybe_record()`` after ``loss.backward()`` and before
    ``optimizer.zero_grad()`` (it counts mini-batches; or pass ``step``, the 1-based number of
    mini-batches done); ``snapshots()`` returns the :class:`Snapshots` (``.to_frame()`` the tidy
    table). Only the first ``max_layers`` layers are kept (65, the schema's width; fewer are
    zero-padded). Statistics are computed on the parameters' device (one device for all) and
    cross to the host once per snapshot; one copy of the weights and of the gradients stays on
    the device for the change features. ``snapshot_every`` is the same as ``every``.
    """

    def __init__(
        self,
        layers: nn.Module | Sequence[tuple[str, nn.Module]],
        *,
        every: int | None = None,
        snapshot_every: int | None = None,
        max_layers: int = DEFAULT_MAX_LAYERS,
        sample_size: int = DEFAULT_SAMPLE_SIZE,
        seed: int = 0,
        order: str = "registration",
        example_input: Any = None,
    ) -> None:
        if every is not None and snapshot_every is not None and every != snapshot_every:
            raise ValueError(f"every={every!r} and snapshot_every={snapshot_every!r} name the "
                             "same cadence; pass one of them")
        cadence = ("every", every) if every is not None else (
            "snapshot_every", 100 if snapshot_every is None else snapshot_every)
        for arg, value in (cadence, ("max_layers", max_layers), ("sample_size", sample_size)):
            check_int(arg, value, minimum=1)
        entries: list[tuple[str, nn.Module, str]]
        if isinstance(layers, nn.Module):
            entries = model_layers(layers, order=order, example_input=example_input)
            kinds = [_kind_of(module) for _, module, _ in entries]
            if len(entries) > max_layers:
                warnings.warn(f"{type(layers).__name__} has {len(entries)} layers to record; only "
                              f"the first {max_layers} (max_layers) are kept", UserWarning,
                              stacklevel=2)
        else:
            if order != "registration" or example_input is not None:
                raise ValueError("order= and example_input= apply to a model; (name, module) "
                                 "pairs are recorded in the order given")
            pairs = list(layers)
            if not pairs:
                raise ValueError("layers is empty; pass a model or the (name, module) pairs to "
                                 "record")
            entries, kinds, seen = [], [], set()
            for name, module in pairs:
                kind = layer_kind(module)
                weight = getattr(module, "weight", None)
                if not isinstance(weight, torch.Tensor) or weight.numel() == 0:
                    raise ValueError(f"layer {name!r} has no (non-empty) weight parameter")
                if id(weight) in seen:  # a shared weight counts once
                    continue
                seen.add(id(weight))
                entries.append((str(name), module, "weight"))
                kinds.append(kind)
        self.snapshot_every = int(cadence[1])
        self.max_layers = int(max_layers)
        self.sample_size = int(sample_size)
        self.seed = int(seed)
        self.n_layers_total = len(entries)
        kept = entries[: self.max_layers]
        self.layer_names: tuple[str, ...] = tuple(name for name, _, _ in kept)
        self.layer_kinds: tuple[str, ...] = tuple(kinds[: self.max_layers])
        self._sources: list[tuple[nn.Module, str]] = [(m, p) for _, m, p in kept]
        numels = [self._tensor(i).numel() for i in range(len(kept))]
        self._numels = np.asarray(numels, dtype=np.int64)
        self._total = int(self._numels.sum())
        self._sizes = [int(n) for n in numels]
        self._host_index = self._sample_index(self._numels, self.sample_size, self.seed)
        self._device_index: _DeviceIndex | None = None
        self._previous: dict[str, _Previous | None] = {"weights": None, "grads": None}
        self._steps: list[int] = []
        self._features: list[np.ndarray] = []
        self._batches = 0  # mini-batches counted by maybe_record()

    def _tensor(self, i: int) -> torch.Tensor:
        """The current parameter of layer ``i`` (read each time: a module may replace it)."""
        module, name = self._sources[i]
        tensor = getattr(module, name)
        if not isinstance(tensor, torch.Tensor):
            raise RuntimeError(f"layer {self.layer_names[i]!r} no longer has a tensor {name!r}")
        return tensor

    @property
    def batches(self) -> int:
        """Mini-batches done: counted by ``maybe_record()``, or the last step passed to it or
        to ``record``."""
        return max(self._batches, self._steps[-1] if self._steps else 0)

    def __repr__(self) -> str:
        return (f"SnapshotRecorder({len(self.layer_names)} layers, every={self.snapshot_every}, "
                f"{len(self)} snapshots)")

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
            "batches": self._batches,
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
        self._batches = int(state.get("batches", self._steps[-1] if self._steps else 0))
        index = self._index_on(self._tensor(0).device)
        self._previous = {"weights": None, "grads": None}
        for source in self._previous:
            prev = state.get(f"previous_{source}")
            if prev is not None:
                self._previous[source] = _Previous(
                    **{k: v.to(index.device) for k, v in prev.items()})

    def maybe_record(self, step: int | None = None) -> bool:
        """Record if ``step`` (1-based mini-batch count; default: one more than the previous
        call's) is a multiple of ``snapshot_every``; True when it recorded."""
        step = self._batches + 1 if step is None else int(step)
        self._batches = step
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
        params = [self._tensor(i) for i in range(len(self._sources))]
        weights = [p.detach() for p in params]
        index = self._index_on(weights[0].device)
        grads = [p.grad for p in params]
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

    def to_frame(self) -> Any:
        """``snapshots().to_frame()``: the tidy table (step, layer, source, feature, value)."""
        return self.snapshots().to_frame()
