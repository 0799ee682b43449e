"""Validation and canonical forms of run requests, keys, configs and metrics (no I/O here)."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from workbench._checks import check_int, check_real

#: Run states; ``pending -> running -> done | diverged | failed`` (see ``RunStore``).
RUN_STATUSES: tuple[str, ...] = ("pending", "running", "done", "diverged", "failed")
#: Metric names that also get a typed ``final_*`` column (the rest live in the JSON only).
METRIC_COLUMNS: dict[str, str] = {
    "train_loss": "final_train_loss",
    "train_acc": "final_train_acc",
    "val_acc": "final_val_acc",
    "test_acc": "final_test_acc",
}

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Printable ASCII without space and '/', so that the '/'-joined key stays unambiguous.
_CELL_ID_RE = re.compile(r"[!-.0-~]{1,256}")
_RUN_ID_RE = re.compile(r"[0-9a-f]{32}")
_FILE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_INT64_MAX = 2**63 - 1


def check_name(value: object, what: str) -> str:
    """A space/dataset name: 1-64 chars of ``[A-Za-z0-9_.-]``, starting alphanumeric."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise ValueError(
            f"{what} must be 1-64 characters of [A-Za-z0-9_.-] starting with a letter or digit, "
            f"got {value!r}"
        )
    return value


def check_cell_id(value: object) -> str:
    """A cell id (str or non-negative int): printable ASCII without spaces or '/'."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        if value < 0:
            raise ValueError(f"cell_id must be a non-negative int or a string, got {value!r}")
        value = str(int(value))
    if not isinstance(value, str) or not _CELL_ID_RE.fullmatch(value):
        raise ValueError(
            "cell_id must be an int or 1-256 printable ASCII characters without spaces or '/', "
            f"got {value!r}"
        )
    return value


def check_seed(value: object) -> int:
    """A seed: an int (not bool) in ``[0, 2**63)``, so that it fits SQLite's INTEGER."""
    return check_int("seed", value, minimum=0, maximum=_INT64_MAX)


def check_run_id(value: object) -> str:
    """A run id as made by ``add_runs``: 32 lowercase hex characters."""
    if not isinstance(value, str) or not _RUN_ID_RE.fullmatch(value):
        raise ValueError(f"run_id must be 32 lowercase hex characters, got {value!r}")
    return value


def check_file_name(value: object, what: str) -> str:
    """A file or array name usable inside a run folder: ``[A-Za-z0-9_.-]``, no leading dot."""
    if not isinstance(value, str) or not _FILE_NAME_RE.fullmatch(value) or value.endswith(".tmp"):
        raise ValueError(
            f"{what} must be 1-128 characters of [A-Za-z0-9_.-], not starting with '.' or '-' "
            f"and not ending in '.tmp', got {value!r}"
        )
    return value


def check_status(value: object) -> str:
    """One of :data:`RUN_STATUSES`."""
    if value not in RUN_STATUSES:
        raise ValueError(f"status must be one of {', '.join(RUN_STATUSES)}; got {value!r}")
    return str(value)


def check_statuses(value: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """``None``, a status or an iterable of statuses, as a tuple."""
    if value is None:
        return None
    if isinstance(value, str):
        return (check_status(value),)
    vals = tuple(check_status(v) for v in value)
    if not vals:
        raise ValueError("status must name at least one of " + ", ".join(RUN_STATUSES))
    return vals


def to_jsonable(obj: object, where: str, *, allow_nan: bool) -> Any:
    """``obj`` as plain JSON types (dict with str keys, list, str, int, float, bool, None)."""
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        val = float(obj)
        if not allow_nan and not math.isfinite(val):
            raise ValueError(f"{where} must be finite, got {obj!r}")
        return val
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise ValueError(f"{where} keys must be strings, got {k!r}")
            out[k] = to_jsonable(v, f"{where}[{k!r}]", allow_nan=allow_nan)
        return out
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, f"{where}[{i}]", allow_nan=allow_nan) for i, v in enumerate(obj)]
    raise ValueError(
        f"{where} must hold only dicts, lists, str, int, float, bool or None, "
        f"got {type(obj).__name__} {obj!r:.80}"
    )


