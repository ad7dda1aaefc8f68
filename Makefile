# The two commands the README gives: `make demo` and `make test`. Both install what is missing first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DISTRIBUTED_STAMP := $(VENV)/.installed-distributed

.PHONY: install install-distributed lint unit integration e2e test test-distributed demo clean

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

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
