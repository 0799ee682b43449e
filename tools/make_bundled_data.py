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
import pandas as pd

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


#: HELP latency columns that repeat HW-NAS-Bench's CIFAR-10 values (checked below).
HELP_DUPLICATES = ("pixel3", "raspi4", "eyeriss", "fpga")


def _write_csv_gz(df: pd.DataFrame, dst: Path) -> None:
    # mtime=0 keeps the archive byte-identical between runs.
    with dst.open("wb") as raw:
        with gzip.GzipFile(filename=dst.name[:-3], mode="wb", fileobj=raw, mtime=0) as fout:
            fout.write(df.to_csv(index=False).encode())


def _without_arch(src: Path, archs: pd.Series) -> pd.DataFrame:
    """``src`` without its ``arch`` column, after checking every row's arch is the nb201 one."""
    df = pd.read_csv(src)
    if not (df["arch"].to_numpy() == archs.loc[df["index"]].to_numpy()).all():
        raise SystemExit(f"{src}: cell strings differ from nasbench201.csv")
    return df.drop(columns="arch")


def _hardware_tables(shared: Path) -> None:
    """HW-NAS-Bench costs, HELP latencies, the 200 learning curves and val@200, without the
    ``arch`` column (the NB201 index names the cell; checked against nasbench201.csv)."""
    archs = pd.read_csv(shared / "nasbench201.csv").set_index("index")["arch"]
    hw = {}
    for ds in ("cifar10", "cifar100", "ImageNet16-120"):
        hw[ds] = _without_arch(shared / f"nasbench201_hw_{ds}.csv.gz", archs)
        _write_csv_gz(hw[ds], OUT / f"nasbench201_hw_{ds}.csv.gz")
    lat = shared / "nasbench201_latency.csv.gz"
    if lat.is_file():
        help_ = _without_arch(lat, archs)
        for dev in HELP_DUPLICATES:  # identical to HW-NAS-Bench's: not stored twice
            col = f"latency_ms_{dev}"
            # equal up to the 6 significant digits of the HW-NAS-Bench export (raspi4: HELP has
            # more digits)
            if not np.allclose(help_[col].to_numpy(), hw["cifar10"][f"{dev}_latency"],
                               rtol=1e-5, atol=0):
                raise SystemExit(f"{col} differs from HW-NAS-Bench's {dev}_latency")
        help_ = help_.drop(columns=[f"latency_ms_{d}" for d in HELP_DUPLICATES])
        _write_csv_gz(help_, OUT / "nasbench201_latency.csv.gz")
    curves = _without_arch(shared / "nasbench201_curves_200.csv.gz", archs)
    _write_csv_gz(curves, OUT / "nasbench201_curves_200.csv.gz")
    val = _without_arch(shared / "nasbench201_val200_cifar10.csv.gz", archs)
    _write_csv_gz(val, OUT / "nasbench201_val200_cifar10.csv.gz")


def main(shared: Path) -> None:
    OUT.mkdir(exist_ok=True)
    _gzip_copy(shared / "nasbench101_1k.csv", OUT / "nasbench101_1k.csv.gz")
    _gzip_copy(shared / "nasbench201.csv", OUT / "nasbench201.csv.gz")
    # NB101 20k (its first 1,000 rows are the 1k table), already gzipped: copied unchanged.
    shutil.copyfile(shared / "nasbench101_20k.csv.gz", OUT / "nasbench101_20k.csv.gz")
    _hardware_tables(shared)
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
