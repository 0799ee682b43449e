"""Tests of the NAS-Bench-101 space: validation, hash, sampling, mutation, encodings, networks."""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from nasbench_pytorch.model.model import Cell, Placeholder
from torch import nn

from workbench._tables import read_table
from workbench.spaces import (
    NB101_OPS,
    NB101Cell,
    NB101Space,
    count_parameters,
    get_space,
    parameterised_layers,
    trainable_parameters,
)
from workbench.spaces._nb101 import (
    _FULL_DAG_COUNTS,
    ADJACENCY_ENCODING_LENGTH,
    NB101_ALL_OPS,
    PATH_ENCODING_LENGTH,
    _num_labellings,
)

SPACE = NB101Space()
TINY = {"stem_channels": 8, "num_stacks": 1, "cells_per_stack": 1}
C3, C1, MP = NB101_OPS
#: Distinct cells (hashes) per vertex count, from enumerating the whole space once offline
#: (sum 423,624, the NAS-Bench-101 paper's count).
CLASSES_PER_SIZE = {2: 1, 3: 6, 4: 84, 5: 2441, 6: 62010, 7: 359082}

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def table() -> Any:
    return read_table("nb101_1k")


@pytest.fixture(scope="module")
def table_cells(table: Any) -> list[NB101Cell]:
    return [
        NB101Cell.from_table_row(m, o) for m, o in zip(table["matrix"], table["ops"], strict=True)
    ]


@st.composite
def cells(draw: st.DrawFn, connected: bool = True) -> NB101Cell:
    """Valid cells, possibly with dangling vertices, plus cells from ``sample``."""
    if draw(st.booleans()):
        return SPACE.sample(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(2, 7))
    pairs = list(itertools.combinations(range(n), 2))
    edges = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=8))
    matrix = [[0] * n for _ in range(n)]
    for i, j in edges:
        matrix[i][j] = 1
    ops = ["input", *draw(st.lists(st.sampled_from(NB101_OPS), min_size=n - 2, max_size=n - 2))]
    cell = NB101Cell(matrix, [*ops, "output"])
    if connected and not cell.is_connected:
        matrix[0][n - 1] = 1
        cell = NB101Cell(matrix, [*ops, "output"])
    return cell


def chain(*ops: str) -> NB101Cell:
    """input → ops... → output as a simple path."""
    n = len(ops) + 2
    matrix = [[int(j == i + 1) for j in range(n)] for i in range(n)]
    return NB101Cell(matrix, ["input", *ops, "output"])


# --- the hash -------------------------------------------------------------------------------


def test_table_hashes_are_reproduced_and_distinct(table: Any, table_cells: list[NB101Cell]):
    assert [c.hash for c in table_cells] == list(table["hash"])
    assert len({c.hash for c in table_cells}) == len(table_cells) == 1000


def test_table_strings_round_trip(table: Any, table_cells: list[NB101Cell]):
    for m, o, cell in zip(table["matrix"], table["ops"], table_cells, strict=True):
        assert cell.to_string() == f"{m}|{o}"
        assert NB101Cell.from_string(cell.to_string()) == cell


@FAST
@given(cells(), st.data())
def test_hash_invariant_under_relabelling(cell: NB101Cell, data: st.DataObject):
    n, adj = cell.num_vertices, cell.adjacency
    priority = data.draw(st.permutations(list(range(1, n - 1))))
    order, left = [0], set(range(1, n - 1))
    while left:  # a random topological order of the intermediate vertices
        ready = [v for v in left if all(not adj[u][v] or u in order for u in range(n))]
        order.append(min(ready, key=priority.index))
        left.remove(order[-1])
    order.append(n - 1)
    relabelled = NB101Cell(cell.matrix[np.ix_(order, order)], [cell.ops[v] for v in order])
    assert relabelled.hash == cell.hash
    assert relabelled.prune().num_edges == cell.prune().num_edges


