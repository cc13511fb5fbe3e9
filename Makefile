# Two commands for a newcomer:  `make run`  and  `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CONFIG ?= examples/gateway.toml

.PHONY: run test test-fast test-pure check-compiled lint bench acceptance interop-deps clean

# The compiled stages are built by the editable install: every *.pyx, and the
# modules compiled a second time from their pure-Python source (setup.py's
# PY_TWINS, typed by *.pxd). Editing any of them, or setup.py, rebuilds them.
PYX := $(shell find fix_gateway engine session_store drop_copy surveillance \
         -name '*.pyx' -o -name '*.pxd' 2>/dev/null) engine/book.py engine/engine.py

$(STAMP): pyproject.toml setup.py $(PYX)
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

## Start the gateway with the example configuration.
run: $(STAMP)
	$(BIN)/fixgw serve --config $(CONFIG)

## Start the gateway set up for the standard FIX session-layer acceptance scripts.
acceptance: $(STAMP)
	$(BIN)/fixgw serve --config examples/acceptance.toml

## Lint, then run the whole test suite on the compiled build, then the sans-I/O, property and
## differential tests on the pure-Python modules (installs QuickFIX and Mosquitto for
## the tests that use them, where it can).
test: lint check-compiled interop-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider
	$(MAKE) --no-print-directory test-pure

## The unit lane: sans-I/O tests, no sockets or subprocesses, none of the slow ones (the
## lanes are in tests/conftest.py; -m socket, -m process and -m slow select the others),
## the property tests with a tenth of their examples (tests/property_examples.py).
test-fast: $(STAMP)
	FIXGW_FAST_PROPERTIES=1 $(BIN)/python -m pytest -q -p no:cacheprovider -m "unit and not slow"

# The pure-Python twins, which stay the reference implementation and the fallback:
# the engine tests already run on both builds in the main pass (tests/engines.py),
# so this pass covers what the pure codec serves (the sans-I/O session layer and
# the fuzzers above it) and checks that FIXGW_PURE=1 selects every pure module.
PURE_TESTS := tests/test_codec*.py tests/test_engine_compiled.py tests/test_session_*.py \
              tests/test_hostile_fuzz.py tests/test_hostile_numbers.py tests/test_dictionary.py
test-pure: $(STAMP)
	FIXGW_PURE=1 $(BIN)/python -m pytest -q -p no:cacheprovider $(PURE_TESTS)

# The extensions are optional in setup.py (a machine without a C compiler still
# installs); where a compiler exists, a build that produced none is an error.
check-compiled: $(STAMP)
	@if command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1; then \
	  $(BIN)/python -c 'import fix_gateway.codec as c, engine as e, sys; sys.exit(0 if c.COMPILED and e.compiled_engine() else "compiled codec or engine not built (C compiler present): see the pip install -e output, or set FIXGW_PURE=1")'; \
	fi

## ruff, then mypy over the packages (configured in pyproject.toml: strict on the
## engine and the wire and session layer).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/codec_throughput.py

## QuickFIX (interop test) and Mosquitto (MQTT drop-copy tests), from Debian where possible.
interop-deps:
	@sh scripts/ensure-test-deps.sh

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache build
	find fix_gateway engine session_store drop_copy surveillance \
	  \( -name '*.so' -o -name '*.pyd' \) -delete
