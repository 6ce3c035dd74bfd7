"""Sinks: where events leave the process (brokers, recordings): one protocol, one module each."""

from streamer.sinks.base import Sink, SinkError, SinkEvent, SinkUnavailable

__all__ = ["Sink", "SinkError", "SinkEvent", "SinkUnavailable"]
