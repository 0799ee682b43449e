# NAS Workbench: `make demo` runs the main job, `make test` the test suite, `make lab` the notebooks.
# Each target creates or reuses .venv and installs the pinned stack first (tools/bootstrap.sh).

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.workbench-installed
DEMO_OUT ?= out/demo

.PHONY: setup demo test test-slow lint typecheck lab bench clean

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

# Jupyter refuses to run as root without --allow-root (containers, CI machines).
LAB_FLAGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/ $(LAB_FLAGS)

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .mypy_cache .hypothesis
