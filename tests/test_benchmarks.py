"""The bundled tabular benchmarks: contents, query API, cost models and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from workbench.benchmarks import (
    CellNotInTableError,
    NB201CostModel,
    TabularBenchmark,
    get_benchmark,
    list_benchmarks,
    nb201_macs,
    read_table,
)
from workbench.spaces import get_space


@pytest.fixture(scope="module")
def nb101():
    return get_benchmark("nb101")


@pytest.fixture(scope="module")
def nb201():
    return get_benchmark("nb201")


@pytest.mark.parametrize("name", list_benchmarks())
def test_every_registered_benchmark_round_trips_ids(name):
    bench = get_benchmark(name)
    table = bench.table()
    assert len(table) == len(bench) and table["cell_id"].is_unique
    for cell_id in table["cell_id"].iloc[:: max(1, len(table) // 25)]:
        cell = bench.cell(cell_id)
        assert bench.cell_id(cell) == cell_id
        assert bench.cell_id(bench.space.format(cell)) == cell_id
        assert cell in bench


def test_table_sizes_and_percent_scale(nb101, nb201):
    assert list_benchmarks() == ["nb101", "nb101_1k", "nb201", "nb201_curves"]
    assert len(nb101) == 20_001 and len(nb201) == 15625
    t = nb101.table()
    raw = read_table("nb101")
    np.testing.assert_allclose(t["cifar10/val@108"], raw["val_acc_108"] * 100)
    assert 80 < t["cifar10/val@108"].median() < 100
    assert nb101.datasets == ["cifar10"]
    assert nb101.epochs() == [4, 12, 36, 108]
    assert nb201.datasets == ["ImageNet16-120", "cifar10", "cifar100"]
    assert nb201.epochs(dataset="cifar100") == [12, 200]


def test_best_cells_match_the_published_maxima(nb201):
    # ../shared/data/README.md: best cell 94.37 / 73.51 / 47.31 % test accuracy.
    for ds, best in (("cifar10", 94.37), ("cifar100", 73.51), ("ImageNet16-120", 47.31)):
        _, acc = nb201.best(dataset=ds)
        assert acc == pytest.approx(best, abs=0.005)


def test_nb201_12_epoch_records_are_shared_across_graphs(nb201):
    # data/README.md's caveat: cells with different graphs carry one 12-epoch record
    table = nb201.table().set_index("cell_id")
    cols = [c for c in table.columns if c.endswith("@12")]
    assert len(cols) == 6
    same = table.loc[["0", "4980", "8444"]]
    assert same["cell"].nunique() == 3 and len({nb201.representative(c) for c in same.index}) == 3
    assert (same[cols].nunique() == 1).all()
    assert same["cifar10/test@200"].round(2).tolist() == [85.86, 85.98, 86.27]
    assert len(table[cols].drop_duplicates()) == 9_718
    assert len(table.loc[nb201.distinct_ids(), cols].drop_duplicates()) == 7_854


def test_query_one_cell_by_any_handle(nb201):
    raw = read_table("nb201")
    row = raw.iloc[1]
    space = get_space("nb201")
    by_index = nb201.query(str(row["index"]))
    by_string = nb201.query(row["arch"])
    by_cell = nb201.query(space.parse(row["arch"]))
    pd.testing.assert_frame_equal(by_index, by_string)
    pd.testing.assert_frame_equal(by_index, by_cell)
    assert len(by_index) == 10  # 3 datasets x (12 val, 12 test, 200 test) + CIFAR-10 val@200
    final = by_index.query("dataset == 'cifar100' and epochs == 200")["accuracy"].item()
    assert final == pytest.approx(row["c100_test_200"])
    assert (nb201.final_accuracy(row["arch"], dataset="cifar100")
            == pytest.approx(row["c100_test_200"]))
    # Validation preferred at the short budget: selection must not read test accuracy.
    assert nb201.accuracy(row["arch"], epochs=12) == pytest.approx(row["c10_val_12"])
    assert nb201.accuracy(row["arch"], epochs=12, split="test") == pytest.approx(row["c10_test_12"])


def test_nb101_query_and_cost(nb101):
    raw = read_table("nb101")
    row = raw.iloc[7]
    q = nb101.query(row["hash"])
    assert q["epochs"].tolist() == [4, 12, 36, 108]
    np.testing.assert_allclose(q["accuracy"], row[["val_acc_4", "val_acc_12", "val_acc_36",
                                                   "val_acc_108"]].to_numpy(float) * 100)
    assert nb101.cost(row["hash"], epochs=108) == pytest.approx(row["train_seconds_108"])
    assert nb101.cost(row["hash"], epochs=36) == pytest.approx(row["train_seconds_108"] / 3)
    cell_string = f"{row['matrix']}|{row['ops']}"
    assert nb101.cell_id(cell_string) == row["hash"]


def test_cell_missing_from_the_1k_table_is_named(nb101):
    space = get_space("nb101")
    rng = np.random.default_rng(0)
    for _ in range(200):
        cell = space.sample(rng)
        if cell not in nb101:
            break
    else:  # pragma: no cover - 1k of 423k cells: a miss is essentially certain
        pytest.fail("every sampled cell was in the 1k table")
    with pytest.raises(CellNotInTableError, match=space.cell_id(cell)):
        nb101.query(cell)
    with pytest.raises(CellNotInTableError, match="f" * 32):
        nb101.row("f" * 32)


def test_cell_not_in_table_is_a_value_and_a_lookup_error(nb101):
    from workbench.search import TabularBackend

    assert issubclass(CellNotInTableError, ValueError)
    assert issubclass(CellNotInTableError, LookupError)
    with pytest.raises(CellNotInTableError, match="f" * 32):
        TabularBackend(nb101).resolve("f" * 32)  # the backend raises the same error


def test_tabular_benchmark_is_abstract():
    class NoCost(TabularBenchmark):  # _cost_row missing
        name = space_name = "nb201"

        def _cell_strings(self) -> np.ndarray:
            return np.array([])

        def _params(self) -> np.ndarray:
            return np.array([])

    with pytest.raises(TypeError, match="_cost_row"):
        NoCost()
    with pytest.raises(TypeError, match="abstract"):
        TabularBenchmark()


def test_queries_take_dataset_epochs_split_by_keyword_only(nb201):
    for call in (lambda: nb201.accuracy(0, 12), lambda: nb201.all_accuracies(12),
                 lambda: nb201.cost(0, 12), lambda: nb201.fidelity("cifar10"),
                 lambda: nb201.epochs("cifar10"), lambda: nb201.best("cifar10"),
                 lambda: nb201.final_accuracy(0, "cifar10"), lambda: nb201.query(0, "cifar10")):
        with pytest.raises(TypeError, match="positional"):
            call()
    assert nb201.cost(0, dataset="cifar100", epochs=12) == pytest.approx(
        12 * nb201.cost(0, dataset="cifar100", epochs=1))


def test_bad_queries_name_the_value(nb201):
    with pytest.raises(ValueError, match="svhn"):
        nb201.query(0, dataset="svhn")
    with pytest.raises(ValueError, match="epochs=50"):
        nb201.accuracy(0, epochs=50)
    with pytest.raises(ValueError, match="-1"):
        nb201.cost(0, epochs=-1)
    with pytest.raises(ValueError, match="0"):
        nb201.sample_ids(0)
    with pytest.raises(ValueError, match="unknown benchmark 'nb301'"):
        get_benchmark("nb301")


def test_sample_ids_seeded_and_distinct(nb201):
    a, b = nb201.sample_ids(50, rng=3), nb201.sample_ids(50, rng=3)
    assert a == b and len(set(a)) == 50
    assert nb201.sample_ids(50, rng=4) != a


def _count_macs(model: nn.Module, x: torch.Tensor) -> int:
    """MACs of convolutions and linear layers, counted with forward hooks."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            total += k * out.numel() // out.shape[0]
        elif isinstance(mod, nn.Linear):
            total += mod.in_features * mod.out_features

    hs = [m.register_forward_hook(hook) for m in model.modules()
          if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(x)
    for h in hs:
        h.remove()
    return total


@pytest.mark.parametrize("index", [0, 1, 2, 77, 1000])
def test_nb201_macs_match_a_hook_count_of_the_built_network(index):
    space = get_space("nb201")
    cell = space.cell(index)
    model = space.build(cell)
    counted = _count_macs(model, torch.zeros(1, 3, 32, 32))
    # The analytic count also includes the average pools (9 adds per output value).
    pools = sum(9 * c * h * h for op in cell.ops if op == "avg_pool_3x3"
                for c, h in ((16, 32), (32, 16), (64, 8))) * 5
    assert nb201_macs(cell.ops) == counted + pools


def test_nb201_cost_model_orders_cells_by_compute(nb201):
    space = get_space("nb201")
    big = space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
                      "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    small = space.parse("|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|")
    assert nb201.cost(big, epochs=1) > 5 * nb201.cost(small, epochs=1)
    assert nb201.cost(big, epochs=200) == pytest.approx(200 * nb201.cost(big, epochs=1))
    assert 10 < nb201.cost(big, epochs=1) < 60  # the documented scale of the model
    with pytest.raises(ValueError, match="macs_per_second"):
        NB201CostModel(macs_per_second=0)
