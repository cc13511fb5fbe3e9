"""`fixgw replay`: a trading session recorded through a real gateway, then read back.

The recording: `fixgw serve` as a subprocess, one client over real TCP that
rests an order, trades against it, asks for status, replaces, cancels, sends
a cancel for an unknown order, an off-tick order and an unsupported message,
and logs out. Then `fixgw replay list/show/redrive` run as subprocesses on
that data directory: listing, decoding, filters, JSON export, a re-drive
against a fresh gateway (identical reports) and re-drives that must differ
(another tick size; a tampered stored report) at the right seq and tag.
Unit tests below cover the store's inbound log and the report comparison.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fix_gateway.codec import FieldValue, Message, encode, parse_fields
from fix_gateway.config import GatewaySettings
from fix_gateway.replay.compare import first_difference
from fix_gateway.server import Gateway
from fix_gateway.utc_time import format_timestamp, parse_timestamp
from session_store import FileStore, FsyncPolicy, read_inbound, read_outbound
from tests.fix_peer import SansIOPeer, TcpPeer
from tests.gateway_process import REPO, GatewayProcess
from tests.gateway_settings import FAR_END_OF_DAY

SESSION = "FIXGW-CLIENT1"


def write_config(path: Path, data_dir: Path, tick_size: str = "0.01") -> Path:
    # Day orders expire at end_of_day: keep it half a day away from now.
    eod = FAR_END_OF_DAY
    path.write_text(f"""
[listen]
host = "127.0.0.1"
port = 0

[store]
data_dir = "{data_dir}"
fsync = "none"

[server]
tick_interval = 0.05

[engine]
end_of_day = "{eod}"

[[instruments]]
symbol = "ACME"
tick_size = "{tick_size}"

