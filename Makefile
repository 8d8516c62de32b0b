# Tocsin developer tasks. `make help` lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_SUBSCRIBERS ?= 20000

.DEFAULT_GOAL := help
.PHONY: help venv demo cluster test test-fast lint bench bench-peers bench-fanout soak clean messages soak-dispatch

help: ## List the developer tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.lock requirements-test-nodeps.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-test-nodeps.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP) ## Create the virtual environment (.venv) from the pinned requirements

demo: $(STAMP) ## Run the platform on SQLite (./var) with simulated providers: http://127.0.0.1:8000
	$(BIN)/tocsin demo --host $(HOST) --port $(PORT) --subscribers $(DEMO_SUBSCRIBERS)

cluster: $(STAMP) ## 2 web + 3 worker processes against PostgreSQL (CLUSTER_DATABASE_URL; README)
	BIN=$(BIN) deploy/cluster.sh

test: $(STAMP) ## Run the whole test suite (PostgreSQL tests need TOCSIN_TEST_DATABASE_URL)
	$(BIN)/python -m pytest -q -rs

test-fast: $(STAMP) ## Tests without browser and slow end-to-end tests
	$(BIN)/python -m pytest -q -m "not browser and not slow"

SOAK_SIZE ?= 20000
soak-dispatch: $(STAMP) ## Dispatch fault tests (SIGKILL, SMSC/SMTP faults, DB cut and restart) at SOAK_SIZE recipients; `make test` runs them at 1,500
	TOCSIN_SOAK_SIZE=$(SOAK_SIZE) $(BIN)/python -m pytest -q -s -rs -m soak tests/test_dispatch_soak.py

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy src/tocsin

# Peers Tocsin did not write (issue 13): the npm `smpp` SMSC (node + npm; installed from
# tests/interop's lock file on first use) and Postfix's smtp-sink (installed here with
# apt-get when missing and run as root; else: `sudo apt-get install postfix`).
# Launch latency and 2 workers / 1 need PostgreSQL: BENCH_DATABASE_URL (a PostGIS database).
BENCH_PEERS_ARGS ?= --sms 20000 --email 20000 --launches 50 --workers-n 20000
bench-peers: $(STAMP) ## SMS/e-mail against npm smpp and Postfix smtp-sink with raw clients, launch p95, 2 workers/1
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "bench-peers needs node and npm: apt-get install nodejs npm"; exit 1; }
	@command -v smtp-sink >/dev/null || [ -x /usr/sbin/smtp-sink ] || { \
	  if [ "$$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix; \
	  else echo "bench-peers needs Postfix's smtp-sink: sudo apt-get install postfix"; exit 1; fi; }
	TOCSIN_BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python benchmarks/bench_peers.py $(BENCH_PEERS_ARGS)

bench: $(STAMP) bench-peers ## Throughput of SMS and e-mail (simulators and independent peers), the CAP feed, the language check
	$(BIN)/python benchmarks/bench_dispatch.py
	$(BIN)/python benchmarks/bench_feed.py
	$(BIN)/python benchmarks/bench_language.py
	$(BIN)/python benchmarks/bench_fanout.py 20000 100000

bench-fanout: $(STAMP) ## National fan-out time and peak RSS (FANOUT_SIZES, default 100k and 1M: minutes)
	$(BIN)/python benchmarks/bench_fanout.py $(or $(FANOUT_SIZES),100000 1000000)

SOAK_ARGS ?= --seconds 300 --per-minute 600 --workers 3
soak: $(STAMP) ## Voice soak: 3 workers, 5 min, never >600 call starts in any 60 s nor more calls than the trunk
	$(BIN)/python benchmarks/soak_voice.py $(SOAK_ARGS)

LOCALES := fr nl de en
LOCALE_DIR := src/tocsin/locale

messages: $(STAMP) ## Extract the interface's messages (pybabel) and update the fr/nl/de/en catalogues
	$(BIN)/pybabel extract --width 100 --no-location --sort-output -F babel.cfg -k _ -k gettext -k translate:2 -k NP_:1c,2 \
		--project tocsin -o $(LOCALE_DIR)/messages.pot .
	for l in $(LOCALES); do \
		if [ -f $(LOCALE_DIR)/$$l/LC_MESSAGES/messages.po ]; then \
			$(BIN)/pybabel update --width 100 --no-fuzzy-matching --ignore-obsolete -i $(LOCALE_DIR)/messages.pot -d $(LOCALE_DIR) -l $$l; \
		else $(BIN)/pybabel init -i $(LOCALE_DIR)/messages.pot -d $(LOCALE_DIR) -l $$l; fi; \
	done

clean: ## Remove the virtual environment and the embedded database
	rm -rf $(VENV) var
