"""Prometheus metrics and /healthz, scraped over real HTTP after real FIX traffic.

An in-process gateway (order entry, metrics on an ephemeral port) gets a
scripted trading session from two clients over TCP. The test counts what the
clients sent and what they received, scrapes /metrics, parses the exposition
text with prometheus_client's parser and checks that every counter moved by
exactly what happened.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fix_gateway.codec import Message
from fix_gateway.config import GatewaySettings
from fix_gateway.server import Gateway
from tests.fix_peer import TcpPeer
from tests.gateway_settings import metrics_settings
from tests.venue import Trader

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def gateway_settings(tmp_path: Path) -> GatewaySettings:
    return metrics_settings(tmp_path)


def http_get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


async def get(gw: Gateway, path: str) -> tuple[int, str, str]:
    assert gw.metrics is not None and gw.metrics.server.port
    url = f"http://127.0.0.1:{gw.metrics.server.port}{path}"
    return await asyncio.to_thread(http_get, url)


async def scrape(gw: Gateway) -> Samples:
    status, ctype, text = await get(gw, "/metrics")
    assert status == 200 and ctype.startswith("text/plain"), (status, ctype)
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, metric: str, **labels: str) -> float:
    """A sample's value; 0 when the series does not exist (a counter not yet moved)."""
    return samples.get((metric, frozenset(labels.items())), 0.0)


def series(samples: Samples, name: str, **fixed: str) -> dict[frozenset[tuple[str, str]], float]:
    """All samples of `name` whose labels include `fixed`, by their full label set."""
    want = set(fixed.items())
    return {labels: v for (n, labels), v in samples.items() if n == name and want <= labels}


def by_type(samples: Samples, name: str, session: str) -> Counter[str]:
    return Counter({dict(labels)["msg_type"]: int(v)
                    for labels, v in series(samples, name, session=session).items() if v})


class Recorder:
    """A Trader that remembers every message type it sent and received."""

    def __init__(self, trader: Trader) -> None:
        self.trader = trader
        self.sent: Counter[str] = Counter()
        self.received: Counter[str] = Counter()
        self.possdup: Counter[str] = Counter()

    async def send(self, msg_type: str, *body: tuple[int, object]) -> None:
        await self.trader.send(msg_type, *body)  # type: ignore[arg-type]
        self.sent[msg_type] += 1

    async def next(self, msg_type: str) -> Message:
        msg = await self.trader.peer.receive(5.0)
        self._count(msg)
        assert msg.msg_type == msg_type.encode(), f"expected 35={msg_type}, got {msg}"
        return msg

    def _count(self, msg: Message) -> None:
        if msg.get(43) == b"Y":
            self.possdup[msg.msg_type.decode()] += 1
        else:
            self.received[msg.msg_type.decode()] += 1

    async def log_out(self) -> None:
        await self.send("5")
        await self.next("5")
        try:
            while True:
                self._count(await self.trader.peer.receive(5.0))
        except (EOFError, ConnectionResetError):
            pass


