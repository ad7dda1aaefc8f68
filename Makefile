# The two commands the README gives: `make demo` and `make test`. Both install what is missing first.
# `make bench` (the benchmark, about 20 minutes) does too. Test, benchmark and docs tools come from the
# dependency groups of pyproject.toml (`pip install --group`, pip 25.1 or later), never from the
# package's published metadata.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DISTRIBUTED_STAMP := $(VENV)/.installed-distributed
BENCH_STAMP := $(VENV)/.installed-bench
DOCS_STAMP := $(VENV)/.installed-docs

# The oldest versions pyproject.toml accepts, in a venv of its own: the apache-airflow release, the Task
# SDK its apache-airflow package pins (==), the standard provider of that release, and the oldest
# common-compat provider that standard provider accepts. `make test` covers the newest.
COMPAT_VENV ?= .venv-compat
COMPAT_BIN := $(COMPAT_VENV)/bin
COMPAT_AIRFLOW ?= 3.3.0
COMPAT_TASK_SDK ?= 1.3.0
COMPAT_STANDARD ?= 1.15.0
COMPAT_COMMON_COMPAT ?= 1.14.1
COMPAT_STAMP := $(COMPAT_VENV)/.installed-$(COMPAT_AIRFLOW)-$(COMPAT_TASK_SDK)-$(COMPAT_STANDARD)-$(COMPAT_COMMON_COMPAT)

.PHONY: install install-distributed install-bench install-docs install-browser lint unit integration e2e test \
	test-distributed docs compat package-test demo bench bench-width bench-hour clean

install: $(STAMP)

# The version lives in providers/standard_ext/__init__.py (hatch reads it from there): a new one
# reinstalls, so the installed metadata Airflow reads says the same.
$(STAMP): pyproject.toml providers/standard_ext/__init__.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=25.1'
	$(BIN)/python -m pip install --quiet -e . --group test
	touch $(STAMP)

# The Celery provider and the PostgreSQL and Redis clients, for the distributed suite only.
install-distributed: $(DISTRIBUTED_STAMP)

$(DISTRIBUTED_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e . --group test --group distributed
	touch $(DISTRIBUTED_STAMP)

# The benchmark's own libraries (matplotlib, for the chart), beside the test tools its harness uses.
install-bench: $(BENCH_STAMP)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e . --group test --group bench
	touch $(BENCH_STAMP)

# Sphinx, MyST and the furo theme, for the documentation site.
install-docs: $(DOCS_STAMP)

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e . --group docs
	touch $(DOCS_STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit

integration: install
	$(BIN)/pytest tests/integration

e2e: install install-browser
	$(BIN)/pytest tests/e2e -m "not distributed"

test: lint install-browser
	$(BIN)/pytest tests -m "not distributed and not package"

# Debian's Chromium and ChromeDriver, for the browser test of the "Child runs" tab
# (tests/e2e/test_child_runs_tab.py); installed with apt-get, as root (CI runs as root), or with sudo.
install-browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium chromium-driver

# The end-to-end scenarios on PostgreSQL (127.0.0.1:5432) and the CeleryExecutor with Redis (127.0.0.1:6379).
test-distributed: install-distributed
	$(BIN)/python -m tests.e2e.backend
	$(BIN)/pytest tests/e2e -m distributed

# The documentation site in docs/_build/html; every warning, broken cross-reference included, fails it.
docs: install-docs
	$(BIN)/sphinx-build -W --keep-going -n -b html docs docs/_build/html

# The unit tests and the dag.test() layer on those oldest versions. pip check fails first if
# pyproject.toml no longer accepts them (a floor raised without moving COMPAT_* along).
compat: $(COMPAT_STAMP)
	$(COMPAT_BIN)/python -m pip check
	$(COMPAT_BIN)/pytest tests/unit tests/integration

# The pinned versions and the test group in one resolve; then the project without its dependencies, so
# that pip cannot replace a pinned version to satisfy it.
$(COMPAT_STAMP): pyproject.toml
	rm -rf $(COMPAT_VENV)
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_BIN)/python -m pip install --quiet --upgrade 'pip>=25.1'
	$(COMPAT_BIN)/python -m pip install --quiet --group test \
		apache-airflow==$(COMPAT_AIRFLOW) apache-airflow-core==$(COMPAT_AIRFLOW) \
		apache-airflow-task-sdk==$(COMPAT_TASK_SDK) apache-airflow-providers-standard==$(COMPAT_STANDARD) \
		apache-airflow-providers-common-compat==$(COMPAT_COMMON_COMPAT)
	$(COMPAT_BIN)/python -m pip install --quiet --no-deps -e .
	touch $(COMPAT_STAMP)

# The wheel as a user gets it: built, installed with only its own dependencies into a fresh venv, and
# seen by the Airflow CLI there (tests/package).
package-test: install
	$(BIN)/pytest tests/package

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

# One wait per parent variant on a 60-minute child, on PostgreSQL: every wait's requests counted, the
# triggerer's included. About 65 minutes; writes its own blocks of bench/results.md.
bench-hour: install-bench install-distributed
	$(BIN)/python -m bench --hour

clean:
	rm -rf $(VENV) $(COMPAT_VENV) .mypy_cache .ruff_cache .pytest_cache docs/_build dist