def dumps(obj: Any, *, allow_nan: bool = False) -> str:
    """Canonical JSON text: sorted keys, no spaces (NaN/inf as Python's JSON extension)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=allow_nan)


def _hash_form(obj: Any) -> Any:
    """Integral floats as ints, so ``lr=1`` and ``lr=1.0`` hash alike."""
    if isinstance(obj, float) and obj.is_integer():
        return int(obj)
    if isinstance(obj, dict):
        return {k: _hash_form(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_hash_form(v) for v in obj]
    return obj


def config_hash(config: Mapping[str, Any]) -> str:
    """16 hex chars of the SHA-256 of the canonical JSON of ``config``."""
    canon = to_jsonable(config, "config", allow_nan=False)
    if not isinstance(canon, dict):
        raise ValueError(f"config must be a mapping, got {type(config).__name__}")
    return hashlib.sha256(dumps(_hash_form(canon)).encode()).hexdigest()[:16]


def run_key(
    space: str, cell_id: str | int, dataset: str, config: Mapping[str, Any], seed: int
) -> str:
    """The identity of a requested run: ``space/cell_id/dataset/config_hash/seed``."""
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a mapping, got {type(config).__name__}")
    return "/".join(
        (
            check_name(space, "space"),
            check_cell_id(cell_id),
            check_name(dataset, "dataset"),
            config_hash(config),
            str(check_seed(seed)),
        )
    )


@dataclass(frozen=True)
class RunRequest:
    """One requested training run; validated and normalised on construction.

    ``key`` (space, cell id, dataset, config hash, seed) identifies it: the store keeps one run per
    key. ``cell`` is the cell's string form; ``label`` an optional benchmark value (e.g. the
    table's final accuracy) named by ``label_name``.
    """

    space: str
    cell_id: str
    dataset: str
    config: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    cell: str = ""
    label: float | None = None
    label_name: str | None = None

    def __post_init__(self) -> None:
        """Validate every field and store the canonical forms."""
        if not isinstance(self.config, Mapping):
            raise ValueError(f"config must be a mapping, got {type(self.config).__name__}")
        set_ = object.__setattr__
        set_(self, "space", check_name(self.space, "space"))
        set_(self, "cell_id", check_cell_id(self.cell_id))
        set_(self, "dataset", check_name(self.dataset, "dataset"))
        set_(self, "config", to_jsonable(self.config, "config", allow_nan=False))
        set_(self, "seed", check_seed(self.seed))
        if not isinstance(self.cell, str):
            raise ValueError(f"cell must be the cell's string form, got {self.cell!r}")
        set_(self, "label", check_real("label", self.label, allow_none=True))
        if self.label_name is not None and not isinstance(self.label_name, str):
            raise ValueError(f"label_name must be a string or None, got {self.label_name!r}")

    def __hash__(self) -> int:
        """Hash of the key, so equal requests dedupe in sets (``config`` is a dict)."""
        return hash(self.key)

    @property
    def key(self) -> str:
        """The unique key of this request (see :func:`run_key`)."""
        return run_key(self.space, self.cell_id, self.dataset, self.config, self.seed)

    @classmethod
    def coerce(cls, obj: RunRequest | Mapping[str, Any]) -> RunRequest:
        """``obj`` if it is a request, else a request built from a mapping of its fields."""
        if isinstance(obj, RunRequest):
            return obj
        if not isinstance(obj, Mapping):
            raise ValueError(f"a run request must be a RunRequest or a mapping, got {obj!r:.80}")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(obj) - set(names))
        if unknown:
            raise ValueError(f"unknown run request fields {unknown}; allowed: {names}")
        missing = [n for n in ("space", "cell_id", "dataset") if n not in obj]
        if missing:
            raise ValueError(f"run request {dict(obj)!r:.120} lacks required fields {missing}")
        return cls(**obj)