async def test_counters_move_by_exactly_what_happened(gateway: Gateway) -> None:
    one = Recorder(await Trader.log_on(gateway.port, "CLIENT1"))
    two = Recorder(await Trader.log_on(gateway.port, "CLIENT2"))
    for r in (one, two):
        r.sent["A"] += 1
        r.received["A"] += 1  # the Logon answers, read by Trader.log_on

    # Three NewOrderSingles from CLIENT1: two rest, one names an unknown symbol (103=1).
    for cl_ord_id, side, qty, symbol, price in (("B1", "1", 100, "ACME", "10.00"),
                                               ("X1", "1", 5, "NOPE", "10.00"),
                                               ("S1", "2", 30, "ACME", "11.00")):
        await one.send("D", (11, cl_ord_id), (55, symbol), (54, side), (60, "20260101-00:00:00"),
                       (38, qty), (40, "2"), (44, price))
        er = await one.next("8")
        assert er.get(150) == (b"8" if symbol == "NOPE" else b"0"), er
    # CLIENT2 sells 40 into the bid: a trade, reported to both.
    await two.send("D", (11, "T1"), (55, "ACME"), (54, "2"), (60, "20260101-00:00:00"),
                   (38, 40), (40, "2"), (44, "10.00"))
    assert (await two.next("8")).get(150) == b"0"
    assert (await two.next("8")).get(150) == b"F"
    await one.next("8")  # the fill of B1
    # A cancel of an unknown order: OrderCancelReject 102=1.
    await one.send("F", (41, "NOPE"), (11, "C1"), (55, "ACME"), (54, "1"),
                   (60, "20260101-00:00:00"))
    assert (await one.next("9")).get(102) == b"1"
    # A TestRequest without TestReqID: session Reject 373=1 (required tag missing).
    await one.send("1")
    assert (await one.next("3")).get(373) == b"1"
    # News is a valid message the venue does not handle: BusinessMessageReject 380=3.
    await one.send("B", (148, "hello"), (33, 1), (58, "line"))
    assert (await one.next("j")).get(380) == b"3"
    # A frame with a wrong CheckSum: dropped without a word, seqnum not used.
    bad = one.trader.peer.build("1", (112, "GARBLED"))
    one.trader.peer.next_seq -= 1
    await one.trader.peer.write(bad[:-4] + b"000\x01")
    # CLIENT2 asks for everything again: one ResendRequest served.
    await two.send("2", (7, 1), (16, 0))
    await two.next("4")  # the Logon is gap-filled ...
    await two.next("8")
    await two.next("8")  # ... the two ExecutionReports resent as PossDup
    # An unknown CompID pair: refused before any session takes the connection.
    stranger = await TcpPeer.connect(gateway.port, sender="NOBODY")
    await stranger.write(stranger.logon(30, now=time.time()))
    assert await stranger.closed_by_peer()
    await stranger.close()

    mid = await scrape(gateway)
    assert value(mid, "fixgw_sessions_connected") == 2
    assert value(mid, "fixgw_session_connected", session="FIXGW-CLIENT1") == 1
    assert value(mid, "fixgw_session_connected", session="FIXGW-CLIENT3") == 0
    assert value(mid, "fixgw_open_orders", symbol="ACME") == 2  # B1 (60 left) and S1
    assert value(mid, "fixgw_open_orders", symbol="GLOBEX") == 0
    assert value(mid, "fixgw_book_levels", symbol="ACME", side="buy") == 1
    assert value(mid, "fixgw_book_quantity", symbol="ACME", side="buy") == 60
    assert value(mid, "fixgw_book_quantity", symbol="ACME", side="sell") == 30

    await one.log_out()
    await two.log_out()
    # connection_lost runs after the close, on a later loop turn: wait for it, not 50 ms.
    deadline = time.monotonic() + 5
    while any(s.connected for s in gateway.sessions) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    end = await scrape(gateway)

    for r, name in ((one, "FIXGW-CLIENT1"), (two, "FIXGW-CLIENT2")):
        assert by_type(end, "fixgw_messages_received_total", name) == r.sent, name
        assert by_type(end, "fixgw_messages_sent_total", name) == r.received, name
        assert by_type(end, "fixgw_messages_resent_total", name) == r.possdup, name
        assert value(end, "fixgw_logons_total", session=name) == 1
        assert value(end, "fixgw_logouts_total", session=name, initiated_by="peer") == 1
        assert series(end, "fixgw_disconnects_total", session=name) == {
            frozenset({("session", name), ("reason", "logout")}): 1}
    assert one.sent["D"] == 3
    assert value(end, "fixgw_messages_received_total", session="FIXGW-CLIENT1", msg_type="D",
                 name="NewOrderSingle") == 3
    assert value(end, "fixgw_sessions_connected") == 0
    assert value(end, "fixgw_order_rejects_total", session="FIXGW-CLIENT1", reason="1") == 1
    assert len(series(end, "fixgw_order_rejects_total")) == 1
    assert value(end, "fixgw_cancel_rejects_total", session="FIXGW-CLIENT1", reason="1") == 1
    assert value(end, "fixgw_session_rejects_total", session="FIXGW-CLIENT1", reason="1") == 1
    assert value(end, "fixgw_business_rejects_total", session="FIXGW-CLIENT1", reason="3") == 1
    assert value(end, "fixgw_garbled_messages_total", session="FIXGW-CLIENT1") == 1
    assert value(end, "fixgw_resend_requests_served_total", session="FIXGW-CLIENT2") == 1
    assert value(end, "fixgw_resend_requests_served_total", session="FIXGW-CLIENT1") == 0
    assert value(end, "fixgw_connections_accepted_total") == 3
    assert value(end, "fixgw_connections_refused_total", reason="unknown_session") == 1
    # Engine: 5 order commands (3 D + 1 D + 1 F), their events, one latency sample each.
    assert value(end, "fixgw_orders_processed_total") == 5
    assert value(end, "fixgw_engine_events_total", type="Trade") == 1
    assert value(end, "fixgw_engine_events_total", type="Rejected") == 1
    assert value(end, "fixgw_engine_events_total", type="CancelRejected") == 1
    acks = one.received["8"] + two.received["8"] - 1 - 2  # less the reject and the fills
    assert value(end, "fixgw_engine_events_total", type="Accepted") == acks == 3
    assert value(end, "fixgw_order_ack_latency_seconds_count", msg_type="D") == 4
    assert value(end, "fixgw_order_ack_latency_seconds_count", msg_type="F") == 1
    assert value(end, "fixgw_order_ack_latency_seconds_bucket", msg_type="D", le="+Inf") == 4
    assert 0 < value(end, "fixgw_order_ack_latency_seconds_sum", msg_type="D") < 4
    assert value(end, "fixgw_store_flush_seconds_count") >= 5
    assert value(end, "fixgw_component_up", component="engine") == 1


