"""Shared test fixtures."""

from __future__ import annotations

import pytest
import torch

from workbench.search import TabularBackend


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
    """The NB101 1k table as a search backend (reads only)."""
    return TabularBackend("nb101")
