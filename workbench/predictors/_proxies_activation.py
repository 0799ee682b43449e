"""Size and forward-only zero-cost proxies: params, flops, nwot, swap and epsinas."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.predictors._proxies_base import (
    ProxyRun,
    ZeroCostProxy,
    forward_hooks,
    register_proxy,
    relu_codes,
)
from workbench.spaces import count_parameters, parameterised_layers


@register_proxy("params")
class Params(ZeroCostProxy):
    """Trainable parameters (nasbench-pytorch's unused dummy parameters excluded)."""

    name = "params"
    data_independent = True

    def score(self, run: ProxyRun) -> float:
        return float(count_parameters(run.model))


def _macs(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    """Multiply-accumulates of one conv/linear call (bias additions not counted)."""
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return inp.numel() * (module.out_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, nn.modules.conv._ConvNd):
        return out.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
    assert isinstance(module, nn.Linear)  # Flops hooks only conv and linear layers
    return out.numel() * module.in_features


@register_proxy("flops")
class Flops(ZeroCostProxy):
    """Forward multiply-accumulates (MACs) of all conv and linear layers for ONE input sample.

    Counted with forward hooks on a pass of ``x[:1]`` in eval mode, so layers a cell never calls
    cost nothing; BatchNorm, activations, pooling, additions and biases are not counted.
    """

    name = "flops"
    data_independent = True

    def score(self, run: ProxyRun) -> float:
        total = 0

        def hook(module: nn.Module, args: Any, out: torch.Tensor) -> None:
            nonlocal total
            total += _macs(module, args[0], out)

        layers = [m for m in run.model.modules()
                  if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))]
        run.model.eval()
        with forward_hooks(layers, hook), torch.no_grad():
            run.forward(run.x[:1])
        return float(total)


@register_proxy("nwot")
class Nwot(ZeroCostProxy):
    """NASWOT (Mellor et al., 2021): log|det K| of the binary ReLU-code kernel of the batch.

    Codes c_n ∈ {0,1}^{N_A} are the signs of every nn.ReLU output (training mode); K_ij = N_A −
    Hamming(c_i, c_j) = Σ [c_i c_j + (1−c_i)(1−c_j)]. −inf when two samples share all codes.
    """

    name = "nwot"

    def score(self, run: ProxyRun) -> float:
        n = run.x.shape[0]
        kernel = torch.zeros((n, n), dtype=torch.float64, device=run.device)
        for codes in relu_codes(run, self.name):
            # N_A - Hamming = 2 c_i.c_j - |c_i| - |c_j| + N_A; integer sums of 0/1 products are
            # exact in float32 below 2^24 units.
            exact = torch.float32 if codes.shape[1] < 2**24 else torch.float64
            c = codes.to(exact)
            ones = c.sum(dim=1, dtype=torch.float64)
            kernel += 2.0 * (c @ c.T).double() - ones[:, None] - ones[None, :] + codes.shape[1]
        return float(torch.linalg.slogdet(kernel.cpu()).logabsdet)


def count_distinct_columns(codes: torch.Tensor) -> int:
    """Number of distinct columns of a bool matrix [N, units] (the sample-wise patterns).

    Each column's N bits are packed into int64 words of 63 bits; the packed rows are sorted
    lexicographically (stable sorts, last word first) and the changes between neighbours counted.
    """
    n, units = codes.shape
    if units == 0:
        return 0
    words = []
    for start in range(0, n, 63):
        chunk = codes[start:start + 63].to(torch.int64)
        powers = 2 ** torch.arange(chunk.shape[0], dtype=torch.int64, device=codes.device)
        words.append((chunk * powers[:, None]).sum(dim=0))
    order = torch.arange(units, device=codes.device)
    for word in reversed(words):
        order = order[torch.sort(word[order], stable=True).indices]
    packed = torch.stack([word[order] for word in words], dim=1)  # [units, words], sorted
    return 1 + int((packed[1:] != packed[:-1]).any(dim=1).sum())