[[sessions]]
SenderCompID = "FIXGW"
TargetCompID = "CLIENT1"
""")
    return path


def replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fix_gateway.cli", "replay", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


@dataclass
class Recording:
    """What the client sent and received, as it saw it."""

    config: Path
    data_dir: Path
    sent: list[Message] = field(default_factory=list)
    received: list[Message] = field(default_factory=list)
    phase_two_from: float = 0.0  # every message of phase two was sent after this

    def received_of(self, msg_type: bytes) -> list[Message]:
        return [m for m in self.received if m.msg_type == msg_type]


class Client:
    def __init__(self, peer: TcpPeer, rec: Recording) -> None:
        self.peer = peer
        self.rec = rec

    async def send(self, msg_type: str, *body: tuple[int, FieldValue]) -> None:
        data = self.peer.build(msg_type, *body, now=time.time())
        parsed = parse_fields(data)
        assert parsed is not None
        self.rec.sent.append(Message(parsed[0], parsed[1], data))
        await self.peer.write(data)

    async def answers(self, n: int) -> list[Message]:
        out = [await self.peer.receive(5.0) for _ in range(n)]
        self.rec.received += out
        return out


async def record_session(port: int, rec: Recording) -> None:
    now = format_timestamp(time.time()).decode()
    client = Client(await TcpPeer.connect(port), rec)
    await client.send("A", (98, 0), (108, 30))
    assert (await client.answers(1))[0].msg_type == b"A"
    # Phase one: rest a buy, sell into it (no Account: a session may trade with itself).
    await client.send("D", (11, "B1"), (55, "ACME"), (54, "1"), (60, now), (38, 100), (40, "2"),
                      (44, "10.00"))
    await client.answers(1)  # New
    await client.send("D", (11, "S1"), (55, "ACME"), (54, "2"), (60, now), (38, 40), (40, "2"),
                      (44, "10.00"))
    await client.answers(3)  # New, then a fill for each side
    await client.send("H", (11, "B1"), (55, "ACME"), (54, "1"))
    await client.answers(1)  # OrderStatus
    await client.send("1", (112, "PING"))
    assert (await client.answers(1))[0].msg_type == b"0"
    await asyncio.sleep(0.05)
    rec.phase_two_from = time.time()
    await asyncio.sleep(0.05)
    # Phase two: replace, an order on 0.01 but off a 0.05 tick, cancels, bad input.
    await client.send("G", (41, "B1"), (11, "B2"), (55, "ACME"), (54, "1"), (60, now),
                      (38, 80), (40, "2"), (44, "10.10"))
    await client.answers(1)  # Replaced
    await client.send("D", (11, "B3"), (55, "ACME"), (54, "1"), (60, now), (38, 5), (40, "2"),
                      (44, "9.03"))
    await client.answers(1)  # New
    await client.send("F", (41, "B2"), (11, "B4"), (55, "ACME"), (54, "1"), (60, now))
    await client.answers(1)  # Canceled
    await client.send("F", (41, "NOPE"), (11, "C1"), (55, "ACME"), (54, "1"), (60, now))
    await client.answers(1)  # OrderCancelReject
    await client.send("D", (11, "B5"), (55, "ACME"), (54, "1"), (60, now), (38, 5), (40, "2"),
                      (44, "9.005"))
    await client.answers(1)  # Rejected: off tick
    await client.send("B", (148, "headline"))
    await client.answers(1)  # BusinessMessageReject
    await client.send("5")
    assert (await client.answers(1))[0].msg_type == b"5"
    await client.peer.close()


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    root = tmp_path_factory.mktemp("replay")
    rec = Recording(write_config(root / "gateway.toml", root / "data"), root / "data")
    gw = GatewayProcess(rec.config)
    try:
        asyncio.run(record_session(gw.port, rec))
    finally:
        assert gw.stop() == 0
    return rec


def stored_seq(msg: Message) -> int:
    return int(msg.get(34) or b"0")


# --- list ---------------------------------------------------------------------------------


def test_list_shows_the_session_with_seqnums_counts_and_time_range(
    recording: Recording,
) -> None:
    result = replay("list", "--config", str(recording.config))
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == ["SESSION", "OURS", "THEIRS", "NEXT_OUT", "NEXT_IN", "OUT_MSGS",
                              "IN_MSGS", "FIRST", "LAST"]
    cells = row.split()
    last_out = max(stored_seq(m) for m in recording.received)
    last_in = max(stored_seq(m) for m in recording.sent)
    assert cells[:7] == [SESSION, "FIXGW", "CLIENT1", str(last_out + 1), str(last_in + 1),
                         str(len(recording.received)), str(len(recording.sent))]
    # FIRST is the Logon's arrival (the gateway's clock), just after its SendingTime
    # (which is rounded to the millisecond).
    first = parse_timestamp(cells[7].encode())
    logon_sent = parse_timestamp(recording.sent[0].get(52) or b"")
    assert first is not None and logon_sent is not None and -0.01 < first - logon_sent < 1


def test_list_on_an_empty_data_dir_says_so(tmp_path: Path) -> None:
    result = replay("list", "--data-dir", str(tmp_path))
    assert result.returncode == 0
    assert result.stdout == "" and "no sessions" in result.stderr


# --- show ---------------------------------------------------------------------------------

_HEADING = re.compile(r"^(IN|OUT) +seq=(\d+) +\d{8}-\d\d:\d\d:\d\d\.\d{3} +(\w+)$", re.M)


def headings(text: str) -> list[tuple[str, int, str]]:
    return [(d, int(s), name) for d, s, name in _HEADING.findall(text)]


def test_show_interleaves_both_directions_in_order_with_names_and_meanings(
    recording: Recording,
) -> None:
    result = replay("show", SESSION, "--config", str(recording.config))
    assert result.returncode == 0, result.stderr
    shown = headings(result.stdout)
    # Every message, once, in the order the client saw them happen.
    assert len(shown) == len(recording.sent) + len(recording.received)
    assert shown[:3] == [("IN", 1, "Logon"), ("OUT", 1, "Logon"), ("IN", 2, "NewOrderSingle")]
    assert shown[3] == ("OUT", 2, "ExecutionReport")
    assert shown[-2:] == [("IN", stored_seq(recording.sent[-1]), "Logout"),
                          ("OUT", stored_seq(recording.received[-1]), "Logout")]
    ins = [s for d, s, _ in shown if d == "IN"]
    outs = [s for d, s, _ in shown if d == "OUT"]
    assert ins == [stored_seq(m) for m in recording.sent]
    assert outs == [stored_seq(m) for m in recording.received]
    text = result.stdout
    assert re.search(r"^ +35 MsgType +\= D \(NewOrderSingle\)$", text, re.M)
    assert re.search(r"^ +54 Side +\= 1 \(BUY\)$", text, re.M)
    assert re.search(r"^ +54 Side +\= 2 \(SELL\)$", text, re.M)
    assert re.search(r"^ +150 ExecType +\= F \(TRADE\)$", text, re.M)
    assert re.search(r"^ +39 OrdStatus +\= 2 \(FILLED\)$", text, re.M)
    assert re.search(r"^ +11 ClOrdID +\= B1$", text, re.M)


def test_show_filters_by_msg_type_clordid_seq_direction_and_time(recording: Recording) -> None:
    cfg = str(recording.config)

    def show(*args: str) -> list[tuple[str, int, str]]:
        result = replay("show", "CLIENT1", "--config", cfg, *args)
        assert result.returncode == 0, result.stderr
        return headings(result.stdout)

    orders = [("IN", stored_seq(m), "NewOrderSingle") for m in recording.sent
              if m.msg_type == b"D"]
    assert show("--msg-type", "D") == orders
    assert show("--msg-type", "NewOrderSingle") == orders
    assert {name for _, _, name in show("--msg-type", "F,G")} == \
        {"OrderCancelRequest", "OrderCancelReplaceRequest"}
    # ClOrdID B1: its order, its status request, the reports naming it, the replace of it.
    expected_b1 = sorted(
        [("IN", stored_seq(m)) for m in recording.sent if b"B1" in (m.get(11), m.get(41))]
        + [("OUT", stored_seq(m)) for m in recording.received
           if b"B1" in (m.get(11), m.get(41))])
    assert sorted((d, s) for d, s, _ in show("--clordid", "B1")) == expected_b1
    assert [s for _, s, _ in show("--from-seq", "3", "--to-seq", "5", "--direction", "out")] \
        == [3, 4, 5]
    since = format_timestamp(recording.phase_two_from).decode()
    later = [(d, s) for d, s, _ in show("--since", since)]
    phase_two = [m for m in recording.sent + recording.received
                 if m.get(52) is not None and (m.get(52) or b"").decode() >= since]
    assert len(later) == len(phase_two) and ("IN", 1) not in later
    assert [s for d, s, _ in show("--until", since, "--direction", "in")] == \
        [stored_seq(m) for m in recording.sent if (m.get(52) or b"").decode() <= since]


def test_show_rejects_bad_filters_and_unknown_sessions_naming_them(
    recording: Recording,
) -> None:
    cfg = str(recording.config)
    bad_type = replay("show", SESSION, "--config", cfg, "--msg-type", "Nonsense")
    assert bad_type.returncode == 2 and "unknown MsgType 'Nonsense'" in bad_type.stderr
    bad_time = replay("show", SESSION, "--config", cfg, "--since", "yesterday")
    assert bad_time.returncode == 2 and "not a time: 'yesterday'" in bad_time.stderr
    unknown = replay("show", "NOBODY", "--config", cfg)
    assert unknown.returncode == 2
    assert "session 'NOBODY' not found" in unknown.stderr and SESSION in unknown.stderr


def test_show_json_exports_one_object_per_message_with_named_fields_and_raw(
    recording: Recording,
) -> None:
    result = replay("show", SESSION, "--config", str(recording.config), "--json")
    assert result.returncode == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(objects) == len(recording.sent) + len(recording.received)
    ins = [o for o in objects if o["direction"] == "IN"]
    outs = [o for o in objects if o["direction"] == "OUT"]
    assert [o["raw"].encode("latin-1") for o in ins] == [m.raw for m in recording.sent]
    assert [o["raw"].encode("latin-1") for o in outs] == [m.raw for m in recording.received]
    order = next(o for o in ins if o["msg_type"] == "D")
    assert order["msg_name"] == "NewOrderSingle" and "received" in order
    assert order["fields"]["ClOrdID"] == "B1" and order["fields"]["Side"] == "1"
    assert order["meanings"]["Side"] == "BUY" and order["meanings"]["MsgType"] == "NewOrderSingle"
    trade = next(o for o in outs if o["fields"].get("ExecType") == "F")
    assert trade["meanings"]["ExecType"] == "TRADE" and trade["fields"]["LastPx"] == "10.00"


# --- redrive --------------------------------------------------------------------------------


def redrive_against_fresh_gateway(rec: Recording, tmp_path: Path, data_dir: Path | None = None,
                                  tick_size: str = "0.01") -> subprocess.CompletedProcess[str]:
    fresh = write_config(tmp_path / "fresh.toml", tmp_path / "fresh-data", tick_size)
    gw = GatewayProcess(fresh)
    try:
        args = ["redrive", SESSION, "--port", str(gw.port), "--config", str(rec.config)]
        if data_dir is not None:
            args += ["--data-dir", str(data_dir)]
        return replay(*args)
    finally:
        assert gw.stop() == 0


def reports(rec: Recording) -> list[Message]:
    return [m for m in rec.received if m.msg_type in (b"8", b"9", b"j", b"r")]


def test_redrive_against_a_fresh_gateway_reproduces_identical_reports(
    recording: Recording, tmp_path: Path,
) -> None:
    result = redrive_against_fresh_gateway(recording, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    applied = [m for m in recording.sent if m.msg_type not in (b"A", b"0", b"1", b"5")]
    assert result.stdout.splitlines() == [
        f"identical {len(reports(recording))} reports ({len(applied)} application messages"
        " sent)"]


def test_redrive_with_another_tick_size_reports_the_first_difference(
    recording: Recording, tmp_path: Path,
) -> None:
    # At tick 0.05 the order B3 @ 9.03 is refused: its stored "New" report differs first.
    result = redrive_against_fresh_gateway(recording, tmp_path, tick_size="0.05")
    assert result.returncode == 1, result.stdout + result.stderr
    stored_new = next(m for m in recording.received if m.get(11) == b"B3")
    index = reports(recording).index(stored_new) + 1
    # The refused order gets no OrderID: the report's first field (37) already differs.
    # The re-driving session sent only its Logon before the reports: report k is seq k + 1.
    assert result.stdout.splitlines()[0] == (
        f"different: report {index}: stored seq {stored_seq(stored_new)}, received seq"
        f" {index + 1} (ExecutionReport): tag 37 (OrderID) expected"
        f" '{stored_new.get(37).decode()}' got 'NONE'")  # type: ignore[union-attr]


def test_redrive_finds_a_tampered_stored_report(recording: Recording, tmp_path: Path) -> None:
    copy = tmp_path / "tampered"
    shutil.copytree(recording.data_dir, copy)
    store = copy / "sessions" / SESSION
    trade = next(m for m in recording.received if m.get(150) == b"F")
    (seq, raw), = [(s, r) for s, r in read_outbound(store) if s == stored_seq(trade)]
    assert b"\x0131=10.00\x01" in raw
    data = (store / "messages.dat").read_bytes()
    offset = data.index(raw)
    tampered = raw.replace(b"\x0131=10.00\x01", b"\x0131=11.00\x01")  # same length
    (store / "messages.dat").write_bytes(data[:offset] + tampered + data[offset + len(raw):])
    result = redrive_against_fresh_gateway(recording, tmp_path, data_dir=copy)
    assert result.returncode == 1, result.stdout + result.stderr
    index = reports(recording).index(trade) + 1
    assert result.stdout.splitlines()[0] == (
        f"different: report {index}: stored seq {seq}, received seq {index + 1}"
        " (ExecutionReport):"
        " tag 31 (LastPx) expected '11.00' got '10.00'")


def test_redrive_to_a_closed_port_fails_with_status_3(recording: Recording) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        result = replay("redrive", SESSION, "--port", str(port), "--config",
                        str(recording.config))
    assert result.returncode == 3 and "redrive: logon to 127.0.0.1" in result.stderr


# --- the store's inbound log ----------------------------------------------------------------


@pytest.mark.unit
def test_inbound_log_is_written_by_flush_and_survives_reopening(tmp_path: Path) -> None:
    store = FileStore(tmp_path, fsync=FsyncPolicy.NONE, record_inbound=True)
    store.append_inbound(b"in-1", 100.0)
    store.append_outbound(1, b"out-1")
    store.set_next_sender_seq(2)
    assert list(read_inbound(tmp_path)) == []  # nothing before the flush
    store.flush()
    store.append_inbound(b"in-2", 101.5)
    store.close()
    assert [tuple(r) for r in read_inbound(tmp_path)] == [(100.0, 1, b"in-1"),
                                                          (101.5, 2, b"in-2")]
    reopened = FileStore(tmp_path, fsync=FsyncPolicy.NONE, record_inbound=True)
    reopened.append_inbound(b"in-3", 102.0)
    reopened.flush()
    assert [r.raw for r in read_inbound(tmp_path)] == [b"in-1", b"in-2", b"in-3"]
    reopened.reset(103.0)
    assert list(read_inbound(tmp_path)) == []
    reopened.close()


@pytest.mark.unit
def test_inbound_log_trims_a_torn_tail_on_open(tmp_path: Path) -> None:
    store = FileStore(tmp_path, fsync=FsyncPolicy.NONE, record_inbound=True)
    store.append_inbound(b"whole", 1.0)
    store.flush()
    store.close()
    with open(tmp_path / "inbound.idx", "ab") as f:  # a record whose bytes never arrived
        f.write(b"\0" * 20 + (999).to_bytes(8, "little"))
    with open(tmp_path / "inbound.dat", "ab") as f:
        f.write(b"torn")
    FileStore(tmp_path, fsync=FsyncPolicy.NONE, record_inbound=True).close()
    assert [r.raw for r in read_inbound(tmp_path)] == [b"whole"]
    assert (tmp_path / "inbound.dat").read_bytes() == b"whole"
    assert os.path.getsize(tmp_path / "inbound.idx") == 28


@pytest.mark.unit
def test_store_without_record_inbound_keeps_no_inbound_files(tmp_path: Path) -> None:
    store = FileStore(tmp_path, fsync=FsyncPolicy.NONE)
    store.append_inbound(b"ignored", 1.0)
    store.flush()
    store.close()
    assert not (tmp_path / "inbound.dat").exists()


@pytest.mark.unit
def test_gateway_honours_record_inbound_false(tmp_path: Path) -> None:
    for record, data in ((True, tmp_path / "on"), (False, tmp_path / "off")):
        settings = GatewaySettings.model_validate({
            "store": {"data_dir": str(data), "fsync": "none", "record_inbound": record},
            "server": {"application": "echo"},
        })
        gateway = Gateway(settings)
        assert (data / "sessions" / SESSION / "inbound.dat").exists() is record
        for session in gateway.sessions:
            session.store.close()
        gateway.syncer.stop()


@pytest.mark.unit
def test_session_records_the_logon_and_every_later_message_in_arrival_order() -> None:
    peer = SansIOPeer()
    peer.log_on()
    peer.send("1", (112, "T1"))
    peer.send("D", (11, "X"), (55, "ACME"), (54, "1"), (60, "20270115-08:00:00"), (38, 1),
              (40, "1"))
    kinds = [raw.split(b"\x0135=")[1][:1] for _, raw in peer.store.inbound]
    assert kinds == [b"A", b"1", b"D"]


# --- comparison -----------------------------------------------------------------------------


def er(*fields: tuple[int, FieldValue], seq: int = 1) -> Message:
    raw = encode([(35, "8"), (34, seq), (49, "FIXGW"), (52, "20270115-08:00:00.000"),
                  (56, "CLIENT1"), *fields])
    parsed = parse_fields(raw)
    assert parsed is not None
    return Message(parsed[0], parsed[1], raw)


@pytest.mark.unit
def test_comparison_ignores_clocks_and_seqnums_but_nothing_else() -> None:
    a = er((37, 1), (150, "0"), (60, "20270115-08:00:00.000"), seq=5)
    b = er((37, 1), (150, "0"), (60, "20270116-09:30:00.000"), seq=2)
    assert first_difference([a], [b]) is None
    missing = first_difference([er((37, 1), (58, "x"))], [er((37, 1))])
    assert missing is not None and (missing.tag, missing.expected_value, missing.got_value) == \
        (58, b"x", None)
    extra = first_difference([er((37, 1))], [er((37, 1), (58, "x"))])
    assert extra is not None and (extra.tag, extra.expected_value, extra.got_value) == \
        (58, None, b"x")
    swapped = first_difference([er((37, 1), (58, "x"))], [er((1, "A"), (37, 1), (58, "x"))])
    assert swapped is not None and (swapped.tag, swapped.expected_value, swapped.got_value) == \
        (1, None, b"A")
    short = first_difference([a, a], [a])
    assert short is not None and (short.index, short.got) == (2, None)
    long = first_difference([a], [a, b])
    assert long is not None and (long.index, long.expected) == (2, None)
