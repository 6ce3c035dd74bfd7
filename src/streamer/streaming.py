"""Moved to `streamer.service.streaming`: this old path warns, and goes in the next release."""

from streamer._moved import moved

__getattr__ = moved(__name__, "streamer.service.streaming")