async def test_order_ack_latency_is_labelled_by_msg_type(gateway: Gateway) -> None:
    """New orders and cancels each get their own latency series: a dashboard can show
    the latency of NewOrderSingles alone (20 orders and 3 cancels do not count 23)."""
    trader = await Trader.log_on(gateway.port, "CLIENT1")
    for i in range(20):
        await trader.order(f"B{i}", "buy", 10, "ACME", "10.00")
        assert (await trader.peer.expect("8")).get(150) == b"0"
    for i in range(3):
        await trader.cancel(f"C{i}", f"B{i}", "ACME", "buy")
        assert (await trader.peer.expect("8")).get(150) == b"4"
    samples = await scrape(gateway)
    counts = {dict(labels)["msg_type"]: v
              for labels, v in series(samples, "fixgw_order_ack_latency_seconds_count").items()}
    assert counts == {"D": 20, "F": 3}
    for msg_type, n in counts.items():
        assert value(samples, "fixgw_order_ack_latency_seconds_bucket", msg_type=msg_type,
                     le="+Inf") == n
    await trader.peer.close()


async def test_client_chosen_msg_types_are_one_other_label(gateway: Gateway) -> None:
    """Invalid MsgTypes are counted, but under msg_type="other": a client cannot mint
    label values (20,000 of them once grew /metrics from 15 KB to 5.3 MB)."""
    trader = await Trader.log_on(gateway.port, "CLIENT1")
    for i in range(40):
        await trader.send(f"Z{i}")
        reject = await trader.peer.expect("3")
        assert (reject.get(373), reject.get(372)) == (b"11", f"Z{i}".encode())
    await trader.send("1", (112, "after"))
    assert (await trader.peer.expect("0")).get(112) == b"after"
    samples = await scrape(gateway)
    received = by_type(samples, "fixgw_messages_received_total", "FIXGW-CLIENT1")
    assert received == {"A": 1, "1": 1, "other": 40}
    assert value(samples, "fixgw_messages_received_total", session="FIXGW-CLIENT1",
                 msg_type="other", name="") == 40
    labels = {dict(labels)["msg_type"] for name in ("fixgw_messages_received_total",
              "fixgw_messages_sent_total", "fixgw_messages_resent_total")
              for labels in series(samples, name)}
    known = {t.decode() for t in gateway.dictionary.known_msg_types}
    assert labels <= known | {"other"}, labels - known
    # The session keeps one count for them all, not one per MsgType the client made up.
    [session] = [s for s in gateway.sessions if s.config.name == "FIXGW-CLIENT1"]
    assert len(session.counters.received) == 3
    await trader.peer.close()


