# voicebatch: the two commands are `make demo` and `make test`; both work on a fresh
# machine (they create .venv and install everything pinned in pyproject.toml, with the
# full transitive lock in constraints.txt).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_VOICES := include/voices/.built

.PHONY: install system-deps demo check-inputs airflow env test test-each compose-test mutate lint format clean gpu-wheels gpu-check

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "voicebatch needs Python 3.11 (set PYTHON=...)"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

# Demo recordings are built from real speech the f5-tts package ships (not committed).
$(DEMO_VOICES): $(STAMP) include/build_demo_voices.py $(wildcard include/transcripts/*)
	$(BIN)/python include/build_demo_voices.py --out include/voices
	touch $@

# The whole pipeline once with Airflow (dags test) on the demo inputs; see deploy/demo.py.
demo: check-inputs
	$(BIN)/python deploy/demo.py

check-inputs: $(DEMO_VOICES)
	@echo "== voices (include/voices): reference clip chosen for each =="
	$(BIN)/voicebatch voices check include/voices
	@echo
	@echo "== scripts (include/scripts): checked against the voices, split into chunks =="
	$(BIN)/voicebatch scripts check include/scripts --voices include/voices

# Airflow's UI and scheduler with this project's DAGs on http://127.0.0.1:$(PORT) (login: admin,
# password in airflow_home/simple_auth_manager_passwords.json.generated). `make airflow PORT=8090`:
# the API server and the execution API the tasks call both follow the port.
# Offline, the default model falls back to the tiny random one, announced (deploy/local_model.py).
PORT ?= 8080
AIRFLOW_HOME_DIR ?= $(CURDIR)/airflow_home
AIRFLOW_ENV := $(BIN)/python deploy/airflow_env.py --home $(AIRFLOW_HOME_DIR)
airflow: $(DEMO_VOICES)
	$(AIRFLOW_ENV) -- bash deploy/airflow-init.sh
	$(AIRFLOW_ENV) --local-model --set AIRFLOW__API__HOST=127.0.0.1 --set AIRFLOW__API__PORT=$(PORT) \
	  --set AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$(PORT)/execution/ -- $(BIN)/airflow standalone

# docker compose's .env: .env.example with every secret generated (deploy/make_env.py; standard
# library only, so it runs on a Docker host without .venv). Never overwrites an existing .env.
env:
	$(PYTHON) deploy/make_env.py

# Debian packages the tests use: Chromium for the browser tests (Playwright drives it; it never
# downloads a browser), Redis and PostgreSQL for the Celery test, docker-compose to validate
# docker-compose.yaml (its `config` needs no Docker engine), espeak-ng to speak known sentences
# for the verification tests (real speech, made offline), epubcheck to judge the read-along EPUB 3
# books (Java; /usr/share/java/epubcheck.jar).
SYSTEM_PACKAGES := chromium chromium-driver redis-server postgresql docker-compose espeak-ng epubcheck
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium chromium-driver"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng"; \
	test -f /usr/share/java/epubcheck.jar || missing="$$missing epubcheck"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The suite on parallel workers, one test file per worker at a time, the slowest files first
# (tests/conftest.py). `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= auto
PYTEST_PARALLEL := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)
test: $(STAMP) system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile tests/compose/standins/*/Dockerfile
	$(BIN)/python -m pytest $(PYTEST_PARALLEL)

# Each test file in a pytest process of its own: no file relies on another's fixtures or outputs.
test-each: $(STAMP) system-deps
	@failed=""; for f in tests/test_*.py; do \
	  echo "== $$f"; $(BIN)/python -m pytest -q -p no:randomly "$$f" || failed="$$failed $$f"; \
	done; if [ -n "$$failed" ]; then echo "failed alone:$$failed"; exit 1; fi

# The compose stack for real (docs/deploy/compose-test.md): installs docker.io and starts dockerd when
# needed (stopping only what it started), builds the images from the Dockerfile on stand-in bases,
# runs voice_batch and the fault drills in containers, then `down -v`. Needs root and about 25 GB
# of disk; not part of `make test` (which stays free of Docker). Its last line gives the figures.
compose-test: $(STAMP)
	bash tests/compose/run.sh

# Mutation testing of the core modules ([tool.mutmut] in pyproject.toml); slow, so not in CI.
# Survivors and the decision about each: tests/MUTATION.md.
# One moto server for all of mutmut's runs (each would otherwise start its own), stopped by PID.
mutate: $(STAMP)
	@port=$$($(BIN)/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	$(BIN)/python -m moto.server -H 127.0.0.1 -p $$port >/dev/null 2>&1 & moto=$$!; \
	trap 'kill $$moto' EXIT; \
	VOICEBATCH_TEST_S3_ENDPOINT=http://127.0.0.1:$$port $(BIN)/mutmut run --max-children $(or $(JOBS),2); \
	$(BIN)/mutmut results

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile tests/compose/standins/*/Dockerfile

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The one-call GPU check (benchmarks/gpu/README.md): wheels for the GPU machine, made here.
gpu-wheels:
	PYTHON=$(PYTHON) bash benchmarks/gpu/prepare_wheels.sh

# On a machine with a CUDA GPU and torch 2.11 (Python 3.12 wheels: see gpu-wheels).
gpu-check:
	bash benchmarks/gpu/run.sh

clean:
	rm -rf $(VENV) include/voices airflow_home output .pytest_cache .ruff_cache .hypothesis mutants
