"""The common interface of a search space and the space registry (timm-style)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable
from typing import Any

import numpy as np
from torch import nn

from workbench._registry import Registry

RngLike = np.random.Generator | int | None


def as_rng(rng: RngLike) -> np.random.Generator:
    """Turn a seed, ``None`` or a Generator into a ``numpy.random.Generator``."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise ValueError(f"rng must be an int seed, None or numpy.random.Generator, got {rng!r}")


class SearchSpace(ABC):
    """A cell-based search space: sample, mutate, encode, parse and build cells.

    Cells are immutable and hashable; ``cell_id`` is the key under which the bundled benchmark
    table stores the cell (NAS-Bench-101: module hash; NAS-Bench-201: architecture index).
    """

    name: str
    encodings: tuple[str, ...]

    @abstractmethod
    def sample(self, rng: RngLike = None) -> Hashable:
        """A uniformly random valid cell."""

    @abstractmethod
    def mutate(self, cell: Any, rng: RngLike = None) -> Hashable:
        """A valid cell that differs from ``cell`` by one edit (edge flip or op change)."""

    @abstractmethod
    def encode(self, cell: Any, kind: str = "adjacency") -> np.ndarray:
        """A fixed-length float vector describing ``cell`` (``kind`` in ``self.encodings``)."""

    @abstractmethod
    def parse(self, text: str) -> Hashable:
        """The cell written as ``text`` (the inverse of ``format``)."""

    @abstractmethod
    def format(self, cell: Any) -> str:
        """The canonical string of ``cell``."""

    @abstractmethod
    def cell_id(self, cell: Any) -> str:
        """The key of ``cell`` in the bundled benchmark table."""

    @abstractmethod
    def build(self, cell: Any, **config: Any) -> nn.Module:
        """A freshly initialised PyTorch network for ``cell`` (``config``: classes, width, ...)."""


SPACES: Registry[SearchSpace] = Registry("search space")

#: Class decorator adding a search space to the registry: ``@register_space("nb101")``.
register_space = SPACES.register
#: Names of the registered search spaces.
list_spaces = SPACES.names


def get_space(name: str) -> SearchSpace:
    """A new instance of the registered search space ``name`` ('nb101', 'nb201')."""
    return SPACES.create(name)
