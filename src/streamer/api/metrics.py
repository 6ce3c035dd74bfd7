"""Prometheus metrics, read from the live state at scrape time.

Nothing on the trade path touches a metric object: the streaming engine keeps plain counters,
and this collector turns them into samples only when Prometheus asks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from streamer.app import Service


class ServiceCollector(Collector):
    def __init__(self, service: Service) -> None:
        self._service = service

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        service = self._service
        stats = service.hub.all_stats()
        streaming = GaugeMetricFamily("streamer_symbols_running", "Symbols with a running worker.")
        streaming.add_metric([], len(service.registry))
        yield streaming
        ready = GaugeMetricFamily("streamer_ready", "1 when the service is ready.")
        ready.add_metric([], 1.0 if service.health().ready else 0.0)
        yield ready
        per_symbol = {
            "trades": CounterMetricFamily(
                "streamer_trades", "Trades delivered, by symbol.", labels=["symbol"]
            ),
            "gaps_filled": CounterMetricFamily(
                "streamer_gaps_filled",
                "Gaps back-filled from the trade history.",
                labels=["symbol"],
            ),
            "gaps_lost": CounterMetricFamily(
                "streamer_gaps_lost", "Gaps that could not be filled.", labels=["symbol"]
            ),
            "malformed": CounterMetricFamily(
                "streamer_malformed_frames", "Malformed frames received.", labels=["symbol"]
            ),
        }
        rate = GaugeMetricFamily("streamer_trade_rate", "Trades per second.", labels=["symbol"])
        for symbol, data in stats.items():
            for key, family in per_symbol.items():
                family.add_metric([symbol], float(data.get(key) or 0))
            rate.add_metric([symbol], float(data.get("rate") or 0.0))
        yield from per_symbol.values()
        yield rate
        restarts = CounterMetricFamily(
            "streamer_worker_restarts", "Restarts of running workers.", labels=["symbol"]
        )
        for name in service.registry.names():
            child = service.registry.lookup(name)
            if child is not None:
                restarts.add_metric([name], float(child.restarts))
        yield restarts
        dropped = CounterMetricFamily(
            "streamer_subscriber_dropped", "Events dropped by slow subscribers (open ones)."
        )
        dropped.add_metric([], float(sum(sub.dropped for sub in service.pubsub.subscriptions())))
        yield dropped
        if service.ownership is not None:
            yield from _lease_metrics(service)


def _lease_metrics(service: Service) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    ownership = service.ownership
    assert ownership is not None
    held = GaugeMetricFamily("streamer_leases_held", "Symbol leases this instance holds.")
    held.add_metric([], float(len(ownership.holdings.owned())))
    yield held
    stats = ownership.stats
    takeovers = CounterMetricFamily(
        "streamer_lease_takeovers", "Leases taken over from another instance."
    )
    takeovers.add_metric([], float(stats.takeovers))
    yield takeovers
    renewals = CounterMetricFamily("streamer_lease_renewals", "Successful lease renew rounds.")
    renewals.add_metric([], float(stats.renewals))
    yield renewals
    total = CounterMetricFamily(
        "streamer_lease_renew_seconds", "Time spent in successful lease renew rounds."
    )
    total.add_metric([], stats.renew_seconds_total)
    yield total
    last = GaugeMetricFamily(
        "streamer_lease_renew_latency_seconds", "Duration of the last lease renew round."
    )
    last.add_metric([], stats.last_renew_seconds)
    yield last


def render_metrics(service: Service) -> bytes:
    """The exposition text of this service's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(service))
    return generate_latest(registry)
