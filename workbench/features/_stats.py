"""Vectorised per-layer statistics on the device: all layers of one source at once, no syncs.

Nothing here moves data to the host or calls ``.item()``; the recorder does the single transfer.
"""

from __future__ import annotations

import torch

from workbench.features._schema import NEAR_ZERO_REL, QUANTILES

_TINY = 1e-30
_RESOLUTION = 1e-6  # float32 resolution: a sample whose spread is below it counts as constant


def sample_stats(samples: torch.Tensor, valid: torch.Tensor, rms: torch.Tensor) -> torch.Tensor:
    """Distribution features of padded samples [L, S] (``valid`` marks real values) -> [L, 13].

    Columns follow ``SAMPLE_FEATURES``; ``rms`` [L] is the full tensor's RMS (for near-zero).
    """
    count = valid.sum(1).to(samples.dtype)
    x = samples.masked_fill(~valid, 0.0)
    mean = x.sum(1) / count
    d = (x - mean[:, None]).masked_fill(~valid, 0.0)
    d2 = d * d
    m2 = d2.sum(1) / count
    m3 = (d2 * d).sum(1) / count
    m4 = (d2 * d2).sum(1) / count
    ordered = samples.masked_fill(~valid, float("inf")).sort(1).values
    lo = ordered[:, 0]
    hi = ordered.gather(1, (count - 1.0).long()[:, None])[:, 0]
    absx = x.abs()
    abs_mean = absx.sum(1) / count
    constant = m2 <= (_RESOLUTION * torch.maximum(lo.abs(), hi.abs())) ** 2
    safe_m2 = torch.where(constant, torch.ones_like(m2), m2)
    zero = torch.zeros_like(m2)
    skew = torch.where(constant, zero, m3 / safe_m2**1.5)
    kurtosis = torch.where(constant, zero, m4 / safe_m2**2 - 3.0)
    near = ((absx <= NEAR_ZERO_REL * rms[:, None]) & valid).sum(1).to(samples.dtype) / count
    quantiles = _quantiles(ordered, count)
    return torch.cat(
        [
            torch.stack([mean, torch.where(constant, zero, m2.sqrt()), lo, hi, abs_mean], 1),
            quantiles,
            torch.stack([near, skew, kurtosis], 1),
        ],
        1,
    )


def _quantiles(ordered: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Linear-interpolation quantiles (numpy's default) of sorted rows of ``count`` values."""
    q = torch.tensor(QUANTILES, dtype=ordered.dtype, device=ordered.device)
    pos = q[None, :] * (count[:, None] - 1.0)
    below = pos.floor()
    frac = pos - below
    i_lo = below.long()
    i_hi = torch.minimum(i_lo + 1, (count - 1.0).long()[:, None])
    v_lo = ordered.gather(1, i_lo)
    v_hi = ordered.gather(1, i_hi)
    return v_lo + (v_hi - v_lo) * frac


def norm_stats(
    flat: torch.Tensor,
    previous: torch.Tensor,
    previous_norm: torch.Tensor,
    has_previous: torch.Tensor,
    sizes: list[int],
) -> torch.Tensor:
    """Full-tensor ``l2_norm, diff_norm, rel_change, cosine`` per layer -> [L, 4].

    ``flat`` and ``previous`` hold all layers concatenated (``sizes`` values each). Norms use
    ``torch._foreach_norm`` (one fused kernel on CUDA, as in ``clip_grad_norm_``); the inner
    product comes from the polarization identity <x, p> = (|x|^2 + |p|^2 - |x - p|^2) / 2.
    Change features are 0 where ``has_previous`` [L] is false or a denominator is 0.
    """
    norm = torch.stack(torch._foreach_norm(list(flat.split(sizes))))
    diff = torch.stack(torch._foreach_norm(list((flat - previous).split(sizes))))
    zero = torch.zeros_like(norm)
    diff_norm = torch.where(has_previous, diff, zero)
    rel_ok = has_previous & (previous_norm > 0)
    rel_change = torch.where(rel_ok, diff_norm / previous_norm.clamp_min(_TINY), zero)
    cos_ok = rel_ok & (norm > 0)
    dot = 0.5 * (norm * norm + previous_norm * previous_norm - diff * diff)
    cosine = (dot / norm.clamp_min(_TINY) / previous_norm.clamp_min(_TINY)).clamp(-1.0, 1.0)
    cosine = torch.where(cos_ok, cosine, zero)
    return torch.stack([norm, diff_norm, rel_change, cosine], 1)
