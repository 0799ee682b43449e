"""Predictor files: a fitted predictor as one ``.npz`` (arrays + a JSON header), never pickle.

The header names the class, its constructor parameters, fitted scalars, the feature schema
version the predictor reads, and free-form ``metadata`` (e.g. what it was trained on). Loading
checks the format and the schema version before building anything, so a predictor made for
other features fails with a clear message instead of predicting nonsense.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from workbench._io import atomic_write
from workbench.features import FEATURE_NAMES, FEATURE_SCHEMA_VERSION
from workbench.predictors._predictor_registry import predictor_classes

FORMAT = "workbench-predictor"
FORMAT_VERSION = 1


class PredictorFileError(ValueError):
    """A predictor file that cannot be used: damaged, foreign, or made for other features;
    the message names the path and what is wrong."""


def _classes() -> dict[str, type[Any]]:
    """Registered predictor classes that can be written to and read from files (those with
    ``_export``/``_import``), by class name: the name a file's header records."""
    return {name: cls for name, cls in predictor_classes().items()
            if callable(getattr(cls, "_export", None)) and callable(getattr(cls, "_import", None))}


def _jsonable(value: Any) -> Any:
    """``value`` with the numpy scalars and arrays inside (lists, tuples, dicts) made JSON."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def save_predictor(predictor: Any, path: str | os.PathLike,
                   metadata: dict[str, Any] | None = None) -> Path:
    """Write a fitted predictor to ``path`` (``.npz``) atomically; return the path."""
    classes = _classes()
    name = type(predictor).__name__
    if name not in classes or type(predictor) is not classes[name]:
        raise ValueError(f"cannot save a {name}; savable predictors: {sorted(classes)}")
    check_is_fitted(predictor)  # NotFittedError is a ValueError: "... is not fitted yet"
    attrs, arrays = predictor._export()
    header = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "class": name,
        "params": {k: _jsonable(v) for k, v in predictor.get_params(deep=False).items()},
        "attrs": {k: _jsonable(v) for k, v in attrs.items()},
        "feature_schema_version": getattr(predictor, "feature_schema_version_", None),
        "feature_names": list(FEATURE_NAMES) if hasattr(predictor, "feature_schema_version_")
        else None,
        "graph_schema_version": getattr(predictor, "graph_schema_version_", None),
        "metadata": metadata or {},
    }
    try:
        text = json.dumps(header)
    except TypeError as err:
        raise ValueError(f"parameters, fitted scalars and metadata must be JSON values: {err}")\
            from None
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"predictor files end in .npz, got {str(path)!r}")
    members: dict[str, Any] = {"__header__": np.asarray(text),
                               **{f"a.{k}": np.asarray(v) for k, v in arrays.items()}}
    atomic_write(path, lambda fh: np.savez_compressed(fh, **members))
    return path


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of a predictor file (class, params, schema version, metadata)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no predictor file at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile) or "__header__" not in z.files:
                raise PredictorFileError(f"{path} is not a workbench predictor file (no header)")
            header = json.loads(str(z["__header__"]))
    except PredictorFileError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile,
            json.JSONDecodeError) as err:
        reason = ("it is not an .npz archive we write (loading it would need pickle)"
                  if "pickle" in str(err) else f"{type(err).__name__}: {err}")
        raise PredictorFileError(f"{path} is not a readable predictor file: {reason}") from None
    if not isinstance(header, dict):
        raise PredictorFileError(f"{path} has a header that is not a JSON object")
    if header.get("format") != FORMAT or header.get("format_version") != FORMAT_VERSION:
        raise PredictorFileError(f"{path} has format {header.get('format')!r} version "
                         f"{header.get('format_version')!r}; this workbench reads {FORMAT!r} "
                         f"version {FORMAT_VERSION}")
    return header


#: Constructor parameters renamed since files were first written: class -> {old: new}.
_RENAMED_PARAMS: dict[str, dict[str, str]] = {"GCNPredictor": {"seed": "random_state"}}
#: Constructor parameters added since files were first written: class -> {name: the value the
#: older files were fitted with} (not today's default).
_ADDED_PARAMS: dict[str, dict[str, Any]] = {"DynamicsGBT": {"loss": "squared_error"}}


def load_predictor(path: str | os.PathLike, device: str | None = None) -> Any:
    """A fitted predictor from a file written by :func:`save_predictor` (no pickle).

    Raises :class:`PredictorFileError` (a ValueError naming the path) when the file is damaged
    or foreign, was made for another feature schema (or, for a GCN, graph encoding) than this
    workbench computes, or names a class it does not know. ``device`` overrides the saved one
    (torch models; "auto" picks CUDA when present).
    """
    try:
        return _load(path, device)
    except (PredictorFileError, FileNotFoundError):
        raise
    except Exception as err:  # damaged contents: whatever a constructor or _import hit
        raise PredictorFileError(f"{path} is a damaged predictor file: {type(err).__name__}: "
                                 f"{str(err)[:300]}") from err


def _load(path: str | os.PathLike, device: str | None) -> Any:
    header = read_header(path)
    version = header.get("feature_schema_version")
    if version is not None and int(version) != FEATURE_SCHEMA_VERSION:
        raise PredictorFileError(f"{path} was fitted on feature schema version {version}, but this "
                         f"workbench computes version {FEATURE_SCHEMA_VERSION}: refit the "
                         "predictor on snapshots recorded with this version")
    names = header.get("feature_names")
    if names is not None and tuple(names) != FEATURE_NAMES:
        raise PredictorFileError(f"{path} was fitted on features {names}, this workbench computes "
                         f"{list(FEATURE_NAMES)}: refit it")
    if header.get("class") == "GCNPredictor":
        from workbench.predictors._gcn import GRAPH_SCHEMA_VERSION

        graph_version = header.get("graph_schema_version") or 1  # files before versioning: 1
        if int(graph_version) != GRAPH_SCHEMA_VERSION:
            raise PredictorFileError(
                f"{path} was fitted on graph encoding version {graph_version}, but this "
                f"workbench builds version {GRAPH_SCHEMA_VERSION}: refit the GCN on graphs "
                "from graphs_from_cells")
    classes = _classes()
    name = header.get("class")
    cls = classes.get(name) if isinstance(name, str) else None
    if cls is None:
        raise PredictorFileError(f"{path} holds a {header.get('class')!r}; known: "
                                 f"{sorted(classes)}")
    params = dict(header["params"])
    for old, new in _RENAMED_PARAMS.get(cls.__name__, {}).items():  # files from before a rename
        if old in params and new not in params:
            params[new] = params.pop(old)
    for added, value in _ADDED_PARAMS.get(cls.__name__, {}).items():  # files from before it
        params.setdefault(added, value)
    if device is not None and "device" in params:
        params["device"] = device
    est = cls(**params)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k[2:]: z[k] for k in z.files if k.startswith("a.")}
    est._import(header["attrs"], arrays)
    est.metadata_ = header.get("metadata", {})
    return est
