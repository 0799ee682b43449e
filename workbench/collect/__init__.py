"""Collecting many training runs (with snapshots) into a run store, resumably and in parallel:
in this process, in worker processes, or as tasks on a Ray cluster (``backend="ray"``); plus
the Ray helpers the training backends share and the label convention of stored runs."""

from workbench.collect._collect import collect, make_requests
from workbench.collect._labels import run_label
from workbench.collect._ray import (
    INSTALL_HINT,
    check_resources,
    import_ray,
    init_ray,
    remote_options,
    task_device,
    threads_for,
    to_cpu,
)
from workbench.collect._worker import RunOutcome, execute_run, record_outcome, train_run

__all__ = ["INSTALL_HINT", "RunOutcome", "check_resources", "collect", "execute_run",
           "import_ray", "init_ray", "make_requests", "record_outcome", "remote_options",
           "run_label", "task_device", "threads_for", "to_cpu", "train_run"]
