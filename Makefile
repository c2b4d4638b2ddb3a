# ivr112: `make run` starts Asterisk, the app and the HTTP side; `make test` runs every test.
# Both install what is missing first (Debian packages, the Python environment, the Asterisk root).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# libatomic1: Playwright's driver (the browser tests) needs libatomic.so.1, which a minimal
# Debian 12 does not have. postgresql-15: the store's tests run on PostgreSQL too, on a
# server they start themselves. nftables: `nft -c` checks the ruleset `ivr112 firewall` makes.
# kamailio, keepalived: the cluster's SIP edges and their floating address (every module
# edge.cfg loads is in kamailio's base package).
APT_PACKAGES := debootstrap sip-tester nftables espeak-ng sox ffmpeg graphviz iproute2 chromium libatomic1 postgresql-15 kamailio keepalived
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-pg deps venv unit integration lint asterisk-root bench shift chaos clean cluster cluster-chaos jssip

run: deps venv
	$(BIN)/ivr112 prompts build
	$(BIN)/ivr112 run --with-asterisk

# Test files run side by side (pytest-xdist), each worker with its own Asterisk instance
# on its own free ports: the real-stack tests mostly wait on calls in real time.
TEST_WORKERS ?= 3

# Lint first: a type or style error fails in seconds, before the real stack starts.
# The cluster suite's short form (tests/cluster, docs/cluster.md) runs in a pytest of its own,
# beside the others: one cluster for all its files (xdist would start one per worker) on a
# private /24 in network namespaces, so it shares nothing with the loopback stacks; both
# mostly wait on calls in real time, so side by side they take about as long as the longer
# one. Its output is printed after the others'. As a non-root user its tests are skipped,
# saying why. Both runs always run; `make test` fails if either failed.
CLUSTER_TEST_LOG := .cache/test-cluster.log
test: lint deps venv asterisk-root
	$(BIN)/ivr112 prompts build >/dev/null
	@mkdir -p .cache; status=0; \
	IVR112_CLUSTER=1 $(BIN)/python -m pytest -q -rs -p no:xdist tests/cluster >$(CLUSTER_TEST_LOG) 2>&1 & cluster=$$!; \
	trap 'kill $$cluster 2>/dev/null' INT TERM; \
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests --ignore=tests/cluster || status=$$?; \
	wait $$cluster || status=$$?; \
	echo "== tests/cluster, run beside the others ($(CLUSTER_TEST_LOG)):"; cat $(CLUSTER_TEST_LOG); \
	exit $$status

# The whole integration suite with every stack's record in PostgreSQL: each worker starts its
# own server (Debian's postgresql-15, initdb in a temporary folder, a free loopback port) and
# each stack gets a fresh database on it (tests/pg.py).
test-pg: deps venv asterisk-root
	$(BIN)/ivr112 prompts build >/dev/null
	IVR112_TEST_STORE=postgresql $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests/integration

unit: venv
	$(BIN)/python -m pytest -q tests/unit

integration: deps venv asterisk-root
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests/integration

# The benchmark (issue 7): SIPp against the real Asterisk, plain dialplan (A) beside the app (B);
# as root with Kamailio and PostgreSQL 15, also one call node vs two behind the edge (issue 16);
# prints its table, writes bench/out/*.csv and a PNG. Asserts nothing: run it on demand.
bench: deps venv asterisk-root
	$(BIN)/pip install -q -e '.[test,bench]'
	$(BIN)/ivr112 prompts build >/dev/null
	$(BIN)/python -m bench $(BENCH_ARGS)

# The shift simulator (issue 13): an hour of Kotim's callers against the real stack, with
# operators_first on beside off; prints time to a person, writes bench/out/shift-*.csv and a PNG.
shift: deps venv asterisk-root
	$(BIN)/pip install -q -e '.[test,bench]'
	$(BIN)/ivr112 prompts build >/dev/null
	$(BIN)/python -m bench.shift $(SHIFT_ARGS)

# The fault suite in its long form (make test runs the short form of the same tests).
chaos: deps venv asterisk-root
	$(BIN)/ivr112 prompts build >/dev/null
	IVR112_CHAOS=long $(BIN)/python -m pytest -q -s tests/chaos

# The browser phone's SIP stack: JsSIP from the npm registry, pinned by ari_app/web/js's
# package-lock.json, bundled into ari_app/web/static/jssip.min.js (committed: the console
# loads nothing from outside, and a machine without npm still serves it). Run it after a bump.
jssip:
	cd ari_app/web/js && npm ci --no-audit --no-fund && npm run build

lint: venv
	$(BIN)/ruff check ivr ari_app tests bench
	$(BIN)/mypy

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

asterisk-root: deps venv
	$(BIN)/python -c 'from ivr.settings import load_settings; from ari_app.asterisk.provision import ensure_root; ensure_root(load_settings().root_path)'

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# The cluster (issue 16, docs/cluster.md): Kamailio edge, call nodes and PostgreSQL, each in
# its own network namespace on a private bridge. Needs root. `make cluster` leaves it up
# (`ivr112 cluster down` stops it); `make cluster-chaos` runs the failover suite's long form
# on a cluster of its own (`make test` runs its short form; each run claims a free
# 10.211.N.0/24, so runs at once do not collide).
CLUSTER_PACKAGES := kamailio keepalived postgresql-15 sip-tester iproute2
cluster: deps venv asterisk-root
	@missing=""; for p in $(CLUSTER_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; fi
	$(BIN)/ivr112 prompts build >/dev/null
	$(SUDO) $(BIN)/ivr112 cluster up $(CLUSTER_ARGS)

cluster-chaos: deps venv asterisk-root
	$(BIN)/ivr112 prompts build >/dev/null
	IVR112_CLUSTER=1 IVR112_CHAOS=long $(SUDO) $(BIN)/python -m pytest -q -s -p no:xdist tests/cluster
