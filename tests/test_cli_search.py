"""`workbench search`: a search on real (tiny) training from the shell, resumable from its store."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.cli import GCN_SEED, main
from workbench.predictors import DynamicsForest, dynamics_inputs, save_predictor
from workbench.search import TrainingBackend
from workbench.search._base import BASE_COLUMNS
from workbench.store import RunStore
from workbench.training import TrainConfig

# NB201 `tiny` networks, rungs of 2, 6 and 18 mini-batches, a snapshot every mini-batch.
TINY = ["--space", "nb201", "--model", "tiny", "--min-budget", "2", "--max-budget", "18",
        "--snapshot-every", "1", "--val-size", "64", "--device", "cpu"]


def search(store: Path, *extra: str) -> int:
    return main(["search", *TINY, "--store", str(store), *extra])


def run_files(store: Path) -> dict[str, tuple[int, int]]:
    """(mtime, size) of every file of every stored run."""
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted((store / "runs").rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sh_store(tmp_path_factory, one_thread):
    """A store holding one SH search of 9 candidates (observed ranker), and its output."""
    store = tmp_path_factory.mktemp("search") / "store"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert search(store, "--method", "sh", "--n", "9") == 0
    return store, out.getvalue()


def test_sh_writes_history_and_a_rerun_trains_nothing(sh_store, capsys):
    store, out = sh_store
    assert "best cell: |" in out and "table final accuracy (cifar10)" in out
    assert "13 evaluations (0 answered from the store, 42 new mini-batches trained)" in out
    csv = store / "history-sh-observed-0.csv"
    first = pd.read_csv(csv)
    assert {*BASE_COLUMNS, "rung", "rank"} <= set(first.columns)
    assert first["budget"].tolist() == [2.0] * 9 + [6.0] * 3 + [18.0]
    assert first["cum_cost"].iloc[-1] == 42  # mini-batches: 9*2 + 3*4 + 1*12
    before = run_files(store)
    assert before
    assert search(store, "--method", "sh", "--n", "9") == 0
    out = capsys.readouterr().out
    assert "(13 answered from the store, 0 new mini-batches trained)" in out
    assert run_files(store) == before  # no run file was written again
    pd.testing.assert_frame_equal(pd.read_csv(csv), first)


def test_ctrl_c_keeps_what_finished_and_the_same_command_resumes(tmp_path, monkeypatch, capsys,
                                                                 one_thread):
    store = tmp_path / "store"
    real = TrainingBackend.evaluate
    calls = []

    def interrupt_third(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(TrainingBackend, "evaluate", interrupt_third)
    argv = ["--method", "sh", "--n", "3", "--max-budget", "6", "--out", str(tmp_path / "h.csv")]
    assert search(store, *argv) == 130
    err = capsys.readouterr().err
    assert "interrupted after 2 evaluations" in err
    assert "Resume with the same command:\n  workbench search --space nb201" in err
    assert not (tmp_path / "h.csv").exists()
    monkeypatch.setattr(TrainingBackend, "evaluate", real)
    assert search(store, *argv) == 0
    out = capsys.readouterr().out
    assert "4 evaluations (2 answered from the store, 6 new mini-batches trained)" in out
    assert len(pd.read_csv(tmp_path / "h.csv")) == 4


@pytest.fixture(scope="module")
def predictor_file(sh_store, tmp_path_factory):
    """A DynamicsForest fitted on the snapshots up to mini-batch 2 of the stored rung-0 runs."""
    store, _ = sh_store
    backend = TrainingBackend("nb201", max_budget=18, model="tiny", val_size=64,
                              config=TrainConfig(steps=18, resize=16, snapshot_every=1,
                                                 device="cpu", eval_at=(2, 6, 18)),
                              checkpoints=RunStore(store))
    ids = pd.read_csv(store / "history-sh-observed-0.csv")["candidate"].astype(str)[:9]
    evs = [backend.evaluate(cid, 2) for cid in ids]
    maps = [np.concatenate([s.weights, s.grads], axis=-1)
            for s in (ev.snapshots.truncate(2) for ev in evs)]
    p = DynamicsForest(n_estimators=10).fit(dynamics_inputs(np.stack(maps)),
                                           [ev.final for ev in evs])
    p.metadata_ = {"step": 2, "model_preset": "tiny", "snapshot_every": 1}
    path = tmp_path_factory.mktemp("predictor") / "dyn.npz"
    save_predictor(p, path, metadata=p.metadata_)
    return path


def test_dynamics_ranker_from_a_predictor_file(sh_store, predictor_file, capsys):
    store, _ = sh_store
    out_csv = store / "dyn.csv"
    assert search(store, "--method", "sh", "--n", "9", "--ranker", "dynamics",
                  "--predictor", str(predictor_file), "--out", str(out_csv)) == 0
    out = capsys.readouterr().out
    assert "best cell: |" in out
    h = pd.read_csv(out_csv)
    assert len(h) == 13
    rung0 = h[h["rung"] == 0]
    assert not np.allclose(rung0["ranker_score"], rung0["score"])  # the predictor ranked it
    assert int(re.search(r"\((\d+) answered from the store", out).group(1)) >= 9  # rung 0


def test_combined_ranker_keeps_the_gcn_cells_out(tmp_path, predictor_file, capsys, one_thread):
    store = tmp_path / "store"
    assert search(store, "--method", "sh", "--n", "3", "--max-budget", "6", "--ranker",
                  "combined", "--predictor", str(predictor_file), "--gcn-cells", "12") == 0
    captured = capsys.readouterr()
    assert "fitting the GCN on 12 nb201 table cells" in captured.err
    h = pd.read_csv(store / "history-sh-combined-0.csv")
    assert len(h) == 4
    gcn_cells = TrainingBackend("nb201", max_budget=6).sample(12, rng=GCN_SEED)
    assert not {str(c) for c in h["candidate"]} & {
        TrainingBackend("nb201", max_budget=6).cell_id(c) for c in gcn_cells}


@pytest.mark.parametrize(("extra", "named"), [
    (["--ranker", "dynamics", "--method", "random"], "--ranker 'dynamics' does not apply to"),
    (["--ranker", "dynamics"], "reads snapshots up to mini-batch 100"),
    (["--ranker", "dynamics", "--min-budget", "100", "--max-budget", "300"], "--model 'tiny'"),
    (["--ranker", "dynamics", "--predictor", "nope.npz"], "nope.npz: no such file"),
    (["--predictor", "nope.npz"], "--predictor applies to --ranker dynamics or combined"),
    (["--min-budget", "20"], "--min-budget 20 must not exceed --max-budget 18"),
    (["--method", "layernas", "--ranker", "gcn"], "does not apply to --method layernas"),
    (["--method", "layernas", "--space", "nb101"], "--space nb101"),
    (["--evaluations", "5"],
     "--evaluations applies to random, evolution, local_search, optuna, layernas; sh"),
    (["--eta", "1"], "--eta must be >= 2, got 1.0"),
    (["--n", "0"], "--n must be >= 1, got 0"),
    (["--dataset", "imagenet"], "'imagenet'"),
    (["--cost", "latency:pixel3"], "--cost and --max-cost go together"),
    (["--max-cost", "5"], "--cost and --max-cost go together"),
    (["--cost", "latency:pixel", "--max-cost", "5"],
     "unknown --cost 'latency:pixel' for nb201 on cifar10; allowed: params, latency:edgegpu"),
    (["--space", "nb101", "--cost", "energy:fpga", "--max-cost", "5"], "allowed: params"),
    (["--cost", "params", "--max-cost", "nan"], "--max-cost must be a finite number"),
])
def test_bad_arguments_exit_2_naming_the_value(tmp_path, capsys, extra, named):
    store = tmp_path / "store"
    assert search(store, *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("workbench search: error: ") and named in err
    assert not (store / "runs").exists() or not run_files(store)  # nothing was trained


def test_bad_predictor_files_exit_2(tmp_path, predictor_file, capsys):
    junk = tmp_path / "junk.npz"
    junk.write_text("not a predictor")
    assert search(tmp_path / "s", "--ranker", "dynamics", "--predictor", str(junk)) == 2
    assert "junk.npz is not a readable predictor file" in capsys.readouterr().err
    assert search(tmp_path / "s", "--ranker", "dynamics", "--predictor", str(predictor_file),
                  "--min-budget", "1") == 2
    assert "reads snapshots up to mini-batch 2, but the first rung" in capsys.readouterr().err
    assert search(tmp_path / "s", "--ranker", "dynamics", "--predictor", str(predictor_file),
                  "--snapshot-every", "2") == 2
    assert "--snapshot-every 2 does not match" in capsys.readouterr().err


def test_unknown_choices_are_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["search", "--store", "x", "--method", "bogus"])
    assert exc.value.code == 2 and "'bogus'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # the old aliases are gone: registry names only
        main(["search", "--store", "x", "--method", "hb"])
    assert exc.value.code == 2 and "hyperband" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["search", "--method", "sh"])  # --store is required
    assert exc.value.code == 2 and "--store" in capsys.readouterr().err


def test_the_methods_are_registered_search_names():
    from workbench.cli import RANKED_METHODS, SEARCH_METHODS
    from workbench.search import list_searches

    assert set(SEARCH_METHODS) <= set(list_searches())
    assert set(RANKED_METHODS) <= set(SEARCH_METHODS)


@pytest.mark.parametrize("method", ["random", "evolution", "local_search", "optuna", "layernas",
                                    "hyperband"])
def test_other_methods_run(tmp_path, capsys, method, one_thread):
    extra = ["--max-budget", "6"] + ([] if method == "hyperband" else [
        "--evaluations", "12" if method == "layernas" else "2"])
    assert search(tmp_path / "store", "--method", method, *extra) == 0
    out = capsys.readouterr().out
    assert "best cell: |" in out
    h = pd.read_csv(tmp_path / "store" / f"history-{method}-observed-0.csv")
    assert set(BASE_COLUMNS) <= set(h.columns) and len(h) >= 2


@pytest.mark.parametrize("method", ["sh", "random", "optuna", "layernas"])
def test_a_cost_target_holds_on_real_training(tmp_path, capsys, method, one_thread):
    from workbench.benchmarks import get_benchmark

    lat = get_benchmark("nb201").all_costs("latency", "pixel3")
    limit = float(np.quantile(lat, 0.2))
    extra = ["--max-budget", "6", "--cost", "latency:pixel3", "--max-cost", f"{limit:.6f}"]
    extra += {"sh": ["--n", "6"], "layernas": ["--evaluations", "40"]}.get(
        method, ["--evaluations", "4"])
    assert search(tmp_path / "store", "--method", method, *extra) == 0
    out = capsys.readouterr().out
    h = pd.read_csv(tmp_path / "store" / f"history-{method}-observed-0.csv")
    trained = lat.loc[h["candidate"].astype(str)]
    assert len(trained) >= 4
    if method != "layernas":  # its tables hold prefixes on the way, costlier than the target
        assert (trained <= limit).all()
    best = re.search(r"best cell: .* \(id (\d+)\)", out).group(1)
    assert lat.loc[best] <= limit
    assert re.search(rf"latency:pixel3: [0-9.e-]+ ms \(--max-cost {limit:g}\)", out)
