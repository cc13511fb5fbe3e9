"""What one read batch produced, to be written ahead before it is spoken.

`Batch` is the one record of it: the sessions that got output (their stores to
flush, then their sockets to write). The stages that send (execution
reports, drop copy) add to it; the gateway's commit reads it, flushes, writes
and clears it. One object, owned by the composition root, instead of a set per
stage that the commit had to know about.
"""

from __future__ import annotations

from fix_gateway.session.session import Session


class Batch:
    __slots__ = ("sessions",)

    def __init__(self) -> None:
        self.sessions: set[Session] = set()  # sessions with new output this batch
