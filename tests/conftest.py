"""Shared fixtures.

`gateway`: an in-process gateway on loopback, started before the test and stopped
after it. A module that uses it says which gateway with a `gateway_settings` fixture
(tests/gateway_settings.py has the factories); a module that needs another kind of
gateway (a subprocess, one per module) defines its own `gateway`, which wins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import hypothesis
import pytest

from fix_gateway.config import GatewaySettings
from fix_gateway.server import Gateway
from tests.property_examples import FAST, FAST_MINIMUM

if FAST:  # the fast lane: property tests that name no count try this many
    hypothesis.settings.register_profile("fast", max_examples=FAST_MINIMUM)
    hypothesis.settings.load_profile("fast")


@pytest.fixture
async def gateway(gateway_settings: GatewaySettings) -> AsyncIterator[Gateway]:
    gw = Gateway(gateway_settings)
    await gw.start()
    yield gw
    await gw.stop(drain_timeout=0.5)


# --- lanes: what a test costs ------------------------------------------------------------
#
#   unit     sans-I/O: no sockets, no subprocesses (files under tmp_path are fine)
#   socket   loopback sockets in this process (an in-process gateway, TcpPeer, HTTP)
#   process  subprocesses: a gateway process, the fixgw CLI, QuickFIX, mosquitto,
#            a surveillance worker process
#   slow     besides its lane, a test that takes more than about 5 s
#
# Each test module has its lane here; a test that needs more or less than the rest of
# its module carries its own lane marker, which wins. `make test-fast` runs
# -m "unit and not slow"; `make test` runs every lane.

LANES = ("unit", "socket", "process")

MODULE_LANES = {
    "test_auth": "unit",
    "test_codec": "unit",
    "test_codec_build": "unit",
    "test_codec_compiled": "unit",
    "test_conformance": "process",
    "test_crash_restart": "process",
    "test_crash_storage": "process",
    "test_dictionary": "unit",
    "test_docs": "unit",
    "test_drop_copy": "socket",
    "test_drop_copy_mqtt": "process",
    "test_engine": "unit",
    "test_engine_compiled": "unit",
    "test_gc_policy": "unit",
    "test_engine_history": "process",
    "test_engine_min_qty_after_replace": "unit",
    "test_engine_reference": "unit",
    "test_engine_snapshot": "unit",
    "test_error_path": "process",
    "test_event_stream": "unit",
    "test_file_store": "unit",
    "test_hostile_fuzz": "unit",
    "test_hostile_numbers": "unit",
    "test_hostile_resend": "socket",
    "test_hostile_slow_consumer": "socket",
    "test_hostile_socket": "process",
    "test_journal": "unit",
    "test_logging": "socket",
    "test_metrics": "socket",
    "test_order_entry_fuzz": "unit",
    "test_order_entry_tcp": "socket",
    "test_order_recovery": "unit",
    "test_process": "process",
    "test_quickfix_interop": "process",
    "test_recovery": "process",
    "test_replay": "process",
    "test_secrets_at_rest": "process",
    "test_server_tcp": "socket",
    "test_session_bounds": "unit",
    "test_session_engines": "socket",
    "test_session_logon": "unit",
    "test_session_rejects": "unit",
    "test_session_sequencing": "unit",
    "test_shell_limits": "socket",
    "test_stall_watch": "process",
    "test_surveillance": "unit",
    "test_surveillance_gateway": "process",
    "test_throttle": "unit",
    "test_tls": "socket",
}


# First, so that -m sees the lanes added here.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unlisted: set[str] = set()
    for item in items:
        own = [lane for lane in LANES if item.get_closest_marker(lane)]
        if len(own) > 1:
            raise pytest.UsageError(f"{item.nodeid}: one lane, not {' and '.join(own)}")
        module = item.module.__name__.rpartition(".")[2] if item.module else ""
        lane = own[0] if own else MODULE_LANES.get(module)
        if lane is None:
            unlisted.add(module)
            continue
        if lane == "unit" and "gateway" in getattr(item, "fixturenames", ()):
            raise pytest.UsageError(f"{item.nodeid} uses a gateway: mark it socket or process")
        if not own:
            item.add_marker(lane)
    if unlisted:
        raise pytest.UsageError(
            f"tests/conftest.py: give {', '.join(sorted(unlisted))} a lane in MODULE_LANES")
