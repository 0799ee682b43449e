"""The resumable run store: an SQLite index of training runs plus atomic per-run array files.

``RunStore(root)`` survives Ctrl-C, ``kill -9`` and several writer processes without losing or
duplicating runs; see :class:`RunStore` for the status model and API.
"""

from workbench.store._features import FeatureSet
from workbench.store._schema import SCHEMA_VERSION, StoreError, StoreVersionError
from workbench.store._store import RunStore, UnknownRunError, default_worker
from workbench.store._validate import METRIC_COLUMNS, RUN_STATUSES, RunRequest, config_hash, run_key

__all__ = [
    "METRIC_COLUMNS",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "FeatureSet",
    "RunRequest",
    "RunStore",
    "StoreError",
    "StoreVersionError",
    "UnknownRunError",
    "config_hash",
    "default_worker",
    "run_key",
]
