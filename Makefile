# Two commands do all the set-up on a fresh machine:
#   make run    create .venv, install, preprocess + train + evaluate on data/houses, print where the report is
#   make test   create .venv, install, run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= runs/latest

# Project-local Prefect state unless the user has their own; no analytics (no internet here).
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test lint bench clean

$(VENV)/.installed: requirements.lock pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

run: $(VENV)/.installed
	$(PY) -m flows train --data data/houses --out $(OUT)

test: $(VENV)/.installed
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check flows tasks tests bench

bench: $(VENV)/.installed
	$(PY) bench/bench_preprocess.py

clean:
	rm -rf .cache runs .prefect
