"""The NAS-Bench-201 search space: cells, strict string parsing, encodings and networks.

A cell is a 4-node DAG whose 6 edges (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2) each carry one of
5 operations, giving 5**6 = 15,625 cells. The network written here follows the published
macro skeleton so that parameter counts match the bundled table exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from workbench._checks import check_int
from workbench._tables import CellNotInTableError, read_table
from workbench.spaces._base import (
    RngLike,
    SearchSpace,
    as_rng,
    check_choices,
    register_space,
)

#: The five NAS-Bench-201 operations, in the order used by the one-hot encoding.
NB201_OPS: tuple[str, ...] = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
)

#: The six edges as (source node, target node), in the order of the cell string.
NB201_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))

_NUM_NODES = 4
_CONV_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
#: Node labels of the op-on-node graph: the two terminals, then the edge operations.
_GRAPH_LABELS: tuple[str, ...] = ("input", "output", *NB201_OPS)


# --------------------------------------------------------------------------------------------
# Cells
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NB201Cell:
    """An immutable NAS-Bench-201 cell: the 6 edge operations in cell-string order.

    Build one from a list of ops (``NB201Cell([...])``), a string (``from_string``) or a table
    index (``from_index``).
    """

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        ops = self.ops
        if isinstance(ops, (str, bytes)) or not isinstance(ops, Sequence):
            raise ValueError(
                f"NB201Cell needs a sequence of 6 op names, got {ops!r} "
                "(use NB201Cell.from_string for a cell string)"
            )
        ops = tuple(ops)
        if len(ops) != len(NB201_EDGES):
            raise ValueError(
                f"NB201Cell needs exactly 6 ops (one per edge), got {len(ops)}: {ops!r}"
            )
        for pos, op in enumerate(ops):
            if op not in NB201_OPS:
                src, dst = NB201_EDGES[pos]
                raise ValueError(
                    f"unknown op {op!r} on edge {dst}<-{src}; allowed: {list(NB201_OPS)}"
                )
        object.__setattr__(self, "ops", ops)

    @classmethod
    def from_ops(cls, ops: Sequence[str]) -> NB201Cell:
        """The cell with edge ops ``ops`` (6 names in cell-string order), validated."""
        return cls(ops)  # type: ignore[arg-type]  # __post_init__ checks it, stores a tuple

    @classmethod
    def from_string(cls, text: str) -> NB201Cell:
        """Parse the canonical string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (strict).

        Raises ``ValueError`` naming the problem for any malformed input.
        """
        return cls(_parse_ops(text))

    @classmethod
    def from_index(cls, index: int) -> NB201Cell:
        """The cell stored under ``index`` in the bundled table (reads the table on every call;
        use ``NB201Space.cell`` for many look-ups)."""
        return NB201Space().cell(index)

    def to_string(self) -> str:
        """The canonical cell string, as used in the NAS-Bench-201 table."""
        nodes = []
        for dst in range(1, _NUM_NODES):
            parts = [f"{self.op(src, dst)}~{src}" for src in range(dst)]
            nodes.append("|" + "|".join(parts) + "|")
        return "+".join(nodes)

    def op(self, src: int, dst: int) -> str:
        """The operation on edge ``dst <- src``."""
        try:
            return self.ops[NB201_EDGES.index((src, dst))]
        except ValueError:
            raise ValueError(
                f"no edge {dst}<-{src}; edges are {[f'{d}<-{s}' for s, d in NB201_EDGES]}"
            ) from None

    def prune(self) -> NB201Cell:
        """This cell with every dead edge set to ``none``: an edge is dead when its source node
        gets no input (all edges into it are ``none`` or dead) or its target node reaches the
        output by no live edge. Dead edges feed nothing the output uses, or carry only a
        node's zeros (up to a conv's BatchNorm bias), so the pruned cell is the same network
        in effect, though the table still counts the parameters of dead convs.

        Cells with equal pruned forms are NAS-Bench-Suite-Zero's duplicates: the 15,625 cells
        have 9,445 pruned forms (each one a cell of the table, its own pruned form). Swapping
        nodes 1 and 2 when no edge joins them would merge these further, to 8,765 classes (as
        the pruned op-on-node graphs of ``NB201Space.to_graph``); ``prune`` does not.
        """
        live = [op != "none" for op in self.ops]
        reached = {0}
        for dst in range(1, _NUM_NODES):
            if any(live[e] and s in reached for e, (s, d) in enumerate(NB201_EDGES) if d == dst):
                reached.add(dst)
        useful = {_NUM_NODES - 1}
        for src in range(_NUM_NODES - 2, -1, -1):
            if any(live[e] and d in useful for e, (s, d) in enumerate(NB201_EDGES) if s == src):
                useful.add(src)
        ops = tuple(op if live[e] and s in reached and d in useful else "none"
                    for e, (op, (s, d)) in enumerate(zip(self.ops, NB201_EDGES, strict=True)))
        return self if ops == self.ops else NB201Cell(ops)

    def __str__(self) -> str:
        return self.to_string()


def _parse_ops(text: object) -> tuple[str, ...]:
    """The 6 ops of a canonical cell string; ``ValueError`` for anything else."""
    if not isinstance(text, str):
        raise ValueError(f"a NAS-Bench-201 cell string must be a str, got {type(text).__name__}")
    if any(ch.isspace() for ch in text):
        raise ValueError(f"cell string {text!r} contains whitespace")
    nodes = text.split("+")
    if len(nodes) != _NUM_NODES - 1:
        raise ValueError(
            f"cell string {text!r} has {len(nodes)} node(s) separated by '+', expected "
            f"{_NUM_NODES - 1}"
        )
    ops: list[str] = []
    for dst, node in enumerate(nodes, start=1):
        if len(node) < 2 or not (node.startswith("|") and node.endswith("|")):
            raise ValueError(
                f"node {dst} of cell string {text!r} is {node!r}: it must start and end with '|'"
            )
        entries = node[1:-1].split("|")
        if len(entries) != dst:
            raise ValueError(
                f"node {dst} of cell string {text!r} has {len(entries)} input(s) {entries!r}, "
                f"expected {dst} (one per earlier node)"
            )
        for src, entry in enumerate(entries):
            name, sep, idx = entry.partition("~")
            if not sep:
                raise ValueError(
                    f"input {entry!r} of node {dst} in {text!r} is not of the form 'op~index'"
                )
            if name not in NB201_OPS:
                raise ValueError(
                    f"unknown op {name!r} in node {dst} of {text!r}; allowed: {list(NB201_OPS)}"
                )
            if idx != str(src):
                raise ValueError(
                    f"input {entry!r} of node {dst} in {text!r} has input index {idx!r}, "
                    f"expected {src} (inputs are listed in order 0..{dst - 1})"
                )
            ops.append(name)
    # The string lists edges node by node, which is exactly NB201_EDGES order.
    return tuple(ops)


def _as_cell(cell: object) -> NB201Cell:
    """Accept an ``NB201Cell`` or its string; ``ValueError`` naming anything else."""
    if isinstance(cell, NB201Cell):
        return cell
    if isinstance(cell, str):
        return NB201Cell.from_string(cell)
    raise ValueError(f"expected an NB201Cell or a cell string, got {cell!r}")


# --------------------------------------------------------------------------------------------
# Op-on-node graph
# --------------------------------------------------------------------------------------------


def _full_graph(cell: NB201Cell) -> np.ndarray:
    """The fixed 8-node op-on-node adjacency (input, 6 edge nodes, output); ``none`` nodes
    keep their slot but get no connections."""
    n = len(NB201_EDGES) + 2
    adj = np.zeros((n, n), dtype=np.int64)
    out = n - 1
    live = [op != "none" for op in cell.ops]
    for a, (src_a, dst_a) in enumerate(NB201_EDGES):
        if not live[a]:
            continue
        if src_a == 0:
            adj[0, a + 1] = 1
        if dst_a == _NUM_NODES - 1:
            adj[a + 1, out] = 1
        for b, (src_b, _) in enumerate(NB201_EDGES):
            if live[b] and src_b == dst_a:
                adj[a + 1, b + 1] = 1
    return adj


def _full_labels(cell: NB201Cell) -> list[str]:
    return ["input", *cell.ops, "output"]


def _on_input_output_path(adj: np.ndarray) -> np.ndarray:
    """Which nodes of a topologically ordered DAG lie on a path from the first node to the last
    (the first and last always count)."""
    n = adj.shape[0]
    fwd = np.zeros(n, dtype=bool)
    bwd = np.zeros(n, dtype=bool)
    fwd[0] = bwd[-1] = True
    for j in range(1, n):
        fwd[j] = bool((fwd[:j] & (adj[:j, j] > 0)).any())
    for i in range(n - 2, -1, -1):
        bwd[i] = bool((bwd[i + 1:] & (adj[i, i + 1:] > 0)).any())
    live = fwd & bwd
    live[0] = live[-1] = True
    return live


# --------------------------------------------------------------------------------------------
# Parameter counting
# --------------------------------------------------------------------------------------------


def _check_positive(**values: Any) -> None:
    """ValueError naming the first of ``values`` that is not an int >= 1."""
    for key, value in values.items():
        check_int(key, value, minimum=1)


def count_nb201_params(
    cell: NB201Cell | str,
    channels: int = 16,
    cells_per_stage: int = 5,
    num_classes: int = 10,
    in_channels: int = 3,
) -> int:
    """The number of parameters of ``NB201Space().build(cell, ...)``, computed analytically.

    Every BatchNorm is affine (2 params per channel); convs have no bias; the classifier has one.
    For C=16, N=5, 10 classes, ``round(count / 1e6, 6)`` is the table's ``params_m`` except for
    204 cells whose published value is a mean over seed records that disagree (an upstream
    NAS-Bench-201 artifact, see D-X-Y/NATS-Bench#36).
    """
    cell = _as_cell(cell)
    _check_positive(
        channels=channels,
        cells_per_stage=cells_per_stage,
        num_classes=num_classes,
        in_channels=in_channels,
    )
    c = channels
    total = in_channels * c * 9 + 2 * c  # stem conv3x3 + BN
    for stage in range(3):
        width = c * 2**stage
        per_cell = sum(
            width * width * k * k + 2 * width
            for op in cell.ops
            if (k := _CONV_KERNEL.get(op)) is not None
        )
        total += cells_per_stage * per_cell
        if stage < 2:  # reduction block width -> 2*width
            w2 = 2 * width
            total += width * w2 * 9 + 2 * w2  # conv_a (stride 2) + BN
            total += w2 * w2 * 9 + 2 * w2  # conv_b + BN
            total += width * w2  # shortcut 1x1 conv after avg-pool
    last = 4 * c
    total += 2 * last  # final BN
    total += last * num_classes + num_classes  # linear classifier
    return total


# --------------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------------


class _Zero(nn.Module):
    """The ``none`` op: a zero tensor of the input's shape, detached from the graph."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


class _ReLUConvBN(nn.Sequential):
    """ReLU, bias-free conv (``stride``, same padding), affine BatchNorm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


def _make_op(op: str, channels: int) -> nn.Module:
    if op == "none":
        return _Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    if op in _CONV_KERNEL:
        return _ReLUConvBN(channels, channels, _CONV_KERNEL[op])
    raise ValueError(f"unknown op {op!r}; allowed: {list(NB201_OPS)}")


class NB201CellModule(nn.Module):
    """One searched cell: node j = sum over i < j of op_ij(node i); node 3 is the output.

    ``edges[k]`` is the op of ``NB201_EDGES[k]``; ``none`` edges give detached zeros, so ops
    whose result cannot reach node 3 (and, if no non-``none`` path 0 -> 3 exists, everything
    before the cell) get no gradient.
    """

    def __init__(self, cell: NB201Cell, channels: int) -> None:
        super().__init__()
        self.cell = cell
        self.edges = nn.ModuleList(_make_op(op, channels) for op in cell.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for dst in range(1, _NUM_NODES):
            total: torch.Tensor | None = None
            for k, (src, d) in enumerate(NB201_EDGES):
                if d != dst:
                    continue
                y = self.edges[k](nodes[src])
                total = y if total is None else total + y
            assert total is not None
            nodes.append(total)
        return nodes[-1]


class NB201Reduction(nn.Module):
    """Residual reduction block between stages: ResNet basic block (stride 2, width doubled)
    plus a shortcut of 2x2 average pooling and a bias-free 1x1 conv."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = _ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = _ReLUConvBN(c_out, c_out, 3)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


class NB201Network(nn.Module):
    """The NAS-Bench-201 macro network: stem, 3 stages of ``cells_per_stage`` cells (widths
    C, 2C, 4C) joined by residual reduction blocks, BN + ReLU, global pooling, classifier."""

    def __init__(
        self,
        cell: NB201Cell,
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        channels: int = 16,
        cells_per_stage: int = 5,
    ) -> None:
        super().__init__()
        _check_positive(
            num_classes=num_classes,
            in_channels=in_channels,
            channels=channels,
            cells_per_stage=cells_per_stage,
        )
        self.cell = cell
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        layers: list[nn.Module] = []
        width = channels
        for stage in range(3):
            if stage > 0:
                layers.append(NB201Reduction(width, 2 * width))
                width *= 2
            layers.extend(NB201CellModule(cell, width) for _ in range(cells_per_stage))
        self.layers = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``[batch, num_classes]``."""
        x = self.head(self.layers(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


# --------------------------------------------------------------------------------------------
# The search space
# --------------------------------------------------------------------------------------------


@register_space("nb201")
class NB201Space(SearchSpace):
    """NAS-Bench-201: 15,625 cells, indexed in the order of the bundled benchmark table.

    The index <-> cell mapping is read from the table lazily, once per instance.
    """

    name = "nb201"
    encodings = ("onehot", "adjacency")
    ops = NB201_OPS
    edges = NB201_EDGES
    model_presets: ClassVar[dict[str, dict[str, Any]]] = {
        # The NAS-Bench-201 network: C = 16, N = 5 cells per stage.
        "paper": {"channels": 16, "cells_per_stage": 5},
        "small": {"channels": 16, "cells_per_stage": 1},
        "tiny": {"channels": 8, "cells_per_stage": 1},
    }
    #: Op-on-node labels (``none`` edges are dropped from graphs), in the GCN's one-hot order.
    graph_ops = ("input", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3",
                 "output")
    #: Input, one node per edge, output.
    graph_nodes = len(NB201_EDGES) + 2

    def __init__(self) -> None:
        self._strings: tuple[str, ...] | None = None
        self._index_of: dict[str, int] | None = None

    # -- index <-> cell ------------------------------------------------------------------------

    def _load(self) -> tuple[tuple[str, ...], dict[str, int]]:
        if self._strings is None or self._index_of is None:
            table = read_table("nb201").sort_values("index")
            idx = table["index"].to_numpy()
            if not np.array_equal(idx, np.arange(len(table))):
                raise ValueError("the bundled nb201 table's index column is not 0..n-1")
            strings = tuple(str(s) for s in table["arch"])
            index_of = {s: i for i, s in enumerate(strings)}
            if len(index_of) != len(strings):
                raise ValueError("the bundled nb201 table lists some architecture twice")
            self._strings, self._index_of = strings, index_of
        return self._strings, self._index_of

    def __len__(self) -> int:
        return len(self._load()[0])

    def index(self, cell: NB201Cell | str) -> int:
        """The table index of ``cell`` (CellNotInTableError, a ValueError, if the bundled
        table has no such cell)."""
        text = _as_cell(cell).to_string()
        try:
            return self._load()[1][text]
        except KeyError:
            raise CellNotInTableError(f"cell {text!r} is not in the bundled nb201 table "
                                      f"of {len(self)} cells") from None

    def cell(self, index: int) -> NB201Cell:
        """The cell stored under table index ``index``."""
        strings = self._load()[0]
        index = check_int("nb201 index", index, minimum=0, maximum=len(strings) - 1)
        return NB201Cell.from_string(strings[index])

    def cell_id(self, cell: NB201Cell | str) -> str:
        """The table key of ``cell``: its index, as a string."""
        return str(self.index(cell))

    # -- sampling and mutation -----------------------------------------------------------------

    def sample(self, rng: RngLike = None) -> NB201Cell:
        """A cell drawn uniformly from all 5**6 cells."""
        picks = as_rng(rng).integers(len(NB201_OPS), size=len(NB201_EDGES))
        return NB201Cell(tuple(NB201_OPS[int(p)] for p in picks))

    def mutate(self, cell: NB201Cell | str, rng: RngLike = None) -> NB201Cell:
        """``cell`` with one uniformly chosen edge set to a different, uniformly chosen op."""
        cell = _as_cell(cell)
        gen = as_rng(rng)
        edge = int(gen.integers(len(NB201_EDGES)))
        choices = [op for op in NB201_OPS if op != cell.ops[edge]]
        ops = list(cell.ops)
        ops[edge] = choices[int(gen.integers(len(choices)))]
        return NB201Cell(tuple(ops))

    def neighbors(self, cell: NB201Cell | str) -> list[NB201Cell]:
        """The 24 cells one edit away: each edge set to each other op (the edits :meth:`mutate`
        draws from), edges in cell-string order, ops in ``NB201_OPS`` order."""
        cell = _as_cell(cell)
        return [NB201Cell(tuple(op if k == edge else o for k, o in enumerate(cell.ops)))
                for edge in range(len(NB201_EDGES)) for op in NB201_OPS if op != cell.ops[edge]]

    def choices(self) -> dict[str, tuple[str, ...]]:
        """One categorical choice per edge, ``edge_{src}{dst}`` in cell-string order, each
        one of ``NB201_OPS``."""
        return {f"edge_{src}{dst}": NB201_OPS for src, dst in NB201_EDGES}

    def from_choices(self, params: Mapping[str, Any]) -> NB201Cell:
        """The cell with these edge ops (every one of the 5**6 assignments is a cell)."""
        choices = self.choices()
        check_choices(choices, params)
        return NB201Cell(tuple(params[name] for name in choices))

    def to_choices(self, cell: NB201Cell | str) -> dict[str, str]:
        """The edge ops of ``cell`` by choice name."""
        return dict(zip(self.choices(), _as_cell(cell).ops, strict=True))

    # -- strings -------------------------------------------------------------------------------

    def parse(self, text: str) -> NB201Cell:
        """The cell written as ``text`` (strict; ``ValueError`` if malformed)."""
        return NB201Cell.from_string(text)

    def format(self, cell: NB201Cell | str) -> str:
        """The canonical string of ``cell``."""
        return _as_cell(cell).to_string()

    # -- encodings -----------------------------------------------------------------------------

    def to_graph(self, cell: NB201Cell | str, *,
                 prune: bool = True) -> tuple[np.ndarray, list[str]]:
        """The op-on-node DAG of ``cell`` (NAS-Bench-101 style) as (adjacency, node labels).

        Nodes: ``input``, one node per non-``none`` edge (cell-string order) labelled with its
        op, ``output``. Edge-node (i->j) feeds every edge-node (j->k); the input feeds edge-nodes
        leaving node 0; edge-nodes entering node 3 feed the output. ``none`` edges are dropped.
        ``prune=True`` (default, the graph the GCN reads) also drops nodes on no input-output
        path (their result never reaches the output, as NB101's pruned spec drops dead
        vertices), keeping ``input`` and ``output`` always; ``prune=False`` keeps them.
        """
        cell = _as_cell(cell)
        adj = _full_graph(cell)
        labels = _full_labels(cell)
        keep = [k for k, label in enumerate(labels) if label != "none"]
        if prune:
            live = _on_input_output_path(adj)
            keep = [k for k in keep if live[k]]
        return adj[np.ix_(keep, keep)], [labels[k] for k in keep]

    def encode(self, cell: NB201Cell | str, kind: str = "adjacency") -> np.ndarray:
        """A fixed-length float32 vector of ``cell``.

        ``onehot``: 6 edges x 5 ops (30). ``adjacency``: the op-on-node graph with all 8 nodes
        kept (``none`` nodes unconnected), the 8x8 adjacency flattened (64) followed by one-hot
        node labels over ``input, output, *ops`` (8 x 7 = 56), 120 values in all.
        """
        cell = _as_cell(cell)
        if kind == "onehot":
            out = np.zeros((len(NB201_EDGES), len(NB201_OPS)), dtype=np.float32)
            for edge, op in enumerate(cell.ops):
                out[edge, NB201_OPS.index(op)] = 1.0
            return out.ravel()
        if kind == "adjacency":
            adj = _full_graph(cell).astype(np.float32)
            labels = _full_labels(cell)
            onehot = np.zeros((len(labels), len(_GRAPH_LABELS)), dtype=np.float32)
            for node, label in enumerate(labels):
                onehot[node, _GRAPH_LABELS.index(label)] = 1.0
            return np.concatenate([adj.ravel(), onehot.ravel()])
        raise ValueError(f"unknown nb201 encoding {kind!r}; allowed: {list(self.encodings)}")

    # -- networks ------------------------------------------------------------------------------

    def build(  # type: ignore[override]  # named keywords, not the base's open **config
        self,
        cell: NB201Cell | str,
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        channels: int = 16,
        cells_per_stage: int = 5,
    ) -> NB201Network:
        """A freshly initialised NAS-Bench-201 network for ``cell`` (defaults: CIFAR-10 size)."""
        return NB201Network(
            _as_cell(cell),
            num_classes=num_classes,
            in_channels=in_channels,
            channels=channels,
            cells_per_stage=cells_per_stage,
        )

    def count_params(
        self,
        cell: NB201Cell | str,
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        channels: int = 16,
        cells_per_stage: int = 5,
    ) -> int:
        """Parameter count of ``build(cell, ...)`` without building it."""
        return count_nb201_params(
            cell,
            channels=channels,
            cells_per_stage=cells_per_stage,
            num_classes=num_classes,
            in_channels=in_channels,
        )