def test_hash_separates_ops_and_edges():
    assert chain(C3).hash != chain(C1).hash != chain(MP).hash
    assert chain(C3, C1).hash != chain(C1, C3).hash
    skip = NB101Cell([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", C3, "output"])
    assert skip.hash != chain(C3).hash


# --- validation -----------------------------------------------------------------------------

OK_MATRIX = [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
OK_OPS = ["input", C3, "output"]


@pytest.mark.parametrize(
    ("matrix", "ops", "message"),
    [
        ([[0, 2, 0], [0, 0, 1], [0, 0, 0]], OK_OPS, r"0 or 1.*\[0\]\[1\] is 2"),
        ([[0, 0.5, 0], [0, 0, 1], [0, 0, 0]], OK_OPS, r"0 or 1.*0\.5"),
        ([[0, 1.0, 0], [0, 0, 1], [0, 0, 0]], OK_OPS, r"0 or 1.*1\.0"),
        ([[0, True, 0], [0, 0, 1], [0, 0, 0]], OK_OPS, r"0 or 1.*True"),
        (np.array(OK_MATRIX, dtype=bool), OK_OPS, r"dtype bool"),
        (np.array(OK_MATRIX, dtype=float), OK_OPS, r"dtype float64"),
        ([[0, 1, 0], [0, 0], [0, 0, 0]], OK_OPS, r"square: row 1 has 2 entries"),
        (np.zeros((2, 3), dtype=int), OK_OPS, r"square: row 0 has 3 entries"),
        (np.zeros(3, dtype=int), OK_OPS, r"2-D"),
        ([[0]], ["input"], r"2\.\.7 vertices, got a 1x1"),
        ([], [], r"2\.\.7 vertices, got a 0x0"),
        (np.triu(np.ones((8, 8), dtype=int), 1), ["input", *[C3] * 6, "output"], r"8x8"),
        ([[0, 1, 0], [0, 0, 1], [0, 1, 0]], OK_OPS, r"upper-triangular.*\[2\]\[1\]"),
        ([[1, 1, 0], [0, 0, 1], [0, 0, 0]], OK_OPS, r"upper-triangular.*\[0\]\[0\]"),
        (
            np.triu(np.ones((6, 6), dtype=int), 1),
            ["input", *[C3] * 4, "output"],
            r"9 edges, got 15",
        ),
        (OK_MATRIX, ["input", C3], r"one name per vertex \(3.*got 2"),
        (OK_MATRIX, [C3, C3, "output"], r"op 0 must be 'input', got 'conv3x3-bn-relu'"),
        (OK_MATRIX, ["input", C3, C3], r"last op must be 'output'"),
        (OK_MATRIX, ["input", "conv5x5", "output"], r"op 1 is 'conv5x5'.*one of"),
        (OK_MATRIX, ["input", "input", "output"], r"op 1 is 'input'"),
        (OK_MATRIX, ["input", None, "output"], r"op 1 must be a string, got None"),
        (OK_MATRIX, "input,conv3x3-bn-relu,output", r"list of op names"),
        ("0110", OK_OPS, r"list of lists"),
        (None, OK_OPS, r"list of lists"),
        ([0, 1, 0], OK_OPS, r"row 0 must be a list"),
    ],
)
def test_invalid_cells_raise_valueerror(matrix: Any, ops: Any, message: str):
    with pytest.raises(ValueError, match=message):
        NB101Cell(matrix, ops)


def test_valid_inputs_in_several_forms_give_equal_cells():
    a = NB101Cell(OK_MATRIX, OK_OPS)
    b = NB101Cell(np.array(OK_MATRIX, dtype=np.int8), tuple(OK_OPS))
    c = NB101Cell([np.array(r) for r in OK_MATRIX], np.array(OK_OPS))
    assert a == b == c and len({a, b, c}) == 1
    assert all(type(op) is str for op in c.ops)
    assert all(type(x) is int for row in b.adjacency for x in row)


SCALARS = st.one_of(
    st.integers(-2, 3),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.sampled_from([np.int64(1), np.uint8(0), np.float32(1.0), np.bool_(True), np.str_("1")]),
)
ROWS = st.one_of(st.lists(SCALARS, max_size=8), st.tuples(SCALARS), SCALARS)


@st.composite
def near_valid_matrices(draw: st.DrawFn) -> list[list[Any]]:
    """A valid-looking upper-triangular 0/1 matrix with one entry replaced by garbage."""
    n = draw(st.integers(2, 7))
    matrix: list[list[Any]] = [
        [draw(st.integers(0, 1)) if j > i else 0 for j in range(n)] for i in range(n)
    ]
    i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
    matrix[i][j] = draw(SCALARS)
    return matrix


MATRICES = st.one_of(
    st.lists(ROWS, max_size=8),
    near_valid_matrices(),
    hnp.arrays(
        dtype=st.sampled_from([np.int8, np.int64, np.uint8, np.float64, np.bool_]),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=8),
    ),
    hnp.arrays(
        dtype=np.int64, shape=st.integers(2, 7).map(lambda n: (n, n)), elements=st.integers(0, 1)
    ),
    SCALARS,
)
OPS_LISTS = st.one_of(
    st.lists(st.one_of(st.sampled_from(NB101_ALL_OPS), st.text(max_size=4), SCALARS), max_size=8),
    st.integers(0, 7).map(lambda n: ["input", *[C1] * max(n - 2, 0), "output"][:n]),
    hnp.arrays(dtype="U16", shape=st.integers(0, 8), elements=st.sampled_from(NB101_ALL_OPS)),
    SCALARS,
)


@settings(max_examples=400, deadline=None)
@given(MATRICES, OPS_LISTS)
def test_arbitrary_input_only_ever_raises_valueerror(matrix: Any, ops: Any):
    try:
        cell = NB101Cell(matrix, ops)
    except ValueError:
        return
    m = cell.matrix
    n = cell.num_vertices
    assert 2 <= n <= 7 and m.shape == (n, n) and set(m.ravel().tolist()) <= {0, 1}
    assert not np.tril(m).any() and cell.num_edges <= 9
    assert (
        cell.ops[0] == "input"
        and cell.ops[-1] == "output"
        and set(cell.ops[1:-1]) <= set(NB101_OPS)
    )
    if cell.is_connected:
        assert isinstance(cell.hash, str)
    else:
        with pytest.raises(ValueError):
            _ = cell.hash


CELL_STRINGS = st.one_of(
    st.text(),
    st.from_regex(r"\A[01/]{0,20}\|[a-z0-9,\-]{0,50}\Z"),
    st.from_regex(
        r"\A([01]{2,7}/){1,6}[01]{2,7}\|input,(conv3x3-bn-relu,|maxpool3x3,){0,5}output\Z"
    ),
    SCALARS,
)


@settings(max_examples=300, deadline=None)
@given(CELL_STRINGS)
def test_from_string_garbage_only_raises_valueerror(text: Any):
    try:
        cell = NB101Cell.from_string(text)
    except ValueError:
        return
    assert cell.to_string() == text


@FAST
@given(cells(connected=False))
def test_string_round_trip_and_space_parse_format(cell: NB101Cell):
    assert NB101Cell.from_string(cell.to_string()) == cell
    assert SPACE.parse(SPACE.format(cell)) == cell


def test_cell_is_immutable_and_matrix_is_a_copy():
    cell = chain(C3, MP)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cell.ops = ("input", "output")  # type: ignore[misc]
    m = cell.matrix
    m[0, 2] = 1
    assert cell.matrix[0, 2] == 0 and cell == chain(C3, MP)
    assert hash(cell) == hash(chain(C3, MP))


# --- pruning and connectivity ---------------------------------------------------------------


def test_prune_removes_dangling_vertices():
    # vertex 2 has no out-edge; vertex 3 has no in-edge; 1 lies on input→1→output.
    matrix = [
        [0, 1, 1, 0, 0],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0],
    ]
    cell = NB101Cell(matrix, ["input", C1, C3, MP, "output"])
    pruned = cell.prune()
    assert pruned == chain(C1)
    assert cell.hash == pruned.hash and pruned.prune() is pruned
    assert np.array_equal(SPACE.encode(cell, "adjacency"), SPACE.encode(pruned, "adjacency"))


def test_disconnected_cells_raise_valueerror():
    cell = NB101Cell([[0, 1, 0], [0, 0, 0], [0, 0, 0]], OK_OPS)
    assert not cell.is_connected
    for call in (
        cell.prune,
        lambda: cell.hash,
        lambda: SPACE.cell_id(cell),
        lambda: SPACE.encode(cell),
        lambda: SPACE.build(cell, **TINY),
    ):
        with pytest.raises(ValueError, match="no input→output path"):
            call()


# --- sampling -------------------------------------------------------------------------------


def test_registry_gives_the_space():
    space = get_space("nb101")
    assert isinstance(space, NB101Space) and space.name == "nb101"
    assert space.encodings == ("adjacency", "path")


@pytest.mark.parametrize("method", ["uniform", "nasbench"])
def test_sample_is_valid_pruned_and_seeded(method: str):
    samples = [SPACE.sample(seed, method=method) for seed in range(40)]
    for cell in samples:
        assert cell.is_connected and cell.num_edges <= 9 and cell.num_vertices <= 7
        assert cell.prune() is cell
    assert samples == [SPACE.sample(seed, method=method) for seed in range(40)]
    gen_a, gen_b = np.random.default_rng(5), np.random.default_rng(5)
    assert [SPACE.sample(gen_a, method=method) for _ in range(5)] == [
        SPACE.sample(gen_b, method=method) for _ in range(5)
    ]
    assert len(set(samples)) > 20
    with pytest.raises(ValueError, match="sampling method"):
        SPACE.sample(0, method="other")


def test_uniform_sample_matches_the_distinct_cell_distribution():
    total = sum(CLASSES_PER_SIZE.values())
    assert total == 423_624
    gen = np.random.default_rng(1)
    sizes = Counter(SPACE.sample(gen).num_vertices for _ in range(300))
    p7 = CLASSES_PER_SIZE[7] / total  # ~0.848
    sd = (300 * p7 * (1 - p7)) ** 0.5
    assert abs(sizes[7] - 300 * p7) < 5 * sd


def _full_dag_count(k: int) -> int:
    """Brute-force count of pruned k-vertex upper-triangular matrices with <= 9 edges."""
    rows, cols = np.triu_indices(k, 1)
    count = 0
    codes = np.arange(2**rows.size, dtype=np.int64)
    for chunk in np.array_split(codes, max(1, codes.size // 2**16)):
        bits = ((chunk[:, None] >> np.arange(rows.size)) & 1).astype(np.int8)
        mats = np.zeros((chunk.size, k, k), dtype=np.int8)
        mats[:, rows, cols] = bits
        ok = (bits.sum(1) <= 9) & mats[:, :-1].any(2).all(1) & mats[:, :, 1:].any(1).all(1)
        count += int(ok.sum())
    return count


def test_full_dag_counts_used_by_the_uniform_sampler():
    assert {k: _full_dag_count(k) for k in range(2, 8)} == _FULL_DAG_COUNTS


def test_labelling_counts_match_brute_force_for_small_cells():
    # The uniform sampler keeps a labelled graph with prob. 1/#labellings; check those counts.
    groups: dict[str, list[NB101Cell]] = {}
    for k in range(2, 6):
        pairs = list(itertools.combinations(range(k), 2))
        for code in range(2 ** len(pairs)):
            matrix = [[0] * k for _ in range(k)]
            for b, (i, j) in enumerate(pairs):
                matrix[i][j] = (code >> b) & 1
            if sum(map(sum, matrix)) > 9:
                continue
            for mid in itertools.product(NB101_OPS, repeat=k - 2):
                cell = NB101Cell(matrix, ["input", *mid, "output"])
                if cell.is_connected and cell.prune() is cell:
                    groups.setdefault(cell.hash, []).append(cell)
    assert Counter(len(g[0].ops) for g in groups.values()) == {
        k: CLASSES_PER_SIZE[k] for k in range(2, 6)
    }
    for group in groups.values():
        assert _num_labellings(group[0]) == len(group)


# --- mutation -------------------------------------------------------------------------------


@FAST
@given(cells(connected=False), st.integers(0, 2**32 - 1))
def test_mutation_is_valid_connected_and_changes_the_hash(cell: NB101Cell, seed: int):
    try:
        child = SPACE.mutate(cell, seed)
    except ValueError:
        # Only a cell that prunes to input→output (or is disconnected) can lack such an edit.
        assert not cell.is_connected or cell.prune().num_vertices == 2
        return
    assert child.is_connected and child.num_edges <= 9 and child.num_vertices == cell.num_vertices
    assert not cell.is_connected or child.hash != cell.hash
    diff = int((child.matrix != cell.matrix).sum()) + sum(
        a != b for a, b in zip(child.ops, cell.ops, strict=True)
    )
    assert diff == 1
    assert SPACE.mutate(cell, seed) == child


def test_mutating_the_trivial_cell_raises():
    with pytest.raises(ValueError, match="no single edit"):
        SPACE.mutate(NB101Cell([[0, 1], [0, 0]], ["input", "output"]), 0)


# --- encodings ------------------------------------------------------------------------------


@FAST
@given(cells())
def test_encodings_have_fixed_length_and_binary_values(cell: NB101Cell):
    adjacency, path = SPACE.encode(cell, "adjacency"), SPACE.encode(cell, "path")
    assert adjacency.shape == (ADJACENCY_ENCODING_LENGTH,) == (56,)
    assert path.shape == (PATH_ENCODING_LENGTH,) == (364,)
    assert set(np.unique(adjacency)) <= {0.0, 1.0} and set(np.unique(path)) <= {0.0, 1.0}
    assert adjacency[21:].reshape(7, 5).sum() == cell.prune().num_vertices
    assert adjacency[:21].sum() == cell.prune().num_edges
    assert path.sum() >= 1


def test_encodings_differ_between_table_cells(table_cells: list[NB101Cell]):
    adjacency = {SPACE.encode(c, "adjacency").tobytes() for c in table_cells}
    assert len(adjacency) == len(table_cells)
    # The path encoding is not injective (it forgets how paths share vertices), but nearly so.
    path = {SPACE.encode(c, "path").tobytes() for c in table_cells}
    assert len(path) >= 0.95 * len(table_cells)


def test_encoding_layouts():
    cell = chain(C1)  # 3 vertices: padded with 4 empty vertices before the output
    enc = SPACE.encode(cell, "adjacency")
    upper = np.zeros((7, 7))
    upper[np.triu_indices(7, 1)] = enc[:21]
    assert upper[0, 1] == 1 and upper[1, 6] == 1 and upper.sum() == 2
    onehot = enc[21:].reshape(7, 5)
    assert onehot[0].argmax() == 0 and onehot[1].argmax() == 2 and onehot[6].argmax() == 4
    assert not onehot[2:6].any()
    # Path slots: sum_i 3^i * (op_i + 1); the direct input→output path is slot 0.
    assert np.flatnonzero(
        SPACE.encode(NB101Cell([[0, 1], [0, 0]], ["input", "output"]), "path")
    ) == [0]
    assert np.flatnonzero(SPACE.encode(chain(C1), "path")).tolist() == [2]
    assert np.flatnonzero(SPACE.encode(chain(C3, MP), "path")).tolist() == [1 + 3 * 3]
    assert np.flatnonzero(SPACE.encode(chain(*[MP] * 5), "path")).tolist() == [363]
    with pytest.raises(ValueError, match="unknown NB-101 encoding 'graph'"):
        SPACE.encode(cell, "graph")


# --- networks -------------------------------------------------------------------------------


def _is_dummy(param: nn.Parameter, model: nn.Module) -> bool:
    dummies = [m.dev_param for m in model.modules() if isinstance(m, Cell)]
    dummies += [m.a for m in model.modules() if isinstance(m, Placeholder)]
    return any(param is d for d in dummies)


@settings(max_examples=8, deadline=None)
@given(cells(connected=False).filter(lambda c: c.is_connected), st.integers(0, 1000))
def test_random_cells_build_trainable_networks(cell: NB101Cell, seed: int):
    torch.manual_seed(seed)
    net = SPACE.build(cell, num_classes=5, **TINY)
    x = torch.randn(2, 3, 16, 16)
    out = net(x)
    assert out.shape == (2, 5)
    out.square().mean().backward()
    params = trainable_parameters(net)
    assert params and all(p.grad is not None for _, p in params)
    assert not any(_is_dummy(p, net) for _, p in params)
    real = {id(p) for _, p in params}
    leftover = [p for p in net.parameters() if id(p) not in real]
    assert all(_is_dummy(p, net) and p.grad is None for p in leftover)
    assert count_parameters(net) == sum(p.numel() for _, p in params)

    layers = parameterised_layers(net, x)
    owned = [id(p) for _, m in layers for p in m.parameters(recurse=False)]
    assert sorted(owned) == sorted(real)  # every real parameter lives in a listed layer
    assert not any(isinstance(m, (Cell, Placeholder)) for _, m in layers)
    assert layers[0][0] == "layers.0.conv_bn_relu.0" and layers[-1][0] == "classifier"
    assert {n for n, _ in layers} == {n for n, _ in parameterised_layers(net)}


def test_execution_order_differs_from_registration_order():
    # Input projections run before the vertex op but are registered after it.
    torch.manual_seed(0)
    net = SPACE.build(chain(C3), **TINY)
    x = torch.randn(2, 3, 16, 16)
    ran = [n for n, _ in parameterised_layers(net, x)]
    registered = [n for n, _ in parameterised_layers(net)]
    proj, op = "layers.1.input_op.1.conv_bn_relu.0", "layers.1.vertex_op.1.conv3x3.conv_bn_relu.0"
    assert ran.index(proj) < ran.index(op) and registered.index(op) < registered.index(proj)


def test_parameterised_layers_has_no_side_effects_and_drops_unused_layers():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Linear(4, 2)
            self.unused = nn.Conv2d(3, 3, 1)
            self.norm = nn.BatchNorm1d(4)
            self.frozen = nn.Linear(4, 4).requires_grad_(False)
            self.body = nn.Linear(3, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.norm(self.frozen(self.body(x))))

    net = Net()
    stats = net.norm.running_mean.clone()
    assert [n for n, _ in parameterised_layers(net)] == ["head", "unused", "norm", "body"]
    assert [n for n, _ in parameterised_layers(net, torch.randn(3, 3))] == ["body", "norm", "head"]
    assert next(n for n, _ in parameterised_layers(net, (torch.randn(3, 3),))) == "body"
    assert net.training and net.norm.training and torch.equal(net.norm.running_mean, stats)
    assert int(net.norm.num_batches_tracked) == 0
    assert count_parameters(net) == sum(p.numel() for p in net.parameters() if p.requires_grad)


def test_bn_momentum_is_set_on_every_batchnorm():
    bns = [m for m in SPACE.build(chain(C3, C1), **TINY).modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) >= 4 and all(m.momentum == 0.003 for m in bns)
    net = SPACE.build(chain(C3), bn_momentum=0.1, **TINY)
    assert all(m.momentum == 0.1 for m in net.modules() if isinstance(m, nn.BatchNorm2d))


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("num_classes", 0),
        ("stem_channels", 2.5),
        ("num_stacks", True),
        ("bn_momentum", 0.0),
        ("bn_momentum", 1.5),
        ("bn_momentum", None),
    ],
)
def test_build_rejects_bad_config(option: str, value: Any):
    with pytest.raises(ValueError, match=option):
        SPACE.build(chain(C3), **{**TINY, option: value})


def test_build_rejects_non_cells():
    with pytest.raises(ValueError, match=r"not strings; use space\.parse\(text\)"):
        SPACE.build("0110/0001/0001/0000|input,conv3x3-bn-relu,maxpool3x3,output")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected an NB101Cell"):
        SPACE.build(42)  # type: ignore[arg-type]


def test_paper_network_parameter_count_matches_table(table: Any):
    # The table counts trainable parameters: conv weights (no biases), BN scale and shift and the
    # classifier; nasbench-pytorch's dummy Placeholder scalars (one per Placeholder) are extra.
    rows = table.sort_values("params").iloc[[0, 30, 120]]
    for matrix, ops, params in zip(rows["matrix"], rows["ops"], rows["params"], strict=True):
        net = SPACE.build(NB101Cell.from_table_row(matrix, ops))
        assert count_parameters(net) == params
        placeholders = sum(isinstance(m, Placeholder) for m in net.modules())
        assert sum(p.numel() for p in net.parameters()) == params + placeholders
