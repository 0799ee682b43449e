"""The common interface of a search space and the space registry (timm-style)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from torch import nn

from workbench._registry import Registry

RngLike = np.random.Generator | int | np.integer | None


def as_rng(rng: RngLike) -> np.random.Generator:
    """Turn a seed, ``None`` or a Generator into a ``numpy.random.Generator``."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise ValueError(f"rng must be an int seed, None or numpy.random.Generator, got {rng!r}")


def check_choices(choices: Mapping[str, Sequence[Any]], params: Any) -> None:
    """ValueError unless ``params`` gives exactly the names of ``choices``, each an allowed
    value (the message names the missing, unknown or bad entry and what is allowed)."""
    if not isinstance(params, Mapping):
        raise ValueError(f"choices must be a mapping of name -> value, got {params!r}")
    missing = [k for k in choices if k not in params]
    unknown = [k for k in params if k not in choices]
    if missing or unknown:
        raise ValueError(f"choices must name exactly {list(choices)}; missing {missing}, "
                         f"unknown {unknown}")
    for name, allowed in choices.items():
        if params[name] not in allowed:
            raise ValueError(f"choice {name}={params[name]!r} is not allowed; allowed: "
                             f"{list(allowed)}")


class SearchSpace(ABC):
    """A cell-based search space: sample, mutate, encode, parse and build cells.

    Cells are immutable and hashable; ``cell_id`` is the key under which the bundled benchmark
    table stores the cell (NAS-Bench-101: module hash; NAS-Bench-201: architecture index).
    A space also knows its named network sizes (``model_presets``) and the graph a graph
    predictor reads (``to_graph`` over ``graph_ops``, at most ``graph_nodes`` nodes).
    """

    name: str
    #: The names ``encode`` accepts, the default first (see ``default_encoding``).
    encodings: tuple[str, ...]
    #: Named ``build`` keyword arguments: "paper" (the published network), "small", "tiny".
    model_presets: ClassVar[dict[str, dict[str, Any]]]
    #: Node label vocabulary of ``to_graph`` graphs, in the one-hot order graph predictors use.
    graph_ops: ClassVar[tuple[str, ...]]
    #: Largest node count of a ``to_graph`` graph (graph predictors pad to it).
    graph_nodes: ClassVar[int]

    @abstractmethod
    def sample(self, rng: RngLike = None) -> Hashable:
        """A uniformly random valid cell."""

    @abstractmethod
    def mutate(self, cell: Any, rng: RngLike = None) -> Hashable:
        """A valid cell that differs from ``cell`` by one edit (edge flip or op change)."""

    def neighbors(self, cell: Any) -> Sequence[Hashable]:
        """Every valid cell one edit away from ``cell`` (what :meth:`mutate` draws from), for
        local search. A space that does not list them raises NotImplementedError."""
        raise NotImplementedError(f"space {getattr(self, 'name', type(self).__name__)!r} does "
                                  "not list the neighbors of a cell")

    def choices(self) -> dict[str, tuple[Any, ...]]:
        """The decisions that make up a cell, as named categorical parameters (name -> the
        allowed values), for black-box optimisers such as Optuna's samplers."""
        raise NotImplementedError(f"space {getattr(self, 'name', type(self).__name__)!r} does "
                                  "not describe its cells as categorical choices")

    def from_choices(self, params: Mapping[str, Any]) -> Hashable:
        """The cell with the decisions ``params`` (one value per name of :meth:`choices`);
        ValueError naming the problem when they make no valid cell."""
        raise NotImplementedError(f"space {getattr(self, 'name', type(self).__name__)!r} does "
                                  "not describe its cells as categorical choices")

    def to_choices(self, cell: Any) -> dict[str, Any]:
        """The decisions of ``cell`` (:meth:`from_choices` of them gives the same cell id)."""
        raise NotImplementedError(f"space {getattr(self, 'name', type(self).__name__)!r} does "
                                  "not describe its cells as categorical choices")

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

    @abstractmethod
    def to_graph(self, cell: Any, *, prune: bool = True) -> tuple[np.ndarray, list[str]]:
        """(int adjacency ``[n, n]``, ``n`` node labels from ``graph_ops``) of ``cell``, nodes
        in topological order from ``input`` to ``output``; ``prune`` drops nodes on no
        input-output path (the graph graph predictors read)."""

    @property
    def default_encoding(self) -> str:
        """The encoding a predictor's features use unless told otherwise (``table_features``,
        ``PredictorSH``): the first of ``encodings``, so each space states its own."""
        return self.encodings[0]

    def model_kwargs(self, preset: str | dict[str, Any]) -> dict[str, Any]:
        """``build`` keyword arguments: a copy of preset ``preset`` or of an explicit dict."""
        if isinstance(preset, dict):
            return dict(preset)
        try:
            return dict(self.model_presets[preset])
        except (KeyError, TypeError):
            raise ValueError(f"unknown model preset {preset!r} for {self.name}; available: "
                             f"{sorted(self.model_presets)}") from None


SPACES: Registry[SearchSpace] = Registry("search space")


def register_space(name: str) -> Callable[[type[SearchSpace]], type[SearchSpace]]:
    """Class decorator adding a search space under ``name`` (equal to the class's ``name``):
    ``@register_space("nb101")``."""
    return SPACES.register(name)


def list_spaces() -> list[str]:
    """Names of the registered search spaces, sorted (each one a :func:`get_space` accepts)."""
    return SPACES.names()


def get_space(name: str, **kwargs: Any) -> SearchSpace:
    """A new instance of the registered search space ``name`` ('nb101', 'nb201').

    ValueError naming the registered spaces when ``name`` is not one of them."""
    return SPACES.create(name, **kwargs)
