"""Moved to `streamer.stream.stats`: this old path warns, and goes in the next release."""

from streamer._moved import moved

__getattr__ = moved(__name__, "streamer.stream.stats")
