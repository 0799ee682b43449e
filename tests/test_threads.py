"""Choosing torch CPU threads: the pure rule on hand-made machines, the parsers, and the Trainer
applying (and restoring) its choice unless the user chose."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from workbench import _threads
from workbench._threads import (
    cgroup_quota,
    choose_threads,
    parse_cfs,
    parse_cpu_max,
    parse_omp,
    parse_threads_setting,
    threads_for_runs,
    training_threads,
    use_threads,
)


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"cores": 2}, 2),                                   # idle 2-core machine: all cores
    ({"cores": 8, "quota": 2.0}, 2),                     # container limited to 2 CPUs
    ({"cores": 8, "quota": 1.5}, 1),                     # partial CPUs round down
    ({"cores": 8, "quota": 0.25}, 1),                    # at least one thread
    ({"cores": 4, "quota": 16.0}, 4),                    # quota above the affinity mask
    ({"cores": 8, "runs": 4}, 2),                        # 4 workers share 8 cores
    ({"cores": 2, "runs": 3}, 1),                        # more runs than cores
    ({"cores": 2, "busy": 2}, 1),                        # two competitors on 2 cores
    ({"cores": 2, "busy": 1}, 1),                        # one competitor: one core left
    ({"cores": 4, "busy": 1}, 3),
    ({"cores": 4, "busy": 10}, 1),                       # saturated: one thread
    ({"cores": 2, "busy": 4, "machine_cpus": 64}, 2),    # others spread over a big host
    ({"cores": 16, "busy": 32, "machine_cpus": 64}, 8),
    ({"cores": 8, "runs": 2, "busy": 4}, 2),             # free 4 cores shared by 2 runs
    ({"cores": 2, "busy": 0}, 2),
    ({"cores": 2, "setting": 3, "busy": 5}, 3),          # $WORKBENCH_THREADS wins
    ({"cores": 2, "setting": "keep"}, None),             # leave torch's setting alone
    ({"cores": 8, "omp": 3, "busy": 6}, 3),              # $OMP_NUM_THREADS taken as given
    ({"cores": 8, "omp": 3, "setting": 5}, 5),           # ours beats OMP's
])
def test_choose_threads_on_hand_made_machines(kwargs: dict, expected: int | None) -> None:
    kwargs = dict(kwargs)
    cores = kwargs.pop("cores")
    assert choose_threads(cores, **kwargs) == expected


@pytest.mark.parametrize(("kwargs", "word"), [
    ({"cores": 0}, "cores"), ({"cores": 2, "runs": 0}, "runs"),
    ({"cores": 2, "quota": 0.0}, "quota"), ({"cores": 2, "busy": -1}, "busy"),
    ({"cores": 2, "setting": 0}, "setting"), ({"cores": 2, "machine_cpus": 0}, "machine_cpus"),
])
def test_choose_threads_rejects_bad_facts(kwargs: dict, word: str) -> None:
    kwargs = dict(kwargs)
    cores = kwargs.pop("cores")
    with pytest.raises(ValueError, match=word):
        choose_threads(cores, **kwargs)


@given(cores=st.integers(1, 256), runs=st.integers(1, 64),
       quota=st.none() | st.floats(0.01, 512), busy=st.none() | st.floats(0, 1000),
       extra=st.integers(0, 256))
def test_choice_stays_within_the_budget(cores: int, runs: int, quota: float | None,
                                        busy: float | None, extra: int) -> None:
    n = choose_threads(cores, quota=quota, runs=runs, busy=busy, machine_cpus=cores + extra)
    assert n is not None and 1 <= n <= max(1, cores // runs)
    if quota is not None:
        assert n <= max(1, math.floor(quota + 1e-9))
    assert n >= choose_threads(cores, quota=quota, runs=runs, busy=(busy or 0) + 1,
                               machine_cpus=cores + extra)  # more load never adds threads


@given(st.integers(1, 10**6), st.sampled_from(["", " ", "\t"]))
def test_setting_parser_reads_counts(n: int, pad: str) -> None:
    assert parse_threads_setting(f"{pad}{n}{pad}") == n


@given(st.text())
@example("¹")  # a Unicode digit: isdigit() but not int()
@example("٣")
def test_setting_parser_accepts_only_modes_and_counts(text: str) -> None:
    try:
        got = parse_threads_setting(text)
    except ValueError as exc:
        assert "WORKBENCH_THREADS" in str(exc) and "auto" in str(exc)
        return
    assert got in ("auto", "keep") or (isinstance(got, int) and got >= 1)
    if isinstance(got, int):
        assert text.strip().isdigit()


def test_setting_parser_modes_and_errors() -> None:
    assert parse_threads_setting(None) == "auto" and parse_threads_setting("") == "auto"
    assert parse_threads_setting(" KEEP ") == "keep" and parse_threads_setting("auto") == "auto"
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(ValueError, match=repr(bad)):
            parse_threads_setting(bad)


def test_omp_and_cgroup_parsers() -> None:
    assert parse_omp("4") == 4 and parse_omp(" 3,2 ") == 3
    assert parse_omp(None) is None and parse_omp("0") is None and parse_omp("x") is None
    assert parse_cpu_max("max 100000\n") is None
    assert parse_cpu_max("150000 100000\n") == 1.5 and parse_cpu_max("200000") == 2.0
    assert parse_cpu_max("") is None and parse_cpu_max("abc 1") is None
    assert parse_cfs("-1\n", "100000\n") is None and parse_cfs("50000", "100000") == 0.5
    assert parse_cfs("x", "1") is None


def test_cgroup_quota_reads_v2_then_v1(tmp_path) -> None:
    assert cgroup_quota(tmp_path) is None  # no cgroup files: no limit
    v1 = tmp_path / "cpu,cpuacct"
    v1.mkdir()
    (v1 / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_quota(tmp_path) == 3.0
    (tmp_path / "cpu.max").write_text("max 100000\n")  # v2 file present: it decides
    assert cgroup_quota(tmp_path) is None
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    assert cgroup_quota(tmp_path) == 1.0


def test_busy_processes_reads_procs_running(tmp_path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  1 2 3\nprocs_running 4\nprocs_blocked 0\n")
    assert _threads.busy_processes(samples=3, interval=0, stat=stat) == 3  # less this one
    stat.write_text("cpu  1 2 3\n")
    assert _threads.busy_processes(samples=1, stat=stat) is None
    assert _threads.busy_processes(stat=tmp_path / "missing") is None


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_THREADS", "3")
    assert threads_for_runs(1) == 3 and training_threads() == 3
    monkeypatch.setenv("WORKBENCH_THREADS", "keep")
    assert training_threads() is None
    assert threads_for_runs(1, load=False) == choose_threads(_threads.allowed_cores(),
                                                             quota=cgroup_quota())
    monkeypatch.setenv("WORKBENCH_THREADS", "lots")
    with pytest.raises(ValueError, match="lots"):
        threads_for_runs(1)


def test_a_count_set_by_the_user_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKBENCH_THREADS", raising=False)
    monkeypatch.setattr(_threads, "torch_default_threads", lambda: {99})
    assert training_threads() is None  # torch's count (not 99) was set by someone
    monkeypatch.setattr(_threads, "torch_default_threads", lambda: {torch.get_num_threads()})
    monkeypatch.setattr(_threads, "threads_for_runs", lambda runs=1: 1)
    assert training_threads() == 1


def test_use_threads_restores_the_count() -> None:
    before = torch.get_num_threads()
    with use_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with use_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), use_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_trainer_trains_with_its_chosen_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.data import ImageDataset
    from workbench.training import TrainConfig, Trainer

    seen: list[int] = []

    class Probe(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3 * 8 * 8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(torch.get_num_threads())
            return self.fc(x.flatten(1))

    monkeypatch.setenv("WORKBENCH_THREADS", "1")
    data = ImageDataset("toy", "train", images=torch.zeros(8, 3, 8, 8, dtype=torch.uint8).numpy(),
                        labels=[0, 1] * 4, classes=("a", "b"), source="test")
    cfg = TrainConfig(steps=2, batch_size=4, snapshot_every=None, device="cpu")
    before = torch.get_num_threads()
    trainer = Trainer(Probe(), data, cfg)
    assert trainer.threads == 1
    trainer.run()
    assert seen == [1, 1] and torch.get_num_threads() == before


def test_physical_cores_from_the_topology(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    for cpu, core in ((0, 0), (1, 0), (2, 1), (3, 1)):  # two hyper-threads per core
        topo = tmp_path / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "physical_package_id").write_text("0\n")
        (topo / "core_id").write_text(f"{core}\n")
    assert _threads.physical_cores(tmp_path) == 2
    (tmp_path / "cpu3" / "topology" / "core_id").unlink()
    assert _threads.physical_cores(tmp_path) is None  # unknown topology: no guess
