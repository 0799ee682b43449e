"""Keep the repository's notebooks as JupyterLab 4 writes them, without outputs (issue 14).

``python tools/notebook_hygiene.py notebooks/*.ipynb`` strips outputs and execution counts with
nbstripout (cell ids kept) and writes the notebook metadata the way JupyterLab stores it after
opening a notebook on the project's kernel (kernelspec "Python 3 (ipykernel)" and the kernel's
``language_info``), so that opening one does not mark it modified. ``--check`` only reports.

``strip_on_save`` is the Jupyter pre-save hook ``make lab`` installs (tools/jupyter_lab_config.py):
the numbered notebooks (``NN_name.ipynb``) of the folder it serves are saved stripped, so that
JupyterLab's autosave never writes outputs or widget state into the repository. Commits go
through the nbstripout git filter that ``make setup`` configures (tools/bootstrap.sh).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

#: The notebooks the hook strips: the repository's numbered ones (00_tour.ipynb, ...).
TRACKED_NAME = re.compile(r"[0-9]{2}_[A-Za-z0-9_]+\.ipynb")
#: What nbstripout's command line strips besides outputs (its defaults).
EXTRA_KEYS = ("metadata.signature", "metadata.widgets", "cell.metadata.collapsed",
              "cell.metadata.ExecuteTime", "cell.metadata.execution",
              "cell.metadata.heading_collapsed", "cell.metadata.hidden", "cell.metadata.scrolled")
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def language_info() -> dict[str, Any]:
    """The ``language_info`` an ipykernel of this Python reports (what JupyterLab stores)."""
    from ipykernel.ipkernel import IPythonKernel

    return dict(IPythonKernel.language_info)


def clean(nb: Any) -> Any:
    """``nb`` (an nbformat NotebookNode) stripped of outputs, counts and volatile metadata, with
    JupyterLab's notebook metadata; cell ids are kept."""
    from nbstripout import strip_output

    nb = strip_output(nb, keep_output=False, keep_count=False, keep_id=True,
                      extra_keys=list(EXTRA_KEYS))
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = language_info()
    return nb


def strip_on_save(model: dict[str, Any], path: str, **kwargs: Any) -> None:
    """Jupyter pre-save hook: save the repository's notebooks without outputs or widget state
    (other notebooks are saved as they are)."""
    import nbformat
    from nbstripout import strip_output

    if model.get("type") != "notebook" or not TRACKED_NAME.fullmatch(Path(path).name):
        return
    nb = nbformat.from_dict(model["content"])
    model["content"] = strip_output(nb, keep_output=False, keep_count=False, keep_id=True,
                                    extra_keys=list(EXTRA_KEYS))


def main(argv: list[str] | None = None) -> int:
    """Clean the named notebooks in place (or, with --check, list those that are not clean)."""
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="report, do not write")
    args = parser.parse_args(argv)
    dirty = []
    for path in args.paths:
        before = path.read_text(encoding="utf-8")
        after = nbformat.writes(clean(nbformat.reads(before, as_version=4))) + "\n"
        if after != before:
            dirty.append(path)
            if not args.check:
                path.write_text(after, encoding="utf-8")
    for path in dirty:
        print(f"{'not clean' if args.check else 'cleaned'}: {path}")
    return 1 if dirty and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
