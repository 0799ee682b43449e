"""A folder of decoded JPEG archives, so that a new process skips the decoding (cold start).

Each (archive, split) is one plain ``.npz`` (images, labels, classes and the archive's size and
modification time; no pickle) named by a hash of the archive's resolved path and split. An
entry is used only while the archive still has that size and ``mtime_ns``; otherwise it is
decoded again and the entry replaced. Writes are atomic (``workbench._io.atomic_write``), so
processes decoding the same archive at once each leave a whole file and readers never see a
partial one. The folder is ``$WORKBENCH_CACHE`` (``off`` disables the cache), else
``$XDG_CACHE_HOME/nas-workbench`` (default ``~/.cache/nas-workbench``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from workbench._io import atomic_write

#: Environment variable naming the cache folder; ``off`` (or ``0``, ``none``) disables it.
CACHE_ENV = "WORKBENCH_CACHE"
_OFF = ("off", "0", "none", "false", "no")
#: Bumped when the decoder's output changes, so older entries are not used.
_FORMAT = 1

Decoded = tuple[np.ndarray, np.ndarray, tuple[str, ...]]


def cache_dir() -> Path | None:
    """The folder holding decoded archives, or None when ``$WORKBENCH_CACHE`` turns it off."""
    env = os.environ.get(CACHE_ENV)
    if env is not None and env.strip():
        if env.strip().lower() in _OFF:
            return None
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "nas-workbench"


def _stamp(source: Path) -> np.ndarray:
    st = source.stat()
    return np.array([st.st_size, st.st_mtime_ns, _FORMAT], dtype=np.int64)


def entry_path(source: Path, split: str, folder: Path) -> Path:
    """Where the decoded ``split`` of archive ``source`` is kept inside ``folder``."""
    key = hashlib.sha256(f"{Path(source).resolve()}\0{split}".encode()).hexdigest()[:20]
    return folder / "decoded" / f"{Path(source).stem}-{split}-{key}.npz"


def _load(path: Path, stamp: np.ndarray) -> Decoded | None:
    """The entry at ``path`` if it is readable and made from the archive as it is now."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if not np.array_equal(z["stamp"], stamp):
                return None
            images, labels, classes = z["images"], z["labels"], z["classes"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if images.dtype != np.uint8 or images.ndim != 4 or labels.shape != (len(images),):
        return None
    return images, labels, tuple(str(c) for c in classes)


def _save(path: Path, stamp: np.ndarray, decoded: Decoded) -> None:
    images, labels, classes = decoded

    def write(fh: BinaryIO) -> None:
        np.savez(fh, images=images, labels=labels, classes=np.array(classes, dtype=str),
                 stamp=stamp)

    with contextlib.suppress(OSError):  # a read-only or full disk only costs the speed-up
        atomic_write(path, write)


def cached_decode(source: Path, split: str, decode: Callable[[], Decoded]) -> Decoded:
    """``decode()``'s (images, labels, classes) for ``split`` of ``source``, from the cache
    folder when an entry made from the archive as it is now exists, else decoded and stored."""
    folder = cache_dir()
    if folder is None:
        return decode()
    stamp = _stamp(source)
    path = entry_path(source, split, folder)
    found = _load(path, stamp)
    if found is not None:
        return found
    decoded = decode()
    _save(path, stamp, decoded)
    return decoded
