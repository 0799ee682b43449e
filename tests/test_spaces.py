"""What a space knows about itself: model presets, the GCN's graph (``to_graph`` over
``graph_ops``), the cell-string rule (NB201 parses strings, NB101 rejects them), class counts,
and the plain-CNN ``ChannelSpace``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.data import CLASS_COUNTS, num_classes
from workbench.predictors import graphs_from_cells
from workbench.spaces import (
    NB201_OPS,
    ChannelSpace,
    NB101Cell,
    NB201Cell,
    SearchSpace,
    get_space,
    list_spaces,
)

NB201_CELL = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|none~2|"
nb201_cells = st.tuples(*[st.sampled_from(NB201_OPS)] * 6).map(NB201Cell)


# -- every registered space --------------------------------------------------------------------

@pytest.mark.parametrize("name", list_spaces())
def test_every_space_has_presets_and_a_graph_in_its_vocabulary(name: str) -> None:
    space = get_space(name)
    assert isinstance(space, SearchSpace)
    assert {"paper", "small", "tiny"} <= set(space.model_presets)
    for preset, kwargs in space.model_presets.items():
        got = space.model_kwargs(preset)
        assert got == kwargs and got is not kwargs  # a copy: callers may change it
    assert space.model_kwargs({"a": 1}) == {"a": 1}
    with pytest.raises(ValueError, match=r"unknown model preset 'huge' .*available: \["):
        space.model_kwargs("huge")
    ops = space.graph_ops
    assert len(set(ops)) == len(ops) and ops[0] == "input" and ops[-1] == "output"
    rng = np.random.default_rng(0)
    for _ in range(20):
        cell = space.sample(rng)
        for prune in (True, False):
            adj, labels = space.to_graph(cell, prune=prune)
            n = len(labels)
            assert 2 <= n <= space.graph_nodes and adj.shape == (n, n)
            assert set(labels) <= set(ops) and labels[0] == "input" and labels[-1] == "output"
            assert np.issubdtype(adj.dtype, np.integer) and set(np.unique(adj)) <= {0, 1}
            assert np.array_equal(adj, np.triu(adj, 1))  # topological order
        # The GCN's graph is the pruned one, one-hot over graph_ops.
        adj, labels = space.to_graph(cell)
        n, size = len(labels), space.graph_nodes
        X = graphs_from_cells(name, [cell])
        assert X.shape == (1, size, size + len(ops))
        assert np.array_equal(X[0, :n, :n], adj) and not X[0, n:].any()
        assert [ops[j] for j in X[0, :n, size:].argmax(1)] == labels


def test_each_space_names_its_default_encoding() -> None:
    """What ``table_features`` and ``PredictorSH`` encode cells with unless told otherwise."""
    assert get_space("nb201").default_encoding == "onehot"
    assert get_space("nb101").default_encoding == "adjacency"
    for name in list_spaces():
        space = get_space(name)
        assert space.default_encoding == space.encodings[0]
        assert space.encode(space.sample(0), space.default_encoding).ndim == 1


@pytest.mark.parametrize("name", list_spaces())
def test_graphs_from_cells_takes_a_space_or_its_name(name: str) -> None:
    space = get_space(name)
    cells = [space.sample(i) for i in range(3)]
    np.testing.assert_array_equal(graphs_from_cells(space, cells), graphs_from_cells(name, cells))
    with pytest.raises(ValueError, match="space"):
        graphs_from_cells(42, cells)  # type: ignore[arg-type]


def test_presets_keep_the_published_sizes() -> None:
    assert get_space("nb101").model_kwargs("paper") == {
        "stem_channels": 128, "num_stacks": 3, "cells_per_stack": 3}
    assert get_space("nb201").model_kwargs("paper") == {"channels": 16, "cells_per_stage": 5}
    assert get_space("nb101").model_kwargs("tiny")["bn_momentum"] == 0.1


# -- to_graph by hand ----------------------------------------------------------------------------

def test_nb101_graph_is_the_pruned_spec() -> None:
    space = get_space("nb101")
    # input -> conv3x3 -> output, plus a maxpool vertex that feeds nothing (dangling).
    cell = NB101Cell([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]],
                     ["input", "conv3x3-bn-relu", "maxpool3x3", "output"])
    adj, labels = space.to_graph(cell)
    assert labels == ["input", "conv3x3-bn-relu", "output"]
    np.testing.assert_array_equal(adj, [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    full, labels = space.to_graph(cell, prune=False)
    assert labels == list(cell.ops) and np.array_equal(full, cell.matrix)
    # GCN one-hot order: input, 1x1, 3x3, maxpool, output (bundled predictor files rely on it).
    X = graphs_from_cells("nb101", [cell])
    assert X.shape == (1, 7, 12)
    assert X[0, :3, 7:].argmax(1).tolist() == [0, 2, 4]


def test_nb201_graph_by_hand() -> None:
    space = get_space("nb201")
    # Edges: 1<-0 conv3x3, 2<-1 skip, 3<-0 avg_pool; the rest none. Only avg_pool reaches 3.
    adj, labels = space.to_graph(NB201_CELL)
    assert labels == ["input", "avg_pool_3x3", "output"]
    np.testing.assert_array_equal(adj, [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    full, labels = space.to_graph(NB201_CELL, prune=False)
    assert labels == ["input", "nor_conv_3x3", "skip_connect", "avg_pool_3x3", "output"]
    assert full.sum() == 4  # input->conv, input->pool, conv->skip, pool->output
    X = graphs_from_cells("nb201", [NB201_CELL])
    assert X.shape == (1, 8, 14)
    assert X[0, :3, 8:].argmax(1).tolist() == [0, 4, 5]  # input, avg_pool_3x3, output


# -- the cell-string rule --------------------------------------------------------------------------

def test_nb101_methods_reject_strings() -> None:
    space = get_space("nb101")
    text = space.format(space.sample(0))
    calls = [space.format, space.cell_id, space.encode, space.mutate, space.build, space.to_graph]
    for method in calls:
        with pytest.raises(ValueError, match=r"NB101 cells are NB101Cell .*space\.parse\(text\)"):
            method(text)
    assert space.format(space.parse(text)) == text


@settings(max_examples=40, deadline=None)
@given(nb201_cells)
def test_nb201_methods_accept_strings(cell: NB201Cell) -> None:
    space = get_space("nb201")
    text = space.format(cell)
    assert space.format(text) == text
    assert space.cell_id(text) == space.cell_id(cell)
    for kind in space.encodings:
        np.testing.assert_array_equal(space.encode(text, kind), space.encode(cell, kind))
    for prune in (True, False):
        a, b = space.to_graph(text, prune=prune), space.to_graph(cell, prune=prune)
        assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    assert space.mutate(text, 3) == space.mutate(cell, 3)
    with pytest.raises(ValueError, match="node"):
        space.format(text[:-1])


def test_nb201_builds_from_a_string() -> None:
    space = get_space("nb201")
    net = space.build(NB201_CELL, **space.model_kwargs("tiny"))
    assert net(torch.zeros(1, 3, 8, 8)).shape == (1, 10)


# -- class counts ----------------------------------------------------------------------------------

def test_num_classes() -> None:
    assert [num_classes(d) for d in ("cifar10", "cifar100", "ImageNet16-120")] == [10, 100, 120]
    assert set(CLASS_COUNTS) == {"cifar10", "cifar100", "ImageNet16-120"}
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'; allowed: \['cifar10'"):
        num_classes("mnist")


# -- ChannelSpace ----------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(st.data())
def test_channel_space_counts_match_the_network(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 4), label="n_layers")
    space = ChannelSpace((4, 8, 12), n, num_classes=data.draw(st.integers(1, 20)))
    cand = data.draw(st.tuples(*[st.sampled_from(space.widths)] * n), label="candidate")
    net = space.build(cand)
    assert space.params(cand) == sum(p.numel() for p in net.parameters())
    out = net(torch.zeros(2, 3, space.resolution, space.resolution))
    assert out.shape == (2, space.num_classes)


def test_channel_space_checks() -> None:
    space = ChannelSpace(n_layers=3)
    assert space.widths == ChannelSpace.DEFAULT_WIDTHS and space.strides == (1, 2, 1)
    assert space.sizes() == [32, 16, 16]
    for bad, match in [((8, 8), "has 2 widths"), ((8, 8, 9), "width 9 of layer 3"),
                       ("888", "sequence"), ((8, True, 8), "width True")]:
        with pytest.raises(ValueError, match=match):
            space.check(bad)  # type: ignore[arg-type]
    for kwargs, match in [({"widths": ()}, "widths"), ({"widths": (8, 8)}, "repeat"),
                          ({"n_layers": 0}, "n_layers"), ({"strides": (1,)}, "strides"),
                          ({"num_classes": 0}, "num_classes")]:
        with pytest.raises(ValueError, match=match):
            ChannelSpace(**kwargs)
