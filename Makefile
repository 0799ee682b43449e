# NAS Workbench: `make demo` runs the main job, `make test` the test suite, `make lab` the notebooks.
# Each target creates or reuses .venv and installs the pinned stack first (tools/bootstrap.sh).

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.workbench-installed
DEMO_OUT ?= out/demo

.PHONY: setup demo test test-slow test-browser lint typecheck lab bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml tools/bootstrap.sh
	bash tools/bootstrap.sh $(VENV) dev,lab,ray
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m workbench demo --out $(DEMO_OUT)

test: $(STAMP)
	$(VENV)/bin/ruff check workbench tests bench tools
	$(VENV)/bin/mypy
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check workbench tests bench tools

# mypy on workbench/ with the settings of pyproject.toml's [tool.mypy] (cache: .mypy_cache).
typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The notebooks in JupyterLab, driven by a headless Chromium (tests/browser): Run All Cells in
# every notebook, widgets and figures rendered, one real click per widget notebook; screenshots
# in out/browser/. Installs Debian's chromium + chromium-driver (as root, when missing) and the
# `browser` extra (selenium) itself.
test-browser: $(STAMP)
	bash tools/browser_deps.sh $(VENV)
	$(PY) -m pytest -q -p no:cacheprovider -m browser tests/browser

# Jupyter refuses to run as root without --allow-root (containers, CI machines), and with no
# display there is no browser to open. In a container, serve on every interface and open the
# URL with ?token= that the server prints: make lab LAB_FLAGS="--allow-root --no-browser --ip 0.0.0.0"
LAB_FLAGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,) $(if $(or $(DISPLAY),$(WAYLAND_DISPLAY),$(filter Darwin,$(shell uname -s))),,--no-browser)

# The repository's notebooks are saved without outputs (tools/jupyter: a pre-save hook).
lab: $(STAMP)
	@echo "make lab: open the http://127.0.0.1:8888/lab?token=... URL printed below (the port may differ)."
	@echo "  In a container: make lab LAB_FLAGS='--allow-root --no-browser --ip 0.0.0.0' (then the host's address)."
	@echo "  Small sizes, as the tests run them: WORKBENCH_QUICK=1 make lab"
	JUPYTER_CONFIG_PATH=$(CURDIR)/tools/jupyter$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH} \
		$(VENV)/bin/jupyter lab notebooks/ $(LAB_FLAGS)

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .mypy_cache .hypothesis
