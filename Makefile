# RedisGate: `make run` starts the whole system locally, `make test` runs every test.
# Both install what they need first (Python deps into .venv, redis-server and PostgreSQL).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
BENCH_ARGS ?=
FUZZ_ARGS ?=

.PHONY: install run test lint bench bench-attacks fuzz clean system-deps deploy-test

install: system-deps $(STAMP)

# chromium (Debian's) is the browser the web console's tests (tests/browser/) drive with
# Playwright, installed with the rest (its own call: if it cannot be had, the rest still is).
system-deps:
	@scripts/install-system-deps.sh
	@scripts/install-system-deps.sh --optional chromium

$(STAMP): pyproject.toml
	@if ! $(PYTHON) -m venv --help >/dev/null 2>&1 || ! $(PYTHON) -c 'import ensurepip' 2>/dev/null; then \
	  if [ "$$(id -u)" -eq 0 ]; then apt-get update -q && apt-get install -y -q python3-venv; \
	  else echo "Python's venv module is missing: sudo apt-get install python3-venv" >&2; exit 1; fi; \
	fi
	@echo "==> creating the virtualenv in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	@echo "==> installing Python packages into $(VENV) (about half a minute the first time)"
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)
	@echo "==> Python packages installed"

run: install
	$(BIN)/redisgate dev

# promtool (Debian's prometheus package) checks deploy/prometheus/alerts.yml; node and npm
# (Debian's nodejs and npm) run the official Upstash SDKs against the HTTP command API (the
# SDKs themselves are pinned in tests/node/package-lock.json and installed by the tests). Their
# tests fail, saying so, where these cannot be installed. Separate calls: one failing to
# install leaves the others' packages be.
test: install
	@scripts/install-system-deps.sh --optional prometheus
	@scripts/install-system-deps.sh --optional nodejs npm
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check redisgate tests benchmarks scripts deploy
	$(BIN)/ruff format --check redisgate tests benchmarks scripts deploy
	$(BIN)/mypy redisgate

# Direct Redis vs the gateway vs twemproxy, and the gateway's HTTP command API under wrk
# (benchmarks/README.md); about 5-7 minutes on 2 cores. Smoke test: make bench
# BENCH_ARGS="--quick --rounds 1". twemproxy and wrk are installed when possible (two calls:
# one failing to install leaves the other be).
bench: install
	@scripts/install-system-deps.sh --optional nutcracker
	@scripts/install-system-deps.sh --optional wrk
	$(BIN)/python benchmarks/compare.py $(BENCH_ARGS)

# Hostile tenants against a real stack: another tenant's PING p50/p99 during each attack
# (benchmarks/README.md); about a minute. Shorter: make bench-attacks BENCH_ARGS="--seconds 2".
bench-attacks: install
	$(BIN)/python benchmarks/attacks.py $(BENCH_ARGS)

# The framers' fuzz targets (tests/fuzz/): a million inputs in all, about 7 minutes on 2 cores;
# prints inputs per target and the time. `make test` runs the same targets briefly.
# Coverage-guided instead: make fuzz FUZZ_ARGS="--engine atheris --inputs 100000".
fuzz: install
	@if echo "$(FUZZ_ARGS)" | grep -q atheris; then $(BIN)/python -m pip install -q -e '.[test,fuzz]'; fi
	$(BIN)/python -m tests.fuzz.run $(FUZZ_ARGS)

# The Compose stack of deploy/ on this machine, for real (as root: installs docker.io and
# docker-compose, starts dockerd, builds the images; docs/deploy.md, "The local proof").
deploy-test: install
	scripts/deploy-test.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .fuzz-artifacts tests/node/node_modules
