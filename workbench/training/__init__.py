"""Training engine: configs, the training loop with snapshots, resumable state, and
:func:`build_trainer` (one cell's splits, seeded network and Trainer)."""

from workbench.training._build import build_trainer
from workbench.training._config import OPTIMIZERS, SCHEDULES, TrainConfig
from workbench.training._optim import LeanSGD
from workbench.training._trainer import (
    DIVERGE_LOSS,
    TRAIN_STATUSES,
    Callback,
    Trainer,
    TrainResult,
    seeded,
)

__all__ = [
    "DIVERGE_LOSS",
    "OPTIMIZERS",
    "SCHEDULES",
    "TRAIN_STATUSES",
    "Callback",
    "LeanSGD",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "build_trainer",
    "seeded",
]
