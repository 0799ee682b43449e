"""Named network sizes per space: the paper's, and reduced ones that train in seconds on a CPU."""

from __future__ import annotations

from typing import Any

MODEL_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "nb101": {
        # The NAS-Bench-101 CIFAR-10 network: stem 128, 3 stacks x 3 cells.
        "paper": {"stem_channels": 128, "num_stacks": 3, "cells_per_stack": 3},
        # Reduced: stem 16, one cell per stack (about 50x fewer MACs). These train for a few
        # hundred mini-batches, so BatchNorm uses torch's usual momentum 0.1: with NAS-Bench-101's
        # 0.997 (torch 0.003) the running statistics would still be ~40% initial values after
        # 300 steps and held-out accuracy would be meaningless.
        "small": {"stem_channels": 16, "num_stacks": 3, "cells_per_stack": 1,
                  "bn_momentum": 0.1},
        "tiny": {"stem_channels": 8, "num_stacks": 3, "cells_per_stack": 1, "bn_momentum": 0.1},
    },
    "nb201": {
        # The NAS-Bench-201 network: C = 16, N = 5 cells per stage.
        "paper": {"channels": 16, "cells_per_stage": 5},
        "small": {"channels": 16, "cells_per_stage": 1},
        "tiny": {"channels": 8, "cells_per_stage": 1},
    },
}


def model_kwargs(space: str, preset: str | dict[str, Any]) -> dict[str, Any]:
    """Builder keyword arguments for ``space``: a preset name or an explicit dict."""
    if isinstance(preset, dict):
        return dict(preset)
    if space not in MODEL_PRESETS:
        raise ValueError(f"no model presets for space {space!r}; available: "
                         f"{sorted(MODEL_PRESETS)}")
    try:
        return dict(MODEL_PRESETS[space][preset])
    except KeyError:
        raise ValueError(f"unknown model preset {preset!r} for {space}; available: "
                         f"{sorted(MODEL_PRESETS[space])}") from None
