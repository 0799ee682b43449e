"""Every notebook runs top to bottom, headless, in quick mode (WORKBENCH_QUICK=1), is stored
without outputs, starts with an explanation, has the quick switch and is listed in the README."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

FOLDER = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))
QUICK_SWITCH = 'QUICK = os.environ.get("WORKBENCH_QUICK") == "1"'
CLEAN = "run `.venv/bin/python tools/notebook_hygiene.py notebooks/*.ipynb`"


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
        f"{path.name} is stored with outputs; strip them: {CLEAN}"
    # stored as JupyterLab writes it, so that opening it does not mark it modified
    assert nb.metadata.get("kernelspec", {}).get("display_name") == "Python 3 (ipykernel)", CLEAN
    assert nb.metadata.get("language_info", {}).get("name") == "python", CLEAN
    assert "widgets" not in nb.metadata, f"{path.name} is stored with widget state; {CLEAN}"
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
        figures = [n for n in written if n.endswith(".html")]
        assert len(figures) >= 12 and set(written) - set(figures) == {"plotly.min.js"}
        biggest = max((tmp_path / "figures" / n).stat().st_size for n in figures)
        assert biggest < 1_000_000, "each figure should load the one shared plotly.min.js"


def _hygiene():
    """tools/notebook_hygiene.py, the module `make lab`'s pre-save hook comes from."""
    import importlib.util

    path = FOLDER.parent / "tools" / "notebook_hygiene.py"
    spec = importlib.util.spec_from_file_location("notebook_hygiene", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lab_saves_the_repository_notebooks_without_outputs():
    pytest.importorskip("nbstripout")
    hygiene = _hygiene()
    nb = nbformat.read(FOLDER / "01_quickstart.ipynb", as_version=4)
    ids = [c.id for c in nb.cells]
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs = [nbformat.v4.new_output("stream", text="hi\n")]
            c.execution_count = 7
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    for name, stripped in (("01_quickstart.ipynb", True), ("my scratch.ipynb", False)):
        model = {"type": "notebook", "content": json.loads(nbformat.writes(nb))}
        hygiene.strip_on_save(model=model, path=f"notebooks/{name}", contents_manager=None)
        saved = nbformat.from_dict(model["content"])
        code = [c for c in saved.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code) == stripped
        assert ("widgets" not in saved.metadata) == stripped
        assert [c.id for c in saved.cells] == ids  # cell ids kept
    text = {"type": "file", "content": "x"}
    hygiene.strip_on_save(model=text, path="notebooks/00_x.ipynb")
    assert text == {"type": "file", "content": "x"}
    cleaned = hygiene.clean(nb)
    assert cleaned.metadata["language_info"]["name"] == "python"
    assert nbformat.writes(cleaned) == nbformat.writes(
        nbformat.read(FOLDER / "01_quickstart.ipynb", as_version=4))
