"""Helpers shared by the torch predictors: argument checks, seeded mini-batch training and
a scoped torch thread count."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from workbench._checks import check_int, check_real


def check_ints(**values: Any) -> None:
    """ValueError naming the first value that is not an int >= 1."""
    for name, v in values.items():
        check_int(name, v, minimum=1)


def check_reals(**values: Any) -> None:
    """ValueError naming the first value that is not a finite number >= 0."""
    for name, v in values.items():
        check_real(name, v, minimum=0)


def check_dropout(value: Any) -> None:
    """ValueError unless ``value`` is a dropout rate in [0, 1)."""
    check_real("dropout", value, minimum=0, maximum=1, inclusive="left")


def check_threads(n: Any) -> None:
    """ValueError unless ``n`` is None or an int >= 1 (torch CPU threads)."""
    check_int("n_threads", n, minimum=1, allow_none=True)


def train_minibatches(loss_of: Callable[[torch.Tensor], torch.Tensor],
                      opt: torch.optim.Optimizer, sched: Any, *, n: int, batch_size: int,
                      epochs: int, generator: torch.Generator,
                      device: torch.device) -> list[float]:
    """Seeded shuffled mini-batch training (one ``sched.step()`` per batch); mean loss per
    epoch. ``loss_of(idx)`` computes the loss of the samples ``idx``."""
    losses = []
    for _ in range(epochs):
        perm = torch.randperm(n, generator=generator).to(device)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            loss = loss_of(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * idx.numel()
        losses.append(total / n)
    return losses


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` CPU threads in torch, restoring the previous count afterwards.

    Tiny graphs gain nothing from intra-op parallelism and, on a busy machine, lose up to 10x.
    """
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n is not None:
            torch.set_num_threads(before)
