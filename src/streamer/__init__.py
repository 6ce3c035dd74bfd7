"""Live Binance trade streams for a persisted set of symbols, under OTP-style supervision."""

from importlib.metadata import version

__version__ = version("streamer")
