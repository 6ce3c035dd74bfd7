"""The exchange-neutral engine: per-symbol channels, the hub, workers, back-fill, validation,
stats and pub/sub, and the `Market` protocol a market adapter implements for it.

Nothing here knows a market's wire; `streamer.binance` is one adapter.
"""
