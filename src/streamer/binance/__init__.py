"""The Binance exchange: trade events, decoding, websocket connections and the REST client."""
