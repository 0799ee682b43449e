"""The zero-cost proxy base class, its registry, batch checks and shared helpers.

A proxy never modifies the caller's model: each forward pass runs the network's own modules on
private copies of its parameters and buffers (swapped in for the pass, on the chosen device), so
weights, running statistics and ``.grad`` stay as they were; the train/eval flags a proxy sets and
the hooks it adds are undone when it returns. (``torch.func.functional_call`` is not used: it
corrupts the weights of modules registered under two names, as nasbench-pytorch's ``last_inop``.)
Nothing here draws random numbers: a proxy is a deterministic function of the model and the
batch (on CPU bit for bit; on a GPU up to the non-determinism of cuDNN kernels).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from workbench._device import resolve_device
from workbench._registry import Registry
from workbench.spaces import parameterised_layers

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Tensors = dict[str, torch.Tensor]
#: Layers whose weights the gradient proxies score (the zero-cost literature's "layers").
WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (nn.modules.conv._ConvNd, nn.Linear)


class ProxyRun:
    """One evaluation: the caller's model, the checked batch on the device, private tensors.

    ``params``/``buffers`` are device copies of the model's (parameters keep ``requires_grad``);
    :meth:`forward` runs the model on them, or on replacement dicts a proxy builds (|w|, ...).
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn,
                 device: torch.device) -> None:
        self.model, self.loss_fn, self.device = model, loss_fn, device
        self.params: Tensors = {
            name: p.detach().to(device, copy=True).requires_grad_(p.requires_grad)
            for name, p in model.named_parameters()}
        self.buffers: Tensors = {name: b.detach().to(device, copy=True)
                                 for name, b in model.named_buffers()}
        dtype = next((t.dtype for t in (*self.params.values(), *self.buffers.values())
                      if t.is_floating_point()), torch.get_default_dtype())
        self.x = x.to(device=device, dtype=dtype)
        self.y = y.to(device)

    def forward(self, x: torch.Tensor, params: Tensors | None = None,
                buffers: Tensors | None = None) -> torch.Tensor:
        """The model's output on ``x`` with the given (default: the run's) tensors."""
        with _swapped(self.model, self.params if params is None else params,
                      self.buffers if buffers is None else buffers):
            out = self.model(x)
        if not isinstance(out, torch.Tensor):
            raise ValueError(f"the model must return one tensor of outputs, got "
                             f"{type(out).__name__}")
        if out.ndim < 1 or out.shape[0] != x.shape[0]:
            raise ValueError(f"the model returned shape {tuple(out.shape)} for {x.shape[0]} "
                             "inputs")
        return out

    def loss(self) -> torch.Tensor:
        """The scalar ``loss_fn(model(x), y)``; integer labels must index the model's outputs."""
        out = self.forward(self.x)
        y = self.y
        if not y.is_floating_point() and out.ndim == 2 and y.numel():
            top = int(y.max())
            if top >= out.shape[1]:
                raise ValueError(f"class label {top} is out of range for a model with "
                                 f"{out.shape[1]} outputs")
        loss = self.loss_fn(out, y)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError("loss_fn must return a scalar tensor")
        return loss.reshape(())

    def weight_layers(self) -> list[tuple[str, nn.Module]]:
        """``(weight name, layer)`` of conv/linear layers with a trainable weight, in order
        (nasbench-pytorch's dummy parameters are never among them)."""
        return [(_join(name, "weight"), module) for name, module in parameterised_layers(self.model)
                if isinstance(module, WEIGHT_LAYERS) and module.weight.requires_grad]

    def weights(self, params: Tensors | None = None) -> list[torch.Tensor]:
        """The run's (or ``params``') tensors of :meth:`weight_layers`."""
        source = self.params if params is None else params
        return [source[name] for name, _ in self.weight_layers()]


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


@contextmanager
def _swapped(model: nn.Module, params: Tensors, buffers: Tensors) -> Iterator[None]:
    """Every module's own parameter/buffer entries replaced by ``params``/``buffers`` (keyed by
    the names of ``named_parameters()``/``named_buffers()``) for the block, then restored."""
    by_id = {id(t): params[name] for name, t in model.named_parameters()}
    by_id.update({id(t): buffers[name] for name, t in model.named_buffers()})
    saved: list[tuple[dict[str, Any], str, Any]] = []
    try:
        for module in model.modules():
            tables: tuple[dict[str, Any], ...] = (module._parameters, module._buffers)
            for table in tables:
                for key, tensor in table.items():
                    if tensor is not None and id(tensor) in by_id:
                        saved.append((table, key, tensor))
                        table[key] = by_id[id(tensor)]
        yield
    finally:
        for table, key, tensor in reversed(saved):
            table[key] = tensor