async def test_metric_names_follow_prometheus_conventions(gateway: Gateway) -> None:
    status, _, text = await get(gateway, "/metrics")
    assert status == 200
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    ours = {name: kind for name, kind in families.items() if name.startswith("fixgw_")}
    for name in ("fixgw_drop_copy_lag_events", "fixgw_mqtt_connected",
                 "fixgw_surveillance_alerts", "fixgw_store_flush_seconds",
                 "fixgw_order_ack_latency_seconds", "fixgw_open_orders", "fixgw_book_levels"):
        assert name in ours, name
    for name, kind in ours.items():
        # The parser strips _total from counter family names; the samples keep it.
        assert kind in ("counter", "gauge", "histogram"), (name, kind)
        if kind == "counter":
            assert f"{name}_total" in text
    assert "process_cpu_seconds_total" in text


async def test_later_features_register_their_metrics(gateway: Gateway) -> None:
    from prometheus_client.core import GaugeMetricFamily

    assert gateway.metrics is not None
    ext = gateway.metrics.external
    lag = {"risk": 7}
    ext.set_drop_copy_lag("risk", lambda: lag["risk"])
    ext.set_mqtt_state("broker-1", lambda: True)
    ext.count_alert("spoofing")
    ext.count_alert("spoofing")
    ext.add_source(lambda: [GaugeMetricFamily("fixgw_test_extra", "extra", value=3)])
    samples = await scrape(gateway)
    assert value(samples, "fixgw_drop_copy_lag_events", consumer="risk") == 7
    assert value(samples, "fixgw_mqtt_connected", broker="broker-1") == 1
    assert value(samples, "fixgw_surveillance_alerts_total", type="spoofing") == 2
    assert value(samples, "fixgw_test_extra") == 3
    lag["risk"] = 0
    assert value(await scrape(gateway), "fixgw_drop_copy_lag_events", consumer="risk") == 0


async def test_healthz_reports_live_components(gateway: Gateway) -> None:
    status, ctype, body = await get(gateway, "/healthz")
    assert (status, ctype) == (200, "application/json")
    assert json.loads(body) == {"status": "ok", "listener": True, "store": True, "engine": True}
    assert (await get(gateway, "/nothing"))[0] == 404


async def test_healthz_is_503_once_the_engine_journal_cannot_be_written(
    gateway: Gateway,
) -> None:
    trader = await Trader.log_on(gateway.port, "CLIENT1")
    journal = gateway.journal
    assert journal is not None
    # A real write failure: the journal's file descriptor now points at a
    # read-only file, so the next batch's write raises OSError (EBADF).
    import os

    ro = os.open(journal.path, os.O_RDONLY)
    os.dup2(ro, journal._fd)
    os.close(ro)
    await trader.order("B1", "buy", 10, "ACME", "10.00")
    assert await trader.peer.closed_by_peer()  # nothing acknowledged; everyone cut off
    status, _, body = await get(gateway, "/healthz")
    report = json.loads(body)
    assert status == 503
    assert (report["status"], report["listener"], report["engine"]) == ("fail", False, False)
    assert "journal" in report["fatal"]
    samples = await scrape(gateway)
    assert value(samples, "fixgw_component_up", component="engine") == 0
    await trader.peer.close()


async def test_metrics_off_serves_nothing_and_counts_nothing_extra(tmp_path: Path) -> None:
    settings = metrics_settings(tmp_path)
    settings = settings.model_copy(
        update={"metrics": settings.metrics.model_copy(update={"enabled": False})})
    gw = Gateway(settings)
    await gw.start()
    try:
        assert gw.metrics is None
        assert gw.order_entry is not None
        from fix_gateway.metrics.engine_stats import EngineStats

        assert not any(isinstance(getattr(o, "__self__", None), EngineStats)
                       for o in gw.order_entry.stream.observers)
        trader = await Trader.log_on(gw.port, "CLIENT1")
        await trader.order("B1", "buy", 10, "ACME", "10.00")
        assert (await trader.er("0"))[11] == "B1"
        await trader.peer.close()
    finally:
        await gw.stop(drain_timeout=0.5)


