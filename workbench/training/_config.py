"""Training hyperparameters, validated at construction (every bad value named in the error)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from workbench._checks import check_choice, check_int, check_real

OPTIMIZERS = ("sgd", "rmsprop", "adamw")
SCHEDULES = ("cosine", "constant")


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
        ints = {"steps": (1, True), "batch_size": (1, False), "curve_every": (1, False),
                "eval_batch_size": (1, False), "snapshot_layers": (1, False),
                "snapshot_sample": (1, False), "snapshot_every": (1, True),
                "eval_every": (1, True), "resize": (1, True), "warmup_steps": (0, False),
                "seed": (0, False)}
        for name, (minimum, allow_none) in ints.items():  # numpy ints stored as Python ints
            value = check_int(name, getattr(self, name), minimum=minimum, allow_none=allow_none)
            object.__setattr__(self, name, value)
        check_real("epochs", self.epochs, minimum=0, inclusive="neither", allow_none=True)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_real("lr", self.lr, minimum=0, inclusive="neither")
        check_real("momentum", self.momentum, minimum=0, maximum=1, inclusive="left")
        check_real("weight_decay", self.weight_decay, minimum=0)
        check_real("label_smoothing", self.label_smoothing, minimum=0, maximum=1,
                   inclusive="left")
        check_real("grad_clip", self.grad_clip, minimum=0, inclusive="neither", allow_none=True)
        if isinstance(self.eval_at, (str, bytes)):
            raise ValueError(f"eval_at must hold ints >= 1, got {self.eval_at!r}")
        eval_at = [check_int("each eval_at step", s, minimum=1) for s in self.eval_at]
        for name in ("nesterov", "augment", "amp", "channels_last"):
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):  # "no"/"false" would count as true
                raise ValueError(f"{name} must be True or False, got {value!r}")
            object.__setattr__(self, name, bool(value))
        if not isinstance(self.device, str):
            raise ValueError(f"device must be a string such as 'auto', 'cpu', 'cuda', "
                             f"got {self.device!r}")
        object.__setattr__(self, "eval_at", tuple(sorted(set(eval_at))))

    def total_steps(self, batches_per_epoch: int) -> int:
        """The budget in mini-batches, given the loader's batches per epoch."""
        if self.steps is not None:
            return self.steps
        assert self.epochs is not None  # __post_init__: exactly one of steps and epochs
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
