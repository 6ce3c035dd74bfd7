"""A local fake Binance that speaks the real protocol, for tests, the demo and benchmarks."""

from streamer.mock_exchange.config import Limits, MockConfig
from streamer.mock_exchange.faults import FaultError, Faults
from streamer.mock_exchange.server import MockExchange

__all__ = ["FaultError", "Faults", "Limits", "MockConfig", "MockExchange"]
