"""A restricted unpickler for the official CIFAR "python version" files (and nothing else).

Those files are Python 2 pickles of a dict of str, int, lists and one uint8 numpy array. Apart
from built-in containers they reference exactly three globals:
``numpy.core.multiarray._reconstruct``, ``numpy.ndarray`` and ``numpy.dtype``. Any other
global (``os.system``, ``builtins.eval``, ...) is refused before it is looked up, so a crafted
file cannot run code.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

# The array reconstructor, taken from numpy's own reduce so that no private module is imported:
# it lives in numpy.core.multiarray (numpy 1) or numpy._core.multiarray (numpy 2).
_RECONSTRUCT = np.zeros(0).__reduce__()[0]

_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _CifarUnpickler(pickle.Unpickler):
    """Resolves only the numpy globals the official CIFAR pickles use; refuses all others."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            allowed = ", ".join(sorted(f"{m}.{n}" for m, n in _ALLOWED))
            raise pickle.UnpicklingError(
                f"refusing global {module}.{name} (allowed: {allowed})"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed in CIFAR files")


def load_cifar_pickle(path: Path) -> dict[bytes, Any]:
    """The dict stored in one official CIFAR pickle ``path``, read with the restricted unpickler.

    Raises ``FileNotFoundError`` when absent and ``ValueError`` (naming ``path``) when the file
    is damaged, not a dict, or references anything beyond the allowed numpy globals.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR file not found: {path}")
    raw = path.read_bytes()
    try:
        # encoding="bytes": the files are Python 2 pickles whose str objects become bytes.
        obj = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # damaged pickles fail in many ways; report them all alike
        raise ValueError(f"{path} is not a valid CIFAR python-version pickle: {exc}") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}, expected a dict")
    return obj
