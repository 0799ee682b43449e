"""NAS-Bench-101's own sampler (``random_spec``): exact cell probabilities, table weights and
test sets that follow it."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from workbench.benchmarks import get_benchmark, nb101_sampler_weights, sampler_test_set
from workbench.spaces import NB101Cell, NB101Space

SPACE = NB101Space()
CONV3, CONV1, POOL = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"


@pytest.fixture(scope="module")
def nb101():
    return get_benchmark("nb101_1k")  # the 1k table (fast; the tests know its weights)


@pytest.fixture(scope="module")
def weights(nb101):
    return nb101_sampler_weights(nb101)


@pytest.fixture(scope="module")
def draws():
    gen = np.random.default_rng(0)
    return [SPACE.sample(gen, method="nasbench") for _ in range(3000)]


def test_sampler_yields_only_valid_pruned_cells(draws):
    for cell in draws:
        assert cell.is_connected and cell.prune() is cell
        assert cell.num_vertices <= 7 and cell.num_edges <= 9
    assert Counter(c.num_vertices for c in draws)[2] > 150  # ~9.7% are input->output alone


def test_probability_is_exact_against_monte_carlo(draws):
    n = len(draws)
    freq = Counter(c.hash for c in draws)
    first = {c.hash: c for c in reversed(draws)}
    checked = 0
    for h, count in freq.items():
        p = SPACE.nasbench_probability(first[h])
        if p * n >= 30:
            assert abs(count / n - p) < 5 * np.sqrt(p * (1 - p) / n), first[h].to_string()
            checked += 1
    assert checked >= 7  # the 2-vertex cell and the six 3-vertex cells at least
    io = NB101Cell([[0, 1], [0, 0]], ["input", "output"])
    assert SPACE.nasbench_probability(io) == pytest.approx(0.0972685, abs=1e-6)


def test_probability_ignores_how_the_cell_is_written():
    a = NB101Cell([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
                  ["input", CONV3, POOL, "output"])
    b = NB101Cell([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
                  ["input", POOL, CONV3, "output"])
    dangling = NB101Cell([[0, 1, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 0, 0],
                          [0, 0, 0, 0, 0]], ["input", CONV1, CONV1, CONV1, "output"])
    assert a.hash == b.hash
    assert SPACE.nasbench_probability(a) == SPACE.nasbench_probability(b) > 0
    assert SPACE.nasbench_probability(dangling) == SPACE.nasbench_probability(dangling.prune())
    with pytest.raises(ValueError, match="no input"):
        SPACE.nasbench_probability(NB101Cell([[0, 0], [0, 0]], ["input", "output"]))


def test_weights_deterministic_normalised_and_favour_small_cells(nb101, weights):
    assert list(weights.index) == list(nb101.table()["cell_id"])
    assert weights.name == "weight" and (weights > 0).all()
    assert weights.sum() == pytest.approx(1.0)
    assert 0 < weights.attrs["sampler_mass"] < 1
    assert nb101_sampler_weights(nb101).equals(weights)
    vertices = np.array([nb101.cell(i).num_vertices for i in weights.index])
    assert (weights.to_numpy() * vertices).sum() < vertices.mean() - 1


def test_weights_need_an_nb101_table():
    with pytest.raises(ValueError, match=r"nb101 benchmark.*'nb201'"):
        nb101_sampler_weights(get_benchmark("nb201"))


def test_sampler_test_set_size_seed_and_exclude(nb101, weights):
    ids = sampler_test_set(nb101, 500, 0)
    assert len(ids) == 500 and set(ids) <= set(weights.index)
    assert ids == sampler_test_set(nb101, 500, 0)
    top = weights.idxmax()
    assert Counter(ids)[top] > 250  # it holds ~70% of the weight of the 1k table
    rest = sampler_test_set(nb101, 100, 1, exclude=[top], weights=weights)
    assert len(rest) == 100 and top not in rest
    with pytest.raises(ValueError, match="no cell"):
        sampler_test_set(nb101, 5, 0, exclude=weights.index, weights=weights)
    with pytest.raises(ValueError, match="n"):
        sampler_test_set(nb101, 0)
