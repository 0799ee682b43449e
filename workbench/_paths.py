"""Where the workbench finds data: files bundled in the package and the optional shared folder."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

#: Environment variable naming a folder that holds the larger public data files
#: (``nasbench101_1k.csv``, ``nasbench201.csv``, ``cifar10_jpeg.npz``).
SHARED_ENV = "WORKBENCH_SHARED_DATA"


def bundled_path(name: str) -> Path:
    """Path of a file shipped in the repository's ``data/`` folder (``workbench._bundled``)."""
    path = Path(str(resources.files("workbench._bundled").joinpath(name)))
    if not path.is_file():
        raise FileNotFoundError(
            f"bundled data file {name!r} is missing at {path}; reinstall the package or run "
            "`python tools/make_bundled_data.py` in a source checkout"
        )
    return path


def shared_data_dir() -> Path | None:
    """The shared public-data folder, if one is available, else ``None``.

    Looked up in ``$WORKBENCH_SHARED_DATA``, then ``../shared/data`` beside the source checkout
    and beside the current directory. Benchmarks use it for the full-size files.
    """
    env = os.environ.get(SHARED_ENV)
    if env:
        p = Path(env).expanduser()
        if not p.is_dir():
            raise FileNotFoundError(f"${SHARED_ENV}={env!r} is not a directory")
        return p
    checkout = Path(__file__).resolve().parents[1]
    for base in (checkout, Path.cwd()):
        cand = base.parent / "shared" / "data"
        if cand.is_dir():
            return cand
    return None
