"""LeanSGD: torch's SGD results bit for bit on CPU, without importing torch._dynamo."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
from torch import nn

from workbench.training import LeanSGD


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    body = nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.ReLU(), nn.Linear(7, 3))
    # A module outside the forward pass: parameters that never get a gradient.
    return nn.ModuleDict({"body": body, "unused": nn.Linear(2, 2)})


def _groups(net: nn.Module) -> list[dict]:
    params = list(net.parameters())
    return [{"params": [p for p in params if p.ndim > 1], "weight_decay": 5e-4},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]


def _steps(net: nn.Module, opt: torch.optim.Optimizer, steps: int, seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(16, 5, generator=gen)
        y = torch.randint(0, 3, (16,), generator=gen)
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net["body"](x), y).backward()
        opt.step()


def _train(opt_cls: type, steps: int, **kw: object) -> tuple[nn.Module, torch.optim.Optimizer]:
    net = _net(0)
    opt = opt_cls(_groups(net), lr=0.1, **kw)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    for i in range(steps):
        _steps(net, opt, 1, seed=i)
        sched.step()
    return net, opt


@pytest.mark.parametrize("kw", [
    {"momentum": 0.9, "nesterov": True},
    {"momentum": 0.9},
    {"momentum": 0.9, "dampening": 0.1, "maximize": True},
    {},
])
def test_lean_sgd_matches_torch_sgd_bit_for_bit(kw: dict) -> None:
    ours, opt_ours = _train(LeanSGD, 6, **kw)
    ref, opt_ref = _train(torch.optim.SGD, 6, **kw)
    for (name, a), b in zip(ours.state_dict().items(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    # The same state dict layout as torch's, so checkpoints move between the two.
    sa, sb = opt_ours.state_dict(), opt_ref.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for k in sa["state"]:
        assert torch.equal(sa["state"][k]["momentum_buffer"], sb["state"][k]["momentum_buffer"]) \
            if kw.get("momentum") else sa["state"][k] == sb["state"][k]


def test_lean_sgd_continues_a_torch_sgd_run_exactly() -> None:
    kw = {"lr": 0.1, "momentum": 0.9, "nesterov": True}
    ref = _net(0)
    opt_ref = torch.optim.SGD(_groups(ref), **kw)
    _steps(ref, opt_ref, 3)
    ours = _net(5)
    ours.load_state_dict(ref.state_dict())
    opt = LeanSGD(_groups(ours), **kw)
    # A copy, as a checkpoint on disk is: load_state_dict keeps the buffers it is given.
    opt.load_state_dict(copy.deepcopy(opt_ref.state_dict()))
    _steps(ref, opt_ref, 3, seed=2)
    _steps(ours, opt, 3, seed=2)
    for a, b in zip(ours.parameters(), ref.parameters(), strict=True):
        assert torch.equal(a, b)


def test_lean_sgd_falls_back_to_torch_for_foreach() -> None:
    ours, _ = _train(LeanSGD, 3, momentum=0.9, foreach=True)
    ref, _ = _train(torch.optim.SGD, 3, momentum=0.9, foreach=True)
    for a, b in zip(ours.parameters(), ref.parameters(), strict=True):
        assert torch.allclose(a, b)


def test_a_trainer_reaches_its_first_step_without_importing_dynamo() -> None:
    code = (
        "import sys, torch\n"
        "from workbench.spaces import get_space\n"
        "from workbench.training import TrainConfig, build_trainer\n"
        "s = get_space('nb201')\n"
        "t = build_trainer(s, s.sample(0), TrainConfig(steps=2, device='cpu'),"
        " model='tiny')\n"
        "t.run(until=2)\n"
        "t.load_state_dict(t.state_dict())\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-2000:]
