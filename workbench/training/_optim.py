"""SGD without torch.optim's first-call import of ``torch._dynamo``.

Every ``torch.optim.Optimizer`` method is wrapped so that its first call imports
``torch._dynamo`` (1-2 s on a 2-core CPU, more than the rest of a worker's cold start put
together) only to mark the method as not-to-be-compiled. :class:`LeanSGD` is ``torch.optim.SGD``
with those wrappers unwrapped and, for dense CPU tensors, the step done with the same
arithmetic as torch's own CPU path (bit-identical; tested), so a fresh process reaches its first
trained mini-batch without that import. On other devices, and for options it does not cover,
it is torch's SGD unchanged. It stays a ``torch.optim.Optimizer``: LR schedulers, state dicts and
checkpoints work as with torch's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim import Optimizer


def _unwrapped(method: Callable[..., Any]) -> Callable[..., Any]:
    # torch._disable_dynamo keeps the plain function as __wrapped__ (functools.wraps).
    return getattr(method, "__wrapped__", method)


class LeanSGD(torch.optim.SGD):
    """``torch.optim.SGD`` whose methods do not import ``torch._dynamo`` on CPU (same results)."""

    add_param_group = _unwrapped(Optimizer.add_param_group)
    zero_grad = _unwrapped(Optimizer.zero_grad)
    state_dict = _unwrapped(Optimizer.state_dict)
    load_state_dict = _unwrapped(Optimizer.load_state_dict)

    def _lean(self) -> bool:
        """Whether the plain CPU loop applies: dense CPU grads, no foreach/fused/differentiable."""
        for group in self.param_groups:
            if group["foreach"] or group["fused"] or group["differentiable"]:
                return False
            if isinstance(group["weight_decay"], torch.Tensor):
                return False
            for p in group["params"]:
                g = p.grad
                if g is not None and (g.device.type != "cpu" or g.is_sparse):
                    return False
        return True

    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One SGD step; on CPU the arithmetic of torch's single-tensor path, else torch's."""
        if not self._lean():
            return super().step(closure)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                self._step_group(group)
        return loss

    def _step_group(self, group: dict[str, Any]) -> None:
        wd, momentum, lr = group["weight_decay"], group["momentum"], group["lr"]
        dampening, nesterov, maximize = group["dampening"], group["nesterov"], group["maximize"]
        if isinstance(lr, torch.Tensor):
            lr = lr.item()
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = p.grad if not maximize else -p.grad
            if wd != 0:
                grad = grad.add(p, alpha=wd)
            if momentum != 0:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = grad.detach().clone()
                    state["momentum_buffer"] = buf
                else:
                    buf.mul_(momentum).add_(grad, alpha=1 - dampening)
                grad = grad.add(buf, alpha=momentum) if nesterov else buf
            p.add_(grad, alpha=-lr)
