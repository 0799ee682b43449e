"""The workbench in the tools researchers already use: NAP2 dynamics pruning inside Optuna and
TensorBoard export of stored runs (``docs/integrations.md``; snapshots of any model come from
``workbench.features.SnapshotRecorder``).

- ``workbench.integrations.optuna`` (extra ``optuna``): :class:`DynamicsPruner`, an Optuna
  pruner deciding Successive-Halving rungs by a dynamics predictor's score of each trial's
  snapshots; :func:`report_snapshots` puts a trial's snapshots in the study's storage (RDB /
  SQLite, several processes); :func:`study_dynamics` gives predictor inputs of a study's trials.
  The same names are importable from here (optuna is imported on first use).
- :func:`export_tensorboard` (extra ``tensorboard``): curves, per-layer statistics and
  histograms of stored runs as TensorBoard event files (``workbench runs export --tensorboard``).
- Ray Tune: no scheduler here, on purpose; ``RayTrainingBackend`` with ``SuccessiveHalving``
  and a ``DynamicsRanker`` is the same decision on Ray (see docs/integrations.md).
"""

from typing import Any

from workbench.integrations._tensorboard import INSTALL_HINT, export_tensorboard, write_run

#: Names served lazily from the Optuna module (importing them needs optuna).
OPTUNA_NAMES = ("DynamicsPruner", "SCORE_ATTR", "SNAPSHOTS_ATTR", "decode_snapshots",
                "encode_snapshots", "report_snapshots", "score_key", "study_dynamics",
                "study_to_store", "trial_snapshots")
OPTUNA_HINT = "the Optuna integration needs optuna: pip install -e '.[optuna]'"


def __getattr__(name: str) -> Any:
    if name in OPTUNA_NAMES:
        try:
            from workbench.integrations import _optuna
        except ImportError as err:
            if getattr(err, "name", None) != "optuna":
                raise
            raise ImportError(f"{OPTUNA_HINT} ({err})") from None
        return getattr(_optuna, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["INSTALL_HINT", "OPTUNA_HINT", "OPTUNA_NAMES", "export_tensorboard", "write_run",
           *OPTUNA_NAMES]
