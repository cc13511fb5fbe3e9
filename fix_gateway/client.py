"""`fixgw client`: a small, scriptable FIX 4.4 initiator for people and tests.

It logs on to a venue, runs order-entry commands given on the command line
and/or read from stdin (one per line), prints every message the venue sends
one line each, and logs out. Like QuickFIX's tradeclient, but scriptable:

    fixgw client --sender CLIENT1 "buy 100 ACME @ 101.25"
    echo "sell 40 ACME @ 101.25 tif ioc" | fixgw client --sender CLIENT2 --json
    printf 'buy 100 ACME @ 10 id B1\\nwait 1\\nreplace B1 qty 50\\ncancel B1\\n' | fixgw client

Commands (keywords are case-insensitive; `#` starts a comment):

    buy|sell QTY SYMBOL [@ PRICE] [stop STOPPX] [tif day|gtc|ioc|fok|gtd]
             [expire YYYYMMDD-HH:MM:SS[.sss] | expire +SECONDS] [minqty N] [maxfloor N]
             [account ACC] [id CLORDID] [type market|limit|stop|stoplimit]
        NewOrderSingle (35=D). No `@`: market order; `stop` without `@`: stop;
        `stop` with `@`: stop-limit. `expire` without `tif` means GTD.
        `type` forces OrdType(40) whatever else is given (to test venue rejects).
    cancel CLORDID [id NEWID] [symbol SYM side buy|sell]
        OrderCancelRequest (35=F).
    replace CLORDID qty N [@ PRICE] [stop STOPPX] [id NEWID] [symbol SYM side buy|sell]
        OrderCancelReplaceRequest (35=G); the price is kept unless `@` is given.
    status CLORDID [symbol SYM side buy|sell]
        OrderStatusRequest (35=H).
    masscancel [SYMBOL] [id CLORDID]
        OrderMassCancelRequest (35=q): the session's orders in SYMBOL, or all of them.
    wait SECONDS
        pause the script, printing what arrives.
    logout
        Logout (35=5), wait for the venue's Logout, exit.
    help
        this summary.

The client remembers the symbol, side, quantity and prices of each order it
sent, so cancel, replace and status need only the ClOrdID (the original one or
any later one: it always refers to the order by its latest acknowledged
ClOrdID). `symbol`/`side` name an order this client did not send. ClOrdIDs are
generated when no `id` is given.

Command-line commands run first, then stdin lines as they arrive (stdin is
read when it is not a terminal, or when it is one and no commands were
given: then the client is interactive). After the last command (stdin at end
of file) the client keeps printing for `--timeout` seconds, then logs out.

Session: SenderCompID is the client's id (`--sender`), TargetCompID the
venue's (`--target`). Sequence numbers are kept in memory: `--reset` sends
ResetSeqNumFlag(141)=Y; without it a Logon refused with "MsgSeqNum too low,
expecting N" is retried once with N. TestRequests are answered with
Heartbeats, a ResendRequest with a SequenceReset-GapFill (this client never
resends), and a Heartbeat goes out after HeartBtInt seconds of silence.
Gaps in the venue's sequence are noted on stderr, not requested.

Output (stdout), one line per received message: readable text (default),
`--raw` FIX with `|` for SOH, or `--json` one JSON object per message keyed by
the dictionary's field names (values are strings; a repeated tag gives a
list). Notes and errors go to stderr.

Exit status: 0 clean logout (our Logout answered), 1 logon failed, 2 a
command could not be parsed (the others still ran), 3 the connection dropped
or the venue logged us out.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TextIO

from fix_gateway.codec import Decoder, FieldValue, Message, encode
from fix_gateway.utc_time import format_timestamp, parse_timestamp

EXIT_OK = 0
EXIT_LOGON_FAILED = 1
EXIT_BAD_COMMAND = 2
EXIT_DISCONNECTED = 3

LOGON_WAIT = 10.0  # seconds to wait for the Logon reply
LOGOUT_WAIT = 5.0  # seconds to wait for the answer to our Logout

_DOC = __doc__ or ""
USAGE = "Commands (keywords" + _DOC.partition("Commands (keywords")[2].partition(
    "The client remembers")[0].rstrip() + "\n"

_TOO_LOW = re.compile(r"MsgSeqNum too low, expecting (\d+)")
_NUMBER = re.compile(r"-?(\d+(\.\d*)?|\.\d+)")

SIDES = {"buy": "1", "sell": "2"}
SIDE_NAMES = {"1": "Buy", "2": "Sell", "5": "SellShort"}
TIFS = {"day": "0", "gtc": "1", "ioc": "3", "fok": "4", "gtd": "6"}
TIF_NAMES = {"0": "Day", "1": "GTC", "3": "IOC", "4": "FOK", "6": "GTD"}
ORD_TYPES = {"market": "1", "limit": "2", "stop": "3", "stoplimit": "4", "stop-limit": "4"}
EXEC_TYPES = {
    "0": "New", "1": "PartialFill", "2": "Fill", "3": "DoneForDay", "4": "Canceled",
    "5": "Replaced", "6": "PendingCancel", "8": "Rejected", "9": "Suspended",
    "A": "PendingNew", "C": "Expired", "D": "Restated", "E": "PendingReplace", "F": "Trade",
    "I": "OrderStatus", "L": "Triggered",
}  # fmt: skip
LIQUIDITY = {"1": "added", "2": "removed", "3": "routed"}
CXL_REJ_REASONS = {"0": "TooLate", "1": "UnknownOrder", "2": "BrokerOption",
                   "3": "PendingCancelOrReplace", "6": "DuplicateClOrdID", "99": "Other"}
MASS_RESPONSES = {"0": "Rejected", "1": "CancelledSymbol", "7": "CancelledAll"}


class CommandError(ValueError):
    """A command line that cannot be run; the message says why."""


# --- commands -------------------------------------------------------------------


@dataclass
class OrderCmd:
    side: str  # "1" | "2"
    qty: str
    symbol: str
    price: str | None = None
    stop: str | None = None
    tif: str | None = None
    expire: str | None = None
    min_qty: str | None = None
    max_floor: str | None = None
    account: str | None = None
    cl_ord_id: str | None = None
    ord_type: str | None = None  # forced OrdType; otherwise derived from price/stop

    @property
    def derived_type(self) -> str:
        if self.ord_type is not None:
            return self.ord_type
        if self.stop is not None:
            return "4" if self.price is not None else "3"
        return "2" if self.price is not None else "1"


@dataclass
class CancelCmd:
    orig: str
    cl_ord_id: str | None = None
    symbol: str | None = None
    side: str | None = None


@dataclass
class ReplaceCmd:
    orig: str
    qty: str
    price: str | None = None
    stop: str | None = None
    cl_ord_id: str | None = None
    symbol: str | None = None
    side: str | None = None


@dataclass
class StatusCmd:
    cl_ord_id: str
    symbol: str | None = None
    side: str | None = None


@dataclass
class MassCancelCmd:
    symbol: str | None = None
    cl_ord_id: str | None = None


@dataclass
class WaitCmd:
    seconds: float


@dataclass
class LogoutCmd:
    pass


@dataclass
class HelpCmd:
    pass


Command = (
    OrderCmd | CancelCmd | ReplaceCmd | StatusCmd | MassCancelCmd | WaitCmd | LogoutCmd | HelpCmd
)


def _number(text: str, what: str) -> str:
    if not _NUMBER.fullmatch(text):
        raise CommandError(f"{what} must be a number, not {text!r}")
    return text


def _expire(text: str, now: float) -> str:
    if text.startswith("+"):
        try:
            seconds = float(text[1:])
        except ValueError:
            raise CommandError(f"expire +SECONDS needs a number, not {text!r}") from None
        return format_timestamp(now + seconds).decode()
    if parse_timestamp(text.encode()) is None:
        raise CommandError(f"expire must be YYYYMMDD-HH:MM:SS[.sss] or +SECONDS, not {text!r}")
    return text


class _Tokens:
    def __init__(self, line: str) -> None:
        self.items = line.replace("@", " @ ").split()
        self.pos = 0

    def more(self) -> bool:
        return self.pos < len(self.items)

    def next(self, what: str) -> str:
        if self.pos >= len(self.items):
            raise CommandError(f"missing {what}")
        item = self.items[self.pos]
        self.pos += 1
        return item

    def keyword(self) -> str:
        return self.next("keyword").lower()


def _side(text: str) -> str:
    side = SIDES.get(text.lower())
    if side is None:
        raise CommandError(f"side must be buy or sell, not {text!r}")
    return side


def parse_command(line: str, now: float | None = None) -> Command | None:  # noqa: C901
    """One command line -> a command; None for a blank or comment line."""
    line = line.split("#", 1)[0].strip()
    if not line:
        return None
    now = time.time() if now is None else now
    tok = _Tokens(line)
    verb = tok.keyword()
    if verb in SIDES:
        return _parse_order(tok, SIDES[verb], now)
    if verb == "cancel":
        cancel = CancelCmd(tok.next("ClOrdID to cancel"))
        while tok.more():
            key = tok.keyword()
            if key == "id":
                cancel.cl_ord_id = tok.next("ClOrdID after id")
            elif key == "symbol":
                cancel.symbol = tok.next("symbol")
            elif key == "side":
                cancel.side = _side(tok.next("side"))
            else:
                raise CommandError(f"cancel: unexpected {key!r}")
        return cancel
    if verb == "replace":
        orig = tok.next("ClOrdID to replace")
        qty: str | None = None
        replace = ReplaceCmd(orig, "")
        while tok.more():
            key = tok.keyword()
            if key == "qty":
                qty = _number(tok.next("quantity"), "qty")
            elif key == "@":
                replace.price = _number(tok.next("price after @"), "price")
            elif key == "stop":
                replace.stop = _number(tok.next("stop price"), "stop price")
            elif key == "id":
                replace.cl_ord_id = tok.next("ClOrdID after id")
            elif key == "symbol":
                replace.symbol = tok.next("symbol")
            elif key == "side":
                replace.side = _side(tok.next("side"))
            else:
                raise CommandError(f"replace: unexpected {key!r}")
        if qty is None:
            raise CommandError("replace needs qty N")
        replace.qty = qty
        return replace
    if verb == "status":
        status = StatusCmd(tok.next("ClOrdID"))
        while tok.more():
            key = tok.keyword()
            if key == "symbol":
                status.symbol = tok.next("symbol")
            elif key == "side":
                status.side = _side(tok.next("side"))
            else:
                raise CommandError(f"status: unexpected {key!r}")
        return status
    if verb == "masscancel":
        mass = MassCancelCmd()
        while tok.more():
            item = tok.next("symbol")
            if item.lower() == "id":
                mass.cl_ord_id = tok.next("ClOrdID after id")
            elif mass.symbol is None:
                mass.symbol = item
            else:
                raise CommandError(f"masscancel: unexpected {item!r}")
        return mass
    if verb in ("wait", "sleep"):
        text = tok.next("seconds")
        try:
            seconds = float(text)
        except ValueError:
            raise CommandError(f"wait needs a number of seconds, not {text!r}") from None
        if tok.more() or seconds < 0:
            raise CommandError("usage: wait SECONDS")
        return WaitCmd(seconds)
    if verb in ("logout", "quit", "exit"):
        if tok.more():
            raise CommandError("usage: logout")
        return LogoutCmd()
    if verb in ("help", "?"):
        return HelpCmd()
    raise CommandError(f"unknown command {verb!r} (try: help)")


def _parse_order(tok: _Tokens, side: str, now: float) -> OrderCmd:
    qty = _number(tok.next("quantity"), "quantity")
    symbol = tok.next("symbol")
    if symbol == "@":
        raise CommandError("missing symbol before @")
    order = OrderCmd(side, qty, symbol)
    while tok.more():
        key = tok.keyword()
        if key == "@":
            order.price = _number(tok.next("price after @"), "price")
        elif key == "stop":
            order.stop = _number(tok.next("stop price"), "stop price")
        elif key == "tif":
            name = tok.next("time in force").lower()
            if name not in TIFS:
                raise CommandError(f"tif must be one of {', '.join(TIFS)}, not {name!r}")
            order.tif = TIFS[name]
        elif key == "expire":
            order.expire = _expire(tok.next("expire time"), now)
        elif key == "minqty":
            order.min_qty = _number(tok.next("minqty"), "minqty")
        elif key == "maxfloor":
            order.max_floor = _number(tok.next("maxfloor"), "maxfloor")
        elif key == "account":
            order.account = tok.next("account")
        elif key == "id":
            order.cl_ord_id = tok.next("ClOrdID after id")
        elif key == "type":
            name = tok.next("order type").lower()
            if name not in ORD_TYPES:
                raise CommandError(f"type must be one of {', '.join(ORD_TYPES)}, not {name!r}")
            order.ord_type = ORD_TYPES[name]
        else:
            raise CommandError(f"order: unexpected {key!r}")
    if order.expire is not None and order.tif is None:
        order.tif = TIFS["gtd"]
    return order


# --- printing ---------------------------------------------------------------------


def _s(msg: Message, tag: int, default: str = "") -> str:
    value = msg.get(tag)
    return default if value is None else value.decode("latin-1")


def _text_suffix(msg: Message) -> str:
    text = msg.get(58)
    return f" text={json.dumps(text.decode('latin-1'))}" if text is not None else ""


def format_message(msg: Message) -> str:
    """One readable line for a message from the venue."""
    mt = _s(msg, 35)
    seq = _s(msg, 34)
    possdup = " possdup" if msg.get(43) == b"Y" else ""
    if mt == "8":
        return _format_er(msg) + possdup
    if mt == "9":
        response = {"1": "cancel", "2": "replace"}.get(_s(msg, 434), _s(msg, 434))
        reason = _s(msg, 102)
        return (f"CXLREJ  {_s(msg, 11)}  orig={_s(msg, 41)} OrdStatus={_s(msg, 39)}"
                f" reason={reason}({CXL_REJ_REASONS.get(reason, '?')}) responseTo={response}"
                f" orderid={_s(msg, 37)}{_text_suffix(msg)}{possdup}")
    if mt == "r":
        response = _s(msg, 531)
        line = (f"MASSCXL  {_s(msg, 11)}  type={_s(msg, 530)}"
                f" response={response}({MASS_RESPONSES.get(response, '?')})"
                f" cancelled={_s(msg, 533, '0')}")
        if 55 in msg:
            line += f" symbol={_s(msg, 55)}"
        if 532 in msg:
            line += f" rejectReason={_s(msg, 532)}"
        return line + _text_suffix(msg) + possdup
    if mt == "j":
        return (f"BIZREJ  refmsgtype={_s(msg, 372)} refseq={_s(msg, 45)} refid={_s(msg, 379)}"
                f" reason={_s(msg, 380)}{_text_suffix(msg)}{possdup}")
    if mt == "3":
        return (f"REJECT  refseq={_s(msg, 45)} reftag={_s(msg, 371)} refmsgtype={_s(msg, 372)}"
                f" reason={_s(msg, 373)}{_text_suffix(msg)}")
    if mt == "5":
        return f"LOGOUT  seq={seq}{_text_suffix(msg)}"
    if mt == "A":
        reset = " reset=Y" if msg.get(141) == b"Y" else ""
        return f"LOGON  seq={seq} heartbeat={_s(msg, 108)}{reset}"
    if mt == "0":
        test = f" testreqid={_s(msg, 112)}" if 112 in msg else ""
        return f"HEARTBEAT  seq={seq}{test}"
    if mt == "1":
        return f"TESTREQUEST  seq={seq} testreqid={_s(msg, 112)}"
    if mt == "2":
        return f"RESENDREQUEST  seq={seq} begin={_s(msg, 7)} end={_s(msg, 16)}"
    if mt == "4":
        gap = " gapfill" if msg.get(123) == b"Y" else ""
        return f"SEQRESET  seq={seq} newseqno={_s(msg, 36)}{gap}"
    return f"MSG  35={mt} " + format_raw(msg)


def _format_er(msg: Message) -> str:
    exec_type = _s(msg, 150)
    parts = [f"ER  {_s(msg, 11)}  {EXEC_TYPES.get(exec_type, exec_type)}"
             f"  ExecType={exec_type} OrdStatus={_s(msg, 39)}"]
    order = f"{_s(msg, 55)} {SIDE_NAMES.get(_s(msg, 54), _s(msg, 54))} {_s(msg, 38)}"
    if 44 in msg:
        order += f" @ {_s(msg, 44)}"
    elif _s(msg, 40) in ("1", "3"):
        order += " MKT"
    if 99 in msg:
        order += f" stop {_s(msg, 99)}"
    tif = _s(msg, 59)
    if tif and tif != "0":
        order += f" {TIF_NAMES.get(tif, tif)}"
    for tag, name in ((126, "expire"), (110, "minqty"), (111, "maxfloor"), (1, "account")):
        if tag in msg:
            order += f" {name}={_s(msg, tag)}"
    parts.append(" " + order)
    if 32 in msg:
        liquidity = _s(msg, 851)
        parts.append(f"  last={_s(msg, 32)} @ {_s(msg, 31)}"
                     f" liquidity={LIQUIDITY.get(liquidity, liquidity)}")
    parts.append(f"  leaves={_s(msg, 151)} cum={_s(msg, 14)} avgpx={_s(msg, 6)}"
                 f" orderid={_s(msg, 37)} execid={_s(msg, 17)}")
    if 41 in msg:
        parts.append(f" orig={_s(msg, 41)}")
    if 103 in msg:
        parts.append(f" reason={_s(msg, 103)}")
    if _s(msg, 797) == "Y":  # a drop copy: whose report it is
        parts.append(f" copy-of={_s(msg, 128)}")
    parts.append(_text_suffix(msg))
    return "".join(parts)


def format_raw(msg: Message) -> str:
    return msg.raw.replace(b"\x01", b"|").decode("latin-1")


_TAG_NAMES: dict[int, str] | None = None


def tag_names() -> dict[int, str]:
    """Tag number -> field name from the gateway's dictionary (loaded once)."""
    global _TAG_NAMES
    if _TAG_NAMES is None:
        from fix_gateway.dictionary import Dictionary

        _TAG_NAMES = {tag: f.name for tag, f in Dictionary.load().fields.items()}
    return _TAG_NAMES


