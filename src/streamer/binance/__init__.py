"""Binance spot's wire only: the connection protocol, frame decoding, REST, weight and limits.

`SpotMarket` (in `streamer.binance.market`) is what the engine in `streamer.stream` drives.
"""