class ZeroCostProxy(ABC):
    """A score of an untrained network from one mini-batch; higher is meant to be better.

    Call it as ``proxy(model, (x, y), loss_fn=None, device=None) -> float``; subclasses implement
    :meth:`score` on a :class:`ProxyRun`.
    """

    #: The registry name.
    name: ClassVar[str] = ""
    #: True when the score depends on the batch's shape only, never on its values.
    data_independent: ClassVar[bool] = False

    def __call__(self, model: nn.Module, batch: Any, *, loss_fn: LossFn | None = None,
                 device: str | torch.device | None = None) -> float:
        """Score ``model`` on ``batch = (x, y)`` on ``device`` (default: the model's device)."""
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        x, y = check_batch(batch)
        dev = model_device(model) if device is None else resolve_device(device)
        run = ProxyRun(model, x, y, F.cross_entropy if loss_fn is None else loss_fn, dev)
        modes = [(module, module.training) for module in model.modules()]
        try:
            with torch.enable_grad():
                return float(self.score(run))
        finally:
            for module, training in modes:
                module.training = training

    @abstractmethod
    def score(self, run: ProxyRun) -> float:
        """The proxy of ``run.model`` on ``run.x``/``run.y`` (set the mode it needs)."""


PROXIES: Registry[ZeroCostProxy] = Registry("zero-cost proxy")


def register_proxy(name: str) -> Callable[[type[ZeroCostProxy]], type[ZeroCostProxy]]:
    """Class decorator adding a proxy to :data:`PROXIES` under ``name`` (equal to the class's
    ``name``): ``@register_proxy("synflow")``."""
    return PROXIES.register(name)


@contextmanager
def forward_hooks(modules: Sequence[nn.Module], hook: Callable[..., Any]) -> Iterator[None]:
    """``hook`` registered as a forward hook on ``modules`` for the duration of the block."""
    handles = [module.register_forward_hook(hook) for module in modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


# --------------------------------------------------------------------------------------------
# Batch and device
# --------------------------------------------------------------------------------------------


def check_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` of a well-formed batch, else ``ValueError`` saying what is wrong.

    x: a floating tensor [N, ...] of finite values with N >= 2 (batch statistics, correlations
    and kernels across samples need two); y: a tensor whose first dimension is N.
    """
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError(f"batch must be a pair (x, y) of tensors, got {type(batch).__name__}"
                         + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""))
    x, y = batch
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise ValueError(f"batch must hold tensors, got ({type(x).__name__}, "
                         f"{type(y).__name__})")
    if not x.is_floating_point():
        raise ValueError(f"inputs x must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"inputs x must be [N, ...] with a batch dimension, got shape "
                         f"{tuple(x.shape)}")
    if y.ndim < 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"shape mismatch: x has {x.shape[0]} sample(s) (shape "
                         f"{tuple(x.shape)}) but y has shape {tuple(y.shape)}")
    if x.shape[0] < 2:
        raise ValueError(f"zero-cost proxies need a batch of at least 2 samples, got "
                         f"{x.shape[0]}")
    if not torch.isfinite(x).all():
        raise ValueError("inputs x contain NaN or infinite values")
    if y.is_floating_point() and not torch.isfinite(y).all():
        raise ValueError("targets y contain NaN or infinite values")
    if not y.is_floating_point() and y.numel() and int(y.min()) < 0:
        raise ValueError(f"class labels y must be >= 0, got minimum {int(y.min())}")
    return x, y


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model without any)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


# --------------------------------------------------------------------------------------------
# Gradients and activation codes
# --------------------------------------------------------------------------------------------


def gradients(output: torch.Tensor, inputs: Sequence[torch.Tensor], *,
              create_graph: bool = False) -> list[torch.Tensor]:
    """d output / d input for each input; zeros where ``output`` does not depend on it."""
    inputs = list(inputs)
    if not inputs:
        return []
    if not output.requires_grad:
        return [torch.zeros_like(t) for t in inputs]
    grads = torch.autograd.grad(output, inputs, allow_unused=True, create_graph=create_graph)
    return [torch.zeros_like(t) if g is None else g for t, g in zip(inputs, grads, strict=True)]


def relu_codes(run: ProxyRun, proxy: str) -> list[torch.Tensor]:
    """Binary activation codes (output > 0) of every ``nn.ReLU`` call, each [N, units] bool.

    One forward pass in training mode (batch statistics, as the published code ran it); the
    model needs ``nn.ReLU`` modules (functional relu calls are invisible to hooks).
    """
    relus = [m for m in run.model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ValueError(f"{proxy} reads the outputs of nn.ReLU modules, but the model has none")
    codes: list[torch.Tensor] = []

    def hook(module: nn.Module, args: Any, out: torch.Tensor) -> None:
        codes.append((out.detach() > 0).reshape(out.shape[0], -1))

    run.model.train()
    with forward_hooks(relus, hook), torch.no_grad():
        run.forward(run.x)
    return codes
