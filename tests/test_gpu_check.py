"""bench/gpu_check.py: without CUDA it says so, writes nothing and exits 0; its code paths run
(on the CPU, in its development dry-run mode) against the package's real APIs."""

from __future__ import annotations

import pytest
import torch
from conftest import BENCH, bench_module


@pytest.fixture(scope="module")
def gpu_check():
    with bench_module("gpu_check") as module:
        yield module


def test_without_cuda_it_says_so_and_exits_0(gpu_check, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    called: list[str] = []
    monkeypatch.setattr(gpu_check, "section_training", lambda args: called.append("x"))
    results = BENCH / "results" / "gpu.json"
    before = results.stat().st_mtime_ns if results.exists() else None
    assert gpu_check.main([]) == 0
    assert "no CUDA" in capsys.readouterr().out and not called
    assert (results.stat().st_mtime_ns if results.exists() else None) == before


def test_sections_are_the_documented_ones(gpu_check) -> None:
    assert all(callable(getattr(gpu_check, f"section_{name}")) for name in gpu_check.SECTIONS)
    for name in gpu_check.SECTIONS:
        assert f"``{name}``" in gpu_check.__doc__


@pytest.mark.slow
def test_gcn_section_runs_on_the_cpu(gpu_check, capsys: pytest.CaptureFixture[str]) -> None:
    assert gpu_check.main(["--device", "cpu", "--sections", "gcn", "--epochs", "1"]) == 0
    assert "GCN:" in capsys.readouterr().out
