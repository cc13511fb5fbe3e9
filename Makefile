# Two commands for a newcomer:  `make run`  and  `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CONFIG ?= examples/gateway.toml

.PHONY: run test lint bench acceptance interop-deps clean compile uncompile

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

## Start the gateway with the example configuration.
run: $(STAMP)
	$(BIN)/fixgw serve --config $(CONFIG)

## Start the gateway set up for the standard FIX session-layer acceptance scripts.
acceptance: $(STAMP)
	$(BIN)/fixgw serve --config examples/acceptance.toml

## Run the whole test suite (installs QuickFIX and Mosquitto for the tests that use them, where it can).
test: $(STAMP) interop-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/codec_throughput.py

## Optional: compile the matching engine and the codec's leaf modules with mypyc, in
## place (needs a C compiler). The pure Python modules stay the fallback: `make uncompile`
## goes back to them. Re-run after editing those files, or the stale compiled modules
## shadow the edits.
COMPILED := engine/book.py engine/engine.py \
            fix_gateway/application/prices.py fix_gateway/utc_time.py
compile: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[compile]'
	$(BIN)/mypyc $(COMPILED)

uncompile:
	rm -f engine/*.so fix_gateway/*.so fix_gateway/application/*.so *__mypyc*.so
	rm -rf build

## QuickFIX (interop test) and Mosquitto (MQTT drop-copy tests), from Debian where possible.
interop-deps:
	@sh scripts/ensure-test-deps.sh

clean: uncompile
	rm -rf $(VENV) var .pytest_cache
