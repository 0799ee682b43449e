"""Benchmark `coldstart`: a new process to its first trained mini-batch, data loading included.

Each repeat starts a fresh Python process that imports torch and workbench, loads the bundled
CIFAR-10 sample, builds an NB201 `small` trainer (default config: snapshots on) and trains one
mini-batch; the child reports when each phase ended (wall clock since the parent started it).
Cases: the decoded-array cache off (``WORKBENCH_CACHE=off``: every process decodes the 10k
JPEGs), the first process with an empty cache (decodes and writes the entry) and a later one
(reads the entry), each with Python bytecode cached (as after a pip install); and the cache off
in this environment as it is (``as_run_here``: a uv-installed venv without ``.pyc`` files under
``PYTHONDONTWRITEBYTECODE=1`` compiles torch's sources in every new process). The cache folders
are fresh temporary ones.

    python bench/coldstart.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
CELL = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
        "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
PHASES = ("python", "import_torch", "import_workbench", "data", "trainer", "first_batch")


def child(started: float) -> None:
    """Run the phases in this fresh process; print each phase's end (s since ``started``)."""
    marks = {"python": time.time() - started}
    import torch  # noqa: F401 - timed on its own

    marks["import_torch"] = time.time() - started
    from workbench.data import process_cache
    from workbench.spaces import get_space
    from workbench.training import TrainConfig, build_trainer

    marks["import_workbench"] = time.time() - started
    process_cache().get("cifar10")
    marks["data"] = time.time() - started
    space = get_space("nb201")
    trainer = build_trainer(space, space.parse(CELL), TrainConfig(steps=10, device="cpu"))
    marks["trainer"] = time.time() - started
    trainer.run(until=1)
    marks["first_batch"] = time.time() - started
    print(json.dumps(marks))


def _once(cache: str, pycache: str | None) -> dict[str, float]:
    env = {**os.environ, "WORKBENCH_CACHE": cache}
    if pycache is not None:  # bytecode kept, as a pip-installed environment has it
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    started = time.time()
    out = subprocess.run([sys.executable, str(HERE), "--child", repr(started)], env=env,
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child)
        return
    from _common import write_results  # imports torch: not in the timed child

    load_before = os.getloadavg()
    bytecode_env = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
    cases: dict[str, list[dict[str, float]]] = {
        "as_run_here_cache_off": [], "cache_off": [], "cache_empty": [], "cache_warm": []}
    with tempfile.TemporaryDirectory() as pycache:
        with tempfile.TemporaryDirectory() as folder:
            _once(folder, pycache)  # fills the bytecode cache; not timed
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as folder:
                cases["as_run_here_cache_off"].append(_once("off", None))
                cases["cache_off"].append(_once("off", pycache))
                cases["cache_empty"].append(_once(folder, pycache))
                cases["cache_warm"].append(_once(folder, pycache))
    rows = []
    for case, runs in cases.items():
        ends = {p: statistics.median(r[p] for r in runs) for p in PHASES}
        phases = {p: ends[p] - (ends[PHASES[i - 1]] if i else 0.0) for i, p in enumerate(PHASES)}
        rows.append({"case": case, "seconds_to_first_batch": ends["first_batch"],
                     "phase_seconds": phases, "runs": runs})
    path = write_results("coldstart", {
        "repeats": args.repeats, "model": "nb201:small", "data": "bundled cifar10 sample",
        "bytecode": "as_run_here: this environment as it is (PYTHONDONTWRITEBYTECODE="
                    f"{os.environ.get('PYTHONDONTWRITEBYTECODE')!r}, "
                    f"{'no' if bytecode_env else 'its'} .pyc files); the other cases keep "
                    "bytecode in a PYTHONPYCACHEPREFIX folder, as a pip install has it",
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "rows": rows,
        "goal": "new process -> first trained mini-batch <= 3 s (bundled sample)"})
    print("| case | total s | " + " | ".join(PHASES) + " |")
    print("|---|---|" + "---|" * len(PHASES))
    for r in rows:
        print(f"| {r['case']} | {r['seconds_to_first_batch']:.2f} | "
              + " | ".join(f"{r['phase_seconds'][p]:.2f}" for p in PHASES) + " |")
    print(f"load average before {load_before}, after {os.getloadavg()}; written {path}")


if __name__ == "__main__":
    main()
