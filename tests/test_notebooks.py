"""Every notebook runs top to bottom, headless, in quick mode (WORKBENCH_QUICK=1), is stored
without outputs, starts with an explanation, has the quick switch and is listed in the README."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

FOLDER = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))
QUICK_SWITCH = 'QUICK = os.environ.get("WORKBENCH_QUICK") == "1"'


def test_there_are_notebooks():
    names = {p.stem for p in NOTEBOOKS}
    assert {"00_tour", "01_quickstart", "02_feature_evolution", "03_predictors",
            "04_successive_halving", "05_layernas", "06_paper_figures", "07_nap2"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_shape(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert len(nb.cells[0].source) > 200, "start with a paragraph saying what and why"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert QUICK_SWITCH in code[0].source
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), \
        f"{path.name} is stored with outputs; strip them"
    assert path.name in (FOLDER / "README.md").read_text()


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    """One run store for the notebooks of this session: the second to need it reuses it."""
    return tmp_path_factory.mktemp("notebook-store") / "store"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, monkeypatch, tmp_path, shared_store):
    nb = nbformat.read(path, as_version=4)
    monkeypatch.setenv("WORKBENCH_QUICK", "1")
    monkeypatch.setenv("WORKBENCH_STORE", str(shared_store))
    monkeypatch.setenv("WORKBENCH_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "2"))
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    if path.stem == "06_paper_figures":
        written = sorted(p.name for p in (tmp_path / "figures").iterdir())
        assert len(written) >= 12 and all(n.endswith(".html") for n in written)
