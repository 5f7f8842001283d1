# Sentinela — every entry point a user needs. `make run` and `make test` work on a fresh clone.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
AIRFLOW_HOME ?= $(CURDIR)/airflow-home

.PHONY: install dev-install model run demo test test-fast lint airflow bench clean help

help:
	@echo "make run      install, build the model if needed, migrate the archive, run once"
	@echo "make demo     the same, offline, over bundled sample feeds"
	@echo "make test     the whole test suite (installs and builds what it needs)"
	@echo "make lint     ruff + mypy"
	@echo "make model    (re)build the classifier from models/data into the cache"
	@echo "make airflow  airflow standalone on 127.0.0.1:8080 with the project's DAGs"
	@echo "make bench    benchmarks in bench/ (figures go into the README)"

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(VENV)/.installed: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed

dev-install: $(VENV)/.dev-installed

# Builds only when the cache lacks the model for the current data + code + base weights.
model: install
	$(BIN)/python models/train.py

run: model
	$(BIN)/sentinela db upgrade
	$(BIN)/sentinela run --once

demo: model
	SENTINELA_ALLOW_PRIVATE_HOSTS=1 $(BIN)/sentinela demo

# Fast tests on both cores, then the slow end-to-end ones (real Airflow) on their own.
test: dev-install model
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow" -n 2
	$(BIN)/python -m pytest -q -p no:cacheprovider -m slow

test-fast: dev-install
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow"

lint: dev-install
	$(BIN)/ruff check pipeline dags tests models bench
	$(BIN)/mypy

airflow: model
	mkdir -p $(AIRFLOW_HOME)
	AIRFLOW_HOME=$(AIRFLOW_HOME) \
	AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW__CORE__PARALLELISM=4 \
	AIRFLOW__API__WORKERS=1 \
	AIRFLOW__API__HOST=127.0.0.1 \
	AIRFLOW__API__PORT=8080 \
	bash -c '$(BIN)/airflow db migrate >/dev/null && \
	$(BIN)/airflow pools set slack 1 "Slack rate limit" && exec $(BIN)/airflow standalone'

bench: dev-install model
	$(BIN)/python bench/classify.py

clean:
	rm -rf data/*.db data/*.db-* .pytest_cache .mypy_cache .ruff_cache
