"""`fixgw serve` whose order entry raises on an OrderStatusRequest: a message whose
handling fails, on demand, for the tests of the error path (test_error_path.py).

The engine clock's commits are pushed out of the way (ENGINE_CLOCK_INTERVAL), so
a batch left half written by the error stays so until the process is killed.
Run as `python -m tests.raising_gateway serve --config ...`.
"""

from __future__ import annotations

import sys

from fix_gateway import server
from fix_gateway.application.order_entry import OrderEntry
from fix_gateway.cli import main
from fix_gateway.codec import Message
from fix_gateway.session import Session


def _raising_status(self: OrderEntry, session: Session, msg: Message, now: float) -> None:
    raise RuntimeError("injected: OrderStatusRequest handling failed")


OrderEntry._status = _raising_status  # type: ignore[method-assign]
server.ENGINE_CLOCK_INTERVAL = 1e9

if __name__ == "__main__":
    sys.exit(main())
