"""Import paths that moved keep working for one release, with a warning naming the new one."""

from __future__ import annotations

import importlib
import re

import pytest

MOVED = [
    ("streamer.pubsub", "topic", "streamer.stream.pubsub"),
    ("streamer.pubsub", "PubSub", "streamer.stream.pubsub"),
    ("streamer.binance.events", "TradeEvent", "streamer.events"),
    ("streamer.binance.stats", "LiveState", "streamer.stream.stats"),
    ("streamer.sinks.wire", "encode_event", "streamer.wire"),
    ("streamer.streaming", "StartResult", "streamer.service.streaming"),
    ("streamer.streaming", "StopResult", "streamer.service.streaming"),
]


@pytest.mark.parametrize(("old", "name", "new"), MOVED)
def test_an_old_path_serves_the_same_object_with_a_deprecation_warning(
    old: str, name: str, new: str
) -> None:
    """`from <old path> import name` gives the very object of the new path and warns about it."""
    with pytest.warns(DeprecationWarning, match=re.escape(new)):
        value = getattr(importlib.import_module(old), name)
    assert value is getattr(importlib.import_module(new), name)


def test_an_unknown_name_on_an_old_path_is_an_attribute_error() -> None:
    """The old path lends nothing the new module lacks."""
    with pytest.raises(AttributeError, match=r"streamer\.pubsub"):
        importlib.import_module("streamer.pubsub").nothing  # noqa: B018
