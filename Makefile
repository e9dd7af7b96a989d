# Entry points for a fresh machine with Python >= 3.11 and pip:
#   make run   - start the node on its embedded default (SQLite + ./data, HTTP 8042, DICOM 4242)
#   make test  - lint, type-check, check the import layers, run the whole test suite
#   make bench - the side-by-side benchmark against real Orthanc (bench/results/latest/results.md)
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: run test install bench

$(BIN)/dicom-node: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/dicom-node

run: install
	$(BIN)/dicom-node configs/default.json

test: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q

# make bench: our node against Orthanc 1.10.1 (apt-get install orthanc dcmtk), every figure, the
# concurrency sweep, plots; BENCH_ARGS=--quick for a shorter run. Results in bench/results/.
bench: install
	$(BIN)/pip install --quiet -e ".[test,bench]"
	$(BIN)/python -m bench $(BENCH_ARGS)
