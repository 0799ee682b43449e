"""Gradient-based zero-cost proxies: grad_norm, snip, grasp, fisher, synflow and jacov.

Conventions follow Abdelfattah et al. (2021, "Zero-Cost Proxies for Lightweight NAS"): the scored
"layers" are the conv and linear layers, every data-dependent score uses one forward/backward
pass of the whole batch in training mode (BatchNorm uses batch statistics), and the loss is
``loss_fn`` (default: mean cross-entropy).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.predictors._proxies_base import (
    ProxyRun,
    ZeroCostProxy,
    forward_hooks,
    gradients,
    register_proxy,
)


@register_proxy("grad_norm")
class GradNorm(ZeroCostProxy):
    """Σ over conv/linear layers of ‖∂L/∂W‖₂ (Frobenius norm of each layer's weight gradient)."""

    name = "grad_norm"

    def score(self, run: ProxyRun) -> float:
        run.model.train()
        grads = gradients(run.loss(), run.weights())
        return float(sum(g.double().norm() for g in grads))


@register_proxy("snip")
class Snip(ZeroCostProxy):
    """SNIP saliency (Lee et al., 2019): Σ |W ⊙ ∂L/∂W| over conv/linear weights."""

    name = "snip"

    def score(self, run: ProxyRun) -> float:
        run.model.train()
        weights = run.weights()
        grads = gradients(run.loss(), weights)
        return float(sum((w.detach() * g).double().abs().sum()
                         for w, g in zip(weights, grads, strict=True)))


@register_proxy("grasp")
class Grasp(ZeroCostProxy):
    """GraSP (Wang et al., 2020) as a network score: −Σ W ⊙ (H g) over conv/linear weights.

    g = ∂L/∂W, H = ∂²L/∂W²; H g comes from one double backward (∂(gᵀ stop_grad(g))/∂W). The sign
    is that of Abdelfattah et al.'s zero-cost code (the per-weight GraSP score summed, no abs).
    """

    name = "grasp"

    def score(self, run: ProxyRun) -> float:
        run.model.train()
        weights = run.weights()
        grads = gradients(run.loss(), weights, create_graph=True)
        dot = sum(((g * g.detach()).sum() for g in grads), torch.zeros((), device=run.device))
        hess_grad = gradients(dot, weights)
        total = sum((w.detach() * hg).double().sum()
                    for w, hg in zip(weights, hess_grad, strict=True))
        return -float(total)


@register_proxy("fisher")
class Fisher(ZeroCostProxy):
    """Fisher pruning saliency (Theis et al., 2018; Turner et al.'s BlockSwap) summed over channels.

    For each conv/linear output a (pre-BatchNorm, as in Abdelfattah et al.'s code) and channel k:
    Δ_k = ½ · mean over samples of (Σ_spatial a ⊙ ∂L/∂a)²; the score is Σ over layers and k.
    """

    name = "fisher"

    def score(self, run: ProxyRun) -> float:
        run.model.train()
        acts: list[torch.Tensor] = []

        def hook(module: nn.Module, args: Any, out: torch.Tensor) -> None:
            acts.append(out)

        with forward_hooks([layer for _, layer in run.weight_layers()], hook):
            loss = run.loss()
        total = torch.zeros((), dtype=torch.float64, device=run.device)
        for act, grad in zip(acts, gradients(loss, acts), strict=True):
            prod = (act.detach() * grad).double()
            per_channel = prod.sum(dim=tuple(range(2, prod.ndim))) if prod.ndim > 2 else prod
            total += 0.5 * per_channel.pow(2).mean(dim=0).sum()
        return float(total)


def _bypass(module: nn.Module, args: Any, out: torch.Tensor) -> torch.Tensor:
    return args[0]


@register_proxy("synflow")
class Synflow(ZeroCostProxy):
    """SynFlow (Tanaka et al., 2020): Σ |W ⊙ ∂R/∂W| with R = Σ f(1) under |W|; data-free.

    Every parameter replaced by its absolute value, float64, eval mode with every BatchNorm
    bypassed (identity, as the NAS-Bench zero-cost code builds its networks for synflow), input
    all ones of shape [1, *x.shape[1:]]; scored over conv/linear weights. Uses only x's shape.
    """

    name = "synflow"
    data_independent = True

    def score(self, run: ProxyRun) -> float:
        params = {name: p.detach().abs().double().requires_grad_(p.requires_grad)
                  for name, p in run.params.items()}
        buffers = {name: b.double() if b.is_floating_point() else b
                   for name, b in run.buffers.items()}
        norms = [m for m in run.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        run.model.eval()
        ones = torch.ones((1, *run.x.shape[1:]), dtype=torch.float64, device=run.device)
        weights = run.weights(params)
        with forward_hooks(norms, _bypass):
            grads = gradients(run.forward(ones, params, buffers).sum(), weights)
        return float(sum((w.detach() * g).abs().sum() for w, g in zip(weights, grads, strict=True)))


#: The small constant of Mellor et al.'s (v1) eigenvalue score.
JACOV_K = 1e-5


def jacov_from_jacobians(jac: np.ndarray, k: float = JACOV_K) -> float:
    """−Σ_i [log(v_i + k) + 1/(v_i + k)] over eigenvalues v of the rows' correlation matrix.

    A row with zero variance (the output ignores that input) has no defined correlation; it is
    counted as perfectly correlated with every row (correlation 1), the degenerate, worst case.
    """
    jac = np.asarray(jac, dtype=np.float64).reshape(jac.shape[0], -1)
    centred = jac - jac.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1)
    flat = norms <= 1e-300
    unit = centred / np.where(flat, 1.0, norms)[:, None]
    corr = unit @ unit.T
    corr[flat, :] = 1.0
    corr[:, flat] = 1.0
    corr = np.clip((corr + corr.T) / 2, -1.0, 1.0)
    np.fill_diagonal(corr, 1.0)
    eig = np.clip(np.linalg.eigvalsh(corr), 0.0, None)
    return float(-np.sum(np.log(eig + k) + 1.0 / (eig + k)))


@register_proxy("jacov")
class Jacov(ZeroCostProxy):
    """Jacobian covariance (Mellor et al., 2020, arXiv v1): decorrelated input Jacobians score high.

    J_n = ∂(Σ_c f(x)_{n,c})/∂x_n per sample (training mode, batch statistics), flattened; the
    score is :func:`jacov_from_jacobians` of the N×N correlation matrix, k = 1e-5.
    """

    name = "jacov"

    def score(self, run: ProxyRun) -> float:
        run.model.train()
        inputs = run.x.detach().clone().requires_grad_(True)
        (jac,) = gradients(run.forward(inputs).sum(), [inputs])
        return jacov_from_jacobians(jac.detach().double().cpu().numpy())
