"""Shared test fixtures."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

from workbench.search import TabularBackend


@pytest.fixture(scope="session", autouse=True)
def _session_environment(tmp_path_factory):
    """Decoded JPEG archives go to one folder per test session (worker processes inherit it),
    never to the user's cache; trainers use one thread unless a test says otherwise."""
    import os

    before = {k: os.environ.get(k) for k in ("WORKBENCH_CACHE", "WORKBENCH_THREADS")}
    os.environ["WORKBENCH_CACHE"] = str(tmp_path_factory.mktemp("decoded_cache"))
    # One fixed thread count: the Trainer's load-dependent choice would make bit-for-bit
    # comparisons of two trainings depend on how busy the machine was when each started.
    os.environ.setdefault("WORKBENCH_THREADS", "1")
    yield
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def one_thread():
    """Tiny networks run faster on one thread, especially on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def nb201_backend():
    """The NB201 table as a search backend (reads only; shared by the search-figure tests)."""
    return TabularBackend("nb201")


@pytest.fixture(scope="module")
def nb101_backend():
    """The NB101 1k table as a search backend (reads only; "nb101" is the 20k table)."""
    return TabularBackend("nb101_1k")


BENCH = Path(__file__).resolve().parents[1] / "bench"


@contextlib.contextmanager
def bench_module(name: str) -> Iterator[ModuleType]:
    """A ``bench/<name>.py`` script imported as a module (with ``bench/`` on the path)."""
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH))
