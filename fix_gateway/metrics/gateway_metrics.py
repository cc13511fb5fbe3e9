"""Everything metrics adds to a running gateway, in one object.

The gateway calls three cheap hooks on its hot path: `batch_started` /
`batch_written` around each read batch (order-to-ack latency, one
observation per batch and MsgType weighted by the orders of that type it
carried) and `store_flush`
after the write-ahead flushes. The rest (collector, HTTP endpoint, health)
runs only when scraped.
"""

from __future__ import annotations

import logging
from time import perf_counter

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from fix_gateway.metrics.collector import ExternalSources, GatewayCollector
from fix_gateway.metrics.engine_stats import EngineStats
from fix_gateway.metrics.gateway_view import GatewayView
from fix_gateway.metrics.histogram import BucketHistogram
from fix_gateway.metrics.http import MetricsServer

log = logging.getLogger("fixgw.metrics")


class GatewayMetrics:
    def __init__(self, gateway: GatewayView) -> None:
        self.gateway = gateway
        self.engine_stats = EngineStats()  # an event-stream observer: the gateway subscribes it
        self.order_latency: dict[str, BucketHistogram] = {}  # MsgType -> ack latency
        self.store_flush = BucketHistogram()
        # Our own registry, not the process-global one: two gateways in one
        # process (tests) each export only their own state.
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = GatewayCollector(gateway, self)
        self.registry.register(self.collector)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.server = MetricsServer(self.registry, self.health_report)
        self._batch_start = 0.0

    @property
    def external(self) -> ExternalSources:
        """Where drop copy, MQTT and surveillance register their metrics."""
        return self.collector.external

    # --- hot-path hooks ----------------------------------------------------------------

    def batch_started(self) -> None:
        self._batch_start = perf_counter()
        self.engine_stats.batch.clear()

    def batch_written(self) -> None:
        batch = self.engine_stats.batch
        if batch:
            elapsed = perf_counter() - self._batch_start
            latency = self.order_latency
            for msg_type, orders in batch.items():
                histogram = latency.get(msg_type)
                if histogram is None:  # a handful of types: D, F, G, H, q
                    histogram = latency[msg_type] = BucketHistogram()
                histogram.observe(elapsed, orders)
            batch.clear()

    def store_flushed(self, started: float) -> None:
        self.store_flush.observe(perf_counter() - started)

    # --- health ------------------------------------------------------------------------

    def health(self) -> dict[str, bool]:
        """Whether the listener, the session stores and the engine are live."""
        gw = self.gateway
        checks = {"listener": gw.listening, "store": not gw.failed_stores}
        if gw.order_entry is not None:
            checks["engine"] = gw.fatal_reason is None
        return checks

    def health_report(self) -> tuple[bool, dict[str, object]]:
        checks = self.health()
        live = all(checks.values())
        report: dict[str, object] = {"status": "ok" if live else "fail", **checks}
        if self.gateway.fatal_reason is not None:
            report["fatal"] = self.gateway.fatal_reason
        if self.gateway.failed_stores:
            report["failed_stores"] = sorted(self.gateway.failed_stores)
        return live, report

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self, host: str, port: int) -> None:
        """Serve /metrics and /healthz; a port in use is logged, not fatal to trading."""
        try:
            await self.server.start(host, port)
        except OSError as exc:
            log.error("event=metrics_unavailable key=metrics.port host=%s port=%d error=%r",
                      host, port, str(exc))
            return
        log.info("event=metrics_listening host=%s port=%d", host, self.server.port)

    async def stop(self) -> None:
        await self.server.stop()
