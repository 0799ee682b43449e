"""Packaging and the CLI: every subpackage is installed, data is bundled, commands answer."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import workbench
from workbench._paths import bundled_path
from workbench.cli import main

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")  # Python >= 3.11


def test_pyproject_lists_every_subpackage():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {"workbench"} | {
        "workbench." + ".".join(p.parent.relative_to(ROOT / "workbench").parts)
        for p in (ROOT / "workbench").rglob("__init__.py") if p.parent != ROOT / "workbench"
    }
    assert found | {"workbench._bundled"} == listed


def test_torch_is_pinned_exactly_and_torchvision_never_required():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch==2.13.0" in deps
    assert not any(d.startswith("torchvision") for d in deps)
    assert "torchvision" not in sys.modules


@pytest.mark.parametrize("name", ["nasbench101_1k.csv.gz", "nasbench201.csv.gz",
                                  "nasbench201_zc_cifar10.csv.gz",
                                  "nasbench201_zc_ImageNet16-120.csv.gz",
                                  "nasbench101_20k.csv.gz", "nasbench201_hw_cifar10.csv.gz",
                                  "nasbench201_hw_cifar100.csv.gz",
                                  "nasbench201_hw_ImageNet16-120.csv.gz",
                                  "nasbench201_latency.csv.gz", "nasbench201_curves_200.csv.gz",
                                  "nasbench201_val200_cifar10.csv.gz",
                                  "cifar10_sample.npz", "README.md"])
def test_bundled_files_present(name):
    assert bundled_path(name).stat().st_size > 0


def test_bundled_data_stays_small():
    total = sum(p.stat().st_size for p in (ROOT / "data").iterdir() if p.is_file())
    assert total < 25e6


def test_missing_bundled_file_is_named():
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        bundled_path("nope.csv")


def test_cli_info_and_bad_input(capsys, tmp_path):
    assert main(["info"]) == 0
    assert workbench.__version__ in capsys.readouterr().out
    assert main(["runs", "--store", str(tmp_path / "none")]) == 1
    code = main(["train", "--store", str(tmp_path), "--steps", "0", "1"])
    assert code == 2 and "steps" in capsys.readouterr().err


def test_cli_train_then_runs(capsys, tmp_path):
    code = main(["train", "--store", str(tmp_path), "--steps", "4", "--model", "tiny",
                 "--snapshot-every", "2", "--val-size", "64", "--train-size", "128",
                 "--batch-size", "32", "--device", "cpu", "7"])
    assert code == 0
    assert main(["runs", "--store", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "nb201" in out and "done" in out
