"""Prometheus metrics, read from the live state at scrape time.

Nothing on the trade path touches a metric object: the streaming engine keeps plain counters,
and this collector turns them into samples only when Prometheus asks. Counters only ever grow
(per symbol they start again with a new worker, which `rate()` handles as a reset); rates are
left to `rate()` over them rather than exported as gauges. `streamer_last_trade_timestamp_seconds`
is what a staleness alert compares with `time()`.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from streamer import __version__
from streamer.sinks.runner import metric_families
from streamer.stream.stats import LiveState
from streamer.wire import SharedText

if TYPE_CHECKING:
    from streamer.api.view import ServiceView


@dataclass
class SocketClients:
    """`/ws/trades` clients: connected now, and ever accepted; the texts they share."""

    open: int = 0
    accepted: int = 0
    texts: SharedText = field(default_factory=SharedText)


class ServiceCollector(Collector):
    def __init__(self, service: ServiceView, clients: SocketClients) -> None:
        self._service = service
        self._clients = clients

    def collect(self) -> Iterator[Metric]:
        service = self._service
        build = InfoMetricFamily("streamer_build", "The running build.")
        build.add_metric([], {"version": __version__, "python": platform.python_version()})
        yield build
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
        last_trade = GaugeMetricFamily(
            "streamer_last_trade_timestamp_seconds",
            "Exchange time of the last trade delivered, by symbol.",
            labels=["symbol"],
        )
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
            if data.last_trade_time is not None:
                last_trade.add_metric([symbol], exchange_seconds(data.last_trade_time))
            for reason, count in data.rejected.items():
                rejected.add_metric([symbol, reason], float(count))
            in_state[data.state] += 1
        for state, count in in_state.items():
            states.add_metric([str(state)], float(count))
        yield from (trades, gaps_filled, gaps_lost, malformed, rejected, quarantines)
        yield from (last_trade, states)
        restarts = CounterMetricFamily(
            "streamer_worker_restarts", "Restarts of running workers.", labels=["symbol"]
        )
        for name in service.registry.names():
            child = service.registry.lookup(name)
            if child is not None:
                restarts.add_metric([name], float(child.restarts))
        yield restarts
        dropped = CounterMetricFamily(
            "streamer_subscriber_dropped",
            "Events dropped by slow subscribers, closed subscriptions included.",
        )
        dropped.add_metric([], float(service.pubsub.dropped))
        yield dropped
        connects = CounterMetricFamily(
            "streamer_exchange_connects",
            "Websocket connection attempts to the exchange (the first ones, then reconnects).",
        )
        connects.add_metric([], float(service.hub.market.connect_attempts))
        yield connects
        connections = GaugeMetricFamily(
            "streamer_exchange_connections", "Websocket connections to the exchange now."
        )
        connections.add_metric([], float(len(service.hub.connections())))
        yield connections
        clients = GaugeMetricFamily("streamer_ws_clients", "/ws/trades clients connected now.")
        clients.add_metric([], float(self._clients.open))
        yield clients
        accepted = CounterMetricFamily(
            "streamer_ws_clients_accepted", "/ws/trades clients accepted since the start."
        )
        accepted.add_metric([], float(self._clients.accepted))
        yield accepted
        yield from metric_families(service.sinks)
        if service.ownership is not None:
            yield from _lease_metrics(service)


def _lease_metrics(service: ServiceView) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
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
    failures = CounterMetricFamily(
        "streamer_lease_renew_failures",
        "Lease renew rounds that did not reach the database; the streams went on meanwhile.",
    )
    failures.add_metric([], float(stats.failures))
    yield failures
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


def exchange_seconds(value: int) -> float:
    """An exchange time in seconds: it is in ms, or in µs on connections that asked for them."""
    return value / (1_000_000 if value > 10**14 else 1_000)


def metrics_registry(service: ServiceView, clients: SocketClients) -> CollectorRegistry:
    """This service's metrics beside the process's and Python's own (memory, CPU, GC)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(service, clients))
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


def render_metrics(registry: CollectorRegistry) -> bytes:
    """The exposition text of `registry`."""
    return generate_latest(registry)
