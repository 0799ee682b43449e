"""Training hyperparameters, validated at construction (every bad value named in the error)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

OPTIMIZERS = ("sgd", "rmsprop", "adamw")
SCHEDULES = ("cosine", "constant")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True)
class TrainConfig:
    """How to train one network. Budget: ``steps`` mini-batches or ``epochs`` (exactly one).

    Defaults: SGD + Nesterov momentum 0.9, lr 0.05, cosine decay to 0 over the budget, weight
    decay 5e-4, batch 64, snapshots every 100 mini-batches. ``optimizer="rmsprop"`` follows
    NAS-Bench-101 (alpha 0.9, eps 1.0, momentum 0.9; set lr=0.2, weight_decay=1e-4, batch 256
    for its recipe; torch's eps sits outside the square root, TensorFlow's inside).
    """

    steps: int | None = None
    epochs: float | None = None
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_steps: int = 0
    label_smoothing: float = 0.0
    grad_clip: float | None = 5.0
    snapshot_every: int | None = 100
    snapshot_layers: int = 65
    snapshot_sample: int = 1024
    curve_every: int = 10
    eval_every: int | None = None
    eval_at: tuple[int, ...] = field(default_factory=tuple)
    eval_batch_size: int = 500
    augment: bool = True
    resize: int | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    channels_last: bool = True

    def __post_init__(self) -> None:
        if (self.steps is None) == (self.epochs is None):
            raise ValueError(f"give exactly one of steps or epochs, got steps={self.steps!r}, "
                             f"epochs={self.epochs!r}")
        if self.steps is not None and not (_is_int(self.steps) and self.steps >= 1):
            raise ValueError(f"steps must be an int >= 1, got {self.steps!r}")
        if self.epochs is not None and not (isinstance(self.epochs, (int, float))
                                            and not isinstance(self.epochs, bool)
                                            and math.isfinite(self.epochs) and self.epochs > 0):
            raise ValueError(f"epochs must be a number > 0, got {self.epochs!r}")
        for name in ("batch_size", "curve_every", "eval_batch_size", "snapshot_layers",
                     "snapshot_sample"):
            v = getattr(self, name)
            if not (_is_int(v) and v >= 1):
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        for name in ("snapshot_every", "eval_every", "resize"):
            v = getattr(self, name)
            if v is not None and not (_is_int(v) and v >= 1):
                raise ValueError(f"{name} must be None or an int >= 1, got {v!r}")
        if not (_is_int(self.warmup_steps) and self.warmup_steps >= 0):
            raise ValueError(f"warmup_steps must be an int >= 0, got {self.warmup_steps!r}")
        if not (_is_int(self.seed) and self.seed >= 0):
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; allowed: {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; allowed: {SCHEDULES}")
        for name, lo, hi in (("lr", 0.0, math.inf), ("momentum", 0.0, 1.0),
                             ("weight_decay", 0.0, math.inf), ("label_smoothing", 0.0, 1.0)):
            v = getattr(self, name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if not ok or not lo <= v < hi or (name == "lr" and v == 0):
                raise ValueError(f"{name} must be a finite number in [{lo}, {hi}), got {v!r}"
                                 + (" (and > 0)" if name == "lr" else ""))
        if self.grad_clip is not None and not (isinstance(self.grad_clip, (int, float))
                                               and self.grad_clip > 0):
            raise ValueError(f"grad_clip must be None or > 0, got {self.grad_clip!r}")
        if not all(_is_int(s) and s >= 1 for s in self.eval_at):
            raise ValueError(f"eval_at must hold ints >= 1, got {self.eval_at!r}")
        if not isinstance(self.device, str):
            raise ValueError(f"device must be a string such as 'auto', 'cpu', 'cuda', "
                             f"got {self.device!r}")
        object.__setattr__(self, "eval_at", tuple(sorted(set(self.eval_at))))

    def total_steps(self, batches_per_epoch: int) -> int:
        """The budget in mini-batches, given the loader's batches per epoch."""
        if self.steps is not None:
            return self.steps
        return max(1, round(float(self.epochs) * batches_per_epoch))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (for the run store)."""
        d = asdict(self)
        d["eval_at"] = list(self.eval_at)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}; allowed: {sorted(names)}")
        d = dict(d)
        if "eval_at" in d:
            d["eval_at"] = tuple(d["eval_at"])
        return cls(**d)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (and validated)."""
        if "steps" in changes and "epochs" not in changes:
            changes["epochs"] = None
        if "epochs" in changes and "steps" not in changes:
            changes["steps"] = None
        return replace(self, **changes)
