"""Surveillance alerts and where they go: a JSON-lines file, the log, counts, callbacks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

log = logging.getLogger("fixgw.surveillance")

ALERT_TYPES = ("order_to_trade", "message_burst", "spoofing", "wash_trade", "marking_close",
               "momentum_ignition")


class Alert(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: str
    account: str
    symbol: str | None
    time: datetime  # UTC: when the pattern starts (window start, or the trade)
    score: float  # how far past the threshold: 1.0 is at the threshold
    details: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, str | None, datetime]:
        """One alert per pattern: re-evaluating the same history repeats no alert."""
        return (self.type, self.account, self.symbol, self.time)


def ns_to_time(ts_ns: int) -> datetime:
    return datetime.fromtimestamp(ts_ns // 10**9, UTC).replace(microsecond=ts_ns // 1000
                                                                 % 1_000_000)


AlertCallback = Callable[[Alert], None]


class AlertSink:
    """Delivers each new alert once: file, log line, per-type count, callbacks."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.alert_counts: dict[str, int] = dict.fromkeys(ALERT_TYPES, 0)
        self.on_alert: list[AlertCallback] = []
        self._seen: set[tuple[str, str, str | None, datetime]] = set()

    def forget_before(self, when: datetime) -> None:
        """Drop the memory of alerts older than anything still evaluated."""
        self._seen = {k for k in self._seen if k[3] >= when}

    def deliver(self, alerts: list[Alert]) -> list[Alert]:
        """Deliver the alerts not delivered before; return them."""
        new = [a for a in alerts if a.key not in self._seen]
        if not new:
            return new
        self._seen.update(a.key for a in new)
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as f:
                f.write("".join(a.model_dump_json() + "\n" for a in new))
        for alert in new:
            self.alert_counts[alert.type] = self.alert_counts.get(alert.type, 0) + 1
            log.warning("event=alert type=%s account=%s symbol=%s time=%s score=%.2f",
                        alert.type, alert.account, alert.symbol or "-",
                        alert.time.isoformat(), alert.score)
            for callback in self.on_alert:
                try:
                    callback(alert)
                except Exception:  # one broken consumer must not stop the others
                    log.exception("event=alert_callback_error type=%s", alert.type)
        return new
