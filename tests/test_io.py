"""Tests of ``workbench._io``: atomic replacement, temp files cleaned up, old file kept on error."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

import pytest

from workbench._io import atomic_path, atomic_write


def _entries(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def test_atomic_write_bytes_text_and_writer(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.bin"
    assert atomic_write(target, b"\x00\x01") == target  # parent folders are created
    assert target.read_bytes() == b"\x00\x01"
    atomic_write(str(target), "héllo", encoding="utf-8")
    assert target.read_text(encoding="utf-8") == "héllo"

    def write(fh: BinaryIO) -> None:
        fh.write(b"abc")
        fh.seek(0)
        assert fh.read() == b"abc"  # opened w+b: a writer may read back what it wrote

    atomic_write(target, write)
    assert target.read_bytes() == b"abc"
    assert _entries(target.parent) == ["out.bin"]  # no temp file left behind


def test_atomic_write_replaces_the_inode(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")
    before = os.stat(target).st_ino
    atomic_write(target, "new")
    assert target.read_text() == "new" and os.stat(target).st_ino != before  # renamed over


def test_writer_error_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    target = tmp_path / "keep.txt"
    target.write_text("intact")
    seen: list[str] = []

    def failing(fh: BinaryIO) -> None:
        fh.write(b"partial")
        seen.append(fh.name)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_write(target, failing)
    assert target.read_text() == "intact"
    assert _entries(tmp_path) == ["keep.txt"]
    name = Path(seen[0]).name
    assert name.startswith(".keep.txt.") and name.endswith(".tmp")  # hidden, beside the target


def test_interrupted_replace_keeps_the_old_file(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")

    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("workbench._io.os.replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, "new")
    assert target.read_text() == "old" and _entries(tmp_path) == ["a.txt"]


def test_atomic_path_for_writers_that_want_a_name(tmp_path: Path) -> None:
    target = tmp_path / "t.csv"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.is_file() and tmp != target
        tmp.write_text("a,b\n1,2\n")
        assert target.read_text() == "old"  # nothing visible until the block ends
    assert target.read_text() == "a,b\n1,2\n" and _entries(tmp_path) == ["t.csv"]

    with pytest.raises(ValueError, match="nope"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise ValueError("nope")
    assert target.read_text() == "a,b\n1,2\n" and _entries(tmp_path) == ["t.csv"]


def test_temp_names_are_unique(tmp_path: Path) -> None:
    target = tmp_path / "x"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second
        first.write_text("1")
        second.write_text("2")
    assert target.read_text() == "1"  # the outer block finishes last and wins


def test_new_files_get_the_usual_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "p", b"")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "p").st_mode) == 0o644  # not mkstemp's 0o600


@pytest.mark.parametrize("bad", [None, 3, ["x"]])
def test_atomic_write_refuses_other_data(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ValueError, match="bytes, str or a callable"):
        atomic_write(tmp_path / "f", bad)  # type: ignore[arg-type]
    assert _entries(tmp_path) == []


def test_atomic_write_refuses_a_folder_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must name a file"):
        atomic_write(Path("."), b"")
