"""A client of the running service's HTTP API, for the CLI and for scripts."""

from __future__ import annotations

from typing import Any

import httpx

from streamer.errors import StreamerError
from streamer.symbols import url_quote


class ServiceNotRunning(StreamerError, ConnectionError):
    """Nothing answers at the service's address."""


class ApiError(StreamerError, RuntimeError):
    """The service answered with an error; the message is the service's own explanation."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code


class ServiceClient:
    """Calls the API at `base_url`, with the bearer token when one is configured."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 10.0) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def _call(self, method: str, path: str, json: Any = None, **params: Any) -> Any:
        try:
            response = self._http.request(method, path, params=params or None, json=json)
        except httpx.ConnectError as error:
            raise ServiceNotRunning(f"no service answers at {self.base_url}") from error
        except httpx.TransportError as error:
            raise ApiError(0, f"the service at {self.base_url} did not answer: {error!r}") from None
        try:
            body = response.json()
        except ValueError:
            raise ApiError(
                response.status_code,
                f"{self.base_url} answered HTTP {response.status_code} with something that is "
                "not the streamer API (is another program on this port?)",
            ) from None
        if response.status_code >= 400 and path != "/api/health":
            detail = body.get("detail") if isinstance(body, dict) else None
            raise ApiError(response.status_code, str(detail or f"HTTP {response.status_code}"))
        return body

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/api/health")
        return result

    def setting(self, symbol: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/api/settings/{url_quote(symbol)}")
        return result

    def settings(self, *, active: bool = False) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/api/settings", active=active)
        return result

    def start(self, symbol: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/api/settings/{url_quote(symbol)}/start")
        return result

    def stop(self, symbol: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/api/settings/{url_quote(symbol)}/stop")
        return result

    def start_many(self, symbols: list[str]) -> dict[str, Any]:
        """One call for many symbols: `changed`, `unchanged` and `failed` (with why)."""
        result: dict[str, Any] = self._call("POST", "/api/settings/start", json=symbols)
        return result

    def stop_many(self, symbols: list[str]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/api/settings/stop", json=symbols)
        return result
