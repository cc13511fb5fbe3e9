"""Prometheus metrics and /healthz for the gateway (see docs/operations.md)."""

from fix_gateway.metrics.collector import ExternalSources
from fix_gateway.metrics.gateway_metrics import GatewayMetrics

__all__ = ["ExternalSources", "GatewayMetrics"]
