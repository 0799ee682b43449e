"""bench/layernas_order.py's tuning protocols: the configuration a source table chooses, and its
share on the reported seeds, read from the order rows."""

from __future__ import annotations

import argparse

import pytest
from conftest import bench_module

from workbench.search import TabularBackend


def _row(device, rule, order, share):
    return {"device": device, "quantile": 0.25, "rule": rule, "order_name": order,
            "top1_rate": share}


def test_the_best_tuning_share_wins_ties_go_to_the_higher_percentile():
    with bench_module("layernas_order") as m:
        rows = [_row("pixel3", "equal/candidate", "given", 0.02),
                _row("pixel3", "equal/floor", "reversed", 1.0),
                _row("pixel3", "equal/floor", "cost", 0.27)]
        tuning = [{"source": "cifar100", "device": "pixel3", "quantile": 0.25, "rule": r,
                   "order_name": o, "top1_rate": t, "mean_percentile": p}
                  for r, o, t, p in (("equal/candidate", "given", 1.0, 0.990),
                                     ("equal/floor", "reversed", 1.0, 0.995),
                                     ("equal/floor", "cost", 0.9, 0.999))]
        (chosen,) = m.protocols(rows, tuning)
    assert (chosen["rule"], chosen["order_name"]) == ("equal/floor", "reversed")
    assert chosen["top1_rate"] == 1.0 and chosen["met"] and chosen["source"] == "cifar100"
    tuning[0]["mean_percentile"] = 0.999  # now the given order wins the tie: and fails
    with bench_module("layernas_order") as m:
        (chosen,) = m.protocols(rows, tuning)
    assert chosen["order_name"] == "given" and chosen["top1_rate"] == 0.02 and not chosen["met"]


@pytest.mark.parametrize("dataset", ["cifar100"])
def test_tuning_runs_every_configuration_on_the_source_table(dataset, one_thread):
    args = argparse.Namespace(buckets=4, capacity=1, range_rule="exact", max_trainings=12,
                              tune_seeds=2, tune_first_seed=1000)
    with bench_module("layernas_order") as m:
        out = m.tune_setting(TabularBackend("nb201", dataset), "fpga", 0.5, args)
        assert {(t["rule"], t["order_name"]) for t in out} == {
            (r, o) for r in m.RULES for o in m.TUNE_ORDERS}
    assert all(t["source"] == dataset and 0 <= t["top1_rate"] <= 1
               and 0 <= t["mean_percentile"] <= 1 for t in out)


def test_summary_lines_without_random_orders():
    # --random-orders 0 used to crash while printing (the random range is None then)
    rows = [_row("pixel3", "equal/candidate", o, v)
            for o, v in (("given", 0.5), ("reversed", 1.0), ("cost", 0.25))]
    with bench_module("layernas_order") as m:
        (s,) = m.summary(rows)
        line = m.summary_line(s)
        assert s["random_min"] is None and "random" not in line
        assert "given 0.50" in line and "reversed 1.00" in line and s["spread"] == 0.75
        rows.append(_row("pixel3", "equal/candidate", "random 1", 0.75))
        assert "random 0.75-0.75" in m.summary_line(m.summary(rows)[0])
