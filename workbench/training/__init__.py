"""Training engine: configs, the training loop with snapshots, resumable state, and
:func:`build_trainer` (one cell's splits, seeded network and Trainer)."""

from workbench.training._build import build_trainer
from workbench.training._config import OPTIMIZERS, SCHEDULES, TrainConfig
from workbench.training._trainer import Callback, Trainer, TrainResult, seeded

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "Callback",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "build_trainer",
    "seeded",
]
