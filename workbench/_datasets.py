"""How many classes each dataset of the workbench's benchmarks has, in one table for every layer.

A base module so that ``benchmarks`` (cost models, below ``data``) and ``data``, ``training``
and ``search`` read the same counts; public as ``workbench.data.CLASS_COUNTS`` and
``workbench.data.num_classes``.
"""

from __future__ import annotations

#: Classes per dataset: the two CIFARs and NAS-Bench-201's downsampled ImageNet subset.
CLASS_COUNTS: dict[str, int] = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}


def num_classes(dataset: str) -> int:
    """The number of classes of ``dataset`` (what a network's classifier must output)."""
    try:
        return CLASS_COUNTS[dataset]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dataset {dataset!r}; allowed: {list(CLASS_COUNTS)}") from None
