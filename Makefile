# `make run` and `make test` are the only set-up a fresh clone needs.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: run test lint bench serve clean help

help:
	@echo "make run    - install locked deps into $(VENV), run the pipeline (dvc repro), print a summary"
	@echo "make test   - install locked deps + test extras, run the whole test suite"
	@echo "make lint   - ruff check and format check"
	@echo "make bench  - benchmarks against raw PyTorch (and Lightning when installed)"
	@echo "make serve  - serve the retrain flow on its nightly schedule (Prefect, no worker needed)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Locked runtime dependencies, then the project itself (editable, so dvc.yaml's src deps are live).
$(VENV)/.installed-run: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(VENV)/.installed-test: requirements-test.lock $(VENV)/.installed-run
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-test.lock
	touch $@

run: $(VENV)/.installed-run
	trainflow doctor
	dvc repro
	trainflow summary

test: $(VENV)/.installed-test
	pytest

lint: $(VENV)/.installed-test
	ruff check .
	ruff format --check .

bench: $(VENV)/.installed-test
	python bench/overhead.py
	python bench/ddp_scaling.py
	python bench/orchestration.py

serve: $(VENV)/.installed-run
	python -m flows.serve

clean:
	rm -rf $(VENV)
