"""Zero-cost proxies: one registry and ``compute_proxies(model, batch, names)`` (issue #4).

>>> scores = compute_proxies(model, (x, y))                       # every registered proxy
>>> scores = compute_proxies(model, (x, y), ["synflow", "nwot"])  # a subset, in that order
>>> get_proxy("swap", regularise=True)(model, (x, y))

Proxies (see each class for its exact convention): ``params``, ``flops`` (size); ``grad_norm``,
``snip``, ``grasp``, ``fisher``, ``synflow``, ``jacov`` (gradients); ``nwot``, ``swap``,
``epsinas`` (forward passes only). Every proxy runs the model on private copies of its tensors,
so the model passed in is left exactly as it was; none draws random numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from workbench.predictors import _proxies_activation, _proxies_gradient
from workbench.predictors._proxies_activation import (
    EPSINAS_WEIGHTS,
    Epsinas,
    Flops,
    Nwot,
    Params,
    Swap,
    count_distinct_columns,
    epsinas_from_outputs,
)
from workbench.predictors._proxies_base import (
    PROXIES,
    LossFn,
    ProxyRun,
    ZeroCostProxy,
    check_batch,
    register_proxy,
)
from workbench.predictors._proxies_gradient import (
    JACOV_K,
    Fisher,
    GradNorm,
    Grasp,
    Jacov,
    Snip,
    Synflow,
    jacov_from_jacobians,
)

del _proxies_activation, _proxies_gradient  # imported for their registrations

__all__ = [
    "EPSINAS_WEIGHTS",
    "JACOV_K",
    "PROXIES",
    "Epsinas",
    "Fisher",
    "Flops",
    "GradNorm",
    "Grasp",
    "Jacov",
    "LossFn",
    "Nwot",
    "Params",
    "ProxyRun",
    "Snip",
    "Swap",
    "Synflow",
    "ZeroCostProxy",
    "compute_proxies",
    "count_distinct_columns",
    "epsinas_from_outputs",
    "get_proxy",
    "jacov_from_jacobians",
    "list_proxies",
    "register_proxy",
]


def list_proxies() -> list[str]:
    """Names of the registered zero-cost proxies, sorted (each one :func:`get_proxy` builds)."""
    return PROXIES.names()


def get_proxy(name: str, **kwargs: Any) -> ZeroCostProxy:
    """A new zero-cost proxy ``name`` built from ``kwargs`` (e.g. ``get_proxy("swap",
    regularise=True)``); ValueError naming the registered proxies when ``name`` is unknown."""
    return PROXIES.create(name, **kwargs)


def _select(names: str | Iterable[str] | None) -> list[str]:
    """The requested proxy names (all if None), de-duplicated; ValueError naming unknown ones."""
    if names is None:
        return list_proxies()
    requested = [names] if isinstance(names, str) else list(names)
    bad_types = [n for n in requested if not isinstance(n, str)]
    if bad_types:
        raise ValueError(f"proxy names must be strings, got {bad_types!r}")
    unknown = [n for n in requested if n not in PROXIES]
    if unknown:
        raise ValueError(f"unknown zero-cost prox{'y' if len(unknown) == 1 else 'ies'} "
                         f"{unknown!r}; allowed: {list_proxies()}")
    return list(dict.fromkeys(requested))


def compute_proxies(model: nn.Module, batch: Any, names: str | Iterable[str] | None = None,
                    *, loss_fn: LossFn | None = None, device: str | torch.device | None = None,
                    options: Mapping[str, Mapping[str, Any]] | None = None
                    ) -> dict[str, float]:
    """``{name: score}`` of the named proxies (default: all) on ``batch = (x, y)``.

    ``loss_fn(logits, y)`` defaults to mean cross-entropy; ``device`` to the model's device;
    ``options`` maps a proxy name to its constructor arguments (e.g. ``{"swap":
    {"regularise": True}}``). Malformed batches and unknown names raise ``ValueError``.
    """
    selected = _select(names)
    options = dict(options or {})
    stray = sorted(set(options) - set(selected))
    if stray:
        raise ValueError(f"options given for proxies that are not computed: {stray}; "
                         f"computed: {selected}")
    check_batch(batch)
    return {
        name: get_proxy(name, **dict(options.get(name, {})))(
            model, batch, loss_fn=loss_fn, device=device)
        for name in selected
    }
