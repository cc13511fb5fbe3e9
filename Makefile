# Two commands for a newcomer:  `make run`  and  `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CONFIG ?= examples/gateway.toml

.PHONY: run test lint bench acceptance interop-deps clean

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

## QuickFIX (interop test) and Mosquitto (MQTT drop-copy tests), from Debian where possible.
interop-deps:
	@sh scripts/ensure-test-deps.sh

clean:
	rm -rf $(VENV) var .pytest_cache
