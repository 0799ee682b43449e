"""A network's parameterised layers in execution order, and its real trainable parameters.

nasbench-pytorch gives every ``Cell`` an empty ``dev_param`` (a device marker) and every
``Placeholder`` a scalar ``a`` that no forward pass uses; neither ever gets a gradient, so both are
left out here (they would break "every parameter has a gradient" checks and inflate counts).
"""

from __future__ import annotations

from typing import Any

import torch
from nasbench_pytorch.model.model import Placeholder
from torch import nn

#: Layer types reported by ``parameterised_layers`` (convolutions, affine norms, linear maps).
LAYER_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.conv._ConvNd,  # Conv1d/2d/3d and their transposed / lazy variants
    nn.modules.batchnorm._NormBase,  # BatchNorm*, SyncBatchNorm, InstanceNorm* (affine)
    nn.GroupNorm,
    nn.LayerNorm,
    nn.Linear,
)


def _is_dummy(module: nn.Module, name: str, param: nn.Parameter) -> bool:
    """True for placeholder parameters that never take part in a forward pass."""
    return param.numel() == 0 or (isinstance(module, Placeholder) and name == "a")


def trainable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``(name, parameter)`` of every parameter that requires grad, minus the dummy ones.

    Same names and order as ``model.named_parameters()``; use it for optimisers and counting.
    """
    result: list[tuple[str, nn.Parameter]] = []
    seen: set[int] = set()
    for prefix, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if id(param) in seen or not param.requires_grad or _is_dummy(module, name, param):
                continue
            seen.add(id(param))
            result.append((f"{prefix}.{name}" if prefix else name, param))
    return result


def count_parameters(model: nn.Module) -> int:
    """Number of scalars in ``trainable_parameters(model)``."""
    return sum(param.numel() for _, param in trainable_parameters(model))


def _owns_trainable(module: nn.Module) -> bool:
    return any(
        param.requires_grad and not _is_dummy(module, name, param)
        for name, param in module.named_parameters(recurse=False)
    )


def parameterised_layers(
    model: nn.Module, example_input: Any = None
) -> list[tuple[str, nn.Module]]:
    """Conv, norm and linear layers of ``model`` that own trainable parameters, in execution order.

    With ``example_input`` (a tensor, or a tuple/list of positional tensors) the order is that of
    first call during one forward pass, and layers never called are dropped; the pass runs in
    eval mode under ``no_grad`` so running statistics are untouched. Without it: registration order.
    """
    layers = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, LAYER_TYPES) and _owns_trainable(module)
    ]
    if example_input is None:
        return layers

    first_call: dict[int, int] = {}

    def recorder(index: int) -> Any:
        def hook(module: nn.Module, args: Any) -> None:
            first_call.setdefault(index, len(first_call))

        return hook

    handles = [
        module.register_forward_pre_hook(recorder(index))
        for index, (_, module) in enumerate(layers)
    ]
    modes = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            if isinstance(example_input, (tuple, list)):
                model(*example_input)
            else:
                model(example_input)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes:
            module.training = training
    return [layers[i] for i in sorted(first_call, key=first_call.__getitem__)]
