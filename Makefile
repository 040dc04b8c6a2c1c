# sparkchain — every entry point installs what it needs first (fresh machine, clean clone),
# and installs exactly the versions in requirements.lock (`make lock` refreshes it on purpose).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
LOCK := requirements.lock
SEEDS ?= 20000
START ?= 0
REPLAY ?=
DURATION ?= 300
SEED ?=
# the explorer's browser tests drive Debian's chromium through Playwright (never a browser
# that Playwright downloads); `make unit` installs it with apt-get when it is missing
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install test lint unit run proto bench attack sim chaos lock docs vectors clean browser \
	explorer-vendor npm fuzz fuzz-seeds profile

$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ required"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	@touch $(STAMP)

install: $(STAMP)

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "no $(CHROMIUM) and no apt-get: install chromium"; exit 1; }
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

browser: $(CHROMIUM)

# the explorer's vendored crypto is built (and checked fresh by a test) with `npm ci`
npm:
	@command -v npm >/dev/null || { command -v apt-get >/dev/null \
	    || { echo "no npm and no apt-get: install Node.js and npm"; exit 1; }; \
	    $(SUDO) apt-get update -qq && \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; }

# Resolve pyproject.toml's ranges anew (runtime + dev + the build backend) and pin them with
# hashes. uv resolves; pip installs, so a fresh machine needs nothing but Python.
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet 'uv>=0.9,<1'
	$(BIN)/uv pip compile pyproject.toml build-requirements.in --extra dev --generate-hashes \
	    --python-version 3.11 --no-header --quiet -o $(LOCK)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p sparkchain

unit: $(STAMP) $(CHROMIUM) npm
	$(BIN)/pytest -p no:cacheprovider; rc=$$?; [ $$rc -eq 5 ] && exit 0; exit $$rc

test: lint unit

run: $(STAMP)
	$(BIN)/spark node start

# Modules and their typed stubs, by the one command that tests/test_proto_fresh.py also runs.
proto: $(STAMP)
	$(BIN)/python -m sparkchain.proto.generate

# docs/cli.md from the CLI's argument parser (tests/test_docs.py fails when it is stale).
docs: $(STAMP)
	$(BIN)/python -m sparkchain.cli.docs_gen --output docs/cli.md

# tests/vectors/: the proof-bundle test vectors every verifier is checked against
# (deterministic; tests/test_vectors.py fails when they are stale)
vectors: $(STAMP)
	$(BIN)/python -m tests.helpers.vectors --output tests/vectors

# node/explorer/vendor/: the explorer's fallback crypto (the noble packages pinned in
# node/explorer_deps/package-lock.json), copied unmodified after `npm ci`; needs npm
# (tests/test_explorer_vendor.py fails when the committed files are stale)
explorer-vendor: $(STAMP) npm
	$(BIN)/python -m sparkchain.node.explorer_vendor --output node/explorer/vendor

bench: $(STAMP)
	$(BIN)/python -m bench

# make profile [PROFILE_SIZES=10000,1000000]: py-spy flame graphs of the ledger bench's
# phases, with their top functions, in bench/profiles/ (issue 15)
PROFILE_SIZES ?= 10000,1000000
profile: $(STAMP)
	$(BIN)/python -m bench.ledger_profile --sizes $(PROFILE_SIZES) --out bench/profiles

# issue 10's attacks at the outside review's sizes against a fresh 4+1 testnet (a
# measurement, like bench); exits 1 when an attack stops the chain or breaks its bound
attack: $(STAMP)
	$(BIN)/python -m bench.attack

# make sim [SEEDS=N] [START=S]: random plans for seeds S..S+N-1; make sim REPLAY='<plan json>'
# runs one plan with a trace (the replay line a failure prints).
sim: $(STAMP)
ifneq ($(strip $(REPLAY)),)
	$(BIN)/python -m sparkchain.consensus.sim.cli --trace --replay '$(REPLAY)'
else
	$(BIN)/python -m sparkchain.consensus.sim.cli --seeds $(SEEDS) --start $(START)
endif

# issue 14 part 4: every decoder of outside bytes under atheris (hypothesis where atheris
# does not import), from the committed seeds in fuzz/corpus/; exits 1 on a crash, whose input
# it writes to fuzz/crashes/. make fuzz [FUZZ_SECONDS=600] [FUZZ_TARGETS=tx_body,bundle]
# [FUZZ_ENGINE=hypothesis]; FUZZ_SECONDS is the total wall-clock budget (fuzz/__main__.py)
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?=
FUZZ_ENGINE ?=
fuzz: $(STAMP)
	FUZZ_SECONDS='$(FUZZ_SECONDS)' FUZZ_TARGETS='$(FUZZ_TARGETS)' FUZZ_ENGINE='$(FUZZ_ENGINE)' \
	    $(BIN)/python -m fuzz

# fuzz/corpus/: the seed inputs of every fuzz target (deterministic)
fuzz-seeds: $(STAMP)
	$(BIN)/python -m fuzz.seeds --output fuzz/corpus

# make chaos [DURATION=s] [SEED=n]: faults on a real 4+1 testnet under a recording workload,
# then the checker (tests/chaos/); ends "operations: N, acknowledged: N, faults: N,
# violations: N" and exits 0 only when violations is 0. Needs root for the full-disk tmpfs.
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos --duration $(DURATION) $(if $(strip $(SEED)),--seed $(SEED))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
