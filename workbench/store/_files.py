"""Pickle-free ``.npz`` I/O for the run store, written atomically (``workbench._io``)."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np

from workbench._io import atomic_write
from workbench.store._schema import StoreError
from workbench.store._validate import check_file_name


class StoreFileError(StoreError):
    """A run's file is missing, truncated or not what the store writes (names the path)."""


def check_arrays(arrays: Mapping[str, object]) -> dict[str, np.ndarray]:
    """``arrays`` as ndarrays with valid names; object (pickled) dtypes are refused."""
    if not isinstance(arrays, Mapping) or not arrays:
        raise ValueError(f"arrays must be a non-empty mapping of name -> array, got {arrays!r:.80}")
    out: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        check_file_name(name, "array name")
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise ValueError(
                f"array {name!r} has dtype {arr.dtype} holding Python objects; only plain numeric, "
                "bool or fixed-width string arrays can be stored (no pickle)"
            )
        out[name] = arr
    return out


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Atomically write a compressed ``.npz`` (same format as ``np.savez_compressed``), no pickle.

    Written by hand rather than via ``np.savez_compressed(file, **arrays)`` so that array names
    such as ``file`` cannot clash with that function's own arguments.
    """

    def write(fh: BinaryIO) -> None:
        with zipfile.ZipFile(fh, mode="w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            for name, arr in arrays.items():
                with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, arr, allow_pickle=False)

    atomic_write(path, write)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` file, loaded eagerly with ``allow_pickle=False``.

    A damaged or foreign file raises :class:`StoreFileError` naming it (never numpy's advice to
    allow pickle: the store writes no pickled arrays, so such a file is not ours).
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise StoreFileError(f"run file {path} is a bare array, not an .npz archive")
            return {name: npz[name] for name in npz.files}
    except StoreFileError:
        raise
    except FileNotFoundError:
        raise
    except ValueError as err:
        if "pickle" in str(err):
            raise StoreFileError(f"run file {path} is not an .npz the store wrote (it would "
                                 "need pickle to load; refused)") from err
        raise StoreFileError(f"run file {path} is damaged: {err}") from err
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise StoreFileError(f"run file {path} is damaged or truncated: "
                             f"{type(err).__name__}: {err}") from err


def check_npz(path: Path) -> str | None:
    """What is wrong with the ``.npz`` at ``path`` (None: every member's checksum and header are
    fine); reads the whole file."""
    if not path.is_file():
        return f"missing file {path.name}"
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            if bad is not None:
                return f"{path.name}: member {bad} fails its checksum"
        read_npz(path)
    except (zipfile.BadZipFile, OSError, StoreFileError) as err:
        return f"{path.name}: {err}"
    return None
