# Two commands do all the set-up on a fresh machine:
#   make run    create .venv, install, preprocess + train + evaluate on data/houses, print where the report is
#   make test   create .venv, install, run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= runs/latest
# The locked set as it is, with the pip the new venv came with: no resolver (--no-deps: the lock is complete,
# tests/test_dependencies.py checks it), so what the registry serves tomorrow cannot change what is installed.
LOCK_INSTALL = --no-deps --require-hashes -r requirements.lock

# Project-local Prefect state unless the user has their own; no analytics (no internet here).
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: run test test-fast lint bench clean ui serve worker browser lock mlflow-ui serve-model mlflow-server s3-local prove prove-fast

$(VENV)/.installed: requirements.lock pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet $(LOCK_INSTALL)
	$(PY) -m pip check
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

run: $(VENV)/.installed
	$(PY) -m flows train --data data/houses --out $(OUT)

# Two pytest workers (pytest-xdist), each taking whole test files: most slow tests wait on servers, heartbeats and
# subprocesses, so two share 2 cores well (.ci/run with the install, when compared: 41 min with two, 52 with one;
# 21 min with two on 2026-12-05). TEST_WORKERS=0: one.
TEST_WORKERS ?= 2
TEST_PARALLEL = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)
test: $(VENV)/.installed
	$(PY) -m pytest -q $(TEST_PARALLEL)

# The quick subset while you work; `make test` and CI run everything.
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -m "not slow" $(TEST_PARALLEL)

# The Prefect UI and API on http://127.0.0.1:4200 (SQLite under PREFECT_HOME); stop with Ctrl-C.
ui: $(VENV)/.installed
	@echo "Prefect UI: http://127.0.0.1:4200   (flows report to it with PREFECT_API_URL=http://127.0.0.1:4200/api)"
	$(VENV)/bin/prefect server start --host 127.0.0.1 --port 4200

# Serve every deployment of prefect.yaml (schedules included) against the server of `make ui`.
serve: $(VENV)/.installed
	PREFECT_API_URL=$${PREFECT_API_URL:-http://127.0.0.1:4200/api} $(PY) -m flows serve

# A worker of the "local" process work pool (created if missing; prefect.yaml's deployments registered on it)
# against the server of `make ui`. Start one per machine; each runs the pool's flow runs in processes of its own.
worker: $(VENV)/.installed
	PREFECT_API_URL=$${PREFECT_API_URL:-http://127.0.0.1:4200/api} $(PY) -m flows worker

# The MLflow UI (experiment records and the model registry) on http://127.0.0.1:5000, on the local store that
# runs write by default (.house-pipeline/mlflow, or $HOUSE_PIPELINE_HOME/mlflow); stop with Ctrl-C.
MLFLOW_STORE = $(abspath $(or $(HOUSE_PIPELINE_HOME),.house-pipeline))/mlflow
mlflow-ui: $(VENV)/.installed
	mkdir -p $(MLFLOW_STORE)
	@echo "MLflow UI: http://127.0.0.1:5000   (runs can also log to it with MLFLOW_TRACKING_URI=http://127.0.0.1:5000)"
	MLFLOW_DISABLE_TELEMETRY=true $(VENV)/bin/mlflow server --host 127.0.0.1 --port 5000 \
		--backend-store-uri sqlite:///$(MLFLOW_STORE)/mlflow.db --artifacts-destination $(MLFLOW_STORE)/artifacts

# A shared MLflow server for a team: records in SQLite under MLFLOW_STORE (or MLFLOW_BACKEND, e.g. postgresql://...),
# artifacts (reports, plots, the registry's model files) on object storage, proxied by the server so clients need
# no credentials: make mlflow-server ARTIFACTS=s3://BUCKET/mlflow (AWS_* and AWS_ENDPOINT_URL from the environment).
ARTIFACTS ?= $(MLFLOW_STORE)/artifacts
mlflow-server: $(VENV)/.installed
	mkdir -p $(MLFLOW_STORE)
	MLFLOW_DISABLE_TELEMETRY=true MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(VENV)/bin/mlflow server --host 0.0.0.0 \
		--port 5000 --workers 1 --backend-store-uri $${MLFLOW_BACKEND:-sqlite:///$(MLFLOW_STORE)/mlflow.db} \
		--artifacts-destination $(ARTIFACTS)

# A local S3 endpoint for trying object storage on one machine (moto, from the [dev] extra): http://127.0.0.1:5055;
# then export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
# AWS_ENDPOINT_URL=http://127.0.0.1:5055 and create a bucket (python -c "import s3fs; s3fs.S3FileSystem().mkdir('houses')").
s3-local: $(VENV)/.installed
	$(VENV)/bin/moto_server -H 127.0.0.1 -p 5055

# The champion price model as a REST endpoint (MLflow's own server) on http://127.0.0.1:5001/invocations.
serve-model: $(VENV)/.installed
	PATH=$(abspath $(VENV))/bin:$$PATH MLFLOW_DISABLE_TELEMETRY=true \
		MLFLOW_TRACKING_URI=$${MLFLOW_TRACKING_URI:-sqlite:///$(MLFLOW_STORE)/mlflow.db} \
		$(VENV)/bin/mlflow models serve -m models:/house-price@champion --env-manager local \
		--host 127.0.0.1 --port 5001

# Headless Chromium from Debian's packages, for the UI test and README screenshots (needs root and apt).
browser:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# Re-pin requirements.lock from pyproject.toml (all extras, with hashes) with uv, kept in its own
# folder. Existing pins are kept unless a range excludes them; add --upgrade to move them all.
LOCK_TOOL := .lock-tool
lock:
	test -x $(LOCK_TOOL)/bin/uv || (python3 -m venv $(LOCK_TOOL) && $(LOCK_TOOL)/bin/pip install --quiet uv)
	$(LOCK_TOOL)/bin/uv pip compile pyproject.toml --extra dask --extra automl --extra dnn --extra s3 --extra dev \
		--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements.lock

# Break the code on purpose, one rule at a time, and check that the tests notice (tools/prove_checks.py).
prove: $(VENV)/.installed
	$(PY) tools/prove_checks.py
prove-fast: $(VENV)/.installed
	$(PY) tools/prove_checks.py --fast

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check flows tasks tests bench tools

bench: $(VENV)/.installed
	$(PY) bench/bench_preprocess.py

clean:
	rm -rf .cache runs .prefect
