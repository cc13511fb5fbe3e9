"""The gateway's Prometheus collector: reads plain counters at scrape time.

Nothing here runs per message. The session layer, the connection shell, the
engine observer and the gateway's histograms keep ints and lists; `collect`
walks them when Prometheus scrapes and yields metric families.

Later features feed their metrics through small registries on the collector
(see `ExternalSources`): drop copy registers a lag function per consumer,
the MQTT publisher a connection-state function per broker, surveillance
counts alerts by type, and anything else can `add_source` a callable that
yields metric families.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from engine.types import Side
from fix_gateway.metrics.gateway_view import GatewayView
from fix_gateway.metrics.histogram import labelled_family
from fix_gateway.session.counters import OTHER_MSG_TYPE

if TYPE_CHECKING:
    from fix_gateway.metrics.gateway_metrics import GatewayMetrics

Source = Callable[[], Iterable[Metric]]


class ExternalSources:
    """Values owned by other components, read at scrape time."""

    def __init__(self) -> None:
        self.drop_copy_lag: dict[str, Callable[[], float]] = {}  # consumer -> events behind
        self.mqtt_connected: dict[str, Callable[[], bool]] = {}  # broker -> connected?
        self.surveillance_alerts: dict[str, int] = {}  # alert type -> alerts raised
        self.sources: list[Source] = []

    def set_drop_copy_lag(self, consumer: str, lag: Callable[[], float]) -> None:
        """`lag()`: engine events not yet delivered to `consumer`."""
        self.drop_copy_lag[consumer] = lag

    def set_mqtt_state(self, broker: str, connected: Callable[[], bool]) -> None:
        self.mqtt_connected[broker] = connected

    def count_alert(self, alert_type: str, n: int = 1) -> None:
        alerts = self.surveillance_alerts
        alerts[alert_type] = alerts.get(alert_type, 0) + n

    def add_source(self, source: Source) -> None:
        """A callable yielding further metric families at every scrape."""
        self.sources.append(source)


class GatewayCollector(Collector):
    def __init__(self, gateway: GatewayView, metrics: GatewayMetrics) -> None:
        self.gateway = gateway
        self.metrics = metrics
        self.external = ExternalSources()
        names = gateway.dictionary.messages
        self._msg_names = {msg_type: mdef.name for msg_type, mdef in names.items()}
        self._known_msg_types = gateway.dictionary.known_msg_types | set(names)

    def collect(self) -> Iterator[Metric]:
        yield from self._session_families()
        yield from self._connection_families()
        yield from self._engine_families()
        yield from self._timing_families()
        yield from self._external_families()
        yield from self._health_families()

    # --- sessions ---------------------------------------------------------------------

    def _session_families(self) -> Iterator[Metric]:
        msg_labels = ["session", "msg_type", "name"]
        received = CounterMetricFamily(
            "fixgw_messages_received_total", "FIX messages received, by session and MsgType",
            labels=msg_labels)
        sent = CounterMetricFamily(
            "fixgw_messages_sent_total",
            "FIX messages sent (first sends, not resends), by session and MsgType",
            labels=msg_labels)
        resent = CounterMetricFamily(
            "fixgw_messages_resent_total",
            "FIX messages sent again answering ResendRequests (PossDup copies and GapFills)",
            labels=msg_labels)
        session_rejects = CounterMetricFamily(
            "fixgw_session_rejects_total", "Reject (35=3) sent, by SessionRejectReason (373)",
            labels=["session", "reason"])
        business_rejects = CounterMetricFamily(
            "fixgw_business_rejects_total",
            "BusinessMessageReject (35=j) sent, by BusinessRejectReason (380)",
            labels=["session", "reason"])
        connected = GaugeMetricFamily(
            "fixgw_session_connected", "1 while the session has a logged-on connection",
            labels=["session"])
        logons = CounterMetricFamily("fixgw_logons_total", "Logons accepted", labels=["session"])
        refusals = CounterMetricFamily(
            "fixgw_logon_refusals_total", "Logons refused by a configured session, by reason",
            labels=["session", "reason"])
        logouts = CounterMetricFamily(
            "fixgw_logouts_total", "Logouts received, by who initiated the logout",
            labels=["session", "initiated_by"])
        disconnects = CounterMetricFamily(
            "fixgw_disconnects_total", "Session connections ended, by reason",
            labels=["session", "reason"])
        resends = CounterMetricFamily(
            "fixgw_resend_requests_served_total", "ResendRequests answered",
            labels=["session"])
        chunks = CounterMetricFamily(
            "fixgw_resend_chunks_sent_total",
            "Chunks the answers to ResendRequests were sent in (1,000 messages or 256 KiB"
            " at most each)", labels=["session"])
        total_connected = 0
        for session in self.gateway.sessions:
            name = session.config.name
            c = session.counters
            for family, counts in ((received, c.received), (sent, c.sent), (resent, c.resent)):
                for msg_type, n in self._by_known_msg_type(counts).items():
                    family.add_metric([name, msg_type.decode("latin-1"),
                                       self._msg_names.get(msg_type, "")], n)
            for family, reasons in ((session_rejects, c.session_rejects),
                                    (business_rejects, c.business_rejects)):
                for reason, n in reasons.items():
                    family.add_metric([name, str(reason)], n)
            for family, kinds in ((refusals, c.logon_refusals), (logouts, c.logouts),
                                  (disconnects, c.disconnects)):
                for kind, n in kinds.items():
                    family.add_metric([name, kind], n)
            connected.add_metric([name], 1 if session.connected else 0)
            total_connected += session.connected
            logons.add_metric([name], c.logons)
            resends.add_metric([name], c.resend_requests_served)
            chunks.add_metric([name], c.resend_chunks_sent)
        yield from (received, sent, resent, session_rejects, business_rejects, connected)
        yield GaugeMetricFamily("fixgw_sessions_connected", "Sessions logged on now",
                                value=total_connected)
        yield from (logons, refusals, logouts, disconnects, resends, chunks)

    def _by_known_msg_type(self, counts: dict[bytes, int]) -> dict[bytes, int]:
        """`counts` with every MsgType outside the dictionary folded into "other", so
        label values stay a bounded set whatever MsgTypes clients send."""
        known = self._known_msg_types
        if all(msg_type in known for msg_type in counts):
            return counts
        folded: dict[bytes, int] = {}
        for msg_type, n in counts.items():
            key = msg_type if msg_type in known else OTHER_MSG_TYPE
            folded[key] = folded.get(key, 0) + n
        return folded

    def _connection_families(self) -> Iterator[Metric]:
        counters = self.gateway.connection_counters
        yield CounterMetricFamily("fixgw_connections_accepted_total", "TCP connections accepted",
                                  value=counters.accepted)
        refused = CounterMetricFamily(
            "fixgw_connections_refused_total",
            "Connections closed before any session took them over, by reason",
            labels=["reason"])
        for kind, n in counters.refused.items():
            refused.add_metric([kind], n)
        yield refused
        garbled = CounterMetricFamily(
            "fixgw_garbled_messages_total",
            "Garbled frames dropped (bad BodyLength, CheckSum, field order), by session"
            " (empty before Logon)", labels=["session"])
        for name, n in counters.garbled.items():
            garbled.add_metric([name], n)
        yield garbled

    # --- engine -----------------------------------------------------------------------

    def _engine_families(self) -> Iterator[Metric]:
        stats = self.metrics.engine_stats
        events = CounterMetricFamily("fixgw_engine_events_total",
                                     "Matching-engine events, by type", labels=["type"])
        for cls, n in stats.events.items():
            events.add_metric([cls.__name__], n)
        yield events
        order_rejects = CounterMetricFamily(
            "fixgw_order_rejects_total", "Orders rejected (ExecutionReport 150=8), by OrdRejReason"
            " (103)", labels=["session", "reason"])
        for (session, reason), n in stats.order_rejects.items():
            order_rejects.add_metric([session, str(reason)], n)
        yield order_rejects
        cancel_rejects = CounterMetricFamily(
            "fixgw_cancel_rejects_total", "OrderCancelRejects (35=9) sent, by CxlRejReason (102)",
            labels=["session", "reason"])
        merged = dict(stats.cancel_rejects)
        order_entry = self.gateway.order_entry
        if order_entry is not None:
            for session, n in order_entry.reports.boundary_cancel_rejects.items():
                merged[(session, 99)] = merged.get((session, 99), 0) + n
        for (session, reason), n in merged.items():
            cancel_rejects.add_metric([session, str(reason)], n)
        yield cancel_rejects
        yield CounterMetricFamily("fixgw_orders_processed_total",
                                  "Order commands run through the engine",
                                  value=stats.orders)
        if order_entry is None:
            return
        engine = order_entry.engine
        open_orders = GaugeMetricFamily("fixgw_open_orders",
                                        "Live orders (resting and waiting stops), by symbol",
                                        labels=["symbol"])
        # Counted in the books, not from snapshots: a scrape runs on the event loop.
        for symbol in order_entry.instruments:
            open_orders.add_metric([symbol], engine.book(symbol).live_count())
        yield open_orders
        levels = GaugeMetricFamily("fixgw_book_levels", "Price levels in the book",
                                   labels=["symbol", "side"])
        quantity = GaugeMetricFamily("fixgw_book_quantity",
                                     "Displayed quantity resting in the book",
                                     labels=["symbol", "side"])
        for symbol in order_entry.instruments:
            book = engine.book(symbol)
            for side, book_side in ((Side.BUY, book.bids), (Side.SELL, book.asks)):
                label = [symbol, side.name.lower()]
                levels.add_metric(label, len(book_side.levels))
                quantity.add_metric(label, sum(lv.displayed for lv in book_side.levels.values()))
        yield levels
        yield quantity

    # --- timings, other components, health ------------------------------------------------

    def _timing_families(self) -> Iterator[Metric]:
        yield labelled_family(
            "fixgw_order_ack_latency_seconds",
            "From a read batch's arrival to the socket write of its answers, once per order,"
            " by the order's MsgType (D new, F cancel, G replace, H status, q mass cancel)",
            "msg_type", self.metrics.order_latency)
        yield self.metrics.store_flush.family(
            "fixgw_store_flush_seconds",
            "Journal and session-store flushes of one batch (write ahead, before speaking)")
        yield CounterMetricFamily(
            "fixgw_event_loop_stalls_total",
            "Times the event loop was held up for server.stall_seconds or more",
            value=self.gateway.loop_stalls)

    def _external_families(self) -> Iterator[Metric]:
        ext = self.external
        lag = GaugeMetricFamily("fixgw_drop_copy_lag_events",
                                "Engine events not yet delivered to a drop-copy consumer",
                                labels=["consumer"])
        for consumer, fn in ext.drop_copy_lag.items():
            lag.add_metric([consumer], fn())
        yield lag
        mqtt = GaugeMetricFamily("fixgw_mqtt_connected",
                                 "1 while the MQTT drop-copy feed is connected to its broker",
                                 labels=["broker"])
        for broker, state in ext.mqtt_connected.items():
            mqtt.add_metric([broker], 1 if state() else 0)
        yield mqtt
        alerts = CounterMetricFamily("fixgw_surveillance_alerts_total",
                                     "Surveillance alerts raised, by type", labels=["type"])
        for alert_type, n in ext.surveillance_alerts.items():
            alerts.add_metric([alert_type], n)
        yield alerts
        for source in ext.sources:
            yield from source()

    def _health_families(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("fixgw_component_up",
                               "1 while a component is live (as /healthz reports it)",
                               labels=["component"])
        for component, live in self.metrics.health().items():
            up.add_metric([component], 1 if live else 0)
        yield up
