"""Shared fixtures.

`gateway`: an in-process gateway on loopback, started before the test and stopped
after it. A module that uses it says which gateway with a `gateway_settings` fixture
(tests/gateway_settings.py has the factories); a module that needs another kind of
gateway (a subprocess, one per module) defines its own `gateway`, which wins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fix_gateway.config import GatewaySettings
from fix_gateway.server import Gateway


@pytest.fixture
async def gateway(gateway_settings: GatewaySettings) -> AsyncIterator[Gateway]:
    gw = Gateway(gateway_settings)
    await gw.start()
    yield gw
    await gw.stop(drain_timeout=0.5)

