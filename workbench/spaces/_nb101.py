"""The NAS-Bench-101 search space: validated cells, pruning, canonical hash, encodings, networks.

A cell is a DAG of 2..7 vertices (input, up to five ops, output) with at most 9 edges, given as a
strictly upper-triangular 0/1 adjacency matrix plus one op name per vertex (Ying et al., 2019).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from itertools import combinations, permutations
from typing import Any, ClassVar

import numpy as np
from nasbench_pytorch.model import ModelSpec, Network
from torch import nn

from workbench._checks import check_int, check_real, is_int, short_repr
from workbench.spaces._base import (
    RngLike,
    SearchSpace,
    as_rng,
    check_choices,
    register_space,
)

INPUT = "input"
OUTPUT = "output"
CONV3X3 = "conv3x3-bn-relu"
CONV1X1 = "conv1x1-bn-relu"
MAXPOOL3X3 = "maxpool3x3"
#: The intermediate ops in NAS-Bench-101's canonical order (the index is the op's hash label).
NB101_OPS: tuple[str, ...] = (CONV3X3, CONV1X1, MAXPOOL3X3)
#: All vertex labels, in the order of the one-hot op block of the "adjacency" encoding.
NB101_ALL_OPS: tuple[str, ...] = (INPUT, CONV3X3, CONV1X1, MAXPOOL3X3, OUTPUT)
MAX_VERTICES = 7
MAX_EDGES = 9
#: 21 upper-triangle entries of the padded 7x7 matrix + a 7x5 one-hot op block.
ADJACENCY_ENCODING_LENGTH = MAX_VERTICES * (MAX_VERTICES - 1) // 2 + MAX_VERTICES * 5
#: One slot per op sequence of length 0..5 over the 3 intermediate ops: sum_{i=0..5} 3^i = 364.
PATH_ENCODING_LENGTH = sum(len(NB101_OPS) ** i for i in range(MAX_VERTICES - 1))

Adjacency = tuple[tuple[int, ...], ...]


def _normalize_matrix(matrix: Any) -> Adjacency:
    """Check ``matrix`` (nested lists/tuples or a 2-D integer array) and return it as int tuples."""
    if isinstance(matrix, np.ndarray):
        if matrix.ndim != 2:
            raise ValueError(f"NB-101 matrix must be 2-D and square, got shape {matrix.shape}")
        if matrix.dtype.kind not in "iuO":
            raise ValueError(
                f"NB-101 matrix must hold the ints 0 and 1, got an array of dtype {matrix.dtype}"
            )
        rows: list[Any] = list(matrix)
    elif isinstance(matrix, (list, tuple)):
        rows = list(matrix)
    else:
        raise ValueError(
            f"NB-101 matrix must be a list of lists or a 2-D numpy array, got {short_repr(matrix)}"
        )
    n = len(rows)
    for i, row in enumerate(rows):
        if isinstance(row, np.ndarray) and row.ndim == 1:
            rows[i] = row = list(row)
        if not isinstance(row, (list, tuple)):
            raise ValueError(f"NB-101 matrix row {i} must be a list of 0/1 ints, "
                             f"got {short_repr(row)}")
        if len(row) != n:
            raise ValueError(
                f"NB-101 matrix must be square: row {i} has {len(row)} entries, expected {n}"
            )
    if not 2 <= n <= MAX_VERTICES:
        raise ValueError(f"NB-101 cells have 2..{MAX_VERTICES} vertices, got a {n}x{n} matrix")
    for i, row in enumerate(rows):
        for j, x in enumerate(row):
            if not is_int(x) or x not in (0, 1):
                raise ValueError(
                    f"NB-101 matrix entries must be the ints 0 or 1; entry [{i}][{j}] is "
                    f"{short_repr(x)}"
                )
            if x and j <= i:
                raise ValueError(
                    f"NB-101 matrix must be strictly upper-triangular (edges go from lower to "
                    f"higher vertex), but entry [{i}][{j}] is 1"
                )
    adjacency = tuple(tuple(int(x) for x in row) for row in rows)
    edges = sum(map(sum, adjacency))
    if edges > MAX_EDGES:
        raise ValueError(f"NB-101 cells have at most {MAX_EDGES} edges, got {edges}")
    return adjacency


def _normalize_ops(ops: Any, n: int) -> tuple[str, ...]:
    """Check the op list of an ``n``-vertex cell and return it as a tuple of plain ``str``."""
    if isinstance(ops, np.ndarray) and ops.ndim == 1:
        ops = ops.tolist()
    if not isinstance(ops, (list, tuple)):
        raise ValueError(f"NB-101 ops must be a list of op names, got {short_repr(ops)}")
    if len(ops) != n:
        raise ValueError(
            f"NB-101 ops must have one name per vertex ({n}, the matrix size), got {len(ops)} ops"
        )
    for i, op in enumerate(ops):
        if not isinstance(op, str):
            raise ValueError(f"NB-101 op {i} must be a string, got {short_repr(op)}")
    if ops[0] != INPUT:
        raise ValueError(f"NB-101 op 0 must be {INPUT!r}, got {short_repr(ops[0])}")
    if ops[-1] != OUTPUT:
        raise ValueError(f"NB-101 last op must be {OUTPUT!r}, got {short_repr(ops[-1])}")
    for i, op in enumerate(ops[1:-1], start=1):
        if op not in NB101_OPS:
            raise ValueError(
                f"NB-101 op {i} is {short_repr(op)}; intermediate ops must be one of "
                f"{list(NB101_OPS)}"
            )
    return tuple(str(op) for op in ops)


def _live_vertices(adjacency: Sequence[Sequence[int]]) -> list[int] | None:
    """Vertices on some input→output path (sorted), or ``None`` if output is unreachable."""
    n = len(adjacency)

    def reach(start: int, step: Any) -> set[int]:
        seen, stack = {start}, [start]
        while stack:
            v = stack.pop()
            for w in range(n):
                if step(v, w) and w not in seen:
                    seen.add(w)
                    stack.append(w)
        return seen

    from_input = reach(0, lambda v, w: adjacency[v][w])
    if n - 1 not in from_input:
        return None
    to_output = reach(n - 1, lambda v, w: adjacency[w][v])
    return sorted(from_input & to_output)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def _module_hash(adjacency: Adjacency, labels: Sequence[int]) -> str:
    """NAS-Bench-101's isomorphism-invariant module hash (``graph_util.hash_module``).

    Iterated md5 neighbourhood hashing, written on plain Python ints so numpy-2 scalar reprs
    (``np.int64(1)``) can never leak into the hashed strings.
    """
    n = len(adjacency)
    in_deg = [sum(adjacency[u][v] for u in range(n)) for v in range(n)]
    out_deg = [sum(adjacency[v]) for v in range(n)]
    hashes = [_md5(str((out_deg[v], in_deg[v], int(labels[v])))) for v in range(n)]
    for _ in range(n):
        hashes = [
            _md5(
                "".join(sorted(hashes[u] for u in range(n) if adjacency[u][v]))
                + "|"
                + "".join(sorted(hashes[w] for w in range(n) if adjacency[v][w]))
                + "|"
                + hashes[v]
            )
            for v in range(n)
        ]
    return _md5(str(sorted(hashes)))


def _parse_matrix_string(text: Any) -> list[list[int]]:
    """``"0110/0001/..."`` (rows joined by '/') as nested int lists; only '0'/'1' allowed."""
    if not isinstance(text, str):
        raise ValueError(f"NB-101 matrix string must be a str, got {short_repr(text)}")
    rows = text.split("/")
    for row in rows:
        if not row or set(row) - {"0", "1"}:
            raise ValueError(
                f"NB-101 matrix string rows must be non-empty runs of '0'/'1' joined by '/', "
                f"got {short_repr(text)}"
            )
    return [[int(c) for c in row] for row in rows]


def _parse_ops_string(text: Any) -> list[str]:
    """``"input,conv3x3-bn-relu,...,output"`` as a list of op names."""
    if not isinstance(text, str):
        raise ValueError(f"NB-101 ops string must be a str, got {short_repr(text)}")
    return text.split(",")


@dataclass(frozen=True, init=False)
class NB101Cell:
    """An immutable, hashable, validated NAS-Bench-101 cell (adjacency matrix + vertex ops).

    Cells with dangling vertices (off every input→output path) or a disconnected output are
    allowed; ``prune()``/``hash`` drop the former and reject the latter.
    """

    adjacency: Adjacency
    ops: tuple[str, ...]

    def __init__(self, matrix: Any, ops: Any) -> None:
        adjacency = _normalize_matrix(matrix)
        object.__setattr__(self, "adjacency", adjacency)
        object.__setattr__(self, "ops", _normalize_ops(ops, len(adjacency)))

    @property
    def matrix(self) -> np.ndarray:
        """The adjacency matrix as a fresh ``int64`` array (a copy; the cell never changes)."""
        return np.array(self.adjacency, dtype=np.int64)

    @property
    def num_vertices(self) -> int:
        """Number of vertices, input and output included."""
        return len(self.adjacency)

    @property
    def num_edges(self) -> int:
        """Number of edges (ones in the matrix)."""
        return sum(map(sum, self.adjacency))

    @property
    def is_connected(self) -> bool:
        """Whether some path leads from the input to the output."""
        return _live_vertices(self.adjacency) is not None

    def prune(self) -> NB101Cell:
        """This cell without the vertices that lie on no input→output path (as NAS-Bench-101 does).

        Raises ValueError when the input and output are disconnected (no network exists).
        """
        live = _live_vertices(self.adjacency)
        if live is None:
            raise ValueError(f"NB-101 cell {self.to_string()!r} has no input→output path")
        if len(live) == self.num_vertices:
            return self
        matrix = [[self.adjacency[i][j] for j in live] for i in live]
        return NB101Cell(matrix, [self.ops[i] for i in live])

    @cached_property
    def hash(self) -> str:
        """The canonical NAS-Bench-101 module hash of the pruned cell (the benchmark's key)."""
        pruned = self.prune()
        labels = [-1, *(NB101_OPS.index(op) for op in pruned.ops[1:-1]), -2]
        return _module_hash(pruned.adjacency, labels)

    def to_string(self) -> str:
        """The cell as ``"0110/0001/0001/0000|input,conv3x3-bn-relu,...,output"`` (table format)."""
        matrix = "/".join("".join(str(x) for x in row) for row in self.adjacency)
        return f"{matrix}|{','.join(self.ops)}"

    @classmethod
    def from_string(cls, text: str) -> NB101Cell:
        """The cell written by ``to_string``; ValueError for anything else."""
        if not isinstance(text, str) or text.count("|") != 1:
            raise ValueError(
                f"NB-101 cell string must be 'matrix rows joined by /|comma-separated ops', "
                f"got {short_repr(text)}"
            )
        matrix, ops = text.split("|")
        return cls.from_table_row(matrix, ops)

    @classmethod
    def from_table_row(cls, matrix_str: str, ops_str: str) -> NB101Cell:
        """The cell of a benchmark table row (its ``matrix`` and ``ops`` columns)."""
        return cls(_parse_matrix_string(matrix_str), _parse_ops_string(ops_str))


def _check_cell(cell: Any) -> NB101Cell:
    """``cell`` if it is an ``NB101Cell``; a string gets a ValueError pointing at ``parse``."""
    if isinstance(cell, str):
        raise ValueError(f"NB101 cells are NB101Cell objects, not strings; use "
                         f"space.parse(text) for {short_repr(cell)}")
    if not isinstance(cell, NB101Cell):
        raise ValueError(f"expected an NB101Cell, got {short_repr(cell)}")
    return cell


@register_space("nb101")
class NB101Space(SearchSpace):
    """The NAS-Bench-101 space: cells of up to 7 vertices / 9 edges over 3 ops (423,624 graphs)."""

    name = "nb101"
    encodings = ("adjacency", "path")
    model_presets: ClassVar[dict[str, dict[str, Any]]] = {
        # The NAS-Bench-101 CIFAR-10 network: stem 128, 3 stacks x 3 cells.
        "paper": {"stem_channels": 128, "num_stacks": 3, "cells_per_stack": 3},
        # Reduced: stem 16, one cell per stack (about 50x fewer MACs). These train for a few
        # hundred mini-batches, so BatchNorm uses torch's usual momentum 0.1: with NAS-Bench-101's
        # 0.997 (torch 0.003) the running statistics would still be ~40% initial values after
        # 300 steps and held-out accuracy would be meaningless.
        "small": {"stem_channels": 16, "num_stacks": 3, "cells_per_stack": 1,
                  "bn_momentum": 0.1},
        "tiny": {"stem_channels": 8, "num_stacks": 3, "cells_per_stack": 1, "bn_momentum": 0.1},
    }
    #: Vertex labels in the GCN's one-hot order (1x1 before 3x3, unlike ``NB101_ALL_OPS``; kept
    #: so that saved graph predictors still load).
    graph_ops = (INPUT, CONV1X1, CONV3X3, MAXPOOL3X3, OUTPUT)
    graph_nodes = MAX_VERTICES

    def sample(self, rng: RngLike = None, *, method: str = "uniform") -> NB101Cell:
        """A random valid, pruned cell.

        ``"uniform"`` (default): every one of the 423,624 distinct cells (hashes) is equally likely.
        ``"nasbench"``: NAS-Bench-101's own ``random_spec`` (uniform random 7x7 upper-triangular
        matrix and ops, redrawn until connected with <= 9 edges after pruning, then pruned); it
        favours small cells heavily (~0.3% have 7 vertices, against ~84% of distinct cells).
        """
        gen = as_rng(rng)
        if method == "uniform":
            return _sample_uniform(gen)
        if method == "nasbench":
            return _sample_like_nasbench_api(gen)
        raise ValueError(f"unknown NB-101 sampling method {method!r}; use 'uniform' or 'nasbench'")

    def nasbench_probability(self, cell: NB101Cell) -> float:
        """The exact probability that ``sample(method="nasbench")`` (NAS-Bench-101's own
        ``random_spec``) returns a cell with the hash of ``cell``.

        ``random_spec`` draws 21 fair edge bits and 5 uniform ops and redraws until the pruned
        spec is connected with at most 9 edges, so one written pruned graph (matrix, ops) of k
        vertices comes out with probability (raw matrices that prune to that matrix) / (raw
        matrices accepted) / 3**(k - 2); this sums that over every way of writing the cell's
        graph. The 2**21 raw matrices are counted once per process (about 1 s); a Monte Carlo
        estimate would need ~1e9 draws, as a 7-vertex cell has a chance of about 5e-9.
        ValueError (from ``prune``) if ``cell`` has no input->output path.
        """
        pruned = _check_cell(cell).prune()
        counts, accepted = _nasbench_matrix_counts()
        k = pruned.num_vertices
        total = sum(counts.get((k, code), 0) for code in _labelled_matrix_codes(pruned))
        return total / accepted / len(NB101_OPS) ** (k - 2)

    def mutate(self, cell: NB101Cell, rng: RngLike = None) -> NB101Cell:
        """A uniformly chosen single edit (edge flip or intermediate-op change) of ``cell`` that
        stays valid and connected and changes the hash.

        The edit is made on ``cell`` as given and the result is not pruned, so vertices left
        dangling stay available to later edits. ValueError if no such edit exists (only the
        2-vertex input→output cell).
        """
        cell = _check_cell(cell)
        edits = _single_edits(cell)
        for k in as_rng(rng).permutation(len(edits)):
            candidate = _apply_edit(cell, edits[int(k)])
            if candidate is not None:
                return candidate
        raise ValueError(
            f"NB-101 cell {cell.to_string()!r} has no single edit that keeps it valid and "
            "connected and changes its hash"
        )

    def neighbors(self, cell: NB101Cell) -> list[NB101Cell]:
        """Every cell one edit away (the edits :meth:`mutate` draws from: an edge flip or an
        intermediate op change that keeps the cell valid and connected), one per hash, in edit
        order (edges row by row, then ops); the cell's own hash is never among them."""
        cell = _check_cell(cell)
        out: dict[str, NB101Cell] = {}
        for edit in _single_edits(cell):
            candidate = _apply_edit(cell, edit)
            if candidate is not None:
                out.setdefault(candidate.hash, candidate)
        return list(out.values())

    def choices(self) -> dict[str, tuple[Any, ...]]:
        """The ops of the 5 intermediate vertices (``op_1`` .. ``op_5``, each one of
        ``NB101_OPS``) and the 21 edges of the 7-vertex upper triangle (``edge_{i}{j}``, 0 or
        1), as NAS-Bench-101's own ``random_spec`` draws them. Most assignments are no cell:
        more than 9 edges, or no input→output path (:meth:`from_choices` says which)."""
        out: dict[str, tuple[Any, ...]] = {f"op_{v}": NB101_OPS
                                           for v in range(1, MAX_VERTICES - 1)}
        out |= {f"edge_{i}{j}": (0, 1) for i, j in combinations(range(MAX_VERTICES), 2)}
        return out

    def from_choices(self, params: Mapping[str, Any]) -> NB101Cell:
        """The 7-vertex cell of these choices (unpruned; vertices on no input→output path are
        dropped by ``prune``/``hash``). ValueError when it has more than 9 edges or its output
        is not reached from its input."""
        check_choices(self.choices(), params)
        n = MAX_VERTICES
        matrix = [[int(params[f"edge_{i}{j}"]) if j > i else 0 for j in range(n)]
                  for i in range(n)]
        ops = [INPUT, *(params[f"op_{v}"] for v in range(1, n - 1)), OUTPUT]
        cell = NB101Cell(matrix, ops)  # ValueError beyond 9 edges
        if not cell.is_connected:
            raise ValueError("these choices give no input→output path")
        return cell

    def to_choices(self, cell: NB101Cell) -> dict[str, Any]:
        """The choices of ``cell``'s pruned graph on 7 vertices: its k vertices on the first
        k - 1 and the last, the unused ones without edges (op conv3x3-bn-relu), so that
        ``from_choices`` gives a cell of the same hash."""
        pruned = _check_cell(cell).prune()
        k, n = pruned.num_vertices, MAX_VERTICES
        where = [*range(k - 1), n - 1]  # pruned vertex -> position among the 7
        matrix = [[0] * n for _ in range(n)]
        for a in range(k):
            for b in range(k):
                matrix[where[a]][where[b]] = pruned.adjacency[a][b]
        ops = [CONV3X3] * n
        for a in range(1, k - 1):
            ops[where[a]] = pruned.ops[a]
        out: dict[str, Any] = {f"op_{v}": ops[v] for v in range(1, n - 1)}
        out |= {f"edge_{i}{j}": matrix[i][j] for i, j in combinations(range(n), 2)}
        return out

    def encode(self, cell: NB101Cell, kind: str = "adjacency") -> np.ndarray:
        """A fixed-length float vector of the pruned cell.

        ``"adjacency"`` (length 56): the 21 strictly-upper-triangle entries (row-major) of the
        7x7 matrix, then a 7x5 one-hot op block over ``NB101_ALL_OPS``. Cells with fewer than 7
        vertices are padded by inserting empty vertices just before the output, so the output is
        always vertex 6; padding vertices have no edges and an all-zero one-hot row.
        ``"path"`` (length 364): the BANANAS path encoding, one slot per distinct sequence of
        intermediate ops along an input→output path (slot = sum_i 3^i * (op_i + 1)).
        """
        pruned = _check_cell(cell).prune()
        if kind == "adjacency":
            return _adjacency_encoding(pruned)
        if kind == "path":
            return _path_encoding(pruned)
        raise ValueError(f"unknown NB-101 encoding {kind!r}; available: {list(self.encodings)}")

    def to_graph(self, cell: NB101Cell, *, prune: bool = True) -> tuple[np.ndarray, list[str]]:
        """(adjacency, vertex ops) of ``cell``: the pruned spec (what NAS-Bench-101 trains), or
        the cell as written with ``prune=False``. ValueError if pruning finds no path."""
        cell = _check_cell(cell)
        graph = cell.prune() if prune else cell
        return graph.matrix, list(graph.ops)

    def parse(self, text: str) -> NB101Cell:
        """The cell written as ``text`` (``NB101Cell.from_string``)."""
        return NB101Cell.from_string(text)

    def format(self, cell: NB101Cell) -> str:
        """The string of ``cell`` in the benchmark table's format (``NB101Cell.to_string``)."""
        return _check_cell(cell).to_string()

    def cell_id(self, cell: NB101Cell) -> str:
        """The NAS-Bench-101 module hash of ``cell`` (the ``hash`` column of the table)."""
        return _check_cell(cell).hash

    def build(  # type: ignore[override]  # named keywords, not the base's open **config
        self,
        cell: NB101Cell,
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        stem_channels: int = 128,
        num_stacks: int = 3,
        cells_per_stack: int = 3,
        bn_momentum: float = 0.003,
    ) -> nn.Module:
        """A fresh ``nasbench_pytorch`` Network for ``cell`` (defaults: the paper's CIFAR-10 net).

        The cell is validated and pruned here, so nasbench-pytorch's own spec handling never sees
        an invalid graph. ``bn_momentum`` is set on every BatchNorm afterwards: nasbench-pytorch
        hands TF's decay 0.997 to torch as ``momentum`` (and leaves torch's 0.1 in the ops),
        but torch's momentum is the weight of the *new* batch, so TF's 0.997 is torch's 0.003.
        """
        pruned = _check_cell(cell).prune()
        config = {
            "num_labels": check_int("num_classes", num_classes, minimum=1),
            "in_channels": check_int("in_channels", in_channels, minimum=1),
            "stem_out_channels": check_int("stem_channels", stem_channels, minimum=1),
            "num_stacks": check_int("num_stacks", num_stacks, minimum=1),
            "num_modules_per_stack": check_int("cells_per_stack", cells_per_stack, minimum=1),
        }
        momentum = check_real("bn_momentum", bn_momentum, minimum=0, maximum=1,
                              inclusive="right")
        spec = ModelSpec(pruned.matrix, list(pruned.ops))
        network = Network(spec, momentum=momentum, **config)
        for module in network.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = momentum
        return network


#: How many k-vertex strictly upper-triangular 0/1 matrices have <= 9 edges and every vertex on an
#: input→output path (already pruned), for k = 2..7 -- counted by enumeration, checked in the tests.
_FULL_DAG_COUNTS: dict[int, int] = {2: 1, 3: 2, 4: 10, 5: 121, 6: 1545, 7: 4793}


def _single_edits(cell: NB101Cell) -> list[tuple[int, int | str]]:
    """The single edits of ``cell``: ``(i, j)`` flips edge i->j, ``(v, op)`` sets vertex v's op."""
    n = cell.num_vertices
    edits: list[tuple[int, int | str]] = [(i, j) for i, j in combinations(range(n), 2)]
    edits += [(v, op) for v in range(1, n - 1) for op in NB101_OPS if op != cell.ops[v]]
    return edits


def _apply_edit(cell: NB101Cell, edit: tuple[int, int | str]) -> NB101Cell | None:
    """``cell`` with ``edit`` made (not pruned), or None when the result has more than 9 edges,
    is disconnected or has ``cell``'s own hash."""
    where, what = edit
    matrix = [list(row) for row in cell.adjacency]
    ops = list(cell.ops)
    if isinstance(what, str):
        ops[where] = what
    else:
        matrix[where][what] ^= 1
        if sum(map(sum, matrix)) > MAX_EDGES:
            return None
    candidate = NB101Cell(matrix, ops)
    if not candidate.is_connected:
        return None
    if cell.is_connected and candidate.hash == cell.hash:
        return None
    return candidate


def _sample_like_nasbench_api(gen: np.random.Generator) -> NB101Cell:
    """NAS-Bench-101's ``random_spec``: rejection over uniform 7-vertex graphs, then prune."""
    upper = np.triu(np.ones((MAX_VERTICES, MAX_VERTICES), dtype=bool), 1)
    while True:
        bits = gen.integers(0, 2, size=(MAX_VERTICES, MAX_VERTICES))
        adjacency = np.where(upper, bits, 0).tolist()
        middle = gen.integers(0, len(NB101_OPS), size=MAX_VERTICES - 2)
        ops = [INPUT, *(NB101_OPS[i] for i in middle), OUTPUT]
        live = _live_vertices(adjacency)
        if live is None:
            continue
        matrix = [[adjacency[i][j] for j in live] for i in live]
        if sum(map(sum, matrix)) <= MAX_EDGES:
            return NB101Cell(matrix, [ops[i] for i in live])


def _upper_code(mats: np.ndarray) -> np.ndarray:
    """The strictly-upper-triangle bits of ``[..., k, k]`` 0/1 matrices as one int each (entry
    p of the row-major upper triangle is bit p)."""
    rows, cols = np.triu_indices(mats.shape[-1], 1)
    weights = np.left_shift(np.int64(1), np.arange(rows.size, dtype=np.int64))
    return (mats[..., rows, cols].astype(np.int64) * weights).sum(axis=-1)


@cache
def _nasbench_matrix_counts() -> tuple[dict[tuple[int, int], int], int]:
    """How many of the 2**21 raw 7x7 matrices of ``random_spec`` prune to each pruned matrix
    (key: vertex count, ``_upper_code``) with at most 9 edges; and how many are accepted."""
    v = MAX_VERTICES
    rows, cols = np.triu_indices(v, 1)
    raw = np.arange(1 << rows.size, dtype=np.int64)
    pos = {(int(i), int(j)): p for p, (i, j) in enumerate(zip(rows, cols, strict=True))}

    def bit(i: int, j: int) -> np.ndarray:
        return ((raw >> pos[i, j]) & 1).astype(bool)

    fwd = np.zeros((v, raw.size), dtype=bool)
    fwd[0] = True
    for j in range(1, v):
        for i in range(j):
            fwd[j] |= fwd[i] & bit(i, j)
    bwd = np.zeros((v, raw.size), dtype=bool)
    bwd[v - 1] = True
    for i in range(v - 2, -1, -1):
        for j in range(i + 1, v):
            bwd[i] |= bwd[j] & bit(i, j)
    connected = fwd[v - 1]
    live = fwd & bwd
    mask = (live.astype(np.int64) << np.arange(v, dtype=np.int64)[:, None]).sum(axis=0)
    counts: dict[tuple[int, int], int] = {}
    for m in np.unique(mask[connected]):
        keep = [u for u in range(v) if (int(m) >> u) & 1]
        sel = raw[connected & (mask == m)]
        code = np.zeros(sel.size, dtype=np.int64)
        edges = np.zeros(sel.size, dtype=np.int64)
        for p, (a, b) in enumerate(combinations(keep, 2)):  # row-major, as _upper_code
            on = (sel >> pos[a, b]) & 1
            code |= on << p
            edges += on
        codes, n = np.unique(code[edges <= MAX_EDGES], return_counts=True)
        for c, k in zip(codes.tolist(), n.tolist(), strict=True):
            counts[len(keep), c] = counts.get((len(keep), c), 0) + k
    return counts, sum(counts.values())


def _labelled_matrix_codes(cell: NB101Cell) -> list[int]:
    """``_upper_code`` of the matrix of every distinct (matrix, ops) writing of the pruned graph
    ``cell`` (relabellings of the inner vertices that keep the matrix upper-triangular)."""
    n = cell.num_vertices
    orders = np.array([(0, *perm, n - 1) for perm in permutations(range(1, n - 1))])
    mats = cell.matrix[orders[:, :, None], orders[:, None, :]]
    upper = ~np.tril(mats, -1).any(axis=(1, 2))
    labels = np.array([NB101_ALL_OPS.index(op) for op in cell.ops])[orders]
    forms = np.unique(np.concatenate([_upper_code(mats)[:, None], labels], axis=1)[upper], axis=0)
    return [int(c) for c in forms[:, 0]]


def _random_full_dag(k: int, gen: np.random.Generator, batch: int = 1024) -> list[list[int]]:
    """A uniform random pruned k-vertex matrix with <= 9 edges (rejection, ``batch`` at a time)."""
    rows, cols = np.triu_indices(k, 1)
    while True:
        bits = gen.integers(0, 2, size=(batch, rows.size), dtype=np.int8)
        mats = np.zeros((batch, k, k), dtype=np.int8)
        mats[:, rows, cols] = bits
        ok = (
            (bits.sum(axis=1) <= MAX_EDGES)
            & mats[:, :-1, :].any(axis=2).all(axis=-1)  # every non-output vertex has an out-edge
            & mats[:, :, 1:].any(axis=1).all(axis=-1)  # every non-input vertex has an in-edge
        )
        hits = np.flatnonzero(ok)
        if hits.size:
            return mats[hits[0]].astype(int).tolist()


def _num_labellings(cell: NB101Cell) -> int:
    """How many distinct (upper-triangular matrix, ops) pairs write the pruned graph of ``cell``.

    Counts the relabellings of the intermediate vertices that keep the matrix upper-triangular.
    """
    n = cell.num_vertices
    orders = np.array([(0, *perm, n - 1) for perm in permutations(range(1, n - 1))])
    mats = cell.matrix[orders[:, :, None], orders[:, None, :]]  # mats[p, i, j] = adj[o[i], o[j]]
    upper = ~np.tril(mats, -1).any(axis=(1, 2))
    labels = np.array([NB101_ALL_OPS.index(op) for op in cell.ops])[orders]
    forms = np.concatenate([mats.reshape(len(orders), -1), labels], axis=1)[upper]
    return len(np.unique(forms, axis=0))


def _sample_uniform(gen: np.random.Generator) -> NB101Cell:
    """A cell uniform over distinct graphs (hashes): uniform over labelled pruned graphs, each kept
    with probability 1 / (its number of labellings), so every isomorphism class weighs the same.
    """
    sizes = sorted(_FULL_DAG_COUNTS)
    weights = np.array([_FULL_DAG_COUNTS[k] * len(NB101_OPS) ** (k - 2) for k in sizes], float)
    while True:
        k = sizes[int(gen.choice(len(sizes), p=weights / weights.sum()))]
        middle = gen.integers(0, len(NB101_OPS), size=k - 2)
        cell = NB101Cell(_random_full_dag(k, gen), [INPUT, *(NB101_OPS[i] for i in middle), OUTPUT])
        if gen.random() * _num_labellings(cell) < 1.0:
            return cell


def _adjacency_encoding(pruned: NB101Cell) -> np.ndarray:
    """The padded upper-triangle + one-hot op vector of a pruned cell (see ``encode``)."""
    n = pruned.num_vertices
    slot = [*range(n - 1), MAX_VERTICES - 1]  # vertex -> padded index; output goes last
    matrix = np.zeros((MAX_VERTICES, MAX_VERTICES))
    onehot = np.zeros((MAX_VERTICES, len(NB101_ALL_OPS)))
    for v in range(n):
        onehot[slot[v], NB101_ALL_OPS.index(pruned.ops[v])] = 1.0
        for w in range(v + 1, n):
            matrix[slot[v], slot[w]] = pruned.adjacency[v][w]
    upper = matrix[np.triu_indices(MAX_VERTICES, 1)]
    return np.concatenate([upper, onehot.ravel()])


def _path_encoding(pruned: NB101Cell) -> np.ndarray:
    """The BANANAS path indicator vector of a pruned cell (see ``encode``)."""
    n = pruned.num_vertices
    encoding = np.zeros(PATH_ENCODING_LENGTH)
    # Depth-first over input→output paths, carrying each path's slot index and length so far.
    stack = [(0, 0, 0)]
    while stack:
        v, index, length = stack.pop()
        for w in range(v + 1, n):
            if not pruned.adjacency[v][w]:
                continue
            if w == n - 1:
                encoding[index] = 1.0
            else:
                op = NB101_OPS.index(pruned.ops[w])
                stack.append((w, index + len(NB101_OPS) ** length * (op + 1), length + 1))
    return encoding
