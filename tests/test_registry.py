"""timm-style smoke test over every registered search space, plus the registry itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench._registry import Registry
from workbench.spaces import get_space, list_spaces
from workbench.training import model_kwargs


@pytest.mark.parametrize("name", list_spaces())
def test_every_registered_space_samples_encodes_and_builds(name):
    space = get_space(name)
    assert space.name == name
    rng = np.random.default_rng(0)
    cell = space.sample(rng)
    assert space.parse(space.format(cell)) == cell
    child = space.mutate(cell, rng)
    assert child != cell and space.cell_id(child) != space.cell_id(cell)
    for kind in space.encodings:
        a, b = space.encode(cell, kind), space.encode(child, kind)
        assert a.shape == b.shape and a.ndim == 1
    with pytest.raises(ValueError, match="bogus"):
        space.encode(cell, "bogus")
    net = space.build(cell, **model_kwargs(name, "tiny"))
    out = net(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 10)


def test_registry_rejects_duplicates_and_names_unknowns():
    reg: Registry[int] = Registry("widget")
    reg.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(lambda: 2)
    assert reg.create("a") == 1 and "a" in reg and reg.names() == ["a"]
    with pytest.raises(ValueError, match=r"unknown widget 'b'; available: \['a'\]"):
        reg.create("b")
