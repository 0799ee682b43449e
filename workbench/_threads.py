"""How many torch CPU threads a run should use, from the cores this process may really use.

On a shared machine torch's default (one thread per visible core) makes OpenMP threads spin
while other processes hold the cores: a training step can become tens of times slower. The
choice here is a pure function (:func:`choose_threads`) of

* the cores this process may run on (``os.sched_getaffinity``, else ``os.cpu_count()``),
* the cgroup CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``),
* ``$WORKBENCH_THREADS`` (``auto``, the default; ``keep``: leave torch's setting alone; or a
  thread count) and ``$OMP_NUM_THREADS`` (a count set by the user is taken as given),
* how many runs share those cores (collect's worker processes), and
* how many other processes are running right now (``procs_running`` of ``/proc/stat``).

:func:`training_threads` gathers these facts for a :class:`~workbench.training.Trainer` (None
when the user chose torch's thread count), :func:`threads_for_runs` for a pool of workers.
Nothing is read or set at import. Inter-op threads are left alone: torch allows setting them
only once, before any parallel work, and the training loop does not use them.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from workbench._checks import check_int, check_real, short_repr

#: Environment variable overriding the choice: ``auto``, ``keep`` or a thread count >= 1.
THREADS_ENV = "WORKBENCH_THREADS"
#: The words ``$WORKBENCH_THREADS`` accepts besides a thread count.
THREAD_MODES = ("auto", "keep")

_CGROUP = Path("/sys/fs/cgroup")
_PROC_STAT = Path("/proc/stat")


def parse_threads_setting(value: str | None) -> int | str:
    """``$WORKBENCH_THREADS`` as ``"auto"`` (unset or empty too), ``"keep"`` or an int >= 1."""
    if value is None or not value.strip():
        return "auto"
    text = value.strip().lower()
    if text in THREAD_MODES:
        return text
    if text.isascii() and text.isdigit() and int(text) >= 1:  # not "¹" or "٣"
        return int(text)
    raise ValueError(f"${THREADS_ENV} must be one of {THREAD_MODES} or an int >= 1, "
                     f"got {short_repr(value)}")


def parse_omp(value: str | None) -> int | None:
    """The thread count ``$OMP_NUM_THREADS`` asks for (its first level), None if unset or invalid.

    Invalid values are ignored here as OpenMP itself ignores them.
    """
    if value is None:
        return None
    first = value.strip().split(",")[0].strip()
    return int(first) if first.isascii() and first.isdigit() and int(first) >= 1 else None


def parse_cpu_max(text: str) -> float | None:
    """CPUs allowed by a cgroup v2 ``cpu.max`` line (``"max 100000"``: no limit, None)."""
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    try:
        quota = float(parts[0])
        period = float(parts[1]) if len(parts) > 1 else 100000.0
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def parse_cfs(quota: str, period: str) -> float | None:
    """CPUs allowed by cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (-1: none)."""
    try:
        q, p = float(quota.strip()), float(period.strip())
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def cgroup_quota(root: Path = _CGROUP) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (None: no limit or no cgroup files)."""
    text = _read(root / "cpu.max")
    if text is not None:
        return parse_cpu_max(text)
    for folder in (root / "cpu", root / "cpu,cpuacct", root / "cpuacct,cpu"):
        quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
        if quota is not None and period is not None:
            return parse_cfs(quota, period)
    return None


def allowed_cores() -> int:
    """Cores this process may run on: its affinity mask where the OS has one, else all."""
    getaff = getattr(os, "sched_getaffinity", None)
    if getaff is not None:
        with contextlib.suppress(OSError):
            return max(1, len(getaff(0)))
    return max(1, os.cpu_count() or 1)


def _procs_running(stat: Path) -> int | None:
    text = _read(stat)
    if text is None:
        return None
    for line in text.splitlines():
        if line.startswith("procs_running"):
            parts = line.split()
            return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    return None


def busy_processes(*, samples: int = 5, interval: float = 0.004,
                   stat: Path = _PROC_STAT) -> float | None:
    """Other processes running now: the median ``procs_running`` less this one (None off Linux)."""
    counts = []
    for i in range(samples):
        n = _procs_running(stat)
        if n is None:
            return None
        counts.append(n)
        if i + 1 < samples:
            time.sleep(interval)
    return max(0.0, statistics.median(counts) - 1)


