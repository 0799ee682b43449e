"""Atomic file writes: a unique hidden temp file beside the target, fsynced, then ``os.replace``.

Readers see the old file or the whole new one, never a partial write, and a crash before the
rename leaves the target untouched. The one implementation behind the run store, predictor
files, HTML reports and the CLI's outputs.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

#: A writer: puts the file's whole content into the binary file object it is given.
Writer = Callable[[BinaryIO], None]

_ATTEMPTS = 100


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not all platforms allow it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    """Flush ``path``'s data to disk (written by a writer that only knew its name)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _new_temp(target: Path) -> Path:
    """Create an empty, unique ``.<name>.<random>.tmp`` beside ``target`` and return its path.

    Created with ``O_EXCL`` and mode 0o666 so the umask applies, as for a plain ``open``.
    """
    for _ in range(_ATTEMPTS):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"no free temporary name beside {target} after {_ATTEMPTS} tries")


@contextlib.contextmanager
def _replacing(path: str | os.PathLike[str], *, sync_temp: bool) -> Iterator[Path]:
    target = Path(path)
    if target.name in ("", ".", ".."):
        raise ValueError(f"path must name a file, got {str(path)!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp(target)
    try:
        yield tmp
        if sync_temp:
            _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temp path beside ``path``; when the block ends cleanly it replaces ``path``.

    For writers that want a file name (``df.to_csv(tmp)``). Write exactly the yielded path: a
    writer that adds a suffix (``np.savez`` adds ``.npz``) leaves it empty, so pass such writers a
    file object through :func:`atomic_write`. If the block raises, the temp file is removed and
    ``path`` keeps its old content.
    """
    with _replacing(path, sync_temp=True) as tmp:
        yield tmp


def atomic_write(path: str | os.PathLike[str], data: bytes | str | Writer, *,
                 encoding: str = "utf-8") -> Path:
    """Replace ``path`` atomically with ``data`` and return it as a ``Path``.

    ``data`` is the bytes, the text (encoded with ``encoding``), or a writer called with the temp
    file opened ``w+b`` (it may seek and read back); if the writer raises, ``path`` is untouched.
    """
    if isinstance(data, str):
        payload: bytes | None = data.encode(encoding)
    elif isinstance(data, (bytes, bytearray, memoryview)):
        payload = bytes(data)
    elif callable(data):
        payload = None
    else:
        raise ValueError(f"data must be bytes, str or a callable taking a binary file object, "
                         f"got {type(data).__name__}")
    with _replacing(path, sync_temp=False) as tmp, open(tmp, "w+b") as fh:
        if payload is None:
            assert callable(data)  # payload is None only for a writer
            data(fh)
        else:
            fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(path)