async def test_metrics_port_in_use_is_logged_and_trading_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    settings = metrics_settings(tmp_path)
    settings = settings.model_copy(
        update={"metrics": settings.metrics.model_copy(update={"port": port})})
    gw = Gateway(settings)
    try:
        await gw.start()
        assert gw.metrics is not None and gw.metrics.server.port is None
        assert any("event=metrics_unavailable key=metrics.port" in r.getMessage()
                   for r in caplog.records)
        trader = await Trader.log_on(gw.port, "CLIENT1")
        await trader.order("B1", "buy", 10, "ACME", "10.00")
        assert (await trader.er("0"))[11] == "B1"
        await trader.peer.close()
    finally:
        await gw.stop(drain_timeout=0.5)
        blocker.close()


async def test_grafana_dashboard_uses_only_exported_metrics(gateway: Gateway) -> None:
    import re

    dashboard = json.loads((Path(__file__).parent.parent / "deploy" / "grafana" / "fixgw.json")
                           .read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {re.sub(r"_(bucket|sum|count)$", "", name)
            for expr in exprs for name in re.findall(r"\bfixgw_\w+", expr)}
    _, _, text = await get(gateway, "/metrics")
    exported = set()
    for family in text_string_to_metric_families(text):
        exported.add(family.name + ("_total" if family.type == "counter" else ""))
    assert used and used <= exported, used - exported
    # Latency is shown per order MsgType, never new orders and cancels mixed.
    latency = [e for e in exprs if "fixgw_order_ack_latency_seconds" in e]
    assert latency and all("by (le, msg_type)" in e for e in latency), latency


# --- the session layer's counters, sans I/O -----------------------------------------


@pytest.mark.unit
def test_session_counters_fold_reasons_into_bounded_kinds() -> None:
    from tests.fix_peer import SansIOPeer

    peer = SansIOPeer(username="alice", password="secret")
    peer.feed(peer.logon(30, (553, "alice"), (554, "wrong"), now=peer.now))
    assert peer.closed
    peer.conn.connection_lost(peer.now, peer.closed)  # as the server does, with the reason
    counters = peer.session.counters
    assert counters.logon_refusals == {"auth_failed": 1}
    assert counters.logons == 0
    assert counters.received == {}  # refused by the connection: the session never saw it

    again = SansIOPeer(peer.session, now=peer.now + 1)
    again.next_seq = 1  # the refusal used no seqnum of the session
    again.log_on(30, (553, "alice"), (554, "secret"))
    again.advance(30 * 1.2 + 1)  # silence: a TestRequest goes out
    again.advance(30 * 1.2 * 2)  # still nothing: the connection is dropped
    assert again.closed == "TestRequest not answered"
    again.conn.connection_lost(again.now, again.closed)
    assert counters.logons == 1
    assert counters.disconnects == {"heartbeat_timeout": 1}
    assert counters.sent[b"1"] == 1  # the TestRequest


async def test_a_held_event_loop_is_shown_and_counted(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    """A loop held past server.stall_seconds: every thread's stack goes to
    <data_dir>/stalls.log while it lasts (the stall watch thread), and event=loop_stalled plus
    the counter when it ends."""
    base = metrics_settings(tmp_path).model_dump(by_alias=True)
    # Margins for a loaded 2-core CI machine: a 0.6 s threshold no ordinary turn
    # reaches, a 2 s hold well past it, and up to 5 s for the ticker to notice.
    base["server"].update(tick_interval=0.05, stall_seconds=0.6)
    gw = Gateway(GatewaySettings.model_validate(base))
    await gw.start()
    try:
        trader = await Trader.log_on(gw.port, "CLIENT1")
        await asyncio.sleep(0.5)  # normal ticking: no false alarm
        assert gw.loop_stalls == 0
        time.sleep(2.0)  # what a disk that stops answering does to the loop
        for _ in range(100):
            if gw.loop_stalls:
                break
            await asyncio.sleep(0.05)
        assert gw.loop_stalls == 1
        assert any("event=loop_stalled seconds=" in r.getMessage() for r in caplog.records)
        dump = gw.stall_log.read_text()  # a file: a full stderr pipe cannot block it
        assert "Stall: event loop held for" in dump, dump  # the stall watch's header
        assert "test_a_held_event_loop_is_shown_and_counted" in dump, dump
        assert "Stall:" not in capfd.readouterr().err
        samples = await scrape(gw)
        assert value(samples, "fixgw_event_loop_stalls_total") == 1
        await trader.alive()  # and trading goes on
        await trader.peer.close()
    finally:
        await gw.stop(drain_timeout=0.5)
