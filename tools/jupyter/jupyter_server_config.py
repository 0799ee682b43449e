"""Jupyter server settings for `make lab` and `make test-browser` (found through
JUPYTER_CONFIG_PATH=tools/jupyter): the repository's numbered notebooks are saved without
outputs or widget state, so JupyterLab's autosave never puts them into notebooks/*.ipynb."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/
from notebook_hygiene import strip_on_save

c = get_config()  # noqa: F821  (defined by the traitlets config loader)
c.ContentsManager.pre_save_hook = strip_on_save