def message_json(msg: Message) -> dict[str, str | list[str]]:
    """The message as {field name: value}; a repeated tag's values as a list."""
    names = tag_names()
    out: dict[str, str | list[str]] = {}
    for tag, value in msg.fields:
        key = names.get(tag, str(tag))
        text = value.decode("latin-1")
        if key in out:
            prev = out[key]
            out[key] = [*prev, text] if isinstance(prev, list) else [prev, text]
        else:
            out[key] = text
    return out


# --- the client -------------------------------------------------------------------


@dataclass
class ClientOptions:
    host: str = "127.0.0.1"
    port: int = 9878
    sender: str = "CLIENT1"
    target: str = "FIXGW"
    heartbeat: int = 30
    reset: bool = False
    username: str | None = None
    password: str | None = None
    output: str = "text"  # text | raw | json
    timeout: float = 2.0
    verbose: bool = False  # also print what is sent (raw, to stderr)


@dataclass
class OrderInfo:
    """What the client knows about one of its orders."""

    cl_ord_id: str  # the latest acknowledged ClOrdID
    symbol: str
    side: str
    qty: str
    ord_type: str
    price: str | None = None
    stop: str | None = None
    order_id: str | None = None
    status: str | None = None
    aliases: set[str] = field(default_factory=set)


