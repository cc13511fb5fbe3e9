"""A histogram that costs one bisect and two adds per observation.

prometheus_client's Histogram takes a lock and walks its buckets on every
observation; on the event-loop thread neither is needed. Observations go into
plain lists here and become a Prometheus histogram only at scrape time.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from prometheus_client.core import HistogramMetricFamily

# Seconds, from 50 us (a small batch on a quiet gateway) to 1 s.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0,
)  # fmt: skip


class BucketHistogram:
    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float, times: int = 1) -> None:
        """Record `value` `times` times (e.g. once per order of a batch)."""
        self.counts[bisect_left(self.bounds, value)] += times
        self.count += times
        self.sum += value * times

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        """The Prometheus family: cumulative buckets, as the exposition format wants."""
        return HistogramMetricFamily(name, documentation, buckets=self.buckets(),
                                     sum_value=self.sum)

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative (le, count) pairs, +Inf last."""
        buckets: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return buckets


def labelled_family(
    name: str, documentation: str, label: str, histograms: dict[str, BucketHistogram]
) -> HistogramMetricFamily:
    """One histogram family with a series per label value (e.g. per MsgType)."""
    family = HistogramMetricFamily(name, documentation, labels=[label])
    for value, histogram in sorted(histograms.items()):
        family.add_metric([value], histogram.buckets(), histogram.sum)
    return family
