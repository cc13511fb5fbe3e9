"""Re-drive a stored session against a running gateway and compare the reports.

Log on as the stored session's client (ResetSeqNumFlag=Y, so the gateway's
sequence numbers for it start at 1), send the application messages it
received, in MsgSeqNum order, with a fresh header, then a TestRequest: its
Heartbeat comes after every report those messages caused, since the gateway
answers in order. The reports received are compared with the stored ones
(compare.py). Against a gateway with a fresh engine and the same
configuration, a session that traded only with itself reproduces exactly.
"""

from __future__ import annotations

import os
import select
import sys
import time
from dataclasses import dataclass

from fix_gateway import tags as t
from fix_gateway.client import EXIT_OK, ClientOptions, Disconnected, FixClient
from fix_gateway.codec import Message
from fix_gateway.dictionary import Dictionary
from fix_gateway.replay.compare import REPORT_TYPES, Difference, first_difference
from fix_gateway.replay.store_reader import StoredSession

# Header fields the re-driving session writes itself; PossResend (97) is kept,
# since it decides whether the gateway acts on a repeated ClOrdID.
_REWRITTEN = frozenset((8, 9, 10, 34, 35, 43, 49, 52, 56, 122))
_POSS_DUP = 43
_TEST_REQ_ID = b"FIXGW-REDRIVE-DONE"


class RedriveError(Exception):
    """The gateway could not be reached, refused the Logon, or went away."""


@dataclass(slots=True)
class RedriveResult:
    sent: int
    expected: list[Message]
    received: list[Message]
    difference: Difference | None


def application_messages(session: StoredSession, dictionary: Dictionary) -> list[Message]:
    """What the session's client sent the application: first copy per MsgSeqNum, in order."""
    by_seq: dict[int, Message] = {}
    for m in session.inbound:
        if dictionary.is_admin(m.msg.msg_type) or m.seq <= 0:
            continue
        by_seq.setdefault(m.seq, m.msg)
    return [by_seq[seq] for seq in sorted(by_seq)]


def stored_reports(session: StoredSession) -> list[Message]:
    return [m.msg for m in session.outbound if m.msg.msg_type in REPORT_TYPES]


def redrive(session: StoredSession, host: str, port: int, dictionary: Dictionary,
            timeout: float = 30.0) -> RedriveResult:
    ours, theirs = session.comp_ids
    options = ClientOptions(host=host, port=port, sender=theirs, target=ours, reset=True)
    with open(os.devnull, "w") as quiet:
        client = FixClient(options, quiet, sys.stderr)
        try:
            return _run(client, session, dictionary, timeout)
        finally:
            client.close()


def _run(client: FixClient, session: StoredSession, dictionary: Dictionary,
         timeout: float) -> RedriveResult:
    if client.logon() != EXIT_OK:
        raise RedriveError(f"logon to {client.opt.host}:{client.opt.port} as"
                           f" {client.opt.sender} failed")
    received: list[Message] = []
    messages = application_messages(session, dictionary)
    try:
        for msg in messages:
            body = [(tag, value) for tag, value in msg.fields if tag not in _REWRITTEN]
            client.send(msg.msg_type.decode("latin-1"), *body)
            _take(client, received, wait=0.0)
        client.send("1", (t.TEST_REQ_ID, _TEST_REQ_ID))
        deadline = time.monotonic() + timeout
        while not _take(client, received, wait=deadline - time.monotonic()):
            if time.monotonic() >= deadline:
                raise RedriveError(f"no answer to the final TestRequest within {timeout:g} s")
        client.send("5")
        _await_logout(client, received)
    except Disconnected as exc:
        raise RedriveError(str(exc)) from None
    expected = stored_reports(session)
    return RedriveResult(len(messages), expected, received,
                         first_difference(expected, received))


def _take(client: FixClient, reports: list[Message], wait: float) -> bool:
    """Read what has arrived (waiting up to `wait` s for the first byte); keep the reports.

    True once the Heartbeat answering our final TestRequest is among them.
    """
    sock = client.sock
    assert sock is not None
    done = False
    while select.select([sock], [], [], max(wait, 0.0))[0]:
        wait = 0.0
        for msg in client.receive(10.0):  # readable: returns at once, leaves sends blocking
            client.handle(msg)  # answers TestRequests and ResendRequests
            if msg.msg_type in REPORT_TYPES and msg.get(_POSS_DUP) != b"Y":
                reports.append(msg)
            elif msg.msg_type == b"0" and msg.get(t.TEST_REQ_ID) == _TEST_REQ_ID:
                done = True
        if done:
            break
    return done


def _await_logout(client: FixClient, reports: list[Message], limit: float = 2.0) -> None:
    deadline = time.monotonic() + limit
    while not client.logout_received and time.monotonic() < deadline:
        try:
            _take(client, reports, wait=deadline - time.monotonic())
        except Disconnected:  # the gateway may close right after its Logout
            return
