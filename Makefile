# The two set-up commands of README.md. Each makes .venv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test lint

$(VENV)/.installed: pyproject.toml requirements/pinned.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements/pinned.txt -e '.[all,dev]'
	touch $@

install: $(VENV)/.installed

# The whole test suite, once per backend (tensorflow, jax, torch).
test: install
	$(VENV)/bin/ruff check keras_mlcl tests
	bash scripts/test_backends.sh $(PY)

lint: install
	$(VENV)/bin/ruff check keras_mlcl tests