def choose_threads(cores: int, *, quota: float | None = None, setting: int | str = "auto",
                   omp: int | None = None, runs: int = 1, busy: float | None = None,
                   machine_cpus: int | None = None) -> int | None:
    """Torch intra-op threads for one of ``runs`` runs sharing ``cores`` (None: leave torch's).

    ``setting`` (parsed ``$WORKBENCH_THREADS``) wins: ``"keep"`` gives None, a count is taken as
    is; then a valid ``omp`` (``$OMP_NUM_THREADS``). Otherwise the budget is ``cores`` capped by
    the cgroup ``quota`` (in CPUs, at least one thread), shared by ``runs``, and cut to the cores
    the ``busy`` other running processes leave free: they are spread over the machine's
    ``machine_cpus`` CPUs (default ``cores``; more where this process sees only part of them).
    Always at least one thread.
    """
    cores = check_int("cores", cores, minimum=1)
    runs = check_int("runs", runs, minimum=1)
    quota = check_real("quota", quota, minimum=0, inclusive="neither", allow_none=True)
    busy = check_real("busy", busy, minimum=0, allow_none=True)
    total = check_int("machine_cpus", cores if machine_cpus is None else machine_cpus,
                      minimum=1)
    if setting == "keep":
        return None
    if setting != "auto":
        return check_int("setting", setting, minimum=1)
    if omp is not None:
        return check_int("omp", omp, minimum=1)
    budget = float(cores) if quota is None else min(float(cores), max(1.0, quota))
    threads = max(1, math.floor(budget / runs + 1e-9))
    if busy:
        free = budget * max(0.0, 1.0 - busy / max(total, cores))
        threads = min(threads, max(1, math.floor(free / runs + 0.5)))
    return threads


def threads_for_runs(runs: int = 1, *, load: bool = True) -> int:
    """Threads for each of ``runs`` runs on this machine now (``keep``: the cores split evenly).

    Reads the affinity, cgroup quota, ``$WORKBENCH_THREADS``, ``$OMP_NUM_THREADS`` and (with
    ``load``) the running processes; a bad ``$WORKBENCH_THREADS`` raises ``ValueError``.
    """
    cores, quota = allowed_cores(), cgroup_quota()
    setting = parse_threads_setting(os.environ.get(THREADS_ENV))
    omp = parse_omp(os.environ.get("OMP_NUM_THREADS"))
    busy = busy_processes() if load else None
    n = choose_threads(cores, quota=quota, setting=setting, omp=omp, runs=runs, busy=busy,
                       machine_cpus=os.cpu_count())
    return n if n is not None else choose_threads(cores, quota=quota, runs=runs) or 1


def physical_cores(cpus: Path = Path("/sys/devices/system/cpu")) -> int | None:
    """Physical cores among the CPUs this process may use (None where the topology is unknown)."""
    getaff = getattr(os, "sched_getaffinity", None)
    allowed = sorted(getaff(0)) if getaff is not None else []
    cores = set()
    for cpu in allowed:
        topo = cpus / f"cpu{cpu}" / "topology"
        package, core = _read(topo / "physical_package_id"), _read(topo / "core_id")
        if package is None or core is None:
            return None
        cores.add((package.strip(), core.strip()))
    return len(cores) or None


def torch_default_threads() -> set[int]:
    """Counts torch starts with when nobody set one: one per allowed core, per physical core
    (torch's own default on hyper-threaded CPUs) or per visible CPU."""
    omp = parse_omp(os.environ.get("OMP_NUM_THREADS"))
    if omp is not None:
        return {omp}
    physical = physical_cores()
    return {allowed_cores(), max(1, os.cpu_count() or 1), *([physical] if physical else [])}


def training_threads() -> int | None:
    """Threads a Trainer should use now; None when the user chose (``$WORKBENCH_THREADS=keep``,
    or torch's count already differs from its default: ``torch.set_num_threads`` was called)."""
    setting = parse_threads_setting(os.environ.get(THREADS_ENV))
    if setting == "keep":
        return None
    if setting == "auto" and torch.get_num_threads() not in torch_default_threads():
        return None
    return threads_for_runs(1)


@contextlib.contextmanager
def use_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (None: unchanged), then restore them."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
