"""Training-cost models used to simulate search on the tables (seconds per epoch).

NAS-Bench-101 publishes the measured TPU time of each 108-epoch run, so its cost is that time
pro rata. NAS-Bench-201's bundled table has no timings, so its cost is modelled from the
network's multiply-accumulates (computed exactly from the cell, below) and a throughput.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from workbench._checks import check_real
from workbench._datasets import num_classes as classes_of  # nb201_macs has a num_classes=

#: Multiply-accumulates of one NAS-Bench-201 edge op on a C-channel, H x H feature map.
_EDGE_MACS = {
    "none": lambda c, h: 0,
    "skip_connect": lambda c, h: 0,
    "nor_conv_1x1": lambda c, h: c * c * h * h,
    "nor_conv_3x3": lambda c, h: 9 * c * c * h * h,
    "avg_pool_3x3": lambda c, h: 9 * c * h * h,
}

#: Images per training epoch and input resolution of the NAS-Bench-201 datasets.
NB201_DATASETS = {"cifar10": (50_000, 32), "cifar100": (50_000, 32),
                  "ImageNet16-120": (151_700, 16)}


def nb201_macs(ops: Sequence[str], *, channels: int = 16, cells_per_stage: int = 5,
               resolution: int = 32, num_classes: int = 10) -> int:
    """Forward multiply-accumulates of one image through the NAS-Bench-201 macro network."""
    unknown = [o for o in ops if o not in _EDGE_MACS]
    if len(ops) != 6 or unknown:
        raise ValueError(f"expected 6 ops from {sorted(_EDGE_MACS)}, got {list(ops)!r}")
    c, h = channels, resolution
    total = 27 * c * h * h  # stem 3x3 conv, 3 -> C
    for stage in range(3):
        if stage:  # residual reduction block: 3x3/2, 3x3, and a 1x1 shortcut after avg-pool
            h //= 2
            total += 9 * c * 2 * c * h * h + 9 * (2 * c) ** 2 * h * h + c * 2 * c * h * h
            c *= 2
        total += cells_per_stage * sum(_EDGE_MACS[o](c, h) for o in ops)
    return total + c * num_classes


@dataclass(frozen=True)
class NB201CostModel:
    """Seconds per epoch = overhead + images x 3 x forward MACs / throughput.

    The factor 3 counts forward + backward. The defaults (1.5 TMAC/s effective, 4 s of data and
    bookkeeping per epoch) put the largest cell near 25 s per CIFAR-10 epoch, the order of the
    published single-GPU times; they are a documented assumption, not a measurement.
    """

    macs_per_second: float = 1.5e12
    overhead_seconds: float = 4.0

    def __post_init__(self) -> None:
        check_real("macs_per_second", self.macs_per_second, minimum=0, inclusive="neither")
        check_real("overhead_seconds", self.overhead_seconds, minimum=0)

    def seconds_per_epoch(self, ops: Sequence[str], *, dataset: str) -> float:
        """Modelled training seconds of one epoch of the cell ``ops`` on ``dataset``."""
        if dataset not in NB201_DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; available: {sorted(NB201_DATASETS)}")
        images, res = NB201_DATASETS[dataset]
        macs = nb201_macs(ops, resolution=res, num_classes=classes_of(dataset))
        return self.overhead_seconds + images * 3 * macs / self.macs_per_second