@register_proxy("swap")
class Swap(ZeroCostProxy):
    """SWAP-Score (Peng et al., 2024): distinct sample-wise activation patterns of the batch.

    Each unit of every nn.ReLU output (training mode) has the pattern (1[a_n > 0])_n over the N
    samples; the score is the number of distinct patterns (at most min(units, 2^N)). With
    ``regularise=True`` it is multiplied by exp(−(Θ − μ)² / σ), Θ = trainable parameters in
    millions; the defaults μ = σ = 1.0 (M) are ours (the paper tunes them per search space).
    """

    name = "swap"

    def __init__(self, regularise: bool = False, mu: float = 1.0, sigma: float = 1.0) -> None:
        if not isinstance(regularise, bool):
            raise ValueError(f"regularise must be a bool, got {regularise!r}")
        if not (isinstance(mu, (int, float)) and math.isfinite(mu)):
            raise ValueError(f"mu must be a finite number, got {mu!r}")
        if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"sigma must be a positive number, got {sigma!r}")
        self.regularise, self.mu, self.sigma = regularise, float(mu), float(sigma)

    def score(self, run: ProxyRun) -> float:
        codes = torch.cat(relu_codes(run, self.name), dim=1)
        value = float(count_distinct_columns(codes))
        if self.regularise:
            theta = count_parameters(run.model) / 1e6
            value *= math.exp(-((theta - self.mu) ** 2) / self.sigma)
        return value


#: The two shared constant weights of epsinas (the published NAS-Bench-201 choice).
EPSINAS_WEIGHTS: tuple[float, float] = (1e-7, 1.0)


def epsinas_from_outputs(low: np.ndarray, high: np.ndarray) -> float:
    """mean|p₁ − p₂| / mean(p₁ ∪ p₂) of the min-max normalised outputs p of both initialisations.

    As in the reference code, exact zeros of p (the minimum entries) and non-finite outputs are
    left out. An output without spread (the network ignores its input) scores 0, the minimum.
    """
    preds = []
    for out in (low, high):
        p = np.asarray(out, dtype=np.float64).ravel().copy()
        p[~np.isfinite(p)] = np.nan
        if np.all(np.isnan(p)):
            return 0.0
        lo, hi = np.nanmin(p), np.nanmax(p)
        if not hi > lo:
            return 0.0
        preds.append((p - lo) / (hi - lo))
    both = np.stack(preds)
    both[both == 0.0] = np.nan
    diff = np.abs(both[0] - both[1])
    if np.all(np.isnan(diff)):
        return 0.0
    return float(np.nanmean(diff) / np.nanmean(both))


@register_proxy("epsinas")
class Epsinas(ZeroCostProxy):
    """epsinas (Gracheva, 2021, "Trainless model performance estimation ..."; the ε metric).

    Two forward passes (training mode, batch statistics) with every conv/linear weight and affine
    norm scale set to one shared constant (``weights``, default 1e-7 and 1) and every bias to 0;
    the raw outputs are compared by :func:`epsinas_from_outputs`. Higher is better. Run in
    float64: in float32 the 1e-7 pass underflows to 0 in deep cells (all of NAS-Bench-101, ~40%
    of NAS-Bench-201, where the reference code returns NaN and its published correlation omits
    them); even float64 underflows in the deepest cells, which then score 0.
    """

    name = "epsinas"

    def __init__(self, weights: Sequence[float] = EPSINAS_WEIGHTS) -> None:
        weights = tuple(float(w) for w in weights)
        if len(weights) != 2 or not all(math.isfinite(w) and w > 0 for w in weights):
            raise ValueError(f"weights must be two positive numbers, got {weights!r}")
        self.weights = weights

    def score(self, run: ProxyRun) -> float:
        names = [_join(prefix, attr) for prefix, _ in parameterised_layers(run.model)
                 for attr in ("weight", "bias")]
        buffers = {name: b.double() if b.is_floating_point() else b
                   for name, b in run.buffers.items()}
        x = run.x.double()
        run.model.train()
        outputs = []
        with torch.no_grad():
            for value in self.weights:
                params = {name: p.detach().double() for name, p in run.params.items()}
                for name in names:
                    if name in params:
                        fill = value if name.endswith("weight") else 0.0
                        params[name] = torch.full_like(params[name], fill)
                outputs.append(run.forward(x, params, dict(buffers)).cpu().numpy())
        return epsinas_from_outputs(*outputs)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
