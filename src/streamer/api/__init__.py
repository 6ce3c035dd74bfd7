"""The HTTP control API, the websocket fan-out and the status page."""