class _Disconnected(Exception):
    pass


Disconnected = _Disconnected  # the connection ended: what library callers (fixgw replay) catch


class FixClient:
    """One FIX initiator session over a blocking socket, driven by `run()`."""

    def __init__(self, options: ClientOptions, out: TextIO, err: TextIO) -> None:
        self.opt = options
        self.out = out
        self.err = err
        self.sock: socket.socket | None = None
        self.decoder = Decoder(1 << 20)
        self.next_seq = 1
        self.expected_in = 1
        self.last_sent = 0.0
        self.orders: dict[str, OrderInfo] = {}
        self.logged_on = False
        self.logout_sent = False
        self.logout_received = False
        self.closed = False
        self.bad_commands = 0
        self._id_prefix = f"{options.sender}-{int(time.time() * 1000) % 10**9:09d}-"
        self._id_counter = 0
        self._printer: Callable[[Message], str] = {
            "raw": format_raw,
            "json": lambda m: json.dumps(message_json(m)),
        }.get(options.output, format_message)

    # --- output ---------------------------------------------------------------------

    def note(self, text: str) -> None:
        print(f"fixgw client: {text}", file=self.err, flush=True)

    def show(self, msg: Message) -> None:
        print(self._printer(msg), file=self.out, flush=True)

    # --- wire -----------------------------------------------------------------------

    def connect(self) -> None:
        self.sock = socket.create_connection((self.opt.host, self.opt.port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(None)
        self.decoder = Decoder(1 << 20)
        self.closed = False

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None
        self.closed = True

    def send(self, msg_type: str, *body: tuple[int, FieldValue], seq: int | None = None,
             header: Iterable[tuple[int, FieldValue]] = ()) -> None:
        if self.sock is None:
            raise _Disconnected("not connected")
        now = time.time()
        if seq is None:
            seq = self.next_seq
            self.next_seq += 1
        data = encode([
            (35, msg_type), (34, seq), (49, self.opt.sender), (52, format_timestamp(now)),
            (56, self.opt.target), *header, *body,
        ])  # fmt: skip
        if self.opt.verbose:
            print(">> " + data.replace(b"\x01", b"|").decode("latin-1"), file=self.err,
                  flush=True)
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise _Disconnected(f"send failed: {exc}") from None
        self.last_sent = time.monotonic()

    def receive(self, timeout: float) -> list[Message]:
        """Messages that arrive within `timeout` seconds (maybe none)."""
        if self.sock is None:
            raise _Disconnected("not connected")
        self.sock.settimeout(max(timeout, 0.0))
        try:
            data = self.sock.recv(65536)
        except (TimeoutError, BlockingIOError):
            return []
        except OSError as exc:
            raise _Disconnected(f"connection lost: {exc}") from None
        if not data:
            raise _Disconnected("connection closed by the venue")
        items, over = self.decoder.feed(data)
        if over is not None:
            raise _Disconnected(f"message of {over.size} bytes from the venue")
        out = []
        for item in items:
            if isinstance(item, Message):
                out.append(item)
            else:
                self.note(f"garbled frame dropped ({item.reason})")
        return out

    # --- session --------------------------------------------------------------------

    def logon(self) -> int:
        """Connect and log on; EXIT_OK or EXIT_LOGON_FAILED."""
        retried = False
        while True:
            try:
                self.connect()
            except OSError as exc:
                self.note(f"cannot connect to {self.opt.host}:{self.opt.port}: {exc}")
                return EXIT_LOGON_FAILED
            body: list[tuple[int, FieldValue]] = [(98, 0), (108, self.opt.heartbeat)]
            if self.opt.reset:
                self.next_seq = 1
                body.append((141, "Y"))
            if self.opt.username is not None:
                body.append((553, self.opt.username))
            if self.opt.password is not None:
                body.append((554, self.opt.password))
            refused: Message | None = None
            try:
                self.send("A", *body)
                deadline = time.monotonic() + LOGON_WAIT
                while not self.logged_on and refused is None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self.note("no answer to Logon")
                        self.close()
                        return EXIT_LOGON_FAILED
                    for msg in self.receive(left):
                        if not self.logged_on and msg.msg_type == b"5":
                            refused = msg
                            break
                        self.handle(msg)
            except _Disconnected as exc:
                self.note(f"logon failed: {exc}")
                self.close()
                return EXIT_LOGON_FAILED
            if refused is None:
                return EXIT_OK
            self.show(refused)
            self.close()
            too_low = _TOO_LOW.search(_s(refused, 58))
            if too_low is None or retried or self.opt.reset:
                self.note(f"logon refused: {_s(refused, 58) or 'no reason given'}")
                return EXIT_LOGON_FAILED
            retried = True
            self.next_seq = int(too_low.group(1))
            self.note(f"venue expects MsgSeqNum {self.next_seq}; logging on again with it")

    def handle(self, msg: Message) -> None:
        """React to one message from the venue (after printing it)."""
        self.show(msg)
        mt = msg.msg_type
        seq_text = msg.get(34) or b""
        seq = int(seq_text) if seq_text.isdigit() else 0
        if mt == b"4" and msg.get(123) != b"Y":
            new = msg.get(36) or b""
            if new.isdigit():
                self.expected_in = int(new)
            return
        if seq > self.expected_in and mt != b"A" and msg.get(43) != b"Y":
            self.note(f"venue MsgSeqNum gap: expected {self.expected_in}, got {seq}")
        if mt == b"A":
            self.logged_on = True
        if seq >= self.expected_in:
            self.expected_in = seq + 1
        if mt == b"4":
            new = msg.get(36) or b""
            if new.isdigit():
                self.expected_in = max(self.expected_in, int(new))
        elif mt == b"1":
            self.send("0", (112, msg.get(112) or b""))
        elif mt == b"2":
            begin = msg.get(7) or b"1"
            begin_seq = int(begin) if begin.isdigit() else 1
            now = format_timestamp(time.time())
            self.send("4", (123, "Y"), (36, self.next_seq), seq=begin_seq,
                      header=[(43, "Y"), (122, now)])
        elif mt == b"5":
            self.logout_received = True
            if not self.logout_sent:
                self.send("5")
                self.logout_sent = True
        elif mt == b"8":
            self._track_report(msg)

    def _track_report(self, msg: Message) -> None:
        cl_ord_id = _s(msg, 11)
        info = self.orders.get(cl_ord_id) or self.orders.get(_s(msg, 41))
        if info is None:
            return
        exec_type = _s(msg, 150)
        if exec_type == "8" and msg.get(37) == b"NONE":
            return  # a rejected new order or an unknown-order status answer
        if exec_type == "5":
            info.cl_ord_id = cl_ord_id
            info.aliases.add(cl_ord_id)
            self.orders[cl_ord_id] = info
        if 38 in msg:
            info.qty = _s(msg, 38)
        if 44 in msg:
            info.price = _s(msg, 44)
        if 99 in msg:
            info.stop = _s(msg, 99)
        info.order_id = _s(msg, 37) or info.order_id
        info.status = _s(msg, 39) or info.status

    def heartbeat_due(self) -> float:
        """Seconds until our next Heartbeat is due."""
        if self.opt.heartbeat <= 0:
            return 3600.0
        return self.last_sent + self.opt.heartbeat - time.monotonic()

    # --- commands -------------------------------------------------------------------

    def new_id(self) -> str:
        self._id_counter += 1
        return f"{self._id_prefix}{self._id_counter}"

    def _lookup(self, cl_ord_id: str, symbol: str | None, side: str | None,
                what: str) -> tuple[str, OrderInfo | None, str, str]:
        """(ClOrdID to send as the order's, what we know, symbol, side)."""
        info = self.orders.get(cl_ord_id)
        if info is not None:
            return info.cl_ord_id, info, symbol or info.symbol, side or info.side
        if symbol is None:
            raise CommandError(f"{what}: unknown order {cl_ord_id!r} (for an order this client"
                               " did not send, add: symbol SYM side buy|sell)")
        return cl_ord_id, None, symbol, side or SIDES["buy"]

    def execute(self, cmd: Command) -> None:
        now = format_timestamp(time.time())
        if isinstance(cmd, OrderCmd):
            cl_ord_id = cmd.cl_ord_id or self.new_id()
            ord_type = cmd.derived_type
            body: list[tuple[int, FieldValue]] = [(11, cl_ord_id)]
            if cmd.account is not None:
                body.append((1, cmd.account))
            if cmd.min_qty is not None:
                body.append((110, cmd.min_qty))
            if cmd.max_floor is not None:
                body.append((111, cmd.max_floor))
            body += [(55, cmd.symbol), (54, cmd.side), (60, now), (38, cmd.qty),
                     (40, ord_type)]
            if cmd.price is not None:
                body.append((44, cmd.price))
            if cmd.stop is not None:
                body.append((99, cmd.stop))
            if cmd.tif is not None:
                body.append((59, cmd.tif))
            if cmd.expire is not None:
                body.append((126, cmd.expire))
            self.orders[cl_ord_id] = OrderInfo(cl_ord_id, cmd.symbol, cmd.side, cmd.qty,
                                               ord_type, cmd.price, cmd.stop,
                                               aliases={cl_ord_id})
            self.send("D", *body)
        elif isinstance(cmd, CancelCmd):
            orig, info, symbol, side = self._lookup(cmd.orig, cmd.symbol, cmd.side, "cancel")
            cl_ord_id = cmd.cl_ord_id or self.new_id()
            body = [(41, orig), (11, cl_ord_id), (55, symbol), (54, side), (60, now)]
            if info is not None:
                body.append((38, info.qty))
                self.orders.setdefault(cl_ord_id, info)
            self.send("F", *body)
        elif isinstance(cmd, ReplaceCmd):
            orig, info, symbol, side = self._lookup(cmd.orig, cmd.symbol, cmd.side, "replace")
            cl_ord_id = cmd.cl_ord_id or self.new_id()
            price = cmd.price if cmd.price is not None else (info.price if info else None)
            stop = cmd.stop if cmd.stop is not None else (info.stop if info else None)
            if info is not None:
                ord_type = info.ord_type
            else:
                ord_type = ("4" if price is not None else "3") if stop is not None else \
                    ("2" if price is not None else "1")
            body = [(41, orig), (11, cl_ord_id), (55, symbol), (54, side), (60, now),
                    (38, cmd.qty), (40, ord_type)]
            if price is not None:
                body.append((44, price))
            if stop is not None:
                body.append((99, stop))
            if info is not None:
                self.orders.setdefault(cl_ord_id, info)
            self.send("G", *body)
        elif isinstance(cmd, StatusCmd):
            cl_ord_id, _, symbol, side = self._lookup(cmd.cl_ord_id, cmd.symbol, cmd.side,
                                                      "status")
            self.send("H", (11, cl_ord_id), (55, symbol), (54, side))
        elif isinstance(cmd, MassCancelCmd):
            body = [(11, cmd.cl_ord_id or self.new_id()),
                    (530, "1" if cmd.symbol is not None else "7")]
            if cmd.symbol is not None:
                body.append((55, cmd.symbol))
            body.append((60, now))
            self.send("q", *body)
        elif isinstance(cmd, HelpCmd):
            print(USAGE, file=self.err, flush=True)
        else:  # Wait and Logout are run by the loop
            raise AssertionError(cmd)

    # --- the loop -------------------------------------------------------------------

    def run(self, commands: Iterable[str], stdin: TextIO | None) -> int:
        """Log on, run the commands (then stdin's lines), log out; the exit status."""
        status = self.logon()
        if status != EXIT_OK:
            return status
        try:
            ended = self._loop(deque(commands), stdin)
        except _Disconnected as exc:
            self.note(str(exc))
            self.close()
            return EXIT_DISCONNECTED
        self.close()
        if ended != EXIT_OK:
            return ended
        return EXIT_BAD_COMMAND if self.bad_commands else EXIT_OK

    def _loop(self, queue: deque[str], stdin: TextIO | None) -> int:  # noqa: C901
        sock = self.sock
        assert sock is not None
        selector = selectors.DefaultSelector()
        stdin_fd: int | None = None
        stdin_buf = b""
        interactive = False
        if stdin is not None:
            try:
                stdin_fd = stdin.fileno()
                selector.register(stdin_fd, selectors.EVENT_READ)
                interactive = os.isatty(stdin_fd)
            except (OSError, ValueError):
                # Not selectable (a StringIO in tests, a file on Windows): read it all now.
                stdin_fd = None
                queue.extend(stdin.read().splitlines())
        selector.register(sock, selectors.EVENT_READ)
        wait_until = 0.0
        idle_until: float | None = None
        logout_until: float | None = None
        if interactive:
            self._prompt()
        while True:
            now = time.monotonic()
            # Run commands, unless a `wait` or the logout is in progress.
            while queue and logout_until is None and now >= wait_until:
                line = queue.popleft()
                try:
                    cmd = parse_command(line)
                    if cmd is None:
                        continue
                    if isinstance(cmd, WaitCmd):
                        wait_until = now + cmd.seconds
                    elif isinstance(cmd, LogoutCmd):
                        self.send("5")
                        self.logout_sent = True
                        logout_until = now + LOGOUT_WAIT
                    else:
                        self.execute(cmd)
                except CommandError as exc:
                    self.bad_commands += 1
                    self.note(f"{exc} -- in: {line.strip()}")
                if interactive and not queue:
                    self._prompt()
            if self.logout_received:
                return EXIT_OK if self.logout_sent and logout_until is not None else \
                    EXIT_DISCONNECTED
            # Out of commands and input: wait --timeout, then log out.
            if logout_until is None and not queue and stdin_fd is None and now >= wait_until:
                if idle_until is None:
                    idle_until = now + self.opt.timeout
                if now >= idle_until:
                    self.send("5")
                    self.logout_sent = True
                    logout_until = now + LOGOUT_WAIT
            if logout_until is not None and now >= logout_until:
                self.note("no answer to our Logout")
                return EXIT_DISCONNECTED
            deadlines = [self.heartbeat_due()]
            for moment in (wait_until, idle_until, logout_until):
                if moment is not None and moment > now:
                    deadlines.append(moment - now)
            timeout = max(0.0, min(deadlines))
            for key, _ in selector.select(timeout):
                if key.fileobj is sock:
                    for msg in self.receive(0):
                        self.handle(msg)
                elif stdin_fd is not None:
                    chunk = os.read(stdin_fd, 65536)
                    if not chunk:
                        selector.unregister(stdin_fd)
                        stdin_fd = None
                        if stdin_buf.strip():
                            queue.append(stdin_buf.decode())
                        stdin_buf = b""
                        continue
                    stdin_buf += chunk
                    *lines, stdin_buf = stdin_buf.split(b"\n")
                    queue.extend(line.decode(errors="replace") for line in lines)
            if self.heartbeat_due() <= 0 and not self.logout_sent:
                self.send("0")

    def _prompt(self) -> None:
        print("> ", end="", file=self.err, flush=True)


def run_client(
    options: ClientOptions,
    commands: Iterable[str] = (),
    stdin: TextIO | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run one client session; the process exit status (see the module docstring)."""
    client = FixClient(options, out or sys.stdout, err or sys.stderr)
    try:
        return client.run(commands, stdin)
    finally:
        client.close()
