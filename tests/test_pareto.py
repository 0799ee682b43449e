"""The Pareto-front figure (data step + plot step) and LayerNAS bucket labels in ms (#16)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from workbench.search import (
    CostConstraint,
    LayerNAS,
    RegularizedEvolution,
    pareto_mask,
)
from workbench.viz import get_figure, pareto_data, plot_pareto

LATENCY = ("latency", "edgegpu")


def test_pareto_data_marks_the_front_and_the_search_paths(nb201_backend):
    bench = nb201_backend.benchmark
    c = CostConstraint(LATENCY, max_value=6.0)
    re_ = RegularizedEvolution(nb201_backend, population=5, sample_size=2, budget=12,
                               max_evaluations=15, seed=3, constraint=c)
    re_.run()
    nas = LayerNAS(nb201_backend, target=6.0, cost=LATENCY, budget=12, seed=0)
    nas.run(max_evaluations=20)
    data = pareto_data(bench, *LATENCY, {"RE": re_, "LayerNAS": nas.history})
    cells = data[data["kind"] == "cell"]
    assert len(cells) == len(bench)
    lat = bench.all_costs(*LATENCY)
    np.testing.assert_array_equal(cells["cost"].to_numpy(), lat.to_numpy())
    np.testing.assert_array_equal(cells["on_front"].to_numpy(),
                                  pareto_mask(lat.to_numpy(), bench.all_accuracies().to_numpy()))
    front = cells[cells["on_front"]].sort_values("cost")
    assert front["accuracy"].is_monotonic_increasing  # a front rises with cost
    path = data[data["method"] == "RE"]
    assert list(path["order"]) == list(range(15)) and (path["cost"] <= 6.0).all()
    assert list(path["cell_id"]) == list(re_.history["candidate"].astype(str))
    assert path["answer"].sum() == 1
    best = path[path["answer"]].iloc[0]
    assert best["cell_id"] == nb201_backend.cell_id(re_.best()[0])
    trained = nas.history[nas.history["trained"].astype(bool)]
    assert len(data[data["method"] == "LayerNAS"]) == len(trained)
    assert data.attrs["unit"] == "ms"


def test_pareto_plot_draws_cells_front_and_paths(nb201_backend):
    bench = nb201_backend.benchmark
    fig = get_figure("pareto", title="t")(bench, "energy", "fpga")
    assert isinstance(fig, go.Figure) and fig.layout.title.text == "t"
    assert [t.name for t in fig.data][:2] == ["cells", "Pareto front"]
    assert "fpga energy (mJ)" == fig.layout.xaxis.title.text
    with pytest.raises(ValueError, match="use pareto_data"):
        plot_pareto(pareto_data(bench).drop(columns="on_front"))
    with pytest.raises(ValueError, match="needs a device"):
        pareto_data(bench, "latency", None)
    with pytest.raises(ValueError, match="'candidate' column"):
        pareto_data(bench, *LATENCY, {"x": 3})


def test_layernas_bucket_labels_carry_the_cost_unit(nb201_backend):
    nas = LayerNAS(nb201_backend, target=(2.0, 6.0), cost=LATENCY, budget=12, seed=0)
    labels = nas.range_table()["buckets"]
    assert all(" ms]" in b for b in labels)
    params = LayerNAS(nb201_backend, target=(0.3, 0.6), budget=12, seed=0)
    assert not any("ms" in b for b in params.range_table()["buckets"])
