"""Sinks as users write them: one URL each, its scheme naming the sink module.

`nats://127.0.0.1:4222?stream=STREAMER_TRADES&max_age=86400` or
`redis://127.0.0.1:6379/0?maxlen=1000000`. Query parameters the runner understands (`batch`,
`retry_cap`, `max_lag`) are taken out here, whatever the sink; the rest belong to the sink, which
refuses any it does not know. A new sink is one module with a `from_url(SinkUrl)` and one entry
in `FACTORIES`; its client library is imported only when a URL of its scheme is used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from streamer.sinks.base import Sink, SinkError
from streamer.sinks.runner import RunnerOptions


class InvalidSinkUrl(SinkError, ValueError):
    """A sink URL that cannot be used: unknown scheme, bad or unknown parameter."""


@dataclass(frozen=True, slots=True)
class SinkUrl:
    """A parsed sink URL: where the destination is, and the sink's own parameters."""

    text: str
    """The URL as given, without the runner's parameters."""
    scheme: str
    host: str
    port: int | None
    path: str
    params: Mapping[str, str]

    @property
    def label(self) -> str:
        """The URL without password and parameters, for logs, metrics and the tree."""
        parts = urlsplit(self.text)
        netloc = parts.hostname or ""
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def param(self, name: str, default: str) -> str:
        return self.params.get(name, default)

    def number(self, name: str, default: float, kind: type[int] | type[float] = int) -> float:
        """A numeric parameter, or a clear error naming it."""
        raw = self.params.get(name)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise InvalidSinkUrl(f"{self.label}: {name}={raw!r} is not a number") from None
        if value < 0:
            raise InvalidSinkUrl(f"{self.label}: {name} must not be negative, got {raw}")
        return value

    def check_params(self, known: set[str]) -> None:
        unknown = sorted(set(self.params) - known)
        if unknown:
            raise InvalidSinkUrl(
                f"{self.label}: unknown parameter {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known)) or 'none'})"
            )


def _nats(url: SinkUrl) -> Sink:
    from streamer.sinks.nats import from_url

    return from_url(url)


def _redis(url: SinkUrl) -> Sink:
    from streamer.sinks.redis import from_url

    return from_url(url)


def _parquet(url: SinkUrl) -> Sink:
    from streamer.sinks.parquet import from_url

    return from_url(url)


FACTORIES: dict[str, Callable[[SinkUrl], Sink]] = {
    "nats": _nats,
    "parquet": _parquet,
    "redis": _redis,
    "rediss": _redis,
}
"""Scheme -> the sink module's `from_url`."""

_RUNNER_PARAMS = ("batch", "retry_cap", "max_lag")


def parse_sink_url(text: str) -> tuple[SinkUrl, RunnerOptions]:
    """Split a sink URL into the sink's part and the runner's options, validating both."""
    text = text.strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in FACTORIES:
        known = ", ".join(f"{name}://" for name in sorted(FACTORIES))
        raise InvalidSinkUrl(f"{text!r} is not a sink URL: it must start with one of {known}")
    try:
        port = parts.port
    except ValueError as error:
        raise InvalidSinkUrl(f"{text!r}: {error}") from None
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "queue" in params:
        raise InvalidSinkUrl(
            f"{text!r}: queue= is no longer a sink setting: every sink reads the journal, "
            "whose size --journal-max-bytes bounds"
        )
    runner = {name: params.pop(name) for name in _RUNNER_PARAMS if name in params}
    query = "&".join(f"{key}={value}" for key, value in params.items())
    sink_text = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    url = SinkUrl(sink_text, scheme, parts.hostname or "", port, parts.path, params)
    options_url = SinkUrl(text, scheme, url.host, port, parts.path, runner)
    defaults = RunnerOptions()
    batch = int(options_url.number("batch", defaults.batch))
    retry_cap = options_url.number("retry_cap", defaults.retry_cap, float)
    max_lag = options_url.number("max_lag", defaults.max_lag, float)
    try:
        options = RunnerOptions(batch=batch, retry_cap=retry_cap, max_lag=max_lag)
    except ValueError as error:
        raise InvalidSinkUrl(f"{url.label}: {error}") from None
    return url, options


def sink_from_url(text: str) -> tuple[Sink, RunnerOptions]:
    """The sink a URL names, ready to open, with the options of its runner."""
    url, options = parse_sink_url(text)
    return FACTORIES[url.scheme](url), options
