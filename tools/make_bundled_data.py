"""Build the repository's bundled data (``data/``) from the public files in ``../shared/data``.

Run once by maintainers: ``python tools/make_bundled_data.py [SHARED_DATA_DIR]``. The output is
deterministic (fixed seed), so the committed files can be regenerated and checked.
"""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data"
TRAIN_PER_CLASS = 1000
TEST_PER_CLASS = 200
SEED = 0


def _gzip_copy(src: Path, dst: Path) -> None:
    # mtime=0 keeps the archive byte-identical between runs.
    with src.open("rb") as fin, dst.open("wb") as raw:
        with gzip.GzipFile(filename=src.name, mode="wb", fileobj=raw, mtime=0) as fout:
            shutil.copyfileobj(fin, fout)


def _subsample(jpeg: np.ndarray, offsets: np.ndarray, labels: np.ndarray, per_class: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    picked = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        picked.append(np.sort(rng.choice(idx, size=per_class, replace=False)))
    order = np.concatenate(picked)
    rng.shuffle(order)  # mix classes so any prefix is roughly balanced
    chunks = [jpeg[offsets[i]:offsets[i + 1]] for i in order]
    new_offsets = np.zeros(len(order) + 1, dtype=np.int64)
    new_offsets[1:] = np.cumsum([len(c) for c in chunks])
    return np.concatenate(chunks).astype(np.uint8), new_offsets, labels[order].astype(np.uint8)


def main(shared: Path) -> None:
    OUT.mkdir(exist_ok=True)
    _gzip_copy(shared / "nasbench101_1k.csv", OUT / "nasbench101_1k.csv.gz")
    _gzip_copy(shared / "nasbench201.csv", OUT / "nasbench201.csv.gz")
    for ds in ("cifar10", "ImageNet16-120"):  # NAS-Bench-Suite-Zero proxies, already gzipped
        shutil.copyfile(shared / f"nasbench201_zc_{ds}.csv.gz", OUT / f"nasbench201_zc_{ds}.csv.gz")
    rng = np.random.default_rng(SEED)
    with np.load(shared / "cifar10_jpeg.npz") as z:
        arrays = {"classes": z["classes"]}
        for split, per_class in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
            jpeg, offsets, labels = _subsample(
                z[f"{split}_jpeg"], z[f"{split}_offsets"], z[f"{split}_labels"], per_class, rng
            )
            arrays[f"{split}_jpeg"], arrays[f"{split}_offsets"] = jpeg, offsets
            arrays[f"{split}_labels"] = labels
    np.savez(OUT / "cifar10_sample.npz", **arrays)
    for p in sorted(OUT.iterdir()):
        print(f"{p.name}: {p.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data")
