"""Pickle-free ``.npz`` I/O for the run store, written atomically (``workbench._io``)."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np

from workbench._io import atomic_write
from workbench.store._validate import check_file_name


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
    """All arrays of an ``.npz`` file, loaded eagerly with ``allow_pickle=False``."""
    with np.load(path, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}
