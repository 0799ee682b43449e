"""The resumable run store: an SQLite index of training runs plus atomic per-run array files.

``RunStore(root)`` survives Ctrl-C, ``kill -9`` and several writer processes (leases renewed by a
:class:`Heartbeat`; claims checked when a run finishes) without losing or
duplicating runs; see :class:`RunStore` for the status model and API.
"""

from workbench.store._features import FeatureSet
from workbench.store._files import StoreFileError
from workbench.store._schema import (
    SCHEMA_VERSION,
    StoreError,
    StoreReadOnlyError,
    StoreVersionError,
)
from workbench.store._store import (
    DEFAULT_LEASE,
    ClaimLostError,
    Heartbeat,
    RunStore,
    UnknownRunError,
    default_worker,
    owner_gone,
)
from workbench.store._validate import METRIC_COLUMNS, RUN_STATUSES, RunRequest, config_hash, run_key

__all__ = [
    "DEFAULT_LEASE",
    "METRIC_COLUMNS",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "ClaimLostError",
    "FeatureSet",
    "Heartbeat",
    "RunRequest",
    "RunStore",
    "StoreError",
    "StoreFileError",
    "StoreReadOnlyError",
    "StoreVersionError",
    "UnknownRunError",
    "config_hash",
    "default_worker",
    "owner_gone",
    "run_key",
]
