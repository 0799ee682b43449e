"""ArchitectureEnsemble: the mean of its members' normalised ranks, seeded, validated."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau, rankdata
from sklearn.base import clone

from workbench.benchmarks import get_benchmark
from workbench.predictors import ArchitectureEnsemble, graphs_from_cells

GCN = ("gcn", {"hidden": 16, "fc": 16, "epochs": 40, "device": "cpu"})
GRAF = ("graf", {"n_estimators": 60})


@pytest.fixture(scope="module")
def cells():
    bench, rng = get_benchmark("nb201"), np.random.default_rng(3)
    ids = rng.choice(bench.distinct_ids(), 160, replace=False)
    cs = [bench.cell(i) for i in ids]
    return cs, np.array([bench.final_accuracy(c) for c in cs])


def test_prediction_is_the_weighted_mean_of_member_ranks(cells, one_thread):
    X, y = cells
    ens = ArchitectureEnsemble("nb201", members=(GCN, GRAF), weights=(3, 1)).fit(X[:100], y[:100])
    gcn, graf = ens.members_
    test = X[100:]
    p_gcn = gcn.predict(graphs_from_cells("nb201", test))
    p_graf = graf.predict(test)
    n = len(test)
    expected = 0.75 * rankdata(p_gcn) / n + 0.25 * rankdata(p_graf) / n
    np.testing.assert_allclose(ens.predict(test), expected)
    assert gcn.random_state == 0 and graf.random_state == 1  # member i: random_state + i
    # the combination ranks held-out cells no worse than its weaker member
    taus = [kendalltau(p, y[100:])[0] for p in (p_gcn, p_graf, ens.predict(test))]
    assert taus[2] >= min(taus[:2])


def test_seeded_and_clonable(cells, one_thread):
    X, y = cells
    a = ArchitectureEnsemble("nb201", members=(GCN, GRAF), random_state=4).fit(X[:60], y[:60])
    b = clone(a).fit(X[:60], y[:60])
    c = ArchitectureEnsemble("nb201", members=(GCN, GRAF), random_state=5).fit(X[:60], y[:60])
    np.testing.assert_array_equal(a.predict(X[60:]), b.predict(X[60:]))
    assert not np.array_equal(a.predict(X[60:]), c.predict(X[60:]))


@pytest.mark.parametrize("kwargs, match", [
    ({"members": (("mlp", {}),)}, r"member 0 is 'mlp'; allowed: \['gcn', 'graf'\]"),
    ({"members": ()}, "non-empty"),
    ({"members": ("gcn",)}, r"member 0 must be a \(name, params dict\) pair"),
    ({"members": (("graf", {"space": "nb101"}),)}, "reads space 'nb101'"),
    ({"weights": (1.0,)}, r"weights must be 2 .*\(1\.0,\)"),
    ({"weights": (1.0, -1.0)}, "non-negative"),
    ({"space": "nb999"}, "nb999"),
])
def test_bad_configurations_raise(cells, kwargs, match):
    X, y = cells
    with pytest.raises(ValueError, match=match):
        ArchitectureEnsemble(**{"members": (GCN, GRAF), **kwargs}).fit(X[:20], y[:20])


def test_nan_labels_are_refused(cells):
    X, y = cells
    bad = y[:20].copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match=r"(?i)nan"):
        ArchitectureEnsemble("nb201", members=(GRAF,)).fit(X[:20], bad)


def test_graphs_are_built_once_per_call_for_all_gcn_members(cells, one_thread, monkeypatch):
    import workbench.predictors._ensemble as ens_module

    X, y = cells
    calls = []
    real = ens_module.graphs_from_cells

    def counting(space, cs):
        calls.append(len(cs))
        return real(space, cs)

    monkeypatch.setattr(ens_module, "graphs_from_cells", counting)
    small = ("gcn", {"hidden": 8, "fc": 8, "epochs": 5, "device": "cpu"})
    ens = ArchitectureEnsemble("nb201", members=(small, small, GRAF)).fit(X[:40], y[:40])
    assert calls == [40]
    pred = ens.predict(X[40:60])
    assert calls == [40, 20] and pred.shape == (20,)
