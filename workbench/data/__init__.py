"""CIFAR datasets (official python folders, bundled/shared JPEG sets) and a device-side loader.

>>> from workbench.data import DeviceLoader, load_dataset, train_val_split
>>> train, val = train_val_split(load_dataset("cifar10", "train"), val_fraction=0.1, seed=0)
>>> for x, y in DeviceLoader(train, 256, device="auto", seed=0):  # one epoch per iter()
...     pass
"""

from workbench._datasets import CLASS_COUNTS, num_classes
from workbench.data._cache import DATA_DEFAULTS, DataCache, process_cache
from workbench.data._cifar import DATA_SOURCES, NAMES, SPLITS, load_dataset
from workbench.data._dataset import ImageDataset, train_val_split
from workbench.data._loader import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    DeviceLoader,
)

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "CLASS_COUNTS",
    "DATA_DEFAULTS",
    "DATA_SOURCES",
    "NAMES",
    "SPLITS",
    "DataCache",
    "DeviceLoader",
    "ImageDataset",
    "load_dataset",
    "num_classes",
    "process_cache",
    "train_val_split",
]
