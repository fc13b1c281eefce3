# Assay: `make run` starts everything on the embedded defaults, `make test` runs the test suite in its two tiers (the
# fault suite bounded), `make test-fast` the fast tier alone, `make chaos` the fault suite at full scale.
PYTHON ?= python3
# Python writes its bytecode caches (__pycache__, ignored by git) even where the environment says not to: the tests
# start hundreds of Python processes of Assay's and its tools', and each would otherwise compile every module it
# imports again (half a CPU-second for a service's own code).
unexport PYTHONDONTWRITEBYTECODE
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_TOOLS := services/analyzers/static/node
# wapiti, the dynamic analyzer's established scanner, in a virtualenv of its own: its exact pins (httpx, SQLAlchemy,
# mitmproxy …) would clash with Assay's. services/analyzers/dynamic/scanner.py finds it at <venv>/scanner.
SCANNER := $(VENV)/scanner
WAPITI := wapiti3==3.2.3
CONTRACT_CHECK := tests/contracts

.PHONY: install sandbox run test test-fast chaos lint bench audit clean

install: $(STAMP)

# Reinstall when the dependencies change; eslint and the AsyncAPI parser (which checks docs/contracts) are installed
# project-locally when Node.js is present (without it eslint is reported as skipped and that test is skipped).
$(STAMP): pyproject.toml $(wildcard $(NODE_TOOLS)/package*.json) $(wildcard $(CONTRACT_CHECK)/package*.json)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	if command -v npm >/dev/null 2>&1 && [ -f $(NODE_TOOLS)/package.json ]; then \
		npm ci --silent --no-audit --no-fund --prefix $(NODE_TOOLS); \
		npm ci --silent --no-audit --no-fund --prefix $(CONTRACT_CHECK); \
	else echo "npm not found: eslint will be reported as skipped"; fi
	test -x $(SCANNER)/bin/wapiti || ($(PYTHON) -m venv $(SCANNER) && \
		$(SCANNER)/bin/pip install --quiet --disable-pip-version-check "$(WAPITI)")
	touch $(STAMP)

# bubblewrap confines the apps Assay runs (dynamic, performance, comprehensive analyses); Debian's package.
# bubblewrap, and the servers apps may need started beside them (services/orchestrator/apps/services_deps.py;
# without them such an app runs without its database, and app.json says why).
sandbox:
	command -v bwrap >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y bubblewrap)
	command -v redis-server >/dev/null 2>&1 && command -v mariadbd >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y --no-install-recommends postgresql redis-server mariadb-server) \
		|| echo "could not install postgresql, redis-server, mariadb-server: apps that need them run without"

run: install
	$(VENV)/bin/assay up

# The lint runs first, so a type error fails the tests (and CI) before any test starts. Then the two tiers, each on
# pytest-xdist workers (tests/support/tiers.py says which test is which): the fast tier (services in-process), then
# the stack tier (marker `stack`: processes, the CLI, the fault suite on both databases, clusters, Chromium, bwrap).
# loadgroup keeps the tests that share a module's stack on one worker, so it is started once; each tier's output
# ends with its slowest ten tests.
# Both tiers wait more than they compute (nats-server, tools' subprocesses, timers, restarts), so each runs more
# workers than this 2-core machine has cores: the fast tier took 7:05 on 2 workers with the machine idle 378 core-s
# of it, 5:18 on 4 with 125 idle; the stack tier 11:10 on 2, 6:53 on 4 with the cores busy 716 of 827 core-s (more
# would only queue).
TEST_WORKERS ?= 4
STACK_WORKERS ?= 4
PYTEST_TIERS := $(VENV)/bin/pytest --dist loadgroup --durations=10
test: lint
	$(PYTEST_TIERS) -n $(TEST_WORKERS) -m "not stack"
	$(PYTEST_TIERS) -n $(STACK_WORKERS) -m stack

test-fast: install
	$(PYTEST_TIERS) -n $(TEST_WORKERS) -m "not stack"

# The fault suite (tests/test_faults.py, marker `chaos`) at full scale: 500 tasks per scenario and a 30 s analyzer
# outage, on SQLite and PostgreSQL, with the crash loop (`make test` runs it bounded, on a 4 s ack wait); its table
# (submitted / terminal / lost / duplicated / DB≢files) ends the output.
chaos: install
	$(PYTEST_TIERS) -n $(STACK_WORKERS) -m chaos --fault-tasks 500 --fault-outage-s 30 --fault-ack-wait-s 6 \
		--fault-databases SQLite,PostgreSQL --timeout 1800

lint: install
	$(VENV)/bin/ruff check shared services tests benchmarks maintenance
	$(VENV)/bin/ruff format --check shared services tests benchmarks maintenance
	$(VENV)/bin/mypy
	$(PY) -m shared.wire.contracts --check
	$(PY) -m shared.operations.config --check

# The pipeline benchmark's Celery + Redis baseline lives in the `bench` extra, not in the services' dependencies.
# Parts on their own: `make bench BENCH_ARGS="pipeline --parts replicas --tasks 500"` (see docs/performance.md).
BENCH_ARGS ?=
bench: install
	$(PY) -m pip install --quiet -e ".[test,bench]"
	$(PY) -m benchmarks $(BENCH_ARGS)

# Known vulnerabilities of Assay's own dependencies: pip-audit of .venv, npm audit of the Node.js tool folders (against
# ASSAY_NPM_REGISTRY). Exit 0 clean, 1 vulnerable, 2 a part could not be audited (no advisory data reachable).
audit: install
	$(PY) -m maintenance.dependency_audit

clean:
	rm -rf $(VENV) var .pytest_cache
