"""The folder of decoded JPEG archives: used while the archive is unchanged, rebuilt when it
changes or the entry is damaged, off on request, and safe with several writers at once."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.data import _jpeg, load_dataset
from workbench.data._decoded import CACHE_ENV, cache_dir, entry_path


def _archive(path: Path, labels: list[int], shade: int = 0) -> Path:
    """A tiny JPEG archive (``cifar10_jpeg.npz`` layout) with one image per label."""
    blobs = []
    for k in range(len(labels)):
        im = np.full((32, 32, 3), (40 * k + shade) % 256, np.uint8)
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, "JPEG", quality=95)
        blobs.append(np.frombuffer(buf.getvalue(), np.uint8))
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    np.savez(path, classes=np.array(["a", "b"]), train_jpeg=np.concatenate(blobs),
             train_offsets=offsets, train_labels=np.array(labels, np.int64))
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


def _no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("decoded although the cache entry is valid")

    monkeypatch.setattr(_jpeg, "decode_jpegs", fail)


def test_second_load_reads_the_cache(tmp_path: Path, cache: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    src = _archive(tmp_path / "mini.npz", [0, 1, 1, 0])
    first = load_dataset("cifar10", "train", root=src)
    entry = entry_path(src, "train", cache)
    assert entry.is_file() and entry.parent.parent == cache
    with np.load(entry, allow_pickle=False) as z:  # plain arrays, no pickle
        assert set(z.files) == {"images", "labels", "classes", "stamp"}
    _no_decoding(monkeypatch)
    again = load_dataset("cifar10", "train", root=src)
    np.testing.assert_array_equal(again.images, first.images)
    assert again.labels.tolist() == [0, 1, 1, 0] and again.classes == ("a", "b")
    assert not list(entry.parent.glob(".*.tmp"))  # atomic writes leave no temp files


def test_a_changed_archive_is_decoded_again(tmp_path: Path, cache: Path) -> None:
    src = _archive(tmp_path / "mini.npz", [0, 1, 1, 0])
    before = load_dataset("cifar10", "train", root=src)
    stat = src.stat()
    _archive(src, [1, 0, 0, 1], shade=100)  # same size is possible: force a new mtime too
    os.utime(src, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    after = load_dataset("cifar10", "train", root=src)
    assert after.labels.tolist() == [1, 0, 0, 1]
    assert not np.array_equal(after.images, before.images)
    with np.load(entry_path(src, "train", cache), allow_pickle=False) as z:
        assert z["labels"].tolist() == [1, 0, 0, 1]  # the entry was replaced
    # Only the size changing also invalidates: the archive grows by one image.
    _archive(src, [1, 0, 0, 1, 1])
    os.utime(src, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert len(load_dataset("cifar10", "train", root=src)) == 5


def test_a_damaged_entry_is_rebuilt(tmp_path: Path, cache: Path) -> None:
    src = _archive(tmp_path / "mini.npz", [0, 1])
    load_dataset("cifar10", "train", root=src)
    entry = entry_path(src, "train", cache)
    entry.write_bytes(b"not a zip")
    assert load_dataset("cifar10", "train", root=src).labels.tolist() == [0, 1]
    with np.load(entry, allow_pickle=False) as z:
        assert z["labels"].tolist() == [0, 1]


def test_cache_off_and_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, "off")
    assert cache_dir() is None
    src = _archive(tmp_path / "mini.npz", [0, 1])
    assert len(load_dataset("cifar10", "train", root=src)) == 2
    assert not list(tmp_path.rglob("decoded"))
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "nas-workbench"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_an_unwritable_cache_only_costs_speed(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv(CACHE_ENV, str(blocker))
    src = _archive(tmp_path / "mini.npz", [0, 1])
    assert load_dataset("cifar10", "train", root=src).labels.tolist() == [0, 1]


def test_concurrent_first_loads_agree(tmp_path: Path, cache: Path) -> None:
    src = _archive(tmp_path / "mini.npz", [0, 1, 1, 0, 1, 0])
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def load() -> None:
        try:
            results.append(load_dataset("cifar10", "train", root=src).images)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=load) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors and len(results) == 4
    assert all(np.array_equal(r, results[0]) for r in results)
    entry = entry_path(src, "train", cache)
    with np.load(entry, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["images"], results[0])
    assert not list(entry.parent.glob(".*.tmp"))
