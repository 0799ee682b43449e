"""Training engine: configs, the training loop with snapshots, presets and resumable state."""

from workbench.training._config import OPTIMIZERS, SCHEDULES, TrainConfig
from workbench.training._presets import MODEL_PRESETS, model_kwargs
from workbench.training._trainer import Callback, Trainer, TrainResult, seeded

__all__ = [
    "MODEL_PRESETS",
    "OPTIMIZERS",
    "SCHEDULES",
    "Callback",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "model_kwargs",
    "seeded",
]
