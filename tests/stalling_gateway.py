"""`fixgw serve` whose OrderStatusRequest handling holds the event loop for
STALL_HOLD seconds first (`hold_the_loop`), busy running Python code (frames come
and go all the time, as in a long computation): a stall on demand, for the stall
watch tests (test_stall_watch.py). Run as
`python -m tests.stalling_gateway serve --config ...`.
"""

from __future__ import annotations

import sys
import time

from fix_gateway.application.order_entry import OrderEntry
from fix_gateway.cli import main
from fix_gateway.codec import Message
from fix_gateway.session import Session

STALL_HOLD = 0.6  # seconds; well past the tests' stall_seconds
_status = OrderEntry._status


def _churn(depth: int) -> int:
    return depth if depth == 0 else _churn(depth - 1) + 1


def hold_the_loop(self: OrderEntry, session: Session, msg: Message, now: float) -> None:
    end = time.monotonic() + STALL_HOLD
    while time.monotonic() < end:
        _churn(400)
    _status(self, session, msg, now)


OrderEntry._status = hold_the_loop  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
