"""NAS-Bench-Suite-Zero's published NB201 proxy scores and NB201's distinct cells."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.benchmarks import get_benchmark, read_table
from workbench.spaces import NB201Cell, NB201Space

N_CELLS, N_DISTINCT = 15_625, 9_445


@pytest.fixture(scope="module")
def nb201():
    return get_benchmark("nb201")


def test_prune_sets_dead_edges_to_none_and_keeps_the_graph():
    cell = NB201Cell.from_string(
        "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|")
    # Node 1 feeds only 'none' edges, so its input edge is dead.
    assert cell.prune().to_string() == (
        "|none~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|")
    space = NB201Space()
    for i in np.random.default_rng(0).choice(N_CELLS, size=300, replace=False):
        c = space.cell(int(i))
        p = c.prune()
        assert p.prune() == p
        adj, labels = space.to_graph(c)
        adj_p, labels_p = space.to_graph(p)
        assert labels == labels_p and np.array_equal(adj, adj_p)


def test_distinct_cells_are_the_published_rows(nb201):
    distinct = nb201.distinct_ids()
    assert len(distinct) == N_DISTINCT
    reps = nb201.representatives()
    assert len(reps) == N_CELLS and reps.nunique() == N_DISTINCT
    assert sorted(set(reps)) == sorted(distinct)
    assert all(nb201.representative(i) == i for i in distinct[:50])
    for name in ("nb201_zc_cifar10", "nb201_zc_ImageNet16-120"):
        raw = read_table(name)
        assert sorted(raw["index"].astype(str)) == sorted(distinct)  # one row per class
    dup = reps[reps.index != reps.to_numpy()]
    cell_id, rep = dup.index[0], dup.iloc[0]
    assert nb201.cell(cell_id).prune() == nb201.cell(rep)


@pytest.mark.parametrize("dataset", ["cifar10", "ImageNet16-120"])
def test_proxies_join_every_cell(nb201, dataset):
    distinct = nb201.proxies(dataset=dataset, distinct_only=True)
    assert distinct.shape == (N_DISTINCT, len(nb201.proxy_columns))
    assert list(distinct.columns) == list(nb201.proxy_columns)
    assert list(distinct.index) == nb201.distinct_ids()
    assert not distinct.isna().any().any()
    full = nb201.proxies(dataset=dataset)
    assert full.shape == (N_CELLS, len(nb201.proxy_columns))
    assert list(full.index) == list(nb201.table()["cell_id"]) and full.index.name == "cell_id"
    reps = nb201.representatives()
    assert np.array_equal(full.to_numpy(), distinct.loc[reps.to_numpy()].to_numpy())
    params = nb201.table().set_index("cell_id")["params"]
    rho = distinct["params"].corr(params.loc[distinct.index], method="spearman")
    assert rho > 0.99
    # A duplicate carries its representative's params; the table counts its dead convs too.
    rep_params = params.loc[reps.to_numpy()].to_numpy()
    assert full["params"].corr(pd.Series(rep_params, index=full.index),
                               method="spearman") > 0.99


def test_proxies_default_dataset_is_cifar10(nb201):
    assert nb201.proxies().equals(nb201.proxies(dataset="cifar10"))


@pytest.mark.parametrize("dataset", ["cifar100", "svhn"])
def test_proxies_unknown_dataset_is_named(nb201, dataset):
    with pytest.raises(ValueError, match=f"'{dataset}'.*available.*ImageNet16-120"):
        nb201.proxies(dataset=dataset)
    if dataset == "cifar100":
        with pytest.raises(ValueError, match="no CIFAR-100 scores"):
            nb201.proxies(dataset=dataset)


def test_nb101_has_no_proxy_table_and_all_cells_distinct():
    nb101 = get_benchmark("nb101")
    with pytest.raises(ValueError, match="nb101 has no published proxy table"):
        nb101.proxies()
    ids = list(nb101.table()["cell_id"])
    assert nb101.distinct_ids() == ids
    assert nb101.representative(ids[3]) == ids[3]
