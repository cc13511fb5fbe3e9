"""What metrics and health read of the running venue, as a Protocol.

The gateway (fix_gateway/server.py) satisfies it; the metrics package depends on
this description, not on the server module, so the two do not import each
other.
"""

from __future__ import annotations

from typing import Protocol

from fix_gateway.application.order_entry import OrderEntry
from fix_gateway.dictionary import Dictionary
from fix_gateway.session import Session
from fix_gateway.session.counters import ConnectionCounters


class GatewayView(Protocol):
    @property
    def dictionary(self) -> Dictionary: ...

    @property
    def sessions(self) -> list[Session]: ...

    @property
    def connection_counters(self) -> ConnectionCounters: ...

    @property
    def order_entry(self) -> OrderEntry | None: ...

    @property
    def loop_stalls(self) -> int: ...

    @property
    def listening(self) -> bool: ...

    @property
    def failed_stores(self) -> set[str]: ...

    @property
    def fatal_reason(self) -> str | None: ...
