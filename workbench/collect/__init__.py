"""Collecting many training runs (with snapshots) into a run store, resumably and in parallel."""

from workbench.collect._collect import collect, make_requests
from workbench.collect._worker import DataCache, execute_run, result_arrays

__all__ = ["DataCache", "collect", "execute_run", "make_requests", "result_arrays"]
