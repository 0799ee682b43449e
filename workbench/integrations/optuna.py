"""``workbench.integrations.optuna``: :class:`DynamicsPruner` and the helpers that feed it
(needs the ``optuna`` extra); see ``workbench.integrations._optuna`` for where data live."""

from workbench.integrations._optuna import (
    SCORE_ATTR,
    SNAPSHOTS_ATTR,
    DynamicsPruner,
    decode_snapshots,
    encode_snapshots,
    report_snapshots,
    score_key,
    study_dynamics,
    study_to_store,
    trial_snapshots,
)

__all__ = ["SCORE_ATTR", "SNAPSHOTS_ATTR", "DynamicsPruner", "decode_snapshots",
           "encode_snapshots", "report_snapshots", "score_key", "study_dynamics",
           "study_to_store", "trial_snapshots"]
