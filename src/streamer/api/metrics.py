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

from streamer.binance.stats import LiveState
from streamer.sinks.runner import metric_families

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
        trades = CounterMetricFamily(
            "streamer_trades", "Trades delivered, by symbol.", labels=["symbol"]
        )
        gaps_filled = CounterMetricFamily(
            "streamer_gaps_filled", "Gaps back-filled from the trade history.", labels=["symbol"]
        )
        gaps_lost = CounterMetricFamily(
            "streamer_gaps_lost", "Gaps that could not be filled.", labels=["symbol"]
        )
        malformed = CounterMetricFamily(
            "streamer_malformed_frames", "Malformed frames received.", labels=["symbol"]
        )
        rejected = CounterMetricFamily(
            "streamer_rejected",
            "Trade frames and REST rows dropped by validation, by symbol and reason.",
            labels=["symbol", "reason"],
        )
        quarantines = CounterMetricFamily(
            "streamer_quarantines", "Times a symbol was quarantined.", labels=["symbol"]
        )
        rate = GaugeMetricFamily("streamer_trade_rate", "Trades per second.", labels=["symbol"])
        states = GaugeMetricFamily(
            "streamer_symbols_in_state", "Symbols in each live state.", labels=["state"]
        )
        in_state = dict.fromkeys(LiveState, 0)
        for symbol, data in stats.items():
            trades.add_metric([symbol], float(data.trades))
            gaps_filled.add_metric([symbol], float(data.gaps_filled))
            gaps_lost.add_metric([symbol], float(data.gaps_lost))
            malformed.add_metric([symbol], float(data.malformed))
            quarantines.add_metric([symbol], float(data.quarantines))
            rate.add_metric([symbol], data.rate)
            for reason, count in data.rejected.items():
                rejected.add_metric([symbol, reason], float(count))
            in_state[data.state] += 1
        for state, count in in_state.items():
            states.add_metric([str(state)], float(count))
        yield from (trades, gaps_filled, gaps_lost, malformed, rejected, quarantines, rate, states)
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
        yield from metric_families(service.sinks)


def render_metrics(service: Service) -> bytes:
    """The exposition text of this service's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(service))
    return generate_latest(registry)
