# The two set-up commands of README.md. Each makes .venv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo docs test

$(VENV)/.installed: pyproject.toml requirements/pinned.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements/pinned.txt -e '.[all,dev]'
	touch $@

install: $(VENV)/.installed

# The main job: train MLCL on the bundled Fashion-MNIST subset, evaluate per level,
# save, export a SavedModel and plot, into saved_models/fashion_mnist_mlcl/ (replacing the
# committed run there: --overwrite).
demo: install
	$(VENV)/bin/keras-mlcl train --overwrite

# The API reference site, build/docs/index.html: the README, docs/ and the docstrings (pdoc).
# Fails on a warning, a missing docstring or a broken reference (scripts/build_docs.py).
docs: install
	KERAS_BACKEND=jax $(PY) scripts/build_docs.py build/docs

# Lint, type-check the package, build the docs, then the test suite once per backend (torch,
# tensorflow, jax; `BACKENDS=jax make test` for one), backend-independent tests once
# (tests/conftest.py).
test: install
	$(VENV)/bin/ruff check keras_mlcl tests keras_mlcl_launcher.py scripts
	$(VENV)/bin/mypy keras_mlcl
	KERAS_BACKEND=jax $(PY) scripts/build_docs.py build/docs
	bash scripts/test_backends.sh $(PY)

