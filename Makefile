# The two commands the README gives: `make demo` and `make test`. Both install what is missing first.
# `make bench` (the benchmark, about 20 minutes) does too.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DISTRIBUTED_STAMP := $(VENV)/.installed-distributed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: install install-distributed install-bench lint unit integration e2e test test-distributed demo bench bench-width clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The Celery provider and the PostgreSQL and Redis clients, for the distributed suite only.
install-distributed: $(DISTRIBUTED_STAMP)

$(DISTRIBUTED_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,distributed]'
	touch $(DISTRIBUTED_STAMP)

# The benchmark's own libraries (matplotlib, for the chart), beside the test tools its harness uses.
install-bench: $(BENCH_STAMP)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit

integration: install
	$(BIN)/pytest tests/integration

e2e: install
	$(BIN)/pytest tests/e2e -m "not distributed"

test: lint
	$(BIN)/pytest tests -m "not distributed"

# The end-to-end scenarios on PostgreSQL (127.0.0.1:5432) and the CeleryExecutor with Redis (127.0.0.1:6379).
test-distributed: install-distributed
	$(BIN)/python -m tests.e2e.backend
	$(BIN)/pytest tests/e2e -m distributed

demo: install
	$(BIN)/python -m tests.e2e.demo

# Stock versus ours on two embedded Airflows at Airflow's defaults; writes bench/results.md and .png.
bench: install-bench
	$(BIN)/python -m bench

# The width bench on PostgreSQL (127.0.0.1:5432) and the LocalExecutor: 60 and 300 children on 32 and 4
# slots, and 1/50/200 deferred parents on a real triggerer; about three hours (the plan is printed first).
# Writes its own blocks of bench/results.md. A shorter run: python -m bench --width --counts 60 --slots 32
bench-width: install-bench install-distributed
	$(BIN)/python -m bench --width

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
