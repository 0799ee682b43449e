"""CIFAR-10/100 loading: the official python-version folders, and the JPEG archives."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from workbench._paths import bundled_path, shared_data_dir
from workbench.data._dataset import ImageDataset
from workbench.data._jpeg import read_jpeg_npz
from workbench.data._unpickle import load_cifar_pickle

NAMES = ("cifar10", "cifar100")
SPLITS = ("train", "test")
DATA_SOURCES = ("bundled", "shared")

_BUNDLED_FILE = "cifar10_sample.npz"
_SHARED_FILE = "cifar10_jpeg.npz"
_JPEG_NOTE = "JPEG re-encoding of CIFAR-10 (pixels differ slightly from the original files)"

# Per dataset: folder name, files per split, meta file, label key, label-names key.
_OFFICIAL: dict[str, dict[str, Any]] = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
        "label_key": b"labels",
        "names_key": b"label_names",
        "title": "CIFAR-10",
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
        "label_key": b"fine_labels",
        "names_key": b"fine_label_names",
        "title": "CIFAR-100 (fine labels)",
    },
}


def _layout(name: str) -> str:
    spec = _OFFICIAL[name]
    files = [*spec["train"], *spec["test"], spec["meta"]]
    return f"the official {spec['title']} python-version folder {spec['folder']}/ with {files}"


def _official_folder(root: Path, name: str) -> Path:
    """``root`` itself or ``root/<official folder name>``, whichever holds the meta file."""
    spec = _OFFICIAL[name]
    for cand in (root, root / spec["folder"]):
        if (cand / spec["meta"]).is_file():
            return cand
    raise FileNotFoundError(f"no {spec['meta']} in {root} or {root / spec['folder']}; "
                            f"expected {_layout(name)}")


def _read_batch(path: Path, label_key: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    d = load_cifar_pickle(path)
    data, labels = d.get(b"data"), d.get(label_key)
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
            or data.shape[1] != 3 * 32 * 32):
        raise ValueError(f"{path}: b'data' must be a uint8 [N, 3072] array; expected "
                         f"{_layout(name)}")
    labels = np.asarray(labels if isinstance(labels, (list, np.ndarray)) else [None])
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: {label_key!r} must be a list of {len(data)} ints; expected "
                         f"{_layout(name)}")
    # Each row is the R, G and B planes of a 32x32 image, row-major: exactly NCHW.
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _read_official(root: Path, name: str, split: str) -> ImageDataset:
    spec = _OFFICIAL[name]
    folder = _official_folder(root, name)
    meta_path = folder / spec["meta"]
    names = load_cifar_pickle(meta_path).get(spec["names_key"])
    if not isinstance(names, list) or not all(isinstance(s, bytes) for s in names):
        raise ValueError(f"{meta_path}: {spec['names_key']!r} must be a list of names; expected "
                         f"{_layout(name)}")
    paths = [folder / f for f in spec[split]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"missing {missing}; expected {_layout(name)}")
    parts = [_read_batch(p, spec["label_key"], name) for p in paths]
    classes = tuple(s.decode("utf-8") for s in names)
    try:
        return ImageDataset(
            name=name, split=split,
            images=np.concatenate([p[0] for p in parts]),
            labels=np.concatenate([p[1] for p in parts]),
            classes=classes, source=str(folder),
            description=f"official {spec['title']} python version",
        )
    except ValueError as exc:
        raise ValueError(f"{folder}: {exc}") from exc


def _read_jpeg(path: Path, name: str, split: str, description: str) -> ImageDataset:
    images, labels, classes = read_jpeg_npz(path, split)
    try:
        return ImageDataset(name=name, split=split, images=images, labels=labels,
                            classes=classes, source=str(path), description=description)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def load_dataset(name: str = "cifar10", split: str = "train", *,
                 root: str | os.PathLike[str] | None = None,
                 source: str | None = None) -> ImageDataset:
    """Load ``split`` ("train"/"test") of ``name`` ("cifar10"/"cifar100") as an ImageDataset.

    Where from: ``root`` = an official python-version folder (``cifar-10-batches-py``,
    ``cifar-100-python``, or the folder holding it) or a JPEG ``.npz`` archive;
    ``source="bundled"`` = the packaged class-balanced CIFAR-10 sample (10k train / 2k test,
    the default for cifar10 when neither is given); ``source="shared"`` = the full CIFAR-10
    JPEG set in the shared data folder (see ``workbench._paths.shared_data_dir``).
    """
    if name not in NAMES:
        raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(NAMES)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    if source is not None and source not in DATA_SOURCES:
        raise ValueError(f"unknown source {source!r}; allowed: {', '.join(DATA_SOURCES)} or None")
    if root is not None and source is not None:
        raise ValueError("give root or source, not both")

    if root is not None:
        path = Path(root).expanduser()
        if path.is_file() and path.suffix == ".npz":
            return _read_jpeg(path, name, split, f"JPEG archive {path.name}")
        if path.is_dir():
            return _read_official(path, name, split)
        raise FileNotFoundError(f"root {path} is neither a folder nor an .npz file; expected "
                                f"{_layout(name)}, or a JPEG .npz archive")

    if name != "cifar10":
        raise ValueError(f"{name} has no bundled or shared copy; pass root= pointing at "
                         f"{_layout(name)}")
    if source == "shared":
        shared = shared_data_dir()
        if shared is None:
            raise FileNotFoundError("no shared data folder (set $WORKBENCH_SHARED_DATA or "
                                    f"create ../shared/data with {_SHARED_FILE})")
        return _read_jpeg(shared / _SHARED_FILE, name, split,
                          f"{_JPEG_NOTE}; all 60,000 images")
    return _read_jpeg(bundled_path(_BUNDLED_FILE), name, split,
                      f"{_JPEG_NOTE}; bundled class-balanced sample (10,000 train / 2,000 test)")
