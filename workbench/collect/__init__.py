"""Collecting many training runs (with snapshots) into a run store, resumably and in parallel:
in this process, in worker processes, or as tasks on a Ray cluster (``backend="ray"``)."""

from workbench.collect._collect import collect, make_requests
from workbench.collect._worker import (
    DataCache,
    RunOutcome,
    execute_run,
    process_cache,
    record_outcome,
    result_arrays,
    train_run,
)

__all__ = ["DataCache", "RunOutcome", "collect", "execute_run", "make_requests",
           "process_cache", "record_outcome", "result_arrays", "train_run"]
