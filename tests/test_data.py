"""Tests for workbench.data: CIFAR readers, the restricted unpickler, splits and DeviceLoader."""

from __future__ import annotations

import io
import pickle
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from workbench._device import resolve_device
from workbench._paths import shared_data_dir
from workbench.data import (
    DATA_SOURCES,
    NAMES,
    SPLITS,
    DeviceLoader,
    ImageDataset,
    load_dataset,
    train_val_split,
)
from workbench.data._unpickle import load_cifar_pickle

FAST = settings(max_examples=30, deadline=None)


# ---------------------------------------------------------------- writing official-format files


class _Py2Pickler(pickle._Pickler):
    """Writes pickles as Python 2 cPickle did for CIFAR: every str/bytes as a py2 ``str``
    (BINSTRING, read back as bytes with ``encoding="bytes"``), numpy under ``numpy.core``."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj: str | bytes) -> None:
        raw = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[str] = _save_py2_str
    dispatch[bytes] = _save_py2_str

    def save_global(self, obj: object, name: str | None = None) -> None:
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)


def _dump_py2(obj: object, path: Path) -> None:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    path.write_bytes(buf.getvalue())


def _batch(rng: np.random.Generator, n: int, n_classes: int, label_keys: tuple[str, ...]
           ) -> dict[str, object]:
    d: dict[str, object] = {
        "batch_label": "testing batch 1 of 1",
        "data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        "filenames": [f"img_{i}.png" for i in range(n)],
    }
    for key in label_keys:
        d[key] = [int(v) for v in rng.integers(0, n_classes, size=n)]
    return d


@pytest.fixture
def cifar10_root(tmp_path: Path) -> Path:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        _dump_py2(_batch(rng, 6, 10, ("labels",)), folder / f"data_batch_{i}")
    _dump_py2(_batch(rng, 4, 10, ("labels",)), folder / "test_batch")
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck"]
    _dump_py2({"label_names": names, "num_cases_per_batch": 6, "num_vis": 3072},
              folder / "batches.meta")
    return folder


@pytest.fixture
def cifar100_root(tmp_path: Path) -> Path:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(1)
    keys = ("fine_labels", "coarse_labels")
    _dump_py2(_batch(rng, 8, 100, keys), folder / "train")
    _dump_py2(_batch(rng, 5, 100, keys), folder / "test")
    _dump_py2({"fine_label_names": [f"fine{i}" for i in range(100)],
               "coarse_label_names": [f"coarse{i}" for i in range(20)]}, folder / "meta")
    return folder


def _read_back(path: Path) -> dict[bytes, object]:
    with path.open("rb") as f:  # our own test file: plain pickle is safe here
        return pickle.load(f, encoding="bytes")


# ------------------------------------------------------------------------ official CIFAR files


def test_cifar10_official(cifar10_root: Path) -> None:
    train = load_dataset("cifar10", "train", root=cifar10_root)
    assert train.images.shape == (30, 3, 32, 32) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64 and train.classes[0] == "airplane"
    first = _read_back(cifar10_root / "data_batch_1")
    assert train.labels[:6].tolist() == first[b"labels"]
    data = first[b"data"]  # row = R plane, G plane, B plane, each 32x32 row-major
    assert train.images[2, 1, 5, 7] == data[2, 1024 + 5 * 32 + 7]
    test = load_dataset("cifar10", "test", root=cifar10_root.parent)  # parent folder works too
    assert len(test) == 4 and test.split == "test" and "official" in test.description
    assert test.source == str(cifar10_root)
    assert not train.images.flags.writeable and not train.labels.flags.writeable


def test_cifar100_official(cifar100_root: Path) -> None:
    train = load_dataset("cifar100", "train", root=cifar100_root)
    assert train.images.shape == (8, 3, 32, 32) and train.num_classes == 100
    assert train.labels.tolist() == _read_back(cifar100_root / "train")[b"fine_labels"]
    assert load_dataset("cifar100", "test", root=cifar100_root).classes[3] == "fine3"


class _Evil:
    def __init__(self, func: object, arg: str) -> None:
        self.func, self.arg = func, arg

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return self.func, (self.arg,)


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval", "builtins.exec", "numpy.load"])
def test_unpickler_refuses_code(tmp_path: Path, cifar10_root: Path, kind: str) -> None:
    import builtins
    import os

    marker = tmp_path / "pwned"
    payloads = {
        "os.system": (os.system, f"touch {marker}"),
        "builtins.eval": (builtins.eval, f"open({str(marker)!r}, 'w').close()"),
        "builtins.exec": (builtins.exec, f"open({str(marker)!r}, 'w').close()"),
        "numpy.load": (np.load, str(marker)),
    }
    func, arg = payloads[kind]
    target = cifar10_root / "data_batch_1"
    target.write_bytes(pickle.dumps({b"data": _Evil(func, arg)}, protocol=2))
    with pytest.raises(ValueError, match="refusing global") as info:
        load_dataset("cifar10", root=cifar10_root)
    assert str(target) in str(info.value)
    assert not marker.exists()


def test_unpickler_refuses_hand_written_global(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil"
    evil.write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    with pytest.raises(ValueError, match=r"refusing global os\.system"):
        load_cifar_pickle(evil)
    assert not marker.exists()


def test_missing_and_corrupt_files_name_the_path(tmp_path: Path, cifar10_root: Path) -> None:
    (cifar10_root / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3") as info:
        load_dataset("cifar10", root=cifar10_root)
    assert "cifar-10-batches-py" in str(info.value)
    load_dataset("cifar10", "test", root=cifar10_root)  # the test split is still complete

    raw = (cifar10_root / "test_batch").read_bytes()
    (cifar10_root / "test_batch").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=re.escape(str(cifar10_root / "test_batch"))):
        load_dataset("cifar10", "test", root=cifar10_root)

    _dump_py2({"data": np.zeros((2, 10), np.uint8), "labels": [0, 1]}, cifar10_root / "test_batch")
    with pytest.raises(ValueError, match=r"uint8 \[N, 3072\]"):
        load_dataset("cifar10", "test", root=cifar10_root)
    _dump_py2({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}, cifar10_root / "test_batch")
    with pytest.raises(ValueError, match="list of 2 ints"):
        load_dataset("cifar10", "test", root=cifar10_root)
    _dump_py2({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]},
              cifar10_root / "test_batch")
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        load_dataset("cifar10", "test", root=cifar10_root)

    with pytest.raises(FileNotFoundError, match=r"batches\.meta"):
        load_dataset("cifar10", root=tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"batches\.meta"):
        load_dataset("cifar10", root=empty)

    bad_npz = tmp_path / "bad.npz"
    bad_npz.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=re.escape(str(bad_npz))):
        load_dataset("cifar10", root=bad_npz)
    partial = tmp_path / "partial.npz"
    np.savez(partial, classes=np.array(["a"]))
    with pytest.raises(ValueError, match="missing arrays"):
        load_dataset("cifar10", root=partial)


# ------------------------------------------------------------------------------ JPEG archives


def test_jpeg_npz_root_round_trip(tmp_path: Path) -> None:
    yy, xx = np.mgrid[0:32, 0:32]
    imgs = np.stack([np.stack([xx * 8, yy * 8, np.full_like(xx, 40 * k)], axis=-1)
                     for k in range(4)]).astype(np.uint8)  # NHWC: R grows with x, G with y
    blobs = []
    for im in imgs:
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, "JPEG", quality=95)
        blobs.append(np.frombuffer(buf.getvalue(), np.uint8))
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    path = tmp_path / "mini.npz"
    np.savez(path, classes=np.array(["a", "b"]), test_jpeg=np.concatenate(blobs),
             test_offsets=offsets, test_labels=np.array([0, 1, 1, 0], np.uint8))
    ds = load_dataset("cifar10", "test", root=path)
    assert ds.images.shape == (4, 3, 32, 32) and ds.labels.tolist() == [0, 1, 1, 0]
    diff = np.abs(ds.images.astype(int) - imgs.transpose(0, 3, 1, 2).astype(int))
    assert diff.mean() < 3
    with pytest.raises(ValueError, match="missing arrays"):
        load_dataset("cifar10", "train", root=path)


@pytest.fixture(scope="module")
def bundled() -> tuple[ImageDataset, ImageDataset]:
    return load_dataset(), load_dataset("cifar10", "test", source="bundled")


def test_bundled_sample(bundled: tuple[ImageDataset, ImageDataset]) -> None:
    train, test = bundled
    assert train.images.shape == (10_000, 3, 32, 32) and test.images.shape == (2_000, 3, 32, 32)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    assert train.classes[:2] == ("airplane", "automobile") and train.num_classes == 10
    assert (train.class_counts() == 1000).all() and (test.class_counts() == 200).all()
    assert "bundled" in train.description and train.source.endswith("cifar10_sample.npz")
    mean = train.images.mean(axis=(0, 2, 3)) / 255
    np.testing.assert_allclose(mean, [0.4914, 0.4822, 0.4465], atol=0.02)


@pytest.mark.shared
def test_shared_full_set() -> None:
    if shared_data_dir() is None:
        pytest.skip("no shared data folder")
    test = load_dataset("cifar10", "test", source="shared")
    assert test.images.shape == (10_000, 3, 32, 32) and (test.class_counts() == 1000).all()


# ---------------------------------------------------------------------------------- splitting


def _toy(n: int = 40, n_classes: int = 4, seed: int = 0) -> ImageDataset:
    rng = np.random.default_rng(seed)
    return ImageDataset(
        name="toy", split="train",
        images=rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8),
        labels=np.arange(n) % n_classes, classes=tuple(f"c{i}" for i in range(n_classes)),
        source="synthetic",
    )


def test_split_stratified_and_deterministic(bundled: tuple[ImageDataset, ImageDataset]) -> None:
    train = bundled[1]  # 2,000 images, 200 per class
    fit, val = train_val_split(train, val_fraction=0.1, seed=3)
    assert len(val) == 200 and len(fit) == 1800 and val.split == "val"
    assert (val.class_counts() == 20).all() and (fit.class_counts() == 180).all()
    fit2, val2 = train_val_split(train, val_fraction=0.1, seed=3)
    assert np.array_equal(val.images, val2.images) and np.array_equal(fit.labels, fit2.labels)
    _, val3 = train_val_split(train, val_fraction=0.1, seed=4)
    assert not np.array_equal(val.images, val3.images)
    # Disjoint and complete: every image lands in exactly one part.
    keys = {im.tobytes() for im in fit.images} | {im.tobytes() for im in val.images}
    assert len(keys) == len({im.tobytes() for im in train.images})


def test_split_val_size_uneven_classes() -> None:
    ds = _toy(n=23, n_classes=3)  # class sizes 8, 8, 7
    fit, val = train_val_split(ds, val_size=7, seed=0)
    assert len(val) == 7 and len(fit) == 16
    assert all(abs(v - c * 7 / 23) < 1 for v, c in zip(val.class_counts(), ds.class_counts(),
                                                       strict=True))


@FAST
@given(frac=st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0), st.just(float("nan")),
                      st.booleans()))
def test_split_rejects_bad_fraction(frac: float) -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(_toy(), val_fraction=frac)


@FAST
@given(size=st.one_of(st.integers(max_value=0), st.integers(min_value=40)))
def test_split_rejects_bad_size(size: int) -> None:
    with pytest.raises(ValueError):
        train_val_split(_toy(), val_size=size)


def test_split_needs_exactly_one_size() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        train_val_split(_toy())
    with pytest.raises(ValueError, match="exactly one"):
        train_val_split(_toy(), val_fraction=0.1, val_size=3)


# ------------------------------------------------------------------------------- DeviceLoader


def test_loader_shapes_and_normalisation(bundled: tuple[ImageDataset, ImageDataset]) -> None:
    loader = DeviceLoader(bundled[1], 500, device="cpu", train=False)
    assert len(loader) == 4 and loader.image_shape == (3, 32, 32)
    xs, ys = zip(*loader, strict=True)
    x, y = torch.cat(xs), torch.cat(ys)
    assert x.dtype == torch.float32 and x.shape == (2000, 3, 32, 32)
    assert y.dtype == torch.int64 and y.shape == (2000,)
    mean, std = x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))
    assert mean.abs().max() < 0.1 and (std - 1).abs().max() < 0.1


def test_loader_eval_covers_every_sample_once() -> None:
    ds = _toy(n=37, n_classes=37)  # label i is sample i
    loader = DeviceLoader(ds, 8, device="cpu", train=False)
    batches = list(loader)
    assert len(loader) == len(batches) == 5 and batches[-1][1].shape == (5,)
    assert torch.cat([y for _, y in batches]).tolist() == list(range(37))
    x = torch.cat([x for x, _ in batches])
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
    expected = (torch.from_numpy(ds.images.copy()).float() / 255 - mean) / std
    assert torch.allclose(x, expected, atol=1e-5)
    assert torch.equal(torch.cat([y for _, y in loader]), torch.arange(37))  # same order again


def test_loader_augmentation_is_crop_and_flip() -> None:
    ds = _toy(n=64, n_classes=4)
    kw = {"device": "cpu", "seed": 5, "mean": (0, 0, 0), "std": (1, 1, 1)}
    aug_x, aug_y = next(iter(DeviceLoader(ds, 32, **kw)))
    plain_x, plain_y = next(iter(DeviceLoader(ds, 32, augment=False, **kw)))
    assert torch.equal(aug_y, plain_y)  # same permutation, labels untouched
    assert not torch.equal(aug_x, plain_x)
    changed = 0
    for a, p in zip(aug_x, plain_x, strict=True):
        padded = F.pad(p, (4, 4, 4, 4))
        crops = [padded[:, i:i + 32, j:j + 32] for i in range(9) for j in range(9)]
        candidates = torch.stack(crops + [c.flip(-1) for c in crops])
        assert (candidates == a).flatten(1).all(1).any(), "not a padded crop (+flip)"
        changed += not torch.equal(a, p)
    assert changed > 16  # 1 of 162 transforms is the identity


def test_loader_labels_follow_images() -> None:
    images = np.repeat((np.arange(10) * 25 + 5).astype(np.uint8), 3 * 32 * 32)
    ds = ImageDataset(name="flat", split="train", images=images.reshape(10, 3, 32, 32),
                      labels=np.arange(10), classes=tuple("abcdefghij"), source="synthetic")
    for x, y in DeviceLoader(ds, 4, device="cpu", seed=1, mean=(0, 0, 0), std=(1, 1, 1)):
        brightest = (x.flatten(1).amax(1) * 255).round().long()
        assert torch.equal(brightest, y * 25 + 5)


def test_loader_seeds_and_epochs() -> None:
    ds = _toy(n=50)

    def run(seed: int, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return list(DeviceLoader(ds, 16, device="cpu", seed=seed).epoch(epoch))

    a, b, c = run(0, 0), run(0, 0), run(1, 0)
    assert len(a) == 3  # drop_last in training
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb)
               for (xa, ya), (xb, yb) in zip(a, b, strict=True))
    assert not torch.equal(a[0][0], c[0][0])
    loader = DeviceLoader(ds, 16, device="cpu", seed=0)
    first, second = list(loader), list(loader)  # each iter() is the next epoch
    assert torch.equal(first[0][0], a[0][0]) and torch.equal(second[0][0], run(0, 1)[0][0])
    assert not torch.equal(first[0][1], second[0][1])


def test_loader_resize_and_channels_last() -> None:
    ds = _toy(n=20)
    small = DeviceLoader(ds, 20, device="cpu", train=False, resize=16)
    full = DeviceLoader(ds, 20, device="cpu", train=False)
    (xs, _), (xf, _) = next(iter(small)), next(iter(full))
    assert xs.shape == (20, 3, 16, 16) and small.image_shape == (3, 16, 16)
    assert torch.allclose(xs, F.avg_pool2d(xf, 2), atol=1e-5)  # normalising commutes with pooling
    xa, _ = next(iter(DeviceLoader(ds, 8, device="cpu", resize=16, channels_last=True)))
    assert xa.shape == (8, 3, 16, 16)
    assert xa.is_contiguous(memory_format=torch.channels_last)


@FAST
@given(batch_size=st.one_of(st.integers(max_value=0), st.booleans(), st.just(2.5)))
def test_loader_rejects_bad_batch_size(batch_size: int) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        DeviceLoader(_toy(n=8), batch_size, device="cpu")


def test_loader_rejects_bad_options() -> None:
    ds = _toy(n=8)
    with pytest.raises(ValueError, match="exceeds"):
        DeviceLoader(ds, 9, device="cpu")  # drop_last would leave no batch
    assert len(DeviceLoader(ds, 9, device="cpu", train=False)) == 1
    with pytest.raises(ValueError, match="augment"):
        DeviceLoader(ds, 4, device="cpu", train=False, augment=True)
    for resize in (0, 33):
        with pytest.raises(ValueError, match="resize"):
            DeviceLoader(ds, 4, device="cpu", resize=resize)
    with pytest.raises(ValueError, match="std"):
        DeviceLoader(ds, 4, device="cpu", std=(1, 0, 1))
    with pytest.raises(ValueError, match="mean"):
        DeviceLoader(ds, 4, device="cpu", mean=(0, 0))
    with pytest.raises(ValueError, match="seed"):
        DeviceLoader(ds, 4, device="cpu", seed=-1)


# ----------------------------------------------------------------------- names and devices


@FAST
@given(name=st.text(max_size=12).filter(lambda s: s not in NAMES))
def test_unknown_dataset_name(name: str) -> None:
    with pytest.raises(ValueError, match="cifar10, cifar100"):
        load_dataset(name)


@FAST
@given(split=st.text(max_size=12).filter(lambda s: s not in SPLITS),
       source=st.text(max_size=12).filter(lambda s: s not in DATA_SOURCES))
def test_unknown_split_and_source(split: str, source: str) -> None:
    with pytest.raises(ValueError, match="train, test"):
        load_dataset("cifar10", split)
    with pytest.raises(ValueError, match="bundled, shared"):
        load_dataset("cifar10", source=source)


def test_load_dataset_argument_rules(cifar100_root: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        load_dataset(root=cifar100_root, source="bundled")
    with pytest.raises(ValueError, match="cifar-100-python"):
        load_dataset("cifar100")


@FAST
@given(name=st.text(max_size=10).filter(
    lambda s: s.strip().lower() not in ("auto", "cpu", "mps", "cuda")
    and not s.strip().lower().startswith("cuda:")))
def test_resolve_device_unknown(name: str) -> None:
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        resolve_device(name)


def test_resolve_device_known() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto").type in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="cuda"):
            resolve_device("cuda:0")
